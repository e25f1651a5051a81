"""Checkout and payments: what a customer is asked to pay, how, and what happened.

Every payment is created locally first (with its checkout session when the flow is Checkout), then started at
Stripe outside any transaction with idempotency keys derived from our ids, then the Stripe ids are stored by
compare-and-set. A Stripe failure leaves a `pending` payment without Stripe ids — it never claims success — and
a retry (same `reference`, or the expiry sweep) resumes or closes it without a second Stripe object.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import selectors
from billing.gateway import StripeGateway, gateway_for, idempotency_key, stripe_id
from billing.models import Cart, CheckoutSession, Customer, Payment, Price, Refund
from billing.services import customer_ensure_stripe, customer_for_purchase
from core.actors import Actor
from core.cache import cache_add
from core.errors import ApiError, Conflict, InvalidRequest
from core.services import audit_record
from projects.models import Project
from webhooks.outbound import event_record

logger = logging.getLogger(__name__)

# Stripe Checkout sessions live between 30 minutes and 24 hours; shorter project TTLs are enforced by our sweep.
STRIPE_CHECKOUT_MIN_SECONDS = 1800
REFRESH_INTERVAL_SECONDS = 2


@dataclass(frozen=True)
class Line:
    """One thing to pay for: a catalog price, or a custom amount."""

    quantity: int
    unit_amount: int
    currency: str
    price: Price | None = None
    description: str = ""

    def snapshot(self) -> dict[str, Any]:
        return {
            "price": self.price.pk if self.price else None,
            "price_key": self.price.key if self.price else None,
            "product": self.price.product_id if self.price else None,
            "quantity": self.quantity,
            "unit_amount": self.unit_amount,
            "currency": self.currency,
            "description": self.description,
        }


def lines_for_prices(*, project: Project, items: list[tuple[str, int]], param: str = "items") -> list[Line]:
    lines = []
    for index, (price_ref, quantity) in enumerate(items):
        where = f"{param}[{index}].price" if param == "items" else param
        price = selectors.price_get(project=project, key_or_id=price_ref, param=where)
        if not price.active:
            raise InvalidRequest(f"Price {price.key!r} is not active.", code="price_inactive", param=where)
        if not price.stripe_price_id:
            raise InvalidRequest(
                f"Price {price.key!r} is not synced to Stripe yet.", code="price_not_synced", param=where
            )
        if price.usage_type == Price.UsageType.METERED:
            raise InvalidRequest(
                "Metered prices are billed by usage and cannot be bought directly.",
                code="price_metered",
                param=where,
            )
        lines.append(
            Line(price=price, quantity=quantity, unit_amount=price.unit_amount, currency=price.currency)
        )
    if len({line.currency for line in lines}) > 1:
        raise InvalidRequest("All items must be in one currency.", code="currency_mixed", param=param)
    return lines


def redirect_urls_validate(*, project: Project, **urls: str) -> None:
    allowed = {host.lower() for host in project.allowed_redirect_hosts}
    for name, url in urls.items():
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise InvalidRequest(f"{name} must be an absolute http(s) URL.", code="invalid_url", param=name)
        host = parts.hostname.lower() + (f":{parts.port}" if parts.port else "")
        if host not in allowed and parts.hostname.lower() not in allowed:
            raise InvalidRequest(
                f"{name} host {host!r} is not in the project's allowed_redirect_hosts.",
                code="redirect_not_allowed",
                param=name,
            )


def _fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class PaymentRequest:
    """Everything that defines a payment; the same reference with another request is a conflict."""

    customer: str
    type: str
    flow: str
    lines: tuple[Line, ...]
    success_url: str = ""
    cancel_url: str = ""
    description: str = ""
    metadata: tuple[tuple[str, str], ...] = ()
    trial_days: int | None = None
    cart_id: str | None = None

    def fingerprint(self) -> str:
        return _fingerprint(
            {
                "customer": self.customer,
                "type": self.type,
                "flow": self.flow,
                "lines": [line.snapshot() for line in self.lines],
                "success_url": self.success_url,
                "cancel_url": self.cancel_url,
                "description": self.description,
                "metadata": dict(self.metadata),
                "trial_days": self.trial_days,
                "cart": self.cart_id,
            }
        )

    @property
    def amount(self) -> int:
        return sum(line.unit_amount * line.quantity for line in self.lines)

    @property
    def currency(self) -> str:
        return self.lines[0].currency


def payment_type_infer(lines: list[Line], explicit: str | None) -> str:
    recurring = [line for line in lines if line.price is not None and line.price.is_recurring]
    inferred: str = (
        Payment.Type.SUBSCRIPTION
        if recurring
        else (Payment.Type.ONE_TIME if len(lines) == 1 else Payment.Type.CART)
    )
    if explicit and explicit != inferred:
        if not (explicit == Payment.Type.CART and not recurring):
            raise InvalidRequest(
                f"type {explicit!r} does not match the items (they make a {inferred!r}).",
                code="type_mismatch",
                param="type",
            )
        inferred = explicit
    if inferred == Payment.Type.SUBSCRIPTION and (len(lines) != 1 or len(recurring) != 1):
        raise InvalidRequest(
            "A subscription is bought with exactly one recurring price.",
            code="subscription_items",
            param="items",
        )
    return inferred


# --- creation ----------------------------------------------------------------------------------------------


def payment_create(
    *, project: Project, request: PaymentRequest, reference: str | None = None, idempotency_key: str = ""
) -> tuple[Payment, bool]:
    """Creates (or, for a known reference or Idempotency-Key, returns) a payment and starts it at Stripe.
    Returns (payment, created)."""
    if reference:
        existing = selectors.payment_by_reference(project=project, reference=reference)
        if existing is not None:
            return _existing_for_reference(existing, request), False
    if idempotency_key:
        existing = Payment.objects.filter(project=project, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _existing_for_idempotency_key(existing, request), False
    if request.flow == Payment.Flow.CHECKOUT:
        redirect_urls_validate(
            project=project, success_url=request.success_url, cancel_url=request.cancel_url
        )
    customer = customer_for_purchase(project=project, external_id=request.customer)
    try:
        payment = _payment_prepare(
            project=project,
            customer=customer,
            request=request,
            reference=reference,
            idempotency_key=idempotency_key,
        )
    except IntegrityError:  # a concurrent request with the same reference or key won
        existing = selectors.payment_by_reference(project=project, reference=reference or "") or (
            Payment.objects.filter(project=project, idempotency_key=idempotency_key).first()
            if idempotency_key
            else None
        )
        if existing is None:
            raise
        return _existing_for_reference(existing, request), False
    return payment_start(payment=payment), True


def _existing_for_idempotency_key(existing: Payment, request: PaymentRequest) -> Payment:
    if existing.request_fingerprint != request.fingerprint():
        raise Conflict(
            "This Idempotency-Key was already used with a different request.",
            code="idempotency_key_reused",
            param="Idempotency-Key",
        )
    return _existing_for_reference(existing, request)


def _existing_for_reference(existing: Payment, request: PaymentRequest) -> Payment:
    if existing.request_fingerprint != request.fingerprint():
        raise Conflict(
            "A payment with this reference already exists with a different request.",
            code="reference_conflict",
            param="reference",
        )
    if not (existing.stripe_checkout_session_id or existing.stripe_payment_intent_id) and existing.is_open:
        return payment_start(payment=existing)  # an earlier attempt could not reach Stripe: resume it
    return existing


@transaction.atomic
def _payment_prepare(
    *,
    project: Project,
    customer: Customer,
    request: PaymentRequest,
    reference: str | None,
    idempotency_key: str = "",
) -> Payment:
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.currency and customer.currency != request.currency:
        raise Conflict(
            f"This customer pays in {customer.currency.upper()}; the request is in {request.currency.upper()}.",
            code="currency_mismatch",
            param="currency",
        )
    if request.type == Payment.Type.SUBSCRIPTION:
        price = request.lines[0].price
        assert price is not None
        live = selectors.live_subscription_to(customer=customer, product=price.product)
        if live is not None:
            raise Conflict(
                f"The customer already has a live subscription to {price.product.key!r} ({live.pk}).",
                code="already_subscribed",
                param="price",
            )
    if not customer.currency:
        customer.currency = request.currency
        customer.save(update_fields=["currency", "updated_at"])

    cart = None
    if request.cart_id:
        cart = Cart.objects.select_for_update().get(pk=request.cart_id, project=project)
        if cart.status != Cart.Status.OPEN:
            raise Conflict("This cart was already checked out.", code="cart_checked_out", param="cart")
        cart.status = Cart.Status.CHECKED_OUT
        cart.save(update_fields=["status", "updated_at"])

    trial = (
        request.trial_days
        if request.trial_days is not None
        else (
            request.lines[0].price.trial_days
            if request.type == Payment.Type.SUBSCRIPTION and request.lines[0].price
            else None
        )
    )
    now = timezone.now()
    payment = Payment.objects.create(
        project=project,
        customer=customer,
        type=request.type,
        flow=request.flow,
        source=Payment.Source.CHECKOUT if request.flow == Payment.Flow.CHECKOUT else Payment.Source.INTENT,
        amount=0 if trial else request.amount,
        currency=request.currency,
        description=request.description,
        reference=reference,
        idempotency_key=idempotency_key,
        request_fingerprint=request.fingerprint(),
        metadata=dict(request.metadata),
        items=[line.snapshot() for line in request.lines],
        trial_days=trial or None,
        cart=cart,
        expires_at=now + timedelta(seconds=project.payment_ttl_seconds),
    )
    if request.flow == Payment.Flow.CHECKOUT:
        CheckoutSession.objects.create(
            project=project,
            customer=customer,
            payment=payment,
            mode=CheckoutSession.Mode.SUBSCRIPTION
            if request.type == Payment.Type.SUBSCRIPTION
            else CheckoutSession.Mode.PAYMENT,
            success_url=request.success_url,
            cancel_url=request.cancel_url,
            expires_at=payment.expires_at or now,
        )
    return payment


def _stripe_metadata(payment: Payment) -> dict[str, str]:
    return {
        **{str(k): str(v) for k, v in payment.metadata.items()},
        "tollgate_project": payment.project_id,
        "tollgate_payment": payment.pk,
        "tollgate_customer": payment.customer_id,
    }


def payment_start(*, payment: Payment) -> Payment:
    """Creates the Stripe side of a prepared payment (Checkout Session or PaymentIntent), idempotently."""
    if payment.stripe_checkout_session_id or payment.stripe_payment_intent_id:
        return payment
    gateway = gateway_for(payment.project)
    stripe_customer = customer_ensure_stripe(customer=payment.customer)
    if payment.flow == Payment.Flow.CHECKOUT:
        return _checkout_start(payment, gateway, stripe_customer)
    return _intent_start(payment, gateway, stripe_customer)


def _stripe_line_items(payment: Payment) -> list[dict[str, Any]]:
    prices = {
        price.pk: price
        for price in Price.objects.filter(pk__in=[i["price"] for i in payment.items if i["price"]])
    }
    items = []
    for item in payment.items:
        if item["price"]:
            items.append({"price": prices[item["price"]].stripe_price_id, "quantity": item["quantity"]})
        else:
            items.append(
                {
                    "price_data": {
                        "currency": item["currency"],
                        "unit_amount": item["unit_amount"],
                        "product_data": {"name": item["description"] or payment.description or "Payment"},
                    },
                    "quantity": item["quantity"],
                }
            )
    return items


def _checkout_start(payment: Payment, gateway: StripeGateway, stripe_customer: str) -> Payment:
    session = CheckoutSession.objects.get(payment=payment)
    metadata = {**_stripe_metadata(payment), "tollgate_checkout": session.pk}
    stripe_expires = max(
        session.expires_at, session.created_at + timedelta(seconds=STRIPE_CHECKOUT_MIN_SECONDS + 60)
    )
    params: dict[str, Any] = {
        "mode": session.mode,
        "customer": stripe_customer,
        "line_items": _stripe_line_items(payment),
        "client_reference_id": payment.pk,
        "metadata": metadata,
        "success_url": session.success_url,
        "cancel_url": session.cancel_url,
        "expires_at": int(stripe_expires.timestamp()),
    }
    if session.mode == CheckoutSession.Mode.SUBSCRIPTION:
        params["subscription_data"] = {"metadata": metadata}
        if payment.trial_days:
            params["subscription_data"]["trial_period_days"] = payment.trial_days
    else:
        params["payment_intent_data"] = {"metadata": metadata}
        if payment.description:
            params["payment_intent_data"]["description"] = payment.description
    stripe_session = gateway.checkout_session_create(
        params=params, idem=idempotency_key("checkout", session.pk, "create")
    )
    with transaction.atomic():
        CheckoutSession.objects.filter(pk=session.pk, stripe_session_id="").update(
            stripe_session_id=stripe_session["id"], url=stripe_session["url"] or ""
        )
        Payment.objects.filter(pk=payment.pk, stripe_checkout_session_id="").update(
            stripe_checkout_session_id=stripe_session["id"], checkout_url=stripe_session["url"] or ""
        )
    payment.refresh_from_db()
    return payment


def _intent_start(payment: Payment, gateway: StripeGateway, stripe_customer: str) -> Payment:
    if payment.type == Payment.Type.SUBSCRIPTION:
        raise InvalidRequest(
            "Subscriptions are paid through Checkout: use flow 'checkout'.",
            code="flow_not_supported",
            param="flow",
        )
    params: dict[str, Any] = {
        "amount": payment.amount,
        "currency": payment.currency,
        "customer": stripe_customer,
        "metadata": _stripe_metadata(payment),
        "automatic_payment_methods": {"enabled": True},
    }
    if payment.description:
        params["description"] = payment.description
    intent = gateway.payment_intent_create(
        params=params, idem=idempotency_key("payment", payment.pk, "intent")
    )
    Payment.objects.filter(pk=payment.pk, stripe_payment_intent_id="").update(
        stripe_payment_intent_id=intent["id"], client_secret=intent["client_secret"] or ""
    )
    payment.refresh_from_db()
    return payment


# --- Stripe state --------------------------------------------------------------------------------------------


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


def payment_transition(*, payment: Payment, allowed_from: tuple[str, ...], **fields: Any) -> Payment:
    """Changes a payment under its row lock if its status is still one of `allowed_from`, and records the
    tenant-visible event of a status change in the same transaction. Re-applying the same state is a no-op,
    so duplicate and late Stripe events converge."""
    with transaction.atomic():
        # The project and customer come along (not locked): the tenant event and entitlements need them.
        locked = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("project", "customer")
            .get(pk=payment.pk)
        )
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
        locked.save(update_fields=[*changed, "updated_at"])
        event_type = _EVENT_FOR_STATUS.get(locked.status)
        if "status" in changed or "dispute_status" in changed:
            # Paid, refunded, disputed, dispute lost: what the payment grants may have changed.
            from entitlements.services import payment_entitlements_apply

            payment_entitlements_apply(payment=locked)
        if "status" in changed and event_type:
            event_record(
                project=locked.project,
                type=event_type,
                data_object=_payment_representation(locked),
                previous_attributes={"status": previous_status},
            )
    return locked


def _payment_representation(payment: Payment) -> dict[str, Any]:
    """`payment` as saved in this transaction, with its project and customer loaded."""
    from billing.representations import PaymentOutput

    return dict(PaymentOutput(payment).data)


def _checkout_transition(*, payment: Payment, to: str) -> None:
    """Open → complete | expired for the local checkout session, with its tenant-visible event."""
    from billing.representations import CheckoutSessionOutput

    session = (
        CheckoutSession.objects.select_for_update()
        .filter(payment=payment, status=CheckoutSession.Status.OPEN)
        .first()
    )
    if session is None:
        return
    session.status = to
    session.save(update_fields=["status", "updated_at"])
    event_record(
        project=payment.project,
        type="checkout.completed" if to == CheckoutSession.Status.COMPLETE else "checkout.expired",
        data_object=dict(
            CheckoutSessionOutput(
                CheckoutSession.objects.select_related("payment", "customer").get(pk=session.pk)
            ).data
        ),
        previous_attributes={"status": CheckoutSession.Status.OPEN},
    )


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


def payment_apply_checkout(*, payment: Payment, stripe_session: dict[str, Any]) -> Payment:
    """Applies a Checkout Session's state to an open payment and its local session."""
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
    if status == "complete":
        paid = str(stripe_session.get("payment_status") or "")
        fields["status"] = {
            "no_payment_required": Payment.Status.NO_PAYMENT_REQUIRED,
            "paid": Payment.Status.SUCCEEDED,
        }.get(paid, Payment.Status.PROCESSING)
    elif status == "expired":
        fields["status"] = Payment.Status.EXPIRED
    with transaction.atomic():
        if links:  # ids Stripe created meanwhile are recorded whatever the payment's status
            payment = payment_transition(payment=payment, allowed_from=tuple(Payment.Status.values), **links)
        payment = payment_transition(payment=payment, allowed_from=Payment.OPEN_STATUSES, **fields)
        if status in ("complete", "expired"):
            _checkout_transition(
                payment=payment,
                to=CheckoutSession.Status.COMPLETE
                if status == "complete"
                else CheckoutSession.Status.EXPIRED,
            )
    return payment


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


