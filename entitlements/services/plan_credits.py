"""Plan credits: a subscription's paid period invoice grants the plan's credits for the period (a `PlanPeriod`
and its lots, keyed by the payment; `plan_period_record`, from what billing says the invoice billed), and a full
refund or a lost dispute takes back what is unspent (`plan_credits_revoke`). A feature granted on a cadence of its
own (every month or week of the period, `ProductFeature.cadence`) is cut into slices, each granted when it is due
(`plan_credit_slices_grant`, the beat's sweep) until the subscription ends (`plan_credits_stop`). A feature whose
plan gives each entity credits (`per_entity.credits`) is granted by slices too (one for the whole period where it
has no cadence), each giving the live entities their own lots (`plan_entity_credits`). Also the payment statuses
that fulfil.
"""

import calendar
import itertools
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, Sum
from django.utils import timezone

from catalog.models import Feature, ProductFeature
from catalog.versions import credit_values
from core.actors import Actor
from core.audit import audit_record
from core.serializers import api_time
from customers.models import Customer
from customers.selectors import customer_now
from entitlements import changes, resolver, statements
from entitlements.models import CreditLedgerEntry, CreditLot, PlanCreditSlice, PlanPeriod
from entitlements.services.credit_lots import lot_create, lot_entry, lots_take_back
from entitlements.services.recompute import entitlements_recompute
from entitlements.services.sources import PlanPeriodFacts

logger = logging.getLogger(__name__)

# A payment's statuses (billing's) that fulfil a one-time purchase.
FULFILLABLE = ("succeeded", "partially_refunded", "disputed")
REFUNDED = "refunded"
DISPUTE_LOST = "lost"  # Stripe's dispute status once the bank sided with the cardholder


