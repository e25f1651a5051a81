"""Reads of entitlements for the API, admin and other apps. Every selector takes the project.

`entitlement_check` and `entitlements_list` answer from the cached snapshot (`entitlements.cache`): no SQL
when warm. A customer the project has never seen gets the default product's answer.
"""

import functools
import time
from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet
from prometheus_client import Counter

from catalog.models import Feature, Price
from catalog.pricing import price_amount, terms_amount
from catalog.selectors import feature_by_key
from core.errors import InvalidRequest, NotFound
from core.wording import with_article
from customers.models import Customer
from customers.selectors import customer_find
from entitlements import history, statements
from entitlements.account_cap import (
    account_cap_answer,
    account_limit,
    cap_bound,
    feature_cap_bound,
)
from entitlements.cache import Snapshot, snapshot_get
from entitlements.entities import (
    credit_balances,
    entity_apply,
    entity_credits_apply,
    entity_for_use,
    entity_judged,
    entity_usage,
    waterfall_entity,
)
from entitlements.models import (
    AutoRecharge,
    CreditLedgerEntry,
    CreditLot,
    EntitlementSettings,
    Entity,
    Grant,
    Hold,
    PlanCreditSlice,
    Revocation,
    SpendCap,
    SubscriptionSource,
    UsageCorrection,
    UsageEvent,
    UsageMeterTotal,
    UsageThreshold,
)
from entitlements.resolver import iso_epoch, settings_for
from entitlements.snapshot import FeatureEntry, StructureSnapshot, UsageCounts
from entitlements.waterfall import hold_paid_held, waterfall_answer
from entitlements.windows import retry_after, windows_answer
from projects.models import Project


def feature_answer(
    key: str, entry: FeatureEntry, usage: UsageCounts, quantity: int = 1, now: float | None = None
) -> dict[str, Any]:
    """One feature's answer: `{allowed, feature, type, enabled, value, limit, used, remaining, balance, held,
    overage, windows, binding, retry_after, …}`. Held units (`services.holds`) count against the limit but are
    not `used`; held credits are out of the balance. A metered feature whose limit allows overage allows any use,
    and its `remaining` goes below 0 as use passes the limit; its usage windows (`entitlements.windows`, judged at
    `now`, Unix seconds, default the clock's) refuse what does not fit them whatever the overage. A refused
    metered answer names what refuses it (`binding`: the period or a window, the one freeing up last) and the
    seconds until it frees up (`retry_after`; null when it never will within that window or period)."""
    kind = entry["type"]
    enabled = entry["enabled"]
    limit = entry["limit"]
    used: int | None = None
    remaining: int | None = None
    balance: int | None = None
    held: int | None = None
    resets_at = None
    overage: str | None = None
    windows: list[dict[str, Any]] = []
    binding: str | None = None
    wait: int | None = None
    cap: dict[str, Any] | None = None
    account: dict[str, Any] | None = None
    waterfall: dict[str, Any] | None = None
    step: str | None = None
    if kind == Feature.Type.METERED or kind == Feature.Type.ALLOCATION:
        held = usage["held"].get(key, 0)
        counted = (usage["used"] if kind == Feature.Type.METERED else usage["in_use"]).get(key, 0)
        used = counted - held
        past = entry.get("overage", False)
        # The units the limit and the cap are judged against: a credits waterfall's paid units are not theirs.
        own = counted - usage.get("covered", {}).get(key, 0) if kind == Feature.Type.METERED else counted
        remaining = None if limit is None else (limit - own if past else max(limit - own, 0))
        allowed = enabled and (limit is None or past or counted + quantity <= limit)
        if kind == Feature.Type.METERED:
            resets_at = iso_epoch(entry["period_end"])
            overage = "allowed" if past else "blocked"
            feature_bound = feature_cap_bound(entry)
            if "account_cap" in entry:
                account = account_cap_answer(entry, key, usage, own)
                bound = account_limit(entry, key, usage)
                if bound is not None:
                    entry = entry.copy()
                    entry["account_limit"] = bound
            waterfall, step, fits = waterfall_answer(key, entry, usage, quantity, counted)
            allowed = enabled and fits
            step = step if allowed else None
            capped = entry.get("cap")
            if capped is not None:
                cap = cap_answer(capped, entry["limit"], own)
            bound = cap_bound(entry)
            # With overage, or without a limit, only a cap refuses.
            if enabled and (past or limit is None) and not fits and bound is not None:
                binding = "cap" if feature_bound == bound else "account_cap"
                wait = retry_after(entry["period_end"], time.time() if now is None else now)
            if enabled and binding is None and (not allowed or "windows" in entry):
                windows, binding, wait = _binding(entry, usage, key, quantity, allowed, now)
                allowed = allowed and binding is None
                step = step if allowed else None
            elif "windows" in entry:  # a cap refuses: the windows are listed all the same
                windows = _binding(entry, usage, key, quantity, allowed, now)[0]
    elif kind == Feature.Type.CREDITS:
        held = usage["held"].get(key, 0)
        balance = usage["balance"].get(key, 0)
        remaining = balance
        enabled = not entry["revoked"] and balance > 0
        allowed = not entry["revoked"] and balance >= quantity
    else:
        allowed = enabled
    return {
        "allowed": allowed,
        "feature": key,
        "type": kind,
        "enabled": enabled,
        "value": entry["value"],
        "limit": limit,
        "used": used,
        "remaining": remaining,
        "balance": balance,
        "held": held,
        "overage": overage,
        "cap": cap,
        "account_cap": account,
        "credits": waterfall,
        "step": step,
        "windows": windows,
        "binding": binding,
        "retry_after": wait,
        "resets_at": resets_at,
        "sources": entry["sources"],
    }


