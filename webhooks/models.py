"""The inbound Stripe event inbox: every verified delivery stored once, then processed by workers."""

from typing import Any

from django.db import models

from core.crypto import EncryptedTextField
from core.ids import PublicIdField

PLATFORM_ACCOUNT = "platform"


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
    stripe_event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100, db_index=True)
    api_version = models.CharField(max_length=50, blank=True)
    stripe_created = models.BigIntegerField(
        help_text="Stripe's `created` (Unix seconds): orders events of one object."
    )
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "stripe_event_id"], name="stripe_event_unique_per_account"
            )
        ]
        indexes = [models.Index(fields=["status", "updated_at"])]
        ordering = ["-received_at"]

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
    stripe_endpoint_id = models.CharField(max_length=255)
    url = models.URLField(max_length=2000)
    secret = EncryptedTextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.account} → {self.url}"
