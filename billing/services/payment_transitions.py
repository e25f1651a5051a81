"""Stripe's state applied to payments: `payment_transition` changes a payment under its row lock (with its
tenant-visible event and entitlements hook), and the PaymentIntent and Checkout Session states are applied
through it, whether they come from webhooks, reconciliation or a `payment_refresh` read.
"""

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from billing import statements
from billing.models import CheckoutSession, Invoice, Payment
from billing.representations import CheckoutSessionOutput, PaymentOutput
from billing.services.entitlement_facts import payment_facts_hand
from billing.services.journal import journal_payment
from billing.services.revenue_figures import payment_figures
from core.cache import cache_add
from core.errors import ApiError
from customers.models import Customer
from events.services.record import events_record
from projects.models import Project
from stripe_gateway.gateway import gateway_for, stripe_id

logger = logging.getLogger(__name__)


REFRESH_INTERVAL_SECONDS = 2


def intent_status(intent: dict[str, Any]) -> str:
    status = intent["status"]
    if status == "succeeded":
        return Payment.Status.SUCCEEDED
    if status == "requires_action":
        return Payment.Status.REQUIRES_ACTION
    if status == "processing":
        return Payment.Status.PROCESSING
    if status == "canceled":
        return Payment.Status.CANCELED
    if status == "requires_payment_method" and intent.get("last_payment_error"):
        return Payment.Status.REQUIRES_PAYMENT_METHOD
    return Payment.Status.PENDING


_EVENT_FOR_STATUS: dict[str, str] = {
    Payment.Status.SUCCEEDED: "payment.succeeded",
    Payment.Status.REQUIRES_PAYMENT_METHOD: "payment.failed",
    Payment.Status.FAILED: "payment.failed",
    Payment.Status.REQUIRES_ACTION: "payment.requires_action",
    Payment.Status.EXPIRED: "payment.expired",
    Payment.Status.REFUNDED: "payment.refunded",
    Payment.Status.PARTIALLY_REFUNDED: "payment.refunded",
}


# A tenant event a transition tells, rendered when it is recorded: (type, representation, object, previous
# attributes). A caller that changes several rows in one transaction collects them and records them at once.
Told = tuple[str, type[PaymentOutput] | type[CheckoutSessionOutput], Any, dict[str, Any]]


def _tell(project: Project, told: list[Told]) -> None:
    """Records the tenant events collected, in order, in one call."""
    if told:
        events_record(
            project=project,
            events=[(type, dict(output(obj).data), previous) for type, output, obj, previous in told],
        )


def payment_transition(*, payment: Payment, allowed_from: tuple[str, ...], **fields: Any) -> Payment:
    """Changes a payment under its row lock if its status is still one of `allowed_from`, and records the
    tenant-visible event of a status change in the same transaction. Re-applying the same state is a no-op,
    so duplicate and late Stripe events converge."""
    with transaction.atomic(savepoint=False):
        return payment_transition_locked(
            payment=_payment_locked(payment), allowed_from=allowed_from, **fields
        )


def _payment_locked(payment: Payment) -> Payment:
    """The payment under its row lock, with its project and customer (not locked): the tenant event and
    entitlements need them. The project the caller holds is used as it is (a payment never changes project,
    and a project row read again would be decrypted again); the customer is read with the lock, and its
    project is the payment's."""
    project_held = Payment.project.is_cached(payment)
    related = ("customer",) if project_held else ("project", "customer")
    locked = Payment.objects.select_for_update(of=("self",)).select_related(*related).get(pk=payment.pk)
    if project_held:
        locked.project = payment.project
    if locked.customer.project_id == locked.project_id:
        locked.customer.project = locked.project
    return locked