def cap_answer(cap: dict[str, Any], limit: int | None, counted: int) -> dict[str, Any]:
    """A spend cap as answers show it: what it allows past the limit (`units`, or `amount` in the metered price's
    `currency`), what happens there (`at_cap`), and how much of it is used and left in units and in money (the
    money is what the metered price bills for the period's use, 0 without one)."""
    price = cap.get("price")
    billed = terms_amount(price, counted) if price else 0
    total = cap["limit"]
    return {
        "at_cap": cap["at_cap"],
        "set_by": cap["set_by"],
        "units": cap.get("units"),
        "amount": cap.get("amount"),
        "currency": cap.get("currency"),
        "used_units": max(counted - int(limit or 0), 0),
        "used_amount": billed,
        "left_units": None if total is None else max(total - counted, 0),
        "left_amount": None if cap.get("amount") is None else max(int(cap["amount"]) - billed, 0),
    }


def _binding(
    entry: FeatureEntry, usage: UsageCounts, key: str, quantity: int, fits_period: bool, now: float | None
) -> tuple[list[dict[str, Any]], str | None, int | None]:
    """A metered feature's windows' answers, and what refuses `quantity` (the period, a window) with the seconds
    until it frees up: of several, the one freeing up last."""
    at = time.time() if now is None else now
    answers, binding, frees = windows_answer(
        entry.get("windows", []), usage.get("windows", {}).get(key, {}), quantity, at
    )
    if not fits_period:
        period_frees = entry["period_end"] if quantity <= (entry["limit"] or 0) else None
        if binding is None or (frees is not None and (period_frees is None or period_frees >= frees)):
            binding, frees = "period", period_frees
    return answers, binding, retry_after(frees, at) if binding is not None else None


def snapshot_entry(snapshot: Snapshot, feature_key: str, *, param: str = "feature") -> FeatureEntry:
    entry = snapshot.structure["features"].get(feature_key)
    if entry is None:
        raise NotFound(f"No such feature: {feature_key!r}.", param=param)
    return entry.copy()  # a shallow copy, as dict(entry) was: the caller may add to it


