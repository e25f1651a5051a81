"""Creating payments: the local payment (and its checkout session when the flow is Checkout) is written first,
then started at Stripe outside any transaction with idempotency keys derived from our ids, and the Stripe ids are
stored by compare-and-set. A known reference or Idempotency-Key returns the existing payment, resuming one whose
earlier attempt never reached Stripe.
"""

from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from billing import selectors
from billing.models import Cart, CheckoutSession, Payment, PromotionCode
from billing.services.discounts import checkout_discount_params, purchase_promotion_code
from billing.services.payment_requests import PaymentRequest, redirect_urls_validate
from billing.services.payment_transitions import payment_apply_intent
from catalog.models import Price
from core.errors import Conflict, InvalidRequest
from customers.models import Customer
from customers.selectors import customer_now
from customers.services.customers import customer_ensure_stripe, customer_for_purchase
from projects.models import Project
from stripe_gateway.gateway import StripeGateway, gateway_for, idempotency_key

# Stripe Checkout sessions live between 30 minutes and 24 hours; shorter project TTLs are enforced by our sweep.
STRIPE_CHECKOUT_MIN_SECONDS = 1800


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
    promotion_code = purchase_promotion_code(project=project, request=request)
    customer = customer_for_purchase(project=project, external_id=request.customer)
    try:
        payment = _payment_prepare(
            project=project,
            customer=customer,
            request=request,
            reference=reference,
            idempotency_key=idempotency_key,
            promotion_code=promotion_code,
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
    promotion_code: PromotionCode | None = None,
) -> Payment:
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.currency and customer.currency != request.currency:
        raise Conflict(
            f"This customer pays in {customer.currency.upper()}; the request is in {request.currency.upper()}.",
            code="currency_mismatch",
            param="currency",
        )
    if request.type == Payment.Type.SUBSCRIPTION:
        several = len(request.lines) > 1
        for index, line in enumerate(request.lines):
            price = line.price
            assert price is not None
            live = selectors.live_subscription_to(customer=customer, product=price.product)
            if live is not None:
                raise Conflict(
                    f"The customer already has a live subscription to {price.product.key!r} ({live.pk}).",
                    code="already_subscribed",
                    param=f"items[{index}].price" if several else "price",
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

    # A subscription's default trial is its primary price's (the first licensed one).
    primary = next((line for line in request.lines if not line.metered), request.lines[0])
    trial = (
        request.trial_days
        if request.trial_days is not None
        else (
            primary.price.trial_days if request.type == Payment.Type.SUBSCRIPTION and primary.price else None
        )
    )
    # A test-clock customer's payment lives at its clock's time, as its Checkout Session does at Stripe.
    now = customer_now(customer=customer)
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
        automatic_tax=request.automatic_tax,
        cart=cart,
        expires_at=now + timedelta(seconds=project.payment_ttl_seconds),
        promotion_code=promotion_code,
        allow_promotion_codes=request.allow_promotion_codes,
        payment_method=request.payment_method,
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
    items: list[dict[str, Any]] = []
    for item in payment.items:
        if item["price"] and item["quantity"] is None:  # a metered price: Stripe takes no quantity for it
            items.append({"price": prices[item["price"]].stripe_price_id})
        elif item["price"]:
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


def _stripe_expiry(session: CheckoutSession, customer: Customer) -> datetime:
    """The session's `expires_at` at Stripe: its expiry here (at least Stripe's minimum from the moment Stripe
    creates it). For a customer on a test clock both are the clock's time (`customer_now`), from which Stripe
    measures it: kept within Stripe's range should the clock have moved since the payment was made."""
    least = timedelta(seconds=STRIPE_CHECKOUT_MIN_SECONDS + 60)
    clock = customer.test_clock
    if clock is None:
        return session.created_at + max(session.expires_at - session.created_at, least)
    at_stripe = max(clock.frozen_time, clock.advancing_to or clock.frozen_time)
    return min(max(session.expires_at, at_stripe + least), at_stripe + timedelta(days=1))


def _checkout_start(payment: Payment, gateway: StripeGateway, stripe_customer: str) -> Payment:
    session = CheckoutSession.objects.get(payment=payment)
    metadata = {**_stripe_metadata(payment), "tollgate_checkout": session.pk}
    stripe_expires = _stripe_expiry(session, payment.customer)
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
    if payment.automatic_tax:
        # Stripe Tax needs the customer's location: Checkout collects the billing address and saves it on the
        # (existing) Stripe customer, which Stripe requires for automatic tax without a known address.
        params["automatic_tax"] = {"enabled": True}
        params["billing_address_collection"] = "required"
        params["customer_update"] = {"address": "auto"}
    params.update(checkout_discount_params(payment))
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
        if payment.promotion_code_id and not payment.trial_days:
            # What the customer is charged is Stripe's discounted total (billing.discounts computes nothing).
            Payment.objects.filter(pk=payment.pk).update(
                amount=int(stripe_session["amount_total"] or 0),
                amount_discount=int((stripe_session.get("total_details") or {}).get("amount_discount") or 0),
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
    idem = idempotency_key("payment", payment.pk, "intent")
    if payment.flow == Payment.Flow.OFF_SESSION:
        del params["automatic_payment_methods"]
        params.update(payment_method=payment.payment_method, off_session=True, confirm=True)
        intent = gateway.payment_intent_charge(params=params, idem=idem)
    else:
        intent = gateway.payment_intent_create(params=params, idem=idem)
    Payment.objects.filter(pk=payment.pk, stripe_payment_intent_id="").update(
        stripe_payment_intent_id=intent["id"],
        client_secret="" if payment.flow == Payment.Flow.OFF_SESSION else intent["client_secret"] or "",
    )
    payment.refresh_from_db()
    if payment.flow == Payment.Flow.OFF_SESSION:
        # Confirmed in the same call: its outcome is known now, not only when the webhook comes.
        payment_apply_intent(payment=payment, intent=intent)
        payment.refresh_from_db()
    return payment
