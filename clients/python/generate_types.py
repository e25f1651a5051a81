"""Writes `tollgate_client/types.py` from the OpenAPI schema Tollgate serves at `/api/schema/`.

    .venv/bin/python clients/python/generate_types.py           # rewrite types.py
    .venv/bin/python clients/python/generate_types.py --check   # exit 1 if types.py is out of date

Run from a checkout of Tollgate: the schema is rendered in-process by the server's own code (Django's test
client, `config.settings.test` unless DJANGO_SETTINGS_MODULE says otherwise). `tests/clients/` regenerates
the file from the served schema and fails when it differs, so a server change that moves a result's shape
fails until this is run.

The schema is the source of truth for each result: its fields and their order, their types, whether the server
always sends them and whether they may be null, its enums and its field descriptions. The tables below add
only what the schema does not say:

- which component is which SDK class (`CLASSES`; a class may merge components that differ only by a field
  sent once, such as a project and the project with its first key);
- the values of enum fields the server documents as plain strings (`ENUM_VALUES`), read from the server's
  model choices where there are any, so a new status there shows up here too;
- the shapes of nested objects the schema leaves untyped (`TYPE_OVERRIDES`, `MANUAL_CLASSES`), and what a
  field the server may leave out means when it does, where the schema gives no default (`DEFAULTS`);
- docstrings for the SDK's user and a few convenience methods (`CLASS_DOCS`, `FIELD_DOCS`, `CLASS_BODIES`).

Every table entry is checked against the schema: an entry that names a field the schema no longer has, or
that the schema now types itself, is an error, as is a response object of the API that no class covers.
The output is deterministic and already in `ruff format` style.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TYPES_PATH = HERE / "tollgate_client" / "types.py"
REPO_ROOT = HERE.parent.parent
COMMAND = ".venv/bin/python clients/python/generate_types.py"
LINE_LENGTH = 110


class SchemaError(Exception):
    """The schema and the generator's tables disagree: the message says which entry to change."""


# --- the tables -------------------------------------------------------------------------------------------


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
    Cls("Feature", ("FeatureOutput",), section="Catalog"),
    Cls("Product", ("ProductOutput",)),
    Cls("PriceTier", ("PriceTierOutput",)),
    Cls("Price", ("PriceOutput",)),
    Cls("PublicPlanPrice", ("PublicPriceOutput",)),
    Cls("PublicPlanFeature", ("PublicFeatureOutput",)),
    Cls("PublicPlan", ("PublicProductOutput",)),
    Cls("Customer", ("CustomerOutput",), section="Customers, checkout, carts, payments, portal"),
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
    Cls("Subscription", ("SubscriptionOutput",)),
    Cls("SubscriptionPreviewLine", ("SubscriptionPreviewLineOutput",)),
    Cls("SubscriptionPreview", ("SubscriptionPreviewOutput",)),
    Cls("InvoiceLine", ("InvoiceLineOutput",)),
    Cls("Invoice", ("InvoiceOutput",)),
    Cls("UsageMeterStatus", (), section="Usage, entitlements, credits"),
    Cls("UsageEvent", ("UsageEventOutput",)),
    Cls("UsageBatchResult", ("UsageBatchOutput",)),
    Cls("UsageSummary", ("UsageSummaryOutput",)),
    Cls("EntitlementCheck", ("CheckOutput", "ConsumeOutput")),
    Cls("EntitlementSource", ()),
    Cls("Entitlement", ("EntitlementOutput",)),
    Cls("CustomerEntitlements", ("EntitlementsOutput",)),
    Cls("Grant", ("GrantOutput",)),
    Cls("Revocation", ("RevocationOutput",)),
    Cls("CreditLot", ("CreditLotOutput",)),
    Cls("CreditLedgerEntry", ("CreditLedgerOutput",)),
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
)

# Response objects of the API that the client has no method for yet, so no class.
UNMAPPED: Mapping[str, str] = {
    "EntitlementSettingsApiOutput": "GET|PATCH /projects/{id}/entitlement_settings has no client method yet",
    "TestClockOutput": "the /test_clocks routes (test mode's renewal simulation) have no client method yet",
    "TestClockDeletedOutput": "DELETE /test_clocks/{id} has no client method yet",
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
    ("Entitlement", "sources"): "list[EntitlementSource]",
}

