"""A customer's auto-recharges of credits balances: `POST /entitlements/auto_recharges` (create or replace, per
customer and feature), `GET /entitlements/auto_recharges?customer=`, `GET|DELETE /entitlements/auto_recharges/{id}`.
"""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.base_api import BaseApi
from core.pagination import list_body, list_serializer
from core.serializers import StrictSerializer
from entitlements.apis.params import CUSTOMER, CUSTOMER_PARAMETER, MAX_ID_LENGTH, MAX_QUANTITY
from entitlements.models import AutoRecharge
from entitlements.selectors import auto_recharge_get, auto_recharges
from entitlements.services.recharge import credits_per_recharge, recharge_configure, recharge_delete
from projects.authentication import request_project


class AutoRechargeOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="auto_recharge")
    customer = serializers.CharField(source="customer.external_id")
    feature = serializers.CharField(source="feature.key")
    below = serializers.IntegerField(
        help_text="A spend or hold that leaves the balance at or below this recharges."
    )
    price = serializers.CharField(source="price.key", help_text="The one-time price bought on each recharge.")
    quantity = serializers.IntegerField()
    credits = serializers.SerializerMethodField(help_text="Credits granted by each recharge.")
    amount = serializers.SerializerMethodField(help_text="What each recharge charges, in minor units.")
    currency = serializers.CharField(source="price.currency")
    payment_method = serializers.SerializerMethodField(
        help_text="The Stripe PaymentMethod charged; null: the customer's default card, else their newest."
    )
    status = serializers.ChoiceField(
        choices=AutoRecharge.Status.choices,
        help_text="`armed`; `charging` (one charge under way); `failed` (configure it again to re-arm).",
    )
    attempts = serializers.IntegerField(source="attempt", help_text="Charges started so far.")
    last_payment = serializers.SerializerMethodField(help_text="The payment of the latest charge.")
    last_error = serializers.SerializerMethodField(
        help_text="Why the latest charge failed: Stripe's decline code, `no_saved_card`, `price_inactive`, …"
    )
    recharged_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    deleted = serializers.BooleanField(default=False, help_text="true in the answer of its deletion.")

    def get_credits(self, recharge: AutoRecharge) -> int:
        return credits_per_recharge(recharge.price, recharge.feature, recharge.quantity)

    def get_amount(self, recharge: AutoRecharge) -> int:
        return int(recharge.price.unit_amount or 0) * recharge.quantity

    def get_payment_method(self, recharge: AutoRecharge) -> str | None:
        return recharge.payment_method or None

    def get_last_payment(self, recharge: AutoRecharge) -> str | None:
        return recharge.payment_id or None

    def get_last_error(self, recharge: AutoRecharge) -> str | None:
        return recharge.last_error or None


class AutoRechargesApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=MAX_ID_LENGTH)
        feature = serializers.CharField(max_length=100, help_text="A credits feature's key.")
        below = serializers.IntegerField(
            min_value=0, max_value=MAX_QUANTITY, help_text="Recharge when the balance is at or below this."
        )
        price = serializers.CharField(
            max_length=MAX_ID_LENGTH,
            help_text="Key or id of an active one-time price whose product grants this feature's credits.",
        )
        quantity = serializers.IntegerField(min_value=1, max_value=1000, default=1)
        payment_method = serializers.RegexField(
            r"^pm_[A-Za-z0-9_]+$",
            max_length=255,
            required=False,
            default="",
            help_text="A Stripe PaymentMethod saved for the customer; default: their default card, else newest.",
        )

    @extend_schema(
        operation_id="entitlements_auto_recharges_create",
        summary="Configure a customer's auto-recharge",
        description=(
            "Creates or replaces the auto-recharge of a customer's `credits` feature (one per customer and "
            "feature). When a consume or a hold leaves the balance at or below `below`, `quantity` of `price` "
            "is charged to the customer's saved card off session; its credits are granted once the payment "
            "succeeded (`credits.recharged`), never twice; a declined charge leaves it `failed` "
            "(`credits.recharge_failed`) until configured again. One charge at a time. When the balance already "
            "is at or below `below`, a charge starts now. 201 when new, 200 when replaced. 400 "
            "`feature_not_credits`, `price_not_one_time`, `price_grants_no_credits`."
        ),
        request=InputSerializer,
        responses={201: AutoRechargeOutput, 200: AutoRechargeOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        recharge, created = recharge_configure(
            project=request_project(request),
            external_id=data["customer"],
            feature_key=data["feature"],
            below=data["below"],
            price_key=data["price"],
            quantity=data["quantity"],
            payment_method=data["payment_method"],
        )
        return Response(
            AutoRechargeOutput(recharge).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="entitlements_auto_recharges_list",
        summary="List a customer's auto-recharges",
        description="The customer's auto-recharges, oldest first (one per credits feature).",
        parameters=[CUSTOMER_PARAMETER],
        responses=list_serializer(AutoRechargeOutput, "AutoRechargeList"),
    )
    def get(self, request: Request) -> Response:
        external_id = CUSTOMER.parse(request.query_params)
        rows = auto_recharges(project=request_project(request), external_id=external_id)
        return Response(list_body(AutoRechargeOutput(rows, many=True).data, has_more=False))


class AutoRechargeDetailApi(BaseApi):
    tenant_lookup = {"recharge_id": AutoRecharge}

    @extend_schema(
        operation_id="entitlements_auto_recharges_retrieve",
        summary="Get an auto-recharge",
        description="Its status, its latest charge and why that failed, if it did. 404 for another project's.",
        responses={200: AutoRechargeOutput},
    )
    def get(self, request: Request, recharge_id: str) -> Response:
        recharge = auto_recharge_get(project=request_project(request), recharge_id=recharge_id)
        return Response(AutoRechargeOutput(recharge).data)

    @extend_schema(
        operation_id="entitlements_auto_recharges_delete",
        summary="Delete an auto-recharge",
        description="No charge starts after it; one under way still settles. 404 for another project's.",
        responses={200: AutoRechargeOutput},
    )
    def delete(self, request: Request, recharge_id: str) -> Response:
        recharge = recharge_delete(project=request_project(request), recharge_id=recharge_id)
        recharge.deleted = True  # type: ignore[attr-defined]
        return Response(AutoRechargeOutput(recharge).data)
