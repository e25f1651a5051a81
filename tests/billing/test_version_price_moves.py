"""Moving subscribers to a version that reprices (#52 point 3): a draft that repriced `pro-monthly` published as
version 3 freezes its new Stripe price; moving a version-2 subscriber there moves their Stripe item to it — an
upgrade now with prorations (the project's rule), previewed with Stripe's invoice preview first; a downgrade the
project defers to the period's end through the subscription's schedule, the version following at the renewal; a
move whose Stripe answer was lost finished by its retry with one change at Stripe. Driven through the emulator's
Checkout, subscriptions and webhooks, read through the API."""

from datetime import UTC, datetime

import pytest
import time_machine

from billing.models import Invoice, SubscriptionItem
from billing.services.version_moves import version_moves_due
from catalog.models import Price, ProductVersion
from core.models import AuditLogEntry
from projects.models import Project
from stripe_gateway.client import install_http_client
from tests.billing.test_metered_price_changes import _use
from tests.catalog.test_catalog_prices import Network
from tests.catalog.test_product_versions import V2, versioned  # noqa: F401 (a fixture)
from tests.entitlements.test_plan_credits import _no_failed_events, _subscribe
from tests.entitlements.test_usage_corrections_renewals import _repriced, subscribed  # noqa: F401 (a fixture)

MOVES = "/api/v1/subscriptions/version_moves"


def _reprice(api, tenant, amount):
    """Version 3: version 2's features, `pro-monthly` at `amount`; its new Stripe price id."""
    drafted = api.put(
        "/api/v1/products/pro/draft", {"prices": {"pro-monthly": {"unit_amount": amount}}}, key=tenant.key
    )
    assert drafted.status_code == 200, drafted.json()
    published = api.post("/api/v1/products/pro/draft/publish", {"version": 3}, key=tenant.key)
    assert published.status_code == 200, published.json()
    new = Price.objects.get(key="pro-monthly").stripe_price_id
    frozen = ProductVersion.objects.get(product__key="pro", number=3).prices
    assert [(p["unit_amount"], p["stripe_price_id"]) for p in frozen if p["key"] == "pro-monthly"] == [
        (amount, new)
    ]
    return new


@pytest.fixture
def early(api, tenant_a, versioned, stripe_emulator, stripe_webhooks):  # noqa: F811
    """`early` subscribed to `pro-monthly` (30.00) on version 2; its item and Stripe price."""
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="early")
    _no_failed_events()
    return SubscriptionItem.objects.get(subscription__customer__external_id="early")


def _live_price(stripe_sdk, item):
    live = stripe_sdk().v1.subscriptions.retrieve(item.subscription.stripe_subscription_id)
    return [(i.price.id, i.quantity) for i in live["items"].data]


def _proration_items(stripe_sdk, item):
    customer = stripe_sdk().v1.subscriptions.retrieve(item.subscription.stripe_subscription_id).customer
    return sorted(i.amount for i in stripe_sdk().v1.invoice_items.list({"customer": customer}).data)


def test_an_upgrade_previewed_then_moved_now_with_prorations_once(
    api, tenant_a, early, stripe_sdk, stripe_webhooks
):
    old = early.stripe_price_id
    new = _reprice(api, tenant_a, 3500)
    assert _live_price(stripe_sdk, early) == [(old, 1)]  # publishing moved nobody

    preview = api.post(MOVES, {"product": "pro", "to_version": 3, "preview": True}, key=tenant_a.key).json()
    (move,) = preview["moves"]
    assert (move["customer"], move["from_version"], move["changes"], move["proration"]) == (
        "early",
        2,
        [],
        "now_prorate",
    )
    assert move["prices"] == [{"price": "pro-monthly", "before": old, "after": new, "quantity": 1}]
    invoice = move["invoice"]
    assert (invoice["effective_at"], invoice["currency"]) == (None, "usd")
    # Stripe's preview of the next invoice with the move: its two prorations, then the renewal at 35.00.
    assert [
        (line["proration"], line["amount"] if not line["proration"] else None) for line in invoice["lines"]
    ] == [
        (True, None),
        (True, None),
        (False, 3500),
    ]
    assert invoice["amount_due"] == sum(line["amount"] for line in invoice["lines"])
    assert 0 < invoice["amount_due"] - 3500 <= 500  # 35.00 − 30.00 for what is left of the period
    assert _live_price(stripe_sdk, early) == [(old, 1)]  # a preview writes nothing
    assert _proration_items(stripe_sdk, early) == []

    moved = api.post(MOVES, {"product": "pro", "to_version": 3, "reason": "new pricing"}, key=tenant_a.key)
    assert moved.status_code == 200, moved.json()
    assert (moved.json()["moved"], moved.json()["moves"][0]["invoice"]) == (1, None)
    assert _live_price(stripe_sdk, early) == [(new, 1)]
    prorations = _proration_items(stripe_sdk, early)
    assert (len(prorations), sum(prorations)) == (2, invoice["amount_due"] - 3500)
    stripe_webhooks.deliver()
    _no_failed_events()
    item = SubscriptionItem.objects.get(pk=early.pk)
    assert (item.stripe_price_id, item.product_version) == (new, 3)
    assert AuditLogEntry.objects.filter(action="subscription.changed", reason="new pricing").count() == 1

    again = api.post(MOVES, {"product": "pro", "to_version": 3}, key=tenant_a.key).json()
    assert (again["moved"], again["moves"]) == (0, [])
    assert _proration_items(stripe_sdk, early) == prorations  # nothing sent to Stripe twice


