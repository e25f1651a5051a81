"""The tenant events of the subscription mirror show the items as the API then shows them: created, a quantity
changed, an item removed, a metered item added and removed, the plan replaced (each event's `items` and the previous ones)."""

from typing import Any

import pytest

from billing.models import Subscription
from billing.representations import SubscriptionOutput
from events.models import Event
from tests.billing import test_subscription_items
from tests.billing.test_subscription_items import Plans, base_and_addon

pytestmark = pytest.mark.django_db

plans = test_subscription_items.plans


def _rendered(stripe_subscription_id: str) -> list[dict[str, Any]]:
    return SubscriptionOutput.items_of(
        Subscription.objects.get(stripe_subscription_id=stripe_subscription_id)
    )


def _last_event(project: Any) -> Event:
    return (
        Event.objects.filter(project=project, type__startswith="subscription.").order_by("-sequence").first()
    )


def test_each_event_shows_the_items_then_and_before(api, tenant_a, plans: Plans, stripe_sdk, stripe_webhooks):
    sdk = stripe_sdk()
    created, ids = base_and_addon(api, tenant_a, plans, sdk, stripe_webhooks)
    first = _last_event(tenant_a.project)
    assert first.type == "subscription.created"
    shown = _rendered(created.id)
    assert first.data["object"]["items"] == shown
    assert [(item["price"], item["quantity"]) for item in shown] == [
        ("base-monthly", 2),
        ("addon-monthly", 1),
    ]

    changes = [
        {"items": [{"id": ids[plans.base_monthly.stripe_price_id], "quantity": 3}]},
        {"items": [{"id": ids[plans.addon_monthly.stripe_price_id], "deleted": True}]},
        {"items": [{"price": plans.calls.stripe_price_id}]},
        None,  # the metered item removed again (its Stripe id is known once it is added)
        {
            "items": [
                {"id": ids[plans.base_monthly.stripe_price_id], "deleted": True},
                {"price": plans.base_yearly.stripe_price_id, "quantity": 4},
            ]
        },
    ]
    for change in changes:
        before = shown
        if change is None:
            calls = Subscription.objects.get(stripe_subscription_id=created.id).items.get(price=plans.calls)
            change = {"items": [{"id": calls.stripe_item_id, "deleted": True}]}
        sdk.v1.subscriptions.update(created.id, {**change, "proration_behavior": "none"})
        stripe_webhooks.deliver()
        event = _last_event(tenant_a.project)
        shown = _rendered(created.id)
        assert event.data["object"]["items"] == shown
        assert event.previous_attributes["items"] == before
    assert [(item["price"], item["quantity"]) for item in shown] == [("base-yearly", 4)]
