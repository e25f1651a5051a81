"""Subscriptions and invoices: mirrors of Stripe kept by webhooks, and the changes tenants ask for.

Stripe is the source of truth. An event's object is applied only when the event is at least as new as the
last one applied to that object (`stripe_event_created`); two events of the same second are ambiguous, so the
object is re-fetched from Stripe (within its read rate limit) and Stripe's current state is applied. Any
arrival order therefore ends in the same local state.
"""

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from billing.gateway import (
    StripeGateway,
    Written,
    from_timestamp,
    gateway_for,
    idempotency_key,
    stripe_account_of,
    stripe_id,
)
from billing.models import Customer, Invoice, Payment, Price, Subscription
from billing.payments import payment_transition
from core.actors import Actor
from core.errors import Conflict, InvalidRequest, RateLimited
from core.ratelimit import hit
from core.services import audit_record
from entitlements.services import plan_credits_grant
from projects.models import Project
from webhooks.outbound import event_record

logger = logging.getLogger(__name__)

# Stripe allows 25 reads/s in test mode (100 live); stay under the stricter one per account.
STRIPE_READS_PER_SECOND = 20


def stripe_read_allowed(account: str) -> None:
    """Counts one Stripe read for the account; raises RateLimited (retry later) past the read limit.
    With the cache down the read goes ahead: Stripe's own 429 then stops a runaway, and the caller retries."""
    try:
        count, _ = hit(f"stripe-read:{account}", 1)
    except Exception:  # the counter lives in Redis; its outage must not stop webhook processing
        logger.warning("Stripe read limiter unavailable; reading without it.")
        return
    if count > STRIPE_READS_PER_SECOND:
        raise RateLimited("Stripe read rate limit reached; retry shortly.", code="provider_rate_limited")


def customer_for_stripe(
    *, account: str, stripe_customer_id: str, metadata: dict[str, Any] | None = None
) -> Customer | None:
    """Routes by the Stripe customer id we hold (indexed), then by our metadata (a customer Checkout created);
    only customers of projects billed through this Stripe `account` qualify."""
    candidates = (
        list(Customer.objects.select_related("project").filter(stripe_customer_id=stripe_customer_id))
        if stripe_customer_id
        else []
    )
    customer = next((c for c in candidates if stripe_account_of(c.project) == account), None)
    if customer is None and metadata and metadata.get("tollgate_customer"):
        linked = Customer.objects.select_related("project").filter(pk=metadata["tollgate_customer"]).first()
        if linked is not None and stripe_account_of(linked.project) == account:
            customer = linked
            if not customer.stripe_customer_id:
                Customer.objects.filter(pk=customer.pk, stripe_customer_id="").update(
                    stripe_customer_id=stripe_customer_id
                )
    return customer


def price_for_stripe(*, project: Project, stripe_price_id: str) -> Price | None:
    price = (
        Price.objects.select_related("product")
        .filter(project=project, stripe_price_id=stripe_price_id)
        .first()
    )
    if price is None:  # an older Stripe price of ours that a later amount change replaced
        for candidate in (
            Price.objects.select_related("product").filter(project=project).exclude(stripe_price_history=[])
        ):
            if stripe_price_id in candidate.stripe_price_history:
                return candidate
    return price


def subscription_representation(subscription: Subscription) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": subscription.pk,
        "object": "subscription",
        "customer": subscription.customer.external_id,
        "status": subscription.status,
        "price": subscription.price.key,
        "product": subscription.product.key,
        "quantity": subscription.quantity,
        "current_period_start": iso(subscription.current_period_start),
        "current_period_end": iso(subscription.current_period_end),
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "trial_end": iso(subscription.trial_end),
        "canceled_at": iso(subscription.canceled_at),
        "stripe_subscription_id": subscription.stripe_subscription_id,
        "created_at": iso(subscription.created_at),
    }


_TRACKED = ("status", "price_id", "quantity", "cancel_at_period_end", "current_period_end", "trial_end")