def test_a_move_whose_stripe_answer_was_lost_is_finished_by_its_retry_with_one_change(
    api, tenant_a, early, stripe_emulator, stripe_sdk, stripe_webhooks, settings
):
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    new = _reprice(api, tenant_a, 3500)
    path = f"v1/subscriptions/{early.subscription.stripe_subscription_id}"
    network = Network(stripe_emulator, lose={("POST", path)})
    install_http_client(network)
    lost = api.post(MOVES, {"product": "pro", "to_version": 3}, key=tenant_a.key)
    assert lost.status_code >= 500, lost.json()
    assert SubscriptionItem.objects.get(pk=early.pk).product_version == 2  # not moved here
    assert _live_price(stripe_sdk, early) == [(new, 1)]  # Stripe applied it; its answer was lost

    network.lose.clear()
    retried = api.post(MOVES, {"product": "pro", "to_version": 3}, key=tenant_a.key).json()
    assert retried["moved"] == 1
    assert retried["moves"][0]["prices"] == []  # Stripe has it already: nothing sent again
    assert len(_proration_items(stripe_sdk, early)) == 2  # one change's prorations, not two
    stripe_webhooks.deliver()
    assert SubscriptionItem.objects.get(pk=early.pk).product_version == 3


def test_a_downgrade_the_project_defers_moves_price_and_version_at_the_renewal(
    api, tenant_a, early, stripe_emulator, stripe_sdk, stripe_webhooks
):
    Project.objects.filter(pk=tenant_a.project.pk).update(
        proration_downgrade=Project.ProrationRule.PERIOD_END
    )
    old = early.stripe_price_id
    new = _reprice(api, tenant_a, 2500)
    moved = api.post(MOVES, {"product": "pro", "to_version": 3}, key=tenant_a.key).json()
    (move,) = moved["moves"]
    period_end = early.subscription.current_period_end
    assert (move["proration"], move["effective_at"]) == (
        "period_end",
        period_end.isoformat().replace("+00:00", "Z"),
    )
    assert _live_price(stripe_sdk, early) == [(old, 1)]  # until the period's end
    stripe_webhooks.deliver()
    item = SubscriptionItem.objects.get(pk=early.pk)
    assert (item.product_version, item.pending_version) == (2, 3)
    assert _proration_items(stripe_sdk, early) == []

    stripe_emulator.advance(int(period_end.timestamp()) - stripe_emulator.clock.now() + 60)
    stripe_webhooks.deliver()
    _no_failed_events()
    assert _live_price(stripe_sdk, early) == [(new, 1)]
    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    assert renewal.total == 2500
    with time_machine.travel(datetime.fromtimestamp(stripe_emulator.clock.now(), UTC), tick=False):
        assert version_moves_due() == 1
    item = SubscriptionItem.objects.get(pk=early.pk)
    assert (item.product_version, item.pending_version, item.stripe_price_id) == (3, None, new)


def test_moving_back_before_the_renewal_drops_the_scheduled_price_change(
    api, tenant_a, early, stripe_sdk, stripe_webhooks
):
    Project.objects.filter(pk=tenant_a.project.pk).update(
        proration_downgrade=Project.ProrationRule.PERIOD_END
    )
    old = early.stripe_price_id
    _reprice(api, tenant_a, 2500)
    assert api.post(MOVES, {"product": "pro", "to_version": 3}, key=tenant_a.key).json()["moved"] == 1
    live = stripe_sdk().v1.subscriptions.retrieve(early.subscription.stripe_subscription_id)
    assert live.schedule

    back = api.post(MOVES, {"product": "pro", "to_version": 2}, key=tenant_a.key).json()
    assert back["moves"][0]["effective_at"] is None
    live = stripe_sdk().v1.subscriptions.retrieve(early.subscription.stripe_subscription_id)
    assert live.schedule is None
    assert _live_price(stripe_sdk, early) == [(old, 1)]
    stripe_webhooks.deliver()
    item = SubscriptionItem.objects.get(pk=early.pk)
    assert (item.product_version, item.pending_version) == (2, None)


