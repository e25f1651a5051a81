"""`/checkout/subscription`, `/checkout/item`, `/checkout/cart` and `/checkout/{id}`: a purchase through Stripe Checkout."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.models import CheckoutSession, Payment
from billing.representations import (
    CheckoutSessionOutput,
)
from billing.services.checkout import checkout_start
from billing.services.payment_transitions import payment_refresh
from core.base_api import BaseApi
from core.errors import InvalidRequest
from core.serializers import MAX_LINE_ITEMS, MetadataField, StrictSerializer, WebUrlField
from projects.authentication import request_project

MAX_QUANTITY = 10_000


class _CheckoutBase(StrictSerializer):
    customer = serializers.CharField(max_length=255, help_text="Your user id (the customer's external_id).")
    success_url = WebUrlField()
    cancel_url = WebUrlField()
    metadata = MetadataField(required=False)
    automatic_tax = serializers.BooleanField(
        default=False,
        help_text="Turn on Stripe Tax: Checkout collects the billing address and adds (or, for inclusive "
        "prices, shows) the tax. Every price needs a `tax_behavior`.",
    )
    promotion_code = serializers.CharField(
        max_length=100,
        required=False,
        help_text="A promotion code of the project to redeem (400 `promotion_code_invalid` if it cannot be).",
    )
    allow_promotion_codes = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Stripe's page asks the customer for a code. Needs the project's own Stripe account: on "
        "the platform's shared one, where Stripe's page would take other projects' codes too, it is 400 "
        "`promotion_codes_need_own_account` (pass the customer's code as `promotion_code` instead).",
    )


def _checkout(request: Request, data: dict[str, Any], **purchase: Any) -> Response:
    """Starts the checkout `purchase` describes and renders its session (201)."""
    project = request_project(request)
    payment = checkout_start(
        project=project,
        customer=data["customer"],
        success_url=data["success_url"],
        cancel_url=data["cancel_url"],
        metadata=data.get("metadata"),
        automatic_tax=data["automatic_tax"],
        idempotency_key=request.headers.get("Idempotency-Key", ""),
        promotion_code=data.get("promotion_code"),
        allow_promotion_codes=data["allow_promotion_codes"],
        **purchase,
    )
    session = selectors.checkout_session_for_payment(project=project, payment=payment)
    return Response(CheckoutSessionOutput(session).data, status=status.HTTP_201_CREATED)


class SubscriptionItemInput(StrictSerializer):
    price = serializers.CharField(help_text="A recurring price: its key or id.")
    quantity = serializers.IntegerField(
        min_value=1, max_value=MAX_QUANTITY, required=False, help_text="Default 1; none for a metered price."
    )


def subscription_items_input(data: dict[str, Any]) -> list[tuple[str, int | None]] | None:
    """`items` of a subscription request as (price, quantity or None), or None when the request gives `price`:
    exactly one of them, and `quantity` only with `price`."""
    if ("price" in data) == ("items" in data):
        raise InvalidRequest(
            "Give exactly one of price or items.",
            code="parameter_conflict" if "price" in data else "parameter_missing",
            param="price",
        )
    if "items" not in data:
        return None
    if "quantity" in data:
        raise InvalidRequest(
            "quantity goes with price; give each item's quantity in items.",
            code="parameter_conflict",
            param="quantity",
        )
    return [(item["price"], item.get("quantity")) for item in data["items"]]


class CheckoutSubscriptionApi(BaseApi):
    class InputSerializer(_CheckoutBase):
        price = serializers.CharField(required=False, help_text="A recurring price: its key or id.")
        quantity = serializers.IntegerField(
            min_value=1, max_value=MAX_QUANTITY, required=False, help_text="With `price`; default 1."
        )
        items: serializers.ListSerializer[Any] = serializers.ListSerializer(
            child=SubscriptionItemInput(),
            required=False,
            max_length=MAX_LINE_ITEMS,
            help_text=(
                "Instead of `price`: several recurring prices of one currency and interval on one "
                "subscription (at most 20; a metered price takes no quantity)."
            ),
        )
        trial_days = serializers.IntegerField(min_value=0, max_value=730, required=False)

    @extend_schema(
        operation_id="checkout_subscription",
        summary="Start a subscription checkout",
        description=(
            "Creates a Stripe Checkout Session in subscription mode for one recurring price (or "
            "several `items` of one currency and interval) and a pending payment; redirect the "
            "customer to `url`. The subscription and its entitlements exist once Stripe reports "
            "the completed checkout. Errors: 400 `redirect_not_allowed` (URLs off the project's "
            "`allowed_redirect_hosts`), `price_not_recurring`, `parameter_conflict` (both or "
            "neither of `price` and `items`); for `items` (with `param` naming the index) "
            "`currency_mixed`, `interval_mismatch`, `duplicate_price`, `quantity_not_allowed` (a "
            "metered price), `too_many_items` (over 20); 409 `already_subscribed` (the customer "
            "has a live subscription with one of the products), `currency_mismatch`."
        ),
        request=InputSerializer,
        responses={201: CheckoutSessionOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        items = subscription_items_input(data)
        return _checkout(
            request,
            data,
            kind=Payment.Type.SUBSCRIPTION,
            items=[(data["price"], data.get("quantity", 1))] if items is None else (),
            subscription_items=items,
            trial_days=data.get("trial_days"),
        )


class CheckoutItemApi(BaseApi):
    class InputSerializer(_CheckoutBase):
        price = serializers.CharField(help_text="A one-time price: its key or id.")
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)

    @extend_schema(
        operation_id="checkout_item",
        summary="Start a one-time purchase checkout",
        description=(
            "Creates a Stripe Checkout Session in payment mode for a quantity of one one-time "
            "price, and a pending payment. Errors: 400 `price_not_one_time`, `price_inactive`, "
            "`redirect_not_allowed`; 409 `currency_mismatch` when the customer already pays in "
            "another currency."
        ),
        request=InputSerializer,
        responses={201: CheckoutSessionOutput},
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
        operation_id="checkout_cart",
        summary="Check out a cart",
        description=(
            "Creates a Stripe Checkout Session in payment mode for a cart (`cart`) or for `items` "
            "given inline, with a pending payment; a checked-out cart cannot change any more. "
            "Errors: 400 `cart_empty`, `cart_customer_mismatch`, `parameter_conflict` (both "
            "`cart` and `items`); 409 `cart_checked_out`."
        ),
        request=InputSerializer,
        responses={201: CheckoutSessionOutput},
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

    @extend_schema(
        operation_id="checkout_retrieve",
        summary="Retrieve a checkout session",
        description=(
            "A checkout session's mode, status (`open`, `complete`, `expired`), hosted `url` and "
            "payment, as Tollgate last heard from Stripe."
        ),
        responses=CheckoutSessionOutput,
    )
    def get(self, request: Request, session_id: str) -> Response:
        session = selectors.checkout_session_get(project=request_project(request), session_id=session_id)
        payment_refresh(payment=session.payment)
        session.refresh_from_db()
        return Response(CheckoutSessionOutput(session).data)