def _subscription_fields(stripe_subscription: dict[str, Any], price: Price) -> dict[str, Any]:
    items = (stripe_subscription.get("items") or {}).get("data") or [{}]
    item = items[0]
    return {
        "status": stripe_subscription["status"],
        "price_id": price.pk,
        "product_id": price.product_id,
        "stripe_price_id": stripe_id(item.get("price")),
        "quantity": int(item.get("quantity") or 1),
        "current_period_start": from_timestamp(item.get("current_period_start")),
        "current_period_end": from_timestamp(item.get("current_period_end")),
        "cancel_at_period_end": bool(stripe_subscription.get("cancel_at_period_end")),
        "trial_end": from_timestamp(stripe_subscription.get("trial_end")),
        "canceled_at": from_timestamp(stripe_subscription.get("canceled_at")),
    }


class Ambiguous(Exception):
    """Two events of one object in the same second: only Stripe knows which state is current."""


def subscription_apply(
    *, account: str, stripe_subscription: dict[str, Any], event_created: int, force: bool = False
) -> Subscription | None:
    """Applies Stripe's subscription to its mirror (created on first sight). Returns None for objects not ours.
    Raises Ambiguous when the event is as old as the last applied one and says something else."""
    customer = customer_for_stripe(
        account=account,
        stripe_customer_id=stripe_id(stripe_subscription.get("customer")),
        metadata=stripe_subscription.get("metadata"),
    )
    if customer is None:
        return None
    items = (stripe_subscription.get("items") or {}).get("data") or []
    price = price_for_stripe(
        project=customer.project, stripe_price_id=stripe_id(items[0].get("price")) if items else ""
    )
    if price is None:
        logger.warning(
            "Subscription %s has a price that is not in the catalog.", stripe_subscription.get("id")
        )
        return None
    fields = _subscription_fields(stripe_subscription, price)
    try:
        with transaction.atomic():
            subscription = (
                Subscription.objects.select_for_update()
                .filter(project=customer.project, stripe_subscription_id=stripe_subscription["id"])
                .first()
            )
            if subscription is None:
                subscription = Subscription.objects.create(
                    project=customer.project,
                    customer=customer,
                    stripe_subscription_id=stripe_subscription["id"],
                    stripe_event_created=event_created,
                    **fields,
                )
                _link_invoices(subscription)
                _subscription_events(_with_relations(subscription, customer, price), None, {})
                return subscription
            if not force:
                if event_created < subscription.stripe_event_created:
                    return subscription  # an older event: Stripe has moved on
                if event_created == subscription.stripe_event_created and any(
                    getattr(subscription, k) != v for k, v in fields.items()
                ):
                    raise Ambiguous(stripe_subscription["id"])
            before = {k: getattr(subscription, k) for k in fields}
            for name, value in fields.items():
                setattr(subscription, name, value)
            subscription.stripe_event_created = max(event_created, subscription.stripe_event_created)
            subscription.save()
            changed = {k: before[k] for k in _TRACKED if before[k] != fields[k]}
            if changed:
                _subscription_events(
                    _with_relations(subscription, customer, price), before["status"], changed
                )
            return subscription
    except IntegrityError:  # created concurrently by another event of the same subscription: apply again
        return subscription_apply(
            account=account,
            stripe_subscription=stripe_subscription,
            event_created=event_created,
            force=force,
        )


def _link_invoices(subscription: Subscription) -> None:
    """The subscription's first invoice (and its payment) usually arrive before the subscription itself:
    they are linked now."""
    Invoice.objects.filter(
        project=subscription.project_id,
        stripe_subscription_id=subscription.stripe_subscription_id,
        subscription__isnull=True,
    ).update(subscription=subscription)
    Payment.objects.filter(
        project=subscription.project_id,
        stripe_subscription_id="",
        stripe_invoice_id__in=Invoice.objects.filter(subscription=subscription).values("stripe_invoice_id"),
    ).update(stripe_subscription_id=subscription.stripe_subscription_id)


def _with_relations(subscription: Subscription, customer: Customer, price: Price) -> Subscription:
    """The mirror with the customer, project, price and product it was just routed to (already loaded), so
    its representation reads nothing again."""
    if subscription.customer_id != customer.pk or subscription.price_id != price.pk:
        return Subscription.objects.select_related("customer", "price", "product", "project").get(
            pk=subscription.pk
        )
    subscription.customer = customer
    subscription.project = customer.project
    subscription.price = price
    subscription.product = price.product
    return subscription


