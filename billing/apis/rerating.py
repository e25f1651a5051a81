"""`GET /products/{product}/draft/rerating` (#52 point 2): what a product's draft would have billed its
subscribers' last closed periods, against what Stripe invoiced them, and the entitlements it would take away or
lower below their use (`billing.rerating`). Reads only."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.rerating import draft_rerating
from catalog.models import ProductDraft
from catalog.selectors import product_draft_get, product_get_detailed
from core.base_api import BaseApi
from core.errors import InvalidRequest
from projects.authentication import request_project

DEFAULT_PERIODS = 3
MAX_PERIODS = 24
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_MINOR = "Minor units of `currency`"


class ReratedPeriodOutput(serializers.Serializer[Any]):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    today = serializers.IntegerField(help_text=f"{_MINOR}: what Stripe's invoices bill the period.")
    draft = serializers.IntegerField(help_text=f"{_MINOR}: the same lines at the draft's prices.")


class EntitlementChangeOutput(serializers.Serializer[Any]):
    feature = serializers.CharField()
    change = serializers.ChoiceField(
        choices=["lost", "lowered"],
        help_text="`lost`: given now, not by the draft (or a boolean turned off); `lowered`: a smaller limit.",
    )
    before = serializers.JSONField(
        allow_null=True,
        help_text="The value now (`lost`: as `features` shows it), or the limit now (`lowered`: per-unit values "
        "at the subscriber's quantity; null: unlimited).",
    )
    after = serializers.IntegerField(
        allow_null=True, help_text="The draft's limit (`lowered`); null for `lost`."
    )
    used = serializers.IntegerField(
        allow_null=True,
        help_text="A metered feature's largest period use since the first re-rated period began; an "
        "allocation's units in use; null for the others.",
    )
    below_use = serializers.BooleanField(help_text="Whether the draft's limit is under `used`.")


class ReratedSubscriptionOutput(serializers.Serializer[Any]):
    customer = serializers.CharField(help_text="Your `external_id` of the customer.")
    subscription = serializers.CharField()
    version = serializers.IntegerField(help_text="The version of the product the subscription is on.")
    currency = serializers.CharField()
    quantity = serializers.IntegerField(
        help_text="Licences of the product held (per-unit values scale by it)."
    )
    periods = ReratedPeriodOutput(many=True, help_text="The closed periods re-rated, oldest first.")
    today = serializers.IntegerField(help_text=f"{_MINOR}: the periods as invoiced.")
    draft = serializers.IntegerField(help_text=f"{_MINOR}: the periods under the draft.")
    difference = serializers.IntegerField(help_text="`draft` − `today`.")
    entitlements = EntitlementChangeOutput(
        many=True, help_text="What the draft takes away or lowers of what the subscription's version gives."
    )


class ReratingCohortOutput(serializers.Serializer[Any]):
    version = serializers.IntegerField()
    currency = serializers.CharField()
    subscriptions = serializers.IntegerField()
    periods = serializers.IntegerField(help_text="Closed periods re-rated, all subscriptions together.")
    today = serializers.IntegerField()
    draft = serializers.IntegerField()
    difference = serializers.IntegerField()
    higher = serializers.IntegerField(help_text="Subscriptions the draft bills more.")
    lower = serializers.IntegerField(help_text="Subscriptions the draft bills less.")
    unchanged = serializers.IntegerField()
    losing_features = serializers.IntegerField(help_text="Subscriptions that would lose a feature.")
    below_use = serializers.IntegerField(help_text="Subscriptions with a lowered limit under their use.")


class ReratingTotalOutput(serializers.Serializer[Any]):
    currency = serializers.CharField()
    subscriptions = serializers.IntegerField()
    today = serializers.IntegerField()
    draft = serializers.IntegerField()
    difference = serializers.IntegerField()


class ReratingOutput(serializers.Serializer[Any]):
    object = serializers.SerializerMethodField()
    product = serializers.CharField(help_text="The product's key.")
    based_on = serializers.IntegerField(help_text="The version the draft was made on.")
    version = serializers.IntegerField(help_text="The version publishing the draft makes.")
    periods = serializers.IntegerField(help_text="The closed periods asked for, per subscription.")
    as_of = serializers.DateTimeField(help_text="Periods ended by then are closed.")
    totals = ReratingTotalOutput(
        many=True, help_text="Per currency: money is never summed across currencies."
    )
    cohorts = ReratingCohortOutput(many=True, help_text="Per version and currency.")
    subscribers = ReratedSubscriptionOutput(
        many=True, help_text="Per subscription, the largest difference (either way) first; the first `limit`."
    )
    has_more = serializers.BooleanField(
        help_text="Subscriptions were left out of `subscribers` (see `limit`)."
    )

    def get_object(self, obj: dict[str, Any]) -> str:
        return "rerating"


def _bounded(request: Request, name: str, default: int | None, top: int, code: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        value = 0
    if not 1 <= value <= top:
        raise InvalidRequest(f"{name} must be an integer from 1 to {top}.", code=code, param=name)
    return value


class DraftReratingApi(BaseApi):
    # Named by its product's key or id (a draft's primary key is its product's).
    tenant_lookup = {"product": ProductDraft}
    OutputSerializer = ReratingOutput

    @extend_schema(
        operation_id="product_draft_rerating",
        summary="Re-rate a product's draft",
        description=(
            "What the draft would have billed the product's subscribers (subscriptions not ended, with an item on "
            "one of its prices) over each one's last `periods` closed periods, against what Stripe's invoices "
            "billed them: the same invoice lines and quantities (a metered price's: the usage reported to its "
            "meter), each price the draft reprices at its new terms, before discounts and tax; proration lines "
            "are left out on both sides. With the entitlements the draft would take away or lower below what each "
            "uses. Summed per version and currency (`cohorts`) and per currency (`totals`). Reads only: nothing "
            "changes here or at Stripe. 404 `no_draft`; 400 `invalid_parameter`, `invalid_limit`."
        ),
        parameters=[
            OpenApiParameter(
                "periods",
                {"type": "integer", "minimum": 1, "maximum": MAX_PERIODS},
                description=f"Closed periods per subscription, the latest ones (default {DEFAULT_PERIODS}).",
            ),
            OpenApiParameter(
                "version",
                {"type": "integer", "minimum": 1},
                description="Only the subscriptions on this version of the product (a cohort).",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                description=f"Subscriptions in `subscribers` (default {DEFAULT_LIMIT}); totals and cohorts count all.",
            ),
        ],
        responses=ReratingOutput,
    )
    def get(self, request: Request, product: str) -> Response:
        draft = product_draft_get(product_get_detailed(project=request_project(request), key_or_id=product))
        periods = _bounded(request, "periods", DEFAULT_PERIODS, MAX_PERIODS, "invalid_parameter")
        version = _bounded(request, "version", None, 10**9, "invalid_parameter")
        limit = _bounded(request, "limit", DEFAULT_LIMIT, MAX_LIMIT, "invalid_limit")
        answer = draft_rerating(draft=draft, periods=periods or DEFAULT_PERIODS, version=version)
        rows = answer.pop("rows")
        shown = limit or DEFAULT_LIMIT
        answer["subscribers"], answer["has_more"] = rows[:shown], len(rows) > shown
        return Response(self.OutputSerializer(answer).data)
