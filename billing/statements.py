"""Billing's compiled reads (`core.statements`): the rows a Stripe event's path reads one at a time by id or by
Stripe id, which the worker spent more CPU building than the database spent answering. Each is the queryset its
caller used to build in place, with the same filters and order; the callers are the mirrors (`services`) and the
handlers' routing (`handlers`)."""

from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import Exists, OuterRef, Q, QuerySet

from billing.models import (
    DISPUTE_LOST,
    INVOICE_FINALIZED,
    PLAN_CREDIT_REASONS,
    PLAN_PAID,
    CheckoutSession,
    Invoice,
    Payment,
    Subscription,
    SubscriptionItem,
)
from catalog.models import Price
from core.statements import Statement
from entitlements.models import PlanPeriod

R = TypeVar("R")

# --- subscriptions and their invoices -----------------------------------------------------------------------

# A subscription's mirror by its Stripe id, locked.
SUBSCRIPTION_LOCKED = Statement(
    lambda project_id, stripe_subscription_id: (
        Subscription.objects.select_for_update()
        .filter(project_id=project_id, stripe_subscription_id=stripe_subscription_id)
        .order_by("pk")[:1]
    )
)
# A subscription's item rows, as `subscription.items.all()` reads them (in the model's order).
ITEMS = Statement(
    lambda subscription_id: SubscriptionItem.objects.filter(subscription_id=subscription_id).order_by(
        "position", "created_at", "id"
    )
)
# The mirror of the invoice's subscription, by its Stripe id.
SUBSCRIPTION_PK = Statement(
    lambda project_id, stripe_subscription_id: (
        Subscription.objects.filter(project_id=project_id, stripe_subscription_id=stripe_subscription_id)
        .order_by("pk")
        .values_list("pk", flat=True)[:1]
    )
)
# The price products and usage types of a subscription's items as mirrored, in their order (one row of None for a
# subscription without items).
ITEM_PRODUCTS = Statement(
    lambda project_id, stripe_subscription_id: (
        Subscription.objects.filter(project_id=project_id, stripe_subscription_id=stripe_subscription_id)
        .order_by("items__position", "items__created_at", "items__id")
        .values_list(
            "items__price__product_id",
            "items__usage_type",
            "items__product_version",
            "items__pending_version",
            "items__pending_version_at",
        )
    )
)
# Our current price for a Stripe price id.
PRICE = Statement(
    lambda project_id, stripe_price_id: Price.objects.filter(
        project_id=project_id, stripe_price_id=stripe_price_id
    ).order_by("pk")[:1]
)

# --- payments ------------------------------------------------------------------------------------------------

# An invoice's payment.
INVOICE_PAYMENT = Statement(
    lambda project_id, stripe_invoice_id: Payment.objects.filter(
        project_id=project_id, stripe_invoice_id=stripe_invoice_id
    ).order_by("pk")[:1]
)
# The same, locked; then, for a first invoice, the checkout's payment by our metadata, or by the subscription.
INVOICE_PAYMENT_LOCKED = Statement(
    lambda project_id, stripe_invoice_id: (
        Payment.objects.select_for_update()
        .filter(project_id=project_id, stripe_invoice_id=stripe_invoice_id)
        .order_by("pk")[:1]
    )
)
CHECKOUT_PAYMENT_LOCKED = Statement(
    lambda project_id, pk: (
        Payment.objects.select_for_update()
        .filter(project_id=project_id, stripe_invoice_id="", pk=pk)
        .order_by("pk")[:1]
    )
)
SUBSCRIPTION_PAYMENT_LOCKED = Statement(
    lambda project_id, stripe_subscription_id: (
        Payment.objects.select_for_update()
        .filter(project_id=project_id, stripe_invoice_id="", stripe_subscription_id=stripe_subscription_id)
        .order_by("pk")[:1]
    )
)
# A payment's open checkout session, locked.
OPEN_SESSION_LOCKED = Statement(
    lambda payment_id: (
        CheckoutSession.objects.select_for_update()
        .filter(payment_id=payment_id, status=CheckoutSession.Status.OPEN)
        .order_by("pk")[:1]
    )
)
# A customer's payments of a period invoice that no plan period records yet (paid before the invoice was
# mirrored), oldest first.
PLAN_PAID_UNCREDITED = Statement(
    lambda customer_id: (
        Payment.objects.filter(customer_id=customer_id, status__in=PLAN_PAID)
        .exclude(stripe_invoice_id="")
        .exclude(dispute_status=DISPUTE_LOST)
        .exclude(pk__in=PlanPeriod.objects.filter(customer_id=customer_id).values("payment_id"))
        .filter(
            Exists(
                Invoice.objects.filter(
                    project_id=OuterRef("project_id"),
                    stripe_invoice_id=OuterRef("stripe_invoice_id"),
                    billing_reason__in=PLAN_CREDIT_REASONS,
                    status__in=INVOICE_FINALIZED,
                )
            )
        )
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )
)


