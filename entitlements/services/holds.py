"""Holds (reservations): units of a metered, credits or allocation feature set aside for a customer before the
work that uses them, then confirmed (the same or fewer units become usage), released, or expired.

- `hold_place` takes the units the way a consume would, under the same limit and in the same statement shape (a
  counter's conditional `UPDATE`, or credit lots under row locks), and marks them held: a counter's `held`, or
  ledger entries `hold` on the lots they came from. Idempotent by the tenant's id: the same id again answers the
  stored hold; another customer, feature or quantity under it → 409.
- Every ending (`hold_confirm`, `hold_release`, `holds_expire`) is one conditional `UPDATE … WHERE status =
  'active'` of the hold in the transaction that gives its units back, so exactly one ending wins, once, whatever
  races it: a confirm against the sweep, two releases, a retry after a lost answer.
- A confirm records one usage event (`event_id` = the hold's own id; `properties.hold` = the tenant's id), which
  a Stripe meter then bills like any consume; a metered hold's units stay in the period it was placed in.
- A hold past `expires_at` (on a test clock's customer's clock) is over: the sweep (`services.hold_sweep`) ends
  it, or a confirm or release that finds it first. A hold naming an entity takes and gives back its units there too.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Feature
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidRequest, NotFound
from core.wording import with_article
from customers.selectors import customer_now
from entitlements import cache as ent_cache
from entitlements import resolver, usage_read
from entitlements.entities import entity_for_use, entity_judged, entity_usage
from entitlements.models import CreditLedgerEntry, Hold
from entitlements.selectors import feature_answer
from entitlements.services.account_caps import account_cap_judge
from entitlements.services.consume import (
    _credits_spend,
    _Denied,
    _structure_for_consume,
)
from entitlements.services.counters import (
    _allocation_move,
    _counter_take,
    counted_cap,
)
from entitlements.services.customers import customers_ensure
from entitlements.services.entities import entity_hold
from entitlements.services.hold_ending import _end, _stamp
from entitlements.services.hold_pricing import (
    Priced,
    confirm_at,
    dimensions_price,
    estimate_units,
    same_call,
)
from entitlements.services.usage import _thresholds
from entitlements.services.waterfall import waterfall_take
from entitlements.services.windows import windows_hold
from entitlements.snapshot import FeatureEntry, StructureSnapshot, judged_at
from projects.models import Project

MAX_HOLD_SECONDS = 24 * 3600
DEFAULT_HOLD_SECONDS = 600
HOLDABLE = (Feature.Type.METERED, Feature.Type.CREDITS, Feature.Type.ALLOCATION)


@dataclass(frozen=True)
class HoldOutcome:
    """What a hold operation did: the hold (None when a new hold was refused), the feature's answer after it,
    and whether this call repeated one already done (`duplicate`)."""

    allowed: bool
    hold: Hold | None
    entitlement: dict[str, Any]
    duplicate: bool = False


class _Refused(Exception):
    """Rolls back a hold the limit or balance refused."""


def hold_place(
    *,
    project: Project,
    hold_id: str,
    external_id: str,
    feature_key: str,
    quantity: int | None,
    expires_in: int = DEFAULT_HOLD_SECONDS,
    read_ahead: dict[str, Any] | None = None,
    entity: str | None = None,
    model: str | None = None,
    dimensions: dict[str, int] | None = None,
) -> HoldOutcome:
    """Sets `quantity` units aside for `expires_in` seconds (≤ 24 h), if the limit or balance allows them all
    (and the `entity`'s own limit, naming one); refused → nothing recorded, `allowed: false`. A model call's
    estimate gives its `model` and `dimensions` instead: the units the feature's formula makes of them now."""
    if "/" in hold_id:
        raise InvalidRequest(
            "id: a hold id is part of URLs; it has no '/'.", code="invalid_parameter", param="id"
        )
    if not 1 <= expires_in <= MAX_HOLD_SECONDS:
        raise InvalidRequest(
            f"expires_in: between 1 and {MAX_HOLD_SECONDS} seconds.",
            code="invalid_parameter",
            param="expires_in",
        )
    structure, customer_id, entry = _structure_for_consume(project, external_id, feature_key, read_ahead)
    kind = entry["type"]
    if kind not in HOLDABLE:
        raise InvalidRequest(
            f"feature: {feature_key!r} is {with_article(kind)} feature; only metered, credits and allocation features are "
            "held.",
            code="feature_not_holdable",
            param="feature",
        )
    call = (model, dimensions) if dimensions is not None else None
    stored = _stored(project, hold_id)
    if stored is not None:  # a retry is answered with its hold, even once the entity it names is removed
        return _repeated(stored, external_id, entry["id"], quantity, entity or "", call)
    estimate: Priced | None = None
    if dimensions is not None:  # priced once, when placed: a retry compares the call, not its price now
        feature = Feature.objects.get(pk=entry["id"])
        estimate = dimensions_price(
            project=project, feature=feature, model=model, dimensions=dimensions, at=timezone.now()
        )
        quantity = estimate_units(estimate)
    assert quantity is not None
    if entity:
        entity_for_use(customer_id=customer_id, feature_key=feature_key, entry=entry, entity_id=entity)
    refused = (not entry["enabled"] and kind != Feature.Type.CREDITS) or entry["revoked"]
    if customer_id is None:
        if (
            refused or kind == Feature.Type.CREDITS
        ):  # an unknown user has no credits: refused, nothing written
            return _refused(project, external_id, None, feature_key, quantity, entity)
        customer_id = customers_ensure(project=project, external_ids=[external_id])[external_id]
    now = judged_at(structure, timezone.now())  # a test clock's customer lives at the clock's time
    period = resolver.period_from_snapshot(entry) if kind == Feature.Type.METERED else None
    hold = Hold(
        project=project,
        customer_id=customer_id,
        feature_id=entry["id"],
        hold_id=hold_id,
        quantity=quantity,
        period_start=period.start if period else None,
        entity=entity or "",
        dimensions={"estimate": estimate.stored()} if estimate is not None else None,
        expires_at=now + timedelta(seconds=expires_in),
        created_at=now,
    )
    try:
        with transaction.atomic():
            hold.save(force_insert=True)
            if refused:
                raise _Refused
            _take(project, hold, external_id, feature_key, entry, period, structure)
            ent_cache.usage_changed(project_id=project.pk, external_ids=[external_id])
    except _Refused:
        return _refused(project, external_id, customer_id, feature_key, quantity, entity)
    except IntegrityError:  # the same id placed concurrently: the first one stands
        stored = _stored(project, hold_id)
        if stored is None:
            raise
        return _repeated(stored, external_id, entry["id"], quantity, entity or "", call)
    return _outcome(hold, duplicate=False)


def _take(
    project: Project,
    hold: Hold,
    external_id: str,
    feature_key: str,
    entry: FeatureEntry,
    period: resolver.Period | None,
    structure: StructureSnapshot,
) -> None:
    """Takes the hold's units under the limit (raises _Refused), marking them held: a credits waterfall's
    through its steps (`services.waterfall`), the credits it spends held on their lots as a credits hold's."""
    if period is not None:
        given = entry
        entry, judged = account_cap_judge(
            customer_id=hold.customer_id, structure=structure, key=feature_key, entry=entry
        )
        if "credits" in entry:
            steps = waterfall_take(
                project=project,
                customer_id=hold.customer_id,
                external_id=external_id,
                structure=structure,
                entry=entry,
                period_start=period.start,
                period_end=period.end,
                quantity=hold.quantity,
                reference=hold.hold_id,
                ledger_type=CreditLedgerEntry.Type.HOLD,
                hold=True,
                now=hold.created_at,
                entity=hold.entity or None,
            )
            if steps is None:
                raise _Refused
            if steps.credits:
                paid_with = structure["features"][entry["credits"]["feature"]]["id"]
                cost = int(entry["credits"]["cost"])
                Hold.objects.filter(pk=hold.pk).update(
                    covered=steps.credits, lots=steps.takes, paid_with_id=paid_with, credit_cost=cost
                )
                hold.covered, hold.lots, hold.paid_with_id, hold.credit_cost = (
                    steps.credits,
                    steps.takes,
                    paid_with,
                    cost,
                )
            counted = (steps.own_before, steps.used - steps.covered)
        else:
            taken = _counter_take(
                project_id=project.pk,
                customer_id=hold.customer_id,
                feature_id=hold.feature_id,
                period=period,
                quantity=hold.quantity,
                limit=counted_cap(entry),
                hold=True,
            )
            if taken is None:
                raise _Refused
            counted = (taken[0] - hold.quantity, taken[0])
        if entry.get("windows") and not windows_hold(project, hold, external_id, feature_key, entry):
            raise _Refused
        if hold.entity and not entity_hold(project, hold, external_id, feature_key, entry, period):
            raise _Refused
        _thresholds(project, hold.customer_id, external_id, feature_key, given, *counted, judged=judged)
    elif entry["type"] == Feature.Type.ALLOCATION:
        moved = _allocation_move(
            project_id=project.pk,
            customer_id=hold.customer_id,
            feature_id=hold.feature_id,
            delta=hold.quantity,
            limit=entry["limit"],
            held=hold.quantity,
        )
        if moved is None:
            raise _Refused
    else:
        try:
            _, takes = _credits_spend(
                project=project,
                customer_id=hold.customer_id,
                external_id=external_id,
                feature_key=feature_key,
                entry=entry,
                quantity=hold.quantity,
                reference=hold.hold_id,
                ledger_type=CreditLedgerEntry.Type.HOLD,
                now=hold.created_at,
                entity=hold.entity or None,
            )
        except _Denied:
            raise _Refused from None
        Hold.objects.filter(pk=hold.pk).update(lots=takes)
        hold.lots = takes


def hold_confirm(
    *,
    project: Project,
    hold_id: str,
    quantity: int | None = None,
    model: str | None = None,
    dimensions: dict[str, int] | None = None,
) -> HoldOutcome:
    """Turns the hold into usage of `quantity` units (default: all it holds; 0 confirms none) and gives the rest
    back; a model call's actual `model` and `dimensions` instead: `_confirm_call`. The same confirm again answers
    the confirmed hold; any other call on an ended hold → 409."""
    hold = _hold_get(project, hold_id)
    if dimensions is not None:
        return _confirm_call(hold, model, dimensions)
    taken = hold.quantity if quantity is None else quantity
    if taken > hold.quantity:
        raise InvalidRequest(
            f"quantity: the hold holds {hold.quantity} units; a confirm takes at most that.",
            code="confirm_exceeds_hold",
            param="quantity",
        )
    if taken < hold.consumed:
        raise InvalidRequest(
            f"quantity: {hold.consumed} units were reported against the hold already; a confirm keeps at least "
            "that.",
            code="confirm_below_reported",
            param="quantity",
        )
    if _end(hold, Hold.Status.CONFIRMED, confirmed=taken):
        return _outcome(hold, duplicate=False)
    if hold.status == Hold.Status.CONFIRMED and hold.confirmed == taken:
        return _outcome(hold, duplicate=True)
    raise _ended(hold)


def _confirm_call(hold: Hold, model: str | None, dimensions: dict[str, int]) -> HoldOutcome:
    """Confirms a model call by what it used: the units its dimensions come to now (`services.hold_pricing`), at
    most the hold's kept as its usage, the rest given back, or more recorded beyond it (`overrun`). A hold with
    usage reported against it is confirmed by `quantity` (the reports carry their own dimensions): 400, checked
    under the hold's row lock (`_end`), so a report racing the confirm is never absorbed by it."""

    def repeated() -> HoldOutcome:
        if hold.status == Hold.Status.CONFIRMED and same_call(
            (hold.dimensions or {}).get("confirmed"), model, dimensions
        ):
            return _outcome(hold, duplicate=True)
        raise _ended(hold)

    if hold.status != Hold.Status.ACTIVE:
        return repeated()
    current = _stamp(hold)[2]
    priced = dimensions_price(
        project=hold.project,
        feature=hold.feature,
        model=model,
        dimensions=dimensions,
        at=confirm_at(hold, current),
    )
    kept = min(priced.units, hold.quantity)
    if _end(hold, Hold.Status.CONFIRMED, confirmed=kept, call=priced):
        return _outcome(hold, duplicate=False)
    return repeated()


def hold_release(
    *, project: Project, hold_id: str, actor: Actor | None = None, reason: str = ""
) -> HoldOutcome:
    """Gives every unit of the hold back (an operator's release is audited with `actor` and `reason`). The same
    release again answers the released hold; a release of a confirmed or expired hold → 409."""
    hold = _hold_get(project, hold_id)

    def audit() -> None:
        if actor is not None:
            audit_record(
                actor=actor,
                action="entitlement.hold_released",
                target=hold,
                project=project,
                reason=reason,
                before={"status": Hold.Status.ACTIVE},
                after={"status": Hold.Status.RELEASED, "hold": hold.hold_id, "quantity": hold.quantity},
            )

    if _end(hold, Hold.Status.RELEASED, audit=audit):
        return _outcome(hold, duplicate=False)
    if hold.status == Hold.Status.RELEASED:
        return _outcome(hold, duplicate=True)
    raise _ended(hold)


def hold_get(*, project: Project, hold_id: str) -> HoldOutcome:
    """The hold and its feature's answer now (an expired hold the sweep has not reached yet is ended first)."""
    hold = _hold_get(project, hold_id)
    return _outcome(hold, duplicate=False)


# --- reading and answering ----------------------------------------------------------------------------------


def _stored(project: Project, hold_id: str) -> Hold | None:
    return (
        Hold.objects.select_related("customer__test_clock", "feature", "project")
        .filter(project=project, hold_id=hold_id)
        .first()
    )


def _hold_get(project: Project, hold_id: str) -> Hold:
    hold = _stored(project, hold_id)
    if hold is None:
        raise NotFound(f"No such hold: {hold_id!r}.", param="id")
    if hold.status == Hold.Status.ACTIVE and hold.expires_at <= customer_now(customer=hold.customer):
        _end(hold, Hold.Status.EXPIRED)
    return hold


def _repeated(
    stored: Hold,
    external_id: str,
    feature_id: str,
    quantity: int | None,
    entity: str = "",
    call: tuple[str | None, dict[str, int]] | None = None,
) -> HoldOutcome:
    """A place with an id used before: the stored hold if it named the same thing (one past its expiry ended first,
    as every other way of reaching it does: `_hold_get`), else 409. A model call's estimate is the same if it
    named the same model and dimensions, whatever they would cost now."""
    estimate = (stored.dimensions or {}).get("estimate")
    named = (stored.customer.external_id, stored.feature_id, stored.entity)
    same = estimate is None and stored.quantity == quantity if call is None else same_call(estimate, *call)
    if named != (external_id, feature_id, entity) or not same:
        raise Conflict(
            f"id {stored.hold_id!r} was already used for another hold.",
            code="idempotency_id_reused",
            param="id",
        )
    if stored.status == Hold.Status.ACTIVE and stored.expires_at <= customer_now(customer=stored.customer):
        _end(stored, Hold.Status.EXPIRED)
    return _outcome(stored, duplicate=True)


def _refused(
    project: Project,
    external_id: str,
    customer_id: str | None,
    feature_key: str,
    quantity: int,
    entity: str | None,
) -> HoldOutcome:
    """A hold refused: nothing recorded; the answer is the check for the quantity asked."""
    answer = _answer(project, external_id, customer_id, feature_key, quantity, entity)
    answer["allowed"] = False
    return HoldOutcome(False, None, answer)


def _outcome(hold: Hold, *, duplicate: bool) -> HoldOutcome:
    """The hold and its feature's check now (for one more unit)."""
    answer = _answer(
        hold.project, hold.customer.external_id, hold.customer_id, hold.feature.key, 1, hold.entity
    )
    return HoldOutcome(True, hold, answer, duplicate=duplicate)


def _answer(
    project: Project,
    external_id: str,
    customer_id: str | None,
    feature_key: str,
    quantity: int,
    entity: str | None = None,
) -> dict[str, Any]:
    """The check's answer with usage read from the database now (the entity's too, naming one): the cached usage
    is replaced only once the hold's transaction commits, which may be after this answer."""
    structure = ent_cache.snapshot_get(project=project, external_id=external_id, with_usage=False).structure
    usage = usage_read.resolve_usage(customer_id=customer_id, structure=structure, now=timezone.now())
    entry = structure["features"][feature_key]
    usage = entity_usage(usage, structure, entry, entity, structure.get("clock_time"))
    answer = feature_answer(feature_key, entry, usage, quantity, structure.get("clock_time"))
    del answer["sources"], answer["resets_at"]
    if not entity:  # None, or a hold's "" (it named none)
        return answer
    return entity_judged(answer, entry, str(customer_id), entity, quantity, structure.get("clock_time"))


def _ended(hold: Hold) -> Conflict:
    return Conflict(
        f"hold {hold.hold_id!r} is {hold.status}; it cannot change any more.",
        code=f"hold_{hold.status}",
        param="id",
    )
