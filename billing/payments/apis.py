"""Customers, checkout, carts, payments and portal API (API.md "Customers", "Checkout", "Payments", "Portal")."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import portal, selectors
from billing.models import Cart, CartItem, CheckoutSession, Payment
from billing.payments import carts
from billing.payments.checkout import checkout_start, payment_submit
from billing.payments.closing import payment_cancel
from billing.payments.refunds import payment_refund
from billing.payments.requests import redirect_urls_validate
from billing.payments.transitions import payment_refresh
from billing.representations import (
    CartOutput,
    CheckoutSessionOutput,
    PaymentOutput,
    PaymentStatusOutput,
)
from catalog import selectors as catalog_selectors
from core.actors import actor_from_request
from core.apis import BaseApi
from core.errors import InvalidRequest
from core.idempotency import operation_of
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import MAX_LINE_ITEMS, CurrencyField, MetadataField, StrictSerializer, WebUrlField
from projects.authentication import request_project

MAX_QUANTITY = 10_000


# --- customers ----------------------------------------------------------------------------------------------


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
        required=False, default=False, help_text="Stripe's page asks the customer for a code."
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


# --- carts --------------------------------------------------------------------------------------------------


class CartCreateApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=255)

    @extend_schema(
        operation_id="carts_create",
        summary="Create a cart",
        description=(
            "An empty cart for a customer (created if new). Carts live in Tollgate only until "
            "they are checked out; nothing is created at Stripe."
        ),
        request=InputSerializer,
        responses={201: CartOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cart = carts.cart_create(
            project=request_project(request), customer_external_id=serializer.validated_data["customer"]
        )
        return Response(CartOutput(cart).data, status=status.HTTP_201_CREATED)


class CartDetailApi(BaseApi):
    tenant_lookup = {"cart_id": Cart}

    @extend_schema(
        operation_id="carts_retrieve",
        summary="Retrieve a cart",
        description="A cart with its lines and `amount_total` in minor units of its single currency.",
        responses=CartOutput,
    )
    def get(self, request: Request, cart_id: str) -> Response:
        return Response(
            CartOutput(selectors.cart_get(project=request_project(request), cart_id=cart_id)).data
        )

    @extend_schema(
        operation_id="carts_delete",
        summary="Delete a cart",
        description=(
            "Marks an open cart deleted and answers it; 409 `cart_checked_out` once it was "
            "checked out. Nothing at Stripe."
        ),
        request=None,
        responses={200: CartOutput},
    )
    def delete(self, request: Request, cart_id: str) -> Response:
        cart = carts.cart_delete(cart=selectors.cart_get(project=request_project(request), cart_id=cart_id))
        return Response(CartOutput(cart).data)


class CartItemCreateApi(BaseApi):
    tenant_lookup = {"cart_id": Cart}

    class InputSerializer(StrictSerializer):
        price = serializers.CharField()
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)

    @extend_schema(
        operation_id="carts_items_add",
        summary="Add a line to a cart",
        description=(
            "Adds a quantity of a one-time price to an open cart (201 with the whole cart). "
            "Errors: 400 `price_not_one_time`, `price_inactive`; 409 `currency_mismatch` (one "
            "currency per cart), `cart_full`, `cart_checked_out`."
        ),
        request=InputSerializer,
        responses={201: CartOutput},
    )
    def post(self, request: Request, cart_id: str) -> Response:
        project = request_project(request)
        cart = selectors.cart_get(project=project, cart_id=cart_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        price = catalog_selectors.price_get(
            project=project, key_or_id=serializer.validated_data["price"], param="price"
        )
        carts.cart_item_add(cart=cart, price=price, quantity=serializer.validated_data["quantity"])
        return Response(CartOutput(cart).data, status=status.HTTP_201_CREATED)


class CartItemDetailApi(BaseApi):
    tenant_lookup = {"cart_id": Cart, "item_id": CartItem}

    class InputSerializer(StrictSerializer):
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)

    @extend_schema(
        operation_id="carts_items_update",
        summary="Change a cart line's quantity",
        description=(
            "Sets the quantity of one line of an open cart and answers the whole cart; 409 "
            "`cart_checked_out` once checked out."
        ),
        request=InputSerializer,
        responses=CartOutput,
    )
    def patch(self, request: Request, cart_id: str, item_id: str) -> Response:
        cart = selectors.cart_get(project=request_project(request), cart_id=cart_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        carts.cart_item_update(cart=cart, item_id=item_id, quantity=serializer.validated_data["quantity"])
        return Response(CartOutput(cart).data)

    @extend_schema(
        operation_id="carts_items_delete",
        summary="Remove a line from a cart",
        description=(
            "Removes one line from an open cart and answers the cart (an emptied cart takes any "
            "currency again); 404 for a line the cart does not have."
        ),
        request=None,
        responses={200: CartOutput},
    )
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
        # Not empty: `minItems` in the schema (a ListField states it; a ListSerializer's min_length is not read).
        items = serializers.ListField(
            child=_ItemSerializer(),
            required=False,
            allow_empty=False,
            min_length=1,
            max_length=MAX_LINE_ITEMS,
        )
        amount = serializers.IntegerField(
            min_value=1, required=False, help_text="Minor units (with currency)."
        )
        currency = CurrencyField(required=False)
        description = serializers.CharField(max_length=500, required=False, allow_blank=True)
        type = serializers.ChoiceField(choices=Payment.Type.choices, required=False)
        flow = serializers.ChoiceField(choices=Payment.Flow.choices, required=False)
        reference = serializers.CharField(max_length=255, required=False)
        success_url = WebUrlField(required=False)
        cancel_url = WebUrlField(required=False)
        metadata = MetadataField(required=False)
        trial_days = serializers.IntegerField(min_value=0, max_value=730, required=False)
        automatic_tax = serializers.BooleanField(
            default=False,
            help_text="Checkout flow only: Stripe Tax as in the checkouts (a PaymentIntent has no automatic "
            "tax: 400 `automatic_tax_not_supported` with `flow: intent`).",
        )
        promotion_code = serializers.CharField(
            max_length=100, required=False, help_text="A promotion code to redeem (checkout flow only)."
        )
        allow_promotion_codes = serializers.BooleanField(
            required=False, default=False, help_text="Stripe's page asks for a code (checkout flow only)."
        )

    @extend_schema(
        operation_id="payments_list",
        summary="List payments",
        description=(
            "The project's payments, newest first, filtered by `customer`, `status` or "
            "`reference`. Renewal invoices of subscriptions are payments too (`source: invoice`)."
        ),
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("customer", OpenApiTypes.STR),
            OpenApiParameter("status", {"type": "string", "enum": list(Payment.Status.values)}),
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
        summary="Create a payment",
        description=(
            "The universal purchase: a price, several `items`, or a custom `amount` and "
            "`currency`, through Stripe Checkout (`flow: checkout`, answers `checkout_url`) or a "
            "PaymentIntent your page confirms (`flow: intent`, answers `client_secret` and "
            "`publishable_key`). The payment is created before its Stripe object; a retry with "
            "the same Idempotency-Key resumes it. `reference` (your order id) makes the call safe "
            "across keys: the same reference answers the same payment (200), whatever its status. "
            "Errors: 409 `reference_conflict` (same reference, different body), "
            "`already_subscribed`, `currency_mismatch`; 400 `redirect_not_allowed`, "
            "`currency_mixed`."
        ),
        request=InputSerializer,
        responses={200: PaymentOutput, 201: PaymentOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payment, created = payment_submit(
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
            automatic_tax=data["automatic_tax"],
            idempotency_key=request.headers.get("Idempotency-Key", ""),
            promotion_code=data.get("promotion_code"),
            allow_promotion_codes=data["allow_promotion_codes"],
        )
        return Response(
            PaymentOutput(payment).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class PaymentDetailApi(BaseApi):
    tenant_lookup = {"payment_id": Payment}

    @extend_schema(
        operation_id="payments_retrieve",
        summary="Retrieve a payment",
        description=(
            "One payment with its status, amounts (minor units), refunded amount and the Stripe "
            "ids behind it."
        ),
        responses=PaymentOutput,
    )
    def get(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(project=request_project(request), payment_id=payment_id)
        return Response(PaymentOutput(payment_refresh(payment=payment)).data)


class PaymentStatusApi(BaseApi):
    tenant_lookup = {"payment_id": Payment}

    @extend_schema(
        operation_id="payments_status",
        summary="Read a payment's status",
        description=(
            "The light status read for pollers: `{id, status, amount_refunded}` as Tollgate holds "
            "them (kept current by Stripe's events), without asking Stripe. 404 for a payment of "
            "another project or an unknown id."
        ),
        responses=PaymentStatusOutput,
    )
    def get(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(project=request_project(request), payment_id=payment_id)
        return Response(PaymentStatusOutput(payment).data)


class PaymentRefundApi(BaseApi):
    tenant_lookup = {"payment_id": Payment}

    class InputSerializer(StrictSerializer):
        amount = serializers.IntegerField(
            min_value=1, required=False, help_text="Minor units; default: all that is left."
        )
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True)

    @extend_schema(
        operation_id="payments_refund",
        summary="Refund a payment",
        description=(
            "Refunds all of a paid payment, or `amount` of it, at Stripe, and records the refund "
            "(`refunded` or `partially_refunded`). Send an `Idempotency-Key`: a retry with the same key "
            "after any failure (a 5xx, a lost answer) continues the same refund — Stripe makes it once — "
            "and answers the payment as it now is; without a key every request is a refund of its own. "
            "Errors: 409 `payment_not_refundable` when it is not paid; 400 `invalid_amount` for more "
            "than what is left."
        ),
        request=InputSerializer,
        responses=PaymentOutput,
    )
    def post(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(project=request_project(request), payment_id=payment_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        operation = operation_of(request)
        payment = payment_refund(
            payment=payment,
            amount=serializer.validated_data.get("amount"),
            reason=serializer.validated_data.get("reason", ""),
            actor=actor_from_request(request),
            operation=f"api:{operation.identity}" if operation else "",
        )
        return Response(PaymentOutput(payment).data)


class PaymentCancelApi(BaseApi):
    tenant_lookup = {"payment_id": Payment}

    @extend_schema(
        operation_id="payments_cancel",
        summary="Cancel a payment",
        description=(
            "Cancels an open payment: its Checkout Session is expired (or its PaymentIntent "
            "canceled) at Stripe first; if Stripe says it was paid meanwhile, the payment is "
            "answered `succeeded` instead. 409 `payment_not_open` for a payment that is no longer "
            "open."
        ),
        request=None,
        responses=PaymentOutput,
    )
    def post(self, request: Request, payment_id: str) -> Response:
        payment = selectors.payment_get(project=request_project(request), payment_id=payment_id)
        return Response(
            PaymentOutput(payment_cancel(payment=payment, actor=actor_from_request(request))).data
        )


# --- portal -------------------------------------------------------------------------------------------------


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
