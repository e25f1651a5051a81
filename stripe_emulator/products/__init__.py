"""Products and prices (``/v1/products``, ``/v1/prices``)."""

from stripe_emulator.core.account import Account
from stripe_emulator.core.render import render
from stripe_emulator.core.service import Service, Shape
from stripe_emulator.core.store import StripeObject
from stripe_emulator.products.models import ProductsBackend
from stripe_emulator.products.responses import include_tiers
from stripe_emulator.products.urls import ROUTES


def _product(account: Account) -> StripeObject:
    return render(account, account.backend(ProductsBackend).product_create(name="Shape"))


def _deleted_product(account: Account) -> StripeObject:
    backend = account.backend(ProductsBackend)
    return render(account, backend.product_delete(backend.product_create(name="Gone")["id"]))


def _price(account: Account) -> StripeObject:
    backend = account.backend(ProductsBackend)
    price = backend.price_create(
        currency="usd",
        product_data={"name": "Shape"},
        unit_amount=1000,
        recurring={"interval": "month"},
    )
    return render(account, price)


SERVICE = Service(
    name="products",
    routes=ROUTES,
    shapes=[
        Shape("product", "product", _product),
        Shape("deleted_product", "deleted_product", _deleted_product),
        Shape("price", "price", _price),
    ],
    includes={("price", "tiers"): include_tiers},
)

__all__ = ["SERVICE", "ProductsBackend"]
