"""A change that takes a metered price off a subscription within its period waits for the period's end, whatever
the project's rule or the request's `proration_behavior`: Stripe (`billing_mode` classic) bills a metered item only
for the usage from its price's change on, so the period's usage so far would be billed by nobody. Driven through
the API and the emulator's subscriptions, meters and webhooks; the renewal read through Tollgate's mirror."""

import pytest

from billing.models import Invoice, Subscription
from catalog.models import Price, Product
from tests.catalog import price_create
from tests.entitlements.test_plan_credits import _no_failed_events
from tests.entitlements.test_usage_corrections_renewals import subscribed  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def _live_prices(stripe_sdk, subscription):
    live = stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    return [i.price.id for i in live["items"].data]


def _use(api, tenant, event_id, quantity):
    body = {"id": event_id, "customer": "user-1", "feature": "api_calls", "quantity": quantity}
    assert api.post("/api/v1/usage", body, key=tenant.key).status_code == 201


@pytest.mark.parametrize("body", [{"price": "calls-bulk"}, {"items": [{"price": "calls-bulk"}]}])
def test_a_metered_price_replaced_within_the_period_waits_for_its_end_so_its_usage_is_billed(
    api,
    tenant_a,
    subscribed,  # noqa: F811
    stripe_emulator,
    stripe_sdk,
    stripe_webhooks,
    body,
):
    """`user-1`'s metered `calls` (2 cents) is replaced by `calls-bulk` (1 cent), asked now without prorations:
    the change is held for the period's end (`pending_change`), the period's 15 calls — 10 before the request, 5
    after — are billed at 2 cents on the renewal, and the item takes `calls-bulk` then."""
    subscription = Subscription.objects.get(pk=subscribed[0])
    price_create(
        Product.objects.get(key="pro"),
        "calls-bulk",
        1,
        interval="month",
        usage_type="metered",
        meter="api_calls",
    )
    old, bulk = (Price.objects.get(key=key).stripe_price_id for key in ("calls", "calls-bulk"))
    _use(api, tenant_a, "e1", 10)

    path = f"/api/v1/subscriptions/{subscription.pk}"
    preview = api.post(f"{path}/preview", {**body, "proration_behavior": "none"}, key=tenant_a.key)
    assert preview.status_code == 200, preview.json()
    period_end = subscription.current_period_end
    assert {k: preview.json()[k] for k in ("amount_due", "lines", "rule", "effective_at")} == {
        "amount_due": 0,
        "lines": [],
        "rule": "period_end",
        "effective_at": period_end.isoformat().replace("+00:00", "Z"),
    }
    answer = api.patch(path, {**body, "proration_behavior": "none"}, key=tenant_a.key)
    assert answer.status_code == 200, answer.json()
    assert answer.json()["pending_change"] == {
        "price": "calls-bulk",
        "quantity": 1,  # as the subscription's own `quantity` says for a metered primary item
        "items": [{"price": "calls-bulk", "quantity": None}],
        "effective_at": period_end.isoformat().replace("+00:00", "Z"),
    }
    assert _live_prices(stripe_sdk, subscription) == [old]
    _use(api, tenant_a, "e2", 5)

    stripe_emulator.advance(int(period_end.timestamp()) - stripe_emulator.clock.now() + 60)
    stripe_webhooks.deliver()
    _no_failed_events()
    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    assert [(line["stripe_price_id"], line["quantity"], line["amount"]) for line in renewal.lines] == [
        (old, 15, 30)
    ]
    assert _live_prices(stripe_sdk, subscription) == [bulk]
    subscription.refresh_from_db()
    assert (subscription.price.key, subscription.pending_change) == ("calls-bulk", None)
