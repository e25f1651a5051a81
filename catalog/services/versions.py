"""Product versions, written: a product's feature values change only by publishing a new version, which new
subscribers get while existing ones keep the version they bought (`products.product_update` publishes one whenever
they change; `drafts` publishes a draft through it).
"""

from django.utils import timezone

from catalog.models import Product, ProductVersion
from catalog.versions import version_contents


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
