"""Plan credits: a subscription's paid period invoice grants the plan's credits for the period (a
`PlanPeriod` and its lots, keyed by the payment; `plan_credits_grant`), and a full refund or a lost dispute takes
back what is unspent (`plan_credits_revoke`). Also the payment statuses that fulfil, and the credit lot helpers
(`_lot_create`, `_lots_take_back`) that purchases and grants share.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from billing.models import Invoice, Payment, Subscription
from catalog.models import Feature, Price, Product, ProductFeature
from core.actors import Actor
from core.audit import audit_record
from core.serializers import api_time
from customers.models import Customer
from entitlements import cache as ent_cache
from entitlements import resolver
from entitlements.models import CreditLedgerEntry, CreditLot, Grant, PlanPeriod, Purchase
from entitlements.services.recompute import entitlements_recompute
from projects.models import Project

logger = logging.getLogger(__name__)

FULFILLABLE = (Payment.Status.SUCCEEDED, Payment.Status.PARTIALLY_REFUNDED, Payment.Status.DISPUTED)
DISPUTE_LOST = "lost"  # Stripe's dispute status once the bank sided with the cardholder
# A subscription's period is paid by these too: a trial's first invoice (or one a coupon zeroes) is paid with 0.
PLAN_PAID = (*FULFILLABLE, Payment.Status.NO_PAYMENT_REQUIRED)
# The invoices that bill a whole period in advance, and so grant the plan's credits for it. A plan change in the
# middle of a period (`subscription_update`, prorations) grants nothing: the new plan's credits come with the next
# period's invoice.
PLAN_CREDIT_REASONS = ("subscription_create", "subscription_cycle")
INVOICE_FINALIZED = ("open", "paid")  # a draft's lines may still change; a void invoice bills nothing


@dataclass(frozen=True)
class _PlanLine:
    """What a period invoice billed: the plan, how many units, and the period it pays for."""

    product: Product
    quantity: int
    period_start: datetime
    period_end: datetime


def plan_credits_grant(*, payment: Payment) -> bool:
    """A subscription invoice's payment is paid (a trial's first invoice too, with 0): grants the plan's credits
    for the period the invoice bills — one lot per `credits` feature of the product (the value, × the quantity
    where it is `per_unit`), expiring at the period end (no rollover). Only `subscription_create` and
    `subscription_cycle` invoices grant. Idempotent per payment; an invoice not mirrored yet is granted by the
    recompute hook or by this call once it is: billing may call it whenever it learns of an invoice's payment
    (a period already settled costs one indexed read, no lock). Returns whether credits were granted."""
    if not payment.stripe_invoice_id or PlanPeriod.objects.filter(payment_id=payment.pk).exists():
        return False
    with transaction.atomic():
        locked = Payment.objects.select_for_update(of=("self",)).select_related("customer").get(pk=payment.pk)
        period = _plan_period_record(locked)
        if period is None or not period.lots.exists():
            return False
        # Lots change balances, which the announced answer leaves out (see _answer_digest): cached answers are
        # invalidated, and there is nothing to announce.
        ent_cache.structure_changed(project_id=locked.project_id, external_id=locked.customer.external_id)
        return True


def plan_credits_revoke(*, payment: Payment, reason: str, actor: Actor | None = None) -> bool:
    """A subscription invoice's payment was refunded in full or lost a dispute: takes back the unspent credits its
    period granted (the subscription itself is left alone). Idempotent; returns whether anything was taken
    back."""
    if not payment.stripe_invoice_id:
        return False
    with transaction.atomic():
        locked = Payment.objects.select_for_update(of=("self",)).select_related("customer").get(pk=payment.pk)
        period = (
            PlanPeriod.objects.select_for_update().filter(payment=locked, revoked_at__isnull=True).first()
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
            project=Project.objects.get(pk=locked.project_id),
            reason=reason,
            before={"revoked_at": None},
            after={"revoked_at": api_time(now), "payment": locked.pk, "invoice": period.invoice_id},
        )
        _lots_take_back(CreditLot.objects.filter(plan_period=period), now=now, reference=locked.pk)
        entitlements_recompute(customer=locked.customer)
        return True


def _plan_period_record(locked: Payment) -> PlanPeriod | None:
    """Records the paid period of `locked` (a payment under its row lock) and grants its plan credits; None when
    the payment is not a paid period invoice's, is settled already, or its invoice is not mirrored (finalized)
    yet. The fulfilment keys — one period per payment, one lot per period and feature — make a race that slips
    past the lock fail instead of granting twice."""
    if (
        not locked.stripe_invoice_id
        or locked.status not in PLAN_PAID
        or locked.dispute_status == DISPUTE_LOST
        or PlanPeriod.objects.filter(payment=locked).exists()
    ):
        return None
    invoice = Invoice.objects.filter(
        project_id=locked.project_id, stripe_invoice_id=locked.stripe_invoice_id
    ).first()
    if (
        invoice is None
        or invoice.billing_reason not in PLAN_CREDIT_REASONS
        or invoice.status not in INVOICE_FINALIZED
    ):
        return None
    lines = _plan_lines(invoice)
    line = lines[0] if lines else None
    period = PlanPeriod.objects.create(
        project_id=locked.project_id,
        customer=locked.customer,
        payment=locked,
        invoice=invoice,
        product=line.product if line else None,
        quantity=line.quantity if line else 1,
        period_start=line.period_start if line else None,
        period_end=line.period_end if line else None,
    )
    if line is None:
        logger.warning(
            "Invoice %s of payment %s has no subscription line with a catalog price: no plan credits.",
            invoice.stripe_invoice_id,
            locked.pk,
        )
        return period
    # Every item of the subscription billed for the period gives its credits; items giving the same feature add
    # up into the period's one lot of it.
    totals: dict[str, tuple[Feature, int]] = {}
    for plan_line in lines:
        values = ProductFeature.objects.filter(
            product=plan_line.product, feature__type=Feature.Type.CREDITS
        ).select_related("feature")
        for row in values:
            _, amount = resolver.product_value(
                {row.feature_id: (row.value, row.per_unit)}, row.feature, plan_line.quantity
            )
            if isinstance(amount, int) and not isinstance(amount, bool) and amount > 0:
                total = totals.get(row.feature_id, (row.feature, 0))[1] + amount
                totals[row.feature_id] = (row.feature, total)
    for feature, amount in sorted(totals.values(), key=lambda pair: pair[0].key):
        _lot_create(
            customer=locked.customer,
            feature=feature,
            amount=amount,
            expires_at=line.period_end,
            plan_period=period,
            reference=invoice.pk,
        )
    return period


def _plan_lines(invoice: Invoice) -> list[_PlanLine]:
    """What the invoice pays for, one line per product of the subscription, counted as the resolver counts a
    subscription's products (`resolver.product_units`): a product's licensed lines (not prorations, not metered
    usage billed in arrears) add up their quantities; a product the subscription holds only through metered
    items counts once; a metered item adds nothing to a product a licensed line bills. Their period is the one
    the licensed lines pay for — a renewal invoice's own `period_start`/`period_end` are the period that ended.
    An invoice with no licensed line bills no period in advance (a final usage invoice): none."""
    licensed: list[tuple[Price, int, datetime, datetime]] = []
    usage: list[Price] = []
    for line in invoice.lines or []:
        stripe_price_id = line.get("stripe_price_id")
        if line.get("proration") or not stripe_price_id:
            continue
        price = _catalog_price(invoice.project_id, stripe_price_id)
        if price is None or price.type != Price.Type.RECURRING:
            continue
        if price.usage_type == Price.UsageType.METERED:
            usage.append(price)
            continue
        start, end = line.get("period_start"), line.get("period_end")
        if not start or not end or int(end) <= int(start):
            continue
        quantity = line.get("quantity")
        licensed.append(
            (
                price,
                int(quantity) if quantity is not None else 1,
                datetime.fromtimestamp(int(start), UTC),
                datetime.fromtimestamp(int(end), UTC),
            )
        )
    if not licensed:
        return []
    metered = _metered_prices_of(invoice) if invoice.stripe_subscription_id else None
    units = resolver.product_units(
        [(price.product_id, False, quantity) for price, quantity, _, _ in licensed]
        + [(price.product_id, True, 1) for price in (usage if metered is None else metered)]
    )
    products = {price.product_id: price.product for price, *_ in licensed}
    products.update({price.product_id: price.product for price in [*usage, *(metered or [])]})
    periods = {price.product_id: (start, end) for price, _, start, end in reversed(licensed)}
    first = (licensed[0][2], licensed[0][3])
    return [
        _PlanLine(
            product=products[product_id],
            quantity=quantity,
            period_start=periods.get(product_id, first)[0],
            period_end=periods.get(product_id, first)[1],
        )
        for product_id, quantity in units
    ]


def _metered_prices_of(invoice: Invoice) -> list[Price] | None:
    """The metered prices of the invoice's subscription as mirrored (a first invoice has no line for them:
    they bill in arrears), or None while the subscription is not mirrored (then the invoice's usage lines
    stand for them)."""
    subscription = (
        Subscription.objects.filter(
            project_id=invoice.project_id, stripe_subscription_id=invoice.stripe_subscription_id
        )
        .prefetch_related("items__price__product")
        .first()
    )
    if subscription is None:
        return None
    return [item.price for item in subscription.items.all() if item.usage_type == Price.UsageType.METERED]


def _catalog_price(project_id: str, stripe_price_id: str) -> Price | None:
    """Our price for a Stripe price id: the current one, or one an amount change replaced (its history)."""
    prices = Price.objects.select_related("product").filter(project_id=project_id)
    price = prices.filter(stripe_price_id=stripe_price_id).first()
    if price is None:
        price = next(
            (p for p in prices.exclude(stripe_price_history=[]) if stripe_price_id in p.stripe_price_history),
            None,
        )
    return price


def _plan_credits_catch_up(customer: Customer) -> None:
    """Grants the plan credits of the customer's paid period invoices that were paid before their invoice was
    mirrored (Checkout's completion may arrive before `invoice.paid`): the invoice's arrival ends in this
    recompute. A payment another transaction holds is skipped — that transaction settles it. Payments already
    settled have a `PlanPeriod` and are not looked at again."""
    invoices = Invoice.objects.filter(
        project_id=OuterRef("project_id"),
        stripe_invoice_id=OuterRef("stripe_invoice_id"),
        billing_reason__in=PLAN_CREDIT_REASONS,
        status__in=INVOICE_FINALIZED,
    )
    due = list(
        Payment.objects.filter(customer_id=customer.pk, status__in=PLAN_PAID, plan_period__isnull=True)
        .exclude(stripe_invoice_id="")
        .exclude(dispute_status=DISPUTE_LOST)
        .filter(Exists(invoices))
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )
    for pk in due:
        locked = (
            Payment.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("customer")
            .filter(pk=pk)
            .first()
        )
        if locked is not None:
            _plan_period_record(locked)


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
    )
    CreditLedgerEntry.objects.create(
        project_id=customer.project_id,
        customer=customer,
        feature=feature,
        lot=lot,
        type=CreditLedgerEntry.Type.GRANT,
        amount=amount,
        reference=reference,
    )
    return lot


def _lots_take_back(lots: Any, *, now: datetime, reference: str) -> None:
    for lot in lots.select_for_update().filter(voided_at__isnull=True).order_by("pk"):
        if lot.remaining > 0:
            CreditLedgerEntry.objects.create(
                project_id=lot.project_id,
                customer_id=lot.customer_id,
                feature_id=lot.feature_id,
                lot=lot,
                type=CreditLedgerEntry.Type.REVOKE,
                amount=-lot.remaining,
                reference=reference,
            )
        lot.remaining = 0
        lot.voided_at = now
        lot.save(update_fields=["remaining", "voided_at"])
