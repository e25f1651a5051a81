"""A new version of a project's cost table. Versions are never changed or deleted, and never retroactive: a new one
starts now or later, and after the latest one, so the cost of what already happened never changes."""

import re
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidRequest
from core.serializers import api_time
from costs.models import CostTable
from costs.pricing import models_stored, parse_models
from projects.models import Project
from projects.versions import project_version_bump

# A start given as "now" by the caller's clock reaches the server a little later: that much is not "the past".
CLOCK_SLACK = timedelta(seconds=1)
CURRENCY = re.compile(r"[a-z]{3}")


def cost_table_create(
    *,
    project: Project,
    actor: Actor,
    currency: str,
    models: Any,
    starts_at: datetime | None = None,
    now: datetime | None = None,
) -> CostTable:
    """The project's next version (the latest's number + 1), applying from `starts_at` (default now) on. 400
    `invalid_parameter` (`currency`; `models`' shape, `costs.pricing.parse_models`), `starts_in_past` (more than
    a second before now), `starts_before_latest` (not after the latest version's start). Audited."""
    now = now or timezone.now()
    starts_at = starts_at or now
    currency = currency.lower() if isinstance(currency, str) else currency
    if not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
        raise InvalidRequest(
            "currency: a three-letter ISO currency code.", code="invalid_parameter", param="currency"
        )
    stored = models_stored(parse_models(models))
    if starts_at < now - CLOCK_SLACK:
        raise InvalidRequest(
            f"starts_at: {api_time(starts_at)} is in the past; a version applies from its start on, never to "
            "what already happened.",
            code="starts_in_past",
            param="starts_at",
        )
    with transaction.atomic(durable=True):
        # The project's row is the lock that numbers its versions: two creates take their turns.
        Project.objects.select_for_update().filter(pk=project.pk).values_list("pk", flat=True).first()
        latest = CostTable.objects.filter(project=project).order_by("-version").first()
        if latest is not None and starts_at <= latest.starts_at:
            raise InvalidRequest(
                f"starts_at: version {latest.version} starts at {api_time(latest.starts_at)}; a new version "
                "starts after it.",
                code="starts_before_latest",
                param="starts_at",
            )
        table = CostTable.objects.create(
            project=project,
            version=1 if latest is None else latest.version + 1,
            currency=currency,
            starts_at=starts_at,
            models=stored,
        )
        audit_record(
            actor=actor,
            action="cost_table.created",
            target=table,
            project=project,
            after={
                "version": table.version,
                "currency": currency,
                "starts_at": api_time(starts_at),
                "models": stored,
            },
        )
        # Local checks price calls by the snapshot's cost tables: every snapshot of the project is dropped.
        project_version_bump(project_id=project.pk)
    return table
