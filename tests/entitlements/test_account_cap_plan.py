"""A plan's account cap (a product's `account_cap`): the catalog default of the account cap, for every customer
holding the product who has no account cap of their own; their own (`/entitlements/spend_caps`) overrides it, and
removing their own brings the plan's back. Judged as their own is: past it use past a limit is refused or
announced once a period, and concurrent uses of different features never pass it together."""

import io

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Product
from core.models import AuditLogEntry
from customers.models import Customer
from entitlements.explain import entitlements_explain
from entitlements.models import SpendCap, UsageCounter, UsageEvent
from tests.entitlements.helpers import customer, product, subscribe
from tests.entitlements.test_account_caps import (
    CAPS,
    _reached,
    account_cap,
    billed_plan,
    check,
    consume,
    race_two_features,
)

PRODUCTS = "/api/v1/products"


def plan_cap(api, tenant, cap, product="pro-u1"):
    response = api.patch(f"{PRODUCTS}/{product}", {"account_cap": cap}, key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


@pytest.fixture
def billed(tenant_a, stripe_emulator):
    return billed_plan(tenant_a.project)


def test_a_plans_account_cap_bounds_its_customers_without_their_own(api, tenant_a, billed):
    product = plan_cap(api, tenant_a, {"amount": 50, "currency": "USD"})
    assert product["account_cap"] == {"amount": 50, "currency": "usd", "at_cap": "block"}
    assert Product.objects.get(key="pro-u1").account_cap == {
        "amount": 50,
        "currency": "usd",
        "at_cap": "block",
    }
    assert consume(api, tenant_a, "c1", "api_calls", 110)["account_cap"] == {
        "at_cap": "block",
        "set_by": "plan",
        "amount": 50,
        "currency": "usd",
        "used_amount": 20,
        "left_amount": 30,
        "left_units": 15,
    }
    assert consume(api, tenant_a, "t1", "tokens", 1029)["account_cap"]["left_amount"] == 1
    refused = consume(api, tenant_a, "c2", "api_calls", 1)
    assert (refused["allowed"], refused["binding"], refused["used"]) == (False, "account_cap", 110)
    assert UsageEvent.objects.filter(event_id="c2").count() == 0
    assert _reached() == []
    assert consume(api, tenant_a, "t2", "tokens", 1)["account_cap"]["left_amount"] == 0
    assert _reached() == [("account", "tokens", 50)]
    assert consume(api, tenant_a, "t3", "tokens", 1)["binding"] == "account_cap"
    explained = entitlements_explain(
        project=tenant_a.project, customer=Customer.objects.get(external_id="u1")
    )
    tokens = next(f for f in explained.features if f.key == "tokens")
    assert tokens.verdict.endswith(
        "Account cap (the plan's, blocks at it): $0.50 of $0.50 billed across the customer's metered features "
        "this period."
    )
    # Use within a limit is the plan's allowance: never refused by it.
    assert consume(api, tenant_a, "e1", "exports", 3)["allowed"] is True
    assert _reached() == [("account", "tokens", 50)]
    audit = AuditLogEntry.objects.filter(action="product.updated").latest("created_at")
    assert (audit.before["account_cap"], audit.after["account_cap"]) == (
        None,
        {"amount": 50, "currency": "usd", "at_cap": "block"},
    )


def test_an_alert_plan_cap_is_announced_once_a_period(api, tenant_a, billed):
    plan_cap(api, tenant_a, {"amount": 10, "currency": "usd", "at_cap": "alert"})
    consume(api, tenant_a, "c1", "api_calls", 100)
    assert consume(api, tenant_a, "c2", "api_calls", 6)["allowed"] is True
    assert _reached() == [("account", "api_calls", 12)]
    assert consume(api, tenant_a, "t1", "tokens", 1005)["allowed"] is True
    assert consume(api, tenant_a, "c3", "api_calls", 1)["account_cap"]["left_amount"] == 0
    assert _reached() == [("account", "api_calls", 12)]


def test_the_customers_own_cap_overrides_the_plans_and_removing_it_brings_the_plans_back(
    api, tenant_a, billed
):
    plan_cap(api, tenant_a, {"amount": 10, "currency": "usd"})
    consume(api, tenant_a, "c1", "api_calls", 105)
    assert check(api, tenant_a, "api_calls")["account_cap"]["left_amount"] == 0
    own = account_cap(api, tenant_a, {"amount": 40, "currency": "usd"})
    answer = consume(api, tenant_a, "c2", "api_calls", 10)
    assert (answer["allowed"], answer["account_cap"]["set_by"], answer["account_cap"]["left_amount"]) == (
        True,
        "customer",
        10,
    )
    removed = api.delete(f"{CAPS}/{own['id']}", key=tenant_a.key)
    assert removed.status_code == 200, removed.json()
    answer = check(api, tenant_a, "api_calls")
    assert (answer["allowed"], answer["binding"], answer["account_cap"]["set_by"]) == (
        False,
        "account_cap",
        "plan",
    )
    assert answer["account_cap"]["used_amount"] == 30


def test_a_malformed_plan_cap_is_refused_and_nothing_stored(api, tenant_a, billed):
    for cap, code in (
        ({"amount": -1, "currency": "usd"}, "invalid_parameter"),
        ({"amount": 5}, "parameter_missing"),
        ({"units": 5, "amount": 5, "currency": "usd"}, "parameter_conflict"),
        ({"amount": 5, "currency": "usd", "at_cap": "shout"}, "invalid_parameter"),
        ("5 dollars", "invalid_parameter"),
    ):
        response = api.patch(f"{PRODUCTS}/pro-u1", {"account_cap": cap}, key=tenant_a.key)
        assert response.status_code == 400, cap
        assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (code, "account_cap")
    assert Product.objects.get(key="pro-u1").account_cap is None
    assert check(api, tenant_a, "api_calls")["account_cap"] is None


def test_removing_the_plans_cap_frees_its_customers(api, tenant_a, billed):
    plan_cap(api, tenant_a, {"amount": 2, "currency": "usd"})
    consume(api, tenant_a, "c1", "api_calls", 101)
    assert check(api, tenant_a, "api_calls")["allowed"] is False
    assert plan_cap(api, tenant_a, None)["account_cap"] is None
    answer = check(api, tenant_a, "api_calls")
    assert (answer["allowed"], answer["account_cap"]) == (True, None)


def test_sync_catalog_declares_a_plans_account_cap(api, tenant_a, billed, tmp_path):
    catalog = tmp_path / "catalog.yaml"
    listed = api.get(f"{PRODUCTS}/pro-u1", key=tenant_a.key).json()
    catalog.write_text(
        "products:\n"
        f"  - key: pro-u1\n    name: {listed['name']}\n"
        "    features:\n"
        "      api_calls: {limit: 100, overage: allowed}\n"
        "      tokens: {limit: 1000, overage: allowed}\n"
        "      exports: 10\n"
        "    account_cap: {amount: 300, currency: USD, at_cap: alert}\n"
    )
    call_command("sync_catalog", tenant_a.project.slug, str(catalog), stdout=io.StringIO())
    assert Product.objects.get(key="pro-u1").account_cap == {
        "amount": 300,
        "currency": "usd",
        "at_cap": "alert",
    }
    assert check(api, tenant_a, "api_calls")["account_cap"]["amount"] == 300


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_uses_of_two_features_never_pass_a_plans_cap_together(api, tenant_a, billed):
    """As with the customer's own cap: 40 uses at once, half calls (2 cents), half tokens (1 cent), past their
    limits, under a plan's cap of 30 cents; announced once."""
    plan_cap(api, tenant_a, {"amount": 30, "currency": "usd"})
    results = race_two_features(api, tenant_a)
    counters = dict(UsageCounter.objects.values_list("feature__key", "used"))
    billed_total = 2 * (counters["api_calls"] - 100) + (counters["tokens"] - 1000)
    allowed = [r["feature"] for r in results if r["allowed"]]
    assert billed_total == 2 * allowed.count("api_calls") + allowed.count("tokens") == 30
    assert {r["binding"] for r in results if not r["allowed"]} == {"account_cap"}
    assert [(scope, billed) for scope, _, billed in _reached()] == [("account", 30)]
    assert not SpendCap.objects.exists()


def test_the_public_plans_show_a_plans_account_cap(api, tenant_a, billed):
    shown = api.patch(
        f"{PRODUCTS}/pro-u1",
        {"public": True, "account_cap": {"amount": 50000, "currency": "usd", "at_cap": "alert"}},
        key=tenant_a.key,
    )
    assert shown.status_code == 200, shown.json()
    plans = api.get(f"/api/v1/public/{tenant_a.project.slug}/plans").json()["data"]
    assert [(plan["key"], plan["account_cap"]) for plan in plans] == [
        ("pro-u1", {"amount": 50000, "currency": "usd", "at_cap": "alert"})
    ]
    plan_cap(api, tenant_a, None)
    plans = api.get(f"/api/v1/public/{tenant_a.project.slug}/plans").json()["data"]
    assert [(plan["key"], plan["account_cap"]) for plan in plans] == [("pro-u1", None)]


def test_sync_catalog_refuses_a_malformed_plan_cap_and_changes_nothing(api, tenant_a, billed, tmp_path):
    catalog = tmp_path / "catalog.yaml"
    name = api.get(f"{PRODUCTS}/pro-u1", key=tenant_a.key).json()["name"]
    catalog.write_text(
        f"products:\n  - key: pro-u1\n    name: {name}\n    account_cap: {{amount: 300}}\n"
        "  - key: later\n    name: Later\n"
    )
    with pytest.raises(CommandError, match=r"products\[0\]\.account_cap: an account cap is"):
        call_command("sync_catalog", tenant_a.project.slug, str(catalog), stdout=io.StringIO())
    assert Product.objects.get(key="pro-u1").account_cap is None
    assert not Product.objects.filter(key="later").exists()


def test_a_plan_cap_in_another_currency_does_not_displace_the_cap_the_customers_prices_bill_in(
    api, tenant_a, billed
):
    """An add-on declaring 10 EUR does not displace the base plan's 50 USD when the customer's metered prices all
    bill in USD: amounts of different currencies do not compare, and a cap in EUR would sum none of their prices
    (it did: 26 calls past the limit, 52 cents, were allowed). The USD cap bounds their use: 25 fit, 26 do not."""
    p = tenant_a.project
    plan_cap(api, tenant_a, {"amount": 50, "currency": "usd"})
    subscribe(customer(p, "u1"), product(p, "eu-addon", {}))
    plan_cap(api, tenant_a, {"amount": 10, "currency": "eur"}, product="eu-addon")
    consume(api, tenant_a, "c1", "api_calls", 100)
    answer = check(api, tenant_a, "api_calls", 26)
    assert (answer["allowed"], answer["binding"]) == (False, "account_cap")
    assert answer["account_cap"] == {
        "at_cap": "block",
        "set_by": "plan",
        "amount": 50,
        "currency": "usd",
        "used_amount": 0,
        "left_amount": 50,
        "left_units": 25,
    }


def test_an_alert_plan_cap_declared_below_what_the_customer_bills_is_announced_on_the_next_use(
    api, tenant_a, billed
):
    """A plan's cap is not refused below what a customer already bills; it applies from the next use. A customer
    billing 12 cents when their plan declares an alert cap of 10 is announced on their next use, once for the
    period (only a use taking the bill from below the amount to it was announced: never, that period)."""
    consume(api, tenant_a, "c1", "api_calls", 106)  # 12 cents
    plan_cap(api, tenant_a, {"amount": 10, "currency": "usd", "at_cap": "alert"})
    answer = consume(api, tenant_a, "c2", "api_calls", 1)
    assert (answer["allowed"], answer["account_cap"]["set_by"], answer["account_cap"]["used_amount"]) == (
        True,
        "plan",
        14,
    )
    consume(api, tenant_a, "c3", "api_calls", 1)
    assert _reached() == [("account", "api_calls", 14)]