# Counted in process (django-prometheus' registry; set PROMETHEUS_MULTIPROC_DIR to sum gunicorn's workers): the
# hit ratio is hit / (hit + miss).
CHECKS = Counter(
    "tollgate_entitlement_checks",
    "Entitlement checks, by whether the answer came from the cached snapshot without SQL.",
    ["cache"],
)


@functools.cache
def _check_counted(cached: bool) -> Any:
    """The counter child of a check's label (looked up once per process: `labels()` costs a lock and a dict)."""
    return CHECKS.labels(cache="hit" if cached else "miss")


def entitlement_check(
    *,
    project: Project,
    external_id: str,
    feature_key: str,
    quantity: int = 1,
    read_ahead: dict[str, Any] | None = None,
    as_of: datetime | None = None,
    entity: str | None = None,
) -> dict[str, Any]:
    """Whether `quantity` more of the feature fits now, from the cached snapshot — or, given `as_of`, whether it
    did then (`entitlements.history`, from the database: never cached). `entity`: one of the customer's
    entities, judged against its own limit as well (`entitlements.entities`; read from the database)."""
    if entity is not None and as_of is not None:
        return _entity_check_at(project, external_id, feature_key, quantity, as_of, entity)
    if entity is not None:
        snapshot = snapshot_get(project=project, external_id=external_id, read_ahead=read_ahead)
        entry = snapshot_entry(snapshot, feature_key)
        customer_id = snapshot.structure["customer_id"]
        entity_for_use(customer_id=customer_id, feature_key=feature_key, entry=entry, entity_id=entity)
        clock = snapshot.structure.get("clock_time")
        usage = entity_usage(snapshot.usage, snapshot.structure, entry, entity, clock)
        answer = feature_answer(feature_key, entry, usage, quantity, clock)
        del answer["sources"], answer["resets_at"]
        return entity_judged(
            answer, entry, str(customer_id), entity, quantity, snapshot.structure.get("clock_time")
        )
    if as_of is not None:
        structure, usage = history.snapshot_at(project=project, external_id=external_id, at=as_of)
        found = structure["features"].get(feature_key)
        if found is None:
            raise NotFound(f"No such feature: {feature_key!r}.", param="feature")
        answer = feature_answer(feature_key, found, usage, quantity, as_of.timestamp())
        del answer["sources"], answer["resets_at"]
        return answer
    snapshot = snapshot_get(project=project, external_id=external_id, read_ahead=read_ahead)
    _check_counted(snapshot.cached).inc()
    entry = snapshot_entry(snapshot, feature_key)
    answer = feature_answer(
        feature_key, entry, snapshot.usage, quantity, snapshot.structure.get("clock_time")
    )
    del answer["sources"], answer["resets_at"]
    return answer


def _entity_check_at(
    project: Project, external_id: str, feature_key: str, quantity: int, as_of: datetime, entity: str
) -> dict[str, Any]:
    """The check naming an entity as of a past moment: the account's answer then, judged for the entity's use
    then (`history.entity_used_at`); 400 as now for an entity the customer did not have then, or a feature
    without a limit per entity."""
    structure, usage = history.snapshot_at(project=project, external_id=external_id, at=as_of)
    found = structure["features"].get(feature_key)
    if found is None:
        raise NotFound(f"No such feature: {feature_key!r}.", param="feature")
    customer_id = usage["customer_id"]
    per_entity = found.get("per_entity") or found.get("entity_credits")
    if per_entity is None or not history.entity_live_at(
        customer_id=customer_id, per_entity_feature=per_entity["feature"], entity_id=entity, at=as_of
    ):
        entity_for_use(customer_id=None, feature_key=feature_key, entry=found, entity_id=entity)  # raises
    if paying := waterfall_entity(structure, found, entity):  # its own credits pay its waterfall first
        key = found["credits"]["feature"]
        own = history.entity_balance_at(
            customer_id=str(customer_id),
            feature_id=structure["features"][key]["id"],
            entity_id=paying,
            at=as_of,
        )
        usage = entity_usage(usage, structure, found, entity, own=own)
    answer = feature_answer(feature_key, found, usage, quantity, as_of.timestamp())
    del answer["sources"], answer["resets_at"]
    if "entity_credits" in found:
        own = history.entity_balance_at(
            customer_id=str(customer_id), feature_id=found["id"], entity_id=entity, at=as_of
        )
        account = int(answer["balance"] or 0)
        return entity_credits_apply(answer, found, entity, {"": account, entity: own}, quantity)
    used = history.entity_used_at(customer_id=str(customer_id), entry=found, entity_id=entity, at=as_of)
    counted = history.entity_windows_at(customer_id=str(customer_id), entry=found, entity_id=entity, at=as_of)
    return entity_apply(answer, found, entity, used, quantity, as_of.timestamp(), counted)


