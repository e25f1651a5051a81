"""An adoption's customer and money steps: Stripe customers keyed by the field the operator named, then their
subscriptions, invoices (with the payment of each), charges, refunds and disputes, each compared with its mirror
the way reconciliation compares it and, when it differs, applied through the mirror the webhooks use, stamped
with the adoption point (so an event older than it, arriving later, is not applied over what was read)."""

from functools import partial
from typing import Any

from billing.models import Invoice, Payment, Subscription
from billing.services.adoption_ownership import held_by_another_project
from billing.services.adoption_state import Adoption, paced
from billing.services.invoices import invoice_apply, invoice_link_payment_intent, invoice_payment_apply
from billing.services.reconciliation_invoices import _InvoiceChecks, _mirrored_subscription
from billing.services.reconciliation_payments import _PaymentChecks
from billing.services.reconciliation_recording import Expected
from billing.services.reconciliation_subscriptions import _SubscriptionChecks
from billing.services.subscription_mirror import Ambiguous, subscription_apply, subscription_refetch_and_apply
from billing.services.subscription_schedules import ScheduleAmbiguous, pending_change_of, schedule_apply
from core.errors import ApiError
from customers.models import Customer, TestClock
from customers.services.stripe_adopt import customer_adopt
from customers.services.test_clocks import clock_adopt
from stripe_gateway.gateway import stripe_id


def _differences(pairs: Expected) -> list[str]:
    return sorted(name for name, (local, stripe) in pairs.items() if local != stripe)


def customers_adopt(state: Adoption) -> None:
    """Every Stripe customer with the key field becomes (or is linked to) the project's customer of that
    external id; one another project owns (or on a test clock another project owns), or one without the key
    field, is left out and listed."""
    for stripe_customer in state.reader.each("customers", {}):
        clock_id = stripe_id(stripe_customer.get("test_clock"))
        if clock_id and clock_id in state.clocks:
            held_by_another_project(state, "test_clocks", state.clocks[clock_id])
        if held_by_another_project(state, "customers", stripe_customer, parents=[clock_id]):
            continue
        external_id = state.customer_key.read(stripe_customer)
        if not external_id:
            state.report.count("customers", "without_key")
            state.report.note("customers_without_key", stripe_customer["id"])
            continue
        customer, outcome = customer_adopt(
            project=state.project,
            stripe_customer=stripe_customer,
            external_id=external_id,
            test_clock=_clock_adopt(state, stripe_id(stripe_customer.get("test_clock"))),
            dry_run=state.dry_run,
        )
        if outcome == "conflict":
            state.report.count("customers", "conflict")
            state.report.note(
                "customer_conflicts", {"stripe_customer": stripe_customer["id"], "external_id": external_id}
            )
            continue
        verb = {"created": "create", "linked": "link", "updated": "put on its test clock"}.get(
            outcome, outcome
        )
        state.report.count("customers", outcome, f"{verb} customer {external_id} ← {stripe_customer['id']}")
        state.customers[stripe_customer["id"]] = customer


def _clock_adopt(state: Adoption, stripe_clock_id: str) -> TestClock | None:
    """The project's row of the test clock a Stripe customer is on (made the first time one is met), so the
    customer is on it as one created on it through Tollgate is; None for a customer on no clock (or a dry
    run's clock still to be made)."""
    if not stripe_clock_id:
        return None
    if stripe_clock_id not in state.test_clocks:
        stripe_clock = state.clocks.get(stripe_clock_id)
        if stripe_clock is None:  # made after the adoption point: its customers are the next run's
            state.test_clocks[stripe_clock_id] = None
            return None
        clock, outcome = clock_adopt(
            project=state.project, actor=state.actor, stripe_clock=stripe_clock, dry_run=state.dry_run
        )
        state.report.count("test_clocks", outcome, f"create test clock {stripe_clock_id}")
        state.test_clocks[stripe_clock_id] = clock
    return state.test_clocks[stripe_clock_id]


