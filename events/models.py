"""Tenant events: what happened in a project, numbered per project, and their deliveries to the project's
endpoints. The tables keep the names of the app these models came from (`webhooks_*`)."""

from django.db import models

from core.crypto import EncryptedTextField
from core.ids import PublicIdField
from stripe_gateway.gateway import PLATFORM_ACCOUNT  # noqa: F401  (re-exported: the inbox names accounts the same way)


def subscribed(events: list[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to `events` ("*" for all) wants an event of `event_type`."""
    return "*" in events or event_type in events


class WebhookEndpoint(models.Model):
    """A tenant's URL that receives Tollgate's events, signed with a secret shown once."""

    id = PublicIdField(prefix="whep")
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=2000, verbose_name="URL")
    events = models.JSONField(default=list, help_text='["*"] or a list of event types.')
    description = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    secret = EncryptedTextField()
    # During a roll the previous secret stays valid (both signatures are sent) until this time.
    previous_secret = EncryptedTextField(blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Set on the first failure after a success; an endpoint failing for a day is disabled.
    failing_since = models.DateTimeField(
        null=True, blank=True, verbose_name="failing since (first failure after a success)"
    )
    disabled_reason = models.CharField(max_length=200, blank=True, verbose_name="why disabled")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        db_table = "webhooks_webhookendpoint"
        ordering = ["-created_at"]
        verbose_name = "webhook endpoint"
        verbose_name_plural = "webhook endpoints"

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return subscribed(self.events, event_type)


class EventSequence(models.Model):
    """The last `sequence` handed out per project: events are numbered under this row's lock."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    last = models.BigIntegerField(default=0)

    class Meta:
        db_table = "webhooks_eventsequence"
        verbose_name = "event sequence"
        verbose_name_plural = "event sequences"

    def __str__(self) -> str:
        return f"{self.project_id}: {self.last}"


class Event(models.Model):
    """Something that happened in a project, as tenants see it (payload = the REST representation)."""

    id = PublicIdField(prefix="evt")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=100, db_index=True)
    sequence = models.BigIntegerField()
    data = models.JSONField(help_text="{'object': <API representation>}")
    previous_attributes = models.JSONField(
        null=True, blank=True, verbose_name="previous values of the changed fields"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name="created")

    class Meta:
        db_table = "webhooks_event"
        constraints = [models.UniqueConstraint(fields=["project", "sequence"], name="event_sequence_unique")]
        indexes = [
            models.Index(fields=["project", "created_at", "id"], name="event_list_page")
        ]  # core.pagination
        ordering = ["-created_at"]
        verbose_name = "outbound event"
        verbose_name_plural = "outbound events"

    def __str__(self) -> str:
        return f"{self.type} #{self.sequence}"


class Delivery(models.Model):
    """One event to one endpoint, retried on a schedule kept here (never as broker countdowns)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = PublicIdField(prefix="dlv")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name="next attempt")
    last_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name="last attempt")
    # Being sent by a worker until then (its claim's lease): what the fair claim counts as an endpoint's running
    # sends (events.services.delivery_turns).
    sending_until = models.DateTimeField(
        null=True, blank=True, editable=False, verbose_name="being sent until"
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")

    class Meta:
        db_table = "webhooks_delivery"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_unique_per_endpoint")
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            # Finished deliveries by their last attempt: retention's prune and `/metrics`' last hour.
            models.Index(fields=["status", "last_attempt_at"], name="delivery_finished"),
        ]
        verbose_name = "delivery"
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return self.id


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField(verbose_name="when")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name="HTTP status")
    latency_ms = models.PositiveIntegerField(default=0, verbose_name="latency (ms)")
    response_body = models.TextField(
        blank=True, help_text="The first 2 KB, never interpreted.", verbose_name="response (first 2 KB)"
    )
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        db_table = "webhooks_deliveryattempt"
        ordering = ["-attempted_at"]
        verbose_name = "delivery attempt"
        verbose_name_plural = "delivery attempts"

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.attempted_at:%Y-%m-%d %H:%M:%S}"