def _subscription_events(
    subscription: Subscription, previous_status: str | None, changed: dict[str, Any]
) -> None:
    data = subscription_representation(subscription)
    previous = {
        ("price" if k == "price_id" else k): (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in changed.items()
    }
    if previous.get("price"):
        old = Price.objects.filter(pk=previous["price"]).first()
        previous["price"] = old.key if old else previous["price"]
    # Entitlements first: the project's event sequence (locked by event_record until commit) is held briefly.
    _entitlements_changed(subscription.customer)
    if previous_status is None:
        event_record(project=subscription.project, type="subscription.created", data_object=data)
    else:
        event_type = "subscription.updated"
        if "status" in changed and subscription.status == Subscription.Status.CANCELED:
            event_type = "subscription.canceled"
        elif "status" in changed and subscription.status == Subscription.Status.PAST_DUE:
            event_type = "subscription.past_due"
        event_record(
            project=subscription.project, type=event_type, data_object=data, previous_attributes=previous
        )


def _entitlements_changed(customer: Customer) -> None:
    """The entitlements hook: what this customer may use has (possibly) changed."""
    from entitlements.services import entitlements_recompute

    entitlements_recompute(customer=customer)


def subscription_refetch_and_apply(
    *, account: str, gateway: StripeGateway, stripe_subscription_id: str, event_created: int
) -> Subscription | None:
    """Applies Stripe's current state of the subscription, stamped with Stripe's clock as of the read (read
    first): an event older than that, arriving later, describes an older state and is not applied over it."""
    stripe_read_allowed(account)
    as_of = gateway.clock()
    stripe_read_allowed(account)
    fresh = gateway.subscription_retrieve(stripe_subscription_id)
    return subscription_apply(
        account=account, stripe_subscription=fresh, event_created=max(event_created, as_of), force=True
    )


# --- invoices -----------------------------------------------------------------------------------------------


def invoice_representation(invoice: Invoice) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": invoice.pk,
        "object": "invoice",
        "customer": invoice.customer.external_id,
        "subscription": invoice.subscription_id,
        "number": invoice.number or None,
        "status": invoice.status,
        "billing_reason": invoice.billing_reason or None,
        "subtotal": invoice.subtotal,
        "tax": invoice.tax,
        "total": invoice.total,
        "amount_due": invoice.amount_due,
        "amount_paid": invoice.amount_paid,
        "amount_remaining": invoice.amount_remaining,
        "currency": invoice.currency,
        "period_start": iso(invoice.period_start),
        "period_end": iso(invoice.period_end),
        "hosted_invoice_url": invoice.hosted_invoice_url or None,
        "invoice_pdf": invoice.invoice_pdf or None,
        "lines": invoice.lines,
        "stripe_invoice_id": invoice.stripe_invoice_id,
        "created_at": iso(invoice.created_at),
    }


def _invoice_lines(stripe_invoice: dict[str, Any]) -> list[dict[str, Any]]:
    lines = []
    for line in (stripe_invoice.get("lines") or {}).get("data") or []:
        parent = line.get("parent") or {}
        details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
        pricing = line.get("pricing") or {}
        price_details = pricing.get("price_details") or {}
        lines.append(
            {
                "description": line.get("description") or "",
                "amount": int(line.get("amount") or 0),
                "currency": line.get("currency"),
                "quantity": line.get("quantity"),
                "proration": bool(details.get("proration")),
                "stripe_price_id": stripe_id(price_details.get("price")) or None,
                "period_start": (line.get("period") or {}).get("start"),
                "period_end": (line.get("period") or {}).get("end"),
            }
        )
    return lines


def invoice_subscription_id(stripe_invoice: dict[str, Any]) -> str:
    parent = stripe_invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return stripe_id(details.get("subscription")) or stripe_id(stripe_invoice.get("subscription"))


# An invoice only moves forward: draft → open → uncollectible → paid | void. A lower rank is always an older
# state, whatever the event's second says; an equal rank is applied when not older (amounts, attempts).
INVOICE_RANK = {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}


