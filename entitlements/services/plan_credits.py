"""Plan credits: a subscription's paid period invoice grants the plan's credits for the period (a `PlanPeriod`
and its lots, keyed by the payment; `plan_period_record`, from what billing says the invoice billed), and a full
refund or a lost dispute takes back what is unspent (`plan_credits_revoke`). Also the payment statuses that
fulfil, and the credit lot helpers (`_lot_create`, `_lots_take_back`) that purchases and grants share.
"""

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog.models import Feature
from core.actors import Actor
from core.audit import audit_record
from core.serializers import api_time
from customers.models import Customer
from entitlements import changes, resolver, statements
from entitlements.models import CreditLedgerEntry, CreditLot, Grant, PlanPeriod, Purchase
from entitlements.models.records import DEFAULT_CREDIT_PRIORITY
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
    the products set a rollover cap, up to that many credits the last period left unspent carry into it. Billing
    calls it under the payment's row lock, for `subscription_create` and `subscription_cycle`
    invoices only. Idempotent per payment (the fulfilment keys — one period per payment, one lot per period and
    feature — make a race that slips past the lock fail instead of granting twice). Returns whether credits
    were granted. `new`: the caller read under the payment's row lock that no period is recorded for it."""
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
            product_id=line.product_id if line else None,
            quantity=line.quantity if line else 1,
            period_start=line.period_start if line else None,
            period_end=line.period_end if line else None,
        )
        if line is None:
            logger.warning(
                "Invoice %s of payment %s has no subscription line with a catalog price: no plan credits.",
                facts.invoice_id,
                facts.payment_id,
            )
            return False
        # Every item of the subscription billed for the period gives its credits; items giving the same feature
        # add up into the period's one lot of it.
        totals: dict[str, tuple[Feature, int]] = {}
        caps: dict[str, int] = {}  # feature id → the most unspent credits of the last period that carry over
        for plan_line in lines:
            for row in statements.CREDIT_VALUES.rows(product_id=plan_line.product_id):
                _, amount = resolver.product_value(
                    {row.feature_id: (row.value, row.per_unit, row.overage, None, None)},
                    row.feature,
                    plan_line.quantity,
                )
                if isinstance(amount, int) and not isinstance(amount, bool) and amount > 0:
                    total = totals.get(row.feature_id, (row.feature, 0))[1] + amount
                    totals[row.feature_id] = (row.feature, total)
                    if row.rollover:
                        caps[row.feature_id] = caps.get(row.feature_id, 0) + row.rollover
        for feature, amount in sorted(totals.values(), key=lambda pair: pair[0].key):
            lot = _lot_create(
                customer=customer,
                feature=feature,
                amount=amount,
                expires_at=line.period_end,
                plan_period=period,
                reference=facts.invoice_id,
            )
            if caps.get(feature.pk) and line.period_start is not None:
                _rollover(
                    lot, cap=caps[feature.pk], period_start=line.period_start, reference=facts.invoice_id
                )
        if not totals:
            return False
        # Lots change balances, which the announced answer leaves out (see _answer_digest): cached answers are
        # invalidated, and there is nothing to announce.
        changes.structure_changed(project_id=customer.project_id, external_id=customer.external_id)
        return True


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
        _entry(old, CreditLedgerEntry.Type.ROLLOVER, -carried, reference)
        _entry(lot, CreditLedgerEntry.Type.ROLLOVER, carried, reference)
        left -= carried
    if left < cap:
        lot.save(update_fields=["amount", "remaining"])


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
        period = (
            PlanPeriod.objects.select_for_update()
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
        _lots_take_back(CreditLot.objects.filter(plan_period=period), now=now, reference=payment_id)
        entitlements_recompute(customer=customer)
        return True


def _lot_create(
    *,
    customer: Customer,
    feature: Feature,
    amount: int,
    expires_at: datetime | None,
    reference: str,
    purchase: Purchase | None = None,
    plan_period: PlanPeriod | None = None,
    grant: Grant | None = None,
    priority: int = DEFAULT_CREDIT_PRIORITY,
) -> CreditLot:
    source = CreditLot.Source.GRANT
    if purchase is not None:
        source = CreditLot.Source.PURCHASE
    elif plan_period is not None:
        source = CreditLot.Source.PLAN
    lot = CreditLot.objects.create(
        project_id=customer.project_id,
        customer=customer,
        feature=feature,
        source=source,
        purchase=purchase,
        plan_period=plan_period,
        grant=grant,
        amount=amount,
        remaining=amount,
        expires_at=expires_at,
        priority=priority,
    )
    _entry(lot, CreditLedgerEntry.Type.GRANT, amount, reference)
    return lot


def _entry(lot: CreditLot, kind: str, amount: int, reference: str) -> None:
    """Records one movement of `lot`'s credits in the ledger (signed: + granted, − taken)."""
    CreditLedgerEntry.objects.create(
        project_id=lot.project_id,
        customer_id=lot.customer_id,
        feature_id=lot.feature_id,
        lot=lot,
        type=kind,
        amount=amount,
        reference=reference,
    )


def _lots_take_back(lots: Any, *, now: datetime, reference: str) -> None:
    for lot in lots.select_for_update().filter(voided_at__isnull=True).order_by("pk"):
        if lot.remaining > 0:
            _entry(lot, CreditLedgerEntry.Type.REVOKE, -lot.remaining, reference)
        lot.remaining = 0
        lot.voided_at = now
        lot.save(update_fields=["remaining", "voided_at"])
