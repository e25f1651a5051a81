"""The typed results of the API, one frozen dataclass per object of API.md.

Generated from the OpenAPI schema (`/api/schema/`) by `clients/python/generate_types.py`: do not edit it by
hand; change the server (or the generator's tables) and run `.venv/bin/python clients/python/generate_types.py`.

A field the server always sends is typed without None; one it may leave out or send as null is `… | None`
and defaults to None (a list defaults to empty). `from_dict` never fails on a missing field: it becomes None
(or an empty list). Enum fields are `Literal` aliases (`PaymentStatus`, …); a value added by a newer server
still comes through as the string it is. Money is an integer in minor units next to a lowercase `currency`;
times are ISO 8601 UTC strings, as on the wire (`datetime.fromisoformat(value)` parses them on Python 3.11+;
3.10 needs the `Z` replaced by `+00:00`). Every object keeps its full JSON in `raw` and the fields this client
does not know yet in `extra`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tollgate_client._objects import TollgateObject

__all__ = [
    "AdoptionPoint",
    "AdoptionRun",
    "AdoptionRunStatus",
    "AgentKey",
    "ApiKey",
    "AutoRecharge",
    "AutoRechargeStatus",
    "Cart",
    "CartItem",
    "CartStatus",
    "CheckoutSession",
    "CheckoutSessionMode",
    "CheckoutSessionStatus",
    "CostTable",
    "Coupon",
    "CouponDuration",
    "CreditBalance",
    "CreditLedgerEntry",
    "CreditLedgerEntryType",
    "CreditLot",
    "CreditLotSource",
    "CreditNote",
    "CreditNoteLine",
    "CreditNoteLineType",
    "CreditNoteReason",
    "CreditNoteStatus",
    "CreditNoteType",
    "Customer",
    "CustomerEntitlements",
    "CustomerErasure",
    "CustomerExport",
    "DefaultPaymentFlow",
    "DraftPriceChange",
    "Entitlement",
    "EntitlementAccountCap",
    "EntitlementAccountCapAtCap",
    "EntitlementAccountCapSetBy",
    "EntitlementCap",
    "EntitlementCapAtCap",
    "EntitlementCapSetBy",
    "EntitlementChange",
    "EntitlementChangeChange",
    "EntitlementCheck",
    "EntitlementCheckOverage",
    "EntitlementCheckStep",
    "EntitlementCredits",
    "EntitlementEntity",
    "EntitlementOverage",
    "EntitlementSource",
    "EntitlementSourceType",
    "EntitlementStep",
    "Entity",
    "EntityCredits",
    "EntityFeatureUse",
    "Event",
    "EventDelivery",
    "EventDeliveryStatus",
    "EventType",
    "Feature",
    "FeatureType",
    "Grant",
    "Hold",
    "HoldAnswer",
    "HoldCall",
    "HoldStatus",
    "HoldUsage",
    "Invoice",
    "InvoiceLine",
    "InvoiceLineType",
    "InvoiceStatus",
    "JournalAccount",
    "JournalEntry",
    "JournalEntryKind",
    "JournalLine",
    "Margin",
    "MeterReportStatus",
    "Payment",
    "PaymentFlow",
    "PaymentItem",
    "PaymentSource",
    "PaymentStatus",
    "PaymentStatusSummary",
    "PaymentType",
    "PendingChange",
    "PendingChangeItem",
    "PortalEligibility",
    "PortalIneligibilityReason",
    "PortalSession",
    "Price",
    "PriceBillingScheme",
    "PriceInterval",
    "PriceTaxBehavior",
    "PriceTier",
    "PriceTiersMode",
    "PriceType",
    "PriceUsageType",
    "Product",
    "ProductAccountCap",
    "ProductAccountCapAtCap",
    "ProductDraft",
    "ProductVersion",
    "ProductVersionPrice",
    "Project",
    "ProjectProrationDowngrade",
    "ProjectProrationIntervalChange",
    "ProjectProrationUpgrade",
    "ProjectStatus",
    "PromotionCode",
    "PublicPlan",
    "PublicPlanFeature",
    "PublicPlanPrice",
    "ReratedPeriod",
    "ReratedSubscription",
    "Rerating",
    "ReratingCohort",
    "ReratingTotal",
    "RevenueInterval",
    "RevenueMetrics",
    "RevenuePeriod",
    "RevenueRecognition",
    "RevenueRecognitionBalance",
    "RevenueRecognitionCurrency",
    "RevenueRecognitionMonth",
    "RevenueRecognitionProduct",
    "Revocation",
    "ScheduledCredits",
    "SpendCap",
    "Subscription",
    "SubscriptionDiscount",
    "SubscriptionDiscountDuration",
    "SubscriptionItem",
    "SubscriptionItemUsageType",
    "SubscriptionMetrics",
    "SubscriptionPreview",
    "SubscriptionPreviewChange",
    "SubscriptionPreviewLine",
    "SubscriptionPreviewRule",
    "SubscriptionStatus",
    "TollgateObject",
    "UsageBatchResult",
    "UsageCorrection",
    "UsageCorrectionAction",
    "UsageCorrectionCredits",
    "UsageCorrectionInvoiceAdjustment",
    "UsageCorrectionInvoiceAdjustmentStatus",
    "UsageCorrectionMeter",
    "UsageCorrectionMeterStatus",
    "UsageCost",
    "UsageEvent",
    "UsageMeterStatus",
    "UsageSummary",
    "UsageThreshold",
    "UsageWindow",
    "UsageWindowWindow",
    "VersionChange",
    "VersionChangeChange",
    "VersionMove",
    "VersionMoveInvoice",
    "VersionMoveProration",
    "VersionMoves",
    "VersionPriceMove",
    "WebhookEndpoint",
]


# Enums: the values each enum field may have (a newer server may send others)

AdoptionRunStatus = Literal["pending", "running", "completed", "failed"]
AutoRechargeStatus = Literal["armed", "charging", "failed"]
CartStatus = Literal["open", "checked_out", "deleted"]
CheckoutSessionMode = Literal["subscription", "payment"]
CheckoutSessionStatus = Literal["open", "complete", "expired"]
CouponDuration = Literal["once", "repeating", "forever"]
CreditLedgerEntryType = Literal[
    "grant",
    "consume",
    "revoke",
    "hold",
    "hold_return",
    "rollover",
    "forfeited",
    "correction",
]
CreditLotSource = Literal["purchase", "plan", "grant"]
CreditNoteLineType = Literal["invoice_line_item", "custom_line_item"]
CreditNoteReason = Literal["duplicate", "fraudulent", "order_change", "product_unsatisfactory"]
CreditNoteStatus = Literal["issued", "void"]
CreditNoteType = Literal["pre_payment", "post_payment", "mixed"]
DefaultPaymentFlow = Literal["checkout", "intent"]
EntitlementAccountCapAtCap = Literal["block", "alert"]
EntitlementAccountCapSetBy = Literal["customer", "plan"]
EntitlementCapAtCap = Literal["block", "alert"]
EntitlementCapSetBy = Literal["catalog", "customer"]
EntitlementChangeChange = Literal["lost", "lowered"]
EntitlementCheckOverage = Literal["allowed", "blocked"]
EntitlementCheckStep = Literal["allowance", "credits", "overage"]
EntitlementOverage = Literal["allowed", "blocked"]
EntitlementSourceType = Literal["subscription", "purchase", "default_product", "grant", "revocation"]
EntitlementStep = Literal["allowance", "credits", "overage"]
EventDeliveryStatus = Literal["pending", "succeeded", "failed"]
EventType = Literal[
    "payment.succeeded",
    "payment.failed",
    "payment.requires_action",
    "payment.expired",
    "payment.refunded",
    "checkout.completed",
    "checkout.expired",
    "subscription.created",
    "subscription.updated",
    "subscription.version_changed",
    "subscription.canceled",
    "subscription.past_due",
    "invoice.paid",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.payment_failed",
    "credit_note.created",
    "credit_note.voided",
    "entitlements.updated",
    "usage.threshold_reached",
    "usage.corrected",
    "usage.window_reached",
    "usage.cap_reached",
    "credits.low",
    "credits.threshold_reached",
    "credits.recharged",
    "credits.recharge_failed",
    "customer.margin_low",
    "webhook_endpoint.disabled",
]
FeatureType = Literal["boolean", "metered", "credits", "allocation", "static"]
HoldStatus = Literal["active", "confirmed", "released", "expired"]
InvoiceLineType = Literal["invoice_item", "subscription_item"]
InvoiceStatus = Literal["draft", "open", "paid", "uncollectible", "void"]
JournalAccount = Literal[
    "stripe_balance",
    "receivables",
    "deferred_revenue",
    "customer_balance",
    "tax_payable",
    "refunds_outside_stripe",
    "prepaid_credits",
    "revenue",
    "refunds",
    "stripe_fees",
    "disputes",
    "bad_debt",
]
JournalEntryKind = Literal[
    "invoice",
    "uncollectible",
    "payment",
    "refund",
    "credit_note",
    "dispute",
    "fee",
    "recognition",
]
MeterReportStatus = Literal["pending", "reported", "skipped", "failed"]
PaymentFlow = Literal["checkout", "intent", "off_session"]
PaymentSource = Literal["checkout", "intent", "invoice"]
PaymentStatus = Literal[
    "pending",
    "requires_payment_method",
    "requires_action",
    "processing",
    "succeeded",
    "no_payment_required",
    "failed",
    "canceled",
    "expired",
    "refunded",
    "partially_refunded",
    "disputed",
]
PaymentType = Literal["subscription", "one_time", "cart"]
PortalIneligibilityReason = Literal["unknown_customer", "no_billing_account"]
PriceBillingScheme = Literal["per_unit", "tiered"]
PriceInterval = Literal["day", "week", "month", "year"]
PriceTaxBehavior = Literal["unspecified", "inclusive", "exclusive"]
PriceTiersMode = Literal["graduated", "volume"]
PriceType = Literal["recurring", "one_time"]
PriceUsageType = Literal["licensed", "metered"]
ProductAccountCapAtCap = Literal["block", "alert"]
ProjectProrationDowngrade = Literal["now_prorate", "now_no_proration", "period_end"]
ProjectProrationIntervalChange = Literal["now_prorate", "now_no_proration", "period_end"]
ProjectProrationUpgrade = Literal["now_prorate", "now_no_proration", "period_end"]
ProjectStatus = Literal["active", "suspended"]
RevenueInterval = Literal["month", "day"]
SubscriptionDiscountDuration = Literal["once", "repeating", "forever"]
SubscriptionItemUsageType = Literal["licensed", "metered"]
SubscriptionPreviewChange = Literal["upgrade", "downgrade", "interval_change"]
SubscriptionPreviewRule = Literal["now_prorate", "now_no_proration", "period_end", "requested"]
SubscriptionStatus = Literal[
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "unpaid",
    "paused",
    "canceled",
]
UsageCorrectionAction = Literal["void", "amend"]
UsageCorrectionInvoiceAdjustmentStatus = Literal["none", "pending", "created"]
UsageCorrectionMeterStatus = Literal["none", "pending", "adjusted", "invoiced"]
UsageWindowWindow = Literal["minute", "hour", "day", "week"]
VersionChangeChange = Literal["added", "removed", "changed"]
VersionMoveProration = Literal["now_prorate", "now_no_proration", "period_end"]


# Projects and keys


@dataclass(frozen=True, kw_only=True)
class Project(TollgateObject):
    id: str
    object: str
    slug: str
    name: str
    status: ProjectStatus | None = None
    default_currency: str | None = None
    allowed_redirect_hosts: list[str] = field(default_factory=list)
    payment_ttl_seconds: int | None = None
    default_flow: DefaultPaymentFlow | None = None
    default_product: str | None = None
    stripe_publishable_key: str | None = None
    refund_late_payments: bool | None = None
    first_invoice_void_ends_subscription: bool | None = None
    """Cancel a subscription at once when its first invoice is voided before anything was paid on it: what it granted ends with it. Off: the subscription runs on, as Stripe leaves it."""
    proration_upgrade: ProjectProrationUpgrade | None = None
    proration_downgrade: ProjectProrationDowngrade | None = None
    proration_interval_change: ProjectProrationIntervalChange | None = None
    margin_alert_below_bps: int | None = None
    """Announce a customer's month as customer.margin_low when their margin falls below this share of what they were billed, in basis points (2000 = 20 %; negative: a loss). Empty: never."""
    has_stripe_secret_key: bool
    has_stripe_webhook_secret: bool
    created_at: str
    updated_at: str
    api_key: str | None = None
    """The project's first secret key: only in the answer to `projects.create`."""