def invoice_apply(
    *, account: str, stripe_invoice: dict[str, Any], event_created: int, force: bool = False
) -> Invoice | None:
    """Applies Stripe's invoice to its mirror (created on first sight) when it is at least as new as the
    mirror (`force`: a fresh read from Stripe, applied whatever it says). Returns None for invoices not ours."""
    customer = customer_for_stripe(
        account=account, stripe_customer_id=stripe_id(stripe_invoice.get("customer"))
    )
    if customer is None:
        return None
    stripe_subscription_id = invoice_subscription_id(stripe_invoice)
    subscription = (
        Subscription.objects.filter(
            project=customer.project, stripe_subscription_id=stripe_subscription_id
        ).first()
        if stripe_subscription_id
        else None
    )
    taxes = sum(int(t.get("amount") or 0) for t in stripe_invoice.get("total_taxes") or [])
    fields = {
        "customer": customer,
        "subscription": subscription,
        "stripe_subscription_id": stripe_subscription_id,
        "number": stripe_invoice.get("number") or "",
        "status": stripe_invoice.get("status") or "draft",
        "billing_reason": stripe_invoice.get("billing_reason") or "",
        "currency": stripe_invoice.get("currency") or customer.currency,
        "subtotal": int(stripe_invoice.get("subtotal") or 0),
        "tax": taxes,
        "total": int(stripe_invoice.get("total") or 0),
        "amount_due": int(stripe_invoice.get("amount_due") or 0),
        "amount_paid": int(stripe_invoice.get("amount_paid") or 0),
        "amount_remaining": int(stripe_invoice.get("amount_remaining") or 0),
        "period_start": from_timestamp(stripe_invoice.get("period_start")),
        "period_end": from_timestamp(stripe_invoice.get("period_end")),
        "hosted_invoice_url": stripe_invoice.get("hosted_invoice_url") or "",
        "invoice_pdf": stripe_invoice.get("invoice_pdf") or "",
        "lines": _invoice_lines(stripe_invoice),
    }
    with transaction.atomic():
        invoice, created = Invoice.objects.select_for_update().get_or_create(
            project=customer.project,
            stripe_invoice_id=stripe_invoice["id"],
            defaults={**fields, "stripe_event_created": event_created},
        )
        status_before = None if created else invoice.status
        invoice.project = customer.project  # already loaded: no lazy query for what follows
        if invoice.customer_id == customer.pk:
            invoice.customer = customer
        if not created and (force or invoice_is_newer(invoice, stripe_invoice, event_created)):
            if invoice.subscription_id is not None and subscription is None:
                del fields["subscription"]  # a link made when the subscription arrived stays
            for name, value in fields.items():
                setattr(invoice, name, value)
            invoice.stripe_event_created = max(event_created, invoice.stripe_event_created)
            invoice.save()
        if invoice.status == "paid" and status_before != "paid":  # once per invoice, under its row lock
            event_record(
                project=customer.project,
                type="invoice.paid",
                data_object=invoice_representation(
                    invoice
                    if invoice.customer_id == customer.pk
                    else Invoice.objects.select_related("customer").get(pk=invoice.pk)
                ),
            )
    return invoice


def invoice_is_newer(invoice: Invoice, stripe_invoice: dict[str, Any], event_created: int) -> bool:
    """Whether Stripe's invoice (as of `event_created`) is at least as new as the mirror."""
    incoming = INVOICE_RANK.get(str(stripe_invoice.get("status") or "draft"), 0)
    held = INVOICE_RANK.get(invoice.status, 0)
    if incoming != held:
        return incoming > held
    return event_created >= invoice.stripe_event_created


def invoice_link_payment_intent(*, invoice: Invoice, payment_intent_id: str) -> None:
    """Records the PaymentIntent of the invoice's payment attempt, on the invoice and on its payment."""
    if not payment_intent_id:
        return
    Invoice.objects.filter(pk=invoice.pk).exclude(stripe_payment_intent_id=payment_intent_id).update(
        stripe_payment_intent_id=payment_intent_id
    )
    Payment.objects.filter(
        project=invoice.project_id, stripe_invoice_id=invoice.stripe_invoice_id, stripe_payment_intent_id=""
    ).update(stripe_payment_intent_id=payment_intent_id)


