"""What billing hands entitlements, one place per kind of fact, in the transaction that changes billing's row:
a subscription's state and items (`subscription_facts_hand`, from the mirror), a payment's status, dispute and
lines (`payment_facts_hand`, from the payment transition), and what a paid period invoice billed
(`plan_credits_grant`, `plan_credits_catch_up`: the invoice's plan lines, read here because they are billing's).
Entitlements decides from these facts alone; it never reads billing's tables.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from billing import statements
from billing.models import (
    DISPUTE_LOST,
    INVOICE_FINALIZED,
    PLAN_CREDIT_REASONS,
    PLAN_PAID,
    Invoice,
    Payment,
    Subscription,
    SubscriptionItem,
)
from catalog.models import Price
from core.locks import lock_for_transaction
from customers.models import Customer
from entitlements.resolver import product_units
from entitlements.services.plan_credits import plan_credits_stop, plan_period_record, plan_period_recorded
from entitlements.services.purchases import payment_entitlements_apply
from entitlements.services.sources import (
    PaymentFacts,
    PaymentLineFact,
    PlanLineFact,
    PlanPeriodFacts,
    SubscriptionFacts,
    SubscriptionItemFact,
    subscription_source_put,
)

# --- subscriptions ------------------------------------------------------------------------------------------


def subscription_facts_hand(
    *,
    subscription: Subscription,
    price: Price,
    items: list[tuple[dict[str, Any], Price]],
    rows: list[SubscriptionItem] | None = None,
) -> None:
    """Hands entitlements what the subscription is now (called by the mirror after it saved the subscription and
    its items, under the subscription's row lock): its primary `price`'s product, quantity and interval, and
    Stripe's `items` with their catalog prices, in order, each on the product version its row (`rows`, read when not
    given) holds."""
    if rows is None:
        rows = list(subscription.items.all())
    versions = {row.stripe_item_id: row for row in rows}
    ended_at = subscription.ended_at if subscription.status == Subscription.Status.CANCELED else None
    if ended_at is not None:  # first, before this transaction locks any row a period's recorder may wait for
        lock_for_transaction(_end_lock(subscription.project_id, subscription.stripe_subscription_id))
    subscription_source_put(
        facts=SubscriptionFacts(
            id=subscription.pk,
            project_id=subscription.project_id,
            customer_id=subscription.customer_id,
            product_id=subscription.product_id,
            quantity=subscription.quantity,
            items=[
                SubscriptionItemFact(
                    product_id=item_price.product_id,
                    price_id=item_price.pk,
                    metered=item_price.usage_type == Price.UsageType.METERED,
                    quantity=None
                    if item_price.usage_type == Price.UsageType.METERED
                    else int(item.get("quantity") or 1),
                    **_item_version(versions.get(item.get("id") or "")),
                )
                for item, item_price in items
            ],
            status=subscription.status,
            current_period_start=subscription.current_period_start,
            current_period_end=subscription.current_period_end,
            interval=price.interval or "month",
            interval_count=price.interval_count or 1,
            cancel_at_period_end=subscription.cancel_at_period_end,
            trial_end=subscription.trial_end,
            canceled_at=subscription.canceled_at,
            created_at=subscription.created_at,
            updated_at=subscription.updated_at,
        )
    )
    if ended_at is not None:
        # Credits granted on a cadence stop with the subscription, however late its end is learned.
        plan_credits_stop(
            customer=subscription.customer,
            subscription_id=subscription.stripe_subscription_id,
            ended_at=ended_at,
            reason="the subscription ended",
        )


def _item_version(row: SubscriptionItem | None) -> dict[str, Any]:
    """The version fields of an item's fact: the version its row is on, and a move scheduled for later."""
    if row is None:
        return {}
    return {
        "version": row.product_version,
        "pending_version": row.pending_version,
        "pending_at": row.pending_version_at,
    }


# --- payments -----------------------------------------------------------------------------------------------


