"""What keeps usage events idempotent and bounded once their table is split by month (PostgreSQL: native range
partitions on `timestamp`, `services.usage_partitions`): the key of each recorded event (`UsageEventKey`) and
the record of each month dropped by retention (`UsagePartitionDrop`)."""

from django.db import models


class UsageEventKey(models.Model):
    """One row per usage event: the tenant's id within the project, unique across every month.

    A partitioned table's unique index must include its partition key, so the usage-event table itself can only
    say "unique within a month"; this small table holds the project-wide uniqueness instead. An insert claims the
    key first (`INSERT … ON CONFLICT DO NOTHING`), so two requests with the same id wait on one index entry and
    exactly one of them records the event. It also says where the event is (`usage_event_id`, `timestamp`: its
    month), so looking an event up by the tenant's id reads one partition."""

    pk = models.CompositePrimaryKey("project", "event_id")
    # No index of its own: the primary key's leading column serves the cascade. No constraint either: every key is
    # written with its event by `counters._events_insert` (whose event row holds the project's constraint), and
    # checking it again per key cost a sixth of a batch's commit.
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    event_id = models.CharField(max_length=255, verbose_name="event ID (the tenant's)")
    # Deleting a customer deletes its events, and with them their keys (the id is free again, as it was before
    # the keys): Django's cascade does it. No constraint and no index, so an insert pays for neither; a customer's
    # deletion reads the key table once.
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    usage_event_id = models.CharField(max_length=40, verbose_name="usage event")
    timestamp = models.DateTimeField()

    class Meta:
        verbose_name = "usage event key"
        verbose_name_plural = "usage event keys"

    def __str__(self) -> str:
        return self.event_id


class UsagePartitionDrop(models.Model):
    """A month of usage events dropped by retention (`manage.py usage_partitions --drop-older-than`, or the beat
    task applying `USAGE_RETENTION_MONTHS`): which month, how many events and keys went, and when."""

    month = models.DateField(verbose_name="month")
    table = models.CharField(max_length=63, verbose_name="partition")
    events = models.BigIntegerField(verbose_name="events dropped")
    keys = models.BigIntegerField(verbose_name="event keys removed")
    dropped_at = models.DateTimeField(auto_now_add=True, verbose_name="dropped")

    class Meta:
        verbose_name = "usage partition drop"
        verbose_name_plural = "usage partition drops"

    def __str__(self) -> str:
        return f"{self.table} ({self.month:%Y-%m})"
