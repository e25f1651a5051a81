"""What each Stripe event type does to local state. One function per family, registered by type.

Events are routed by the Stripe ids we already hold (checkout session, payment intent, charge), and only then
by our metadata: renewal invoices and their payments carry none of it. Every effect is monotone or
compare-and-set (an open payment settles once; refunds recompute from their own rows), so duplicates and any
arrival order converge on Stripe's state.
"""

import logging
from collections.abc import Callable
from typing import Any

from django.db.models import Q, QuerySet

from billing.models import Invoice, Payment
from billing.payments.refunds import payment_apply_charge, payment_apply_dispute, refund_mirror
from billing.payments.transitions import payment_apply_checkout, payment_apply_intent, payment_transition
from billing.subscriptions.invoices import invoice_apply, invoice_link_payment_intent, invoice_payment_apply
from billing.subscriptions.mirror import (
    Ambiguous,
    customer_for_stripe,
    stripe_read_allowed,
    subscription_apply,
    subscription_refetch_and_apply,
)
from core.context import subjects_note
from customers.models import Customer
from stripe_gateway.gateway import StripeGateway, gateway_for, platform_gateway, stripe_id
from webhooks.models import PLATFORM_ACCOUNT, StripeEvent

logger = logging.getLogger(__name__)

Processor = Callable[[StripeEvent], None]
PROCESSORS: dict[str, Processor] = {}


def handles(*types: str) -> Callable[[Processor], Processor]:
    def register(func: Processor) -> Processor:
        for event_type in types:
            PROCESSORS[event_type] = func
        return func

    return register


def _payments(event: StripeEvent) -> QuerySet[Payment]:
    """Payments that can belong to the account the event came from."""
    queryset = Payment.objects.select_related("project", "customer")
    if event.account == PLATFORM_ACCOUNT:
        return queryset.filter(project__stripe_secret_key="")
    return queryset.filter(project_id=event.account)


def _invoices(event: StripeEvent) -> QuerySet[Invoice]:
    queryset = Invoice.objects.select_related("project")
    if event.account == PLATFORM_ACCOUNT:
        return queryset.filter(project__stripe_secret_key="")
    return queryset.filter(project_id=event.account)


def _payment_for(
    event: StripeEvent,
    *,
    session: str = "",
    intent: str = "",
    metadata: dict[str, Any] | None = None,
    ask_stripe: bool = False,
) -> Payment | None:
    """The payment an event is about: by the Stripe ids we hold, then our metadata, then (an invoice's intent,
    which carries neither) the invoice that the intent paid — known locally, or, with `ask_stripe`, read from
    Stripe's /v1/invoice_payments. The link found is recorded on the payment."""
    payments = _payments(event)
    conditions = Q()
    if session:
        conditions |= Q(stripe_checkout_session_id=session)
    if intent:
        conditions |= Q(stripe_payment_intent_id=intent)
    payment = payments.filter(conditions).first() if conditions else None
    if payment is None and metadata and metadata.get("tollgate_payment"):
        payment = payments.filter(pk=metadata["tollgate_payment"]).first()
    if payment is None and intent:
        invoice = _invoices(event).filter(stripe_payment_intent_id=intent).first()
        if invoice is None and ask_stripe:
            invoice_id = _intent_invoice(event, intent)
            invoice = _invoices(event).filter(stripe_invoice_id=invoice_id).first() if invoice_id else None
            if invoice is not None:
                invoice_link_payment_intent(invoice=invoice, payment_intent_id=intent)
            elif invoice_id and _ours(event):
                # Stripe's invoice of one of our customers, whose own events are still on their way: apply
                # this one after them (a retry), rather than lose what it says.
                raise NotYetMirrored(f"Invoice {invoice_id} is not mirrored yet.")
        if invoice is not None:
            payment = payments.filter(
                project=invoice.project, stripe_invoice_id=invoice.stripe_invoice_id
            ).first()
    if payment is not None and intent and not payment.stripe_payment_intent_id:
        Payment.objects.filter(pk=payment.pk, stripe_payment_intent_id="").update(
            stripe_payment_intent_id=intent
        )
        payment.stripe_payment_intent_id = intent
    if payment is not None:
        subjects_note(
            project=payment.project.slug,
            customer=payment.customer.external_id,
            payment=payment.pk,
            reference=payment.reference,
        )
    return payment