@dataclass(frozen=True, kw_only=True)
class ApiKey(TollgateObject):
    id: str
    object: str
    project: str
    name: str | None = None
    prefix: str
    created_at: str
    last_used_at: str | None = None
    revoked_at: str | None = None
    api_key: str | None = None
    """The secret itself: only in the answer to a create, shown this once."""


@dataclass(frozen=True, kw_only=True)
class AgentKey(TollgateObject):
    id: str
    object: str
    project: str
    name: str
    prefix: str
    """The start of the key, to tell keys apart; never the secret."""
    tools: list[str]
    """The tools the key may call."""
    can_confirm: bool
    """Whether the key may confirm money moves (`move_confirm`)."""
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    agent_key: str | None = None
    """The secret itself (`tg_ak_…`): only in the answer to a create, shown this once."""


@dataclass(frozen=True, kw_only=True)
class AdoptionPoint(TollgateObject):
    at: str | None
    stripe_time: int | None
    """Stripe's clock (Unix seconds) as the reads began."""
    newest_event: str
    """The account's newest event then."""
    newest_event_created: int | None


@dataclass(frozen=True, kw_only=True)
class AdoptionRun(TollgateObject):
    id: str
    object: str
    project: str
    status: AdoptionRunStatus | None = None
    dry_run: bool | None = None
    customer_key: Any
    mapping: Any
    adoption_point: AdoptionPoint
    """Events Stripe created before it describe states the adoption read: applied only if newer than what was adopted."""
    stripe_reads: int | None = None
    report: Any
    """Counts by kind and outcome (`counts`), what was left out (`held_by_another_project`: `{kind, id}` of each object another project owns, skipped whatever the mapping says; `unmapped_products`, `customers_without_key`, `customer_conflicts`, `unmapped_subscriptions`, `skipped_prices` and `subscription_items_not_adopted` with the reason of each and what to do, `subscription_schedules`), the diff (`changes`, at most 2000 lines of `changes_total`), `nothing_to_do`, `seconds` and `stripe_reads`. Empty until the run ends."""
    error: str | None = None
    created_at: str
    finished_at: str | None = None


# Catalog


@dataclass(frozen=True, kw_only=True)
class Feature(TollgateObject):
    id: str
    object: str
    key: str
    name: str
    type: FeatureType
    unit: str | None
    stripe_meter_id: str | None
    """The Stripe billing meter of a metered feature billed by a metered price."""
    stripe_meter_event_name: str | None
    usage_formula: Any
    """How usage events' `dimensions` become units: {"type": "cost", "markup": "1.5", "unit_micros": 1000} (the cost by the project's cost table in force at the event's time, times the markup, in units worth `unit_micros` micro-units each) or {"type": "rates", "rates": {"input_tokens": "0.001", ...}, "models": {"<model>": {...}}} (each dimension times its rate, a model in `models` taking its own rates; `rates` or `models` or both); rounded up once to a whole unit and stored with the event. Rates and markups are decimal strings (or integers). Metered features only; null: events give `quantity`."""
    created_at: str
    updated_at: str


@dataclass(frozen=True, kw_only=True)
class Product(TollgateObject):
    id: str
    object: str
    key: str
    name: str
    description: str | None
    active: bool
    public: bool
    """Listed, while active, by the unauthenticated pricing-page endpoint `GET /public/{project slug}/plans` with its active prices and feature values. Default false."""
    features: dict[str, Any]
    """Per feature key: `true`/`false` (boolean), an integer ≥ 0 or `null` for unlimited, or `{"per_unit": n}` multiplied by the quantity bought (metered, credits, allocation), any JSON value (static). A metered limit may let use go past it: `{"limit": n, "overage": "allowed"}` or `{"per_unit": n, "overage": "allowed"}` (checks then allow it, `remaining` goes negative, and the metered price bills it), bounded by `"cap": {"units": n} | {"amount": m}, "at_cap": "block" | "alert"`; a metered value may limit use per calendar window, `"windows": {"minute": m, "hour": …, "day": …, "week": …}`, and pay for use past its limit from a credits feature before any overage, `"credits": {"feature": key, "cost": n}` (n credits a unit). A credits value may carry unspent plan credits into the next period (`"rollover": m`) and be granted every month or week of a paid period instead of once for it (`"cadence": "month" | "week"`)."""
    access_days: int | None
    """One-time purchases of the product grant its features for this many days from payment; null: for life (subscriptions grant them while live). A change applies to purchases made from then on."""
    account_cap: ProductAccountCap | None
    """The plan's account cap, `{"amount": m, "currency": "usd", "at_cap": "block" | "alert"}`: the most its customers' metered prices in that currency bill together a period (minor units; `at_cap` defaults to `block`), for each customer without an account cap of their own (`/entitlements/spend_caps`, which overrides it). A customer whose live plans declare several has the lowest amount (`block` before `alert` at the same amount) among those in a currency their metered prices bill in. A change publishes the product's next version: existing subscribers keep the cap of the version they are on until moved. Null: none. 400 `invalid_parameter`, `parameter_missing` or `parameter_conflict` (units: an account cap is in money only)."""
    stripe_product_id: str | None
    """Null until the product exists at Stripe (a failed sync is retried)."""
    version: int
    """The latest version (`/products/{product}/versions`), as `features`."""
    created_at: str
    updated_at: str


@dataclass(frozen=True, kw_only=True)
class ProductAccountCap(TollgateObject):
    amount: int
    currency: str
    at_cap: ProductAccountCapAtCap


@dataclass(frozen=True, kw_only=True)
class VersionChange(TollgateObject):
    feature: str
    change: VersionChangeChange
    """`added` (`before` null: not given), `removed` (`after` null: not given) or `changed` (either may be null: unlimited). * `added` - added * `removed` - removed * `changed` - changed"""
    before: Any
    after: Any


@dataclass(frozen=True, kw_only=True)
class ProductVersionPrice(TollgateObject):
    """A price of the product as it was when the version was published."""

    id: str
    key: str
    currency: str
    unit_amount: int | None
    billing_scheme: PriceBillingScheme | None = None
    """`per_unit` or `tiered`; with `tiers_mode` and `tiers`, null in versions published before 0.5.6."""
    tiers_mode: PriceTiersMode | None = None
    tiers: list[Any] | None = None
    type: PriceType
    interval: PriceInterval | None
    interval_count: int
    usage_type: PriceUsageType | None
    stripe_price_id: str | None