def plan_period_record(*, customer: Customer, facts: PlanPeriodFacts, new: bool = False) -> bool:
    """A subscription's period invoice is paid (a trial's first invoice too, with 0): records the period and
    grants the plan's credits for it — one lot per `credits` feature of the products billed (the value, × the
    quantity where it is `per_unit`; products giving the same feature add up), expiring at the period end; where
    the products set a rollover cap, up to that many credits the last period left unspent carry into it; a
    feature granted on a cadence is cut into months or weeks instead (`_slices_create`). A period that starts
    before an earlier one of its subscription ended (a switch monthly ↔ yearly) cuts that one short
    (`_periods_replaced`). Billing calls it under the payment's row lock, for `subscription_create`,
    `subscription_cycle` and `subscription_update` invoices only. Idempotent per payment (the fulfilment keys — one
    period per payment, one lot per period, feature and expiry — make a race that slips past the lock fail instead
    of granting twice). Returns whether credits were granted. `new`: the caller read under the payment's row lock
    that no period is recorded for it."""
    with transaction.atomic(savepoint=False):
        if not new and plan_period_recorded(payment_id=facts.payment_id):
            return False
        lines = facts.lines
        line = lines[0] if lines else None
        period = PlanPeriod.objects.create(
            project_id=customer.project_id,
            customer=customer,
            payment_id=facts.payment_id,
            invoice_id=facts.invoice_id,
            invoice_number=facts.invoice_number,
            subscription_id=facts.subscription_id,
            product_id=line.product_id if line else None,
            quantity=line.quantity if line else 1,
            period_start=line.period_start if line else None,
            period_end=line.period_end if line else None,
        )
        if line is None:
            logger.log(
                # A change within the period bills prorations only: no period, as expected.
                logging.INFO if facts.reason == "subscription_update" else logging.WARNING,
                "Invoice %s of payment %s bills no period of a catalog price: no plan credits.",
                facts.invoice_id,
                facts.payment_id,
            )
            return False
        # A period that starts before an earlier one of the subscription ended (monthly ↔ yearly restarts it,
        # crediting the unused time) ends that one here.
        owed = _periods_replaced(period, start=line.period_start, reference=facts.invoice_id)
        # Every item of the subscription billed for the period gives its credits; items giving the same feature
        # add up into the period's one lot of it.
        totals: dict[str, tuple[Feature, int]] = {}
        caps: dict[str, int] = {}  # feature id → the most unspent credits of the last period that carry over
        cadences: dict[str, str] = {}  # feature id → "month" or "week": granted that often, by slices
        per_entity: dict[str, int] = {}  # feature id → the credits each entity gets with each grant
        for plan_line in lines:
            for row in credit_values(plan_line.product_id, plan_line.version):
                _, amount = resolver.product_value(
                    {row.feature_id: (row.value, row.per_unit, False, None, None, None, None)},
                    row.feature,
                    plan_line.quantity,
                )
                given = (
                    amount if isinstance(amount, int) and not isinstance(amount, bool) and amount > 0 else 0
                )
                each = int((row.per_entity or {}).get("credits") or 0)
                if given or each:
                    total = totals.get(row.feature_id, (row.feature, 0))[1] + given
                    totals[row.feature_id] = (row.feature, total)
                    if each:
                        per_entity[row.feature_id] = per_entity.get(row.feature_id, 0) + each
                    if row.rollover:
                        caps[row.feature_id] = caps.get(row.feature_id, 0) + row.rollover
                    if row.cadence:
                        cadences.setdefault(row.feature_id, row.cadence)
        sliced = False
        for feature, amount in sorted(totals.values(), key=lambda pair: pair[0].key):
            # Credits for each entity come with a grant of its own (a slice), even once a period.
            if cadence := cadences.get(feature.pk) or ("period" if feature.pk in per_entity else ""):
                _slices_create(
                    period,
                    feature,
                    amount,
                    start=line.period_start,
                    end=line.period_end,
                    cadence=cadence,
                    rollover=caps.get(feature.pk),
                    owed=owed.get((feature.pk, ""), 0),
                    each=per_entity.get(feature.pk, 0),
                    owed_each={e: n for (f, e), n in owed.items() if f == feature.pk and e},
                )
                sliced = True
                continue
            lot = lot_create(
                customer=customer,
                feature=feature,
                amount=amount,
                expires_at=line.period_end,
                plan_period=period,
                reference=facts.invoice_id,
            )
            _owed_take(lot, owed.get((feature.pk, ""), 0), reference=facts.invoice_id)
            if caps.get(feature.pk) and line.period_start is not None:
                _rollover(
                    lot, cap=caps[feature.pk], period_start=line.period_start, reference=facts.invoice_id
                )
        if not totals:
            return False
        if sliced and facts.ended_at is not None:  # the subscription's end was learned first
            plan_credits_stop(
                customer=customer,
                subscription_id=facts.subscription_id,
                ended_at=facts.ended_at,
                reason="the subscription ended",
            )
        if sliced:
            # The customer's slices due by now, this period's among them (and any of an earlier period the
            # sweep has not reached: they come first, so a rollover finds the lot it takes from).
            _slices_due_grant(customer, now=customer_now(customer=customer))
        _later_periods_cut(period, start=line.period_start, end=line.period_end)
        # Lots change balances, which the announced answer leaves out (see _answer_digest): cached answers are
        # invalidated, and there is nothing to announce.
        changes.structure_changed(project_id=customer.project_id, external_id=customer.external_id)
        return True


def _later_periods_cut(period: PlanPeriod, *, start: datetime, end: datetime) -> None:
    """A period recorded after a later one of its subscription that cuts it short (the events of a switch came
    before the first invoice's): the later one replaces it now, as it would have on arrival — what it owes comes
    off what the later period's first lot of the feature has left."""
    if not period.subscription_id:
        return
    later = PlanPeriod.objects.filter(
        customer_id=period.customer_id,
        subscription_id=period.subscription_id,
        period_start__gt=start,
        period_start__lt=end,
        revoked_at__isnull=True,
    ).order_by("period_start", "pk")
    for cutting in later:
        cut_at = cutting.period_start
        assert cut_at is not None  # filtered on it
        owed = _periods_replaced(cutting, start=cut_at, reference=cutting.invoice_id)
        firsts: dict[tuple[str, str], CreditLot] = {}
        for lot in (
            CreditLot.objects.select_for_update(of=("self",))
            .filter(plan_period=cutting, voided_at__isnull=True)
            .select_related("slice")
            .order_by("-expires_at", "-pk")
        ):
            firsts[(lot.feature_id, lot.owner)] = lot  # the earliest-expiring of each feature and owner, last
        caps = dict(
            ProductFeature.objects.filter(product_id=cutting.product_id, rollover__isnull=False).values_list(
                "feature_id", "rollover"
            )
        )
        for (feature_id, owner), lot in firsts.items():
            _owed_take(lot, owed.get((feature_id, owner), 0), reference=cutting.invoice_id)
            if owner:  # an entity's credits never roll over
                continue
            cap = lot.slice.rollover if hasattr(lot, "slice") else caps.get(feature_id)
            if cap:
                _rollover(lot, cap=cap, period_start=cut_at, reference=cutting.invoice_id)


