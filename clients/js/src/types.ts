// Generated from the OpenAPI schema (`/api/schema/`) by `clients/js/generate_ts_types.py`: do not edit it by hand;
// change the server (or the tables in clients/python/generate_types_tables.py) and run
// `.venv/bin/python clients/js/generate_ts_types.py` from the repository's root.
//
// One interface per object of the API, describing its JSON as the server sends it: a field the server always
// sends is required, one it may leave out is optional (`?`), one it may send as null is `… | null`. Enum fields
// are unions of string literals (`PaymentStatus`, …); a value added by a newer server still arrives, as the
// string it is. Money is an integer in minor units next to a lowercase `currency`; times are ISO 8601 UTC
// strings (`new Date(value)` parses them).

// Enums: the values each enum field may have (a newer server may send others)

export type AdoptionRunStatus = "pending" | "running" | "completed" | "failed";
export type AutoRechargeStatus = "armed" | "charging" | "failed";
export type CartStatus = "open" | "checked_out" | "deleted";
export type CheckoutSessionMode = "subscription" | "payment";
export type CheckoutSessionStatus = "open" | "complete" | "expired";
export type CouponDuration = "once" | "repeating" | "forever";
export type CreditLedgerEntryType =
  | "grant"
  | "consume"
  | "revoke"
  | "hold"
  | "hold_return"
  | "rollover"
  | "forfeited"
  | "correction";
export type CreditLotSource = "purchase" | "plan" | "grant";
export type CreditNoteLineType = "invoice_line_item" | "custom_line_item";
export type CreditNoteReason = "duplicate" | "fraudulent" | "order_change" | "product_unsatisfactory";
export type CreditNoteStatus = "issued" | "void";
export type CreditNoteType = "pre_payment" | "post_payment" | "mixed";
export type DefaultPaymentFlow = "checkout" | "intent";
export type EntitlementAccountCapAtCap = "block" | "alert";
export type EntitlementAccountCapSetBy = "customer" | "plan";
export type EntitlementCapAtCap = "block" | "alert";
export type EntitlementCapSetBy = "catalog" | "customer";
export type EntitlementChangeChange = "lost" | "lowered";
export type EntitlementCheckOverage = "allowed" | "blocked";
export type EntitlementCheckStep = "allowance" | "credits" | "overage";
export type EntitlementOverage = "allowed" | "blocked";
export type EntitlementSourceType = "subscription" | "purchase" | "default_product" | "grant" | "revocation";
export type EntitlementStep = "allowance" | "credits" | "overage";
export type EventDeliveryStatus = "pending" | "succeeded" | "failed";
export type EventType =
  | "payment.succeeded"
  | "payment.failed"
  | "payment.requires_action"
  | "payment.expired"
  | "payment.refunded"
  | "checkout.completed"
  | "checkout.expired"
  | "subscription.created"
  | "subscription.updated"
  | "subscription.version_changed"
  | "subscription.canceled"
  | "subscription.past_due"
  | "invoice.paid"
  | "invoice.voided"
  | "invoice.marked_uncollectible"
  | "invoice.payment_failed"
  | "credit_note.created"
  | "credit_note.voided"
  | "entitlements.updated"
  | "usage.threshold_reached"
  | "usage.corrected"
  | "usage.window_reached"
  | "usage.cap_reached"
  | "credits.low"
  | "credits.threshold_reached"
  | "credits.recharged"
  | "credits.recharge_failed"
  | "customer.margin_low"
  | "webhook_endpoint.disabled";
export type FeatureType = "boolean" | "metered" | "credits" | "allocation" | "static";
export type HoldStatus = "active" | "confirmed" | "released" | "expired";
export type InvoiceLineType = "invoice_item" | "subscription_item";
export type InvoiceStatus = "draft" | "open" | "paid" | "uncollectible" | "void";
export type JournalAccount =
  | "stripe_balance"
  | "receivables"
  | "deferred_revenue"
  | "customer_balance"
  | "tax_payable"
  | "refunds_outside_stripe"
  | "prepaid_credits"
  | "revenue"
  | "refunds"
  | "stripe_fees"
  | "disputes"
  | "bad_debt";
export type JournalEntryKind =
  | "invoice"
  | "uncollectible"
  | "payment"
  | "refund"
  | "credit_note"
  | "dispute"
  | "fee"
  | "recognition";
export type MeterReportStatus = "pending" | "reported" | "skipped" | "failed";
export type PaymentFlow = "checkout" | "intent" | "off_session";
export type PaymentSource = "checkout" | "intent" | "invoice";
export type PaymentStatus =
  | "pending"
  | "requires_payment_method"
  | "requires_action"
  | "processing"
  | "succeeded"
  | "no_payment_required"
  | "failed"
  | "canceled"
  | "expired"
  | "refunded"
  | "partially_refunded"
  | "disputed";
export type PaymentType = "subscription" | "one_time" | "cart";
export type PortalIneligibilityReason = "unknown_customer" | "no_billing_account";
export type PriceBillingScheme = "per_unit" | "tiered";
export type PriceInterval = "day" | "week" | "month" | "year";
export type PriceTaxBehavior = "unspecified" | "inclusive" | "exclusive";
export type PriceTiersMode = "graduated" | "volume";
export type PriceType = "recurring" | "one_time";
export type PriceUsageType = "licensed" | "metered";
export type ProductAccountCapAtCap = "block" | "alert";
export type ProjectProrationDowngrade = "now_prorate" | "now_no_proration" | "period_end";
export type ProjectProrationIntervalChange = "now_prorate" | "now_no_proration" | "period_end";
export type ProjectProrationUpgrade = "now_prorate" | "now_no_proration" | "period_end";
export type ProjectStatus = "active" | "suspended";
export type RevenueInterval = "month" | "day";
export type SubscriptionDiscountDuration = "once" | "repeating" | "forever";
export type SubscriptionItemUsageType = "licensed" | "metered";
export type SubscriptionPreviewChange = "upgrade" | "downgrade" | "interval_change";
export type SubscriptionPreviewRule = "now_prorate" | "now_no_proration" | "period_end" | "requested";
export type SubscriptionStatus =
  | "incomplete"
  | "incomplete_expired"
  | "trialing"
  | "active"
  | "past_due"
  | "unpaid"
  | "paused"
  | "canceled";
export type UsageCorrectionAction = "void" | "amend";
export type UsageCorrectionInvoiceAdjustmentStatus = "none" | "pending" | "created";
export type UsageCorrectionMeterStatus = "none" | "pending" | "adjusted" | "invoiced";
export type UsageWindowWindow = "minute" | "hour" | "day" | "week";
export type VersionChangeChange = "added" | "removed" | "changed";
export type VersionMoveProration = "now_prorate" | "now_no_proration" | "period_end";

// Projects and keys

export interface Project {
  id: string;
  object: string;
  slug: string;
  name: string;
  status?: ProjectStatus;
  default_currency?: string;
  allowed_redirect_hosts?: string[];
  payment_ttl_seconds?: number;
  default_flow?: DefaultPaymentFlow;
  default_product?: string;
  stripe_publishable_key?: string;
  refund_late_payments?: boolean;
  /** Cancel a subscription at once when its first invoice is voided before anything was paid on it: what it granted ends with it. Off: the subscription runs on, as Stripe leaves it. */
  first_invoice_void_ends_subscription?: boolean;
  proration_upgrade?: ProjectProrationUpgrade;
  proration_downgrade?: ProjectProrationDowngrade;
  proration_interval_change?: ProjectProrationIntervalChange;
  /** Announce a customer's month as customer.margin_low when their margin falls below this share of what they were billed, in basis points (2000 = 20 %; negative: a loss). Empty: never. */
  margin_alert_below_bps?: number | null;
  has_stripe_secret_key: boolean;
  has_stripe_webhook_secret: boolean;
  created_at: string;
  updated_at: string;
  /** The project's first secret key: only in the answer to `projects.create`. */
  api_key?: string;
}

export interface ApiKey {
  id: string;
  object: string;
  project: string;
  name?: string;
  prefix: string;
  created_at: string;
  last_used_at?: string | null;
  revoked_at?: string | null;
  /** The secret itself: only in the answer to a create, shown this once. */
  api_key?: string;
}

export interface AgentKey {
  id: string;
  object: string;
  project: string;
  name: string;
  /** The start of the key, to tell keys apart; never the secret. */
  prefix: string;
  /** The tools the key may call. */
  tools: string[];
  /** Whether the key may confirm money moves (`move_confirm`). */
  can_confirm: boolean;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  /** The secret itself (`tg_ak_…`): only in the answer to a create, shown this once. */
  agent_key?: string;
}