def invoice_payment_apply(
    *, invoice: Invoice, stripe_invoice: dict[str, Any], payment_intent_id: str, paid: bool
) -> Payment:
    """The one payment of an invoice: the checkout's payment for a first invoice, else a `source: invoice`
    payment (renewals, prorations). Unique per invoice, so every path that learns of it applies it once."""
    subscription_metadata = ((stripe_invoice.get("parent") or {}).get("subscription_details") or {}).get(
        "metadata"
    ) or {}
    settled = (
        Payment.objects.filter(project=invoice.project_id, stripe_invoice_id=invoice.stripe_invoice_id)
        .exclude(status__in=Payment.OPEN_STATUSES)
        .first()
    )
    if (
        settled is not None
        and (settled.stripe_payment_intent_id or not payment_intent_id)
        and (settled.stripe_subscription_id or invoice.subscription_id is None)
    ):
        # A settled payment changes only through refunds and disputes: Stripe said it already. The period it
        # paid may still lack its plan credits (Checkout settled it before the invoice was mirrored).
        if paid:
            plan_credits_grant(payment=settled)
        return settled
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update()
            .filter(project=invoice.project, stripe_invoice_id=invoice.stripe_invoice_id)
            .first()
        )
        if payment is None and invoice.billing_reason == "subscription_create":
            payment = (
                Payment.objects.select_for_update()
                .filter(project=invoice.project, stripe_invoice_id="")
                .filter(pk=subscription_metadata.get("tollgate_payment") or "-")
                .first()
            )
            if payment is None and invoice.subscription is not None:
                payment = (
                    Payment.objects.select_for_update()
                    .filter(
                        project=invoice.project,
                        stripe_invoice_id="",
                        stripe_subscription_id=invoice.subscription.stripe_subscription_id,
                    )
                    .first()
                )
            if payment is not None:
                payment.stripe_invoice_id = invoice.stripe_invoice_id
                payment.save(update_fields=["stripe_invoice_id", "updated_at"])
        if payment is None:
            try:
                with transaction.atomic():
                    payment = Payment.objects.create(
                        project=invoice.project,
                        customer=invoice.customer,
                        type=Payment.Type.SUBSCRIPTION,
                        flow=Payment.Flow.INTENT,
                        source=Payment.Source.INVOICE,
                        amount=invoice.amount_due,
                        currency=invoice.currency,
                        description=f"Invoice {invoice.number}".strip(),
                        stripe_invoice_id=invoice.stripe_invoice_id,
                        stripe_subscription_id=invoice.subscription.stripe_subscription_id
                        if invoice.subscription
                        else "",
                        stripe_payment_intent_id=payment_intent_id,
                    )
            except IntegrityError:  # another event created it meanwhile
                payment = Payment.objects.get(
                    project=invoice.project, stripe_invoice_id=invoice.stripe_invoice_id
                )
        links: dict[str, Any] = {}
        if payment_intent_id and not payment.stripe_payment_intent_id:
            links["stripe_payment_intent_id"] = payment_intent_id
        if invoice.subscription is not None and not payment.stripe_subscription_id:
            links["stripe_subscription_id"] = invoice.subscription.stripe_subscription_id
        status = Payment.Status.SUCCEEDED if paid else Payment.Status.REQUIRES_PAYMENT_METHOD
        # Stripe's invoice decides, never a local row that may be older: a paid invoice's amount_paid is final.
        if paid and int(stripe_invoice.get("amount_paid") or 0) == 0:
            status = Payment.Status.NO_PAYMENT_REQUIRED
        if (
            payment.source == Payment.Source.INVOICE
            and payment.amount != invoice.amount_due
            and payment.is_open
        ):
            links["amount"] = invoice.amount_due
        status_before = payment.status
        if payment.is_open:  # links and status in one transition
            payment = payment_transition(
                payment=payment, allowed_from=Payment.OPEN_STATUSES, status=status, **links
            )
        elif links:  # a settled payment keeps its status; ids Stripe told us are recorded
            payment = payment_transition(payment=payment, allowed_from=tuple(Payment.Status.values), **links)
        # A failure is announced once, when the payment turns failed (`invoice.paid` is announced by
        # invoice_apply when the invoice turns paid: once per invoice, whichever event says so first).
        if not paid and payment.status != status_before:
            event_record(
                project=invoice.project,
                type="invoice.payment_failed",
                data_object=invoice_representation(
                    Invoice.objects.select_related("customer").get(pk=invoice.pk)
                ),
            )
    # What the payment grants follows its status changes (payment_transition's entitlements hook); a payment
    # that was settled before its invoice was mirrored gets its period's plan credits now (idempotent).
    if paid:
        plan_credits_grant(payment=payment)
    return payment


