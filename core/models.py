"""Cross-cutting tables: the audit log and stored idempotency keys."""

from django.db import models

from core.crypto import EncryptedBinaryField
from core.ids import PublicIdField


class AuditLogEntry(models.Model):
    """Who did what, to what, when and why — written in the same transaction as the change."""

    class ActorType(models.TextChoices):
        USER = "user", "Operator"
        PLATFORM_KEY = "platform_key", "Platform key"
        API_KEY = "api_key", "Project key"
        AGENT_KEY = "agent_key", "Agent key"
        SYSTEM = "system", "System"

    id = PublicIdField(prefix="audit")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name="when")
    # The project's id as a value ("" for the platform's own actions): core sits below projects on the floor plan,
    # so no foreign key points up.
    project_id = models.CharField(
        max_length=40, blank=True, default="", db_index=True, verbose_name="project ID"
    )
    actor_type = models.CharField(max_length=20, choices=ActorType.choices, verbose_name="kind of actor")
    actor_id = models.CharField(max_length=64, blank=True, verbose_name="actor ID")
    actor_repr = models.CharField(max_length=255, blank=True, verbose_name="actor")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, verbose_name="target")
    target_id = models.CharField(max_length=64, db_index=True, verbose_name="target ID")
    target_repr = models.CharField(max_length=255, blank=True, verbose_name="target name")
    reason = models.TextField(blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True, verbose_name="request ID")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["target_type", "target_id", "-created_at"])]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log entries"

    def __str__(self) -> str:
        return f"{self.actor_repr or self.actor_type} {self.action} {self.target_type} {self.target_id}"


class IdempotencyKey(models.Model):
    """A caller's `Idempotency-Key` and the response it produced, replayed for 24 hours."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"
        # The last attempt ended without a storable answer (5xx, 429): a retry continues its operation.
        FAILED = "failed"

    # "project:<id>" or "platform:<key id>": keys are scoped to the caller that sent them.
    owner = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # The answer replayed for a retry, encrypted at rest: it may carry a secret shown once (a new key's).
    response_body = EncryptedBinaryField(null=True, blank=True)
    response_content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(db_index=True)
    locked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotency_key_unique_per_owner")
        ]
        verbose_name = "idempotency key"
        verbose_name_plural = "idempotency keys"

    def __str__(self) -> str:
        return f"{self.owner} {self.key}"


class CacheEpoch(models.Model):
    """One row: the generation of everything cached in the shared cache that must never outlive a change (who
    a key is, what a customer is entitled to). An invalidation that cannot reach the cache (Redis down or
    frozen) bumps it, in the database, which is up since the change just committed there; cached answers are
    stamped with the epoch they were computed under, and one of an older epoch is a miss. So a change made
    during a cache outage is not undone when the cache comes back with its old answers."""

    value = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "cache epoch"
        verbose_name_plural = "cache epochs"

    def __str__(self) -> str:
        return f"cache epoch {self.value}"