@dataclass(frozen=True, kw_only=True)
class ProductVersion(TollgateObject):
    object: str
    number: int
    latest: bool
    """Whether new subscribers get this version."""
    published_at: str
    note: str | None
    features: dict[str, Any]
    """Per feature key: `true`/`false` (boolean), an integer ≥ 0 or `null` for unlimited, or `{"per_unit": n}` multiplied by the quantity bought (metered, credits, allocation), any JSON value (static). A metered limit may let use go past it: `{"limit": n, "overage": "allowed"}` or `{"per_unit": n, "overage": "allowed"}` (checks then allow it, `remaining` goes negative, and the metered price bills it), bounded by `"cap": {"units": n} | {"amount": m}, "at_cap": "block" | "alert"`; a metered value may limit use per calendar window, `"windows": {"minute": m, "hour": …, "day": …, "week": …}`, and pay for use past its limit from a credits feature before any overage, `"credits": {"feature": key, "cost": n}` (n credits a unit). A credits value may carry unspent plan credits into the next period (`"rollover": m`) and be granted every month or week of a paid period instead of once for it (`"cadence": "month" | "week"`)."""
    account_cap: ProductAccountCap | None
    """The account cap it gives its subscribers (`account_cap` of the product as it was published; a change of the product's account cap publishes a version). Null: none."""
    prices: list[ProductVersionPrice]
    """The product's active prices when it was published, and those created while it was the latest."""
    changes: list[VersionChange]
    """What this version changes of the one before it, per feature key (sorted): `change` (added, removed, changed), and `before` and `after`, the feature's values as `features` shows them, null on the side that does not give the feature. Empty for version 1."""


@dataclass(frozen=True, kw_only=True)
class DraftPriceChange(TollgateObject):
    price: str
    """The price's key."""
    before: dict[str, Any]
    """Its terms now."""
    after: dict[str, Any]
    """Its drafted terms."""


@dataclass(frozen=True, kw_only=True)
class ProductDraft(TollgateObject):
    object: str
    product: str
    based_on: int
    """The version it was drafted on."""
    version: int
    """The version publishing it makes."""
    note: str | None
    features: dict[str, Any]
    """Per feature key: `true`/`false` (boolean), an integer ≥ 0 or `null` for unlimited, or `{"per_unit": n}` multiplied by the quantity bought (metered, credits, allocation), any JSON value (static). A metered limit may let use go past it: `{"limit": n, "overage": "allowed"}` or `{"per_unit": n, "overage": "allowed"}` (checks then allow it, `remaining` goes negative, and the metered price bills it), bounded by `"cap": {"units": n} | {"amount": m}, "at_cap": "block" | "alert"`; a metered value may limit use per calendar window, `"windows": {"minute": m, "hour": …, "day": …, "week": …}`, and pay for use past its limit from a credits feature before any overage, `"credits": {"feature": key, "cost": n}` (n credits a unit). A credits value may carry unspent plan credits into the next period (`"rollover": m`) and be granted every month or week of a paid period instead of once for it (`"cadence": "month" | "week"`)."""
    changes: list[VersionChange]
    """What it changes of the latest version, per feature key, as a version's `changes`."""
    account_cap: ProductAccountCap | None
    """The account cap the version gives (null: none), as a version's `account_cap`."""
    prices: dict[str, dict[str, Any]]
    """New terms for some of the product's active prices, by price key: `{"unit_amount": n}` (a per-unit price) or `{"tiers": [{"up_to": n | "inf", "unit_amount"?, "flat_amount"?}, …]}` (a tiered one, its tiers mode kept). Publishing gives the prices these terms (a new Stripe price each; subscribers keep theirs until moved)."""
    price_changes: list[DraftPriceChange]
    """What `prices` change of the prices' terms now, by price key (sorted)."""
    stale: bool
    """Whether a version was published since it was drafted (publishing it is refused)."""
    updated_at: str
    deleted: bool = False
    """true in the answer of its discard."""


@dataclass(frozen=True, kw_only=True)
class ReratedPeriod(TollgateObject):
    start: str
    end: str
    today: int
    """Minor units of `currency`: what Stripe's invoices bill the period."""
    draft: int
    """Minor units of `currency`: the same lines at the draft's prices."""


@dataclass(frozen=True, kw_only=True)
class EntitlementChange(TollgateObject):
    feature: str
    change: EntitlementChangeChange
    """`lost`: given now, not by the draft (or a boolean turned off); `lowered`: a smaller limit. * `lost` - lost * `lowered` - lowered"""
    before: Any
    """The value now (`lost`: as `features` shows it), or the limit now (`lowered`: per-unit values at the subscriber's quantity; null: unlimited)."""
    after: int | None
    """The draft's limit (`lowered`); null for `lost`."""
    used: int | None
    """A metered feature's largest period use since the first re-rated period began; an allocation's units in use; null for the others."""
    below_use: bool
    """Whether the draft's limit is under `used`."""


@dataclass(frozen=True, kw_only=True)
class ReratedSubscription(TollgateObject):
    customer: str
    """Your `external_id` of the customer."""
    subscription: str
    version: int
    """The version of the product the subscription is on."""
    currency: str
    quantity: int
    """Licences of the product held (per-unit values scale by it)."""
    periods: list[ReratedPeriod]
    """The closed periods re-rated, oldest first."""
    today: int
    """Minor units of `currency`: the periods as invoiced."""
    draft: int
    """Minor units of `currency`: the periods under the draft."""
    difference: int
    """`draft` − `today`."""
    entitlements: list[EntitlementChange]
    """What the draft takes away or lowers of what the subscription's version gives."""


@dataclass(frozen=True, kw_only=True)
class ReratingCohort(TollgateObject):
    version: int
    currency: str
    subscriptions: int
    periods: int
    """Closed periods re-rated, all subscriptions together."""
    today: int
    draft: int
    difference: int
    higher: int
    """Subscriptions the draft bills more."""
    lower: int
    """Subscriptions the draft bills less."""
    unchanged: int
    losing_features: int
    """Subscriptions that would lose a feature."""
    below_use: int
    """Subscriptions with a lowered limit under their use."""


@dataclass(frozen=True, kw_only=True)
class ReratingTotal(TollgateObject):
    currency: str
    subscriptions: int
    today: int
    draft: int
    difference: int


@dataclass(frozen=True, kw_only=True)
class Rerating(TollgateObject):
    object: str
    product: str
    """The product's key."""
    based_on: int
    """The version the draft was made on."""
    version: int
    """The version publishing the draft makes."""
    periods: int
    """The closed periods asked for, per subscription."""
    as_of: str
    """Periods ended by then are closed."""
    totals: list[ReratingTotal]
    """Per currency: money is never summed across currencies."""
    cohorts: list[ReratingCohort]
    """Per version and currency."""
    subscribers: list[ReratedSubscription]
    """Per subscription, the largest difference (either way) first; the first `limit`."""
    has_more: bool
    """Subscriptions were left out of `subscribers` (see `limit`)."""


@dataclass(frozen=True, kw_only=True)
class PriceTier(TollgateObject):
    up_to: Any
    """An integer, or "inf" on the last tier."""
    unit_amount: int | None
    """Minor units per unit in this tier."""
    flat_amount: int | None
    """Minor units for reaching this tier."""


@dataclass(frozen=True, kw_only=True)
class Price(TollgateObject):
    id: str
    object: str
    key: str
    product: str
    """The product's key."""
    currency: str
    unit_amount: int | None
    """Minor units; null for a tiered price."""
    billing_scheme: str
    """per_unit | tiered"""
    tiers_mode: str | None
    """graduated | volume (tiered only)"""
    tiers: list[PriceTier] | None
    """Ascending; the last is up to "inf" (tiered only)."""
    type: PriceType
    interval: PriceInterval | None
    """Recurring prices only."""
    interval_count: int | None
    trial_days: int | None
    usage_type: PriceUsageType | None
    """Recurring prices only."""
    meter: str | None
    """The key of the metered feature it bills."""
    tax_behavior: PriceTaxBehavior
    active: bool
    stripe_product_id: str | None
    stripe_price_id: str | None
    """The current Stripe price; null until it exists (after an amount change, until the new one does)."""
    created_at: str
    updated_at: str


@dataclass(frozen=True, kw_only=True)
class PublicPlanPrice(TollgateObject):
    currency: str
    unit_amount: int | None
    """Minor units; null for a tiered price."""
    billing_scheme: str
    """per_unit | tiered"""
    tiers_mode: str | None
    """graduated | volume (tiered only)"""
    tiers: list[PriceTier] | None
    """Ascending; the last is up to "inf" (tiered only)."""
    type: str
    """recurring | one_time"""
    interval: str | None
    """day | week | month | year (recurring only)"""
    interval_count: int | None
    trial_days: int | None
    usage_type: str | None
    """licensed | metered (recurring only)"""
    key: str
    """The price's key: what a checkout is started with."""


@dataclass(frozen=True, kw_only=True)
class PublicPlanFeature(TollgateObject):
    key: str
    name: str
    type: FeatureType
    """boolean | metered | credits | allocation | static"""
    value: Any
    """Per feature key: `true`/`false` (boolean), an integer ≥ 0 or `null` for unlimited, or `{"per_unit": n}` multiplied by the quantity bought (metered, credits, allocation), any JSON value (static). A metered limit may let use go past it: `{"limit": n, "overage": "allowed"}` or `{"per_unit": n, "overage": "allowed"}` (checks then allow it, `remaining` goes negative, and the metered price bills it), bounded by `"cap": {"units": n} | {"amount": m}, "at_cap": "block" | "alert"`; a metered value may limit use per calendar window, `"windows": {"minute": m, "hour": …, "day": …, "week": …}`, and pay for use past its limit from a credits feature before any overage, `"credits": {"feature": key, "cost": n}` (n credits a unit). A credits value may carry unspent plan credits into the next period (`"rollover": m`) and be granted every month or week of a paid period instead of once for it (`"cadence": "month" | "week"`)."""


@dataclass(frozen=True, kw_only=True)
class PublicPlan(TollgateObject):
    key: str
    name: str
    description: str | None
    prices: list[PublicPlanPrice]
    """Its active prices, by currency, cheapest first."""
    features: list[PublicPlanFeature]
    account_cap: ProductAccountCap | None
    """The plan's account cap: the most its metered prices bill together a period; null: none."""