# --- closing: cancel, expire ---------------------------------------------------------------------------------


def _close(*, payment: Payment, final_status: str) -> Payment:
    """Closes an open payment at Stripe first; marks it closed only when Stripe confirms. If Stripe says it
    succeeded meanwhile, the payment becomes `succeeded` instead."""
    gateway = gateway_for(payment.project)
    if payment.stripe_checkout_session_id:
        try:
            stripe_session = gateway.checkout_session_expire(
                payment.stripe_checkout_session_id, idem=idempotency_key("checkout", payment.pk, "expire")
            )
        except ApiError as exc:
            if exc.code != "provider_invalid_request":  # e.g. "already complete": read what happened instead
                raise
            stripe_session = gateway.checkout_session_retrieve(payment.stripe_checkout_session_id)
        if stripe_session["status"] != "expired":
            return payment_apply_checkout(payment=payment, stripe_session=stripe_session)
    elif payment.stripe_payment_intent_id:
        try:
            intent = gateway.payment_intent_cancel(
                payment.stripe_payment_intent_id, idem=idempotency_key("payment", payment.pk, "cancel")
            )
        except ApiError as exc:
            if exc.code != "provider_invalid_request":
                raise
            intent = gateway.payment_intent_retrieve(payment.stripe_payment_intent_id)
        if intent["status"] != "canceled":
            return payment_apply_intent(payment=payment, intent=intent)
    # Stripe confirmed (or never had the payment: its creation had failed).
    with transaction.atomic():
        payment = payment_transition(payment=payment, allowed_from=Payment.OPEN_STATUSES, status=final_status)
        _checkout_transition(payment=payment, to=CheckoutSession.Status.EXPIRED)
    return payment


