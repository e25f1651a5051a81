"""Product versions API: `/products/{product}/versions` (published versions with what each changed) and
`/products/{product}/draft` (the next version, edited, then published). Existing subscribers stay on the version
they bought; new checkouts, the public plans and the pricing table get the latest.
"""

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.apis.catalog import FEATURE_VALUE_HELP, AccountCapField, ProductAccountCapOutput, ProductOutput
from catalog.models import Product, ProductDraft
from catalog.selectors import product_draft_get, product_get_detailed
from catalog.services.drafts import product_draft_discard, product_draft_publish, product_draft_put
from catalog.versions import draft_changes, draft_price_changes, product_versions
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.pagination import list_body, list_serializer
from core.serializers import StrictSerializer
from projects.authentication import request_project

CHANGES_HELP = (
    "What this version changes of the one before it, per feature key (sorted): `change` (added, removed, "
    "changed), and `before` and `after`, the feature's values as `features` shows them, null on the side that "
    "does not give the feature. Empty for version 1."
)


class VersionChangeOutput(serializers.Serializer[Any]):
    feature = serializers.CharField()
    change = serializers.ChoiceField(
        choices=["added", "removed", "changed"],
        help_text="`added` (`before` null: not given), `removed` (`after` null: not given) or `changed` (either "
        "may be null: unlimited).",
    )
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class VersionPriceOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    key = serializers.CharField()
    currency = serializers.CharField()
    unit_amount = serializers.IntegerField(allow_null=True)
    billing_scheme = serializers.CharField(
        allow_null=True,
        default=None,
        help_text="`per_unit` or `tiered`; with `tiers_mode` and `tiers`, null in versions published before "
        "0.5.6.",
    )
    tiers_mode = serializers.CharField(allow_null=True, default=None)
    tiers = serializers.ListField(child=serializers.JSONField(), allow_null=True, default=None)
    type = serializers.CharField(help_text="`recurring` or `one_time`.")
    interval = serializers.CharField(allow_null=True)
    interval_count = serializers.IntegerField()
    usage_type = serializers.CharField(allow_null=True)
    stripe_price_id = serializers.CharField(allow_null=True)


class ProductVersionOutput(serializers.Serializer[Any]):
    object = serializers.SerializerMethodField()
    number = serializers.IntegerField()
    latest = serializers.BooleanField(help_text="Whether new subscribers get this version.")
    published_at = serializers.DateTimeField()
    note = serializers.CharField(allow_null=True)
    features = serializers.DictField(
        child=serializers.JSONField(allow_null=True), help_text=FEATURE_VALUE_HELP
    )
    account_cap = ProductAccountCapOutput(
        allow_null=True,
        help_text="The account cap it gives its subscribers (`account_cap` of the product as it was published; a "
        "change of the product's account cap publishes a version). Null: none.",
    )
    prices = VersionPriceOutput(
        many=True,
        help_text="The product's active prices when it was published, and those created while it was the latest.",
    )
    changes = VersionChangeOutput(many=True, help_text=CHANGES_HELP)

    def get_object(self, obj: dict[str, Any]) -> str:
        return "product_version"


PRICE_TERMS_HELP = (
    'New terms for some of the product\'s active prices, by price key: `{"unit_amount": n}` (a per-unit price) or '
    '`{"tiers": [{"up_to": n | "inf", "unit_amount"?, "flat_amount"?}, …]}` (a tiered one, its tiers mode kept). '
    "Publishing gives the prices these terms (a new Stripe price each; subscribers keep theirs until moved)."
)


class DraftPriceChangeOutput(serializers.Serializer[Any]):
    price = serializers.CharField(help_text="The price's key.")
    before = serializers.DictField(child=serializers.JSONField(allow_null=True), help_text="Its terms now.")
    after = serializers.DictField(
        child=serializers.JSONField(allow_null=True), help_text="Its drafted terms."
    )


class ProductDraftOutput(serializers.Serializer[Any]):
    object = serializers.SerializerMethodField()
    product = serializers.CharField(source="product_id")
    based_on = serializers.IntegerField(help_text="The version it was drafted on.")
    version = serializers.SerializerMethodField(help_text="The version publishing it makes.")
    note = serializers.CharField(allow_null=True)
    features = serializers.DictField(
        child=serializers.JSONField(allow_null=True), help_text=FEATURE_VALUE_HELP
    )
    changes = serializers.SerializerMethodField(
        help_text="What it changes of the latest version, per feature key, as a version's `changes`."
    )
    account_cap = ProductAccountCapOutput(
        allow_null=True,
        help_text="The account cap the version gives (null: none), as a version's `account_cap`.",
    )
    prices = serializers.DictField(
        child=serializers.DictField(child=serializers.JSONField()), help_text=PRICE_TERMS_HELP
    )
    price_changes = serializers.SerializerMethodField(
        help_text="What `prices` change of the prices' terms now, by price key (sorted)."
    )
    stale = serializers.SerializerMethodField(
        help_text="Whether a version was published since it was drafted (publishing it is refused)."
    )
    updated_at = serializers.DateTimeField()
    deleted = serializers.BooleanField(default=False, help_text="true in the answer of its discard.")

    def get_object(self, obj: ProductDraft) -> str:
        return "product_draft"

    def get_version(self, obj: ProductDraft) -> int:
        return obj.based_on + 1

    @extend_schema_field(VersionChangeOutput(many=True))
    def get_changes(self, obj: ProductDraft) -> list[dict[str, Any]]:
        return draft_changes(obj.product, obj.features)

    @extend_schema_field(DraftPriceChangeOutput(many=True))
    def get_price_changes(self, obj: ProductDraft) -> list[dict[str, Any]]:
        return draft_price_changes(obj.product, obj.prices)

    def get_stale(self, obj: ProductDraft) -> bool:
        return obj.based_on != obj.product.version

    def to_representation(self, instance: ProductDraft) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["note"] = data["note"] or None
        return data


