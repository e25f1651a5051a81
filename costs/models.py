"""A project's cost tables: what its own product costs it, one immutable version after another."""

from django.db import models

from core.ids import PublicIdField


class CostTable(models.Model):
    """One version of a project's cost table: per model (or any cost dimension the tenant names), a rate for each
    dimension, in micro-units of `currency` (`costs.pricing`). Version n+1 applies from its `starts_at` on, which
    is later than version n's and never in the past when written; a version is never changed or deleted. Written
    only through `costs.services.cost_tables` (audited)."""

    id = PublicIdField(prefix="ctab")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="cost_tables")
    version = models.PositiveIntegerField(help_text="1, 2, 3 … within the project.")
    currency = models.CharField(max_length=3, help_text="Three-letter ISO code, lowercase.")
    starts_at = models.DateTimeField(verbose_name="start", help_text="The version applies from then on.")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="created")
    # Last: from here on, `models` in this class body is this field, not the module.
    models = models.JSONField(
        verbose_name="rates",
        help_text='{"<model>": {"<dimension>": {"micros": m, "per": p}}}: m micro-units of the currency per p units.',
    )

    class Meta:
        db_table = "costs_cost_table"
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="cost_table_version_unique"),
        ]
        verbose_name = "cost table"
        verbose_name_plural = "cost tables"

    def __str__(self) -> str:
        return f"{self.id} (version {self.version})"
