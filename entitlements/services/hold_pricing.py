"""A model call's hold, priced by its dimensions: an estimate held before the call (from the prompt's size), the
actual dimensions confirmed after it. Both are turned into the feature's units by its usage formula and priced by
the project's cost table, as a usage event's are (`services.usage_pricing`).

- The estimate is priced when the hold is placed; the hold keeps it (`Hold.dimensions["estimate"]`).
- The confirm is priced at its usage event's time (the hold's creation when its period is over), and its usage
  event carries the dimensions and the cost (`UsageEvent.dimensions`, `cost_micros`), as a recorded one does.
- A call that used more than its estimate held is never cut short of its units: the hold's units become usage and
  the rest (`Hold.overrun`) is recorded as usage beyond it, now, as `POST /usage` would record it (counted,
  billed, paid from credits by a waterfall; never refused by the limit: the call was made), in the confirm's
  transaction.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from catalog.models import Feature
from core.errors import Conflict, InvalidRequest
from entitlements.models import Hold
from entitlements.services.usage import UsageInput, usage_record_batch
from entitlements.services.usage_pricing import UsagePricer
from projects.models import Project


@dataclass(frozen=True)
class Priced:
    """Dimensions made units: `record` is what a usage event stores as its `dimensions` (model, values, the cost
    table's version and currency when one priced them), `cost` its cost in micro-units (None: none priced it)."""

    units: int
    record: dict[str, Any]
    cost: int | None

    def stored(self) -> dict[str, Any]:
        """What a hold keeps of it: the record, its units and its cost."""
        return {**self.record, "units": self.units, "cost_micros": self.cost}


def dimensions_price(
    *,
    project: Project,
    feature: Feature,
    model: str | None,
    dimensions: dict[str, int],
    at: datetime,
    param: str = "",
    pricer: UsagePricer | None = None,
) -> Priced:
    """The units and cost of a call's dimensions for `feature` at `at` (400 as a usage event's, naming the fields
    `model` and `dimensions` under `param`). `pricer`: one made for `feature` already, to price several calls
    with one read of the cost tables."""
    pricer = pricer or UsagePricer(project, {feature.key: feature})
    units, record, cost = pricer.price(
        feature=feature.key, model=model, dimensions=dimensions, at=at, param=param
    )
    return Priced(units, record, cost)


def same_call(stored: dict[str, Any] | None, model: str | None, dimensions: dict[str, int]) -> bool:
    """Whether a stored estimate or confirm (`Hold.dimensions[...]`) named this model and these dimensions."""
    return stored is not None and stored.get("model") == model and stored.get("values") == dimensions


def estimate_units(priced: Priced) -> int:
    """The units an estimate holds: 400 when it comes to none (a hold holds at least one)."""
    if priced.units < 1:
        raise InvalidRequest(
            "dimensions: the estimate comes to 0 units; a hold holds at least one.",
            code="invalid_parameter",
            param="dimensions",
        )
    return priced.units


def confirm_at(hold: Hold, current: bool) -> datetime:
    """When a confirm's call is priced: now while the hold's period is the current one (a test clock's customer:
    the real now, when the call cost what it cost), else at the hold's creation, where its event is stamped."""
    return timezone.now() if current or hold.customer.test_clock_id else hold.created_at


def overrun_record(hold: Hold, units: int) -> None:
    """Records `units` a confirmed call used beyond its hold as a usage event of their own (`{hold.pk}.overrun`,
    `properties.hold` naming the tenant's id), in the caller's transaction, stamped now: units never held are
    usage of the period they are confirmed in (a hold of a period over since, whose grace may be over too, never
    loses them). They count on the hold's entity too, unless it was removed (or is no longer counted) since: then
    on the account only, never refused. An event id already taken (by a tenant's own event) → 409, the confirm
    rolled back, never a confirm whose units are not recorded."""
    event_id = f"{hold.pk}.overrun"

    def record(entity: str | None) -> set[str]:
        return usage_record_batch(
            project=hold.project,
            events=[
                UsageInput(
                    event_id,
                    hold.customer.external_id,
                    hold.feature.key,
                    units,
                    None,
                    {"hold": hold.hold_id, "overrun": True},
                    entity,
                )
            ],
            single=True,
        )[2]

    try:  # the entity is checked before anything is written: a refusal leaves the transaction as it was
        inserted = record(hold.entity or None)
    except InvalidRequest as refused:
        if not hold.entity or refused.code not in ("unknown_entity", "entity_not_counted"):
            raise
        inserted = record(None)
    if event_id not in inserted:
        raise Conflict(
            f"id {event_id!r}: a usage event of the project has it already; the call's units beyond the hold "
            "cannot be recorded under it.",
            code="idempotency_id_reused",
            param="id",
        )
