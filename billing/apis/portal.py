"""`/portal`: Stripe's billing portal for a customer, and whether one can be opened."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.services import portal
from billing.services.payment_requests import redirect_urls_validate
from core.base_api import BaseApi
from core.errors import InvalidRequest
from core.idempotency import operation_of
from core.serializers import StrictSerializer, WebUrlField
from projects.authentication import request_project


class PortalApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=255)
        return_url = WebUrlField()

    @extend_schema(
        operation_id="portal_create",
        summary="Open the customer portal",
        description=(
            "Creates a Stripe Billing Portal session (the project's portal configuration is kept "
            "in step with its catalog) and answers its one-time `url`; send the customer there. "
            "409 `no_billing_account` for a customer without any purchase yet; 404 for an unknown "
            "customer."
        ),
        request=InputSerializer,
        responses=inline_serializer("PortalSession", {"url": serializers.CharField()}),
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = request_project(request)
        redirect_urls_validate(project=project, return_url=serializer.validated_data["return_url"])
        url = portal.portal_session_create(
            project=project,
            customer_external_id=serializer.validated_data["customer"],
            return_url=serializer.validated_data["return_url"],
            operation=operation_of(request),
        )
        return Response({"url": url})


class PortalEligibilityApi(BaseApi):
    @extend_schema(
        operation_id="portal_eligibility",
        summary="Check portal eligibility",
        description=(
            "Whether `customer` can open the portal now, and if not why (`unknown_customer`, "
            "`no_billing_account`), so you can hide the button. Reads Tollgate only."
        ),
        parameters=[
            OpenApiParameter("customer", {"type": "string", "minLength": 1, "maxLength": 255}, required=True)
        ],
        responses=inline_serializer(
            "PortalEligibility",
            {"eligible": serializers.BooleanField(), "reason": serializers.CharField(allow_null=True)},
        ),
    )
    def get(self, request: Request) -> Response:
        customer = request.query_params.get("customer")
        if not customer:
            raise InvalidRequest("customer is required.", code="parameter_missing", param="customer")
        eligible, reason = portal.portal_eligibility(
            project=request_project(request), customer_external_id=customer
        )
        return Response({"eligible": eligible, "reason": reason})