# What a field the server may leave out means when it does, where the schema gives no default.
DEFAULTS: Mapping[tuple[str, str], str] = {
    ("EntitlementCheck", "duplicate"): "False",  # sent only when true, and not by `check`
}

# The Literal alias of each enum field, when it is not `<Class><Field>` (`PaymentStatus`): fields with the same
# values share one alias (the generator checks that they are the same).
ENUM_NAMES: Mapping[tuple[str, str], str] = {
    ("Project", "default_flow"): "PaymentFlow",
    ("Entitlement", "type"): "FeatureType",
    ("PublicPlanFeature", "type"): "FeatureType",
    ("PaymentStatusSummary", "status"): "PaymentStatus",
    ("EntitlementCheck", "type"): "FeatureType",
    ("UsageMeterStatus", "status"): "MeterReportStatus",
    ("EntitlementSource", "status"): "SubscriptionStatus",
    ("RevenueMetrics", "interval"): "RevenueInterval",
    ("PortalEligibility", "reason"): "PortalIneligibilityReason",
}

# The values of enum fields the schema types as a plain string: a dotted path to the server's choices (a
# TextChoices class or a tuple of strings; a blank choice is sent as null, so it is left out), or the values.
ENUM_VALUES: Mapping[tuple[str, str], str | tuple[str, ...]] = {
    ("Feature", "type"): "entitlements.models.Feature.Type",
    ("Price", "type"): "billing.models.Price.Type",
    ("Price", "interval"): "billing.models.Price.Interval",
    ("Price", "usage_type"): "billing.models.Price.UsageType",
    ("Price", "tax_behavior"): "billing.models.Price.TaxBehavior",
    ("CheckoutSession", "mode"): "billing.models.CheckoutSession.Mode",
    ("CheckoutSession", "status"): "billing.models.CheckoutSession.Status",
    ("Cart", "status"): "billing.models.Cart.Status",
    ("Payment", "type"): "billing.models.Payment.Type",
    ("Payment", "flow"): "billing.models.Payment.Flow",
    ("Payment", "source"): "billing.models.Payment.Source",
    ("Payment", "status"): "billing.models.Payment.Status",
    ("PaymentStatusSummary", "status"): "billing.models.Payment.Status",
    ("PublicPlanFeature", "type"): "entitlements.models.Feature.Type",
    ("Coupon", "duration"): "billing.models.Coupon.Duration",
    ("SubscriptionDiscount", "duration"): "billing.models.Coupon.Duration",
    # billing/portal.py portal_eligibility (the model has no choices for it).
    ("PortalEligibility", "reason"): ("unknown_customer", "no_billing_account"),
    # Stripe's invoice statuses, mirrored as they come (the model field has no choices).
    ("Invoice", "status"): ("draft", "open", "paid", "uncollectible", "void"),
    ("UsageMeterStatus", "status"): "entitlements.models.UsageEvent.MeterStatus",
    ("EntitlementCheck", "type"): "entitlements.models.Feature.Type",
    ("EntitlementSource", "type"): ("subscription", "purchase", "default_product", "grant", "revocation"),
    ("EntitlementSource", "status"): "billing.models.Subscription.Status",
    ("Entitlement", "type"): "entitlements.models.Feature.Type",
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
    "CreditLot": "Credits granted together (a purchase, a paid plan period or a grant), spent oldest-expiring first.",
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


# --- reading the schema -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Attribute:
    name: str
    annotation: str
    required: bool
    nullable: bool
    default: str | None = None
    doc: str = ""


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _is_null_enum(schema: Mapping[str, Any]) -> bool:
    return schema.get("enum") == [None]


class Generator:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.components: Mapping[str, Any] = schema.get("components", {}).get("schemas", {})
        self.paths: Mapping[str, Any] = schema.get("paths", {})
        self.class_of: dict[str, str] = {}
        for cls in CLASSES:
            for component in cls.components:
                if component not in self.components:
                    raise SchemaError(f"CLASSES: {cls.name} names component {component}, not in the schema.")
                self.class_of.setdefault(component, cls.name)
        self.aliases: dict[str, tuple[str, ...]] = {}
        self.alias_users: dict[str, str] = {}

    # enums

    def _alias(self, cls: str, field: str, values: Sequence[str]) -> str:
        name = ENUM_NAMES.get((cls, field)) or cls + "".join(part.title() for part in field.split("_"))
        known = self.aliases.get(name)
        if known is not None and known != tuple(values):
            raise SchemaError(
                f"{cls}.{field} and {self.alias_users[name]} share the alias {name} but have different values: "
                f"{list(values)} and {list(known)} (give one of them another name in ENUM_NAMES)."
            )
        self.aliases[name] = tuple(values)
        self.alias_users.setdefault(name, f"{cls}.{field}")
        return name

    @staticmethod
    def _server_values(source: str | tuple[str, ...]) -> list[str]:
        if isinstance(source, tuple):
            return list(source)
        obj: Any = None
        parts = source.split(".")
        # The longest importable prefix is the module, the rest attributes (`billing.models.Payment.Status`).
        for cut in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            for attribute in parts[cut:]:
                obj = getattr(obj, attribute, None)
            break
        if obj is None:
            raise SchemaError(f"ENUM_VALUES: cannot import {source}.")
        values = [str(value) for value in (obj.values if hasattr(obj, "values") else obj)]
        return [value for value in values if value]

    # types

    def _annotation(self, cls: str, field: str, prop: Mapping[str, Any]) -> tuple[str, bool]:
        """The Python annotation of a property (without `| None`) and whether the schema lets it be null."""
        nullable = bool(prop.get("nullable"))
        for combinator in ("oneOf", "anyOf", "allOf"):
            if combinator in prop:
                arms = [arm for arm in prop[combinator] if not _is_null_enum(self._resolve(arm))]
                nullable = nullable or len(arms) < len(prop[combinator])
                if len(arms) != 1:
                    return "Any", nullable
                inner, inner_nullable = self._annotation(cls, field, arms[0])
                return inner, nullable or inner_nullable
        if "$ref" in prop:
            name = _ref_name(prop["$ref"])
            target = self.components.get(name)
            if target is None:
                raise SchemaError(f"{cls}.{field} refers to {name}, which the schema does not define.")
            if "enum" in target:
                values = [value for value in target["enum"] if value is not None]
                nullable = nullable or None in target["enum"] or bool(target.get("nullable"))
                return self._alias(cls, field, values), nullable
            if name not in self.class_of:
                raise SchemaError(
                    f"{cls}.{field} is a {name} object, which no class covers: add it to CLASSES."
                )
            return self.class_of[name], nullable
        if "enum" in prop:
            values = [value for value in prop["enum"] if value is not None]
            return self._alias(cls, field, values), nullable or None in prop["enum"]
        kind = prop.get("type")
        if kind == "string":
            return "str", nullable
        if kind == "integer":
            return "int", nullable
        if kind == "number":
            return "float", nullable
        if kind == "boolean":
            return "bool", nullable
        if kind == "array":
            item, item_nullable = self._annotation(cls, field, prop.get("items", {}))
            return f"list[{item} | None]" if item_nullable and item != "Any" else f"list[{item}]", nullable
        if kind == "object":
            extra = prop.get("additionalProperties")
            if isinstance(extra, Mapping) and extra:
                value, value_nullable = self._annotation(cls, field, extra)
                if value_nullable and value != "Any":
                    value = f"{value} | None"
                return f"dict[str, {value}]", nullable
            return "dict[str, Any]", nullable
        return "Any", nullable

    def _resolve(self, prop: Mapping[str, Any]) -> Mapping[str, Any]:
        if "$ref" in prop:
            resolved: Mapping[str, Any] = self.components.get(_ref_name(prop["$ref"]), {})
            return resolved
        return prop

    # classes

    def attributes(self, cls: Cls) -> list[Attribute]:
        if not cls.components:
            return [self._manual(cls.name, spec) for spec in MANUAL_CLASSES[cls.name]]
        merged: dict[str, dict[str, Any]] = {}
        required_in: dict[str, int] = {}
        for component in cls.components:
            schema = self.components[component]
            required = set(schema.get("required", ()))
            for name, prop in schema.get("properties", {}).items():
                if name in merged and merged[name] != prop:
                    raise SchemaError(
                        f"{cls.name}: {name} differs between {', '.join(cls.components)}; they cannot be merged."
                    )
                merged[name] = prop
                required_in[name] = required_in.get(name, 0) + (name in required)
        for excluded in cls.exclude:
            if excluded not in merged:
                raise SchemaError(f"CLASSES: {cls.name} excludes {excluded}, which the schema does not have.")
        attributes = []
        for name, prop in merged.items():
            if name in cls.exclude:
                continue
            attributes.append(
                self._attribute(cls.name, name, prop, required=required_in[name] == len(cls.components))
            )
        return attributes

    def _attribute(self, cls: str, name: str, prop: Mapping[str, Any], *, required: bool) -> Attribute:
        annotation, nullable = self._annotation(cls, name, prop)
        key = (cls, name)
        if key in ENUM_VALUES:
            if annotation != "str":
                raise SchemaError(
                    f"ENUM_VALUES: the schema now types {cls}.{name} as {annotation}: drop its entry."
                )
            annotation = self._alias(cls, name, self._server_values(ENUM_VALUES[key]))
        if key in TYPE_OVERRIDES:
            if "Any" not in annotation:
                raise SchemaError(
                    f"TYPE_OVERRIDES: the schema now types {cls}.{name} as {annotation}: drop its entry."
                )
            annotation = TYPE_OVERRIDES[key]
        attribute = Attribute(name, annotation, required=required, nullable=nullable)
        if not required and "default" in prop and not nullable:
            attribute.default = (
                json.dumps(prop["default"]) if isinstance(prop["default"], str) else repr(prop["default"])
            )
        if key in DEFAULTS:
            if required or attribute.default is not None:
                raise SchemaError(
                    f"DEFAULTS: the schema now says {cls}.{name} is always sent or has a default: drop its entry."
                )
            attribute.default = DEFAULTS[key]
        description = " ".join(str(prop.get("description", "")).split())
        attribute.doc = FIELD_DOCS.get(key, description)
        return attribute

    def _manual(self, cls: str, spec: ManualField) -> Attribute:
        annotation = spec.annotation
        if (cls, spec.name) in ENUM_VALUES:
            annotation = self._alias(cls, spec.name, self._server_values(ENUM_VALUES[(cls, spec.name)]))
        return Attribute(
            spec.name,
            annotation,
            required=spec.required,
            nullable=spec.nullable,
            doc=FIELD_DOCS.get((cls, spec.name), ""),
        )

    # coverage

    def check_coverage(self) -> None:
        """Every object an endpoint answers (directly or as the items of a list) has a class or a reason."""
        covered = set(self.class_of) | set(UNMAPPED)
        for path, operations in sorted(self.paths.items()):
            for method, operation in sorted(operations.items()):
                if not isinstance(operation, Mapping):
                    continue
                for response in operation.get("responses", {}).values():
                    body = response.get("content", {}).get("application/json", {}).get("schema")
                    for component in self._answered(body or {}):
                        if component not in covered:
                            raise SchemaError(
                                f"{method.upper()} {path} answers {component}, which no class covers: add it "
                                "to CLASSES (or to UNMAPPED, with the reason)."
                            )
        for name in UNMAPPED:
            if name not in self.components:
                raise SchemaError(f"UNMAPPED: {name} is no longer in the schema: drop its entry.")
        tables = [ENUM_VALUES, TYPE_OVERRIDES, ENUM_NAMES, FIELD_DOCS, DEFAULTS]
        for cls, field in [key for table in tables for key in table]:
            if not self._has_field(cls, field):
                raise SchemaError(f"{cls}.{field} is in a table but not in the schema: drop its entry.")

    def _answered(self, body: Mapping[str, Any]) -> Iterable[str]:
        if "$ref" not in body:
            return []
        name = _ref_name(body["$ref"])
        data = self.components.get(name, {}).get("properties", {}).get("data", {})
        if name not in self.class_of and data.get("type") == "array" and "$ref" in data.get("items", {}):
            return [_ref_name(data["items"]["$ref"])]  # a list envelope {"object": "list", "data": [...]}
        return [name]

    def _has_field(self, cls_name: str, field: str) -> bool:
        if cls_name in MANUAL_CLASSES:
            return any(spec.name == field for spec in MANUAL_CLASSES[cls_name])
        cls = next((c for c in CLASSES if c.name == cls_name), None)
        if cls is None:
            return False
        return any(field in self.components[c].get("properties", {}) for c in cls.components)


# --- writing the module -----------------------------------------------------------------------------------


def _docstring(text: str, indent: str) -> list[str]:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):
        text = text[:-1] + '\\"'
    lines = text.split("\n")
    if len(lines) == 1:
        return [f'{indent}"""{text}"""']
    out = [f'{indent}"""{lines[0]}']
    out += [f"{indent}{line}" if line else "" for line in lines[1:]]
    out.append(f'{indent}"""')
    return out