def _periods_replaced(period: PlanPeriod, *, start: datetime, reference: str) -> dict[tuple[str, str], int]:
    """The subscription's earlier paid periods that `period` (starting at `start`) cuts short end at `start`, as
    Stripe ended them; their slices from `start` on stop, and any already granted (events learned late) are taken
    back. Stripe credits the unused time in money; the credits granted for it are owed back the same way: of the
    lot of each month or week running at `start` (or the period's own lot), the share of its grant that the unused
    time makes (rounded down) is taken back from what it has left, the rest of that share comes off the new
    period's grant to the same owner (returned, by feature id and owner: "" the account), and the lot expires at
    `start` — so a rollover cap carries into the
    new period what it still has, as at a renewal. Switching monthly ↔ yearly and back grants nothing twice."""
    if not period.subscription_id:
        return {}
    earlier = PlanPeriod.objects.filter(
        customer_id=period.customer_id,
        subscription_id=period.subscription_id,
        period_start__lt=start,  # recorded in any order: a later period recorded first is not cut
        period_end__gt=start,
        revoked_at__isnull=True,
    ).exclude(pk=period.pk)
    if not earlier.exists():
        return {}
    customer = period.customer
    # What the customer holds changes here, whether or not the new period grants anything.
    changes.structure_changed(project_id=customer.project_id, external_id=customer.external_id)
    # Months or weeks due but not reached by the sweep yet are granted first (the one running at `start` among
    # them); any other that would run past `start` stops, granted or not.
    _slices_due_grant(customer, now=customer_now(customer=customer))
    _, granted = _slices_stop(
        PlanCreditSlice.objects.filter(plan_period__in=earlier, ends_at__gt=start).exclude(
            granted_at__isnull=False, starts_at__lt=start
        ),
        reason="replaced by a new paid period",
        reference=reference,
    )
    owed: dict[tuple[str, str], int] = {}
    running = (
        CreditLot.objects.select_for_update(of=("self",))
        .filter(plan_period__in=earlier, voided_at__isnull=True, expires_at__gt=start)
        .exclude(pk__in=granted)
        .select_related("plan_period", "slice", "plan_slice")
        .order_by("pk")
    )
    for lot in running:
        since: datetime | None
        if hasattr(lot, "slice"):  # the account's lot of a slice
            since = lot.slice.starts_at
        elif lot.plan_slice is not None:  # an entity's
            since = lot.plan_slice.starts_at
        else:
            since = lot.plan_period.period_start if lot.plan_period is not None else None
        given = CreditLedgerEntry.objects.filter(lot=lot, type=CreditLedgerEntry.Type.GRANT).aggregate(
            total=Sum("amount")
        )["total"]
        if since is not None and given and lot.expires_at is not None and lot.expires_at > since:
            unused = given * (lot.expires_at - start) // (lot.expires_at - since)
            back = min(unused, lot.remaining)
            if back > 0:
                lot_entry(lot, CreditLedgerEntry.Type.REVOKE, -back, reference)
                lot.remaining -= back
            owed[(lot.feature_id, lot.owner)] = owed.get((lot.feature_id, lot.owner), 0) + unused - back
        lot.expires_at = start
        lot.save(update_fields=["expires_at", "remaining"])
    return owed