def payment_cancel(*, payment: Payment, actor: Actor) -> Payment:
    if not payment.is_open:
        raise Conflict(
            f"Only open payments can be canceled; this one is {payment.status}.", code="payment_not_open"
        )
    payment = _close(payment=payment, final_status=Payment.Status.CANCELED)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="payment.canceled",
            target=payment,
            project=payment.project,
            after={"status": payment.status},
        )
    return payment


def payment_expire(*, payment: Payment) -> Payment:
    """Expires a payment past its TTL. A payment that Stripe reports as paid becomes `succeeded` — and is
    refunded at once when the project asks for it (the abandoned-checkout path of a waiting workflow)."""
    payment = _close(payment=payment, final_status=Payment.Status.EXPIRED)
    if payment.status == Payment.Status.SUCCEEDED and payment.project.refund_late_payments:
        payment = payment_refund(
            payment=payment,
            amount=None,
            reason="Paid after the payment had expired.",
            actor=Actor.system("payment expiry"),
        )
    return payment


def payments_expire_due(*, now: datetime | None = None, limit: int = 500) -> int:
    now = now or timezone.now()
    due = list(
        Payment.objects.filter(status__in=Payment.OPEN_STATUSES, expires_at__lt=now).select_related(
            "project", "customer"
        )[:limit]
    )
    expired = 0
    for payment in due:
        try:
            payment_expire(payment=payment)
            expired += 1
        except ApiError as exc:  # Stripe unavailable: the next sweep tries again
            logger.warning("Could not expire payment %s: %s", payment.pk, exc.code)
    return expired