# Customers, checkout, carts, payments, portal


@dataclass(frozen=True, kw_only=True)
class Customer(TollgateObject):
    id: str
    object: str
    external_id: str
    email: str
    name: str
    metadata: dict[str, Any]
    currency: str | None
    """Fixed by the first purchase; null before it."""
    stripe_customer_id: str | None
    test_clock: str | None
    """The test clock (test mode) the customer's Stripe customer lives on; null for none."""
    created_at: str
    updated_at: str


@dataclass(frozen=True, kw_only=True)
class CustomerExport(TollgateObject):
    object: str = "customer_export"
    exported_at: str
    customer: Customer
    allocation_counters: list[dict[str, Any]]
    """Every row of this kind (the customer's allocation counters)."""
    auto_recharges: list[dict[str, Any]]
    """Every row of this kind (the customer's auto-recharges)."""
    carts: list[dict[str, Any]]
    """Every row of this kind (the customer's carts)."""
    checkout_sessions: list[dict[str, Any]]
    """Every row of this kind (the customer's checkout sessions)."""
    credit_ledger_entries: list[dict[str, Any]]
    """Every row of this kind (the customer's credit ledger entries)."""
    credit_lots: list[dict[str, Any]]
    """Every row of this kind (the customer's credit lots)."""
    credit_notes: list[dict[str, Any]]
    """Every row of this kind (the customer's credit notes)."""
    entities: list[dict[str, Any]]
    """Every row of this kind (the customer's entities)."""
    entity_counters: list[dict[str, Any]]
    """Every row of this kind (the customer's entity counters)."""
    entity_window_counters: list[dict[str, Any]]
    """Every row of this kind (the customer's entity window counters)."""
    grants: list[dict[str, Any]]
    """Every row of this kind (the customer's grants)."""
    holds: list[dict[str, Any]]
    """Every row of this kind (the customer's holds)."""
    invoices: list[dict[str, Any]]
    """Every row of this kind (the customer's invoices)."""
    late_usage_charges: list[dict[str, Any]]
    """Every row of this kind (the customer's late usage charges)."""
    margin_alerts: list[dict[str, Any]]
    """Every row of this kind (the customer's margin alerts)."""
    payments: list[dict[str, Any]]
    """Every row of this kind (the customer's payments)."""
    plan_periods: list[dict[str, Any]]
    """Every row of this kind (the customer's plan periods)."""
    purchases: list[dict[str, Any]]
    """Every row of this kind (the customer's purchases)."""
    revocations: list[dict[str, Any]]
    """Every row of this kind (the customer's revocations)."""
    scheduled_credit_grants: list[dict[str, Any]]
    """Every row of this kind (the customer's scheduled credit grants)."""
    spend_caps: list[dict[str, Any]]
    """Every row of this kind (the customer's spend caps)."""
    subscription_sources: list[dict[str, Any]]
    """Every row of this kind (the customer's subscription sources)."""
    subscription_versions: list[dict[str, Any]]
    """Every row of this kind (the customer's subscription versions)."""
    subscriptions: list[dict[str, Any]]
    """Every row of this kind (the customer's subscriptions)."""
    usage_corrections: list[dict[str, Any]]
    """Every row of this kind (the customer's usage corrections)."""
    usage_counters: list[dict[str, Any]]
    """Every row of this kind (the customer's usage counters)."""
    usage_event_keys: list[dict[str, Any]]
    """Every row of this kind (the customer's usage event keys)."""
    usage_events: list[dict[str, Any]]
    """Every row of this kind (the customer's usage events)."""
    usage_meter_totals: list[dict[str, Any]]
    """Every row of this kind (the customer's usage meter totals)."""
    usage_thresholds: list[dict[str, Any]]
    """Every row of this kind (the customer's usage thresholds)."""
    usage_thresholds_crossed: list[dict[str, Any]]
    """Every row of this kind (the customer's usage thresholds crossed)."""
    usage_window_counters: list[dict[str, Any]]
    """Every row of this kind (the customer's usage window counters)."""
    refunds: list[dict[str, Any]]
    """Every row of this kind (the refunds of the customer's payments)."""
    cart_items: list[dict[str, Any]]
    """Every row of this kind (the items of the customer's carts)."""
    subscription_items: list[dict[str, Any]]
    """Every row of this kind (the items of the customer's subscriptions)."""
    events: list[dict[str, Any]]
    """Every row of this kind (the tenant events whose object names the customer)."""
    stripe_events: list[dict[str, Any]]
    """Every row of this kind (Stripe's events about the customer's Stripe customer, as Stripe sent them)."""
    audit_log: list[dict[str, Any]]
    """Every row of this kind (the audit rows about the customer)."""


@dataclass(frozen=True, kw_only=True)
class CustomerErasure(TollgateObject):
    object: str = "customer_erasure"
    id: str
    """Our id of the customer (its row stays, without the person)."""
    customer: str
    """What now stands for your user id on the customer's payments, subscriptions and invoices: random, linked to nothing."""
    erased_at: str
    stripe_customer_deleted: bool
    """Whether a Stripe customer was deleted (false: the customer never reached Stripe)."""
    rows_scrubbed: dict[str, int]
    """Rows rewritten, per kind of store."""


@dataclass(frozen=True, kw_only=True)
class CheckoutSession(TollgateObject):
    id: str
    object: str
    mode: CheckoutSessionMode
    status: CheckoutSessionStatus
    url: str | None
    expires_at: str
    payment: str
    customer: str
    amount_total: int
    currency: str
    success_url: str
    cancel_url: str
    stripe_session_id: str | None
    created_at: str


@dataclass(frozen=True, kw_only=True)
class CartItem(TollgateObject):
    id: str
    object: str
    price: str
    product: str
    quantity: int
    unit_amount: int
    amount: int
    currency: str


@dataclass(frozen=True, kw_only=True)
class Cart(TollgateObject):
    id: str
    object: str
    customer: str
    status: CartStatus
    currency: str | None
    items: list[CartItem]
    amount_total: int
    created_at: str


@dataclass(frozen=True, kw_only=True)
class PaymentItem(TollgateObject):
    price: str | None
    price_key: str | None
    product: str | None
    quantity: int | None
    """Null for a metered price."""
    unit_amount: int | None
    """Null for a tiered price."""
    currency: str
    description: str


@dataclass(frozen=True, kw_only=True)
class Payment(TollgateObject):
    id: str
    object: str
    customer: str
    type: PaymentType
    flow: PaymentFlow
    source: PaymentSource
    status: PaymentStatus
    amount: int
    amount_refunded: int
    amount_tax: int
    """The tax included in `amount` (automatic tax; 0 without it), in minor units."""
    amount_discount: int
    """What a promotion code's discount took off before `amount` (0 without one), in minor units."""
    promotion_code: str | None = None
    """The code redeemed, if any."""
    currency: str
    description: str
    reference: str | None
    metadata: dict[str, Any]
    items: list[PaymentItem]
    checkout_session: str | None
    checkout_url: str | None
    """Checkout flow: where to send the customer."""
    client_secret: str | None
    """Intent flow: confirm it with Stripe.js or a mobile SDK, with `publishable_key`."""
    publishable_key: str | None
    last_error_code: str | None
    decline_code: str | None
    dispute_status: str | None
    """Stripe's dispute status, when disputed."""
    stripe_checkout_session_id: str | None
    stripe_payment_intent_id: str | None
    stripe_subscription_id: str | None
    stripe_invoice_id: str | None
    expires_at: str | None
    succeeded_at: str | None
    created_at: str


@dataclass(frozen=True, kw_only=True)
class PaymentStatusSummary(TollgateObject):
    id: str
    status: PaymentStatus
    amount_refunded: int


@dataclass(frozen=True, kw_only=True)
class PortalSession(TollgateObject):
    url: str


@dataclass(frozen=True, kw_only=True)
class PortalEligibility(TollgateObject):
    eligible: bool
    reason: PortalIneligibilityReason | None


# Discounts


@dataclass(frozen=True, kw_only=True)
class Coupon(TollgateObject):
    id: str
    object: str
    key: str
    name: str | None
    percent_off: float | None
    """0 < percent_off ≤ 100, two decimals."""
    amount_off: int | None
    """Minor units of `currency`."""
    currency: str | None
    duration: CouponDuration
    """once | repeating | forever"""
    duration_in_months: int | None
    max_redemptions: int | None
    redeem_by: str | None
    applies_to: list[str]
    """Keys of the products it discounts; [] for every product."""
    stripe_coupon_id: str
    created_at: str


@dataclass(frozen=True, kw_only=True)
class PromotionCode(TollgateObject):
    id: str
    object: str
    code: str
    coupon: str
    """The coupon's key."""
    max_redemptions: int | None
    expires_at: str | None
    first_time_transaction: bool
    active: bool
    stripe_promotion_code_id: str
    created_at: str


# Subscriptions and invoices


@dataclass(frozen=True, kw_only=True)
class SubscriptionDiscount(TollgateObject):
    coupon: str | None
    """The coupon's key."""
    promotion_code: str | None
    """The code redeemed, if any."""
    percent_off: float | None
    amount_off: int | None
    currency: str | None
    duration: SubscriptionDiscountDuration | None
    """once | repeating | forever"""
    end: str | None
    """When a repeating discount ends."""


@dataclass(frozen=True, kw_only=True)
class SubscriptionItem(TollgateObject):
    id: str
    price: str
    product: str
    quantity: int | None
    """Null for a metered price."""
    usage_type: SubscriptionItemUsageType
    version: int
    """The product's version the item is on (`/products/{product}/versions`): the one in force when Stripe created it, until moved (`POST /subscriptions/version_moves`)."""


