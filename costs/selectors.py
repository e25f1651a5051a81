"""Reads of a project's cost tables. Every selector takes the project: another project's table is unknown here."""

from datetime import datetime

from django.db.models import BooleanField, Case, Exists, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from core.errors import NotFound
from costs.models import CostTable
from costs.pricing import CostTableRow, models_rates
from projects.models import Project


def cost_tables(*, project: Project, now: datetime | None = None) -> QuerySet[CostTable]:
    """The project's versions, newest first, each annotated `current`: whether it is the version in force at
    `now` (the latest that has started)."""
    now = now or timezone.now()
    later_started = CostTable.objects.filter(
        project=OuterRef("project"), starts_at__gt=OuterRef("starts_at"), starts_at__lte=now
    )
    return (
        CostTable.objects.filter(project=project)
        .annotate(
            current=Case(
                When(Q(starts_at__lte=now) & ~Exists(later_started), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
        .order_by("-version")
    )


def cost_table_get(*, project: Project, table_id: str, now: datetime | None = None) -> CostTable:
    """One of the project's versions (annotated as `cost_tables` does); 404 for an id of another project."""
    table = cost_tables(project=project, now=now).filter(pk=table_id).first()
    if table is None:
        raise NotFound(f"No such cost table: {table_id!r}.", param="id")
    return table


def cost_table_rows(*, project_id: str) -> list[CostTableRow]:
    """Every version of the project's cost table, ordered by `starts_at` (`costs.pricing.rates_at`'s order),
    read once for a batch of uses."""
    rows = CostTable.objects.filter(project_id=project_id).order_by("starts_at")
    return [
        CostTableRow(version=version, currency=currency, starts_at=starts_at, models=models_rates(models))
        for version, currency, starts_at, models in rows.values_list(
            "version", "currency", "starts_at", "models"
        )
    ]
