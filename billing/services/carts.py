"""Carts: lines of one-time prices in one currency, with totals in minor units; frozen once checked out."""

from django.db import transaction
from django.db.models import F

from billing.models import Cart, CartItem
from catalog.models import Price
from core.errors import Conflict, InvalidRequest, NotFound
from core.serializers import MAX_LINE_ITEMS
from customers.models import Customer
from customers.services.customers import customer_for_purchase
from projects.models import Project


def cart_create(*, project: Project, customer_external_id: str) -> Cart:
    customer = customer_for_purchase(project=project, external_id=customer_external_id)
    return Cart.objects.create(project=project, customer=customer)


def _lock_open(cart: Cart) -> Cart:
    locked = Cart.objects.select_for_update().get(pk=cart.pk)
    if locked.status != Cart.Status.OPEN:
        raise Conflict("This cart was already checked out and can no longer change.", code="cart_checked_out")
    return locked


def _check_price(cart: Cart, customer: Customer, price: Price) -> None:
    if not price.active:
        raise InvalidRequest(f"Price {price.key!r} is not active.", code="price_inactive", param="price")
    if price.type != Price.Type.ONE_TIME:
        raise InvalidRequest(
            "Carts hold one-time prices; subscribe through /checkout/subscription.",
            code="price_not_one_time",
            param="price",
        )
    currency = cart.currency or customer.currency
    if currency and price.currency != currency:
        raise Conflict(
            f"This cart is in {currency.upper()}; price {price.key!r} is in {price.currency.upper()}.",
            code="currency_mismatch",
            param="price",
        )


@transaction.atomic
def cart_item_add(*, cart: Cart, price: Price, quantity: int) -> CartItem:
    """Adds a line, or adds the quantity to the existing line of the same price."""
    cart = _lock_open(cart)
    _check_price(cart, cart.customer, price)
    if not cart.currency:
        cart.currency = price.currency
        cart.save(update_fields=["currency", "updated_at"])
    item = CartItem.objects.filter(cart=cart, price=price).first()
    if item is None:
        if CartItem.objects.filter(cart=cart).count() >= MAX_LINE_ITEMS:
            raise Conflict(
                f"A cart holds at most {MAX_LINE_ITEMS} prices (Stripe's limit of line items per checkout).",
                code="cart_full",
                param="price",
            )
        return CartItem.objects.create(project=cart.project, cart=cart, price=price, quantity=quantity)
    CartItem.objects.filter(pk=item.pk).update(quantity=F("quantity") + quantity)
    item.refresh_from_db()
    return item


def _item(cart: Cart, item_id: str) -> CartItem:
    item = CartItem.objects.filter(cart=cart, pk=item_id).select_related("price").first()
    if item is None:
        raise NotFound(f"No such cart item: {item_id!r}.")
    return item


@transaction.atomic
def cart_item_update(*, cart: Cart, item_id: str, quantity: int) -> CartItem:
    cart = _lock_open(cart)
    item = _item(cart, item_id)
    item.quantity = quantity
    item.save(update_fields=["quantity"])
    return item


@transaction.atomic
def cart_item_delete(*, cart: Cart, item_id: str) -> None:
    cart = _lock_open(cart)
    _item(cart, item_id).delete()
    if not cart.items.exists():
        cart.currency = ""
        cart.save(update_fields=["currency", "updated_at"])


@transaction.atomic
def cart_delete(*, cart: Cart) -> Cart:
    cart = _lock_open(cart)
    cart.status = Cart.Status.DELETED
    cart.save(update_fields=["status", "updated_at"])
    return cart


def cart_lines(cart: Cart) -> list[tuple[str, int]]:
    return [(item.price_id, item.quantity) for item in cart.items.all()]