class ProductDraftInput(StrictSerializer):
    features = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        help_text=f"{FEATURE_VALUE_HELP} Left out: the latest version's.",
    )
    account_cap = AccountCapField(
        required=False,
        allow_null=True,
        help_text="The account cap the version gives, as `PATCH /products/{product}` takes it (400 "
        "`invalid_parameter`, `parameter_missing`, `parameter_conflict`); null: none. Left out: the latest "
        "version's.",
    )
    prices = serializers.DictField(
        child=serializers.JSONField(), required=False, help_text=f"{PRICE_TERMS_HELP} Left out: none."
    )
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text="Why: shown with the published version."
    )


class ProductPublishInput(StrictSerializer):
    version = serializers.IntegerField(
        required=False,
        min_value=2,
        help_text="The version number the caller means to publish (`version` of the draft). A retry after the "
        "publish went through answers the product; another number is a 400 `version_mismatch`.",
    )


def _product(request: Request, key_or_id: str) -> Product:
    return product_get_detailed(project=request_project(request), key_or_id=key_or_id)


class ProductVersionListApi(BaseApi):
    tenant_lookup = {"product": Product}
    OutputSerializer = ProductVersionOutput

    @extend_schema(
        operation_id="product_versions_list",
        summary="List a product's versions",
        description=(
            "Every published version of the product, oldest first, with what each changed of the one before. "
            "A subscription item stays on the version in force when it was created; the latest one "
            "(`latest`, the product's `version`) is what new subscribers, the public plans and the pricing table "
            "get. Versions never change once published."
        ),
        responses=list_serializer(ProductVersionOutput, "ProductVersionList"),
    )
    def get(self, request: Request, product: str) -> Response:
        versions = product_versions(_product(request, product))
        return Response(list_body(self.OutputSerializer(versions, many=True).data, False))


class ProductDraftApi(BaseApi):
    # Named by its product's key or id (a draft's primary key is its product's).
    tenant_lookup = {"product": ProductDraft}
    InputSerializer = ProductDraftInput
    OutputSerializer = ProductDraftOutput

    @extend_schema(
        operation_id="product_draft_retrieve",
        summary="Retrieve a product's draft",
        description="The product's next version as drafted, with what it changes (404 `no_draft` without one).",
        responses=ProductDraftOutput,
    )
    def get(self, request: Request, product: str) -> Response:
        return Response(self.OutputSerializer(product_draft_get(_product(request, product))).data)

    @extend_schema(
        operation_id="product_draft_put",
        summary="Draft a product's next version",
        description=(
            "Saves `features` (the whole map, validated as `PATCH /products` validates it: 400 "
            "`unknown_feature`, `invalid_feature_value`), `account_cap` and `prices` (new terms for some of its "
            "prices: 400 "
            "`unknown_price`, `invalid_parameter`) as the product's next version, on top of its latest. "
            "Replaces an earlier draft. Nothing changes for any customer until it is published; "
            "`GET /products/{product}/draft/rerating` shows what it would have billed. Audited."
        ),
        request=ProductDraftInput,
        responses=ProductDraftOutput,
    )
    def put(self, request: Request, product: str) -> Response:
        found = _product(request, product)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product_draft_put(actor=actor_from_request(request), product=found, **serializer.validated_data)
        return Response(self.OutputSerializer(product_draft_get(_product(request, product))).data)

    @extend_schema(
        operation_id="product_draft_delete",
        summary="Discard a product's draft",
        description="Throws the draft away and answers it as it was (404 `no_draft` without one). Audited.",
        responses={200: ProductDraftOutput},
    )
    def delete(self, request: Request, product: str) -> Response:
        draft = product_draft_discard(actor=actor_from_request(request), product=_product(request, product))
        draft.deleted = True  # type: ignore[attr-defined]
        return Response(self.OutputSerializer(draft).data)


class ProductDraftPublishApi(BaseApi):
    tenant_lookup = {"product": Product}
    InputSerializer = ProductPublishInput
    OutputSerializer = ProductOutput

    @extend_schema(
        operation_id="product_draft_publish",
        summary="Publish a product's draft",
        description=(
            "Makes the draft the product's latest version: new checkouts, the public plans and the pricing "
            "table get it, and its `prices` take their new terms (new Stripe prices); existing subscribers keep "
            "the version and the Stripe prices they are on. Errors: 404 `no_draft`; 409 "
            "`draft_stale` when a version was published after the draft was made (save it again); 400 "
            "`draft_unchanged` when it gives and charges what the latest version does. Audited (`product.updated`, with the "
            "version before and after)."
        ),
        request=ProductPublishInput,
        responses=ProductOutput,
    )
    def post(self, request: Request, product: str) -> Response:
        found = _product(request, product)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        updated = product_draft_publish(
            actor=actor_from_request(request), product=found, version=serializer.validated_data.get("version")
        )
        return Response(self.OutputSerializer(_product(request, updated.pk)).data)