@dataclass(frozen=True, kw_only=True)
class PendingChangeItem(TollgateObject):
    price: str
    """The price's key (Stripe's id for a price not in the catalog)."""
    quantity: int | None
    """Null for a metered price."""


@dataclass(frozen=True, kw_only=True)
class PendingChange(TollgateObject):
    price: str | None
    """The primary item's price after the change."""
    quantity: int | None
    """The primary item's quantity after it."""
    items: list[PendingChangeItem]
    """Every item after the change."""
    effective_at: str
    """When it takes effect: the current period's end."""


@dataclass(frozen=True, kw_only=True)
class Subscription(TollgateObject):
    id: str
    object: str = "subscription"
    customer: str
    status: SubscriptionStatus
    price: str
    product: str
    quantity: int
    items: list[SubscriptionItem]
    """Every price of the subscription. `price`, `product` and `quantity` above repeat its primary item (the first licensed one)."""
    current_period_start: str | None
    current_period_end: str | None
    cancel_at_period_end: bool
    trial_end: str | None
    canceled_at: str | None
    stripe_subscription_id: str
    created_at: str
    discount: SubscriptionDiscount | None
    """The discount in force: {coupon, promotion_code, percent_off, amount_off, currency, duration, end}, or null."""
    pending_change: PendingChange | None
    """A change scheduled for the end of the current period (the project's proration rule `period_end`, or a change that takes a metered price off: Stripe would bill the period's usage so far under it to nobody), or null. It takes effect when the period ends; a later change replaces it, a cancellation drops it."""


@dataclass(frozen=True, kw_only=True)
class SubscriptionPreviewLine(TollgateObject):
    description: str
    amount: int
    quantity: int | None
    proration: bool
    period_start: str | None
    period_end: str | None


@dataclass(frozen=True, kw_only=True)
class SubscriptionPreview(TollgateObject):
    amount_due: int
    currency: str
    subtotal: int
    """The lines added up, before discounts and tax."""
    discount: int
    """What the discounts take off the subtotal."""
    tax: int
    """Stripe Tax's amount (0 without automatic tax)."""
    total: int
    """subtotal − discount + exclusive tax."""
    lines: list[SubscriptionPreviewLine]
    rule: SubscriptionPreviewRule
    """What decides the change: the project's proration rule for its direction, or `requested` (the body's `proration_behavior`). * `now_prorate` - now_prorate * `now_no_proration` - now_no_proration * `period_end` - period_end * `requested` - requested"""
    change: SubscriptionPreviewChange | None
    """The change's direction (null for a change of no price, quantity or items). * `upgrade` - upgrade * `downgrade` - downgrade * `interval_change` - interval_change"""
    effective_at: str | None
    """When a change deferred by the rule takes effect (the period's end; nothing is invoiced now); null when it applies now."""


@dataclass(frozen=True, kw_only=True)
class VersionPriceMove(TollgateObject):
    price: str
    """The price's key."""
    before: str
    """The Stripe price the item is on."""
    after: str
    """The version's Stripe price it moves to."""
    quantity: int | None
    """null for a metered item."""


@dataclass(frozen=True, kw_only=True)
class VersionMoveInvoice(TollgateObject):
    amount_due: int
    """Stripe's invoice preview with the price moves: the next invoice, with their prorations (when the rule prorates) and the renewal at the new prices; 0 for moves at the period's end."""
    total: int
    currency: str
    lines: list[SubscriptionPreviewLine]
    """Its lines: the prorations, then the renewal's."""
    effective_at: str | None
    """When the new prices apply: null now, else the period's end (nothing now)."""


@dataclass(frozen=True, kw_only=True)
class VersionMove(TollgateObject):
    subscription: str
    customer: str
    from_version: int
    to_version: int
    effective_at: str | None
    """When the move takes effect (its current period's end); null: now."""
    changes: list[VersionChange]
    """What the move changes of the subscriber's feature values, per feature key."""
    moved: bool
    """false in a preview (and true for one scheduled)."""
    prices: list[VersionPriceMove]
    """The subscription's items moved to the Stripe prices the version froze (a version published by a draft that repriced them); empty when they are on them already."""
    proration: VersionMoveProration | None
    """How the price moves apply: the project's proration rule for their direction (an upgrade when the version's licensed prices cost more), or `period_end` when asked; null without price moves. * `now_prorate` - now_prorate * `now_no_proration` - now_no_proration * `period_end` - period_end"""
    invoice: VersionMoveInvoice | None
    """In a preview with price moves: Stripe's invoice preview of them. Else null."""


@dataclass(frozen=True, kw_only=True)
class VersionMoves(TollgateObject):
    object: str
    product: str
    to_version: int
    when: str
    """`now` or `period_end`."""
    preview: bool
    moved: int
    """How many subscriptions this request moved."""
    moves: list[VersionMove]
    """One per subscription moved (or, in a preview, to move)."""


@dataclass(frozen=True, kw_only=True)
class InvoiceLine(TollgateObject):
    id: str | None = None
    """Stripe's id of the line (`il_…`): a draft's line is edited by it. Null on invoices mirrored before lines had one."""
    type: InvoiceLineType | None = None
    """`invoice_item`: a line of an invoice item (added to the invoice, a proration), which a draft may change or remove; `subscription_item`: a subscription's own line, which follows the subscription. Null on invoices mirrored before lines had one. * `invoice_item` - invoice_item * `subscription_item` - subscription_item"""
    description: str
    amount: int
    currency: str
    quantity: int | None
    proration: bool
    stripe_price_id: str | None
    period_start: str | None
    period_end: str | None


@dataclass(frozen=True, kw_only=True)
class Invoice(TollgateObject):
    id: str
    object: str = "invoice"
    customer: str
    subscription: str | None
    number: str | None
    status: InvoiceStatus
    billing_reason: str | None
    subtotal: int
    discount: int
    """What discounts took off the subtotal (before tax)."""
    tax: int
    total: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    currency: str
    period_start: str | None
    period_end: str | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    lines: list[InvoiceLine]
    stripe_invoice_id: str
    created_at: str


@dataclass(frozen=True, kw_only=True)
class CreditNoteLine(TollgateObject):
    type: CreditNoteLineType
    """`invoice_line_item` (a line of the invoice) or `custom_line_item`."""
    description: str | None
    amount: int
    quantity: int | None
    invoice_line: int | None
    """The index in the invoice's `lines` of the line credited."""


@dataclass(frozen=True, kw_only=True)
class CreditNote(TollgateObject):
    id: str
    object: str = "credit_note"
    invoice: str
    customer: str
    number: str | None
    status: CreditNoteStatus
    """`issued` or `void`."""
    type: CreditNoteType
    """`pre_payment` (it lowered the amount due), `post_payment` (given back after payment) or `mixed`."""
    currency: str
    amount: int
    subtotal: int
    total: int
    pre_payment_amount: int
    """What it took off the amount still due."""
    post_payment_amount: int
    """What it gave back of what was paid: refund_amount + credit_amount + out_of_band_amount."""
    refund_amount: int
    """Refunded to the payment method."""
    credit_amount: int
    """Credited to the customer's Stripe balance."""
    out_of_band_amount: int
    """Settled outside Stripe."""
    reason: CreditNoteReason | None
    memo: str | None
    lines: list[CreditNoteLine]
    stripe_credit_note_id: str
    created_at: str


# Usage, entitlements, credits


@dataclass(frozen=True, kw_only=True)
class UsageMeterStatus(TollgateObject):
    """How a usage event fared at Stripe's billing meter (features sold with a metered price)."""

    status: MeterReportStatus | None
    """None: the feature is not billed by a meter."""
    reported_at: str | None
    attempts: int
    error: str | None


@dataclass(frozen=True, kw_only=True)
class UsageCost(TollgateObject):
    micros: int
    """Micro-units of the currency, rounded to the nearest (half up)."""
    currency: str
    cost_table: int
    """The version of your cost table that priced it."""


@dataclass(frozen=True, kw_only=True)
class UsageEvent(TollgateObject):
    id: str
    """Your idempotency id for the event."""
    object: str = "usage_event"
    customer: str
    feature: str
    quantity: int
    timestamp: str
    properties: dict[str, Any]
    model: str | None
    """The model the event named, or null."""
    dimensions: dict[str, int] | None
    """The dimensions the event gave (its `quantity` is what the feature's formula made of them), or null."""
    cost: UsageCost | None
    """What the call cost you, by your cost table in force at its time; null when none priced it."""
    period_start: str | None
    """The start of the metered period the event counts in."""
    stripe_meter: UsageMeterStatus
    created_at: str


@dataclass(frozen=True, kw_only=True)
class UsageBatchResult(TollgateObject):
    accepted: int
    """Events recorded now."""
    duplicates: int
    """Events whose id was recorded before, or repeated within the batch: counted once."""


@dataclass(frozen=True, kw_only=True)
class UsageSummary(TollgateObject):
    object: str = "usage_summary"
    customer: str
    feature: str
    period_start: str
    period_end: str
    quantity: int
    """Usage counted by Tollgate in the period."""
    billed_quantity: int
    """Of it, what Stripe's meter has been sent."""
    pending_quantity: int
    """Of it, what is still to be sent to the meter."""
    price: str | None
    """The metered price the customer subscribes to, or null: nobody is billed."""
    currency: str | None
    amount_due_estimate: int
    """What the metered price invoices for `quantity` at the period's end, in minor units (tiers applied). Before discounts and tax. 0 in a trial: Stripe bills no usage of a trial."""