# --- routing a Stripe event to its payment or invoice (`handlers`) ------------------------------------------


def _payments() -> QuerySet[Payment]:
    return Payment.objects.select_related("project", "customer")


def _invoices() -> QuerySet[Invoice]:
    return Invoice.objects.only("project_id", "stripe_invoice_id", "stripe_payment_intent_id")


# The payment a Checkout Session is about, with its project and customer, by the session's id or our metadata,
# read or locked: the account is checked on the row (the platform's projects hold no key of their own).
def _session_payment_by(field: str, lock: bool) -> Statement[Payment]:
    def build(value: str) -> "QuerySet[Payment]":
        payments = _payments()
        if lock:
            payments = payments.select_for_update(of=("self",))
        return payments.filter(**{field: value}).order_by("pk")[:1]

    return Statement(build)


SESSION_PAYMENT_BY = {
    (field, lock): _session_payment_by(field, lock)
    for field in ("stripe_checkout_session_id", "pk")
    for lock in (False, True)
}


# The lookups of one row that every payment and invoice event makes, scoped as `lookups.payments_of_account`
# scopes payments: a pair, for the platform's account and for a project's. Invoices are read with the columns that
# routing reads.
def _by_field(rows: Callable[[], QuerySet[Any, R]], field: str) -> tuple[Statement[R], Statement[R]]:
    return (
        Statement(
            lambda value: rows().filter(project__stripe_secret_key="", **{field: value}).order_by("pk")[:1]
        ),
        Statement(
            lambda account, value: rows().filter(project_id=account, **{field: value}).order_by("pk")[:1]
        ),
    )


def _payments_by_session_or_intent() -> tuple[Statement[Payment], Statement[Payment]]:
    def either(session: str, intent: str) -> Q:
        return Q(stripe_checkout_session_id=session) | Q(stripe_payment_intent_id=intent)

    return (
        Statement(
            lambda session, intent: (
                _payments().filter(either(session, intent), project__stripe_secret_key="").order_by("pk")[:1]
            )
        ),
        Statement(
            lambda account, session, intent: (
                _payments().filter(either(session, intent), project_id=account).order_by("pk")[:1]
            )
        ),
    )


PAYMENT_BY = {
    field: _by_field(_payments, field)
    for field in ("stripe_checkout_session_id", "stripe_payment_intent_id", "pk")
}
PAYMENT_BY_SESSION_OR_INTENT = _payments_by_session_or_intent()
INVOICE_BY = {
    field: _by_field(_invoices, field) for field in ("stripe_invoice_id", "stripe_payment_intent_id")
}


# The Stripe customer of an invoice or a payment intent (`lookups.stripe_customer_of`).
def _stripe_customer_ids(model: type[Payment | Invoice]) -> Callable[[], QuerySet[Any, str]]:
    return lambda: model.objects.values_list("customer__stripe_customer_id", flat=True)


STRIPE_CUSTOMER_OF = {
    (model, field): _by_field(_stripe_customer_ids(model), field)
    for model, field in (
        (Invoice, "stripe_invoice_id"),
        (Payment, "stripe_payment_intent_id"),
        (Invoice, "stripe_payment_intent_id"),
    )
}