def subscriptions_adopt(state: Adoption) -> None:
    """Every subscription (every status) of an adopted customer with at least one mapped price; its items of
    unmapped prices are not mirrored (and listed)."""
    params = {"status": "all", "expand": ["data.discounts"]}  # the discount mirror reads nothing more
    for stripe_subscription in state.reader.each("subscriptions", params):
        customer_id = stripe_id(stripe_subscription.get("customer"))
        if held_by_another_project(state, "subscriptions", stripe_subscription, parents=[customer_id]):
            continue
        if customer_id not in state.customers:
            state.report.count("subscriptions", "customer_not_adopted")
            continue
        prices = [
            stripe_id(item.get("price"))
            for item in (stripe_subscription.get("items") or {}).get("data") or []
        ]
        left_out = [price for price in prices if price not in state.prices]
        adopted = len(left_out) < len(prices)
        if left_out and (adopted or any(price in state.skipped_prices for price in left_out)):
            state.report.note(
                "subscription_items_not_adopted",
                {
                    "subscription": stripe_subscription["id"],
                    "adopted": adopted,
                    "prices": left_out,
                    "reasons": {price: _left_out_reason(state, price) for price in left_out},
                },
            )
        if not adopted:
            state.report.count("subscriptions", "unmapped")
            state.report.note("unmapped_subscriptions", stripe_subscription["id"])
            continue
        customer = state.customers[customer_id]
        pairs = (
            _SubscriptionChecks._subscription_pairs(customer, stripe_subscription)
            if customer is not None
            else None
        )
        outcome, line = _outcome("subscription", stripe_subscription, pairs)
        state.report.count("subscriptions", outcome, line)
        state.report.counts["subscriptions_by_status"][str(stripe_subscription.get("status"))] += 1
        if state.dry_run or outcome == "unchanged":
            continue
        try:
            paced(
                subscription_apply,
                account=state.account,
                stripe_subscription=stripe_subscription,
                event_created=state.as_of(stripe_subscription),
            )
        except Ambiguous:  # an event of the same second applied meanwhile: Stripe's state now decides
            paced(
                subscription_refetch_and_apply,
                account=state.account,
                gateway=state.reader.gateway,
                stripe_subscription_id=stripe_subscription["id"],
                event_created=state.as_of(stripe_subscription),
            )


def _left_out_reason(state: Adoption, price: str) -> str:
    return state.skipped_prices.get(price) or "its product is not in the mapping: map it and adopt again"


def schedules_adopt(state: Adoption) -> None:
    """The subscription schedules (not yet ended) of adopted subscriptions: the change each holds for its next
    phase becomes the subscription's `pending_change`, as its `subscription_schedule.*` events would make it
    (`schedule_apply`, stamped with the adoption point, so older schedule events change nothing)."""
    try:
        schedules = list(state.reader.each("subscription_schedules", {}))
    except ApiError:
        state.report.note(
            "subscription_schedules", "not adopted: this Stripe API has no subscription schedules"
        )
        return
    for schedule in schedules:
        if schedule.get("status") not in ("active", "not_started"):
            continue
        owners = [stripe_id(schedule.get("subscription")), stripe_id(schedule.get("customer"))]
        if held_by_another_project(state, "subscription_schedules", schedule, parents=owners):
            continue
        subscription = Subscription.objects.filter(
            project=state.project, stripe_subscription_id=stripe_id(schedule.get("subscription"))
        ).first()
        if subscription is None and not (
            state.dry_run and stripe_id(schedule.get("customer")) in state.customers
        ):
            state.report.count("subscription_schedules", "subscription_not_adopted")
            continue
        wanted = pending_change_of(project=state.project, stripe_schedule=schedule)
        if subscription is not None and subscription.pending_change == wanted:
            state.report.count("subscription_schedules", "unchanged")
            continue
        outcome = "updated" if subscription is not None and subscription.pending_change else "created"
        state.report.count(
            "subscription_schedules", outcome, f"pending change of {schedule.get('subscription')}"
        )
        if state.dry_run:
            continue
        applied = {
            "account": state.account,
            "stripe_schedule": schedule,
            "event_created": state.as_of(schedule),
        }
        try:
            paced(schedule_apply, **applied)
        except (
            ScheduleAmbiguous
        ):  # a schedule event of the same second applied meanwhile: this read is Stripe's now
            paced(schedule_apply, **applied, force=True)


def _outcome(kind: str, stripe_object: dict[str, Any], pairs: Expected | None) -> tuple[str, str]:
    if pairs is None:
        return "created", f"create {kind} {stripe_object['id']} ({stripe_object.get('status')})"
    changed = _differences(pairs)
    if changed:
        return "updated", f"update {kind} {stripe_object['id']}: {', '.join(changed)}"
    return "unchanged", ""