# --- refunds -------------------------------------------------------------------------------------------------


def payment_refund(*, payment: Payment, amount: int | None, reason: str, actor: Actor) -> Payment:
    """Refunds all (amount=None) or part of a paid payment at Stripe, then records it."""
    if payment.status not in (
        Payment.Status.SUCCEEDED,
        Payment.Status.PARTIALLY_REFUNDED,
        Payment.Status.DISPUTED,
    ):
        raise Conflict(
            f"Only paid payments can be refunded; this one is {payment.status}.",
            code="payment_not_refundable",
        )
    if not payment.stripe_payment_intent_id:
        raise Conflict("This payment has no Stripe charge to refund.", code="payment_not_refundable")
    refundable = payment.amount - payment.amount_refunded
    amount = refundable if amount is None else amount
    if amount <= 0 or amount > refundable:
        raise InvalidRequest(
            f"amount must be between 1 and {refundable}.", code="invalid_amount", param="amount"
        )
    with transaction.atomic():
        refund = Refund.objects.create(
            project=payment.project, payment=payment, amount=amount, currency=payment.currency, reason=reason
        )
        audit_record(
            actor=actor,
            action="payment.refund_requested",
            target=payment,
            project=payment.project,
            reason=reason,
            after={"refund": refund.pk, "amount": amount},
        )
    try:
        stripe_refund = gateway_for(payment.project).refund_create(
            payment_intent=payment.stripe_payment_intent_id,
            amount=amount,
            reason=None,
            metadata={
                "tollgate_project": payment.project_id,
                "tollgate_payment": payment.pk,
                "tollgate_refund": refund.pk,
            },
            idem=idempotency_key("refund", refund.pk, "create"),
        )
    except ApiError:
        Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.FAILED)
        raise
    return refund_apply(refund_id=refund.pk, stripe_refund=stripe_refund)