def entitlements_list(*, project: Project, external_id: str, as_of: datetime | None = None) -> dict[str, Any]:
    if as_of is not None:
        return entitlements_body(
            external_id, *history.snapshot_at(project=project, external_id=external_id, at=as_of)
        )
    snapshot = snapshot_get(project=project, external_id=external_id)
    return entitlements_body(external_id, snapshot.structure, snapshot.usage)


def entitlements_body(external_id: str, structure: StructureSnapshot, usage: UsageCounts) -> dict[str, Any]:
    rows = []
    now = structure.get("clock_time")
    for key, entry in structure["features"].items():
        answer = feature_answer(key, entry, usage, now=now)
        del answer["allowed"]
        rows.append(answer)
    return {"customer": external_id, "entitlements": rows}


def grant_get(*, project: Project, grant_id: str) -> Grant:
    grant = (
        Grant.objects.filter(project=project, pk=grant_id, deleted_at__isnull=True)
        .select_related("customer", "feature", "project")
        .first()
    )
    if grant is None:
        raise NotFound(f"No such grant: {grant_id!r}.")
    return grant


def usage_correction_get(*, project: Project, correction_id: str) -> UsageCorrection:
    """A usage correction by the tenant's id; 404 for none of the project's (Tollgate's own `allowance`
    corrections are not the tenant's)."""
    correction = (
        UsageCorrection.objects.filter(project=project, correction_id=correction_id)
        .exclude(action=UsageCorrection.Action.ALLOWANCE)
        .select_related("customer", "feature", "credits_feature")
        .first()
    )
    if correction is None:
        raise NotFound(f"No such usage correction: {correction_id!r}.")
    return correction


def hold_exists(*, project: Project, hold_id: str) -> None:
    """404 unless the project has a hold by this id (the tenant's)."""
    if not Hold.objects.filter(project=project, hold_id=hold_id).exists():
        raise NotFound(f"No such hold: {hold_id!r}.", param="id")


def usage_thresholds(*, project: Project, external_id: str) -> QuerySet[UsageThreshold]:
    """A customer's own usage thresholds, oldest first (none for a user the project has never seen)."""
    return (
        UsageThreshold.objects.select_related("customer", "feature")
        .filter(project=project, customer__external_id=external_id)
        .order_by("created_at", "pk")
    )


def spend_caps(*, project: Project, external_id: str | None = None) -> QuerySet[SpendCap]:
    """The project's customers' own spend caps (a customer's, given `external_id`), oldest first."""
    rows = SpendCap.objects.select_related("customer", "feature").filter(project=project)
    if external_id is not None:
        rows = rows.filter(customer__external_id=external_id)
    return rows.order_by("created_at", "pk")


def auto_recharges(*, project: Project, external_id: str | None = None) -> QuerySet[AutoRecharge]:
    """The project's auto-recharges (a customer's, given `external_id`), oldest first."""
    rows = AutoRecharge.objects.select_related("customer", "feature", "price").filter(project=project)
    if external_id is not None:
        rows = rows.filter(customer__external_id=external_id)
    return rows.order_by("created_at", "pk")