@dataclass(frozen=True, kw_only=True)
class UsageCorrectionMeter(TollgateObject):
    status: UsageCorrectionMeterStatus
    """`none`: nothing to correct at Stripe (the event never reached its meter: the corrected quantity is what gets reported); `pending`: Stripe's meter is being corrected; `adjusted`: it was (the meter event canceled and, for an amount left, a replacement sent); `invoiced`: Stripe had invoiced it, its meter is left as it billed and the next invoice is adjusted (`invoice_adjustment`). * `none` - Nothing to correct at Stripe * `pending` - Pending * `adjusted` - Adjusted * `invoiced` - Invoiced: adjusted on the next invoice"""
    adjusted_at: str | None
    error: str | None


@dataclass(frozen=True, kw_only=True)
class UsageCorrectionInvoiceAdjustment(TollgateObject):
    amount: int
    """Minor units on the next invoice; negative: a credit."""
    currency: str
    status: UsageCorrectionInvoiceAdjustmentStatus
    """`created` once the invoice item is at Stripe (`invoice_item`); `none` when nothing changes. * `none` - none * `pending` - pending * `created` - created"""
    invoice_item: str | None
    """Stripe's pending invoice item (`ii_…`)."""


@dataclass(frozen=True, kw_only=True)
class UsageCorrectionCredits(TollgateObject):
    feature: str | None
    """The credits feature that paid (its key)."""
    covered_before: int
    """The event's units paid from credits before."""
    covered_after: int
    """The event's units paid from credits after (an event's covered units are its last)."""
    returned: int
    """Credits given back to the lots they came from (negative: taken for units added)."""
    later_units: int
    """Units of the period's later events that credits paid and the allowance a correction down freed pays now, the latest first (as if the event had been so from the start): their credits go back (ledger entries `correction` naming each event) and Stripe's meter is sent their units when it had not been sent them yet. 0 otherwise."""
    later_returned: int
    """The credits given back for `later_units`."""


@dataclass(frozen=True, kw_only=True)
class UsageCorrection(TollgateObject):
    id: str
    object: str = "usage_correction"
    event: str
    customer: str
    feature: str
    action: UsageCorrectionAction
    quantity_before: int
    quantity_after: int
    period_start: str | None
    """The period the event counts in."""
    reason: str
    thresholds_uncrossed: list[str]
    """Usage thresholds the event had crossed that the corrected use no longer reaches ('0.8', '1.0', your threshold's id, or 'cap'); each stays crossed for the period (not announced again)."""
    credits: UsageCorrectionCredits | None
    """Where a credits waterfall paid for some of the event's units, or pays for units added: what moved of the credits (ledger entries `correction` naming the event); null otherwise."""
    stripe_meter: UsageCorrectionMeter
    invoice_adjustment: UsageCorrectionInvoiceAdjustment | None
    """Where Stripe had invoiced the event and `invoiced` was `credit`: the customer's next invoice adjustment; null otherwise."""
    created_at: str


@dataclass(frozen=True, kw_only=True)
class UsageWindow(TollgateObject):
    """A usage window of a metered feature as it stands now (calendar windows, UTC)."""

    window: UsageWindowWindow
    limit: int
    """The most units used in one window."""
    used: int
    """Used in the current window (held units not included)."""
    held: int
    """Set aside by active holds in the current window."""
    remaining: int
    """limit − (used + held), never below 0."""
    resets_at: str
    """The end of the current window (calendar windows, UTC)."""


@dataclass(frozen=True, kw_only=True)
class EntitlementCap(TollgateObject):
    """A spend cap on a metered feature's overage, and how much of it is used and left."""

    at_cap: EntitlementCapAtCap
    """At the cap use is refused (`block`) or goes on, announced (`alert`). * `block` - block * `alert` - alert"""
    set_by: EntitlementCapSetBy
    """The plan's cap, or the customer's own (`/spend_caps`). * `catalog` - catalog * `customer` - customer"""
    units: int | None
    """A cap in units past the limit."""
    amount: int | None
    """A cap in money: the most the metered price bills for the period (minor units)."""
    currency: str | None
    """The metered price's; null without one."""
    used_units: int
    """Units used past the limit this period (held ones included)."""
    used_amount: int
    """What the metered price bills for the period's use so far (0 without one)."""
    left_units: int | None
    """Units left before the cap; null when nothing bounds them (no price bills)."""
    left_amount: int | None
    """Money left before a money cap."""


@dataclass(frozen=True, kw_only=True)
class EntitlementAccountCap(TollgateObject):
    """A customer's account cap across their metered features, and how much is used and left."""

    at_cap: EntitlementAccountCapAtCap
    """At the cap use past a limit is refused (`block`) or goes on, announced (`alert`). * `block` - block * `alert` - alert"""
    set_by: EntitlementAccountCapSetBy
    """The customer's own (`/spend_caps`), or their plan's (a product's `account_cap`). * `customer` - customer * `plan` - plan"""
    amount: int
    """The most the customer's metered prices in `currency` bill together for the period."""
    currency: str
    """The cap's currency: only prices in it are summed."""
    used_amount: int
    """What they bill together for the period's use so far."""
    left_amount: int
    """amount − used_amount, never below 0."""
    left_units: int | None
    """Units of this feature that still fit (past its limit, what its price bills within what is left); null when nothing bounds them (no overage, or no price in the cap's currency)."""


@dataclass(frozen=True, kw_only=True)
class EntitlementCredits(TollgateObject):
    """A metered feature's credits waterfall: the credits that pay for use past its limit."""

    feature: str
    """The credits feature that pays for use past the limit."""
    cost: int
    """Credits one unit past the limit spends."""
    balance: int
    """That feature's spendable balance now: the account's; naming an entity that holds credits of that feature, its own too (they pay first)."""
    units: int
    """The units past the limit the balance pays for: balance ÷ cost."""
    covered: int
    """Units of this period's use credits paid (held ones included); not billed as overage."""


@dataclass(frozen=True, kw_only=True)
class EntitlementEntity(TollgateObject):
    """The use of the entity a check or consume named, against its own limit (`per_entity`)."""

    id: str
    """The entity named (your id for it)."""
    feature: str
    """The allocation feature that counts it."""
    limit: int | None
    """Its own limit a period (`per_entity`); null for a credits feature."""
    used: int | None
    """Its use this period; null for a credits feature."""
    remaining: int | None
    """limit − used, never below 0; null for a credits feature."""
    windows: list[UsageWindow]
    """Its own usage windows now (`per_entity.windows`), as the account's are answered; [] when none."""
    binding: str | None
    """What of its own refuses `quantity` for longest: a window (`minute`, `hour`, `day`, `week`) or `period` (its limit a period); null when it fits, and for a credits feature."""
    balance: int | None
    """A credits feature: its own credits, spent before the account's (the answer's `balance` is both); null for a metered feature."""


@dataclass(frozen=True, kw_only=True)
class EntitlementCheck(TollgateObject):
    """The answer of `entitlements.check`, `consume` and `release`.

    `limit` None is unlimited (or a feature that is not counted); `used` is set for `metered` (this period)
    and `allocation` (units in use); `balance` for `credits`.
    """

    allowed: bool
    feature: str
    type: FeatureType
    enabled: bool
    value: Any
    limit: int | None
    """null: unlimited (or not a counted feature)."""
    used: int | None
    remaining: int | None
    """limit − (used + held), the units credits paid not counted; below 0 only where `overage` is `allowed`; credits: the balance."""
    balance: int | None
    """credits features: the spendable balance."""
    held: int | None
    """metered, allocation and credits features: units set aside by active holds. They count against the limit (`remaining` is net of them) but are not `used`; held credits are out of `balance`."""
    overage: EntitlementCheckOverage | None
    """metered features: `allowed` when the plan lets use go past `limit` (any use is allowed, `remaining` goes below 0, and the feature's metered price bills it), else `blocked`; null for other features. * `allowed` - allowed * `blocked` - blocked"""
    cap: EntitlementCap | None
    """metered features whose plan allows overage, with a spend cap: how much of it is used and left."""
    account_cap: EntitlementAccountCap | None
    """metered features of a customer with an account cap (one amount across their metered features' prices): how much of it is used and left; null without one."""
    credits: EntitlementCredits | None
    """metered features with a credits waterfall: the credits that pay for use past the limit, before any overage; null without one."""
    step: EntitlementCheckStep | None
    """metered features: where `quantity` more would come from — `allowance` (the period's limit), `credits` (the waterfall's credits, past the limit) or `overage` (past the limit, billed); null when it does not fit and for other features. * `allowance` - allowance * `credits` - credits * `overage` - overage"""
    windows: list[UsageWindow]
    """metered features: each usage window now; [] when none."""
    binding: str | None
    """metered features, when `quantity` more does not fit: what refuses it — `period` (the period's limit, and the waterfall's credits), `cap` (the feature's spend cap), `account_cap` (the customer's account cap), `entity` (the limit of the entity named) or a usage window (`minute`, `hour`, `day`, `week`); of several, the one that frees up last. null when it fits."""
    retry_after: int | None
    """Whole seconds until `binding` frees up (its window or period ends); null when it fits, or when `quantity` is more than that window or period ever allows."""
    entity: EntitlementEntity | None = None
    """Only when the request named an `entity`: that entity's own use; past its limit or one of its windows, `allowed` is false; refused by it for longer than by the account's (or alone), `binding` is `entity` and `retry_after` when the entity's binding frees up."""
    quantity: int | None = None
    """Only when the check gave `dimensions`: the units the feature's usage formula makes of them (as a usage event's `quantity` would be, priced now), the quantity the answer is judged for."""
    duplicate: bool = False
    """`consume`/`release` only: this id was recorded before, nothing was recorded again."""