def stripe_customer_of(*, account: str, stripe_object_id: str) -> str:
    """The Stripe id of the customer that one of our invoices (`in_…`) or payment intents (`pi_…`) belongs to,
    as the mirror knows it; "" when it is not ours, not mirrored yet, or a guest's. Routes the events whose
    body names no customer (an invoice's payment record, a dispute) to their customer's ordering key."""
    scope = Q(project__stripe_secret_key="") if account == PLATFORM_ACCOUNT else Q(project_id=account)
    found: str | None = None
    if stripe_object_id.startswith("in_"):
        found = (
            Invoice.objects.filter(scope, stripe_invoice_id=stripe_object_id)
            .values_list("customer__stripe_customer_id", flat=True)
            .first()
        )
    elif stripe_object_id.startswith("pi_"):
        found = (
            Payment.objects.filter(scope, stripe_payment_intent_id=stripe_object_id)
            .values_list("customer__stripe_customer_id", flat=True)
            .first()
        ) or (
            Invoice.objects.filter(scope, stripe_payment_intent_id=stripe_object_id)
            .values_list("customer__stripe_customer_id", flat=True)
            .first()
        )
    return found or ""


class NotYetMirrored(Exception):
    """The event is about an object of ours whose mirror does not exist yet: it is retried later."""


def _ours(event: StripeEvent) -> bool:
    """Whether the event's object belongs to one of our customers (objects without a customer: assumed)."""
    customer = stripe_id(event.data_object.get("customer"))
    if not customer:
        return True
    return customer_for_stripe(account=event.account, stripe_customer_id=customer) is not None


def _stored_invoice_payment_intent(event: StripeEvent, invoice_id: str) -> str:
    """The PaymentIntent that the newest stored `invoice_payment.*` event of the invoice names, or ""."""
    stored = (
        StripeEvent.objects.filter(
            # Keyed by the invoice when stored, by its customer (this event's own key) once handed over.
            ordering_key__in=[f"{event.account}:{invoice_id}", event.ordering_key],
            type__startswith="invoice_payment.",
            payload__data__object__invoice=invoice_id,
        )
        .order_by("-stripe_created")
        .values_list("payload", flat=True)
        .first()
    )
    return stripe_id(
        ((stored or {}).get("data", {}).get("object") or {}).get("payment", {}).get("payment_intent")
    )


def _link_invoice_intent(event: StripeEvent, invoice_id: str) -> None:
    """Records the PaymentIntent of an invoice on its mirror and payment when an `invoice_payment.*` event
    already told it (no Stripe read): that event may have arrived before the invoice or its payment existed."""
    invoice = _invoices(event).filter(stripe_invoice_id=invoice_id).first()
    intent = invoice.stripe_payment_intent_id if invoice is not None else ""
    if not intent:
        intent = _stored_invoice_payment_intent(event, invoice_id)
    if invoice is not None and intent:
        invoice_link_payment_intent(invoice=invoice, payment_intent_id=intent)


def _intent_invoice(event: StripeEvent, intent: str) -> str:
    """The invoice a PaymentIntent paid (or tried to), read from Stripe."""
    stripe_read_allowed(event.account)
    listed = _gateway(event).invoice_payments_list(payment_intent=intent)
    return next((stripe_id(record.get("invoice")) for record in listed if record.get("invoice")), "")


@handles(
    "checkout.session.completed",
    "checkout.session.expired",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
)
def checkout_session(event: StripeEvent) -> None:
    session = event.data_object
    payment = _payment_for(event, session=session.get("id", ""), metadata=session.get("metadata"))
    if payment is None:
        logger.info("Checkout session %s is not ours; ignored.", session.get("id"))
        return
    if event.type == "checkout.session.async_payment_failed":
        payment_transition(payment=payment, allowed_from=Payment.OPEN_STATUSES, status=Payment.Status.FAILED)
        return
    if not payment.stripe_checkout_session_id:
        Payment.objects.filter(pk=payment.pk, stripe_checkout_session_id="").update(
            stripe_checkout_session_id=session["id"]
        )
    payment = payment_apply_checkout(payment=payment, stripe_session=session)
    if payment.stripe_invoice_id and not payment.stripe_payment_intent_id:
        _link_invoice_intent(event, payment.stripe_invoice_id)


@handles(
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.canceled",
    "payment_intent.processing",
)
def payment_intent(event: StripeEvent) -> None:
    # An invoice's intent that we cannot place locally is left alone (no Stripe read): the invoice's own
    # events settle its payment, and reconciliation links it if they are lost.
    intent = event.data_object
    payment = _payment_for(event, intent=intent.get("id", ""), metadata=intent.get("metadata"))
    if payment is None:
        return
    payment_apply_intent(payment=payment, intent=intent)


@handles("charge.refunded")
def charge_refunded(event: StripeEvent) -> None:
    charge = event.data_object
    if charge.get("object") != "charge":
        return
    payment = _payment_for(
        event,
        intent=stripe_id(charge.get("payment_intent")),
        metadata=charge.get("metadata"),
        ask_stripe=True,
    )
    if payment is None:
        return
    payment_apply_charge(payment=payment, charge=charge)


