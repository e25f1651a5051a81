"""The tables of `generate_types.py`: what the OpenAPI schema does not say about the SDK's result classes, and
the header of the module it writes (`tollgate_client/types.py`). Each entry is checked against the schema by the
generator; see its docstring for what each table is for."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

COMMAND = ".venv/bin/python clients/python/generate_types.py"


@dataclasses.dataclass(frozen=True)
class Cls:
    name: str
    components: tuple[str, ...]
    """Schema components, merged in order: a field missing from one of them may be left out by the server."""
    section: str | None = None
    exclude: tuple[str, ...] = ()
    """Schema fields with no attribute (the name is taken by a method or property of the class)."""


@dataclasses.dataclass(frozen=True)
class ManualField:
    name: str
    annotation: str
    required: bool = False
    nullable: bool = False


# In the order of the module. `components=()` marks a class the schema has no component for (MANUAL_CLASSES).
CLASSES: tuple[Cls, ...] = (
    Cls("Project", ("ProjectOutput", "ProjectCreated"), section="Projects and keys"),
    Cls("ApiKey", ("ApiKeyOutput", "ApiKeyCreated")),
    Cls("AgentKey", ("AgentKeyOutput", "AgentKeyCreatedOutput")),
    Cls("AdoptionPoint", ("AdoptionPointOutput",)),
    Cls("AdoptionRun", ("AdoptionRunOutput",)),
    Cls("Feature", ("FeatureOutput",), section="Catalog"),
    Cls("Product", ("ProductOutput",)),
    Cls("ProductAccountCap", ("ProductAccountCapOutput",)),
    Cls("VersionChange", ("VersionChangeOutput",)),
    Cls("ProductVersionPrice", ("VersionPriceOutput",)),
    Cls("ProductVersion", ("ProductVersionOutput",)),
    Cls("DraftPriceChange", ("DraftPriceChangeOutput",)),
    Cls("ProductDraft", ("ProductDraftOutput",)),
    Cls("ReratedPeriod", ("ReratedPeriodOutput",)),
    Cls("EntitlementChange", ("EntitlementChangeOutput",)),
    Cls("ReratedSubscription", ("ReratedSubscriptionOutput",)),
    Cls("ReratingCohort", ("ReratingCohortOutput",)),
    Cls("ReratingTotal", ("ReratingTotalOutput",)),
    Cls("Rerating", ("ReratingOutput",)),
    Cls("PriceTier", ("PriceTierOutput",)),
    Cls("Price", ("PriceOutput",)),
    Cls("PublicPlanPrice", ("PublicPriceOutput",)),
    Cls("PublicPlanFeature", ("PublicFeatureOutput",)),
    Cls("PublicPlan", ("PublicProductOutput",)),
    Cls("Customer", ("CustomerOutput",), section="Customers, checkout, carts, payments, portal"),
    Cls("CustomerExport", ("CustomerExportOutput",)),
    Cls("CustomerErasure", ("CustomerErasureOutput",)),
    Cls("CheckoutSession", ("CheckoutSessionOutput",)),
    Cls("CartItem", ()),
    Cls("Cart", ("CartOutput",)),
    Cls("PaymentItem", ("PaymentItemOutput",)),
    Cls("Payment", ("PaymentOutput",)),
    Cls("PaymentStatusSummary", ("PaymentStatusOutput",)),
    Cls("PortalSession", ("PortalSession",)),
    Cls("PortalEligibility", ("PortalEligibility",)),
    Cls("Coupon", ("CouponOutput",), section="Discounts"),
    Cls("PromotionCode", ("PromotionCodeOutput",)),
    Cls("SubscriptionDiscount", ("SubscriptionDiscountOutput",), section="Subscriptions and invoices"),
    Cls("SubscriptionItem", ("SubscriptionItemOutput",)),
    Cls("PendingChangeItem", ("PendingChangeItemOutput",)),
    Cls("PendingChange", ("PendingChangeOutput",)),
    Cls("Subscription", ("SubscriptionOutput",)),
    Cls("SubscriptionPreviewLine", ("SubscriptionPreviewLineOutput",)),
    Cls("SubscriptionPreview", ("SubscriptionPreviewOutput",)),
    Cls("VersionPriceMove", ("VersionPriceMoveOutput",)),
    Cls("VersionMoveInvoice", ("VersionMoveInvoiceOutput",)),
    Cls("VersionMove", ("VersionMoveOutput",)),
    Cls("VersionMoves", ("VersionMovesOutput",)),
    Cls("InvoiceLine", ("InvoiceLineOutput",)),
    Cls("Invoice", ("InvoiceOutput",)),
    Cls("CreditNoteLine", ("CreditNoteLineOutput",)),
    Cls("CreditNote", ("CreditNoteOutput",)),
    Cls("UsageMeterStatus", (), section="Usage, entitlements, credits"),
    Cls("UsageCost", ("UsageCostOutput",)),
    Cls("UsageEvent", ("UsageEventOutput",)),
    Cls("UsageBatchResult", ("UsageBatchOutput",)),
    Cls("UsageSummary", ("UsageSummaryOutput",)),
    Cls("UsageCorrectionMeter", ("UsageCorrectionMeterOutput",)),
    Cls("UsageCorrectionInvoiceAdjustment", ("UsageCorrectionInvoiceAdjustmentOutput",)),
    Cls("UsageCorrectionCredits", ("UsageCorrectionCreditsOutput",)),
    Cls("UsageCorrection", ("UsageCorrectionOutput",)),
    Cls("UsageWindow", ("WindowOutput",)),
    Cls("EntitlementCap", ("CapOutput",)),
    Cls("EntitlementAccountCap", ("AccountCapOutput",)),
    Cls("EntitlementCredits", ("WaterfallOutput",)),
    Cls("EntitlementEntity", ("EntityUseOutput",)),
    Cls("EntitlementCheck", ("CheckOutput", "ConsumeOutput")),
    Cls("EntitlementSource", ()),
    Cls("Entitlement", ("EntitlementOutput",)),
    Cls("CustomerEntitlements", ("EntitlementsOutput",)),
    Cls("HoldCall", ("HoldCallOutput",)),
    Cls("Hold", ("HoldOutput",)),
    Cls("HoldAnswer", ("HoldAnswerOutput",)),
    Cls("HoldUsage", ("HoldUsageOutput",)),
    Cls("UsageThreshold", ("ThresholdOutput",)),
    Cls("SpendCap", ("SpendCapOutput",)),
    Cls("CostTable", ("CostTableOutput",)),
    Cls("EntityFeatureUse", ("EntityFeatureUseOutput",)),
    Cls("EntityCredits", ("EntityCreditsOutput",)),
    Cls("Entity", ("EntityOutput",)),
    Cls("AutoRecharge", ("AutoRechargeOutput",)),
    Cls("Grant", ("GrantOutput",)),
    Cls("Revocation", ("RevocationOutput",)),
    Cls("CreditLot", ("CreditLotOutput",)),
    Cls("CreditLedgerEntry", ("CreditLedgerOutput",)),
    Cls("ScheduledCredits", ("ScheduledCreditsOutput",)),
    Cls("CreditBalance", ("CreditsOutput",)),
    Cls(
        "WebhookEndpoint",
        ("EndpointOutput", "EndpointWithSecretOutput", "EndpointDeletedOutput"),
        section="Outbound events",
    ),
    Cls("EventDelivery", ("DeliveryOutput",)),
    # `object` is the event's subject (`data["object"]`), a property: the envelope's "event" stays in `raw`.
    Cls("Event", ("EventOutput",), exclude=("object",)),
    Cls("SubscriptionMetrics", ("SubscriptionMetricsOutput",), section="Metrics"),
    Cls("RevenuePeriod", ("RevenuePeriodOutput",)),
    Cls("RevenueMetrics", ("RevenueMetricsOutput",)),
    Cls("RevenueRecognitionBalance", ("BalanceOutput",)),
    Cls("RevenueRecognitionProduct", ("ProductFiguresOutput",)),
    Cls("RevenueRecognitionCurrency", ("CurrencyFiguresOutput",)),
    Cls("RevenueRecognitionMonth", ("MonthOutput",)),
    Cls("RevenueRecognition", ("RevenueRecognitionOutput",)),
    Cls("Margin", ("MarginOutput",)),
    Cls("JournalLine", ("JournalLineOutput",), section="The journal"),
    Cls("JournalEntry", ("JournalEntryOutput",)),
)

# Response objects of the API that the client has no method for yet, so no class.
UNMAPPED: Mapping[str, str] = {
    "EntitlementSettingsApiOutput": "GET|PATCH /projects/{id}/entitlement_settings has no client method yet",
    "TestClockOutput": "the /test_clocks routes (test mode's renewal simulation) have no client method yet",
    "TestClockDeletedOutput": "DELETE /test_clocks/{id} has no client method yet",
    "SnapshotOutput": "read by tollgate_client.local from its signed bytes, never built as an object",
    "ChangesOutput": "read by tollgate_client.local's poller as plain JSON on every poll",
    "Error": "the error envelope: the client raises it as a TollgateError subclass (errors.py), not an object",
}

# Objects the schema types only as `{"type": "object"}`: their fields, from the server code named (an enum
# field's values are in ENUM_VALUES).
MANUAL_CLASSES: Mapping[str, tuple[ManualField, ...]] = {
    # billing/representations.py CartItemOutput (CartOutput.items is a SerializerMethodField).
    "CartItem": (
        ManualField("id", "str", required=True),
        ManualField("object", "str", required=True),
        ManualField("price", "str", required=True),
        ManualField("product", "str", required=True),
        ManualField("quantity", "int", required=True),
        ManualField("unit_amount", "int", required=True),
        ManualField("amount", "int", required=True),
        ManualField("currency", "str", required=True),
    ),
    # entitlements/apis.py usage_event_body (UsageEventOutput.stripe_meter is a DictField).
    "UsageMeterStatus": (
        ManualField("status", "str", required=True, nullable=True),
        ManualField("reported_at", "str", required=True, nullable=True),
        ManualField("attempts", "int", required=True),
        ManualField("error", "str", required=True, nullable=True),
    ),
    # entitlements/resolver.py: what `_Source.describe` and the grant and revocation sources carry; the fields
    # depend on the source's type, so only `type` is always there.
    "EntitlementSource": (
        ManualField("type", "str", required=True),
        ManualField("id", "str", nullable=True),
        ManualField("product", "str", nullable=True),
        ManualField("value", "Any"),
        ManualField("quantity", "int", nullable=True),
        ManualField("status", "str", nullable=True),
        ManualField("ends_at", "str", nullable=True),
        ManualField("expires_at", "str", nullable=True),
        ManualField("reason", "str", nullable=True),
        ManualField("disputed", "bool", nullable=True),
    ),
}

# Fields the schema types too loosely (an untyped object or list, or `{}`): their annotation here.
TYPE_OVERRIDES: Mapping[tuple[str, str], str] = {
    ("Project", "allowed_redirect_hosts"): "list[str]",
    ("Cart", "items"): "list[CartItem]",
    ("UsageEvent", "stripe_meter"): "UsageMeterStatus",
    ("CostTable", "models"): "dict[str, dict[str, dict[str, int]]]",
    ("Entitlement", "sources"): "list[EntitlementSource]",
}

# What a field the server may leave out means when it does, where the schema gives no default.
DEFAULTS: Mapping[tuple[str, str], str] = {
    ("EntitlementCheck", "duplicate"): "False",  # sent only when true, and not by `check`
}

# The Literal alias of each enum field, when it is not `<Class><Field>` (`PaymentStatus`): fields with the same
# values share one alias (the generator checks that they are the same).
ENUM_NAMES: Mapping[tuple[str, str], str] = {
    ("Project", "default_flow"): "DefaultPaymentFlow",
    ("Entitlement", "type"): "FeatureType",
    ("PublicPlanFeature", "type"): "FeatureType",
    ("PaymentStatusSummary", "status"): "PaymentStatus",
    ("EntitlementCheck", "type"): "FeatureType",
    ("UsageMeterStatus", "status"): "MeterReportStatus",
    ("EntitlementSource", "status"): "SubscriptionStatus",
    ("RevenueMetrics", "interval"): "RevenueInterval",
    ("PortalEligibility", "reason"): "PortalIneligibilityReason",
    ("JournalLine", "account"): "JournalAccount",
    ("ProductVersionPrice", "type"): "PriceType",
    ("ProductVersionPrice", "billing_scheme"): "PriceBillingScheme",
    ("ProductVersionPrice", "tiers_mode"): "PriceTiersMode",
    ("ProductVersionPrice", "interval"): "PriceInterval",
    ("ProductVersionPrice", "usage_type"): "PriceUsageType",
}

# The values of enum fields the schema types as a plain string: a dotted path to the server's choices (a
# TextChoices class or a tuple of strings; a blank choice is sent as null, so it is left out), or the values.
ENUM_VALUES: Mapping[tuple[str, str], str | tuple[str, ...]] = {
    ("Feature", "type"): "catalog.models.Feature.Type",
    ("Price", "type"): "catalog.models.Price.Type",
    ("Price", "interval"): "catalog.models.Price.Interval",
    ("Price", "usage_type"): "catalog.models.Price.UsageType",
    ("Price", "tax_behavior"): "catalog.models.Price.TaxBehavior",
    ("ProductVersionPrice", "type"): "catalog.models.Price.Type",
    ("ProductVersionPrice", "billing_scheme"): "catalog.models.Price.BillingScheme",
    ("ProductVersionPrice", "tiers_mode"): "catalog.models.Price.TiersMode",
    ("ProductVersionPrice", "interval"): "catalog.models.Price.Interval",
    ("ProductVersionPrice", "usage_type"): "catalog.models.Price.UsageType",
    ("CheckoutSession", "mode"): "billing.models.CheckoutSession.Mode",
    ("CheckoutSession", "status"): "billing.models.CheckoutSession.Status",
    ("Cart", "status"): "billing.models.Cart.Status",
    ("Payment", "type"): "billing.models.Payment.Type",
    ("Payment", "flow"): "billing.models.Payment.Flow",
    ("Payment", "source"): "billing.models.Payment.Source",
    ("Payment", "status"): "billing.models.Payment.Status",
    ("PaymentStatusSummary", "status"): "billing.models.Payment.Status",
    ("PublicPlanFeature", "type"): "catalog.models.Feature.Type",
    ("Coupon", "duration"): "billing.models.Coupon.Duration",
    ("SubscriptionDiscount", "duration"): "billing.models.Coupon.Duration",
    # billing/portal.py portal_eligibility (the model has no choices for it).
    ("PortalEligibility", "reason"): ("unknown_customer", "no_billing_account"),
    # Stripe's invoice statuses, mirrored as they come (the model field has no choices).
    ("Invoice", "status"): ("draft", "open", "paid", "uncollectible", "void"),
    ("CreditNote", "status"): "billing.models.CreditNote.Status",
    # Stripe's credit note types and reasons, mirrored as they come (the model fields have no choices).
    ("CreditNote", "type"): ("pre_payment", "post_payment", "mixed"),
    ("CreditNote", "reason"): ("duplicate", "fraudulent", "order_change", "product_unsatisfactory"),
    ("CreditNoteLine", "type"): ("invoice_line_item", "custom_line_item"),
    ("UsageMeterStatus", "status"): "entitlements.models.UsageEvent.MeterStatus",
    ("EntitlementCheck", "type"): "catalog.models.Feature.Type",
    ("EntitlementSource", "type"): ("subscription", "purchase", "default_product", "grant", "revocation"),
    ("EntitlementSource", "status"): "billing.models.Subscription.Status",
    ("Entitlement", "type"): "catalog.models.Feature.Type",
    ("CreditLedgerEntry", "type"): "entitlements.models.CreditLedgerEntry.Type",
    ("Event", "type"): "events.types.EVENT_TYPES",
}

CLASS_DOCS: Mapping[str, str] = {
    "UsageMeterStatus": "How a usage event fared at Stripe's billing meter (features sold with a metered price).",
    "EntitlementCheck": (
        "The answer of `entitlements.check`, `consume` and `release`.\n\n"
        "`limit` None is unlimited (or a feature that is not counted); `used` is set for `metered` (this period)\n"
        "and `allocation` (units in use); `balance` for `credits`."
    ),
    "EntitlementSource": "Where part of an entitlement comes from (the fields that apply to its `type`).",
    "ProductVersionPrice": "A price of the product as it was when the version was published.",
    "UsageWindow": "A usage window of a metered feature as it stands now (calendar windows, UTC).",
    "EntitlementCap": "A spend cap on a metered feature's overage, and how much of it is used and left.",
    "EntitlementAccountCap": "A customer's account cap across their metered features, and how much is used and left.",
    "EntitlementCredits": "A metered feature's credits waterfall: the credits that pay for use past its limit.",
    "SpendCap": "A customer's own spend cap on a metered feature (`entitlements.spend_caps`).",
    "EntitlementEntity": "The use of the entity a check or consume named, against its own limit (`per_entity`).",
    "EntityFeatureUse": "An entity's use this period of one metered feature that gives it its own limit.",
    "EntityCredits": "An entity's own credits of one credits feature whose plan lets it hold credits.",
    "Entity": "One of a customer's entities (a seat, a workspace), counted by an allocation feature (`entitlements.entities`).",
    "CreditLot": "Credits granted together (a purchase, a paid plan period or a grant), spent oldest-expiring first.",
    "Margin": (
        "One row of `margins.list`: a month's usage in one currency, by the groups asked for (None where not\n"
        "grouped), what it cost you and what it billed; money in micro-units (1 USD = 1,000,000)."
    ),
    "ScheduledCredits": "Plan credits still to come: a month or week of a paid period whose plan grants on a cadence.",
    "Event": (
        "An outbound event, from `events.retrieve`/`list` or from a verified delivery (`construct_event`).\n\n"
        '`object` is the object the event is about (`data["object"]`): the payment, subscription, … as it was\n'
        "when the event happened. `previous_attributes` holds the fields that changed, with their old values."
    ),
}

# Docstrings for the SDK's user; they replace the schema's description of the field ("" drops it).
FIELD_DOCS: Mapping[tuple[str, str], str] = {
    ("Project", "api_key"): "The project's first secret key: only in the answer to `projects.create`.",
    ("ApiKey", "api_key"): "The secret itself: only in the answer to a create, shown this once.",
    (
        "AgentKey",
        "agent_key",
    ): "The secret itself (`tg_ak_…`): only in the answer to a create, shown this once.",
    ("Payment", "checkout_url"): "Checkout flow: where to send the customer.",
    ("Payment", "client_secret"): (
        "Intent flow: confirm it with Stripe.js or a mobile SDK, with `publishable_key`."
    ),
    ("UsageMeterStatus", "status"): "None: the feature is not billed by a meter.",
    ("UsageEvent", "id"): "Your idempotency id for the event.",
    ("UsageEvent", "period_start"): "The start of the metered period the event counts in.",
    ("UsageEvent", "stripe_meter"): "",
    ("UsageBatchResult", "accepted"): "Events recorded now.",
    ("UsageBatchResult", "duplicates"): (
        "Events whose id was recorded before, or repeated within the batch: counted once."
    ),
    ("EntitlementCheck", "type"): "",
    ("EntitlementCheck", "duplicate"): (
        "`consume`/`release` only: this id was recorded before, nothing was recorded again."
    ),
    ("Entitlement", "type"): "",
    ("Entitlement", "resets_at"): (
        "`metered`: the end of the current period, when `used` starts again from 0."
    ),
    ("CreditLedgerEntry", "type"): "",
    ("CreditLedgerEntry", "amount"): "Positive when granted, negative when consumed or taken back.",
    ("CreditLedgerEntry", "reference"): (
        "What moved the credits: the consume's id, the grant's or the payment's id."
    ),
    ("WebhookEndpoint", "secret"): (
        "The signing secret: only in the answers to create and roll_secret. Keep it; it is not shown again."
    ),
    ("Event", "deliveries"): (
        "Only in API answers (`events.retrieve`, `events.list`): where the event went and how it fared."
    ),
    ("Feature", "type"): "",
    ("Price", "type"): "",
    ("Price", "interval"): "Recurring prices only.",
    ("Price", "usage_type"): "Recurring prices only.",
    ("Price", "tax_behavior"): "",
    ("ProductVersionPrice", "type"): "",
    ("JournalEntry", "kind"): "Which movement the entry posts.",
    (
        "JournalLine",
        "account",
    ): "The account (`stripe_balance`); `code` and `name` are its number and name in the chart.",
}

CLASS_BODIES: Mapping[str, str] = {
    "CustomerEntitlements": '''
    def get(self, feature: str) -> Entitlement | None:
        """The entitlement to `feature`, or None when the customer's answer does not mention it."""
        return next((e for e in self.entitlements if e.feature == feature), None)
''',
    "Event": """
    @property
    def object(self) -> dict[str, Any]:
        return dict(self.data.get("object") or {})
""",
}

MODULE_DOC = f'''"""The typed results of the API, one frozen dataclass per object of API.md.

Generated from the OpenAPI schema (`/api/schema/`) by `clients/python/generate_types.py`: do not edit it by
hand; change the server (or the generator's tables) and run `{COMMAND}`.

A field the server always sends is typed without None; one it may leave out or send as null is `… | None`
and defaults to None (a list defaults to empty). `from_dict` never fails on a missing field: it becomes None
(or an empty list). Enum fields are `Literal` aliases (`PaymentStatus`, …); a value added by a newer server
still comes through as the string it is. Money is an integer in minor units next to a lowercase `currency`;
times are ISO 8601 UTC strings, as on the wire (`datetime.fromisoformat(value)` parses them on Python 3.11+;
3.10 needs the `Z` replaced by `+00:00`). Every object keeps its full JSON in `raw` and the fields this client
does not know yet in `extra`.
"""
'''
