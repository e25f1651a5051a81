"""Product versions, written: a product's feature values and account cap change only by publishing a new version,
which new subscribers get while existing ones keep the version they bought (`products.product_update` publishes one
whenever they change; `drafts` publishes a draft through it).
"""

from django.utils import timezone

from catalog.models import Price, Product, ProductVersion
from catalog.versions import price_frozen, version_contents


def product_version_publish(product: Product, *, first: bool = False, note: str = "") -> ProductVersion:
    """Freezes what `product` (locked by the caller, its rows written) gives now as its next version — version
    1 when `first` — and makes it the latest. Runs in the caller's transaction."""
    number = 1 if first else product.version + 1
    version = ProductVersion.objects.create(
        product=product, number=number, published_at=timezone.now(), note=note, **version_contents(product)
    )
    if not first:
        Product.objects.filter(pk=product.pk).update(version=number, updated_at=timezone.now())
    product.version = number
    return version


def version_price_add(price: Price) -> None:
    """A price put on sale for its product (created or adopted, active) is sold by the product's latest version
    from now on: the version gains it, frozen as it is, in the caller's transaction (the product locked first, as
    a publish locks it). What the version froze before stays as it was; a key it has already is left alone."""
    if not price.active:
        return
    product = Product.objects.select_for_update().get(pk=price.product_id)
    version = ProductVersion.objects.filter(product=product, number=product.version).first()
    if version is None or any(frozen["key"] == price.key for frozen in version.prices):
        return
    ProductVersion.objects.filter(pk=version.pk).update(prices=[*version.prices, price_frozen(price)])


def version_stripe_prices_fill(product_id: str, number: int) -> None:
    """Version `number` froze the prices it repriced before Stripe made their new prices: each frozen price
    without a Stripe price gets the one its price has now, when that price still has the terms the version
    froze (a version's Stripe prices are what a move to it puts its subscribers on)."""
    version = ProductVersion.objects.filter(product_id=product_id, number=number).first()
    if version is None or all(price.get("stripe_price_id") for price in version.prices):
        return
    rows = {price.key: price for price in Price.objects.filter(product_id=product_id)}
    filled = []
    for frozen in version.prices:
        row = rows.get(frozen["key"])
        if (
            not frozen.get("stripe_price_id")
            and row is not None
            and row.stripe_price_id
            and (row.unit_amount, row.tiers or None) == (frozen.get("unit_amount"), frozen.get("tiers"))
        ):
            frozen = {**frozen, "stripe_price_id": row.stripe_price_id}
        filled.append(frozen)
    ProductVersion.objects.filter(pk=version.pk).update(prices=filled)
