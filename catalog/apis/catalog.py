"""Catalog API (API.md "Catalog"): `/features`, `/products`, `/prices` — create, list, retrieve, update.

Products and prices are named by the tenant's `key` or our `id` everywhere (URL and body); another project's
objects are missing ones (404). Outputs render enum-like fields as plain strings (their values are in the field
descriptions) so that each choice set is declared once in the schema, on its input serializer.
"""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors
from catalog.formulas import FORMULA_HELP, FORMULA_SCHEMA
from catalog.models import Feature, Price, Product
from catalog.rules import AT_CAP, MAX_FEATURE_AMOUNT, MAX_TRIAL_DAYS, MAX_UNIT_AMOUNT
from catalog.selectors import (
    feature_get,
    feature_list,
    price_search,
    product_access_days,
    product_features,
    product_get_detailed,
    product_list_detailed,
)
from catalog.services.features import feature_create, feature_update
from catalog.services.prices import price_create, price_update
from catalog.services.products import product_create, product_update
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.errors import InvalidRequest
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import CurrencyField, StrictSerializer
from projects.authentication import request_project

FEATURE_VALUE_HELP = (
    'Per feature key: `true`/`false` (boolean), an integer ≥ 0 or `null` for unlimited, or `{"per_unit": n}` '
    "multiplied by the quantity bought (metered, credits, allocation), any JSON value (static). A metered "
    'limit may let use go past it: `{"limit": n, "overage": "allowed"}` or `{"per_unit": n, "overage": '
    '"allowed"}` (checks then allow it, `remaining` goes negative, and the metered price bills it), bounded by '
    '`"cap": {"units": n} | {"amount": m}, "at_cap": "block" | "alert"`; a metered value may limit use per '
    'calendar window, `"windows": {"minute": m, "hour": …, "day": …, "week": …}`, and pay for use past its '
    'limit from a credits feature before any overage, `"credits": {"feature": key, "cost": n}` (n credits a '
    "unit). A credits value may carry "
    'unspent plan credits into the next period (`"rollover": m`) and be granted every month or week of a paid '
    'period instead of once for it (`"cadence": "month" | "week"`).'
)


def _bool_param(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if raw not in ("true", "false"):
        raise InvalidRequest(f"{name} must be true or false.", code="invalid_parameter", param=name)
    return raw == "true"


def _choice_param(request: Request, name: str, choices: list[str]) -> str | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if raw not in choices:
        raise InvalidRequest(
            f"{name} must be one of {', '.join(choices)}.", code="invalid_parameter", param=name
        )
    return raw


# --- features ---------------------------------------------------------------------------------------------------


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "required": ["amount", "currency"],
        "additionalProperties": False,
        "properties": {
            "amount": {"type": "integer", "minimum": 0, "maximum": MAX_FEATURE_AMOUNT},
            "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"},
            "at_cap": {"type": "string", "enum": list(AT_CAP)},
        },
    }
)
class AccountCapField(serializers.JSONField):
    """A product's account cap as the API takes it (`catalog.rules.account_cap_parse` checks it)."""


@extend_schema_field(FORMULA_SCHEMA)
class FormulaField(serializers.JSONField):
    """A feature's usage formula (`catalog.formulas`), checked by the service."""


class FeatureOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    key = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField(help_text="boolean | metered | credits | allocation | static")
    unit = serializers.CharField(allow_null=True)
    stripe_meter_id = serializers.CharField(
        allow_null=True, help_text="The Stripe billing meter of a metered feature billed by a metered price."
    )
    stripe_meter_event_name = serializers.CharField(allow_null=True)
    usage_formula = FormulaField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_object(self, obj: Feature) -> str:
        return "feature"

    def to_representation(self, instance: Feature) -> dict[str, Any]:
        data = super().to_representation(instance)
        for name in ("unit", "stripe_meter_id", "stripe_meter_event_name"):
            data[name] = data[name] or None
        return data


class FeatureInput(StrictSerializer):
    """Create takes every required field; update (partial) takes any of them, `key` only at its current value."""

    key = serializers.SlugField(max_length=100, help_text="Immutable.")
    name = serializers.CharField(max_length=200)
    type = serializers.ChoiceField(
        choices=Feature.Type.choices, help_text="Immutable once a product or price uses the feature."
    )
    unit = serializers.CharField(max_length=50, required=False, allow_blank=True, allow_null=True)
    usage_formula = FormulaField(
        required=False,
        allow_null=True,
        help_text=FORMULA_HELP
        + " 400 `formula_not_metered`; a change applies to events recorded from then on.",
    )