def _owed_take(lot: CreditLot, owed: int, *, reference: str) -> None:
    """Takes back from a lot just granted (its whole grant still there) what a period it replaced owes: the lot
    keeps its grant in the ledger, so a later switch owes from its whole value."""
    taken = min(owed, lot.remaining)  # what is owed past a grant is not carried further
    if taken > 0:
        lot_entry(lot, CreditLedgerEntry.Type.REVOKE, -taken, reference)
        lot.remaining -= taken
        lot.save(update_fields=["remaining"])


def _rollover(lot: CreditLot, *, cap: int, period_start: datetime, reference: str) -> None:
    """Carries up to `cap` of what the plan lots of the period that ended at `period_start` left unspent into
    `lot`, the new period's: the old lots give them up (a `rollover` entry, −) and the new one takes them (+),
    so they expire with it. Under the old lots' row locks (a spend of their last moments waits); a lot taken back
    (a refund) carries nothing. Runs once per period: the caller's payment is fulfilled once."""
    previous = (
        CreditLot.objects.select_for_update()
        .filter(
            customer_id=lot.customer_id,
            feature_id=lot.feature_id,
            source=CreditLot.Source.PLAN,
            expires_at=period_start,
            voided_at__isnull=True,
            remaining__gt=0,
            entity="",  # an entity's plan credits never roll over
        )
        .exclude(pk=lot.pk)
        .order_by("created_at", "pk")
    )
    left = cap
    for old in previous:
        carried = min(left, old.remaining)
        if carried <= 0:
            break
        old.remaining -= carried
        old.save(update_fields=["remaining"])
        lot.amount += carried
        lot.remaining += carried
        lot_entry(old, CreditLedgerEntry.Type.ROLLOVER, -carried, reference)
        lot_entry(lot, CreditLedgerEntry.Type.ROLLOVER, carried, reference)
        left -= carried
    if left < cap:
        lot.save(update_fields=["amount", "remaining"])


# --- credits on a cadence of their own --------------------------------------------------------------------

# The most slices one period is cut into (a five-year period in weeks is 261): a bound on a malformed period.
MAX_SLICES = 400


def _months_back(end: datetime, months: int, day: int) -> datetime:
    """`end` moved back `months` calendar months, on `day` of the month (the month's last day where it has fewer),
    as Stripe steps a billing cycle anchor."""
    index = end.year * 12 + end.month - 1 - months
    year, month = divmod(index, 12)
    return end.replace(year=year, month=month + 1, day=min(day, calendar.monthrange(year, month + 1)[1]))


def slice_bounds(
    start: datetime, end: datetime, cadence: str
) -> Iterator[tuple[datetime, datetime, int, int]]:
    """The months or weeks of the period [`start`, `end`), counted back from its end (its billing cycle anchor),
    first to last: (from, until, share, whole), where share/whole is the part of a whole month or week the slice
    covers (microseconds) — less than 1 only for the first slice of a period that starts inside one (a
    mid-period start, a trial, a period shortened by a new anchor)."""
    # A period ending on its month's last day may have been clamped from a later anchor day (31 → 30 or 28):
    # its start's day says which (a monthly period from Jan 31 ends on Feb 28, the next on Mar 31).
    last_day = calendar.monthrange(end.year, end.month)[1]
    day = max(end.day, start.day) if end.day == last_day else end.day
    bounds = [end]
    while len(bounds) <= MAX_SLICES:
        step = len(bounds)
        earlier = _months_back(end, step, day) if cadence == "month" else end - timedelta(weeks=step)
        if earlier <= start:
            whole = bounds[-1] - earlier
            bounds.append(start)
            break
        bounds.append(earlier)
    else:  # pragma: no cover - a period hundreds of months or weeks long
        raise ValueError(f"A period from {start} to {end} has more than {MAX_SLICES} {cadence}s.")
    bounds.reverse()
    tick = timedelta(microseconds=1)
    for position, (since, until) in enumerate(itertools.pairwise(bounds)):
        if position == 0:
            yield since, until, (until - since) // tick, whole // tick
        else:
            yield since, until, 1, 1


