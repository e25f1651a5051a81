"""A small catalog for checkout, payment and subscription tests, created in the emulator through the official SDK and
mirrored locally the way the catalog service stores it (Stripe ids on our rows)."""

from dataclasses import dataclass
from typing import Any

from billing.models import Price, Product


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


def product_create(sdk: Any, project: Any, key: str, name: str) -> Product:
    stripe_product = sdk.v1.products.create({"name": name, "metadata": {"tollgate_project": project.pk}})
    return Product.objects.create(project=project, key=key, name=name, stripe_product_id=stripe_product.id)


def price_create(
    sdk: Any, product: Product, key: str, amount: int, currency: str = "usd", interval: str = "", **extra: Any
) -> Price:
    params: dict[str, Any] = {
        "product": product.stripe_product_id,
        "unit_amount": amount,
        "currency": currency,
        "lookup_key": f"{product.project.slug}:{key}",
    }
    if interval:
        params["recurring"] = {"interval": interval}
    stripe_price = sdk.v1.prices.create(params)
    return Price.objects.create(
        project=product.project,
        product=product,
        key=key,
        currency=currency,
        unit_amount=amount,
        type=Price.Type.RECURRING if interval else Price.Type.ONE_TIME,
        interval=interval,
        stripe_price_id=stripe_price.id,
        **extra,
    )


def make_catalog(sdk: Any, project: Any) -> Catalog:
    pro = product_create(sdk, project, "pro", "Professional")
    credits = product_create(sdk, project, "credits", "Credit pack")
    return Catalog(
        project=project,
        pro=pro,
        pro_monthly=price_create(sdk, pro, "pro-monthly", 3000, interval="month"),
        pro_monthly_eur=price_create(sdk, pro, "pro-monthly-eur", 2800, currency="eur", interval="month"),
        credits=credits,
        credit_pack=price_create(sdk, credits, "credits-1000", 1500),
        sticker=price_create(sdk, credits, "sticker", 200),
        gbp_pack=price_create(sdk, credits, "credits-gbp", 1300, currency="gbp"),
    )