def payment_apply_refunded(*, payment: Payment, amount_refunded: int) -> Payment:
    """Records how much of a paid payment is refunded (only ever growing), and its refund status."""
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        amount_refunded = min(max(amount_refunded, locked.amount_refunded), locked.amount)
        status = locked.status
        if status != Payment.Status.DISPUTED:
            status = (
                Payment.Status.REFUNDED
                if amount_refunded >= locked.amount
                else (Payment.Status.PARTIALLY_REFUNDED if amount_refunded else Payment.Status.SUCCEEDED)
            )
        return payment_transition(
            payment=locked, allowed_from=Payment.PAID_STATUSES, amount_refunded=amount_refunded, status=status
        )


def payment_apply_charge(*, payment: Payment, charge: dict[str, Any]) -> Payment:
    """Applies a Stripe charge's money state (a refund event carries it whole): a charge that succeeded settles
    a payment still open here (its success event late or lost), then its refunded amount is recorded — so any
    order of payment and refund events ends refunded."""
    with transaction.atomic():
        if payment.is_open and charge.get("status") == "succeeded":
            payment = payment_transition(
                payment=payment, allowed_from=Payment.OPEN_STATUSES, status=Payment.Status.SUCCEEDED
            )
        refunded = min(int(charge.get("amount_refunded") or 0), payment.amount)
        return payment_apply_refunded(payment=payment, amount_refunded=refunded)