def _slices_create(
    period: PlanPeriod,
    feature: Feature,
    amount: int,
    *,
    start: datetime,
    end: datetime,
    cadence: str,
    rollover: int | None,
    owed: int = 0,
    each: int = 0,
    owed_each: dict[str, int] | None = None,
) -> None:
    """The period's slices of `feature`, `amount` each (the first pro-rated, rounded down), to be granted as
    they come due; `owed` (what a period this one cut short granted for its unused time, spent) is taken back from
    the first slices as they are granted, in order. `each`: the credits each entity gets with every slice (not
    pro-rated), `owed_each` what each entity owes so, taken back from its first slice's. `cadence` "period": the
    period is one slice."""
    bounds = [(start, end, 1, 1)] if cadence == "period" else slice_bounds(start, end, cadence)
    slices = []
    for index, (since, until, share, whole) in enumerate(bounds):
        given = amount * share // whole
        taken = min(given, owed)
        owed -= taken
        slices.append(
            PlanCreditSlice(
                project_id=period.project_id,
                customer_id=period.customer_id,
                feature=feature,
                plan_period=period,
                index=index,
                starts_at=since,
                ends_at=until,
                amount=given,
                owed=taken,
                rollover=rollover,
                entity_amount=each,
                entity_owed=(owed_each or {}) if index == 0 else {},
            )
        )
    PlanCreditSlice.objects.bulk_create(slices)


def _pending(**filters: Any) -> Any:
    return PlanCreditSlice.objects.filter(granted_at__isnull=True, stopped_at__isnull=True, **filters)


def _slice_grant(item: PlanCreditSlice, *, now: datetime) -> None:
    """Grants one slice (under its row lock, still pending): its lot, expiring at the slice's end, and what the
    lot before it left unspent up to the rollover cap."""
    from entitlements.services.plan_entity_credits import entity_lots_grant  # it imports this module

    customer = item.customer
    reference = item.plan_period.invoice_id
    if (
        item.amount or not item.entity_amount
    ):  # a plan giving only its entities credits gives the account none
        lot = lot_create(
            customer=customer,
            feature=item.feature,
            amount=item.amount,
            expires_at=item.ends_at,
            plan_period=item.plan_period,
            reference=reference,
        )
        _owed_take(lot, item.owed, reference=reference)
        if item.rollover:
            _rollover(lot, cap=item.rollover, period_start=item.starts_at, reference=reference)
        item.lot = lot
    item.granted_at = now
    item.save(update_fields=["lot", "granted_at"])
    entity_lots_grant(item, now=now)


def _slices_due_grant(customer: Customer, *, now: datetime) -> None:
    """Grants the customer's slices due by `now` (their customer's time), earliest first, in the caller's
    transaction."""
    due = (
        _pending(customer_id=customer.pk, starts_at__lte=now)
        .select_for_update(of=("self",))
        .select_related("plan_period", "feature")
        .order_by("starts_at", "pk")
    )
    for item in due:
        item.customer = customer
        _slice_grant(item, now=timezone.now())


def plan_credit_slices_grant(*, now: datetime | None = None, limit: int = 100) -> int:
    """The beat's sweep: grants up to `limit` slices that are due (by their customer's time: a test clock's
    customer's come due as the clock moves), each customer's and feature's earliest first, in one transaction;
    how many. Claimed `FOR UPDATE SKIP LOCKED`: two sweeps, or a sweep and a period being recorded, never grant one
    twice, and a slice waits while an earlier one of its customer and feature is pending (so its rollover finds
    the lot before it). Call again until it answers 0."""
    now = now or timezone.now()
    earlier = _pending(
        customer_id=OuterRef("customer_id"),
        feature_id=OuterRef("feature_id"),
        starts_at__lt=OuterRef("starts_at"),
    )
    with transaction.atomic(durable=True):
        # Two claims, each a bounded scan: slices due by the wall clock (the pending index's range up to now), then
        # those of test clocks' customers (few, reached through their clocks), whose time may be ahead of it.
        claimed: list[str] = []
        for due in (
            Q(starts_at__lte=now, customer__test_clock__isnull=True),
            Q(customer__test_clock__isnull=False, starts_at__lte=F("customer__test_clock__frozen_time")),
        ):
            if len(claimed) < limit:
                claimed += (
                    _pending()
                    .filter(due)
                    .exclude(Exists(earlier))
                    .select_for_update(of=("self",), skip_locked=True)
                    .order_by("starts_at", "pk")
                    .values_list("pk", flat=True)[: limit - len(claimed)]
                )
        customers: dict[str, Customer] = {}
        for item in (
            PlanCreditSlice.objects.filter(pk__in=claimed)
            .select_related("customer", "plan_period", "feature")
            .order_by("starts_at", "pk")
        ):
            _slice_grant(item, now=now)
            customers[item.customer_id] = item.customer
        for customer in customers.values():
            changes.structure_changed(project_id=customer.project_id, external_id=customer.external_id)
    return len(claimed)


