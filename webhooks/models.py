"""The inbound Stripe event inbox: every verified delivery stored once, then processed by workers."""

from typing import Any

from django.db import models

from core.crypto import EncryptedTextField
from core.ids import PublicIdField
from stripe_gateway.gateway import PLATFORM_ACCOUNT  # noqa: F401  (re-exported: the inbox names accounts the same way)


class StripeEvent(models.Model):
    """One Stripe event, unique per Stripe account (the platform's, or a project's own)."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSING = "processing"
        PROCESSED = "processed"
        FAILED = "failed"
        IGNORED = "ignored"

    id = PublicIdField(prefix="sevt")
    # "platform", or the id of the project whose own Stripe account sent it.
    account = models.CharField(max_length=40)
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="stripe_events"
    )
    stripe_event_id = models.CharField(max_length=255, verbose_name="Stripe event")
    type = models.CharField(max_length=100, db_index=True)
    api_version = models.CharField(max_length=50, blank=True, verbose_name="Stripe API version")
    stripe_created = models.BigIntegerField(
        help_text="Stripe's `created` (Unix seconds): orders events of one object.",
        verbose_name="created at Stripe (Unix time)",
    )
    payload = models.JSONField()
    # Events of one key (the Stripe customer, else the object) are applied one at a time, in Stripe's order.
    ordering_key = models.CharField(max_length=300, default="", verbose_name="applied in turn with")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    # A failed attempt waits until then (retries are scheduled here, not as broker countdowns).
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name="next attempt")
    # Deadlocks and serialization failures met while applying it, each retried at once.
    conflicts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, verbose_name="error of the last attempt")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name="received")
    processing_started_at = models.DateTimeField(null=True, blank=True, verbose_name="processing started")
    processed_at = models.DateTimeField(null=True, blank=True, verbose_name="processed")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        permissions = [
            ("replay_stripeevent", "Can replay Stripe events"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "stripe_event_id"], name="stripe_event_unique_per_account"
            )
        ]
        indexes = [
            models.Index(fields=["status", "updated_at"]),
            # The claim (the due events of one key, oldest first), and the events an object's key names.
            models.Index(fields=["ordering_key", "status", "stripe_created"], name="stripe_event_by_key"),
        ]
        ordering = ["-received_at"]
        verbose_name = "Stripe event"
        verbose_name_plural = "Stripe events"

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_event_id}"

    @property
    def data_object(self) -> dict[str, Any]:
        return dict(self.payload.get("data", {}).get("object") or {})


class StripeWebhookEndpoint(models.Model):
    """Tollgate's endpoint registered at a Stripe account, with its signing secret (encrypted)."""

    id = PublicIdField(prefix="swe")
    account = models.CharField(max_length=40, unique=True)
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    stripe_endpoint_id = models.CharField(max_length=255, verbose_name="Stripe endpoint")
    url = models.URLField(max_length=2000, verbose_name="URL")
    secret = EncryptedTextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="updated")

    class Meta:
        verbose_name = "Stripe webhook endpoint"
        verbose_name_plural = "Stripe webhook endpoints"

    def __str__(self) -> str:
        return f"{self.account} → {self.url}"


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
        ordering = ["-created_at"]
        verbose_name = "webhook endpoint"
        verbose_name_plural = "webhook endpoints"

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events


class EventSequence(models.Model):
    """The last `sequence` handed out per project: events are numbered under this row's lock."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    last = models.BigIntegerField(default=0)

    class Meta:
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
        constraints = [models.UniqueConstraint(fields=["project", "sequence"], name="event_sequence_unique")]
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
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_unique_per_endpoint")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
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
        ordering = ["-attempted_at"]
        verbose_name = "delivery attempt"
        verbose_name_plural = "delivery attempts"

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.attempted_at:%Y-%m-%d %H:%M:%S}"