@dataclass(frozen=True, kw_only=True)
class EntitlementSource(TollgateObject):
    """Where part of an entitlement comes from (the fields that apply to its `type`)."""

    type: EntitlementSourceType
    id: str | None = None
    product: str | None = None
    value: Any = None
    quantity: int | None = None
    status: SubscriptionStatus | None = None
    ends_at: str | None = None
    expires_at: str | None = None
    reason: str | None = None
    disputed: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Entitlement(TollgateObject):
    feature: str
    type: FeatureType
    enabled: bool
    value: Any
    limit: int | None
    used: int | None
    remaining: int | None
    """limit − (used + held), the units credits paid not counted; below 0 only where `overage` is `allowed`; credits: the balance."""
    balance: int | None
    held: int | None
    """metered, allocation and credits features: units set aside by active holds. They count against the limit (`remaining` is net of them) but are not `used`; held credits are out of `balance`."""
    overage: EntitlementOverage | None
    """metered features: `allowed` when the plan lets use go past `limit` (any use is allowed, `remaining` goes below 0, and the feature's metered price bills it), else `blocked`; null for other features. * `allowed` - allowed * `blocked` - blocked"""
    cap: EntitlementCap | None
    """metered features whose plan allows overage, with a spend cap: how much of it is used and left."""
    account_cap: EntitlementAccountCap | None
    """metered features of a customer with an account cap (one amount across their metered features' prices): how much of it is used and left; null without one."""
    credits: EntitlementCredits | None
    """metered features with a credits waterfall: the credits that pay for use past the limit, before any overage; null without one."""
    step: EntitlementStep | None
    """metered features: where `quantity` more would come from — `allowance` (the period's limit), `credits` (the waterfall's credits, past the limit) or `overage` (past the limit, billed); null when it does not fit and for other features. * `allowance` - allowance * `credits` - credits * `overage` - overage"""
    windows: list[UsageWindow]
    """metered features: each usage window now; [] when none."""
    binding: str | None
    """metered features, when `quantity` more does not fit: what refuses it — `period` (the period's limit, and the waterfall's credits), `cap` (the feature's spend cap), `account_cap` (the customer's account cap), `entity` (the limit of the entity named) or a usage window (`minute`, `hour`, `day`, `week`); of several, the one that frees up last. null when it fits. (For one more unit.)"""
    retry_after: int | None
    """Whole seconds until `binding` frees up (its window or period ends); null when it fits, or when `quantity` is more than that window or period ever allows."""
    resets_at: str | None
    """`metered`: the end of the current period, when `used` starts again from 0."""
    sources: list[EntitlementSource]
    """Where each part came from."""


@dataclass(frozen=True, kw_only=True)
class CustomerEntitlements(TollgateObject):
    customer: str
    entitlements: list[Entitlement]

    def get(self, feature: str) -> Entitlement | None:
        """The entitlement to `feature`, or None when the customer's answer does not mention it."""
        return next((e for e in self.entitlements if e.feature == feature), None)


@dataclass(frozen=True, kw_only=True)
class HoldCall(TollgateObject):
    model: str | None
    dimensions: dict[str, int]
    units: int
    """What the feature's usage formula made of them."""
    cost: UsageCost | None
    """What they cost by your cost table; null when none priced them."""


@dataclass(frozen=True, kw_only=True)
class Hold(TollgateObject):
    id: str
    """Your id for the hold."""
    object: str = "entitlement_hold"
    customer: str
    feature: str
    quantity: int
    """Units held."""
    consumed: int
    """Units reported as used against the hold so far."""
    confirmed: int | None
    """Units the confirm kept as usage (those reported included)."""
    status: HoldStatus
    expires_at: str
    created_at: str
    ended_at: str | None
    """When it was confirmed, released or expired."""
    estimate: HoldCall | None
    """A model call's hold: the estimate it was placed with (its units are `quantity`); else null."""
    actual: HoldCall | None
    """A model call's confirm: what the call used, priced; else null."""
    overrun: int
    """Units the confirmed call used beyond the hold, recorded now as a usage event of their own (id: Tollgate's id for the hold + `.overrun`; `properties.hold`: yours)."""


@dataclass(frozen=True, kw_only=True)
class HoldAnswer(TollgateObject):
    allowed: bool
    """false: the limit or balance refused the hold; nothing recorded."""
    hold: Hold | None
    entitlement: EntitlementCheck
    """The feature's check now (for one more unit; a refused hold: its units)."""
    duplicate: bool | None = None
    """true when this call was made before."""


@dataclass(frozen=True, kw_only=True)
class HoldUsage(TollgateObject):
    accepted: int
    """Events recorded now."""
    duplicates: int
    """Events whose id the project had already (counted once)."""
    hold: Hold
    entitlement: EntitlementCheck


@dataclass(frozen=True, kw_only=True)
class UsageThreshold(TollgateObject):
    id: str
    object: str = "usage_threshold"
    customer: str
    feature: str
    percent: int | None
    """Percent of the limit (null for a quantity threshold)."""
    quantity: int | None
    """Units used (null for a percent threshold)."""
    created_at: str
    deleted: bool = False
    """true in the answer of its deletion."""


@dataclass(frozen=True, kw_only=True)
class SpendCap(TollgateObject):
    """A customer's own spend cap on a metered feature (`entitlements.spend_caps`)."""

    id: str
    object: str = "spend_cap"
    customer: str
    feature: str | None
    """The metered feature; null for the account cap."""
    cap: Any
    """How far use may go past the limit: {"units": n} (units past the limit) or {"amount": m} (the most, in minor units, the feature's metered price bills for the period), with "at_cap": "block" (use is refused there, the default) or "alert" (use goes on; `usage.cap_reached` announces it once a period). An account cap (no feature) is {"amount": m, "currency": "usd"}: the most the customer's metered prices in that currency bill together for the period; past it, use past a feature's limit is refused ("at_cap": "block") or goes on and `usage.cap_reached` (`scope: "account"`) announces it once a period ("alert"). Use within a feature's limit is never refused by it."""
    created_at: str
    updated_at: str
    deleted: bool = False
    """true in the answer of its deletion."""


@dataclass(frozen=True, kw_only=True)
class CostTable(TollgateObject):
    id: str
    object: str = "cost_table"
    version: int
    """1, 2, 3 … within the project."""
    currency: str
    """Three-letter ISO code, lowercase."""
    starts_at: str
    """The version applies to uses from then on."""
    models: dict[str, dict[str, dict[str, int]]]
    """The rates, per model (or any cost dimension you name): {"<model>": {"<dimension>": {"micros": m, "per": p}}} is m micro-units of the currency per p units of the dimension (input tokens, output tokens, cached tokens, images, seconds …): gpt-4o's input tokens at $2.50 a million are {"micros": 2500000, "per": 1000000}. Every rate with both fields."""
    current: bool
    """Whether this is the version in force now: the latest whose `starts_at` has passed."""
    created_at: str


@dataclass(frozen=True, kw_only=True)
class EntityFeatureUse(TollgateObject):
    """An entity's use this period of one metered feature that gives it its own limit."""

    feature: str
    """A metered feature whose plan gives each entity its own limit."""
    limit: int
    """The entity's own limit a period (`per_entity`)."""
    used: int
    """Its use this period (held units included)."""
    remaining: int
    """limit − used, never below 0."""
    windows: list[UsageWindow]
    """Its own usage windows now (`per_entity.windows`), as checks answer them; [] when none."""


@dataclass(frozen=True, kw_only=True)
class EntityCredits(TollgateObject):
    """An entity's own credits of one credits feature whose plan lets it hold credits."""

    feature: str
    """A credits feature whose plan lets each entity hold its own."""
    balance: int
    """The entity's own credits, spent before the account's."""


@dataclass(frozen=True, kw_only=True)
class Entity(TollgateObject):
    """One of a customer's entities (a seat, a workspace), counted by an allocation feature (`entitlements.entities`)."""

    id: str
    """Tollgate's id of the entity (`ent_…`): the path of its changes."""
    object: str = "entity"
    customer: str
    feature: str
    """The allocation feature that counts it."""
    entity: str
    """Your id for it: what uses name."""
    name: str
    created_at: str
    removed_at: str | None
    """Set once it is removed."""
    usage: list[EntityFeatureUse]
    """Its use this period of each metered feature whose plan (the customer's now) gives the entities of its allocation feature their own limit, by feature key; [] when none does. A removed entity's use stays counted for the period."""
    credits: list[EntityCredits]
    """Its own credits of each credits feature whose plan (the customer's now) lets the entities of its allocation feature hold credits, by feature key; [] when none does (0 once it is removed)."""


@dataclass(frozen=True, kw_only=True)
class AutoRecharge(TollgateObject):
    id: str
    object: str = "auto_recharge"
    customer: str
    feature: str
    below: int
    """A spend or hold that leaves the balance at or below this recharges."""
    price: str
    """The one-time price bought on each recharge."""
    quantity: int
    credits: int
    """Credits granted by each recharge."""
    amount: int
    """What each recharge charges, in minor units."""
    currency: str
    payment_method: str | None
    """The Stripe PaymentMethod charged; null: the customer's default card, else their newest."""
    status: AutoRechargeStatus
    """`armed`; `charging` (one charge under way); `failed` (configure it again to re-arm). * `armed` - Armed * `charging` - Charging * `failed` - Failed"""
    attempts: int
    """Charges started so far."""
    last_payment: str | None
    """The payment of the latest charge."""
    last_error: str | None
    """Why the latest charge failed: Stripe's decline code, `no_saved_card`, `price_inactive`, …"""
    recharged_at: str | None
    created_at: str
    deleted: bool = False
    """true in the answer of its deletion."""


@dataclass(frozen=True, kw_only=True)
class Grant(TollgateObject):
    id: str
    object: str = "entitlement_grant"
    customer: str
    feature: str
    value: Any
    priority: int | None
    """credits: the drawdown priority given (null: the default, 10)."""
    entity: str | None
    """credits: the entity (your id for it) whose own credits these are; null: the account's."""
    expires_at: str | None
    reason: str
    deleted: bool
    created_at: str


