"""Discounts API (API.md "Discounts and tax"): `/coupons` (create, list, retrieve, delete by key or id) and
`/promotion_codes` (create, list, turn on or off). Another project's coupons and codes are missing ones (404)."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing.models import Coupon, PromotionCode
from billing.selectors import (
    coupon_get,
    coupon_list,
    coupon_product_keys,
    promotion_code_get,
    promotion_code_list,
)
from billing.services.discounts import (
    coupon_create,
    coupon_delete,
    promotion_code_create,
    promotion_code_update,
)
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.errors import InvalidRequest
from core.idempotency import operation_of
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import CurrencyField, StrictSerializer
from projects.authentication import request_project

# --- coupons ---------------------------------------------------------------------------------------------------


class CouponOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    key = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    percent_off = serializers.FloatField(allow_null=True, help_text="0 < percent_off ≤ 100, two decimals.")
    amount_off = serializers.IntegerField(allow_null=True, help_text="Minor units of `currency`.")
    currency = serializers.CharField(allow_null=True)
    duration = serializers.CharField(help_text="once | repeating | forever")
    duration_in_months = serializers.IntegerField(allow_null=True)
    max_redemptions = serializers.IntegerField(allow_null=True)
    redeem_by = serializers.DateTimeField(allow_null=True)
    applies_to = serializers.ListField(
        child=serializers.CharField(), help_text="Keys of the products it discounts; [] for every product."
    )
    stripe_coupon_id = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_object(self, obj: Coupon) -> str:
        return "coupon"

    def to_representation(self, instance: Coupon) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["name"] = instance.name or None
        data["currency"] = instance.currency or None
        data["applies_to"] = coupon_product_keys(coupon=instance)
        return data


# More than 0 and at most 100, with at most two decimals, as a string ("12.5"): what the server takes, stated as a
# pattern (a decimal sent as a string has no `minimum`/`maximum` in the schema).
PERCENT_OFF_PATTERN = r"^(100(\.00?)?|[1-9][0-9]?(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?))$"


@extend_schema_field({"type": "string", "format": "decimal", "pattern": PERCENT_OFF_PATTERN})
class PercentOffField(serializers.DecimalField):
    pass


class CouponInput(StrictSerializer):
    key = serializers.SlugField(max_length=100, help_text="Unique in the project.")
    name = serializers.CharField(max_length=40, required=False, allow_blank=True)
    percent_off = PercentOffField(
        max_digits=5, decimal_places=2, required=False, help_text="Either this or amount_off + currency."
    )
    amount_off = serializers.IntegerField(min_value=1, required=False, help_text="Minor units of `currency`.")
    currency = CurrencyField(required=False)
    duration = serializers.ChoiceField(choices=Coupon.Duration.choices)
    duration_in_months = serializers.IntegerField(
        min_value=1, max_value=120, required=False, help_text="Required with duration `repeating`."
    )
    max_redemptions = serializers.IntegerField(min_value=1, required=False)
    redeem_by = serializers.DateTimeField(required=False)
    applies_to = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        max_length=100,
        help_text="Keys or ids of the project's products the coupon is limited to.",
    )


class CouponListCreateApi(BaseApi):
    InputSerializer = CouponInput
    OutputSerializer = CouponOutput

    @extend_schema(
        operation_id="coupons_list",
        summary="List coupons",
        description="The project's coupons, newest first (deleted ones are gone).",
        parameters=[*PAGINATION_PARAMETERS],
        responses=list_serializer(CouponOutput, "CouponList"),
    )
    def get(self, request: Request) -> Response:
        rows, has_more = paginate_queryset(coupon_list(project=request_project(request)), request)
        return Response(list_body(self.OutputSerializer(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="coupons_create",
        summary="Create a coupon",
        description=(
            "Creates a coupon and its Stripe coupon: `percent_off`, or `amount_off` + `currency`; `duration` "
            "`once` (the first invoice), `repeating` (`duration_in_months`) or `forever`; optional "
            "`max_redemptions`, `redeem_by` and `applies_to` (product keys). Errors: 400 for invalid terms, "
            "409 `key_taken`, 404 for an unknown product."
        ),
        request=CouponInput,
        responses={201: CouponOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        coupon = coupon_create(
            project=request_project(request),
            actor=actor_from_request(request),
            operation=operation_of(request),
            **serializer.validated_data,
        )
        return Response(self.OutputSerializer(coupon).data, status=status.HTTP_201_CREATED)


class CouponDetailApi(BaseApi):
    tenant_lookup = {"coupon": Coupon}
    OutputSerializer = CouponOutput

    @extend_schema(
        operation_id="coupons_retrieve",
        summary="Retrieve a coupon",
        description="One coupon by its `key` or `id`.",
        responses=CouponOutput,
    )
    def get(self, request: Request, coupon: str) -> Response:
        found = coupon_get(project=request_project(request), key_or_id=coupon)
        return Response(self.OutputSerializer(found).data)

    @extend_schema(
        operation_id="coupons_delete",
        summary="Delete a coupon",
        description=(
            "Deletes the coupon here and at Stripe: its promotion codes can no longer be redeemed; discounts "
            "it already gave run their course. Answers the deleted coupon."
        ),
        responses={200: CouponOutput},  # the deleted coupon, as every DELETE answers (not 204)
    )
    def delete(self, request: Request, coupon: str) -> Response:
        found = coupon_get(project=request_project(request), key_or_id=coupon)
        deleted = coupon_delete(actor=actor_from_request(request), coupon=found)
        return Response(self.OutputSerializer(deleted).data)


# --- promotion codes -------------------------------------------------------------------------------------------


class PromotionCodeOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    code = serializers.CharField()
    coupon = serializers.CharField(source="coupon.key", help_text="The coupon's key.")
    max_redemptions = serializers.IntegerField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    first_time_transaction = serializers.BooleanField()
    active = serializers.BooleanField()
    stripe_promotion_code_id = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_object(self, obj: PromotionCode) -> str:
        return "promotion_code"


class PromotionCodeInput(StrictSerializer):
    code = serializers.RegexField(
        r"^[a-zA-Z0-9-]+$",
        max_length=100,
        help_text="Letters, digits and dashes; unique in the project in any case.",
    )
    coupon = serializers.CharField(max_length=100, help_text="The coupon's key or id.")
    max_redemptions = serializers.IntegerField(min_value=1, required=False)
    expires_at = serializers.DateTimeField(required=False)
    first_time_transaction = serializers.BooleanField(required=False, default=False)
    active = serializers.BooleanField(required=False, default=True)


class PromotionCodeUpdateInput(StrictSerializer):
    active = serializers.BooleanField()


class PromotionCodeListCreateApi(BaseApi):
    InputSerializer = PromotionCodeInput
    OutputSerializer = PromotionCodeOutput

    @extend_schema(
        operation_id="promotion_codes_list",
        summary="List promotion codes",
        description="The project's promotion codes, newest first, filtered by `coupon` (key or id) and `active`.",
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("coupon", OpenApiTypes.STR, description="A coupon's key or id."),
            OpenApiParameter("active", OpenApiTypes.BOOL),
        ],
        responses=list_serializer(PromotionCodeOutput, "PromotionCodeList"),
    )
    def get(self, request: Request) -> Response:
        project = request_project(request)
        coupon = request.query_params.get("coupon")
        active = request.query_params.get("active")
        if active not in (None, "", "true", "false"):
            raise InvalidRequest("active must be true or false.", code="invalid_parameter", param="active")
        queryset = promotion_code_list(
            project=project,
            coupon=coupon_get(project=project, key_or_id=coupon, param="coupon") if coupon else None,
            active=None if active in (None, "") else active == "true",
        )
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(self.OutputSerializer(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="promotion_codes_create",
        summary="Create a promotion code",
        description=(
            "Creates a customer-facing `code` for a coupon, and its Stripe promotion code. Optional "
            "`max_redemptions` (at most the coupon's), `expires_at` (not after the coupon's `redeem_by`), "
            "`first_time_transaction`. Errors: 409 `code_taken`; 404 for an unknown coupon."
        ),
        request=PromotionCodeInput,
        responses={201: PromotionCodeOutput},
    )
    def post(self, request: Request) -> Response:
        project = request_project(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        coupon = coupon_get(project=project, key_or_id=data.pop("coupon"), param="coupon")
        promo = promotion_code_create(
            project=project,
            actor=actor_from_request(request),
            coupon=coupon,
            operation=operation_of(request),
            **data,
        )
        return Response(self.OutputSerializer(promo).data, status=status.HTTP_201_CREATED)


class PromotionCodeDetailApi(BaseApi):
    tenant_lookup = {"promotion_code": PromotionCode}
    InputSerializer = PromotionCodeUpdateInput
    OutputSerializer = PromotionCodeOutput

    @extend_schema(
        operation_id="promotion_codes_update",
        summary="Turn a promotion code on or off",
        description="`{active}`: an inactive code cannot be redeemed (400 `promotion_code_invalid`).",
        request=PromotionCodeUpdateInput,
        responses=PromotionCodeOutput,
    )
    def patch(self, request: Request, promotion_code: str) -> Response:
        found = promotion_code_get(project=request_project(request), promotion_code_id=promotion_code)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        updated = promotion_code_update(
            actor=actor_from_request(request), promo=found, active=serializer.validated_data["active"]
        )
        return Response(self.OutputSerializer(updated).data)
