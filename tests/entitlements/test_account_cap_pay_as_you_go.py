"""An account cap over pay-as-you-go use: a metered feature without a limit, whose metered price bills every unit,
is summed and bounded by the customer's account cap as use past a limit is (`entitlements.account_cap`): a blocking
cap refuses the use that would bill past it (`binding: "account_cap"`, nothing recorded), an alerting one announces
the crossing once a period."""

import pytest

from billing.models import SubscriptionItem
from catalog.models import Feature
from entitlements.models import Hold, UsageCounter, UsageEvent
from tests.catalog import price_create, product_create
from tests.entitlements.helpers import customer, feature, hand_subscription, product, subscribe
from tests.entitlements.test_account_caps import _reached, account_cap, check, consume


def pay_as_you_go_plan(project, external_id="u1"):
    """`api_calls` without a limit, 2 cents each from the first, sold by a metered price `external_id`'s
    subscription carries."""
    calls = feature(project, "api_calls", Feature.Type.METERED)
    price = price_create(
        product_create(project, "usage-calls", "Usage calls"),
        "calls",
        2,
        interval="month",
        usage_type="metered",
        meter="api_calls",
    )
    subscription = subscribe(customer(project, external_id), product(project, "payg", {calls: None}))
    for item, (sold, quantity) in enumerate([(subscription.price, 1), (price, None)]):
        SubscriptionItem.objects.create(
            project=project,
            subscription=subscription,
            price=sold,
            product=sold.product,
            quantity=quantity,
            usage_type=sold.usage_type,
            stripe_item_id=f"si_for_{subscription.pk}_{item}",
        )
    hand_subscription(subscription)
    return subscription


@pytest.fixture
def payg(tenant_a, stripe_emulator):
    return pay_as_you_go_plan(tenant_a.project)


def test_a_blocking_account_cap_bounds_pay_as_you_go_use(api, tenant_a, payg):
    assert check(api, tenant_a, "api_calls", 1000)["allowed"] is True  # no cap yet: unbounded, as before
    account_cap(api, tenant_a, {"amount": 50, "currency": "usd"})
    answer = consume(api, tenant_a, "c1", "api_calls", 20)
    assert (answer["allowed"], answer["limit"], answer["used"], answer["step"]) == (
        True,
        None,
        20,
        "allowance",
    )
    assert answer["account_cap"] == {
        "at_cap": "block",
        "set_by": "customer",
        "amount": 50,
        "currency": "usd",
        "used_amount": 40,
        "left_amount": 10,
        "left_units": 5,
    }
    assert check(api, tenant_a, "api_calls", 5)["allowed"] is True
    refused = consume(api, tenant_a, "c2", "api_calls", 6)
    assert (refused["allowed"], refused["binding"], refused["step"]) == (False, "account_cap", None)
    assert refused["retry_after"] > 0
    assert UsageCounter.objects.get().used == 20
    assert UsageEvent.objects.count() == 1
    body = {"id": "job", "customer": "u1", "feature": "api_calls", "quantity": 6}
    held = api.post("/api/v1/entitlements/holds", body, key=tenant_a.key).json()
    assert (held["allowed"], held["entitlement"]["binding"]) == (False, "account_cap")
    assert not Hold.objects.exists()
    last = consume(api, tenant_a, "c3", "api_calls", 5)
    assert (last["allowed"], last["account_cap"]["used_amount"], last["account_cap"]["left_units"]) == (
        True,
        100 // 2,
        0,
    )
    assert _reached() == [("account", "api_calls", 50)]


def test_an_alerting_account_cap_announces_pay_as_you_go_use_once(api, tenant_a, payg):
    account_cap(api, tenant_a, {"amount": 50, "currency": "usd", "at_cap": "alert"})
    answer = consume(api, tenant_a, "c1", "api_calls", 100)
    assert (
        answer["allowed"],
        answer["account_cap"]["used_amount"],
        answer["account_cap"]["left_amount"],
    ) == (
        True,
        200,
        0,
    )
    assert consume(api, tenant_a, "c2", "api_calls", 10)["allowed"] is True
    events = [{"id": "r1", "customer": "u1", "feature": "api_calls", "quantity": 5}]
    assert api.post("/api/v1/usage/batch", {"events": events}, key=tenant_a.key).status_code == 200
    assert _reached() == [("account", "api_calls", 200)]
    assert UsageCounter.objects.get().used == 115
