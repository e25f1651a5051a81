"""A small catalog for checkout, payment and subscription tests, created through the catalog services (so the
Stripe products and prices in the emulator carry the same lookup keys and metadata as in production)."""

from dataclasses import dataclass
from typing import Any

from catalog.models import Price, Product
from catalog.services import prices, products
from core.actors import Actor

ACTOR = Actor.system("tests")


@dataclass
class Catalog:
    project: Any
    pro: Product
    pro_monthly: Price
    pro_monthly_eur: Price
    credits: Product
    credit_pack: Price
    sticker: Price
    gbp_pack: Price


def product_create(project: Any, key: str, name: str) -> Product:
    return products.product_create(project=project, actor=ACTOR, key=key, name=name)


def price_create(
    product: Product, key: str, amount: int, currency: str = "usd", interval: str = "", **extra: Any
) -> Price:
    return prices.price_create(
        project=product.project,
        actor=ACTOR,
        key=key,
        product=product,
        currency=currency,
        unit_amount=amount,
        type=Price.Type.RECURRING if interval else Price.Type.ONE_TIME,
        interval=interval or None,
        **extra,
    )


def make_catalog(project: Any) -> Catalog:
    pro = product_create(project, "pro", "Professional")
    credits = product_create(project, "credits", "Credit pack")
    return Catalog(
        project=project,
        pro=pro,
        pro_monthly=price_create(pro, "pro-monthly", 3000, interval="month"),
        pro_monthly_eur=price_create(pro, "pro-monthly-eur", 2800, currency="eur", interval="month"),
        credits=credits,
        credit_pack=price_create(credits, "credits-1000", 1500),
        sticker=price_create(credits, "sticker", 200),
        gbp_pack=price_create(credits, "credits-gbp", 1300, currency="gbp"),
    )