export interface AdoptionPoint {
  at: string | null;
  /** Stripe's clock (Unix seconds) as the reads began. */
  stripe_time: number | null;
  /** The account's newest event then. */
  newest_event: string;
  newest_event_created: number | null;
}

export interface AdoptionRun {
  id: string;
  object: string;
  project: string;
  status?: AdoptionRunStatus;
  dry_run?: boolean;
  customer_key: unknown;
  mapping: unknown;
  /** Events Stripe created before it describe states the adoption read: applied only if newer than what was adopted. */
  adoption_point: AdoptionPoint;
  stripe_reads?: number;
  /** Counts by kind and outcome (`counts`), what was left out (`held_by_another_project`: `{kind, id}` of each object another project owns, skipped whatever the mapping says; `unmapped_products`, `customers_without_key`, `customer_conflicts`, `unmapped_subscriptions`, `skipped_prices` and `subscription_items_not_adopted` with the reason of each and what to do, `subscription_schedules`), the diff (`changes`, at most 2000 lines of `changes_total`), `nothing_to_do`, `seconds` and `stripe_reads`. Empty until the run ends. */
  report: unknown;
  error?: string;
  created_at: string;
  finished_at?: string | null;
}

// Catalog

export interface Feature {
  id: string;
  object: string;
  key: string;
  name: string;
  type: FeatureType;
  unit: string | null;
  /** The Stripe billing meter of a metered feature billed by a metered price. */
  stripe_meter_id: string | null;
  stripe_meter_event_name: string | null;
  /** How usage events' `dimensions` become units: {"type": "cost", "markup": "1.5", "unit_micros": 1000} (the cost by the project's cost table in force at the event's time, times the markup, in units worth `unit_micros` micro-units each) or {"type": "rates", "rates": {"input_tokens": "0.001", ...}, "models": {"<model>": {...}}} (each dimension times its rate, a model in `models` taking its own rates; `rates` or `models` or both); rounded up once to a whole unit and stored with the event. Rates and markups are decimal strings (or integers). Metered features only; null: events give `quantity`. */
  usage_formula: unknown;
  created_at: string;
  updated_at: string;
}

export interface Product {
  id: string;
  object: string;
  key: string;
  name: string;
  description: string | null;
  active: boolean;
  /** Listed, while active, by the unauthenticated pricing-page endpoint `GET /public/{project slug}/plans` with its active prices and feature values. Default false. */
  public: boolean;
  /** Per feature key: `true`/`false` (boolean), an integer ≥ 0 or `null` for unlimited, or `{"per_unit": n}` multiplied by the quantity bought (metered, credits, allocation), any JSON value (static). A metered limit may let use go past it: `{"limit": n, "overage": "allowed"}` or `{"per_unit": n, "overage": "allowed"}` (checks then allow it, `remaining` goes negative, and the metered price bills it), bounded by `"cap": {"units": n} | {"amount": m}, "at_cap": "block" | "alert"`; a metered value may limit use per calendar window, `"windows": {"minute": m, "hour": …, "day": …, "week": …}`, and pay for use past its limit from a credits feature before any overage, `"credits": {"feature": key, "cost": n}` (n credits a unit). A credits value may carry unspent plan credits into the next period (`"rollover": m`) and be granted every month or week of a paid period instead of once for it (`"cadence": "month" | "week"`). */
  features: Record<string, unknown>;
  /** One-time purchases of the product grant its features for this many days from payment; null: for life (subscriptions grant them while live). A change applies to purchases made from then on. */
  access_days: number | null;
  /** The plan's account cap, `{"amount": m, "currency": "usd", "at_cap": "block" | "alert"}`: the most its customers' metered prices in that currency bill together a period (minor units; `at_cap` defaults to `block`), for each customer without an account cap of their own (`/entitlements/spend_caps`, which overrides it). A customer whose live plans declare several has the lowest amount (`block` before `alert` at the same amount) among those in a currency their metered prices bill in. A change publishes the product's next version: existing subscribers keep the cap of the version they are on until moved. Null: none. 400 `invalid_parameter`, `parameter_missing` or `parameter_conflict` (units: an account cap is in money only). */
  account_cap: ProductAccountCap | null;
  /** Null until the product exists at Stripe (a failed sync is retried). */
  stripe_product_id: string | null;
  /** The latest version (`/products/{product}/versions`), as `features`. */
  version: number;
  created_at: string;
  updated_at: string;
}

export interface ProductAccountCap {
  amount: number;
  currency: string;
  at_cap: ProductAccountCapAtCap;
}

export interface VersionChange {
  feature: string;
  /** `added` (`before` null: not given), `removed` (`after` null: not given) or `changed` (either may be null: unlimited). * `added` - added * `removed` - removed * `changed` - changed */
  change: VersionChangeChange;
  before: unknown;
  after: unknown;
}

/** A price of the product as it was when the version was published. */
export interface ProductVersionPrice {
  id: string;
  key: string;
  currency: string;
  unit_amount: number | null;
  /** `per_unit` or `tiered`; with `tiers_mode` and `tiers`, null in versions published before 0.5.6. */
  billing_scheme?: PriceBillingScheme | null;
  tiers_mode?: PriceTiersMode | null;
  tiers?: unknown[] | null;
  type: PriceType;
  interval: PriceInterval | null;
  interval_count: number;
  usage_type: PriceUsageType | null;
  stripe_price_id: string | null;
}

export interface ProductVersion {
  object: string;
  number: number;
  /** Whether new subscribers get this version. */
  latest: boolean;
  published_at: string;
  note: string | null;
  /** Per feature key: `true`/`false` (boolean), an integer ≥ 0 or `null` for unlimited, or `{"per_unit": n}` multiplied by the quantity bought (metered, credits, allocation), any JSON value (static). A metered limit may let use go past it: `{"limit": n, "overage": "allowed"}` or `{"per_unit": n, "overage": "allowed"}` (checks then allow it, `remaining` goes negative, and the metered price bills it), bounded by `"cap": {"units": n} | {"amount": m}, "at_cap": "block" | "alert"`; a metered value may limit use per calendar window, `"windows": {"minute": m, "hour": …, "day": …, "week": …}`, and pay for use past its limit from a credits feature before any overage, `"credits": {"feature": key, "cost": n}` (n credits a unit). A credits value may carry unspent plan credits into the next period (`"rollover": m`) and be granted every month or week of a paid period instead of once for it (`"cadence": "month" | "week"`). */
  features: Record<string, unknown>;
  /** The account cap it gives its subscribers (`account_cap` of the product as it was published; a change of the product's account cap publishes a version). Null: none. */
  account_cap: ProductAccountCap | null;
  /** The product's active prices when it was published, and those created while it was the latest. */
  prices: ProductVersionPrice[];
  /** What this version changes of the one before it, per feature key (sorted): `change` (added, removed, changed), and `before` and `after`, the feature's values as `features` shows them, null on the side that does not give the feature. Empty for version 1. */
  changes: VersionChange[];
}

export interface DraftPriceChange {
  /** The price's key. */
  price: string;
  /** Its terms now. */
  before: Record<string, unknown>;
  /** Its drafted terms. */
  after: Record<string, unknown>;
}

export interface ProductDraft {
  object: string;
  product: string;
  /** The version it was drafted on. */
  based_on: number;
  /** The version publishing it makes. */
  version: number;
  note: string | null;
  /** Per feature key: `true`/`false` (boolean), an integer ≥ 0 or `null` for unlimited, or `{"per_unit": n}` multiplied by the quantity bought (metered, credits, allocation), any JSON value (static). A metered limit may let use go past it: `{"limit": n, "overage": "allowed"}` or `{"per_unit": n, "overage": "allowed"}` (checks then allow it, `remaining` goes negative, and the metered price bills it), bounded by `"cap": {"units": n} | {"amount": m}, "at_cap": "block" | "alert"`; a metered value may limit use per calendar window, `"windows": {"minute": m, "hour": …, "day": …, "week": …}`, and pay for use past its limit from a credits feature before any overage, `"credits": {"feature": key, "cost": n}` (n credits a unit). A credits value may carry unspent plan credits into the next period (`"rollover": m`) and be granted every month or week of a paid period instead of once for it (`"cadence": "month" | "week"`). */
  features: Record<string, unknown>;
  /** What it changes of the latest version, per feature key, as a version's `changes`. */
  changes: VersionChange[];
  /** The account cap the version gives (null: none), as a version's `account_cap`. */
  account_cap: ProductAccountCap | null;
  /** New terms for some of the product's active prices, by price key: `{"unit_amount": n}` (a per-unit price) or `{"tiers": [{"up_to": n | "inf", "unit_amount"?, "flat_amount"?}, …]}` (a tiered one, its tiers mode kept). Publishing gives the prices these terms (a new Stripe price each; subscribers keep theirs until moved). */
  prices: Record<string, Record<string, unknown>>;
  /** What `prices` change of the prices' terms now, by price key (sorted). */
  price_changes: DraftPriceChange[];
  /** Whether a version was published since it was drafted (publishing it is refused). */
  stale: boolean;
  updated_at: string;
  /** true in the answer of its discard. */
  deleted?: boolean;
}