def invoices_adopt(state: Adoption) -> None:
    """Every invoice of an adopted customer, and the payment of each paid or attempted one (its attempts read
    with the invoice: `expand[]=data.payments`)."""
    for stripe_invoice in state.reader.each("invoices", {"expand": ["data.payments"]}):
        customer_id = stripe_id(stripe_invoice.get("customer"))
        owners = [customer_id, _invoice_subscription(stripe_invoice)]
        if held_by_another_project(state, "invoices", stripe_invoice, parents=owners):
            continue
        if customer_id not in state.customers:
            state.report.count("invoices", "customer_not_adopted")
            continue
        customer = state.customers[customer_id]
        pairs = (
            _InvoiceChecks._invoice_pairs(
                customer, stripe_invoice, _mirrored_subscription(customer, stripe_invoice)
            )
            if customer is not None
            else None
        )
        outcome, line = _outcome("invoice", stripe_invoice, pairs)
        state.report.count("invoices", outcome, line)
        invoice = None
        if not state.dry_run and outcome != "unchanged":
            invoice = invoice_apply(
                account=state.account,
                stripe_invoice=stripe_invoice,
                event_created=state.as_of(stripe_invoice),
            )
        _invoice_payment_adopt(state, customer, stripe_invoice, invoice)


def _invoice_subscription(stripe_invoice: dict[str, Any]) -> str:
    """The Stripe subscription an invoice bills ("" for none), at this API version under `parent`."""
    details = (stripe_invoice.get("parent") or {}).get("subscription_details") or {}
    return stripe_id(details.get("subscription") or stripe_invoice.get("subscription"))


def _invoice_payment_adopt(
    state: Adoption, customer: Customer | None, stripe_invoice: dict[str, Any], invoice: Invoice | None
) -> None:
    status = stripe_invoice.get("status")
    paid = status == "paid"
    attempted = int(stripe_invoice.get("attempt_count") or 0) > 0
    if not (paid or (status in ("open", "uncollectible") and attempted)):
        return
    attempts = (stripe_invoice.get("payments") or {}).get("data")
    if attempts is None:  # not expanded (never, from this read): one read of them
        attempts = state.reader.invoice_payments(invoice=stripe_invoice["id"])
    intent = _InvoiceChecks._intent_of(attempts)
    payment = (
        Payment.objects.filter(project=state.project, stripe_invoice_id=stripe_invoice["id"]).first()
        if customer is not None
        else None
    )
    if payment is None:
        outcome = "created"
    elif _payment_matches(payment, stripe_invoice, intent):
        outcome = "unchanged"
    else:
        outcome = "updated"
    line = f"{'create' if outcome == 'created' else 'update'} payment of invoice {stripe_invoice['id']}"
    state.report.count("payments", outcome, line)
    if state.dry_run or outcome == "unchanged":
        return
    if invoice is None:
        invoice = Invoice.objects.get(project=state.project, stripe_invoice_id=stripe_invoice["id"])
    invoice_link_payment_intent(invoice=invoice, payment_intent_id=intent)
    invoice_payment_apply(invoice=invoice, stripe_invoice=stripe_invoice, payment_intent_id=intent, paid=paid)


def _payment_matches(payment: Payment, stripe_invoice: dict[str, Any], intent: str) -> bool:
    if intent and payment.stripe_payment_intent_id != intent:
        return False
    if stripe_invoice.get("status") == "paid":
        return payment.status in (*Payment.PAID_STATUSES, Payment.Status.NO_PAYMENT_REQUIRED)
    return payment.status in (Payment.Status.REQUIRES_PAYMENT_METHOD, Payment.Status.FAILED)


def charges_adopt(state: Adoption) -> None:
    """Refunded amounts and disputes of the adopted payments (by their PaymentIntent), as reconciliation
    repairs them: the charges, then Stripe's refunds, then its disputes."""
    checks = (
        ("charges", _PaymentChecks._charge_pairs, _PaymentChecks._charge_repair),
        ("refunds", _PaymentChecks._refund_pairs, _PaymentChecks._refund_repair),
        ("disputes", _PaymentChecks._dispute_pairs, _PaymentChecks._dispute_repair),
    )
    for kind, pairs, repair in checks:
        for obj in state.reader.each(kind, {}):
            payment = _payment_of(state, stripe_id(obj.get("payment_intent")))
            if payment is None:
                continue
            _apply(state, kind, obj, pairs(payment, obj), partial(repair, payment, obj))


def _payment_of(state: Adoption, intent: str) -> Payment | None:
    if not intent:
        return None
    return (
        Payment.objects.filter(project=state.project, stripe_payment_intent_id=intent)
        .select_related("project", "customer")
        .first()
    )


def _apply(
    state: Adoption, kind: str, stripe_object: dict[str, Any], pairs: Expected | None, repair: Any
) -> None:
    outcome, line = _outcome(kind.rstrip("s"), stripe_object, pairs)
    state.report.count(kind, outcome, line)
    if not state.dry_run and outcome != "unchanged":
        repair()