def _alias_lines(name: str, values: Sequence[str]) -> list[str]:
    quoted = [json.dumps(value) for value in values]
    line = f"{name} = Literal[{', '.join(quoted)}]"
    if len(line) <= LINE_LENGTH:
        return [line]
    return [f"{name} = Literal[", *(f"    {value}," for value in quoted), "]"]


def _attribute_lines(attribute: Attribute) -> list[str]:
    annotation = attribute.annotation
    is_list = annotation.startswith("list[")
    optional = attribute.nullable or (not attribute.required and attribute.default is None and not is_list)
    if optional and annotation != "Any":
        annotation = f"{annotation} | None"
    if attribute.required:
        line = f"    {attribute.name}: {annotation}"
    elif attribute.default is not None:
        line = f"    {attribute.name}: {annotation} = {attribute.default}"
    elif is_list and not attribute.nullable:
        line = f"    {attribute.name}: {annotation} = field(default_factory=list)"
    else:
        line = f"    {attribute.name}: {annotation} = None"
    lines = [line]
    if attribute.doc:
        lines += _docstring(attribute.doc, "    ")
    return lines


def render(schema: Mapping[str, Any]) -> str:
    """The text of types.py for this schema (needs Django set up: some enum values are the server's)."""
    generator = Generator(schema)
    generator.check_coverage()
    bodies: list[list[str]] = []
    for cls in CLASSES:
        lines: list[str] = []
        if cls.section:
            lines += [f"# {cls.section}", "", ""]
        lines += ["@dataclass(frozen=True, kw_only=True)", f"class {cls.name}(TollgateObject):"]
        if cls.name in CLASS_DOCS:
            lines += _docstring(CLASS_DOCS[cls.name], "    ")
            lines.append("")
        for attribute in generator.attributes(cls):
            lines += _attribute_lines(attribute)
        if cls.name in CLASS_BODIES:
            lines += CLASS_BODIES[cls.name].rstrip("\n").split("\n")
        bodies.append(lines)

    text = "\n\n\n".join("\n".join(lines) for lines in bodies)
    uses_field = "field(default_factory" in text
    uses_any = re.search(r"\bAny\b", text) is not None

    exported = sorted([cls.name for cls in CLASSES] + list(generator.aliases) + ["TollgateObject"])
    head = [MODULE_DOC, "from __future__ import annotations", ""]
    head.append(
        "from dataclasses import dataclass, field" if uses_field else "from dataclasses import dataclass"
    )
    head.append("from typing import Any, Literal" if uses_any else "from typing import Literal")
    head += ["", "from tollgate_client._objects import TollgateObject", "", "__all__ = ["]
    head += [f'    "{name}",' for name in exported]
    head += ["]", "", "", "# Enums: the values each enum field may have (a newer server may send others)", ""]
    for name, values in sorted(generator.aliases.items()):
        head += _alias_lines(name, values)
    return "\n".join(head) + "\n\n\n" + text + "\n"