class FeatureListCreateApi(BaseApi):
    InputSerializer = FeatureInput
    OutputSerializer = FeatureOutput

    @extend_schema(
        operation_id="features_list",
        summary="List features",
        description=(
            "The project's features, newest first, optionally only those of one `type`. Reads "
            "Tollgate only; nothing at Stripe."
        ),
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("type", OpenApiTypes.STR, enum=Feature.Type.values),
        ],
        responses=list_serializer(FeatureOutput, "FeatureList"),
    )
    def get(self, request: Request) -> Response:
        queryset = feature_list(
            project=request_project(request),
            feature_type=_choice_param(request, "type", list(Feature.Type.values)),
        )
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(self.OutputSerializer(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="features_create",
        summary="Create a feature",
        description=(
            "Declares something a customer can be entitled to: `boolean` (on or off), `metered` "
            "(an allowance per billing period that resets), `credits` (a prepaid balance), "
            "`allocation` (units in use, such as seats) or `static` (a configuration value). "
            "Nothing is created at Stripe (a Stripe meter is made when a metered price bills the "
            "feature). Errors: 409 `key_taken` when the project already has a feature with this "
            "`key`."
        ),
        request=FeatureInput,
        responses={201: FeatureOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        feature = feature_create(
            project=request_project(request), actor=actor_from_request(request), **serializer.validated_data
        )
        return Response(self.OutputSerializer(feature).data, status=status.HTTP_201_CREATED)


class FeatureDetailApi(BaseApi):
    tenant_lookup = {"feature": Feature}
    InputSerializer = FeatureInput
    OutputSerializer = FeatureOutput

    @extend_schema(
        operation_id="features_retrieve",
        summary="Retrieve a feature",
        description="One feature by its `key` or `id`; 404 when the project has no such feature.",
        responses=FeatureOutput,
    )
    def get(self, request: Request, feature: str) -> Response:
        found = feature_get(project=request_project(request), key_or_id=feature)
        return Response(self.OutputSerializer(found).data)

    @extend_schema(
        operation_id="features_update",
        summary="Update a feature",
        description=(
            "Renames a feature or changes its `unit`; its `type` only while no product or price "
            "uses it (409 `feature_in_use`), its `key` never (400 `immutable_field`). Cached "
            "entitlement answers of the project are cleared. Nothing changes at Stripe."
        ),
        request=FeatureInput,
        responses=FeatureOutput,
    )
    def patch(self, request: Request, feature: str) -> Response:
        found = feature_get(project=request_project(request), key_or_id=feature)
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        updated = feature_update(
            actor=actor_from_request(request), feature=found, **serializer.validated_data
        )
        return Response(self.OutputSerializer(updated).data)


# --- products ---------------------------------------------------------------------------------------------------


ACCESS_DAYS_HELP = (
    "One-time purchases of the product grant its features for this many days from payment; null: for life "
    "(subscriptions grant them while live). A change applies to purchases made from then on."
)

PUBLIC_HELP = (
    "Listed, while active, by the unauthenticated pricing-page endpoint `GET /public/{project slug}/plans` "
    "with its active prices and feature values. Default false."
)


PRODUCT_ACCOUNT_CAP_HELP = (
    'The plan\'s account cap, `{"amount": m, "currency": "usd", "at_cap": "block" | "alert"}`: the most its '
    "customers' metered prices in that currency bill together a period (minor units; `at_cap` defaults to "
    "`block`), for each customer without an account cap of their own (`/entitlements/spend_caps`, which "
    "overrides it). A customer whose live plans declare several has the lowest amount (`block` before "
    "`alert` at the same amount) among those in a currency their metered prices bill in. A change publishes the "
    "product's next version: existing subscribers keep the cap of the version they are on until moved. Null: "
    "none. 400 "
    "`invalid_parameter`, `parameter_missing` or "
    "`parameter_conflict` (units: an account cap is in money only)."
)


class ProductAccountCapOutput(serializers.Serializer[Any]):
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    at_cap = serializers.ChoiceField(choices=["block", "alert"])


class ProductOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    active = serializers.BooleanField()
    public = serializers.BooleanField(help_text=PUBLIC_HELP)
    features = serializers.SerializerMethodField(help_text=FEATURE_VALUE_HELP)
    access_days = serializers.SerializerMethodField(help_text=ACCESS_DAYS_HELP)
    account_cap = ProductAccountCapOutput(allow_null=True, help_text=PRODUCT_ACCOUNT_CAP_HELP)
    stripe_product_id = serializers.CharField(
        allow_null=True, help_text="Null until the product exists at Stripe (a failed sync is retried)."
    )
    version = serializers.IntegerField(
        help_text="The latest version (`/products/{product}/versions`), as `features`."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_object(self, obj: Product) -> str:
        return "product"

    def get_access_days(self, obj: Product) -> int | None:
        return product_access_days(obj)

    @extend_schema_field(serializers.DictField(child=serializers.JSONField(allow_null=True)))
    def get_features(self, obj: Product) -> dict[str, Any]:
        return product_features(obj)

    def to_representation(self, instance: Product) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["description"] = data["description"] or None
        data["stripe_product_id"] = data["stripe_product_id"] or None
        return data


class ProductInput(StrictSerializer):
    """Create takes every required field; update (partial) takes any of them, `key` only at its current value.
    `features` replaces the product's whole feature map."""

    key = serializers.SlugField(max_length=100, help_text="Immutable.")
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    active = serializers.BooleanField(required=False, default=True)
    public = serializers.BooleanField(required=False, help_text=PUBLIC_HELP)
    features = serializers.DictField(
        child=serializers.JSONField(allow_null=True), required=False, help_text=FEATURE_VALUE_HELP
    )
    access_days = serializers.IntegerField(
        min_value=1, max_value=36_500, allow_null=True, required=False, help_text=ACCESS_DAYS_HELP
    )
    account_cap = AccountCapField(required=False, allow_null=True, help_text=PRODUCT_ACCOUNT_CAP_HELP)


def _product_get(request: Request, key_or_id: str, param: str | None = None) -> Product:
    return product_get_detailed(project=request_project(request), key_or_id=key_or_id, param=param)


class ProductListCreateApi(BaseApi):
    InputSerializer = ProductInput
    OutputSerializer = ProductOutput

    @extend_schema(
        operation_id="products_list",
        summary="List products",
        description=(
            "The project's products with their feature values, newest first; `active` filters on "
            "whether they are still sold."
        ),
        parameters=[*PAGINATION_PARAMETERS, OpenApiParameter("active", OpenApiTypes.BOOL)],
        responses=list_serializer(ProductOutput, "ProductList"),
    )
    def get(self, request: Request) -> Response:
        queryset = product_list_detailed(
            project=request_project(request), active=_bool_param(request, "active")
        )
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(self.OutputSerializer(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="products_create",
        summary="Create a product",
        description=(
            "Creates a product, its feature values (what buying it entitles to) and, at once, the "
            "matching Stripe Product (`stripe_product_id`; null while Stripe is unreachable, and "
            "synced later). Errors: 409 `key_taken`; 400 `unknown_feature` or "
            "`invalid_feature_value` for a bad `features` map."
        ),
        request=ProductInput,
        responses={201: ProductOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = product_create(
            project=request_project(request), actor=actor_from_request(request), **serializer.validated_data
        )
        return Response(
            self.OutputSerializer(_product_get(request, product.pk)).data, status=status.HTTP_201_CREATED
        )


class ProductDetailApi(BaseApi):
    tenant_lookup = {"product": Product}
    InputSerializer = ProductInput
    OutputSerializer = ProductOutput

    @extend_schema(
        operation_id="products_retrieve",
        summary="Retrieve a product",
        description="One product by its `key` or `id`, with its feature values and `access_days`.",
        responses=ProductOutput,
    )
    def get(self, request: Request, product: str) -> Response:
        return Response(self.OutputSerializer(_product_get(request, product)).data)

    @extend_schema(
        operation_id="products_update",
        summary="Update a product",
        description=(
            "Changes a product; `features` replaces its whole feature map, published at once as its "
            "next `version`: new subscribers get it, existing ones keep theirs. The Stripe Product is updated to match; deactivating "
            "the product archives it at Stripe and deactivates its prices (reactivating it leaves "
            "them inactive). `key` cannot change (400 `immutable_field`)."
        ),
        request=ProductInput,
        responses=ProductOutput,
    )
    def patch(self, request: Request, product: str) -> Response:
        found = _product_get(request, product)
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        updated = product_update(
            actor=actor_from_request(request), product=found, **serializer.validated_data
        )
        return Response(self.OutputSerializer(_product_get(request, updated.pk)).data)


# --- prices -----------------------------------------------------------------------------------------------------


class PriceTierOutput(serializers.Serializer[Any]):
    up_to = serializers.JSONField(help_text='An integer, or "inf" on the last tier.')
    unit_amount = serializers.IntegerField(allow_null=True, help_text="Minor units per unit in this tier.")
    flat_amount = serializers.IntegerField(allow_null=True, help_text="Minor units for reaching this tier.")


class PriceTermsOutput(serializers.Serializer[Any]):
    """What a price charges, as the catalog API and the public plans both show it."""

    currency = serializers.CharField()
    unit_amount = serializers.IntegerField(allow_null=True, help_text="Minor units; null for a tiered price.")
    billing_scheme = serializers.CharField(help_text="per_unit | tiered")
    tiers_mode = serializers.CharField(allow_null=True, help_text="graduated | volume (tiered only)")
    tiers = PriceTierOutput(
        many=True, allow_null=True, help_text='Ascending; the last is up to "inf" (tiered only).'
    )
    type = serializers.CharField(help_text="recurring | one_time")
    interval = serializers.CharField(allow_null=True, help_text="day | week | month | year (recurring only)")
    interval_count = serializers.IntegerField(allow_null=True)
    trial_days = serializers.IntegerField(allow_null=True)
    usage_type = serializers.CharField(allow_null=True, help_text="licensed | metered (recurring only)")

    def to_representation(self, instance: Price) -> dict[str, Any]:
        data = super().to_representation(instance)
        recurring = instance.type == Price.Type.RECURRING
        data["interval"] = instance.interval if recurring else None
        data["interval_count"] = instance.interval_count if recurring else None
        data["usage_type"] = instance.usage_type if recurring else None
        tiered = instance.billing_scheme == Price.BillingScheme.TIERED
        data["tiers_mode"] = instance.tiers_mode if tiered else None
        data["tiers"] = data["tiers"] if tiered else None
        return data


class PriceOutput(PriceTermsOutput):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    key = serializers.CharField()
    product = serializers.CharField(source="product.key", help_text="The product's key.")
    meter = serializers.CharField(allow_null=True, help_text="The key of the metered feature it bills.")
    tax_behavior = serializers.CharField(help_text="unspecified | inclusive | exclusive")
    active = serializers.BooleanField()
    stripe_product_id = serializers.CharField(allow_null=True, source="product.stripe_product_id")
    stripe_price_id = serializers.CharField(
        allow_null=True,
        help_text="The current Stripe price; null until it exists (after an amount change, until the new one does).",
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_object(self, obj: Price) -> str:
        return "price"

    def get_fields(self) -> dict[str, Any]:
        # The price's identity first, then its terms (declared on the base class, so DRF lists them first).
        fields = super().get_fields()
        lead = ("id", "object", "key", "product")
        return {**{name: fields[name] for name in lead}, **{k: v for k, v in fields.items() if k not in lead}}

    def to_representation(self, instance: Price) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["meter"] = instance.meter.key if instance.meter else None
        data["stripe_product_id"] = data["stripe_product_id"] or None
        data["stripe_price_id"] = data["stripe_price_id"] or None
        return data


class PriceInput(StrictSerializer):
    """Create takes every required field; update (partial) takes currency, unit_amount, tax_behavior (each
    change creates a new Stripe price), trial_days and active; the other fields only at their current value."""

    key = serializers.SlugField(max_length=100, help_text="Immutable.")
    product = serializers.CharField(max_length=100, help_text="The product's key or id. Immutable.")
    currency = CurrencyField()
    unit_amount = serializers.IntegerField(
        min_value=0, max_value=MAX_UNIT_AMOUNT, required=False, help_text="Minor units; per_unit prices only."
    )
    billing_scheme = serializers.ChoiceField(
        choices=Price.BillingScheme.choices,
        required=False,
        help_text="per_unit (default) or tiered. Immutable.",
    )
    tiers_mode = serializers.ChoiceField(
        choices=Price.TiersMode.choices,
        required=False,
        help_text="Tiered prices: graduated or volume. Immutable.",
    )
    tiers = serializers.JSONField(
        required=False,
        help_text='Tiered prices: [{"up_to": n | "inf", "unit_amount"?, "flat_amount"?}], ascending, the last "inf".',
    )
    type = serializers.ChoiceField(choices=Price.Type.choices, help_text="Immutable.")
    interval = serializers.ChoiceField(
        choices=Price.Interval.choices, required=False, allow_null=True, help_text="Required when recurring."
    )
    interval_count = serializers.IntegerField(min_value=1, required=False)
    trial_days = serializers.IntegerField(
        min_value=1, max_value=MAX_TRIAL_DAYS, required=False, allow_null=True
    )
    usage_type = serializers.ChoiceField(choices=Price.UsageType.choices, required=False)
    meter = serializers.CharField(
        max_length=100,
        required=False,
        allow_null=True,
        help_text="Metered prices: the key of the metered feature whose usage they bill.",
    )
    tax_behavior = serializers.ChoiceField(choices=Price.TaxBehavior.choices, required=False)
    active = serializers.BooleanField(required=False, default=True)


class PriceListCreateApi(BaseApi):
    InputSerializer = PriceInput
    OutputSerializer = PriceOutput

    @extend_schema(
        operation_id="prices_list",
        summary="List prices",
        description=(
            "The project's prices, newest first, filtered by `active`, `product` (key or id) and "
            "`type` (`recurring` or `one_time`)."
        ),
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("active", OpenApiTypes.BOOL),
            OpenApiParameter("product", OpenApiTypes.STR, description="A product's key or id."),
            OpenApiParameter("type", OpenApiTypes.STR, enum=Price.Type.values),
        ],
        responses=list_serializer(PriceOutput, "PriceList"),
    )
    def get(self, request: Request) -> Response:
        queryset = price_search(
            project=request_project(request),
            active=_bool_param(request, "active"),
            product=request.query_params.get("product"),
            price_type=_choice_param(request, "type", list(Price.Type.values)),
        )
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(self.OutputSerializer(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="prices_create",
        summary="Create a price",
        description=(
            "Creates a price of a product and the Stripe Price carrying its `key` as lookup key "
            "(a metered price also gets the Stripe billing meter of its feature). Amounts are "
            "integer minor units. Errors: 409 `key_taken`, `product_inactive`; 400 "
            "`invalid_meter`; 404 for an unknown `product`."
        ),
        request=PriceInput,
        responses={201: PriceOutput},
    )
    def post(self, request: Request) -> Response:
        project = request_project(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        product = selectors.product_get(project=project, key_or_id=data.pop("product"), param="product")
        price = price_create(project=project, actor=actor_from_request(request), product=product, **data)
        return Response(self.OutputSerializer(price).data, status=status.HTTP_201_CREATED)


class PriceDetailApi(BaseApi):
    tenant_lookup = {"price": Price}
    InputSerializer = PriceInput
    OutputSerializer = PriceOutput

    @extend_schema(
        operation_id="prices_retrieve",
        summary="Retrieve a price",
        description="One price by its `key` or `id`, with its current Stripe Price id.",
        responses=PriceOutput,
    )
    def get(self, request: Request, price: str) -> Response:
        found = selectors.price_get(project=request_project(request), key_or_id=price)
        return Response(self.OutputSerializer(found).data)

    @extend_schema(
        operation_id="prices_update",
        summary="Update a price",
        description=(
            "Stripe prices cannot change amount, currency or tax behavior: changing "
            "`unit_amount`, `currency` or `tax_behavior` creates a new Stripe Price that takes "
            "over the lookup key, while existing subscribers keep the old one until their "
            "subscription changes; an active price's new terms publish its product's next version "
            "with them (the version's note says so). `trial_days` and `active` change in place. The "
            "other fields only accept their current value (400 `immutable_field`)."
        ),
        request=PriceInput,
        responses=PriceOutput,
    )
    def patch(self, request: Request, price: str) -> Response:
        project = request_project(request)
        found = selectors.price_get(project=project, key_or_id=price)
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "product" in data:
            data["product"] = selectors.product_get(
                project=project, key_or_id=data["product"], param="product"
            )
        updated = price_update(actor=actor_from_request(request), price=found, **data)
        return Response(self.OutputSerializer(updated).data)