def payment_transition_locked(
    *,
    payment: Payment,
    allowed_from: tuple[str, ...],
    invoice: Invoice | None = None,
    told: list[Told] | None = None,
    **fields: Any,
) -> Payment:
    """`payment_transition` on a payment the caller's transaction already holds under its row lock (read with
    `select_for_update` in it, or created by it), its project and customer loaded as `_payment_locked` loads
    them. `invoice`: the payment's invoice, as the caller holds it (not read again for its plan lines).
    `told`: where the tenant event goes when the caller records it with its own (else it is recorded here)."""
    locked = payment
    if locked.status not in allowed_from:
        return locked
    changed = {name: value for name, value in fields.items() if getattr(locked, name) != value}
    if not changed:
        return locked
    previous_status = locked.status
    if changed.get("status") == Payment.Status.SUCCEEDED and not locked.succeeded_at:
        changed["succeeded_at"] = timezone.now()
    for name, value in changed.items():
        setattr(locked, name, value)
    locked.save(update_fields=[*changed, *payment_figures(locked), "updated_at"])
    journal_payment(locked)
    event_type = _EVENT_FOR_STATUS.get(locked.status)
    if "status" in changed or "dispute_status" in changed:
        # Paid, refunded, disputed, dispute lost: what the payment grants may have changed.
        payment_facts_hand(payment=locked, invoice=invoice)
    if "status" in changed and event_type:
        event: Told = (event_type, PaymentOutput, locked, {"status": previous_status})
        if told is None:
            _tell(locked.project, [event])
        else:
            told.append(event)
    return locked


def _checkout_transition(*, payment: Payment, to: str, told: list[Told] | None = None) -> None:
    """Open → complete | expired for the local checkout session, with its tenant-visible event (recorded, or
    added to `told`)."""
    session = statements.OPEN_SESSION_LOCKED.first(payment_id=payment.pk)
    if session is None:
        return
    session.status = to
    session.save(update_fields=["status", "updated_at"])
    event: Told = (
        "checkout.completed" if to == CheckoutSession.Status.COMPLETE else "checkout.expired",
        CheckoutSessionOutput,
        _with_payment(session, payment),
        {"status": CheckoutSession.Status.OPEN},
    )
    if told is None:
        _tell(payment.project, [event])
    else:
        told.append(event)


def _with_payment(session: CheckoutSession, payment: Payment) -> CheckoutSession:
    """The session with its payment and customer as this transaction holds them (read again only if the session
    is another customer's)."""
    if session.customer_id != payment.customer_id:
        return CheckoutSession.objects.select_related("payment", "customer").get(pk=session.pk)
    session.payment = payment
    session.customer = payment.customer
    return session


def payment_apply_intent(*, payment: Payment, intent: dict[str, Any]) -> Payment:
    """Applies a PaymentIntent's state to an open payment (settled payments only change through refunds)."""
    status = intent_status(intent)
    declined = status == Payment.Status.REQUIRES_PAYMENT_METHOD
    error = intent.get("last_payment_error") or {}
    return payment_transition(
        payment=payment,
        allowed_from=Payment.OPEN_STATUSES,
        status=status,
        last_error_code=(error.get("code") or "") if declined else "",
        decline_code=(error.get("decline_code") or "") if declined else "",
    )