def test_a_move_that_reprices_a_metered_item_waits_for_the_period_end_so_its_usage_is_billed(
    api,
    tenant_a,
    subscribed,  # noqa: F811
    stripe_emulator,
    stripe_sdk,
    stripe_webhooks,
):
    """`user-1`'s metered `calls` price (2 cents) goes to 3 cents in a new version. Moved now (the project's rule
    for either direction), Stripe would bill the usage before the move to nobody; so the move waits for the
    period's end: the period's 15 calls, before and after the move was asked, are billed at the 2 cents they were
    recorded under, and the price and the version change at the renewal."""
    Project.objects.filter(pk=tenant_a.project.pk).update(
        proration_upgrade=Project.ProrationRule.NOW_PRORATE,
        proration_downgrade=Project.ProrationRule.NOW_PRORATE,
    )
    subscription, _, _ = subscribed
    old = Price.objects.get(key="calls").stripe_price_id
    third = _repriced(api, tenant_a.key)
    new = Price.objects.get(key="calls").stripe_price_id
    assert new != old
    _use(api, tenant_a, "e1", 10)
    body = {"product": "pro", "to_version": third, "subscriptions": [subscription]}
    moved = api.post(MOVES, body, key=tenant_a.key)
    assert moved.status_code == 200, moved.json()
    (move,) = moved.json()["moves"]
    period_end = SubscriptionItem.objects.get().subscription.current_period_end
    assert (move["proration"], move["effective_at"]) == (
        "period_end",
        period_end.isoformat().replace("+00:00", "Z"),
    )
    assert move["prices"] == [{"price": "calls", "before": old, "after": new, "quantity": None}]
    item = SubscriptionItem.objects.get()
    assert _live_price(stripe_sdk, item) == [(old, None)]  # until the period's end
    _use(api, tenant_a, "e2", 5)

    stripe_emulator.advance(int(period_end.timestamp()) - stripe_emulator.clock.now() + 60)
    stripe_webhooks.deliver()
    _no_failed_events()
    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    assert [
        (line["quantity"], line["amount"]) for line in renewal.lines if line["stripe_price_id"] == old
    ] == [(15, 30)]
    assert _live_price(stripe_sdk, item) == [(new, None)]
    with time_machine.travel(datetime.fromtimestamp(stripe_emulator.clock.now(), UTC), tick=False):
        assert version_moves_due() == 1
    item = SubscriptionItem.objects.get()
    assert (item.product_version, item.pending_version, item.stripe_price_id) == (third, None, new)


def test_a_move_at_the_period_end_takes_effect_at_stripes_period_end_while_the_renewals_events_wait(
    api,
    tenant_a,
    subscribed,  # noqa: F811
    stripe_emulator,
    stripe_sdk,
    stripe_webhooks,
):
    """The period renewed at Stripe, and its events have not reached Tollgate: the mirror still holds the period
    that ended. A move that reprices the metered item is scheduled from Stripe's subscription, read for it: it
    takes effect at the end of the period Stripe is in, when the schedule moves the price — not at the mirror's
    end, which has passed (the version would change a period before the price)."""
    subscription, _, _ = subscribed
    third = _repriced(api, tenant_a.key)
    mirrored_end = SubscriptionItem.objects.get().subscription.current_period_end
    ahead = int(mirrored_end.timestamp()) - stripe_emulator.clock.now() + 60
    with time_machine.travel(datetime.fromtimestamp(stripe_emulator.clock.now() + ahead, UTC), tick=False):
        stripe_emulator.clock.set_offset(0)  # the emulator reads the travelled clock
        stripe_emulator.advance(0)  # renewed at Stripe; its events are not delivered
        live = stripe_sdk().v1.subscriptions.retrieve(
            SubscriptionItem.objects.get().subscription.stripe_subscription_id
        )
        stripe_end = live["items"].data[0].current_period_end
        assert stripe_end > int(mirrored_end.timestamp())
        body = {"product": "pro", "to_version": third, "subscriptions": [subscription]}
        moved = api.post(MOVES, body, key=tenant_a.key)
        assert moved.status_code == 200, moved.json()
        (move,) = moved.json()["moves"]
        assert move["effective_at"] == datetime.fromtimestamp(stripe_end, UTC).isoformat().replace(
            "+00:00", "Z"
        )
        assert version_moves_due() == 0  # the mirror's end has passed; Stripe's has not
        item = SubscriptionItem.objects.get()
        assert (item.pending_version, item.pending_version_at) == (
            third,
            datetime.fromtimestamp(stripe_end, UTC),
        )