export interface ReratedPeriod {
  start: string;
  end: string;
  /** Minor units of `currency`: what Stripe's invoices bill the period. */
  today: number;
  /** Minor units of `currency`: the same lines at the draft's prices. */
  draft: number;
}

export interface EntitlementChange {
  feature: string;
  /** `lost`: given now, not by the draft (or a boolean turned off); `lowered`: a smaller limit. * `lost` - lost * `lowered` - lowered */
  change: EntitlementChangeChange;
  /** The value now (`lost`: as `features` shows it), or the limit now (`lowered`: per-unit values at the subscriber's quantity; null: unlimited). */
  before: unknown;
  /** The draft's limit (`lowered`); null for `lost`. */
  after: number | null;
  /** A metered feature's largest period use since the first re-rated period began; an allocation's units in use; null for the others. */
  used: number | null;
  /** Whether the draft's limit is under `used`. */
  below_use: boolean;
}

export interface ReratedSubscription {
  /** Your `external_id` of the customer. */
  customer: string;
  subscription: string;
  /** The version of the product the subscription is on. */
  version: number;
  currency: string;
  /** Licences of the product held (per-unit values scale by it). */
  quantity: number;
  /** The closed periods re-rated, oldest first. */
  periods: ReratedPeriod[];
  /** Minor units of `currency`: the periods as invoiced. */
  today: number;
  /** Minor units of `currency`: the periods under the draft. */
  draft: number;
  /** `draft` − `today`. */
  difference: number;
  /** What the draft takes away or lowers of what the subscription's version gives. */
  entitlements: EntitlementChange[];
}

export interface ReratingCohort {
  version: number;
  currency: string;
  subscriptions: number;
  /** Closed periods re-rated, all subscriptions together. */
  periods: number;
  today: number;
  draft: number;
  difference: number;
  /** Subscriptions the draft bills more. */
  higher: number;
  /** Subscriptions the draft bills less. */
  lower: number;
  unchanged: number;
  /** Subscriptions that would lose a feature. */
  losing_features: number;
  /** Subscriptions with a lowered limit under their use. */
  below_use: number;
}

export interface ReratingTotal {
  currency: string;
  subscriptions: number;
  today: number;
  draft: number;
  difference: number;
}

export interface Rerating {
  object: string;
  /** The product's key. */
  product: string;
  /** The version the draft was made on. */
  based_on: number;
  /** The version publishing the draft makes. */
  version: number;
  /** The closed periods asked for, per subscription. */
  periods: number;
  /** Periods ended by then are closed. */
  as_of: string;
  /** Per currency: money is never summed across currencies. */
  totals: ReratingTotal[];
  /** Per version and currency. */
  cohorts: ReratingCohort[];
  /** Per subscription, the largest difference (either way) first; the first `limit`. */
  subscribers: ReratedSubscription[];
  /** Subscriptions were left out of `subscribers` (see `limit`). */
  has_more: boolean;
}

export interface PriceTier {
  /** An integer, or "inf" on the last tier. */
  up_to: unknown;
  /** Minor units per unit in this tier. */
  unit_amount: number | null;
  /** Minor units for reaching this tier. */
  flat_amount: number | null;
}