def auto_recharge_get(*, project: Project, recharge_id: str) -> AutoRecharge:
    recharge = auto_recharges(project=project).filter(pk=recharge_id).first()
    if recharge is None:
        raise NotFound(f"No such auto-recharge: {recharge_id!r}.", param="id")
    return recharge


def revocation_get(*, project: Project, revocation_id: str) -> Revocation:
    revocation = (
        Revocation.objects.filter(project=project, pk=revocation_id, deleted_at__isnull=True)
        .select_related("customer", "feature", "project")
        .first()
    )
    if revocation is None:
        raise NotFound(f"No such revocation: {revocation_id!r}.")
    return revocation


def credit_lots(
    *, project: Project, customer: Customer, feature: Feature, entity: str = ""
) -> QuerySet[CreditLot]:
    """The lots the account holds (`entity` ""), or that entity, oldest first."""
    return CreditLot.objects.filter(
        CreditLot.owned_by(entity), project=project, customer=customer, feature=feature
    ).order_by("created_at")


def credit_balance(
    *, customer_id: str, feature_id: str, now: datetime | None = None, entity: str = ""
) -> int:
    """The credits the customer can spend now (`now`: a test clock's customer's `customer_now`): their lots
    neither taken back nor expired, what remains of them (held credits are already out of the lots); the
    account's, or the entity's own (`entity`)."""
    return credit_balances(customer_id, feature_id, now).get(entity, 0)


def credit_slices_scheduled(
    *, project: Project, customer: Customer, feature: Feature, entity: str = ""
) -> list[PlanCreditSlice]:
    """The plan credits still to come to the customer, soonest first: the slices of paid periods whose month or
    week has not been granted yet, and will be unless the subscription ends or the period is refunded first — the
    account's (those giving it some), or naming a live `entity`, those giving each entity some."""
    pending = PlanCreditSlice.objects.filter(
        project=project, customer=customer, feature=feature, granted_at__isnull=True, stopped_at__isnull=True
    )
    if entity:
        if not Entity.objects.filter(customer=customer, external_id=entity, removed_at__isnull=True).exists():
            return []
        pending = pending.filter(entity_amount__gt=0)
    else:
        pending = pending.exclude(amount=0, entity_amount__gt=0)
    return list(pending.select_related("plan_period").order_by("starts_at", "pk"))


def credit_ledger(
    *, project: Project, customer: Customer, feature: Feature, limit: int = 100, entity: str = ""
) -> list[CreditLedgerEntry]:
    """The latest movements, newest first: of every lot of the customer's, or (`entity`) of the lots the entity
    holds (`CreditLot.owned_by`: not those its earlier removal returned to the account)."""
    entries = CreditLedgerEntry.objects.filter(project=project, customer=customer, feature=feature)
    if entity:
        entries = entries.filter(lot__entity=entity, lot__returned_at__isnull=True)
    return list(entries.order_by("-created_at", "-pk")[:limit])


def entitlement_settings_get(*, project: Project) -> EntitlementSettings:
    """The project's entitlement settings (the defaults when it never changed them)."""
    return settings_for(project)


def metered_price_of(*, customer: Customer, feature_id: str) -> Price | None:
    """The metered price that bills `feature`'s Stripe meter on an item of one of the customer's live
    subscriptions (the newest), or None: then the usage is counted but billed to nobody."""
    held = [
        item["price"]
        for items in SubscriptionSource.objects.filter(
            customer=customer, status__in=SubscriptionSource.LIVE_STATUSES
        )
        .order_by("-created_at", "pk")
        .values_list("items", flat=True)
        for item in items
        if item["metered"]
    ]
    if not held:
        return None
    prices = {
        price.pk: price
        for price in Price.objects.filter(
            project_id=customer.project_id,
            pk__in=held,
            usage_type=Price.UsageType.METERED,
            meter_id=feature_id,
        )
    }
    return next((prices[pk] for pk in held if pk in prices), None)


