"""Hosted checkout (subscription, one item, a cart) and carts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tollgate_client._transport import Transport
from tollgate_client.params import LineItem
from tollgate_client.resources._base import Resource, compact, path
from tollgate_client.types import Cart, CheckoutSession


class Checkout(Resource):
    """Each method answers a `CheckoutSession`: redirect the customer's browser to its `url`.

    `success_url` and `cancel_url` must be on the project's allowed redirect hosts. `automatic_tax=True` turns
    on Stripe Tax: Checkout collects the billing address; every price needs a `tax_behavior`. A
    `promotion_code` is redeemed (an unknown, expired or used-up one is `promotion_code_invalid`), or
    `allow_promotion_codes=True` shows the code field on Stripe's page; not both. The code field needs the
    project's own Stripe account: on the platform's shared one it is `promotion_codes_need_own_account` (an
    `InvalidRequestError`; pass the customer's code as `promotion_code` instead).
    """

    def subscription(
        self,
        *,
        customer: str,
        success_url: str,
        cancel_url: str,
        price: str | None = None,
        items: Sequence[LineItem] | None = None,
        quantity: int | None = None,
        trial_days: int | None = None,
        metadata: dict[str, Any] | None = None,
        automatic_tax: bool | None = None,
        promotion_code: str | None = None,
        allow_promotion_codes: bool | None = None,
        idempotency_key: str | None = None,
    ) -> CheckoutSession:
        """One recurring `price` (× `quantity`), or several `items` of one currency and interval on one
        subscription (a metered price in `items` takes no quantity)."""
        body = compact(
            customer=customer,
            price=price,
            items=list(items) if items is not None else None,
            success_url=success_url,
            cancel_url=cancel_url,
            quantity=quantity,
            trial_days=trial_days,
            metadata=metadata,
            automatic_tax=automatic_tax,
            promotion_code=promotion_code,
            allow_promotion_codes=allow_promotion_codes,
        )
        return self._post(CheckoutSession, "/checkout/subscription", body, idempotency_key=idempotency_key)

    def item(
        self,
        *,
        customer: str,
        price: str,
        success_url: str,
        cancel_url: str,
        quantity: int | None = None,
        metadata: dict[str, Any] | None = None,
        automatic_tax: bool | None = None,
        promotion_code: str | None = None,
        allow_promotion_codes: bool | None = None,
        idempotency_key: str | None = None,
    ) -> CheckoutSession:
        """One one-time price."""
        body = compact(
            customer=customer,
            price=price,
            success_url=success_url,
            cancel_url=cancel_url,
            quantity=quantity,
            metadata=metadata,
            automatic_tax=automatic_tax,
            promotion_code=promotion_code,
            allow_promotion_codes=allow_promotion_codes,
        )
        return self._post(CheckoutSession, "/checkout/item", body, idempotency_key=idempotency_key)

    def cart(
        self,
        *,
        customer: str,
        success_url: str,
        cancel_url: str,
        cart: str | None = None,
        items: Sequence[LineItem] | None = None,
        metadata: dict[str, Any] | None = None,
        automatic_tax: bool | None = None,
        promotion_code: str | None = None,
        allow_promotion_codes: bool | None = None,
        idempotency_key: str | None = None,
    ) -> CheckoutSession:
        """A cart by id (`cart=`), or its lines given here (`items=[{"price": …, "quantity": …}]`)."""
        body = compact(
            customer=customer,
            success_url=success_url,
            cancel_url=cancel_url,
            cart=cart,
            items=list(items) if items is not None else None,
            metadata=metadata,
            automatic_tax=automatic_tax,
            promotion_code=promotion_code,
            allow_promotion_codes=allow_promotion_codes,
        )
        return self._post(CheckoutSession, "/checkout/cart", body, idempotency_key=idempotency_key)

    def retrieve(self, session_id: str) -> CheckoutSession:
        return self._get(CheckoutSession, path("/checkout/{}", session_id))


class CartItems(Resource):
    """The lines of a cart; each call answers the whole cart."""

    def add(
        self, cart_id: str, *, price: str, quantity: int | None = None, idempotency_key: str | None = None
    ) -> Cart:
        body = compact(price=price, quantity=quantity)
        return self._post(Cart, path("/carts/{}/items", cart_id), body, idempotency_key=idempotency_key)

    def update(
        self, cart_id: str, item_id: str, *, quantity: int, idempotency_key: str | None = None
    ) -> Cart:
        url = path("/carts/{}/items/{}", cart_id, item_id)
        return self._patch(Cart, url, {"quantity": quantity}, idempotency_key=idempotency_key)

    def delete(self, cart_id: str, item_id: str, *, idempotency_key: str | None = None) -> None:
        self._delete(path("/carts/{}/items/{}", cart_id, item_id), idempotency_key=idempotency_key)


class Carts(Resource):
    """A basket of one-time prices in one currency, checked out with `checkout.cart(cart=…)`."""

    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self.items = CartItems(transport)

    def create(self, *, customer: str, idempotency_key: str | None = None) -> Cart:
        return self._post(Cart, "/carts", {"customer": customer}, idempotency_key=idempotency_key)

    def retrieve(self, cart_id: str) -> Cart:
        return self._get(Cart, path("/carts/{}", cart_id))

    def delete(self, cart_id: str, *, idempotency_key: str | None = None) -> None:
        self._delete(path("/carts/{}", cart_id), idempotency_key=idempotency_key)
