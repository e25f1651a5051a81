"""The typed results of the API, one frozen dataclass per object of API.md.

Money is an integer in minor units next to a lowercase `currency`; times are ISO 8601 UTC strings, as on the
wire (`datetime.fromisoformat(value)` parses them on Python 3.11+; 3.10 needs the `Z` replaced by `+00:00`).
Fields the server may leave out or send as null default to None. Every object keeps its full JSON in `raw` and
the fields this client does not know yet in `extra`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tollgate_client._objects import TollgateObject

__all__ = [
    "ApiKey",
    "Cart",
    "CartItem",
    "CheckoutSession",
    "CreditBalance",
    "CreditLedgerEntry",
    "CreditLot",
    "Customer",
    "CustomerEntitlements",
    "Entitlement",
    "EntitlementCheck",
    "EntitlementSource",
    "Event",
    "EventDelivery",
    "Feature",
    "Grant",
    "Invoice",
    "InvoiceLine",
    "Payment",
    "PaymentItem",
    "PortalEligibility",
    "PortalSession",
    "Price",
    "Product",
    "Project",
    "RevenueMetrics",
    "RevenuePeriod",
    "Revocation",
    "Subscription",
    "SubscriptionMetrics",
    "TollgateObject",
    "UsageBatchResult",
    "UsageEvent",
    "UsageMeterStatus",
    "WebhookEndpoint",
]


# Projects and keys


@dataclass(frozen=True, kw_only=True)
class Project(TollgateObject):
    id: str
    object: str = "project"
    slug: str = ""
    name: str = ""
    status: str | None = None
    default_currency: str | None = None
    allowed_redirect_hosts: list[str] = field(default_factory=list)
    payment_ttl_seconds: int | None = None
    default_flow: str | None = None
    default_product: str | None = None
    stripe_publishable_key: str | None = None
    refund_late_payments: bool | None = None
    has_stripe_secret_key: bool = False
    has_stripe_webhook_secret: bool = False
    created_at: str | None = None
    updated_at: str | None = None
    api_key: str | None = None
    """The project's first secret key: only in the answer to `projects.create`."""


@dataclass(frozen=True, kw_only=True)
class ApiKey(TollgateObject):
    id: str
    object: str = "api_key"
    project: str | None = None
    name: str = ""
    prefix: str = ""
    created_at: str | None = None
    last_used_at: str | None = None
    revoked_at: str | None = None
    api_key: str | None = None
    """The secret itself: only in the answer to a create, shown this once."""


# Catalog


@dataclass(frozen=True, kw_only=True)
class Feature(TollgateObject):
    id: str
    key: str
    object: str = "feature"
    name: str = ""
    type: str = ""
    unit: str | None = None
    stripe_meter_id: str | None = None
    stripe_meter_event_name: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class Product(TollgateObject):
    id: str
    key: str
    object: str = "product"
    name: str = ""
    description: str | None = None
    active: bool = True
    features: dict[str, Any] = field(default_factory=dict)
    stripe_product_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class Price(TollgateObject):
    id: str
    key: str
    object: str = "price"
    product: str = ""
    currency: str = ""
    unit_amount: int = 0
    type: str = ""
    interval: str | None = None
    interval_count: int | None = None
    trial_days: int | None = None
    usage_type: str | None = None
    meter: str | None = None
    tax_behavior: str | None = None
    active: bool = True
    stripe_product_id: str | None = None
    stripe_price_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


# Customers, checkout, carts, payments, portal


@dataclass(frozen=True, kw_only=True)
class Customer(TollgateObject):
    id: str
    external_id: str
    object: str = "customer"
    email: str = ""
    name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    currency: str | None = None
    stripe_customer_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class CheckoutSession(TollgateObject):
    id: str
    object: str = "checkout_session"
    mode: str = ""
    status: str = ""
    url: str | None = None
    expires_at: str | None = None
    payment: str | None = None
    customer: str | None = None
    amount_total: int | None = None
    currency: str | None = None
    success_url: str | None = None
    cancel_url: str | None = None
    stripe_session_id: str | None = None
    created_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class CartItem(TollgateObject):
    id: str
    object: str = "cart_item"
    price: str = ""
    product: str | None = None
    quantity: int = 1
    unit_amount: int = 0
    amount: int = 0
    currency: str = ""


