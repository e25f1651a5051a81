"""The upgrade that versioned a product's account cap (catalog 0015): before it, every subscriber had the product's
cap as it stood, whatever their version; after it, each version written before holds that cap, so no answer
changes, a product without a cap leaves its versions without one, and a draft saved before keeps the cap."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from catalog.models import ProductDraft, ProductVersion

CAP = {"amount": 9000, "currency": "usd", "at_cap": "block"}


def _migrate(target: str | None = None) -> None:
    """Catalog's schema at `target`, or at its newest migration (what every other test runs on)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    if target is None:
        (target,) = (name for app, name in executor.loader.graph.leaf_nodes() if app == "catalog")
    executor.migrate([("catalog", target)])


@pytest.fixture
def schema_restored():
    """Whatever the test does, the next tests find catalog's newest schema."""
    yield
    _migrate()


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_gives_each_version_its_products_account_cap(api, tenant_a, catalog, schema_restored):
    made = api.post("/api/v1/features", {"key": "sso", "name": "SSO", "type": "boolean"}, key=tenant_a.key)
    assert made.status_code == 201, made.json()
    for features in ({"sso": True}, {"sso": False}):
        answer = api.patch("/api/v1/products/pro", {"features": features}, key=tenant_a.key)
        assert answer.status_code == 200, answer.json()
    answer = api.patch("/api/v1/products/pro", {"account_cap": CAP}, key=tenant_a.key)
    assert (answer.status_code, answer.json()["version"]) == (200, 4)
    drafted = api.put("/api/v1/products/pro/draft", {"features": {"sso": True}}, key=tenant_a.key)
    assert drafted.status_code == 200, drafted.json()

    _migrate("0014_draft_prices")  # as the database was before: the cap on the product alone
    _migrate()

    versions = ProductVersion.objects.values_list("product__key", "number", "account_cap")
    assert {cap for key, _, cap in versions if key != "pro"} == {None}
    assert sorted((number, cap) for key, number, cap in versions if key == "pro") == [
        (1, CAP),
        (2, CAP),
        (3, CAP),
        (4, CAP),
    ]
    # The draft saved before the upgrade keeps the cap: publishing it does not remove it.
    assert ProductDraft.objects.get(product__key="pro").account_cap == CAP
