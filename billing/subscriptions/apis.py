"""Subscriptions and invoices API (API.md "Subscriptions and invoices")."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors, subscriptions
from billing.models import Invoice, Subscription
from billing.representations import InvoiceOutput, SubscriptionOutput
from core.actors import actor_from_request
from core.apis import BaseApi
from core.errors import InvalidRequest
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import StrictSerializer
from projects.authentication import request_project


def _subscription(request: Request, subscription_id: str) -> Subscription:
    return selectors.subscription_get(project=request_project(request), subscription_id=subscription_id)


def _rendered(subscription: Subscription) -> dict[str, Any]:
    """Stripe's answer to the change (the local mirror follows with Stripe's events)."""
    return dict(SubscriptionOutput(subscription).data)


class SubscriptionListApi(BaseApi):
    @extend_schema(
        operation_id="subscriptions_list",
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("customer", OpenApiTypes.STR),
            OpenApiParameter("status", OpenApiTypes.STR),
            OpenApiParameter("product", OpenApiTypes.STR),
        ],
        responses=list_serializer(SubscriptionOutput, "SubscriptionList"),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        if (status := params.get("status")) and status not in Subscription.Status.values:
            raise InvalidRequest(f"Unknown status {status!r}.", code="invalid_parameter", param="status")
        queryset = selectors.subscription_list(
            project=request_project(request),
            customer=params.get("customer"),
            status=status,
            product=params.get("product"),
        )
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(SubscriptionOutput(rows, many=True).data, has_more))


class SubscriptionDetailApi(BaseApi):
    tenant_lookup = {"subscription_id": Subscription}

    class InputSerializer(StrictSerializer):
        price = serializers.CharField(required=False, help_text="The new recurring price (key or id).")
        quantity = serializers.IntegerField(min_value=1, max_value=10_000, required=False)
        proration_behavior = serializers.ChoiceField(
            choices=["create_prorations", "none", "always_invoice"], default="create_prorations"
        )
        payment_behavior = serializers.ChoiceField(
            choices=[
                "allow_incomplete",
                "default_incomplete",
                "error_if_incomplete",
                "pending_if_incomplete",
            ],
            required=False,
            help_text="Upgrades default to pending_if_incomplete: a failed upgrade payment changes nothing.",
        )

    @extend_schema(operation_id="subscriptions_retrieve", responses=SubscriptionOutput)
    def get(self, request: Request, subscription_id: str) -> Response:
        return Response(SubscriptionOutput(_subscription(request, subscription_id)).data)

    @extend_schema(operation_id="subscriptions_update", request=InputSerializer, responses=SubscriptionOutput)
    def patch(self, request: Request, subscription_id: str) -> Response:
        subscription = _subscription(request, subscription_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "price" not in data and "quantity" not in data:
            raise InvalidRequest(
                "Give a price or a quantity to change.", code="parameter_missing", param="price"
            )
        price = (
            selectors.price_get(project=request_project(request), key_or_id=data["price"], param="price")
            if "price" in data
            else None
        )
        updated = subscriptions.subscription_change(
            subscription=subscription,
            actor=actor_from_request(request),
            price=price,
            quantity=data.get("quantity"),
            proration_behavior=data["proration_behavior"],
            payment_behavior=data.get("payment_behavior"),
        )
        return Response(_rendered(updated))


class SubscriptionCancelApi(BaseApi):
    tenant_lookup = {"subscription_id": Subscription}

    class InputSerializer(StrictSerializer):
        at_period_end = serializers.BooleanField(default=True)

    @extend_schema(operation_id="subscriptions_cancel", request=InputSerializer, responses=SubscriptionOutput)
    def post(self, request: Request, subscription_id: str) -> Response:
        subscription = _subscription(request, subscription_id)
        serializer = self.InputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        updated = subscriptions.subscription_cancel(
            subscription=subscription,
            actor=actor_from_request(request),
            at_period_end=serializer.validated_data["at_period_end"],
        )
        return Response(_rendered(updated))


class SubscriptionResumeApi(BaseApi):
    tenant_lookup = {"subscription_id": Subscription}

    @extend_schema(operation_id="subscriptions_resume", request=None, responses=SubscriptionOutput)
    def post(self, request: Request, subscription_id: str) -> Response:
        resumed = subscriptions.subscription_resume(
            subscription=_subscription(request, subscription_id), actor=actor_from_request(request)
        )
        return Response(_rendered(resumed))


class InvoiceListApi(BaseApi):
    @extend_schema(
        operation_id="invoices_list",
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("customer", OpenApiTypes.STR),
            OpenApiParameter("status", OpenApiTypes.STR),
        ],
        responses=list_serializer(InvoiceOutput, "InvoiceList"),
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.invoice_list(
            project=request_project(request),
            customer=request.query_params.get("customer"),
            status=request.query_params.get("status"),
        )
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(InvoiceOutput(rows, many=True).data, has_more))


class InvoiceDetailApi(BaseApi):
    tenant_lookup = {"invoice_id": Invoice}

    @extend_schema(operation_id="invoices_retrieve", responses=InvoiceOutput)
    def get(self, request: Request, invoice_id: str) -> Response:
        invoice = selectors.invoice_get(project=request_project(request), invoice_id=invoice_id)
        return Response(InvoiceOutput(invoice).data)