def period_in_trial(*, customer: Customer, period_end: datetime, price_id: str) -> bool:
    """Whether a period ending at `period_end` is a trial of one of the customer's live subscriptions whose
    metered item is on `price_id` (the price billing the feature): Stripe bills no usage recorded in a trial (the
    first paid period starts on its end). Another subscription's trial says nothing of a feature it does not bill."""
    trials = SubscriptionSource.objects.filter(
        customer=customer, status__in=SubscriptionSource.LIVE_STATUSES, trial_end__gte=period_end
    ).values_list("items", flat=True)
    return any(item["metered"] and item["price"] == price_id for items in trials for item in items)


def usage_summary(*, project: Project, external_id: str, feature_key: str) -> dict[str, Any]:
    """`GET /usage`: a metered feature's usage in the customer's current period as Tollgate counted it, how much
    of it Stripe's meter has (`billed_quantity`) or is still to get (`pending_quantity`), and what the metered
    price they subscribe to would invoice for the counted quantity (0 without one: usage nobody is billed for; 0
    in a trial, whose usage Stripe does not bill)."""
    feature = feature_by_key(project=project, key=feature_key)
    if feature.type != Feature.Type.METERED:
        raise InvalidRequest(
            f"feature: {feature.key!r} is {with_article(feature.type)} feature; usage is counted for metered features.",
            code="feature_not_metered",
            param="feature",
        )
    snapshot = snapshot_get(project=project, external_id=external_id)
    entry = snapshot_entry(snapshot, feature.key)
    start = datetime.fromtimestamp(entry["period_start"], UTC)
    end = datetime.fromtimestamp(entry["period_end"], UTC)
    quantity = snapshot.usage["used"].get(feature.key, 0) - snapshot.usage["held"].get(feature.key, 0)
    covered = snapshot.usage.get("covered", {}).get(feature.key, 0)
    customer = customer_find(project=project, external_id=external_id)
    reported: dict[str, int] = {}
    price: Price | None = None
    billed = True
    if customer is not None:
        # The period's totals by meter status, kept as its events are recorded and reported (`meter_totals`):
        # one indexed read, whatever the number of events.
        reported = dict(
            UsageMeterTotal.objects.filter(
                project=project, customer=customer, feature=feature, period_start=start
            ).values_list("meter_status", "quantity")
        )
        price = metered_price_of(customer=customer, feature_id=feature.pk)
        billed = price is not None and not period_in_trial(
            customer=customer, period_end=end, price_id=price.pk
        )
        if covered:  # of the used units, those credits paid: no metered price bills them
            covered -= _held_covered(customer, feature.pk)
    return {
        "object": "usage_summary",
        "customer": external_id,
        "feature": feature.key,
        "period_start": start,
        "period_end": end,
        "quantity": quantity,
        "billed_quantity": int(reported.get(UsageEvent.MeterStatus.REPORTED, 0)),
        "pending_quantity": int(reported.get(UsageEvent.MeterStatus.PENDING, 0)),
        "price": price.key if price is not None else None,
        "currency": price.currency if price is not None else None,
        "amount_due_estimate": price_amount(price, max(quantity - covered, 0))
        if price is not None and billed
        else 0,
    }


def _held_covered(customer: Customer, feature_id: str) -> int:
    """Of the units the customer's active holds of the feature still hold, those credits paid: a waterfall hold's
    paid units are its last (`entitlements.waterfall`), so the units it has not used are paid ones first."""
    return sum(
        hold_paid_held(quantity, consumed, covered)
        for held_feature, _, quantity, consumed, covered, _ in statements.HELD.rows(
            customer_id=customer.pk, feature_ids=[feature_id]
        )
        if held_feature == feature_id
    )
