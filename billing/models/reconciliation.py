"""Reconciliation runs and the drift they find between Stripe and the mirror."""

from django.db import models

from core.ids import PublicIdField


class ReconciliationRun(models.Model):
    """One comparison of local state with Stripe (and, with fix, its repair)."""

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    id = PublicIdField(prefix="recon")
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    fix = models.BooleanField(default=False)
    dry_run = models.BooleanField(default=False, verbose_name="dry run (nothing written)")
    checked = models.PositiveIntegerField(default=0)
    drift_count = models.PositiveIntegerField(default=0, verbose_name="drift found")
    fixed_count = models.PositiveIntegerField(default=0, verbose_name="repaired")
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True, verbose_name="started")
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name="finished")

    class Meta:
        permissions = [
            ("run_reconciliation", "Can run a reconciliation with Stripe"),
        ]
        ordering = ["-started_at"]
        verbose_name = "reconciliation run"
        verbose_name_plural = "reconciliation runs"

    def __str__(self) -> str:
        return self.id


class Drift(models.Model):
    """A difference between a local row and Stripe found by a reconciliation run."""

    class Kind(models.TextChoices):
        MISSING_LOCALLY = "missing_locally"
        MISSING_IN_STRIPE = "missing_in_stripe"
        MISMATCH = "mismatch"

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="drifts")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    object_type = models.CharField(max_length=40, verbose_name="object")
    stripe_id = models.CharField(max_length=255, verbose_name="Stripe ID")
    local_id = models.CharField(max_length=40, blank=True, verbose_name="ID here")
    field = models.CharField(max_length=60, blank=True)

    class Status(models.TextChoices):
        OPEN = "open"  # found, not repaired (a dry run, or a run without --fix)
        FIXED = "fixed"  # repaired, and the rows re-read afterwards match Stripe
        FAILED = "failed"  # a repair was applied but the rows still differ (see `detail`)
        RESOLVED = "resolved"  # a later complete run no longer found it (repaired by events or another run)

    local_value = models.CharField(max_length=255, blank=True, verbose_name="value here")
    stripe_value = models.CharField(max_length=255, blank=True, verbose_name="value at Stripe")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN, db_index=True)
    detail = models.TextField(blank=True, help_text="What still differed after a failed repair.")
    resolved_at = models.DateTimeField(null=True, blank=True, verbose_name="resolved")

    class Meta:
        verbose_name = "reconciliation drift"
        verbose_name_plural = "reconciliation drifts"

    def __str__(self) -> str:
        return f"{self.kind} {self.object_type} {self.stripe_id} {self.field}"