def payment_apply_checkout(
    *, payment: Payment, stripe_session: dict[str, Any], locked: bool = False
) -> Payment:
    """Applies a Checkout Session's state to an open payment and its local session. `locked`: the caller's
    transaction holds the payment under its row lock, its project and customer loaded as `_payment_locked` loads
    them (not read again)."""
    status = stripe_session["status"]
    links = {
        name: stripe_id(stripe_session.get(key))
        for name, key in (
            ("stripe_payment_intent_id", "payment_intent"),
            ("stripe_subscription_id", "subscription"),
            ("stripe_invoice_id", "invoice"),
        )
        if stripe_session.get(key)
    }
    fields: dict[str, Any] = dict(links)
    # Stripe's figures, whatever the payment's status (the intent's success may have been applied first).
    settled = dict(links, **_checkout_totals(payment, stripe_session)) if status == "complete" else links
    if status == "complete":
        paid = str(stripe_session.get("payment_status") or "")
        fields["status"] = {
            "no_payment_required": Payment.Status.NO_PAYMENT_REQUIRED,
            "paid": Payment.Status.SUCCEEDED,
        }.get(paid, Payment.Status.PROCESSING)
    elif status == "expired":
        fields["status"] = Payment.Status.EXPIRED
    # The payment's and the session's events are recorded together, after both changes (in this order).
    told: list[Told] = []
    with transaction.atomic(savepoint=False):
        if not locked:
            payment = _payment_locked(payment)  # one row lock for both steps
        if settled:  # ids (and tax) Stripe created meanwhile are recorded whatever the payment's status
            payment = payment_transition_locked(
                payment=payment, allowed_from=tuple(Payment.Status.values), told=told, **settled
            )
        payment = payment_transition_locked(
            payment=payment, allowed_from=Payment.OPEN_STATUSES, told=told, **fields
        )
        if status == "complete":
            customer_adopt_checkout_email(
                customer_id=payment.customer_id,
                email=str((stripe_session.get("customer_details") or {}).get("email") or ""),
            )
        if status in ("complete", "expired"):
            _checkout_transition(
                payment=payment,
                to=CheckoutSession.Status.COMPLETE
                if status == "complete"
                else CheckoutSession.Status.EXPIRED,
                told=told,
            )
        _tell(payment.project, told)
    return payment


def _checkout_totals(payment: Payment, stripe_session: dict[str, Any]) -> dict[str, Any]:
    """Stripe Tax and discounts: the tax Stripe computed once the customer gave an address, what a promotion
    code took off (also one the customer typed on Stripe's page), and the total Stripe charged after both (a
    trial's payment stays 0: its session's total is the first period's, charged later by invoice)."""
    totals = stripe_session.get("total_details") or {}
    taxed = bool((stripe_session.get("automatic_tax") or {}).get("enabled"))
    discount = int(totals.get("amount_discount") or 0)
    fields: dict[str, Any] = {}
    if taxed:
        fields["amount_tax"] = int(totals.get("amount_tax") or 0)
    if discount or payment.amount_discount:
        fields["amount_discount"] = discount
    if (taxed or discount) and payment.amount and stripe_session.get("payment_status") == "paid":
        fields["amount"] = int(stripe_session.get("amount_total") or 0)
    return fields


def customer_adopt_checkout_email(*, customer_id: str, email: str) -> bool:
    """Stores the email the customer typed at Checkout on a customer the tenant sent none for (compare-and-set:
    an email the tenant sent, even concurrently, is never overwritten). Stripe has it already: no sync back."""
    email = email.strip()
    if len(email) > Customer._meta.get_field("email").max_length:  # type: ignore[operator]
        return False
    try:
        validate_email(email)
    except ValidationError:
        return False
    return bool(
        # An erased customer never takes a person's email back (a late `checkout.session.completed`).
        Customer.objects.filter(pk=customer_id, email="", erased_at__isnull=True).update(
            email=email, updated_at=timezone.now()
        )
    )


def payment_refresh(*, payment: Payment, force: bool = False) -> Payment:
    """Pulls Stripe's state of an open payment, at most every couple of seconds per payment (read rate limits)."""
    if not payment.is_open or not (payment.stripe_checkout_session_id or payment.stripe_payment_intent_id):
        return payment
    # False: refreshed by someone within the interval. None (cache down): refresh anyway, a GET must not fail.
    if not force and cache_add(f"payment-refresh:{payment.pk}", 1, timeout=REFRESH_INTERVAL_SECONDS) is False:
        return payment
    gateway = gateway_for(payment.project)
    try:
        if payment.stripe_checkout_session_id:
            return payment_apply_checkout(
                payment=payment,
                stripe_session=gateway.checkout_session_retrieve(payment.stripe_checkout_session_id),
            )
        return payment_apply_intent(
            payment=payment, intent=gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
        )
    except ApiError as exc:
        # A read for freshness: Stripe being down must not fail the caller's GET; they see the stored state.
        logger.warning("Could not refresh payment %s from Stripe: %s", payment.pk, exc.code)
        return payment