# --- tenant-requested changes -------------------------------------------------------------------------------


def _gateway(subscription: Subscription) -> StripeGateway:
    return gateway_for(subscription.project)


def _apply_now(subscription: Subscription, stripe_subscription: dict[str, Any]) -> Subscription:
    """The subscription as Stripe's answer says it is now — NOT saved. The mirror changes only through Stripe's
    events, applied in their order: saving the answer here would let events older than it (still in flight)
    be applied after it and revert it. The caller renders this copy, so the response already shows Stripe's
    answer, and the webhooks that follow bring the mirror to the same state."""
    items = (stripe_subscription.get("items") or {}).get("data") or [{}]
    price = (
        price_for_stripe(project=subscription.project, stripe_price_id=stripe_id(items[0].get("price")))
        or subscription.price
    )
    answer = Subscription.objects.select_related("customer", "price", "product", "project").get(
        pk=subscription.pk
    )
    for name, value in _subscription_fields(stripe_subscription, price).items():
        setattr(answer, name, value)
    answer.price = price
    answer.product = price.product
    return answer


def _stripe_state(stripe_subscription: dict[str, Any]) -> dict[str, Any]:
    """What a tenant's change is decided on at Stripe: status, scheduled end, pause, items, pending update."""
    items = (stripe_subscription.get("items") or {}).get("data") or []
    pending = (stripe_subscription.get("pending_update") or {}).get("subscription_items") or []
    return {
        "status": stripe_subscription.get("status"),
        "cancel_at_period_end": bool(stripe_subscription.get("cancel_at_period_end")),
        "paused": bool(stripe_subscription.get("pause_collection")),
        "items": [[i.get("id"), stripe_id(i.get("price")), i.get("quantity")] for i in items],
        "pending": [[i.get("id"), stripe_id(i.get("price")), i.get("quantity")] for i in pending],
    }


def _write_key(
    subscription: Subscription, operation: str, params: dict[str, Any], state: dict[str, Any]
) -> str:
    """The Stripe idempotency key of a tenant's write: our subscription, the operation, the request and the
    Stripe state it was decided on. A retry of the same request on the same state (the first one never reached
    Stripe, or its answer was lost on the way) carries the same key, so Stripe applies it once."""
    digest = hashlib.sha256(json.dumps([params, state], sort_keys=True).encode()).hexdigest()[:32]
    return idempotency_key("subscription", subscription.pk, operation, digest)


def _write(send: Callable[[str], Written], key: str) -> dict[str, Any]:
    """Sends a write that Stripe's state says is still to be made. A replayed answer then means that the same
    request on the same state was made before and has since been undone (3 → 1 → 3 seats): Stripe would only
    repeat its old answer, so this request is sent again under a key of its own."""
    written = send(key)
    if written.replayed:
        written = send(f"{key}:{uuid.uuid4().hex}")
    return written.object


def _audited(
    subscription: Subscription,
    action: str,
    actor: Actor,
    reason: str,
    before: Subscription,
    after: Subscription,
) -> None:
    def state(s: Subscription) -> dict[str, Any]:
        return {
            "price": s.price.key,
            "quantity": s.quantity,
            "status": s.status,
            "cancel_at_period_end": s.cancel_at_period_end,
        }

    with transaction.atomic():
        audit_record(
            actor=actor,
            action=action,
            target=subscription,
            project=subscription.project,
            reason=reason,
            before=state(before),
            after=state(after),
        )


