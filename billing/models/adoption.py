"""Adoption runs: an existing Stripe account's customers, catalog, discounts, subscriptions, invoices and
payments read and mirrored into a project (`billing.services.adoption`)."""

from django.db import models
from django.db.models import Q

from core.ids import PublicIdField


class AdoptionRun(models.Model):
    """One adoption (or dry run) of a project's Stripe account: what was asked (the customer key, the product
    mapping), the adoption point (Stripe's clock and newest event when the reads began: events older than it
    describe states the adoption already read) and the report (counts by kind, what was created or updated,
    what was left out and why)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    id = PublicIdField(prefix="adopt")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    dry_run = models.BooleanField(default=False, verbose_name="dry run (nothing written)")
    # {"metadata": "<key>"} or {"field": "email" | "id"}: where a Stripe customer's external id is read.
    customer_key = models.JSONField(default=dict)
    mapping = models.JSONField(default=dict, verbose_name="product mapping")
    requested_by = models.JSONField(default=dict, blank=True)  # the actor: type, id, repr
    # The adoption point: Stripe's clock as of the first read, and the account's newest event then.
    adopted_at = models.DateTimeField(null=True, blank=True, verbose_name="adoption point")
    stripe_marker = models.BigIntegerField(null=True, blank=True, verbose_name="Stripe time (Unix)")
    newest_event_id = models.CharField(max_length=255, blank=True, verbose_name="newest Stripe event")
    newest_event_created = models.BigIntegerField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True)
    stripe_reads = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="requested")
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name="finished")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status__in=["pending", "running"]),
                name="adoption_one_running_per_project",
            )
        ]
        indexes = [models.Index(fields=["project", "created_at"], name="adoption_project_created")]
        permissions = [("run_adoption", "Can adopt a Stripe account into a project")]
        ordering = ["-created_at"]
        verbose_name = "adoption run"
        verbose_name_plural = "adoption runs"

    def __str__(self) -> str:
        return self.id