@dataclass(frozen=True, kw_only=True)
class Revocation(TollgateObject):
    id: str
    object: str = "entitlement_revocation"
    customer: str
    feature: str
    expires_at: str | None
    reason: str
    deleted: bool
    created_at: str


@dataclass(frozen=True, kw_only=True)
class CreditLot(TollgateObject):
    """Credits granted together (a purchase, a paid plan period or a grant), spent oldest-expiring first."""

    id: str
    source: CreditLotSource
    amount: int
    remaining: int
    priority: int
    """Spent lowest first, then the lot expiring first."""
    expires_at: str | None
    voided: bool
    entity: str | None
    """The entity whose own credits these were granted as; null: the account's."""
    returned_at: str | None
    """When removing its entity returned the lot to the account (the account's since); null: not."""
    created_at: str


@dataclass(frozen=True, kw_only=True)
class CreditLedgerEntry(TollgateObject):
    id: str
    type: CreditLedgerEntryType
    amount: int
    """Positive when granted, negative when consumed or taken back."""
    lot: str
    reference: str
    """What moved the credits: the consume's id, the grant's or the payment's id."""
    created_at: str


@dataclass(frozen=True, kw_only=True)
class ScheduledCredits(TollgateObject):
    """Plan credits still to come: a month or week of a paid period whose plan grants on a cadence."""

    id: str
    amount: int
    """Credits the month or week grants (the first pro-rated)."""
    starts_at: str
    """When they are granted (within 30 s of it)."""
    expires_at: str
    """When the lot they become expires: the slice's end."""
    rollover: int | None
    """At most this many credits the lot before it left unspent carry into it."""
    invoice: str
    """The paid invoice whose period they belong to."""


@dataclass(frozen=True, kw_only=True)
class CreditBalance(TollgateObject):
    object: str = "credit_balance"
    customer: str
    feature: str
    balance: int
    lots: list[CreditLot]
    ledger: list[CreditLedgerEntry]
    """Newest first (the latest 100 movements)."""
    scheduled: list[ScheduledCredits]
    """Plan credits still to come, soonest first: the months or weeks of paid periods whose product grants the feature on a cadence (`"cadence": "month"`), until the subscription ends or the period is refunded."""


# Outbound events


@dataclass(frozen=True, kw_only=True)
class WebhookEndpoint(TollgateObject):
    id: str
    object: str = "webhook_endpoint"
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    failing_since: str | None
    created_at: str
    secret: str | None = None
    """The signing secret: only in the answers to create and roll_secret. Keep it; it is not shown again."""
    deleted: bool | None = None
    """Always true: the endpoint is gone."""


@dataclass(frozen=True, kw_only=True)
class EventDelivery(TollgateObject):
    id: str
    endpoint: str
    status: EventDeliveryStatus
    attempts: int
    next_attempt_at: str | None
    last_attempt_at: str | None


@dataclass(frozen=True, kw_only=True)
class Event(TollgateObject):
    """An outbound event, from `events.retrieve`/`list` or from a verified delivery (`construct_event`).

    `object` is the object the event is about (`data["object"]`): the payment, subscription, … as it was
    when the event happened. `previous_attributes` holds the fields that changed, with their old values.
    """

    id: str
    type: EventType
    created: str
    project: str
    sequence: int
    """Per project, strictly increasing."""
    data: dict[str, Any]
    """{'object': the API representation of the object}"""
    previous_attributes: dict[str, Any] | None = None
    deliveries: list[EventDelivery] = field(default_factory=list)
    """Only in API answers (`events.retrieve`, `events.list`): where the event went and how it fared."""

    @property
    def object(self) -> dict[str, Any]:
        return dict(self.data.get("object") or {})


# Metrics


@dataclass(frozen=True, kw_only=True)
class SubscriptionMetrics(TollgateObject):
    object: str = "subscription_metrics"
    total: int
    by_status: dict[str, int]
    by_product: dict[str, dict[str, int]]


@dataclass(frozen=True, kw_only=True)
class RevenuePeriod(TollgateObject):
    period_start: str
    currency: str
    revenue: int
    refunds: int
    net: int


@dataclass(frozen=True, kw_only=True)
class RevenueMetrics(TollgateObject):
    object: str = "revenue_metrics"
    interval: RevenueInterval
    data: list[RevenuePeriod]
    mrr: dict[str, int]
    """Monthly recurring revenue per currency."""


@dataclass(frozen=True, kw_only=True)
class RevenueRecognitionBalance(TollgateObject):
    opening: int
    """Held when the month began."""
    added: int
    """Billed less given back in the month."""
    recognised: int
    """Recognised as revenue in the month."""
    closing: int
    """Held when the month ended: opening + added − recognised."""


@dataclass(frozen=True, kw_only=True)
class RevenueRecognitionProduct(TollgateObject):
    billed: int
    """Paid lines booked in the month, tax aside, discounts taken off."""
    refunds: int
    """Revenue given back by refunds and credit notes booked in it."""
    recognised: int
    """Revenue earned in the month: its days of service, and the prepaid credits spent or expired in it."""
    deferred: RevenueRecognitionBalance
    """Deferred revenue: billed for service not yet given."""
    credits: RevenueRecognitionBalance
    """The liability of prepaid credits bought and not yet spent or expired."""
    product: str | None
    """Tollgate's product id; null: no product."""
    name: str


@dataclass(frozen=True, kw_only=True)
class RevenueRecognitionCurrency(TollgateObject):
    billed: int
    """Paid lines booked in the month, tax aside, discounts taken off."""
    refunds: int
    """Revenue given back by refunds and credit notes booked in it."""
    recognised: int
    """Revenue earned in the month: its days of service, and the prepaid credits spent or expired in it."""
    deferred: RevenueRecognitionBalance
    """Deferred revenue: billed for service not yet given."""
    credits: RevenueRecognitionBalance
    """The liability of prepaid credits bought and not yet spent or expired."""
    currency: str
    products: list[RevenueRecognitionProduct]


@dataclass(frozen=True, kw_only=True)
class RevenueRecognitionMonth(TollgateObject):
    month: str
    """YYYY-MM (UTC)."""
    currencies: list[RevenueRecognitionCurrency]


@dataclass(frozen=True, kw_only=True)
class RevenueRecognition(TollgateObject):
    object: str = "revenue_recognition"
    months: list[RevenueRecognitionMonth]


@dataclass(frozen=True, kw_only=True)
class Margin(TollgateObject):
    """One row of `margins.list`: a month's usage in one currency, by the groups asked for (None where not
    grouped), what it cost you and what it billed; money in micro-units (1 USD = 1,000,000).
    """

    object: str = "margin"
    period: str
    """The month of the usage (UTC), `YYYY-MM`."""
    currency: str
    """Three-letter ISO code, lowercase, of every amount of the row; empty for usage that neither cost nor billed any money. Money is never summed across currencies: a row is one currency's."""
    customer: str | None
    """The customer's id (your `external_id`); null when the report is not grouped by customer."""
    feature: str | None
    """The feature's key; null when the report is not grouped by feature."""
    model: str | None
    """The model the usage named (empty for usage that named none); null when the report is not grouped by model."""
    calls: int
    """Model calls counted: a `usage` or `consume` event each (a hold's units beyond it count with its call)."""
    units: int
    """Their quantity, in the feature's units."""
    cost_micros: int
    """Micro-units of `currency` (1 USD = 1,000,000): what the usage cost you, by your cost table (events priced by one only)."""
    billed_micros: int
    """Micro-units of `currency` (1 USD = 1,000,000): what the customer was billed for the usage, `overage_micros` + `credits_micros`."""
    overage_micros: int
    """Micro-units of `currency` (1 USD = 1,000,000): what the customer's metered price bills for the usage reported to its meter (not the units paid with credits), each event at the margin of the period's units (a graduated price's free tier bills the period's first events nothing)."""
    credits_micros: int
    """Micro-units of `currency` (1 USD = 1,000,000): the credits the usage burned, at what the customer paid for them (granted credits are worth nothing)."""
    credits_burned: int
    """The credits the usage burned."""
    margin_micros: int
    """Micro-units of `currency` (1 USD = 1,000,000): `billed_micros` − `cost_micros`."""
    margin_bps: int | None
    """The margin in basis points of what was billed (10000 × margin ÷ billed, rounded down: −2500 is −25 %); null when nothing was billed."""


# The journal


@dataclass(frozen=True, kw_only=True)
class JournalLine(TollgateObject):
    account: JournalAccount
    """The account (`stripe_balance`); `code` and `name` are its number and name in the chart."""
    code: str
    """The account's number in the chart of accounts (`1010` … `6300`)."""
    name: str
    """The account's name (`Cash at Stripe`)."""
    debit: int
    """Debited, in minor units of the entry's currency; 0 on a credit."""
    credit: int
    """Credited, in minor units of the entry's currency; 0 on a debit."""


@dataclass(frozen=True, kw_only=True)
class JournalEntry(TollgateObject):
    id: str
    object: str = "journal_entry"
    kind: JournalEntryKind
    """Which movement the entry posts."""
    source: str
    """The object moved: Stripe's (`in_…`, `re_…`, `cn_…`, `txn_…`), or Tollgate's payment (`pay_…`) for a payment and its disputes."""
    revision: int
    """The entry's number among its movement's (same `source` and `kind`): 1 posts the movement, each later one what changed since (a reversal, a correction)."""
    currency: str
    """Three-letter ISO code, lowercase, of every line."""
    effective_at: str
    """When the movement happened as far as the books go: when Tollgate learnt of it, or Stripe's time for a fee."""
    posted_at: str
    """When the entry was written: the stream's order."""
    lines: list[JournalLine]
    """In the chart's order; they add up to zero."""
