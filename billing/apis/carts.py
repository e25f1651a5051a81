"""`/carts`: carts of one-time prices, and their items."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from billing import selectors
from billing.apis.checkout import MAX_QUANTITY
from billing.models import Cart, CartItem
from billing.representations import (
    CartOutput,
)
from billing.services import carts
from catalog import selectors as catalog_selectors
from core.base_api import BaseApi
from core.serializers import StrictSerializer
from projects.authentication import request_project


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