@dataclass(frozen=True, kw_only=True)
class Cart(TollgateObject):
    id: str
    object: str = "cart"
    customer: str = ""
    status: str = ""
    currency: str | None = None
    items: list[CartItem] = field(default_factory=list)
    amount_total: int = 0
    created_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentItem(TollgateObject):
    price: str | None = None
    price_key: str | None = None
    product: str | None = None
    quantity: int = 1
    unit_amount: int = 0
    currency: str = ""
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class Payment(TollgateObject):
    id: str
    object: str = "payment"
    customer: str = ""
    type: str = ""
    flow: str = ""
    source: str | None = None
    status: str = ""
    amount: int = 0
    amount_refunded: int = 0
    currency: str = ""
    description: str = ""
    reference: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    items: list[PaymentItem] = field(default_factory=list)
    checkout_session: str | None = None
    checkout_url: str | None = None
    """Checkout flow: where to send the customer."""
    client_secret: str | None = None
    """Intent flow: confirm it with Stripe.js or a mobile SDK, with `publishable_key`."""
    publishable_key: str | None = None
    last_error_code: str | None = None
    decline_code: str | None = None
    dispute_status: str | None = None
    stripe_checkout_session_id: str | None = None
    stripe_payment_intent_id: str | None = None
    stripe_subscription_id: str | None = None
    stripe_invoice_id: str | None = None
    expires_at: str | None = None
    succeeded_at: str | None = None
    created_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class PortalSession(TollgateObject):
    url: str


@dataclass(frozen=True, kw_only=True)
class PortalEligibility(TollgateObject):
    eligible: bool
    reason: str | None = None


# Subscriptions and invoices


@dataclass(frozen=True, kw_only=True)
class Subscription(TollgateObject):
    id: str
    object: str = "subscription"
    customer: str = ""
    status: str = ""
    price: str = ""
    product: str = ""
    quantity: int = 1
    current_period_start: str | None = None
    current_period_end: str | None = None
    cancel_at_period_end: bool = False
    trial_end: str | None = None
    canceled_at: str | None = None
    stripe_subscription_id: str | None = None
    created_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class InvoiceLine(TollgateObject):
    description: str = ""
    amount: int = 0
    currency: str = ""
    quantity: int | None = None
    proration: bool = False
    stripe_price_id: str | None = None
    period_start: int | None = None
    period_end: int | None = None


@dataclass(frozen=True, kw_only=True)
class Invoice(TollgateObject):
    id: str
    object: str = "invoice"
    customer: str = ""
    subscription: str | None = None
    number: str | None = None
    status: str = ""
    billing_reason: str | None = None
    subtotal: int = 0
    tax: int = 0
    total: int = 0
    amount_due: int = 0
    amount_paid: int = 0
    amount_remaining: int = 0
    currency: str = ""
    period_start: str | None = None
    period_end: str | None = None
    hosted_invoice_url: str | None = None
    invoice_pdf: str | None = None
    lines: list[InvoiceLine] = field(default_factory=list)
    stripe_invoice_id: str | None = None
    created_at: str | None = None


# Usage, entitlements, credits


@dataclass(frozen=True, kw_only=True)
class UsageMeterStatus(TollgateObject):
    """How a usage event fared at Stripe's billing meter (features sold with a metered price)."""

    status: str | None = None
    """None (not billed by a meter), `pending`, `reported`, `skipped` (no Stripe customer) or `failed`."""
    reported_at: str | None = None
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class UsageEvent(TollgateObject):
    id: str
    """Your idempotency id for the event."""
    object: str = "usage_event"
    customer: str = ""
    feature: str = ""
    quantity: int = 0
    timestamp: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    period_start: str | None = None
    """The start of the metered period the event counts in."""
    stripe_meter: UsageMeterStatus | None = None
    created_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class UsageBatchResult(TollgateObject):
    accepted: int = 0
    """Events recorded now."""
    duplicates: int = 0
    """Events whose id was recorded before, or repeated within the batch: counted once."""


@dataclass(frozen=True, kw_only=True)
class EntitlementCheck(TollgateObject):
    """The answer of `entitlements.check`, `consume` and `release`.

    `limit` None is unlimited (or a feature that is not counted); `used` is set for `metered` (this period)
    and `allocation` (units in use); `balance` for `credits`.
    """

    allowed: bool
    feature: str = ""
    type: str = ""
    enabled: bool = False
    value: Any = None
    limit: int | None = None
    used: int | None = None
    remaining: int | None = None
    balance: int | None = None
    duplicate: bool = False
    """`consume`/`release` only: this id was recorded before, nothing was recorded again."""


