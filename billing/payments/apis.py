"""Customers, checkout, carts, payments and portal API (API.md "Customers", "Checkout", "Payments", "Portal")."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import payments, portal, selectors, services
from billing.models import Cart, CartItem, CheckoutSession, Customer, Payment
from billing.payments import carts
from billing.representations import CartOutput, CheckoutSessionOutput, CustomerOutput, PaymentOutput
from core.actors import actor_from_request
from core.apis import BaseApi
from core.errors import InvalidRequest
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import MAX_LINE_ITEMS, CurrencyField, MetadataField, StrictSerializer
from projects.authentication import request_project

MAX_QUANTITY = 10_000


# --- customers ----------------------------------------------------------------------------------------------


class CustomerListCreateApi(BaseApi):
    class InputSerializer(StrictSerializer):
        external_id = serializers.CharField(max_length=255)
        email = serializers.EmailField(required=False, allow_blank=True)
        name = serializers.CharField(max_length=255, required=False, allow_blank=True)
        metadata = MetadataField(required=False)

    @extend_schema(
        operation_id="customers_list",
        parameters=[*PAGINATION_PARAMETERS, OpenApiParameter("email", OpenApiTypes.STR)],
        responses=list_serializer(CustomerOutput, "CustomerList"),
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.customer_list(
            project=request_project(request), email=request.query_params.get("email")
        )
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(CustomerOutput(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="customers_upsert",
        request=InputSerializer,
        responses={200: CustomerOutput, 201: CustomerOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer, created = services.customer_upsert(
            project=request_project(request),
            external_id=data["external_id"],
            email=data.get("email"),
            name=data.get("name"),
            metadata=data.get("metadata"),
        )
        return Response(
            CustomerOutput(customer).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class CustomerDetailApi(BaseApi):
    tenant_lookup = {"customer_id": Customer}

    @extend_schema(operation_id="customers_retrieve", responses=CustomerOutput)
    def get(self, request: Request, customer_id: str) -> Response:
        return Response(
            CustomerOutput(
                selectors.customer_lookup(project=request_project(request), customer_id=customer_id)
            ).data
        )


# --- checkout -----------------------------------------------------------------------------------------------


class _CheckoutBase(StrictSerializer):
    customer = serializers.CharField(max_length=255, help_text="Your user id (the customer's external_id).")
    success_url = serializers.URLField(max_length=2000)
    cancel_url = serializers.URLField(max_length=2000)
    metadata = MetadataField(required=False)


def _checkout(request: Request, data: dict[str, Any], **purchase: Any) -> Response:
    """Starts the checkout `purchase` describes and renders its session (201)."""
    project = request_project(request)
    payment = payments.checkout_start(
        project=project,
        customer=data["customer"],
        success_url=data["success_url"],
        cancel_url=data["cancel_url"],
        metadata=data.get("metadata"),
        idempotency_key=request.headers.get("Idempotency-Key", ""),
        **purchase,
    )
    session = selectors.checkout_session_for_payment(project=project, payment=payment)
    return Response(CheckoutSessionOutput(session).data, status=status.HTTP_201_CREATED)


class CheckoutSubscriptionApi(BaseApi):
    class InputSerializer(_CheckoutBase):
        price = serializers.CharField(help_text="A recurring price: its key or id.")
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)
        trial_days = serializers.IntegerField(min_value=0, max_value=730, required=False)

    @extend_schema(
        operation_id="checkout_subscription", request=InputSerializer, responses={201: CheckoutSessionOutput}
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return _checkout(
            request,
            data,
            kind=Payment.Type.SUBSCRIPTION,
            items=[(data["price"], data["quantity"])],
            trial_days=data.get("trial_days"),
        )


class CheckoutItemApi(BaseApi):
    class InputSerializer(_CheckoutBase):
        price = serializers.CharField(help_text="A one-time price: its key or id.")
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)

    @extend_schema(
        operation_id="checkout_item", request=InputSerializer, responses={201: CheckoutSessionOutput}
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return _checkout(request, data, kind=Payment.Type.ONE_TIME, items=[(data["price"], data["quantity"])])


class _ItemSerializer(StrictSerializer):
    price = serializers.CharField()
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)


class CheckoutCartApi(BaseApi):
    class InputSerializer(_CheckoutBase):
        cart = serializers.CharField(required=False, help_text="A cart id; or give `items`.")
        items: serializers.ListSerializer[Any] = serializers.ListSerializer(
            child=_ItemSerializer(), required=False, max_length=MAX_LINE_ITEMS
        )

    @extend_schema(
        operation_id="checkout_cart", request=InputSerializer, responses={201: CheckoutSessionOutput}
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return _checkout(
            request,
            data,
            kind=Payment.Type.CART,
            cart_id=data.get("cart"),
            items=[(item["price"], item["quantity"]) for item in data.get("items") or []],
        )


class CheckoutDetailApi(BaseApi):
    tenant_lookup = {"session_id": CheckoutSession}

    @extend_schema(operation_id="checkout_retrieve", responses=CheckoutSessionOutput)
    def get(self, request: Request, session_id: str) -> Response:
        session = selectors.checkout_session_get(project=request_project(request), session_id=session_id)
        payments.payment_refresh(payment=session.payment)
        session.refresh_from_db()
        return Response(CheckoutSessionOutput(session).data)


# --- carts --------------------------------------------------------------------------------------------------


class CartCreateApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=255)

    @extend_schema(operation_id="carts_create", request=InputSerializer, responses={201: CartOutput})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cart = carts.cart_create(
            project=request_project(request), customer_external_id=serializer.validated_data["customer"]
        )
        return Response(CartOutput(cart).data, status=status.HTTP_201_CREATED)


class CartDetailApi(BaseApi):
    tenant_lookup = {"cart_id": Cart}

    @extend_schema(operation_id="carts_retrieve", responses=CartOutput)
    def get(self, request: Request, cart_id: str) -> Response:
        return Response(
            CartOutput(selectors.cart_get(project=request_project(request), cart_id=cart_id)).data
        )

    @extend_schema(operation_id="carts_delete", request=None, responses={200: CartOutput})
    def delete(self, request: Request, cart_id: str) -> Response:
        cart = carts.cart_delete(cart=selectors.cart_get(project=request_project(request), cart_id=cart_id))
        return Response(CartOutput(cart).data)


class CartItemCreateApi(BaseApi):
    tenant_lookup = {"cart_id": Cart}

    class InputSerializer(StrictSerializer):
        price = serializers.CharField()
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)

    @extend_schema(operation_id="carts_items_add", request=InputSerializer, responses={201: CartOutput})
    def post(self, request: Request, cart_id: str) -> Response:
        project = request_project(request)
        cart = selectors.cart_get(project=project, cart_id=cart_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        price = selectors.price_get(
            project=project, key_or_id=serializer.validated_data["price"], param="price"
        )
        carts.cart_item_add(cart=cart, price=price, quantity=serializer.validated_data["quantity"])
        return Response(CartOutput(cart).data, status=status.HTTP_201_CREATED)


class CartItemDetailApi(BaseApi):
    tenant_lookup = {"cart_id": Cart, "item_id": CartItem}

    class InputSerializer(StrictSerializer):
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)

    @extend_schema(operation_id="carts_items_update", request=InputSerializer, responses=CartOutput)
    def patch(self, request: Request, cart_id: str, item_id: str) -> Response:
        cart = selectors.cart_get(project=request_project(request), cart_id=cart_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        carts.cart_item_update(cart=cart, item_id=item_id, quantity=serializer.validated_data["quantity"])
        return Response(CartOutput(cart).data)

    @extend_schema(operation_id="carts_items_delete", request=None, responses={200: CartOutput})
    def delete(self, request: Request, cart_id: str, item_id: str) -> Response:
        cart = selectors.cart_get(project=request_project(request), cart_id=cart_id)
        carts.cart_item_delete(cart=cart, item_id=item_id)
        return Response(CartOutput(cart).data)


# --- payments -----------------------------------------------------------------------------------------------


class PaymentListCreateApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=255)
        price = serializers.CharField(required=False)
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)
        items: serializers.ListSerializer[Any] = serializers.ListSerializer(
            child=_ItemSerializer(), required=False, max_length=MAX_LINE_ITEMS
        )
        amount = serializers.IntegerField(
            min_value=1, required=False, help_text="Minor units (with currency)."
        )
        currency = CurrencyField(required=False)
        description = serializers.CharField(max_length=500, required=False, allow_blank=True)
        type = serializers.ChoiceField(choices=Payment.Type.choices, required=False)
        flow = serializers.ChoiceField(choices=Payment.Flow.choices, required=False)
        reference = serializers.CharField(max_length=255, required=False)
        success_url = serializers.URLField(max_length=2000, required=False)
        cancel_url = serializers.URLField(max_length=2000, required=False)
        metadata = MetadataField(required=False)
        trial_days = serializers.IntegerField(min_value=0, max_value=730, required=False)

    @extend_schema(
        operation_id="payments_list",
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("customer", OpenApiTypes.STR),
            OpenApiParameter("status", OpenApiTypes.STR),
            OpenApiParameter("reference", OpenApiTypes.STR),
        ],
        responses=list_serializer(PaymentOutput, "PaymentList"),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        if (status_filter := params.get("status")) and status_filter not in Payment.Status.values:
            raise InvalidRequest(
                f"Unknown status {status_filter!r}.", code="invalid_parameter", param="status"
            )
        queryset = selectors.payment_search(
            project=request_project(request),
            customer=params.get("customer"),
            status=status_filter,
            reference=params.get("reference"),
        )
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(PaymentOutput(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="payments_create",
        request=InputSerializer,
        responses={200: PaymentOutput, 201: PaymentOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payment, created = payments.payment_submit(
            project=request_project(request),
            customer=data["customer"],
            price=data.get("price"),
            quantity=data["quantity"],
            items=[(item["price"], item["quantity"]) for item in data["items"]] if "items" in data else None,
            amount=data.get("amount"),
            currency=data.get("currency"),
            description=data.get("description", ""),
            payment_type=data.get("type"),
            flow=data.get("flow"),
            reference=data.get("reference"),
            success_url=data.get("success_url", ""),
            cancel_url=data.get("cancel_url", ""),
            metadata=data.get("metadata"),
            trial_days=data.get("trial_days"),
            idempotency_key=request.headers.get("Idempotency-Key", ""),
        )
        return Response(
            PaymentOutput(payment).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class PaymentDetailApi(BaseApi):
    tenant_lookup = {"payment_id": Payment}

    @extend_schema(operation_id="payments_retrieve", responses=PaymentOutput)
    def get(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(project=request_project(request), payment_id=payment_id)
        return Response(PaymentOutput(payments.payment_refresh(payment=payment)).data)


class PaymentRefundApi(BaseApi):
    tenant_lookup = {"payment_id": Payment}

    class InputSerializer(StrictSerializer):
        amount = serializers.IntegerField(
            min_value=1, required=False, help_text="Minor units; default: all that is left."
        )
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True)

    @extend_schema(operation_id="payments_refund", request=InputSerializer, responses=PaymentOutput)
    def post(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(project=request_project(request), payment_id=payment_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = payments.payment_refund(
            payment=payment,
            amount=serializer.validated_data.get("amount"),
            reason=serializer.validated_data.get("reason", ""),
            actor=actor_from_request(request),
        )
        return Response(PaymentOutput(payment).data)


class PaymentCancelApi(BaseApi):
    tenant_lookup = {"payment_id": Payment}

    @extend_schema(operation_id="payments_cancel", request=None, responses=PaymentOutput)
    def post(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(project=request_project(request), payment_id=payment_id)
        return Response(
            PaymentOutput(payments.payment_cancel(payment=payment, actor=actor_from_request(request))).data
        )


# --- portal -------------------------------------------------------------------------------------------------


class PortalApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=255)
        return_url = serializers.URLField(max_length=2000)

    @extend_schema(
        operation_id="portal_create",
        request=InputSerializer,
        responses=inline_serializer("PortalSession", {"url": serializers.CharField()}),
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = request_project(request)
        payments.redirect_urls_validate(project=project, return_url=serializer.validated_data["return_url"])
        url = portal.portal_session_create(
            project=project,
            customer_external_id=serializer.validated_data["customer"],
            return_url=serializer.validated_data["return_url"],
        )
        return Response({"url": url})


class PortalEligibilityApi(BaseApi):
    @extend_schema(
        operation_id="portal_eligibility",
        parameters=[OpenApiParameter("customer", OpenApiTypes.STR, required=True)],
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