@handles("refund.created", "refund.updated", "refund.failed", "charge.refund.updated")
def refund(event: StripeEvent) -> None:
    """A refund's own state (its status may be older than what we hold: only forward moves apply)."""
    stripe_refund = event.data_object
    if stripe_refund.get("object") != "refund":
        return
    payment = _payment_for(
        event,
        intent=stripe_id(stripe_refund.get("payment_intent")),
        metadata=stripe_refund.get("metadata"),
        ask_stripe=True,
    )
    if payment is None:
        return
    refund_mirror(payment=payment, stripe_refund=stripe_refund)


@handles("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")
def dispute(event: StripeEvent) -> None:
    """A dispute flags the payment (access is kept meanwhile) and its outcome is recorded. A lost dispute ends
    what the payment granted; a won one returns the payment to its paid status."""
    stripe_dispute = event.data_object
    payment = _payment_for(event, intent=stripe_id(stripe_dispute.get("payment_intent")), ask_stripe=True)
    if payment is None:
        return
    payment_apply_dispute(payment=payment, dispute=stripe_dispute)


def _gateway(event: StripeEvent) -> StripeGateway:
    return gateway_for(event.project) if event.project is not None else platform_gateway()


@handles(
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.trial_will_end",
    "customer.subscription.paused",
    "customer.subscription.resumed",
)
def subscription(event: StripeEvent) -> None:
    try:
        subscription_apply(
            account=event.account, stripe_subscription=event.data_object, event_created=event.stripe_created
        )
    except Ambiguous:
        subscription_refetch_and_apply(
            account=event.account,
            gateway=_gateway(event),
            stripe_subscription_id=event.data_object["id"],
            event_created=event.stripe_created,
        )


def _invoice_payment_intent(event: StripeEvent, invoice: Invoice) -> str:
    """The PaymentIntent of an invoice's payment (invoices are paid through invoice_payments): known from an
    `invoice_payment.*` event already stored, else read from Stripe."""
    if invoice.stripe_payment_intent_id:
        return invoice.stripe_payment_intent_id
    intent = _stored_invoice_payment_intent(event, invoice.stripe_invoice_id)
    if not intent:
        stripe_read_allowed(event.account)
        for record in _gateway(event).invoice_payments_list(invoice=invoice.stripe_invoice_id):
            intent = stripe_id((record.get("payment") or {}).get("payment_intent"))
            if intent:
                break
    invoice_link_payment_intent(invoice=invoice, payment_intent_id=intent)
    return intent


@handles(
    "invoice.created",
    "invoice.finalized",
    "invoice.updated",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.voided",
    "invoice.marked_uncollectible",
)
def invoice(event: StripeEvent) -> None:
    """Mirrors the invoice; a paid one (whichever event says so: `invoice.paid` may be lost while
    `invoice.payment_succeeded` arrives) settles its payment, a failed attempt records it."""
    stripe_invoice = event.data_object
    local = invoice_apply(
        account=event.account, stripe_invoice=stripe_invoice, event_created=event.stripe_created
    )
    if local is None:
        return
    paid = stripe_invoice.get("status") == "paid"
    if not (paid or event.type == "invoice.payment_failed"):
        if not local.stripe_payment_intent_id and int(stripe_invoice.get("attempt_count") or 0):
            _link_invoice_intent(event, local.stripe_invoice_id)  # no read: a stored invoice_payment event
        return
    intent = (
        _invoice_payment_intent(event, local)
        if int(stripe_invoice.get("amount_paid") or 0) or not paid
        else ""
    )
    invoice_payment_apply(invoice=local, stripe_invoice=stripe_invoice, payment_intent_id=intent, paid=paid)


@handles("invoice_payment.paid")
def invoice_payment(event: StripeEvent) -> None:
    """Links an invoice's payment to the PaymentIntent that paid it (no Stripe read needed later)."""
    record = event.data_object
    intent = stripe_id((record.get("payment") or {}).get("payment_intent"))
    local = _invoices(event).filter(stripe_invoice_id=stripe_id(record.get("invoice"))).first()
    if local is not None and intent:
        invoice_link_payment_intent(invoice=local, payment_intent_id=intent)


@handles("customer.updated", "customer.deleted")
def customer(event: StripeEvent) -> None:
    """Links a Stripe customer created outside our API (e.g. by Checkout) to the tenant's customer through our
    metadata; a customer deleted at Stripe is unlinked, so the next purchase creates a new one."""
    stripe_customer = event.data_object
    local = customer_for_stripe(
        account=event.account,
        stripe_customer_id=stripe_customer.get("id", ""),
        metadata=stripe_customer.get("metadata"),
    )
    if local is not None and event.type == "customer.deleted":
        Customer.objects.filter(pk=local.pk, stripe_customer_id=stripe_customer["id"]).update(
            stripe_customer_id=""
        )
