"""Every list of the client answers a page (`data`, `has_more`, iteration), the customer's thresholds and
auto-recharges too: the API answers them as list objects, and the guide promises pages."""

import pytest
from tollgate_client.pagination import Page
from tollgate_client.types import AutoRecharge, UsageThreshold

pytestmark = pytest.mark.django_db(transaction=True)


def test_thresholds_and_auto_recharges_are_listed_as_pages(tollgate, tollgate_b, plans):
    tollgate.products.create(key="topup", name="Top-up", features={"ai_credits": 500})
    tollgate.prices.create(key="topup-500", product="topup", currency="usd", unit_amount=900, type="one_time")
    tollgate.entitlements.grants.create(customer="user-1", feature="ai_credits", value=120, reason="welcome")
    first = tollgate.entitlements.thresholds.create(customer="user-1", feature="exports", quantity=2)
    second = tollgate.entitlements.thresholds.create(customer="user-1", feature="ai_credits", quantity=10)
    recharge = tollgate.entitlements.auto_recharges.create(
        customer="user-1", feature="ai_credits", below=50, price="topup-500"
    )

    thresholds = tollgate.entitlements.thresholds.list(customer="user-1")
    assert isinstance(thresholds, Page)
    assert [t.id for t in thresholds.data] == [first.id, second.id]
    assert all(isinstance(t, UsageThreshold) for t in thresholds)
    assert (thresholds.has_more, len(thresholds), thresholds.next_page()) == (False, 2, None)
    assert [t.id for t in thresholds.auto_paging_iter()] == [first.id, second.id]
    assert thresholds.raw["object"] == "list"

    recharges = tollgate.entitlements.auto_recharges.list(customer="user-1")
    assert isinstance(recharges, Page)
    assert [(r.id, r.status) for r in recharges.data] == [(recharge.id, "armed")]
    assert all(isinstance(r, AutoRecharge) for r in recharges)
    assert (recharges.has_more, len(recharges), recharges.next_page()) == (False, 1, None)

    # Another project's customer of the same id has none of them.
    assert tollgate_b.entitlements.thresholds.list(customer="user-1").data == []
    assert tollgate_b.entitlements.auto_recharges.list(customer="user-1").data == []