@dataclass(frozen=True, kw_only=True)
class EntitlementSource(TollgateObject):
    """Where part of an entitlement comes from (the fields that apply to its `type`)."""

    type: str
    """`subscription`, `purchase`, `grant`, `default_product` or `revocation`."""
    id: str | None = None
    product: str | None = None
    value: Any = None
    quantity: int | None = None
    status: str | None = None
    ends_at: str | None = None
    expires_at: str | None = None
    reason: str | None = None
    disputed: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Entitlement(TollgateObject):
    feature: str
    type: str = ""
    enabled: bool = False
    value: Any = None
    limit: int | None = None
    used: int | None = None
    remaining: int | None = None
    balance: int | None = None
    resets_at: str | None = None
    """`metered`: the end of the current period, when `used` starts again from 0."""
    sources: list[EntitlementSource] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class CustomerEntitlements(TollgateObject):
    customer: str
    entitlements: list[Entitlement] = field(default_factory=list)

    def get(self, feature: str) -> Entitlement | None:
        """The entitlement to `feature`, or None when the customer's answer does not mention it."""
        return next((e for e in self.entitlements if e.feature == feature), None)


@dataclass(frozen=True, kw_only=True)
class Grant(TollgateObject):
    id: str
    object: str = "entitlement_grant"
    customer: str = ""
    feature: str = ""
    value: Any = None
    expires_at: str | None = None
    reason: str = ""
    deleted: bool = False
    created_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class Revocation(TollgateObject):
    id: str
    object: str = "entitlement_revocation"
    customer: str = ""
    feature: str = ""
    expires_at: str | None = None
    reason: str = ""
    deleted: bool = False
    created_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class CreditLot(TollgateObject):
    """Credits granted together (a purchase or a grant), spent oldest-expiring first."""

    id: str
    source: str = ""
    amount: int = 0
    remaining: int = 0
    expires_at: str | None = None
    voided: bool = False
    created_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class CreditLedgerEntry(TollgateObject):
    id: str
    type: str = ""
    """`grant`, `consume` or `revoke`."""
    amount: int = 0
    """Positive when granted, negative when consumed or taken back."""
    lot: str | None = None
    reference: str = ""
    """What moved the credits: the consume's id, the grant's or the payment's id."""
    created_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class CreditBalance(TollgateObject):
    balance: int
    object: str = "credit_balance"
    customer: str = ""
    feature: str = ""
    lots: list[CreditLot] = field(default_factory=list)
    ledger: list[CreditLedgerEntry] = field(default_factory=list)
    """Newest first, the latest 100 movements."""


# Outbound events


@dataclass(frozen=True, kw_only=True)
class WebhookEndpoint(TollgateObject):
    id: str
    object: str = "webhook_endpoint"
    url: str = ""
    events: list[str] = field(default_factory=list)
    description: str = ""
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: str | None = None
    created_at: str | None = None
    secret: str | None = None
    """The signing secret: only in the answers to create and roll_secret. Keep it; it is not shown again."""


@dataclass(frozen=True, kw_only=True)
class EventDelivery(TollgateObject):
    id: str
    endpoint: str = ""
    status: str = ""
    attempts: int = 0
    next_attempt_at: str | None = None
    last_attempt_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class Event(TollgateObject):
    """An outbound event, from `events.retrieve`/`list` or from a verified delivery (`construct_event`).

    `object` is the object the event is about (`data["object"]`): the payment, subscription, … as it was when
    the event happened. `previous_attributes` holds the fields that changed, with their old values.
    """

    id: str
    type: str
    created: str
    project: str
    sequence: int
    data: dict[str, Any] = field(default_factory=dict)
    previous_attributes: dict[str, Any] | None = None
    deliveries: list[EventDelivery] = field(default_factory=list)
    """Only in API answers (`events.retrieve`, `events.list`): where the event went and how it fared."""

    @property
    def object(self) -> dict[str, Any]:
        return dict(self.data.get("object") or {})


# Metrics


@dataclass(frozen=True, kw_only=True)
class SubscriptionMetrics(TollgateObject):
    total: int = 0
    by_status: dict[str, Any] = field(default_factory=dict)
    by_product: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RevenuePeriod(TollgateObject):
    period_start: str
    currency: str
    revenue: int = 0
    refunds: int = 0
    net: int = 0


@dataclass(frozen=True, kw_only=True)
class RevenueMetrics(TollgateObject):
    interval: str = "month"
    data: list[RevenuePeriod] = field(default_factory=list)
    mrr: dict[str, Any] = field(default_factory=dict)