export interface Price {
  id: string;
  object: string;
  key: string;
  /** The product's key. */
  product: string;
  currency: string;
  /** Minor units; null for a tiered price. */
  unit_amount: number | null;
  /** per_unit | tiered */
  billing_scheme: string;
  /** graduated | volume (tiered only) */
  tiers_mode: string | null;
  /** Ascending; the last is up to "inf" (tiered only). */
  tiers: PriceTier[] | null;
  type: PriceType;
  /** Recurring prices only. */
  interval: PriceInterval | null;
  interval_count: number | null;
  trial_days: number | null;
  /** Recurring prices only. */
  usage_type: PriceUsageType | null;
  /** The key of the metered feature it bills. */
  meter: string | null;
  tax_behavior: PriceTaxBehavior;
  active: boolean;
  stripe_product_id: string | null;
  /** The current Stripe price; null until it exists (after an amount change, until the new one does). */
  stripe_price_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface PublicPlanPrice {
  currency: string;
  /** Minor units; null for a tiered price. */
  unit_amount: number | null;
  /** per_unit | tiered */
  billing_scheme: string;
  /** graduated | volume (tiered only) */
  tiers_mode: string | null;
  /** Ascending; the last is up to "inf" (tiered only). */
  tiers: PriceTier[] | null;
  /** recurring | one_time */
  type: string;
  /** day | week | month | year (recurring only) */
  interval: string | null;
  interval_count: number | null;
  trial_days: number | null;
  /** licensed | metered (recurring only) */
  usage_type: string | null;
  /** The price's key: what a checkout is started with. */
  key: string;
}

export interface PublicPlanFeature {
  key: string;
  name: string;
  /** boolean | metered | credits | allocation | static */
  type: FeatureType;
  /** Per feature key: `true`/`false` (boolean), an integer ≥ 0 or `null` for unlimited, or `{"per_unit": n}` multiplied by the quantity bought (metered, credits, allocation), any JSON value (static). A metered limit may let use go past it: `{"limit": n, "overage": "allowed"}` or `{"per_unit": n, "overage": "allowed"}` (checks then allow it, `remaining` goes negative, and the metered price bills it), bounded by `"cap": {"units": n} | {"amount": m}, "at_cap": "block" | "alert"`; a metered value may limit use per calendar window, `"windows": {"minute": m, "hour": …, "day": …, "week": …}`, and pay for use past its limit from a credits feature before any overage, `"credits": {"feature": key, "cost": n}` (n credits a unit). A credits value may carry unspent plan credits into the next period (`"rollover": m`) and be granted every month or week of a paid period instead of once for it (`"cadence": "month" | "week"`). */
  value: unknown;
}

export interface PublicPlan {
  key: string;
  name: string;
  description: string | null;
  /** Its active prices, by currency, cheapest first. */
  prices: PublicPlanPrice[];
  features: PublicPlanFeature[];
  /** The plan's account cap: the most its metered prices bill together a period; null: none. */
  account_cap: ProductAccountCap | null;
}

// Customers, checkout, carts, payments, portal

export interface Customer {
  id: string;
  object: string;
  external_id: string;
  email: string;
  name: string;
  metadata: Record<string, unknown>;
  /** Fixed by the first purchase; null before it. */
  currency: string | null;
  stripe_customer_id: string | null;
  /** The test clock (test mode) the customer's Stripe customer lives on; null for none. */
  test_clock: string | null;
  created_at: string;
  updated_at: string;
}

export interface CustomerExport {
  object?: string;
  exported_at: string;
  customer: Customer;
  /** Every row of this kind (the customer's allocation counters). */
  allocation_counters: Record<string, unknown>[];
  /** Every row of this kind (the customer's auto-recharges). */
  auto_recharges: Record<string, unknown>[];
  /** Every row of this kind (the customer's carts). */
  carts: Record<string, unknown>[];
  /** Every row of this kind (the customer's checkout sessions). */
  checkout_sessions: Record<string, unknown>[];
  /** Every row of this kind (the customer's credit ledger entries). */
  credit_ledger_entries: Record<string, unknown>[];
  /** Every row of this kind (the customer's credit lots). */
  credit_lots: Record<string, unknown>[];
  /** Every row of this kind (the customer's credit notes). */
  credit_notes: Record<string, unknown>[];
  /** Every row of this kind (the customer's entities). */
  entities: Record<string, unknown>[];
  /** Every row of this kind (the customer's entity counters). */
  entity_counters: Record<string, unknown>[];
  /** Every row of this kind (the customer's entity window counters). */
  entity_window_counters: Record<string, unknown>[];
  /** Every row of this kind (the customer's grants). */
  grants: Record<string, unknown>[];
  /** Every row of this kind (the customer's holds). */
  holds: Record<string, unknown>[];
  /** Every row of this kind (the customer's invoices). */
  invoices: Record<string, unknown>[];
  /** Every row of this kind (the customer's late usage charges). */
  late_usage_charges: Record<string, unknown>[];
  /** Every row of this kind (the customer's margin alerts). */
  margin_alerts: Record<string, unknown>[];
  /** Every row of this kind (the customer's payments). */
  payments: Record<string, unknown>[];
  /** Every row of this kind (the customer's plan periods). */
  plan_periods: Record<string, unknown>[];
  /** Every row of this kind (the customer's purchases). */
  purchases: Record<string, unknown>[];
  /** Every row of this kind (the customer's revocations). */
  revocations: Record<string, unknown>[];
  /** Every row of this kind (the customer's scheduled credit grants). */
  scheduled_credit_grants: Record<string, unknown>[];
  /** Every row of this kind (the customer's spend caps). */
  spend_caps: Record<string, unknown>[];
  /** Every row of this kind (the customer's subscription sources). */
  subscription_sources: Record<string, unknown>[];
  /** Every row of this kind (the customer's subscription versions). */
  subscription_versions: Record<string, unknown>[];
  /** Every row of this kind (the customer's subscriptions). */
  subscriptions: Record<string, unknown>[];
  /** Every row of this kind (the customer's usage corrections). */
  usage_corrections: Record<string, unknown>[];
  /** Every row of this kind (the customer's usage counters). */
  usage_counters: Record<string, unknown>[];
  /** Every row of this kind (the customer's usage event keys). */
  usage_event_keys: Record<string, unknown>[];
  /** Every row of this kind (the customer's usage events). */
  usage_events: Record<string, unknown>[];
  /** Every row of this kind (the customer's usage meter totals). */
  usage_meter_totals: Record<string, unknown>[];
  /** Every row of this kind (the customer's usage thresholds). */
  usage_thresholds: Record<string, unknown>[];
  /** Every row of this kind (the customer's usage thresholds crossed). */
  usage_thresholds_crossed: Record<string, unknown>[];
  /** Every row of this kind (the customer's usage window counters). */
  usage_window_counters: Record<string, unknown>[];
  /** Every row of this kind (the refunds of the customer's payments). */
  refunds: Record<string, unknown>[];
  /** Every row of this kind (the items of the customer's carts). */
  cart_items: Record<string, unknown>[];
  /** Every row of this kind (the items of the customer's subscriptions). */
  subscription_items: Record<string, unknown>[];
  /** Every row of this kind (the tenant events whose object names the customer). */
  events: Record<string, unknown>[];
  /** Every row of this kind (Stripe's events about the customer's Stripe customer, as Stripe sent them). */
  stripe_events: Record<string, unknown>[];
  /** Every row of this kind (the audit rows about the customer). */
  audit_log: Record<string, unknown>[];
}

export interface CustomerErasure {
  object?: string;
  /** Our id of the customer (its row stays, without the person). */
  id: string;
  /** What now stands for your user id on the customer's payments, subscriptions and invoices: random, linked to nothing. */
  customer: string;
  erased_at: string;
  /** Whether a Stripe customer was deleted (false: the customer never reached Stripe). */
  stripe_customer_deleted: boolean;
  /** Rows rewritten, per kind of store. */
  rows_scrubbed: Record<string, number>;
}

export interface CheckoutSession {
  id: string;
  object: string;
  mode: CheckoutSessionMode;
  status: CheckoutSessionStatus;
  url: string | null;
  expires_at: string;
  payment: string;
  customer: string;
  amount_total: number;
  currency: string;
  success_url: string;
  cancel_url: string;
  stripe_session_id: string | null;
  created_at: string;
}

export interface CartItem {
  id: string;
  object: string;
  price: string;
  product: string;
  quantity: number;
  unit_amount: number;
  amount: number;
  currency: string;
}

export interface Cart {
  id: string;
  object: string;
  customer: string;
  status: CartStatus;
  currency: string | null;
  items: CartItem[];
  amount_total: number;
  created_at: string;
}

export interface PaymentItem {
  price: string | null;
  price_key: string | null;
  product: string | null;
  /** Null for a metered price. */
  quantity: number | null;
  /** Null for a tiered price. */
  unit_amount: number | null;
  currency: string;
  description: string;
}

export interface Payment {
  id: string;
  object: string;
  customer: string;
  type: PaymentType;
  flow: PaymentFlow;
  source: PaymentSource;
  status: PaymentStatus;
  amount: number;
  amount_refunded: number;
  /** The tax included in `amount` (automatic tax; 0 without it), in minor units. */
  amount_tax: number;
  /** What a promotion code's discount took off before `amount` (0 without one), in minor units. */
  amount_discount: number;
  /** The code redeemed, if any. */
  promotion_code?: string | null;
  currency: string;
  description: string;
  reference: string | null;
  metadata: Record<string, unknown>;
  items: PaymentItem[];
  checkout_session: string | null;
  /** Checkout flow: where to send the customer. */
  checkout_url: string | null;
  /** Intent flow: confirm it with Stripe.js or a mobile SDK, with `publishable_key`. */
  client_secret: string | null;
  publishable_key: string | null;
  last_error_code: string | null;
  decline_code: string | null;
  /** Stripe's dispute status, when disputed. */
  dispute_status: string | null;
  stripe_checkout_session_id: string | null;
  stripe_payment_intent_id: string | null;
  stripe_subscription_id: string | null;
  stripe_invoice_id: string | null;
  expires_at: string | null;
  succeeded_at: string | null;
  created_at: string;
}

export interface PaymentStatusSummary {
  id: string;
  status: PaymentStatus;
  amount_refunded: number;
}

export interface PortalSession {
  url: string;
}

export interface PortalEligibility {
  eligible: boolean;
  reason: PortalIneligibilityReason | null;
}

// Discounts

export interface Coupon {
  id: string;
  object: string;
  key: string;
  name: string | null;
  /** 0 < percent_off ≤ 100, two decimals. */
  percent_off: number | null;
  /** Minor units of `currency`. */
  amount_off: number | null;
  currency: string | null;
  /** once | repeating | forever */
  duration: CouponDuration;
  duration_in_months: number | null;
  max_redemptions: number | null;
  redeem_by: string | null;
  /** Keys of the products it discounts; [] for every product. */
  applies_to: string[];
  stripe_coupon_id: string;
  created_at: string;
}

export interface PromotionCode {
  id: string;
  object: string;
  code: string;
  /** The coupon's key. */
  coupon: string;
  max_redemptions: number | null;
  expires_at: string | null;
  first_time_transaction: boolean;
  active: boolean;
  stripe_promotion_code_id: string;
  created_at: string;
}

// Subscriptions and invoices

export interface SubscriptionDiscount {
  /** The coupon's key. */
  coupon: string | null;
  /** The code redeemed, if any. */
  promotion_code: string | null;
  percent_off: number | null;
  amount_off: number | null;
  currency: string | null;
  /** once | repeating | forever */
  duration: SubscriptionDiscountDuration | null;
  /** When a repeating discount ends. */
  end: string | null;
}

export interface SubscriptionItem {
  id: string;
  price: string;
  product: string;
  /** Null for a metered price. */
  quantity: number | null;
  usage_type: SubscriptionItemUsageType;
  /** The product's version the item is on (`/products/{product}/versions`): the one in force when Stripe created it, until moved (`POST /subscriptions/version_moves`). */
  version: number;
}

export interface PendingChangeItem {
  /** The price's key (Stripe's id for a price not in the catalog). */
  price: string;
  /** Null for a metered price. */
  quantity: number | null;
}

export interface PendingChange {
  /** The primary item's price after the change. */
  price: string | null;
  /** The primary item's quantity after it. */
  quantity: number | null;
  /** Every item after the change. */
  items: PendingChangeItem[];
  /** When it takes effect: the current period's end. */
  effective_at: string;
}

export interface Subscription {
  id: string;
  object?: string;
  customer: string;
  status: SubscriptionStatus;
  price: string;
  product: string;
  quantity: number;
  /** Every price of the subscription. `price`, `product` and `quantity` above repeat its primary item (the first licensed one). */
  items: SubscriptionItem[];
  current_period_start: string | null;
  current_period_end: string | null;
  cancel_at_period_end: boolean;
  trial_end: string | null;
  canceled_at: string | null;
  stripe_subscription_id: string;
  created_at: string;
  /** The discount in force: {coupon, promotion_code, percent_off, amount_off, currency, duration, end}, or null. */
  discount: SubscriptionDiscount | null;
  /** A change scheduled for the end of the current period (the project's proration rule `period_end`, or a change that takes a metered price off: Stripe would bill the period's usage so far under it to nobody), or null. It takes effect when the period ends; a later change replaces it, a cancellation drops it. */
  pending_change: PendingChange | null;
}

export interface SubscriptionPreviewLine {
  description: string;
  amount: number;
  quantity: number | null;
  proration: boolean;
  period_start: string | null;
  period_end: string | null;
}

export interface SubscriptionPreview {
  amount_due: number;
  currency: string;
  /** The lines added up, before discounts and tax. */
  subtotal: number;
  /** What the discounts take off the subtotal. */
  discount: number;
  /** Stripe Tax's amount (0 without automatic tax). */
  tax: number;
  /** subtotal − discount + exclusive tax. */
  total: number;
  lines: SubscriptionPreviewLine[];
  /** What decides the change: the project's proration rule for its direction, or `requested` (the body's `proration_behavior`). * `now_prorate` - now_prorate * `now_no_proration` - now_no_proration * `period_end` - period_end * `requested` - requested */
  rule: SubscriptionPreviewRule;
  /** The change's direction (null for a change of no price, quantity or items). * `upgrade` - upgrade * `downgrade` - downgrade * `interval_change` - interval_change */
  change: SubscriptionPreviewChange | null;
  /** When a change deferred by the rule takes effect (the period's end; nothing is invoiced now); null when it applies now. */
  effective_at: string | null;
}

export interface VersionPriceMove {
  /** The price's key. */
  price: string;
  /** The Stripe price the item is on. */
  before: string;
  /** The version's Stripe price it moves to. */
  after: string;
  /** null for a metered item. */
  quantity: number | null;
}

export interface VersionMoveInvoice {
  /** Stripe's invoice preview with the price moves: the next invoice, with their prorations (when the rule prorates) and the renewal at the new prices; 0 for moves at the period's end. */
  amount_due: number;
  total: number;
  currency: string;
  /** Its lines: the prorations, then the renewal's. */
  lines: SubscriptionPreviewLine[];
  /** When the new prices apply: null now, else the period's end (nothing now). */
  effective_at: string | null;
}

export interface VersionMove {
  subscription: string;
  customer: string;
  from_version: number;
  to_version: number;
  /** When the move takes effect (its current period's end); null: now. */
  effective_at: string | null;
  /** What the move changes of the subscriber's feature values, per feature key. */
  changes: VersionChange[];
  /** false in a preview (and true for one scheduled). */
  moved: boolean;
  /** The subscription's items moved to the Stripe prices the version froze (a version published by a draft that repriced them); empty when they are on them already. */
  prices: VersionPriceMove[];
  /** How the price moves apply: the project's proration rule for their direction (an upgrade when the version's licensed prices cost more), or `period_end` when asked; null without price moves. * `now_prorate` - now_prorate * `now_no_proration` - now_no_proration * `period_end` - period_end */
  proration: VersionMoveProration | null;
  /** In a preview with price moves: Stripe's invoice preview of them. Else null. */
  invoice: VersionMoveInvoice | null;
}

export interface VersionMoves {
  object: string;
  product: string;
  to_version: number;
  /** `now` or `period_end`. */
  when: string;
  preview: boolean;
  /** How many subscriptions this request moved. */
  moved: number;
  /** One per subscription moved (or, in a preview, to move). */
  moves: VersionMove[];
}

export interface InvoiceLine {
  /** Stripe's id of the line (`il_…`): a draft's line is edited by it. Null on invoices mirrored before lines had one. */
  id?: string | null;
  /** `invoice_item`: a line of an invoice item (added to the invoice, a proration), which a draft may change or remove; `subscription_item`: a subscription's own line, which follows the subscription. Null on invoices mirrored before lines had one. * `invoice_item` - invoice_item * `subscription_item` - subscription_item */
  type?: InvoiceLineType | null;
  description: string;
  amount: number;
  currency: string;
  quantity: number | null;
  proration: boolean;
  stripe_price_id: string | null;
  period_start: string | null;
  period_end: string | null;
}

export interface Invoice {
  id: string;
  object?: string;
  customer: string;
  subscription: string | null;
  number: string | null;
  status: InvoiceStatus;
  billing_reason: string | null;
  subtotal: number;
  /** What discounts took off the subtotal (before tax). */
  discount: number;
  tax: number;
  total: number;
  amount_due: number;
  amount_paid: number;
  amount_remaining: number;
  currency: string;
  period_start: string | null;
  period_end: string | null;
  hosted_invoice_url: string | null;
  invoice_pdf: string | null;
  lines: InvoiceLine[];
  stripe_invoice_id: string;
  created_at: string;
}

export interface CreditNoteLine {
  /** `invoice_line_item` (a line of the invoice) or `custom_line_item`. */
  type: CreditNoteLineType;
  description: string | null;
  amount: number;
  quantity: number | null;
  /** The index in the invoice's `lines` of the line credited. */
  invoice_line: number | null;
}

export interface CreditNote {
  id: string;
  object?: string;
  invoice: string;
  customer: string;
  number: string | null;
  /** `issued` or `void`. */
  status: CreditNoteStatus;
  /** `pre_payment` (it lowered the amount due), `post_payment` (given back after payment) or `mixed`. */
  type: CreditNoteType;
  currency: string;
  amount: number;
  subtotal: number;
  total: number;
  /** What it took off the amount still due. */
  pre_payment_amount: number;
  /** What it gave back of what was paid: refund_amount + credit_amount + out_of_band_amount. */
  post_payment_amount: number;
  /** Refunded to the payment method. */
  refund_amount: number;
  /** Credited to the customer's Stripe balance. */
  credit_amount: number;
  /** Settled outside Stripe. */
  out_of_band_amount: number;
  reason: CreditNoteReason | null;
  memo: string | null;
  lines: CreditNoteLine[];
  stripe_credit_note_id: string;
  created_at: string;
}

// Usage, entitlements, credits

/** How a usage event fared at Stripe's billing meter (features sold with a metered price). */
export interface UsageMeterStatus {
  /** null: the feature is not billed by a meter. */
  status: MeterReportStatus | null;
  reported_at: string | null;
  attempts: number;
  error: string | null;
}

export interface UsageCost {
  /** Micro-units of the currency, rounded to the nearest (half up). */
  micros: number;
  currency: string;
  /** The version of your cost table that priced it. */
  cost_table: number;
}

export interface UsageEvent {
  /** Your idempotency id for the event. */
  id: string;
  object?: string;
  customer: string;
  feature: string;
  quantity: number;
  timestamp: string;
  properties: Record<string, unknown>;
  /** The model the event named, or null. */
  model: string | null;
  /** The dimensions the event gave (its `quantity` is what the feature's formula made of them), or null. */
  dimensions: Record<string, number> | null;
  /** What the call cost you, by your cost table in force at its time; null when none priced it. */
  cost: UsageCost | null;
  /** The start of the metered period the event counts in. */
  period_start: string | null;
  stripe_meter: UsageMeterStatus;
  created_at: string;
}

export interface UsageBatchResult {
  /** Events recorded now. */
  accepted: number;
  /** Events whose id was recorded before, or repeated within the batch: counted once. */
  duplicates: number;
}

export interface UsageSummary {
  object?: string;
  customer: string;
  feature: string;
  period_start: string;
  period_end: string;
  /** Usage counted by Tollgate in the period. */
  quantity: number;
  /** Of it, what Stripe's meter has been sent. */
  billed_quantity: number;
  /** Of it, what is still to be sent to the meter. */
  pending_quantity: number;
  /** The metered price the customer subscribes to, or null: nobody is billed. */
  price: string | null;
  currency: string | null;
  /** What the metered price invoices for `quantity` at the period's end, in minor units (tiers applied). Before discounts and tax. 0 in a trial: Stripe bills no usage of a trial. */
  amount_due_estimate: number;
}

export interface UsageCorrectionMeter {
  /** `none`: nothing to correct at Stripe (the event never reached its meter: the corrected quantity is what gets reported); `pending`: Stripe's meter is being corrected; `adjusted`: it was (the meter event canceled and, for an amount left, a replacement sent); `invoiced`: Stripe had invoiced it, its meter is left as it billed and the next invoice is adjusted (`invoice_adjustment`). * `none` - Nothing to correct at Stripe * `pending` - Pending * `adjusted` - Adjusted * `invoiced` - Invoiced: adjusted on the next invoice */
  status: UsageCorrectionMeterStatus;
  adjusted_at: string | null;
  error: string | null;
}

export interface UsageCorrectionInvoiceAdjustment {
  /** Minor units on the next invoice; negative: a credit. */
  amount: number;
  currency: string;
  /** `created` once the invoice item is at Stripe (`invoice_item`); `none` when nothing changes. * `none` - none * `pending` - pending * `created` - created */
  status: UsageCorrectionInvoiceAdjustmentStatus;
  /** Stripe's pending invoice item (`ii_…`). */
  invoice_item: string | null;
}

export interface UsageCorrectionCredits {
  /** The credits feature that paid (its key). */
  feature: string | null;
  /** The event's units paid from credits before. */
  covered_before: number;
  /** The event's units paid from credits after (an event's covered units are its last). */
  covered_after: number;
  /** Credits given back to the lots they came from (negative: taken for units added). */
  returned: number;
  /** Units of the period's later events that credits paid and the allowance a correction down freed pays now, the latest first (as if the event had been so from the start): their credits go back (ledger entries `correction` naming each event) and Stripe's meter is sent their units when it had not been sent them yet. 0 otherwise. */
  later_units: number;
  /** The credits given back for `later_units`. */
  later_returned: number;
}

export interface UsageCorrection {
  id: string;
  object?: string;
  event: string;
  customer: string;
  feature: string;
  action: UsageCorrectionAction;
  quantity_before: number;
  quantity_after: number;
  /** The period the event counts in. */
  period_start: string | null;
  reason: string;
  /** Usage thresholds the event had crossed that the corrected use no longer reaches ('0.8', '1.0', your threshold's id, or 'cap'); each stays crossed for the period (not announced again). */
  thresholds_uncrossed: string[];
  /** Where a credits waterfall paid for some of the event's units, or pays for units added: what moved of the credits (ledger entries `correction` naming the event); null otherwise. */
  credits: UsageCorrectionCredits | null;
  stripe_meter: UsageCorrectionMeter;
  /** Where Stripe had invoiced the event and `invoiced` was `credit`: the customer's next invoice adjustment; null otherwise. */
  invoice_adjustment: UsageCorrectionInvoiceAdjustment | null;
  created_at: string;
}

/** A usage window of a metered feature as it stands now (calendar windows, UTC). */
export interface UsageWindow {
  window: UsageWindowWindow;
  /** The most units used in one window. */
  limit: number;
  /** Used in the current window (held units not included). */
  used: number;
  /** Set aside by active holds in the current window. */
  held: number;
  /** limit − (used + held), never below 0. */
  remaining: number;
  /** The end of the current window (calendar windows, UTC). */
  resets_at: string;
}

/** A spend cap on a metered feature's overage, and how much of it is used and left. */
export interface EntitlementCap {
  /** At the cap use is refused (`block`) or goes on, announced (`alert`). * `block` - block * `alert` - alert */
  at_cap: EntitlementCapAtCap;
  /** The plan's cap, or the customer's own (`/spend_caps`). * `catalog` - catalog * `customer` - customer */
  set_by: EntitlementCapSetBy;
  /** A cap in units past the limit. */
  units: number | null;
  /** A cap in money: the most the metered price bills for the period (minor units). */
  amount: number | null;
  /** The metered price's; null without one. */
  currency: string | null;
  /** Units used past the limit this period (held ones included). */
  used_units: number;
  /** What the metered price bills for the period's use so far (0 without one). */
  used_amount: number;
  /** Units left before the cap; null when nothing bounds them (no price bills). */
  left_units: number | null;
  /** Money left before a money cap. */
  left_amount: number | null;
}

/** A customer's account cap across their metered features, and how much is used and left. */
export interface EntitlementAccountCap {
  /** At the cap use past a limit is refused (`block`) or goes on, announced (`alert`). * `block` - block * `alert` - alert */
  at_cap: EntitlementAccountCapAtCap;
  /** The customer's own (`/spend_caps`), or their plan's (a product's `account_cap`). * `customer` - customer * `plan` - plan */
  set_by: EntitlementAccountCapSetBy;
  /** The most the customer's metered prices in `currency` bill together for the period. */
  amount: number;
  /** The cap's currency: only prices in it are summed. */
  currency: string;
  /** What they bill together for the period's use so far. */
  used_amount: number;
  /** amount − used_amount, never below 0. */
  left_amount: number;
  /** Units of this feature that still fit (past its limit, what its price bills within what is left); null when nothing bounds them (no overage, or no price in the cap's currency). */
  left_units: number | null;
}

/** A metered feature's credits waterfall: the credits that pay for use past its limit. */
export interface EntitlementCredits {
  /** The credits feature that pays for use past the limit. */
  feature: string;
  /** Credits one unit past the limit spends. */
  cost: number;
  /** That feature's spendable balance now: the account's; naming an entity that holds credits of that feature, its own too (they pay first). */
  balance: number;
  /** The units past the limit the balance pays for: balance ÷ cost. */
  units: number;
  /** Units of this period's use credits paid (held ones included); not billed as overage. */
  covered: number;
}

/** The use of the entity a check or consume named, against its own limit (`per_entity`). */
export interface EntitlementEntity {
  /** The entity named (your id for it). */
  id: string;
  /** The allocation feature that counts it. */
  feature: string;
  /** Its own limit a period (`per_entity`); null for a credits feature. */
  limit: number | null;
  /** Its use this period; null for a credits feature. */
  used: number | null;
  /** limit − used, never below 0; null for a credits feature. */
  remaining: number | null;
  /** Its own usage windows now (`per_entity.windows`), as the account's are answered; [] when none. */
  windows: UsageWindow[];
  /** What of its own refuses `quantity` for longest: a window (`minute`, `hour`, `day`, `week`) or `period` (its limit a period); null when it fits, and for a credits feature. */
  binding: string | null;
  /** A credits feature: its own credits, spent before the account's (the answer's `balance` is both); null for a metered feature. */
  balance: number | null;
}

/**
 * The answer of `entitlements.check`, `consume` and `release`.
 *
 * `limit` null is unlimited (or a feature that is not counted); `used` is set for `metered` (this period)
 * and `allocation` (units in use); `balance` for `credits`.
 */
export interface EntitlementCheck {
  allowed: boolean;
  feature: string;
  type: FeatureType;
  enabled: boolean;
  value: unknown;
  /** null: unlimited (or not a counted feature). */
  limit: number | null;
  used: number | null;
  /** limit − (used + held), the units credits paid not counted; below 0 only where `overage` is `allowed`; credits: the balance. */
  remaining: number | null;
  /** credits features: the spendable balance. */
  balance: number | null;
  /** metered, allocation and credits features: units set aside by active holds. They count against the limit (`remaining` is net of them) but are not `used`; held credits are out of `balance`. */
  held: number | null;
  /** metered features: `allowed` when the plan lets use go past `limit` (any use is allowed, `remaining` goes below 0, and the feature's metered price bills it), else `blocked`; null for other features. * `allowed` - allowed * `blocked` - blocked */
  overage: EntitlementCheckOverage | null;
  /** metered features whose plan allows overage, with a spend cap: how much of it is used and left. */
  cap: EntitlementCap | null;
  /** metered features of a customer with an account cap (one amount across their metered features' prices): how much of it is used and left; null without one. */
  account_cap: EntitlementAccountCap | null;
  /** metered features with a credits waterfall: the credits that pay for use past the limit, before any overage; null without one. */
  credits: EntitlementCredits | null;
  /** metered features: where `quantity` more would come from — `allowance` (the period's limit), `credits` (the waterfall's credits, past the limit) or `overage` (past the limit, billed); null when it does not fit and for other features. * `allowance` - allowance * `credits` - credits * `overage` - overage */
  step: EntitlementCheckStep | null;
  /** metered features: each usage window now; [] when none. */
  windows: UsageWindow[];
  /** metered features, when `quantity` more does not fit: what refuses it — `period` (the period's limit, and the waterfall's credits), `cap` (the feature's spend cap), `account_cap` (the customer's account cap), `entity` (the limit of the entity named) or a usage window (`minute`, `hour`, `day`, `week`); of several, the one that frees up last. null when it fits. */
  binding: string | null;
  /** Whole seconds until `binding` frees up (its window or period ends); null when it fits, or when `quantity` is more than that window or period ever allows. */
  retry_after: number | null;
  /** Only when the request named an `entity`: that entity's own use; past its limit or one of its windows, `allowed` is false; refused by it for longer than by the account's (or alone), `binding` is `entity` and `retry_after` when the entity's binding frees up. */
  entity?: EntitlementEntity;
  /** Only when the check gave `dimensions`: the units the feature's usage formula makes of them (as a usage event's `quantity` would be, priced now), the quantity the answer is judged for. */
  quantity?: number;
  /** `consume`/`release` only: this id was recorded before, nothing was recorded again. */
  duplicate?: boolean;
}

/** Where part of an entitlement comes from (the fields that apply to its `type`). */
export interface EntitlementSource {
  type: EntitlementSourceType;
  id?: string | null;
  product?: string | null;
  value?: unknown;
  quantity?: number | null;
  status?: SubscriptionStatus | null;
  ends_at?: string | null;
  expires_at?: string | null;
  reason?: string | null;
  disputed?: boolean | null;
}

export interface Entitlement {
  feature: string;
  type: FeatureType;
  enabled: boolean;
  value: unknown;
  limit: number | null;
  used: number | null;
  /** limit − (used + held), the units credits paid not counted; below 0 only where `overage` is `allowed`; credits: the balance. */
  remaining: number | null;
  balance: number | null;
  /** metered, allocation and credits features: units set aside by active holds. They count against the limit (`remaining` is net of them) but are not `used`; held credits are out of `balance`. */
  held: number | null;
  /** metered features: `allowed` when the plan lets use go past `limit` (any use is allowed, `remaining` goes below 0, and the feature's metered price bills it), else `blocked`; null for other features. * `allowed` - allowed * `blocked` - blocked */
  overage: EntitlementOverage | null;
  /** metered features whose plan allows overage, with a spend cap: how much of it is used and left. */
  cap: EntitlementCap | null;
  /** metered features of a customer with an account cap (one amount across their metered features' prices): how much of it is used and left; null without one. */
  account_cap: EntitlementAccountCap | null;
  /** metered features with a credits waterfall: the credits that pay for use past the limit, before any overage; null without one. */
  credits: EntitlementCredits | null;
  /** metered features: where `quantity` more would come from — `allowance` (the period's limit), `credits` (the waterfall's credits, past the limit) or `overage` (past the limit, billed); null when it does not fit and for other features. * `allowance` - allowance * `credits` - credits * `overage` - overage */
  step: EntitlementStep | null;
  /** metered features: each usage window now; [] when none. */
  windows: UsageWindow[];
  /** metered features, when `quantity` more does not fit: what refuses it — `period` (the period's limit, and the waterfall's credits), `cap` (the feature's spend cap), `account_cap` (the customer's account cap), `entity` (the limit of the entity named) or a usage window (`minute`, `hour`, `day`, `week`); of several, the one that frees up last. null when it fits. (For one more unit.) */
  binding: string | null;
  /** Whole seconds until `binding` frees up (its window or period ends); null when it fits, or when `quantity` is more than that window or period ever allows. */
  retry_after: number | null;
  /** `metered`: the end of the current period, when `used` starts again from 0. */
  resets_at: string | null;
  /** Where each part came from. */
  sources: EntitlementSource[];
}

export interface CustomerEntitlements {
  customer: string;
  entitlements: Entitlement[];
}

export interface HoldCall {
  model: string | null;
  dimensions: Record<string, number>;
  /** What the feature's usage formula made of them. */
  units: number;
  /** What they cost by your cost table; null when none priced them. */
  cost: UsageCost | null;
}

export interface Hold {
  /** Your id for the hold. */
  id: string;
  object?: string;
  customer: string;
  feature: string;
  /** Units held. */
  quantity: number;
  /** Units reported as used against the hold so far. */
  consumed: number;
  /** Units the confirm kept as usage (those reported included). */
  confirmed: number | null;
  status: HoldStatus;
  expires_at: string;
  created_at: string;
  /** When it was confirmed, released or expired. */
  ended_at: string | null;
  /** A model call's hold: the estimate it was placed with (its units are `quantity`); else null. */
  estimate: HoldCall | null;
  /** A model call's confirm: what the call used, priced; else null. */
  actual: HoldCall | null;
  /** Units the confirmed call used beyond the hold, recorded now as a usage event of their own (id: Tollgate's id for the hold + `.overrun`; `properties.hold`: yours). */
  overrun: number;
}

export interface HoldAnswer {
  /** false: the limit or balance refused the hold; nothing recorded. */
  allowed: boolean;
  hold: Hold | null;
  /** The feature's check now (for one more unit; a refused hold: its units). */
  entitlement: EntitlementCheck;
  /** true when this call was made before. */
  duplicate?: boolean;
}

export interface HoldUsage {
  /** Events recorded now. */
  accepted: number;
  /** Events whose id the project had already (counted once). */
  duplicates: number;
  hold: Hold;
  entitlement: EntitlementCheck;
}

export interface UsageThreshold {
  id: string;
  object?: string;
  customer: string;
  feature: string;
  /** Percent of the limit (null for a quantity threshold). */
  percent: number | null;
  /** Units used (null for a percent threshold). */
  quantity: number | null;
  created_at: string;
  /** true in the answer of its deletion. */
  deleted?: boolean;
}

/** A customer's own spend cap on a metered feature (`entitlements.spend_caps`). */
export interface SpendCap {
  id: string;
  object?: string;
  customer: string;
  /** The metered feature; null for the account cap. */
  feature: string | null;
  /** How far use may go past the limit: {"units": n} (units past the limit) or {"amount": m} (the most, in minor units, the feature's metered price bills for the period), with "at_cap": "block" (use is refused there, the default) or "alert" (use goes on; `usage.cap_reached` announces it once a period). An account cap (no feature) is {"amount": m, "currency": "usd"}: the most the customer's metered prices in that currency bill together for the period; past it, use past a feature's limit is refused ("at_cap": "block") or goes on and `usage.cap_reached` (`scope: "account"`) announces it once a period ("alert"). Use within a feature's limit is never refused by it. */
  cap: unknown;
  created_at: string;
  updated_at: string;
  /** true in the answer of its deletion. */
  deleted?: boolean;
}

export interface CostTable {
  id: string;
  object?: string;
  /** 1, 2, 3 … within the project. */
  version: number;
  /** Three-letter ISO code, lowercase. */
  currency: string;
  /** The version applies to uses from then on. */
  starts_at: string;
  /** The rates, per model (or any cost dimension you name): {"<model>": {"<dimension>": {"micros": m, "per": p}}} is m micro-units of the currency per p units of the dimension (input tokens, output tokens, cached tokens, images, seconds …): gpt-4o's input tokens at $2.50 a million are {"micros": 2500000, "per": 1000000}. Every rate with both fields. */
  models: Record<string, Record<string, Record<string, number>>>;
  /** Whether this is the version in force now: the latest whose `starts_at` has passed. */
  current: boolean;
  created_at: string;
}

/** An entity's use this period of one metered feature that gives it its own limit. */
export interface EntityFeatureUse {
  /** A metered feature whose plan gives each entity its own limit. */
  feature: string;
  /** The entity's own limit a period (`per_entity`). */
  limit: number;
  /** Its use this period (held units included). */
  used: number;
  /** limit − used, never below 0. */
  remaining: number;
  /** Its own usage windows now (`per_entity.windows`), as checks answer them; [] when none. */
  windows: UsageWindow[];
}

/** An entity's own credits of one credits feature whose plan lets it hold credits. */
export interface EntityCredits {
  /** A credits feature whose plan lets each entity hold its own. */
  feature: string;
  /** The entity's own credits, spent before the account's. */
  balance: number;
}

/** One of a customer's entities (a seat, a workspace), counted by an allocation feature (`entitlements.entities`). */
export interface Entity {
  /** Tollgate's id of the entity (`ent_…`): the path of its changes. */
  id: string;
  object?: string;
  customer: string;
  /** The allocation feature that counts it. */
  feature: string;
  /** Your id for it: what uses name. */
  entity: string;
  name: string;
  created_at: string;
  /** Set once it is removed. */
  removed_at: string | null;
  /** Its use this period of each metered feature whose plan (the customer's now) gives the entities of its allocation feature their own limit, by feature key; [] when none does. A removed entity's use stays counted for the period. */
  usage: EntityFeatureUse[];
  /** Its own credits of each credits feature whose plan (the customer's now) lets the entities of its allocation feature hold credits, by feature key; [] when none does (0 once it is removed). */
  credits: EntityCredits[];
}

export interface AutoRecharge {
  id: string;
  object?: string;
  customer: string;
  feature: string;
  /** A spend or hold that leaves the balance at or below this recharges. */
  below: number;
  /** The one-time price bought on each recharge. */
  price: string;
  quantity: number;
  /** Credits granted by each recharge. */
  credits: number;
  /** What each recharge charges, in minor units. */
  amount: number;
  currency: string;
  /** The Stripe PaymentMethod charged; null: the customer's default card, else their newest. */
  payment_method: string | null;
  /** `armed`; `charging` (one charge under way); `failed` (configure it again to re-arm). * `armed` - Armed * `charging` - Charging * `failed` - Failed */
  status: AutoRechargeStatus;
  /** Charges started so far. */
  attempts: number;
  /** The payment of the latest charge. */
  last_payment: string | null;
  /** Why the latest charge failed: Stripe's decline code, `no_saved_card`, `price_inactive`, … */
  last_error: string | null;
  recharged_at: string | null;
  created_at: string;
  /** true in the answer of its deletion. */
  deleted?: boolean;
}

export interface Grant {
  id: string;
  object?: string;
  customer: string;
  feature: string;
  value: unknown;
  /** credits: the drawdown priority given (null: the default, 10). */
  priority: number | null;
  /** credits: the entity (your id for it) whose own credits these are; null: the account's. */
  entity: string | null;
  expires_at: string | null;
  reason: string;
  deleted: boolean;
  created_at: string;
}

export interface Revocation {
  id: string;
  object?: string;
  customer: string;
  feature: string;
  expires_at: string | null;
  reason: string;
  deleted: boolean;
  created_at: string;
}

/** Credits granted together (a purchase, a paid plan period or a grant), spent oldest-expiring first. */
export interface CreditLot {
  id: string;
  source: CreditLotSource;
  amount: number;
  remaining: number;
  /** Spent lowest first, then the lot expiring first. */
  priority: number;
  expires_at: string | null;
  voided: boolean;
  /** The entity whose own credits these were granted as; null: the account's. */
  entity: string | null;
  /** When removing its entity returned the lot to the account (the account's since); null: not. */
  returned_at: string | null;
  created_at: string;
}

export interface CreditLedgerEntry {
  id: string;
  type: CreditLedgerEntryType;
  /** Positive when granted, negative when consumed or taken back. */
  amount: number;
  lot: string;
  /** What moved the credits: the consume's id, the grant's or the payment's id. */
  reference: string;
  created_at: string;
}

/** Plan credits still to come: a month or week of a paid period whose plan grants on a cadence. */
export interface ScheduledCredits {
  id: string;
  /** Credits the month or week grants (the first pro-rated). */
  amount: number;
  /** When they are granted (within 30 s of it). */
  starts_at: string;
  /** When the lot they become expires: the slice's end. */
  expires_at: string;
  /** At most this many credits the lot before it left unspent carry into it. */
  rollover: number | null;
  /** The paid invoice whose period they belong to. */
  invoice: string;
}

export interface CreditBalance {
  object?: string;
  customer: string;
  feature: string;
  balance: number;
  lots: CreditLot[];
  /** Newest first (the latest 100 movements). */
  ledger: CreditLedgerEntry[];
  /** Plan credits still to come, soonest first: the months or weeks of paid periods whose product grants the feature on a cadence (`"cadence": "month"`), until the subscription ends or the period is refunded. */
  scheduled: ScheduledCredits[];
}

// Outbound events

export interface WebhookEndpoint {
  id: string;
  object?: string;
  url: string;
  events: string[];
  description: string;
  enabled: boolean;
  disabled_reason: string | null;
  failing_since: string | null;
  created_at: string;
  /** The signing secret: only in the answers to create and rollSecret. Keep it; it is not shown again. */
  secret?: string;
  /** Always true: the endpoint is gone. */
  deleted?: boolean;
}

export interface EventDelivery {
  id: string;
  endpoint: string;
  status: EventDeliveryStatus;
  attempts: number;
  next_attempt_at: string | null;
  last_attempt_at: string | null;
}

/**
 * An outbound event, from `events.retrieve`/`list` or from a verified delivery (`constructEvent`).
 *
 * `data.object` is the object the event is about: the payment, subscription, … as it was when the event
 * happened. `previous_attributes` holds the fields that changed, with their old values.
 */
export interface Event {
  id: string;
  object?: string;
  type: EventType;
  created: string;
  project: string;
  /** Per project, strictly increasing. */
  sequence: number;
  /** {'object': the API representation of the object} */
  data: Record<string, unknown>;
  previous_attributes?: Record<string, unknown>;
  /** Only in API answers (`events.retrieve`, `events.list`): where the event went and how it fared. */
  deliveries?: EventDelivery[];
}

// Metrics

export interface SubscriptionMetrics {
  object?: string;
  total: number;
  by_status: Record<string, number>;
  by_product: Record<string, Record<string, number>>;
}

export interface RevenuePeriod {
  period_start: string;
  currency: string;
  revenue: number;
  refunds: number;
  net: number;
}

export interface RevenueMetrics {
  object?: string;
  interval: RevenueInterval;
  data: RevenuePeriod[];
  /** Monthly recurring revenue per currency. */
  mrr: Record<string, number>;
}

export interface RevenueRecognitionBalance {
  /** Held when the month began. */
  opening: number;
  /** Billed less given back in the month. */
  added: number;
  /** Recognised as revenue in the month. */
  recognised: number;
  /** Held when the month ended: opening + added − recognised. */
  closing: number;
}

export interface RevenueRecognitionProduct {
  /** Paid lines booked in the month, tax aside, discounts taken off. */
  billed: number;
  /** Revenue given back by refunds and credit notes booked in it. */
  refunds: number;
  /** Revenue earned in the month: its days of service, and the prepaid credits spent or expired in it. */
  recognised: number;
  /** Deferred revenue: billed for service not yet given. */
  deferred: RevenueRecognitionBalance;
  /** The liability of prepaid credits bought and not yet spent or expired. */
  credits: RevenueRecognitionBalance;
  /** Tollgate's product id; null: no product. */
  product: string | null;
  name: string;
}

export interface RevenueRecognitionCurrency {
  /** Paid lines booked in the month, tax aside, discounts taken off. */
  billed: number;
  /** Revenue given back by refunds and credit notes booked in it. */
  refunds: number;
  /** Revenue earned in the month: its days of service, and the prepaid credits spent or expired in it. */
  recognised: number;
  /** Deferred revenue: billed for service not yet given. */
  deferred: RevenueRecognitionBalance;
  /** The liability of prepaid credits bought and not yet spent or expired. */
  credits: RevenueRecognitionBalance;
  currency: string;
  products: RevenueRecognitionProduct[];
}

export interface RevenueRecognitionMonth {
  /** YYYY-MM (UTC). */
  month: string;
  currencies: RevenueRecognitionCurrency[];
}

export interface RevenueRecognition {
  object?: string;
  months: RevenueRecognitionMonth[];
}

/**
 * One row of `margins.list`: a month's usage in one currency, by the groups asked for (null where not
 * grouped), what it cost you and what it billed; money in micro-units (1 USD = 1,000,000).
 */
export interface Margin {
  object?: string;
  /** The month of the usage (UTC), `YYYY-MM`. */
  period: string;
  /** Three-letter ISO code, lowercase, of every amount of the row; empty for usage that neither cost nor billed any money. Money is never summed across currencies: a row is one currency's. */
  currency: string;
  /** The customer's id (your `external_id`); null when the report is not grouped by customer. */
  customer: string | null;
  /** The feature's key; null when the report is not grouped by feature. */
  feature: string | null;
  /** The model the usage named (empty for usage that named none); null when the report is not grouped by model. */
  model: string | null;
  /** Model calls counted: a `usage` or `consume` event each (a hold's units beyond it count with its call). */
  calls: number;
  /** Their quantity, in the feature's units. */
  units: number;
  /** Micro-units of `currency` (1 USD = 1,000,000): what the usage cost you, by your cost table (events priced by one only). */
  cost_micros: number;
  /** Micro-units of `currency` (1 USD = 1,000,000): what the customer was billed for the usage, `overage_micros` + `credits_micros`. */
  billed_micros: number;
  /** Micro-units of `currency` (1 USD = 1,000,000): what the customer's metered price bills for the usage reported to its meter (not the units paid with credits), each event at the margin of the period's units (a graduated price's free tier bills the period's first events nothing). */
  overage_micros: number;
  /** Micro-units of `currency` (1 USD = 1,000,000): the credits the usage burned, at what the customer paid for them (granted credits are worth nothing). */
  credits_micros: number;
  /** The credits the usage burned. */
  credits_burned: number;
  /** Micro-units of `currency` (1 USD = 1,000,000): `billed_micros` − `cost_micros`. */
  margin_micros: number;
  /** The margin in basis points of what was billed (10000 × margin ÷ billed, rounded down: −2500 is −25 %); null when nothing was billed. */
  margin_bps: number | null;
}

// The journal

export interface JournalLine {
  /** The account (`stripe_balance`); `code` and `name` are its number and name in the chart. */
  account: JournalAccount;
  /** The account's number in the chart of accounts (`1010` … `6300`). */
  code: string;
  /** The account's name (`Cash at Stripe`). */
  name: string;
  /** Debited, in minor units of the entry's currency; 0 on a credit. */
  debit: number;
  /** Credited, in minor units of the entry's currency; 0 on a debit. */
  credit: number;
}

export interface JournalEntry {
  id: string;
  object?: string;
  /** Which movement the entry posts. */
  kind: JournalEntryKind;
  /** The object moved: Stripe's (`in_…`, `re_…`, `cn_…`, `txn_…`), or Tollgate's payment (`pay_…`) for a payment and its disputes. */
  source: string;
  /** The entry's number among its movement's (same `source` and `kind`): 1 posts the movement, each later one what changed since (a reversal, a correction). */
  revision: number;
  /** Three-letter ISO code, lowercase, of every line. */
  currency: string;
  /** When the movement happened as far as the books go: when Tollgate learnt of it, or Stripe's time for a fee. */
  effective_at: string;
  /** When the entry was written: the stream's order. */
  posted_at: string;
  /** In the chart's order; they add up to zero. */
  lines: JournalLine[];
}
