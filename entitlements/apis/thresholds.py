"""A customer's own usage thresholds: `POST /entitlements/thresholds`, `GET /entitlements/thresholds?customer=`,
`DELETE /entitlements/thresholds/{id}`. Each is announced as `usage.threshold_reached` once per period.
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
from entitlements.models import UsageThreshold
from entitlements.selectors import usage_thresholds
from entitlements.services.thresholds import threshold_create, threshold_delete
from projects.authentication import request_project


class ThresholdOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="usage_threshold")
    customer = serializers.CharField(source="customer.external_id")
    feature = serializers.CharField(source="feature.key")
    percent = serializers.SerializerMethodField(
        help_text="Percent of the limit (null for a quantity threshold)."
    )
    quantity = serializers.SerializerMethodField(help_text="Units used (null for a percent threshold).")
    created_at = serializers.DateTimeField()
    deleted = serializers.BooleanField(default=False, help_text="true in the answer of its deletion.")

    def get_percent(self, threshold: UsageThreshold) -> int | None:
        return threshold.value if threshold.kind == UsageThreshold.Kind.PERCENT else None

    def get_quantity(self, threshold: UsageThreshold) -> int | None:
        return threshold.value if threshold.kind == UsageThreshold.Kind.QUANTITY else None


class ThresholdsApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=MAX_ID_LENGTH)
        feature = serializers.CharField(max_length=100, help_text="A metered feature's key.")
        percent = serializers.IntegerField(
            min_value=1, max_value=1000, required=False, help_text="Percent of the limit (1–1000)."
        )
        quantity = serializers.IntegerField(
            min_value=1, max_value=MAX_QUANTITY, required=False, help_text="Units used in the period."
        )

    @extend_schema(
        operation_id="entitlements_thresholds_create",
        summary="Add a usage threshold",
        description=(
            "A usage threshold of your own on a customer's `metered` feature, `percent` of the limit or "
            "`quantity` units used: announced as `usage.threshold_reached` (with its `threshold_id`) once per "
            "period when usage goes over it, like the 80 % and 100 % ones. The same threshold again answers "
            "200 with the one stored (201 when new). 400 `feature_not_metered`, `too_many_thresholds` (20 per "
            "customer and feature)."
        ),
        request=InputSerializer,
        responses={201: ThresholdOutput, 200: ThresholdOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        threshold, created = threshold_create(
            project=request_project(request),
            external_id=data["customer"],
            feature_key=data["feature"],
            percent=data.get("percent"),
            quantity=data.get("quantity"),
        )
        return Response(
            ThresholdOutput(threshold).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(
        operation_id="entitlements_thresholds_list",
        summary="List a customer's usage thresholds",
        description="Every usage threshold of the customer's, oldest first (at most 20 per feature).",
        parameters=[CUSTOMER_PARAMETER],
        responses=list_serializer(ThresholdOutput, "ThresholdList"),
    )
    def get(self, request: Request) -> Response:
        external_id = CUSTOMER.parse(request.query_params)
        rows = usage_thresholds(project=request_project(request), external_id=external_id)
        return Response(list_body(ThresholdOutput(rows, many=True).data, has_more=False))


class ThresholdDeleteApi(BaseApi):
    tenant_lookup = {"threshold_id": UsageThreshold}

    @extend_schema(
        operation_id="entitlements_thresholds_delete",
        summary="Delete a usage threshold",
        description="Deletes the threshold; what it announced stays announced. 404 for an id of another project.",
        responses={200: ThresholdOutput},
    )
    def delete(self, request: Request, threshold_id: str) -> Response:
        threshold = threshold_delete(project=request_project(request), threshold_id=threshold_id)
        threshold.deleted = True  # type: ignore[attr-defined]
        return Response(ThresholdOutput(threshold).data)