# A dispute only moves forward: opened (warnings, needs_response) → under review → won | lost.
DISPUTE_RANK = {
    "warning_needs_response": 1,
    "needs_response": 1,
    "warning_under_review": 2,
    "under_review": 2,
    "warning_closed": 3,
    "won": 3,
    "lost": 3,
}


def payment_apply_dispute(*, payment: Payment, dispute: dict[str, Any]) -> Payment:
    """Applies a Stripe dispute's status. An open dispute flags the payment (access is kept meanwhile); a lost
    one ends what the payment granted (the transition hands the dispute status to entitlements); a won one
    returns the payment to its paid status. An older dispute state than the one held is ignored."""
    outcome = str(dispute.get("status") or "")
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if DISPUTE_RANK.get(outcome, 0) < DISPUTE_RANK.get(locked.dispute_status, 0):
            return locked
        if locked.is_open:  # a dispute proves the charge succeeded (its success event late or lost)
            locked = payment_transition(
                payment=locked, allowed_from=Payment.OPEN_STATUSES, status=Payment.Status.SUCCEEDED
            )
        if outcome in ("won", "warning_closed"):
            restored = (
                Payment.Status.REFUNDED
                if locked.amount_refunded >= locked.amount
                else Payment.Status.PARTIALLY_REFUNDED
                if locked.amount_refunded
                else Payment.Status.SUCCEEDED
            )
            return payment_transition(
                payment=locked, allowed_from=Payment.PAID_STATUSES, status=restored, dispute_status=outcome
            )
        return payment_transition(
            payment=locked,
            allowed_from=Payment.PAID_STATUSES,
            status=Payment.Status.DISPUTED,
            dispute_status=outcome,
        )


def refund_apply(*, refund_id: str, stripe_refund: dict[str, Any]) -> Payment:
    """Records Stripe's refund on our refund and recomputes the payment's refunded amount (idempotent)."""
    status = {
        "succeeded": Refund.Status.SUCCEEDED,
        "failed": Refund.Status.FAILED,
        "canceled": Refund.Status.CANCELED,
    }.get(stripe_refund["status"], Refund.Status.PENDING)
    with transaction.atomic():
        refund = Refund.objects.select_related("payment").select_for_update().get(pk=refund_id)
        refund.status = status
        refund.stripe_refund_id = stripe_refund["id"]
        refund.save(update_fields=["status", "stripe_refund_id", "updated_at"])
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        refunded = min(
            payment.amount,
            sum(
                Refund.objects.filter(
                    payment=payment, status__in=(Refund.Status.SUCCEEDED, Refund.Status.PENDING)
                ).values_list("amount", flat=True)
            ),
        )
        payment = payment_apply_refunded(payment=payment, amount_refunded=refunded)
    return payment