# --- running it -------------------------------------------------------------------------------------------


def served_schema() -> dict[str, Any]:
    """The schema the app serves at /api/schema/, rendered in-process (Django must be set up)."""
    from django.test import Client

    response = Client().get("/api/schema/", {"format": "json"})
    if response.status_code != 200:
        raise SchemaError(f"GET /api/schema/ answered {response.status_code}.")
    schema: dict[str, Any] = json.loads(response.content)
    return schema


def stale_message(current: str, expected: str) -> str:
    diff = difflib.unified_diff(
        current.splitlines(keepends=True),
        expected.splitlines(keepends=True),
        "types.py (committed)",
        "types.py (from the schema)",
        n=1,
    )
    return (
        f"{TYPES_PATH.relative_to(REPO_ROOT)} does not match the schema the server serves: run `{COMMAND}` "
        f"and commit the result.\n{''.join(list(diff)[:80])}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only check that types.py is up to date")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    try:
        expected = render(served_schema())
    except SchemaError as exc:
        sys.stderr.write(f"generate_types: {exc}\n")
        return 2
    current = TYPES_PATH.read_text(encoding="utf-8") if TYPES_PATH.exists() else ""
    if args.check:
        if current != expected:
            sys.stderr.write(stale_message(current, expected) + "\n")
            return 1
        return 0
    if current != expected:
        TYPES_PATH.write_text(expected, encoding="utf-8")
        sys.stdout.write(f"wrote {TYPES_PATH.relative_to(REPO_ROOT)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