def payment_facts_hand(*, payment: Payment, invoice: Invoice | None = None) -> None:
    """A payment's status or dispute outcome changed (called by the payment transition under the payment's row
    lock, `customer` loaded): hands entitlements its facts, and, for a paid period invoice not settled yet, what
    the invoice billed (`invoice`: the payment's invoice as the caller holds it, else read)."""
    lines = []
    for item in payment.items:  # a loop, not a comprehension: the facts are built in this one frame
        lines.append(
            PaymentLineFact(price_id=item.get("price") or "", quantity=int(item.get("quantity") or 1))
        )
    facts = PaymentFacts(
        id=payment.pk,
        project_id=payment.project_id,
        customer_id=payment.customer_id,
        status=payment.status,
        dispute_status=payment.dispute_status,
        succeeded_at=payment.succeeded_at,
        lines=lines,
        reference=payment.reference or "",
        error_code=payment.decline_code or payment.last_error_code,
    )
    plan_period = None
    if _plan_period_due(payment) and not plan_period_recorded(payment_id=payment.pk):
        plan_period = _plan_period_facts(payment, invoice=invoice)
    # Whether the period is recorded was read under the payment's row lock, which every recorder takes.
    payment_entitlements_apply(
        customer=payment.customer, payment=facts, plan_period=plan_period, plan_period_new=True
    )


# --- plan credits -------------------------------------------------------------------------------------------


def plan_credits_grant(*, payment: Payment, invoice: Invoice | None = None) -> bool:
    """Billing learned of a subscription invoice's payment being paid: hands entitlements what the invoice
    billed, so it grants the plan's credits for the period. Idempotent per payment; an invoice not mirrored yet
    is granted by `plan_credits_catch_up` or by this call once it is: billing may call it whenever it learns of an
    invoice's payment (a period already settled costs one indexed read, no lock). Returns whether credits were
    granted. `invoice`: the payment's invoice as the caller holds it (else read)."""
    if not payment.stripe_invoice_id or plan_period_recorded(payment_id=payment.pk):
        return False
    with transaction.atomic(savepoint=False):
        locked = Payment.objects.select_for_update(of=("self",)).select_related("customer").get(pk=payment.pk)
        facts = _plan_period_facts(locked, invoice=invoice) if _plan_period_due(locked) else None
        if facts is None:
            return False
        return plan_period_record(customer=locked.customer, facts=facts)


def plan_credits_catch_up(*, customer: Customer) -> None:
    """Grants the plan credits of the customer's paid period invoices that were paid before their invoice was
    mirrored (Checkout's completion may arrive before `invoice.paid`): called before the subscription mirror's
    recompute. A payment another transaction holds is skipped — that transaction settles it. Payments already
    settled have a `PlanPeriod` and are not looked at again."""
    with transaction.atomic(savepoint=False):
        due = statements.PLAN_PAID_UNCREDITED.rows(customer_id=customer.pk)
        for pk in due:
            locked = (
                Payment.objects.select_for_update(of=("self",), skip_locked=True)
                .select_related("customer")
                .filter(pk=pk)
                .first()
            )
            if locked is not None and _plan_period_due(locked):
                facts = _plan_period_facts(locked)
                if facts is not None:
                    plan_period_record(customer=locked.customer, facts=facts)


def _plan_period_due(payment: Payment) -> bool:
    """Whether the payment, as it is, pays a subscription invoice's period (the invoice still to be checked)."""
    return bool(
        payment.stripe_invoice_id and payment.status in PLAN_PAID and payment.dispute_status != DISPUTE_LOST
    )


@dataclass(frozen=True)
class _PlanLine:
    """What a period invoice billed: the plan, how many units, and the period it pays for."""

    product_id: str
    quantity: int
    period_start: datetime
    period_end: datetime


def _plan_period_facts(locked: Payment, *, invoice: Invoice | None = None) -> PlanPeriodFacts | None:
    """What the paid period invoice of `locked` (a payment under its row lock) billed, or None when its invoice
    is not mirrored (finalized) yet or is not a period invoice. `invoice`: the one the caller holds, if it is
    that payment's (else read)."""
    if (
        invoice is None
        or invoice.project_id != locked.project_id
        or invoice.stripe_invoice_id != locked.stripe_invoice_id
    ):
        invoice = (
            Invoice.objects.filter(project_id=locked.project_id, stripe_invoice_id=locked.stripe_invoice_id)
            .only("project_id", "stripe_subscription_id", "number", "status", "billing_reason", "lines")
            .first()
        )
    if (
        invoice is None
        or invoice.billing_reason not in PLAN_CREDIT_REASONS
        or invoice.status not in INVOICE_FINALIZED
    ):
        return None
    return PlanPeriodFacts(
        payment_id=locked.pk,
        invoice_id=invoice.pk,
        invoice_number=invoice.number,
        subscription_id=invoice.stripe_subscription_id or "",
        reason=invoice.billing_reason,
        ended_at=_ended_at(locked.project_id, invoice.stripe_subscription_id),
        lines=_plan_line_facts(invoice),
    )


