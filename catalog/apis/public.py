"""The public plans API (API.md "Plans"): `GET /public/{project slug}/plans`, read without a key by pricing pages.

No authentication (a key sent along is ignored), a rate limit per client address, and only what the project marks
`public`: keys, names, amounts and feature values, never a Stripe id or one of our ids.
"""

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.apis.catalog import FEATURE_VALUE_HELP, PriceTermsOutput, ProductAccountCapOutput
from catalog.models import Product, ProductFeature
from catalog.public import public_plans_get, public_plans_keys
from catalog.rules import FeatureValue
from core.base_api import BaseApi
from core.pagination import list_body, list_serializer
from core.throttling import PublicRateThrottle

CACHE_CONTROL = "public, max-age=60"


class PublicPriceOutput(PriceTermsOutput):
    key = serializers.CharField(help_text="The price's key: what a checkout is started with.")


class PublicFeatureOutput(serializers.Serializer[Any]):
    key = serializers.CharField(source="feature.key")
    name = serializers.CharField(source="feature.name")
    type = serializers.CharField(
        source="feature.type", help_text="boolean | metered | credits | allocation | static"
    )
    # Not `get_value`: that name is the serializer's own (Field.get_value).
    value = serializers.SerializerMethodField(method_name="value_of", help_text=FEATURE_VALUE_HELP)

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def value_of(self, obj: ProductFeature) -> Any:
        return FeatureValue.of(obj).api()


class PublicProductOutput(serializers.Serializer[Any]):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    prices = PublicPriceOutput(many=True, help_text="Its active prices, by currency, cheapest first.")
    features = serializers.SerializerMethodField()
    account_cap = ProductAccountCapOutput(
        allow_null=True,
        help_text="The plan's account cap: the most its metered prices bill together a period; null: none.",
    )

    @extend_schema_field(PublicFeatureOutput(many=True))
    def get_features(self, obj: Product) -> list[dict[str, Any]]:
        rows = sorted(obj.feature_values.all(), key=lambda row: row.feature.key)
        return list(PublicFeatureOutput(rows, many=True).data)

    def to_representation(self, instance: Product) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["description"] = data["description"] or None
        return data


class PublicPlansApi(BaseApi):
    """Unauthenticated on purpose: the answer is the part of the catalog the project chose to publish. The
    rendered answer is cached (`catalog.public`); the rate limiter reads it in its own round trip."""

    authentication_classes: Sequence[type] = []
    permission_classes: Sequence[type] = [AllowAny]
    throttle_classes: Sequence[type] = [PublicRateThrottle]
    OutputSerializer = PublicProductOutput

    def read_ahead_keys(self, request: Request) -> Sequence[str]:
        return public_plans_keys(slug=self.kwargs.get("slug", ""))

    @extend_schema(
        operation_id="public_plans_list",
        summary="List a project's public plans",
        description=(
            "What a pricing page shows, read without an API key (one sent along is ignored): the "
            "project's active products marked `public`, cheapest first, each with its active "
            "prices and its feature values. Start a checkout with a price's `key`. Cached for "
            "60 seconds by browsers and CDNs (`Cache-Control: public, max-age=60`); a catalog "
            "change is visible to the next request that reaches Tollgate. Rate-limited per client "
            "address (429 with `Retry-After`). An unknown or suspended project is a 404."
        ),
        auth=[],
        responses=list_serializer(PublicProductOutput, "PublicPlanList"),
    )
    def get(self, request: Request, slug: str) -> Response:
        body = public_plans_get(slug=slug, render=self._render, read_ahead=self.read_ahead)
        response = Response(list_body(body, has_more=False))
        response["Cache-Control"] = CACHE_CONTROL
        # Pricing pages fetch this from the tenant's own site: any origin may read it (no credentials).
        response["Access-Control-Allow-Origin"] = "*"
        return response

    def _render(self, products: QuerySet[Product]) -> list[dict[str, Any]]:
        return list(self.OutputSerializer(products, many=True).data)
