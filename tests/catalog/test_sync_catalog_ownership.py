"""`manage.py sync_catalog` on a project holding a product row an earlier adoption copied from another project's
Stripe product (on the platform's shared account): the "sync" it plans for the drift is refused before Stripe,
reported, and the other project's Stripe product keeps its name and `metadata.tollgate_project`."""

import io

import pytest
import yaml
from django.core.management import CommandError, call_command

from catalog.models import Price, Product
from catalog.services.sync import CatalogChange, catalog_apply
from core.actors import Actor
from core.errors import NotFound
from tests.billing.factories import PriceFactory, ProductFactory


def test_sync_catalog_does_not_rewrite_another_projects_copied_product(
    tmp_path, tenant_a, tenant_b, catalog_b, stripe_sdk
):
    sdk = stripe_sdk()
    theirs = catalog_b.pro.stripe_product_id
    ProductFactory(project=tenant_a.project, key="pro-copy", name="Copied", stripe_product_id=theirs)
    before = sdk.v1.products.retrieve(theirs).to_dict()
    assert (before["name"], before["metadata"]["tollgate_project"]) == (
        catalog_b.pro.name,
        tenant_b.project.pk,
    )
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"products": [{"key": "pro-copy", "name": "Copied"}]}, sort_keys=False))
    rows = list(Product.objects.order_by("pk").values())

    out = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("sync_catalog", tenant_a.project.slug, str(path), stdout=out)

    assert str(refused.value) == (
        "Stopped at `sync product pro-copy (Stripe differs)`: No such product: 'pro-copy'. What was applied "
        "before stays applied; run the command again to complete the rest."
    )
    assert sdk.v1.products.retrieve(theirs).to_dict() == before
    assert list(Product.objects.order_by("pk").values()) == rows


def test_sync_catalog_does_not_rewrite_another_projects_copied_price(
    tenant_a, tenant_b, catalog_b, stripe_sdk
):
    """A price row copied from another project's Stripe price, on a product of the project's own: the "sync"
    step is refused (404) and the other project's Stripe price keeps its lookup key and metadata."""
    sdk = stripe_sdk()
    theirs = catalog_b.pro_monthly.stripe_price_id
    product = ProductFactory(project=tenant_a.project, key="mine", stripe_product_id="")
    PriceFactory(
        project=tenant_a.project,
        product=product,
        key="copy-monthly",
        type=Price.Type.RECURRING,
        interval="month",
        unit_amount=3000,
        stripe_price_id=theirs,
    )
    before = sdk.v1.prices.retrieve(theirs).to_dict()
    rows = list(Price.objects.order_by("pk").values())

    with pytest.raises(NotFound) as refused:
        catalog_apply(
            project=tenant_a.project,
            actor=Actor.system("test"),
            plan=[CatalogChange("sync", "price", "copy-monthly", note="Stripe differs")],
        )

    assert (refused.value.message, refused.value.param) == ("No such price: 'copy-monthly'.", None)
    assert sdk.v1.prices.retrieve(theirs).to_dict() == before
    assert before["metadata"]["tollgate_project"] == tenant_b.project.pk
    assert list(Price.objects.order_by("pk").values()) == rows