def _plan_line_facts(invoice: Invoice) -> list[PlanLineFact]:
    """The invoice's plan lines, each on the version of its product the subscription's item is on (None, its
    latest, for an invoice paid before its subscription is mirrored: a first invoice, paid as the item is made)."""
    lines, items = _plan_lines(invoice)
    held: dict[str, tuple[int, int | None, datetime | None]] = {}
    for product_id, _, version, pending, pending_at in items:
        if product_id is not None:
            held.setdefault(product_id, (version, pending, pending_at))
    return [
        PlanLineFact(
            product_id=line.product_id,
            quantity=line.quantity,
            period_start=line.period_start,
            period_end=line.period_end,
            version=_version_for(held.get(line.product_id), line.period_start),
        )
        for line in lines
    ]


def _version_for(held: tuple[int, int | None, datetime | None] | None, start: datetime) -> int | None:
    """The version a period starting at `start` bills: a move scheduled for then or before is in force."""
    if held is None:
        return None
    version, pending, pending_at = held
    return pending if pending is not None and pending_at is not None and pending_at <= start else version


def _end_lock(project_id: str, stripe_subscription_id: str) -> str:
    """The lock between a subscription's end and its periods' credits: a cancellation mirrored takes it before it
    stops the subscription's slices, and a paid period's recorder before it reads whether the subscription ended
    (`_ended_at`), so that one of them sees the other — the recorder the end, or the cancellation the period's
    slices. Without it, a cancellation mirrored outside the customer's event key (`reconcile --fix`) while a
    worker records the period found no slice to stop, and the recorder had read the subscription as not ended."""
    return f"subscription-end:{project_id}:{stripe_subscription_id}"


def _ended_at(project_id: str, stripe_subscription_id: str | None) -> datetime | None:
    """When the invoice's subscription ended, if it is mirrored canceled (its cancellation learned before the
    invoice's payment); None otherwise. Read under `_end_lock`, held to the caller's commit: a cancellation
    mirrored after this read waits for the period, then stops its slices itself (`subscription_facts_hand`)."""
    if not stripe_subscription_id:
        return None
    lock_for_transaction(_end_lock(project_id, stripe_subscription_id))
    return (
        Subscription.objects.filter(
            project_id=project_id,
            stripe_subscription_id=stripe_subscription_id,
            status=Subscription.Status.CANCELED,
            ended_at__isnull=False,
        )
        .values_list("ended_at", flat=True)
        .first()
    )


def _plan_lines(invoice: Invoice) -> tuple[list[_PlanLine], list[tuple[Any, ...]]]:
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
        return [], []
    # The subscription's items as mirrored (`ITEM_PRODUCTS`: product, usage type, version, move scheduled), one
    # row per item, or one of None for a subscription without items; none while it is not mirrored.
    items = (
        list(
            statements.ITEM_PRODUCTS.rows(
                project_id=invoice.project_id, stripe_subscription_id=invoice.stripe_subscription_id
            )
        )
        if invoice.stripe_subscription_id
        else []
    )
    # The products of its metered prices, in its items' order (a first invoice has no line for them: they bill
    # in arrears); while it is not mirrored, the invoice's usage lines stand for them.
    metered = (
        [product_id for product_id, usage_type, *_ in items if usage_type == Price.UsageType.METERED]
        if items
        else None
    )
    units = product_units(
        [(price.product_id, False, quantity) for price, quantity, _, _ in licensed]
        + [
            (product_id, True, 1)
            for product_id in ([price.product_id for price in usage] if metered is None else metered)
        ]
    )
    periods = {price.product_id: (start, end) for price, _, start, end in reversed(licensed)}
    first = (licensed[0][2], licensed[0][3])
    lines = [
        _PlanLine(
            product_id=product_id,
            quantity=quantity,
            period_start=periods.get(product_id, first)[0],
            period_end=periods.get(product_id, first)[1],
        )
        for product_id, quantity in units
    ]
    return lines, items


def _catalog_price(project_id: str, stripe_price_id: str) -> Price | None:
    """Our price for a Stripe price id: the current one, or one an amount change replaced (its history)."""
    prices = Price.objects.filter(project_id=project_id)
    price = statements.PRICE.first(project_id=project_id, stripe_price_id=stripe_price_id)
    if price is None:
        price = next(
            (p for p in prices.exclude(stripe_price_history=[]) if stripe_price_id in p.stripe_price_history),
            None,
        )
    return price
