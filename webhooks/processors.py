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

from billing import subscriptions
from billing.gateway import StripeGateway, gateway_for, platform_gateway
from billing.models import Customer, Payment
from billing.payments import (
    payment_apply_checkout,
    payment_apply_intent,
    payment_apply_refunded,
    payment_transition,
)
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


def _id(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _payment_for(
    event: StripeEvent, *, session: str = "", intent: str = "", metadata: dict[str, Any] | None = None
) -> Payment | None:
    payments = _payments(event)
    conditions = Q()
    if session:
        conditions |= Q(stripe_checkout_session_id=session)
    if intent:
        conditions |= Q(stripe_payment_intent_id=intent)
    payment = payments.filter(conditions).first() if conditions else None
    if payment is None and metadata and metadata.get("tollgate_payment"):
        payment = payments.filter(pk=metadata["tollgate_payment"]).first()
    return payment


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
    payment_apply_checkout(payment=payment, stripe_session=session)


@handles(
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.canceled",
    "payment_intent.processing",
)
def payment_intent(event: StripeEvent) -> None:
    intent = event.data_object
    payment = _payment_for(event, intent=intent.get("id", ""), metadata=intent.get("metadata"))
    if payment is None:
        return
    if not payment.stripe_payment_intent_id:
        Payment.objects.filter(pk=payment.pk, stripe_payment_intent_id="").update(
            stripe_payment_intent_id=intent["id"]
        )
    payment_apply_intent(payment=payment, intent=intent)


@handles("charge.refunded")
def charge_refunded(event: StripeEvent) -> None:
    charge = event.data_object
    payment = _payment_for(event, intent=_id(charge.get("payment_intent")), metadata=charge.get("metadata"))
    if payment is None:
        return
    refunded = min(int(charge.get("amount_refunded") or 0), payment.amount)
    payment_apply_refunded(payment=payment, amount_refunded=refunded)


@handles("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")
def dispute(event: StripeEvent) -> None:
    """A dispute flags the payment (access is kept meanwhile) and its outcome is recorded. A lost dispute ends
    what the payment granted; a won one returns the payment to its paid status."""
    stripe_dispute = event.data_object
    payment = _payment_for(event, intent=_id(stripe_dispute.get("payment_intent")))
    if payment is None:
        return
    outcome = str(stripe_dispute.get("status") or "")
    if event.type == "charge.dispute.closed" and outcome == "won":
        restored = Payment.Status.PARTIALLY_REFUNDED if payment.amount_refunded else Payment.Status.SUCCEEDED
        payment_transition(
            payment=payment, allowed_from=(Payment.Status.DISPUTED,), status=restored, dispute_status=outcome
        )
        return
    # A lost dispute ends what the payment granted: the transition hands the new dispute status to entitlements.
    payment_transition(
        payment=payment,
        allowed_from=Payment.PAID_STATUSES,
        status=Payment.Status.DISPUTED,
        dispute_status=outcome,
    )


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
        subscriptions.subscription_apply(
            account=event.account, stripe_subscription=event.data_object, event_created=event.stripe_created
        )
    except subscriptions.Ambiguous:
        subscriptions.subscription_refetch_and_apply(
            account=event.account,
            gateway=_gateway(event),
            stripe_subscription_id=event.data_object["id"],
            event_created=event.stripe_created,
        )


def _invoice_payment_intent(event: StripeEvent, invoice_id: str) -> str:
    """The PaymentIntent that paid an invoice (invoices are paid through invoice_payments)."""
    subscriptions.stripe_read_allowed(event.account)
    payments = (
        _gateway(event)
        .call(lambda c: c.v1.invoice_payments.list({"invoice": invoice_id, "limit": 10}))
        .to_dict()
    )
    for invoice_payment in payments.get("data") or []:
        payment = invoice_payment.get("payment") or {}
        if payment.get("payment_intent"):
            return _id(payment["payment_intent"])
    return ""


@handles(
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.voided",
    "invoice.marked_uncollectible",
)
def invoice(event: StripeEvent) -> None:
    stripe_invoice = event.data_object
    local = subscriptions.invoice_apply(
        account=event.account, stripe_invoice=stripe_invoice, event_created=event.stripe_created
    )
    if local is None:
        return
    # `invoice.payment_succeeded` accompanies `invoice.paid`: the payment is settled on the latter only.
    if event.type in ("invoice.paid", "invoice.payment_failed"):
        paid = event.type != "invoice.payment_failed"
        intent = (
            _invoice_payment_intent(event, stripe_invoice["id"])
            if stripe_invoice.get("amount_paid") or not paid
            else ""
        )
        subscriptions.invoice_payment_apply(
            invoice=local, stripe_invoice=stripe_invoice, payment_intent_id=intent, paid=paid
        )


@handles("customer.updated", "customer.deleted")
def customer(event: StripeEvent) -> None:
    """Links a Stripe customer created outside our API (e.g. by Checkout) to the tenant's customer through our
    metadata; a customer deleted at Stripe is unlinked, so the next purchase creates a new one."""
    stripe_customer = event.data_object
    local = subscriptions.customer_for_stripe(
        account=event.account,
        stripe_customer_id=stripe_customer.get("id", ""),
        metadata=stripe_customer.get("metadata"),
    )
    if local is not None and event.type == "customer.deleted":
        Customer.objects.filter(pk=local.pk, stripe_customer_id=stripe_customer["id"]).update(
            stripe_customer_id=""
        )