def subscription_change(
    *,
    subscription: Subscription,
    actor: Actor,
    price: Price | None = None,
    quantity: int | None = None,
    proration_behavior: str = "create_prorations",
    payment_behavior: str | None = None,
    reason: str = "",
) -> Subscription:
    """Changes price and/or quantity at Stripe (the quantity not given is kept: Stripe is always sent both).
    Upgrades default to `pending_if_incomplete`: a failed upgrade payment changes nothing. A change Stripe
    already has (a retry whose first answer was lost) is not sent again. Audited."""
    if subscription.status in (Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED):
        raise Conflict("This subscription has ended.", code="subscription_ended")
    if price is not None:
        if not price.is_recurring or not price.active or not price.stripe_price_id:
            raise InvalidRequest(
                "price must be an active recurring price.", code="price_not_recurring", param="price"
            )
        if price.currency != subscription.price.currency:
            raise Conflict("The new price is in another currency.", code="currency_mismatch", param="price")
    gateway = _gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    state = _stripe_state(live)
    item_id, live_price, live_quantity = state["items"][0]
    target = [item_id, price.stripe_price_id if price else live_price, quantity or live_quantity or 1]
    if target in (state["items"][0], *state["pending"]):
        answer = live  # Stripe already has it (or holds it as the pending update of an unpaid upgrade)
    else:
        upgrade = (
            price is not None
            and price.unit_amount * (quantity or subscription.quantity)
            > subscription.price.unit_amount * subscription.quantity
        )
        params: dict[str, Any] = {
            "items": [{"id": item_id, "price": target[1], "quantity": target[2]}],
            "proration_behavior": proration_behavior,
            "payment_behavior": payment_behavior
            or ("pending_if_incomplete" if upgrade else "allow_incomplete"),
        }
        answer = _write(
            lambda key: gateway.subscription_update(
                subscription.stripe_subscription_id, params=params, idem=key
            ),
            _write_key(subscription, "change", params, state),
        )
    result = _apply_now(subscription, answer)
    _audited(result, "subscription.changed", actor, reason, _apply_now(subscription, live), result)
    return result


def subscription_cancel(
    *, subscription: Subscription, actor: Actor, at_period_end: bool = True, reason: str = ""
) -> Subscription:
    """Cancels now or at the period's end, at Stripe; a cancellation Stripe already has is not sent again."""
    if subscription.status in (Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED):
        raise Conflict("This subscription has already ended.", code="subscription_ended")
    gateway = _gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    state = _stripe_state(live)
    ended = state["status"] in (Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED)
    if ended or (at_period_end and state["cancel_at_period_end"]):
        answer = live
    elif at_period_end:
        params = {"cancel_at_period_end": True}
        answer = _write(
            lambda key: gateway.subscription_update(
                subscription.stripe_subscription_id, params=params, idem=key
            ),
            _write_key(subscription, "cancel-at-period-end", params, state),
        )
    else:
        answer = gateway.subscription_cancel(subscription.stripe_subscription_id)
    result = _apply_now(subscription, answer)
    action = "subscription.cancel_scheduled" if at_period_end else "subscription.canceled"
    _audited(result, action, actor, reason, _apply_now(subscription, live), result)
    return result


def subscription_resume(*, subscription: Subscription, actor: Actor, reason: str = "") -> Subscription:
    """Undoes a scheduled cancellation, or resumes a paused subscription (decided on Stripe's current state:
    the mirror may not have caught up with a change made a moment ago)."""
    gateway = _gateway(subscription)
    live = gateway.subscription_retrieve(subscription.stripe_subscription_id)
    state = _stripe_state(live)
    if state["status"] == Subscription.Status.PAUSED:
        params: dict[str, Any] = {"billing_cycle_anchor": "now"}
        answer = _write(
            lambda key: gateway.subscription_resume(
                subscription.stripe_subscription_id, params=params, idem=key
            ),
            _write_key(subscription, "resume", params, state),
        )
    elif state["cancel_at_period_end"]:
        params = {"cancel_at_period_end": False}
        answer = _write(
            lambda key: gateway.subscription_update(
                subscription.stripe_subscription_id, params=params, idem=key
            ),
            _write_key(subscription, "resume", params, state),
        )
    else:
        raise Conflict(
            "Nothing to resume: the subscription is neither paused nor scheduled to cancel.",
            code="nothing_to_resume",
        )
    result = _apply_now(subscription, answer)
    _audited(result, "subscription.resumed", actor, reason, _apply_now(subscription, live), result)
    return result