def _slices_stop(slices: Any, *, reason: str, reference: str) -> tuple[int, list[str]]:
    """Stops the `slices` not stopped yet, and takes back what is unspent of those granted already; (how many
    stopped, the lots taken back). Locked first: a slice a sweep is granting now is waited for, and read with its
    lot. In the caller's transaction."""
    now = timezone.now()
    found = list(
        slices.filter(stopped_at__isnull=True)
        .select_for_update(of=("self",))
        .order_by("pk")
        .values_list("pk", "lot_id")
    )
    stopped = PlanCreditSlice.objects.filter(pk__in=[pk for pk, _ in found]).update(
        stopped_at=now, stop_reason=reason[:500]
    )
    granted = [lot for _, lot in found if lot is not None]
    lots = CreditLot.objects.filter(Q(pk__in=granted) | Q(plan_slice_id__in=[pk for pk, _ in found]))
    if found:
        lots_take_back(lots, now=now, reference=reference)
    return stopped, granted


def plan_credits_stop(*, customer: Customer, subscription_id: str, ended_at: datetime, reason: str) -> bool:
    """The subscription ended at `ended_at`: its periods' slices from then on are not granted, and those granted
    already (the end was learned late) are taken back, what is unspent of them. Idempotent; whether anything
    changed. Runs in the caller's transaction (billing's mirror, under the subscription's row lock)."""
    with transaction.atomic(savepoint=False):
        stopped, _ = _slices_stop(
            PlanCreditSlice.objects.filter(
                customer_id=customer.pk, plan_period__subscription_id=subscription_id, starts_at__gte=ended_at
            ),
            reason=reason,
            reference=subscription_id,
        )
        if stopped:
            changes.structure_changed(project_id=customer.project_id, external_id=customer.external_id)
        return bool(stopped)


def plan_period_recorded(*, payment_id: str) -> bool:
    """Whether the period a payment paid is settled already (one indexed read, no lock)."""
    return statements.PERIOD_RECORDED.first(payment_id=payment_id) is not None


def plan_credits_revoke(
    *, customer: Customer, payment_id: str, reason: str, actor: Actor | None = None
) -> bool:
    """A subscription invoice's payment was refunded in full or lost a dispute: takes back the unspent credits its
    period granted (the subscription itself is left alone). Idempotent; returns whether anything was taken
    back."""
    with transaction.atomic():
        # FOR NO KEY UPDATE: a sweep granting one of the period's months holds that slice's row and, at its
        # commit, a key-share lock on this row (its lot's foreign key); a full row lock here would wait for it
        # while it waits for this one.
        period = (
            PlanPeriod.objects.select_for_update(no_key=True)
            .filter(payment_id=payment_id, revoked_at__isnull=True)
            .first()
        )
        if period is None:
            return False
        now = timezone.now()
        period.revoked_at = now
        period.revoke_reason = reason[:500]
        period.save(update_fields=["revoked_at", "revoke_reason"])
        audit_record(
            actor=actor or Actor.system("plan_credits_revoke"),
            action="plan_period.revoked",
            target=period,
            project=customer.project,
            reason=reason,
            before={"revoked_at": None},
            after={"revoked_at": api_time(now), "payment": payment_id, "invoice": period.invoice_id},
        )
        # Slices still to come are stopped first: one a sweep is granting now is waited for, and its lot is
        # then among those taken back.
        _pending(plan_period=period).update(stopped_at=now, stop_reason=reason[:500])
        lots_take_back(CreditLot.objects.filter(plan_period=period), now=now, reference=payment_id)
        entitlements_recompute(customer=customer)
        return True
