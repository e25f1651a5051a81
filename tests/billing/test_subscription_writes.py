"""A tenant's subscription changes, cancellations and resumptions: audited, and sent to Stripe once.

What reaches Stripe is seen at the HTTP boundary: `Recorder` is the emulator's SDK transport with a log of the
writes (method, path, idempotency key) and, for one test, a network that loses requests before they arrive.
"""

from typing import Any
from urllib.parse import urlsplit

import pytest
import stripe
import time_machine
from django.utils import timezone

from billing.models import Subscription
from core.models import AuditLogEntry
from stripe_emulator.sdk import EmulatorHTTPClient
from stripe_gateway.client import install_http_client
from tests.e2e.test_subscription_lifecycle import _subscribe

pytestmark = pytest.mark.django_db


class Recorder(EmulatorHTTPClient):
    def __init__(self, emulator: Any) -> None:
        super().__init__(emulator)
        self.writes: list[tuple[str, str, str]] = []
        self.lose = 0  # how many of the next writes to /v1/subscriptions the network loses before Stripe

    def request(self, method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any) -> Any:
        path = urlsplit(url).path
        if method.lower() in ("post", "delete") and path.startswith("/v1/subscriptions/"):
            self.writes.append((method.upper(), path, dict(headers or {}).get("Idempotency-Key", "")))
            if self.lose:
                self.lose -= 1
                raise stripe.APIConnectionError(
                    "connection reset before the request reached Stripe", should_retry=True
                )
        return super().request(method, url, headers, post_data, **kwargs)


@pytest.fixture
def recorder(stripe_emulator):
    recorder = Recorder(stripe_emulator)
    install_http_client(recorder)  # the autouse emulator fixture uninstalls it after the test
    return recorder


@pytest.fixture
def subscribed(api, tenant_a, catalog, stripe_emulator, stripe_webhooks):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    return Subscription.objects.get()


def _audit_rows():
    return list(
        AuditLogEntry.objects.filter(action__startswith="subscription.")
        .order_by("created_at")
        .values_list("action", "actor_type", "actor_id", "target_id", "before", "after")
    )


def _state(price="pro-monthly", quantity=1, status="active", cancel_at_period_end=False):
    return {
        "price": price,
        "quantity": quantity,
        "items": [[price, quantity]],
        "status": status,
        "cancel_at_period_end": cancel_at_period_end,
    }


def test_changes_cancellations_and_resumptions_made_through_the_api_are_audited(
    api, tenant_a, subscribed, stripe_webhooks
):
    path = f"/api/v1/subscriptions/{subscribed.pk}"
    assert api.patch(path, {"quantity": 3}, key=tenant_a.key).status_code == 200
    stripe_webhooks.deliver()
    assert api.post(f"{path}/cancel", {"at_period_end": True}, key=tenant_a.key).status_code == 200
    stripe_webhooks.deliver()
    assert api.post(f"{path}/resume", key=tenant_a.key).status_code == 200
    stripe_webhooks.deliver()
    assert api.post(f"{path}/cancel", {"at_period_end": False}, key=tenant_a.key).status_code == 200

    key = ("api_key", tenant_a.api_key.pk, subscribed.pk)
    assert _audit_rows() == [
        ("subscription.changed", *key, _state(), _state(quantity=3)),
        (
            "subscription.cancel_scheduled",
            *key,
            _state(quantity=3),
            _state(quantity=3, cancel_at_period_end=True),
        ),
        ("subscription.resumed", *key, _state(quantity=3, cancel_at_period_end=True), _state(quantity=3)),
        ("subscription.canceled", *key, _state(quantity=3), _state(quantity=3, status="canceled")),
    ]


def test_a_price_change_keeps_the_quantity(api, tenant_a, catalog, subscribed, stripe_sdk, stripe_webhooks):
    from tests.catalog import price_create

    pro_plus = price_create(catalog.pro, "pro-plus-monthly", 6000, interval="month")
    path = f"/api/v1/subscriptions/{subscribed.pk}"
    assert api.patch(path, {"quantity": 3}, key=tenant_a.key).status_code == 200
    stripe_webhooks.deliver()
    changed = api.patch(path, {"price": pro_plus.key}, key=tenant_a.key)
    assert (changed.status_code, changed.json()["price"], changed.json()["quantity"]) == (
        200,
        "pro-plus-monthly",
        3,
    )
    item = stripe_sdk().v1.subscriptions.retrieve(subscribed.stripe_subscription_id)["items"].data[0]
    assert (item.price.id, item.quantity) == (pro_plus.stripe_price_id, 3)


def test_a_repeated_change_is_sent_to_stripe_once(api, tenant_a, subscribed, recorder, stripe_sdk):
    """The tenant retries (no Idempotency-Key) because it never saw the first answer; Stripe's events have not
    arrived yet, so the local mirror still shows 1 seat."""
    path = f"/api/v1/subscriptions/{subscribed.pk}"
    first = api.patch(path, {"quantity": 3}, key=tenant_a.key)
    again = api.patch(path, {"quantity": 3}, key=tenant_a.key)

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["quantity"] == again.json()["quantity"] == 3
    assert [(method, path) for method, path, _ in recorder.writes] == [
        ("POST", f"/v1/subscriptions/{subscribed.stripe_subscription_id}")
    ]
    assert (
        stripe_sdk().v1.subscriptions.retrieve(subscribed.stripe_subscription_id)["items"].data[0].quantity
        == 3
    )
    # Both requests are on record: the second found the change already made at Stripe.
    assert [(row[0], row[4]["quantity"], row[5]["quantity"]) for row in _audit_rows()] == [
        ("subscription.changed", 1, 3),
        ("subscription.changed", 3, 3),
    ]


def test_a_change_lost_on_the_way_is_retried_under_the_same_stripe_key(
    api, tenant_a, subscribed, recorder, stripe_sdk
):
    recorder.lose = 3  # the first attempt and the SDK's two network retries never reach Stripe
    path = f"/api/v1/subscriptions/{subscribed.pk}"
    lost = api.patch(path, {"quantity": 3}, key=tenant_a.key)
    assert lost.status_code >= 500
    assert _audit_rows() == []  # nothing happened, nothing audited

    retried = api.patch(path, {"quantity": 3}, key=tenant_a.key)
    assert (retried.status_code, retried.json()["quantity"]) == (200, 3)
    keys = [key for _, _, key in recorder.writes]
    assert len(keys) == 4
    assert set(keys) == {keys[0]}
    assert keys[0].startswith(f"subscription:{subscribed.pk}:change:")
    assert (
        stripe_sdk().v1.subscriptions.retrieve(subscribed.stripe_subscription_id)["items"].data[0].quantity
        == 3
    )


def test_a_change_made_undone_and_made_again_reaches_stripe_each_time(
    api, tenant_a, subscribed, recorder, stripe_sdk
):
    """3 seats, back to 1, then 3 again before any event arrives: the third request is the first one again (same
    request, same Stripe state), so Stripe answers it from its idempotency cache without applying it. Tollgate
    sees the replay and sends it under a key of its own."""
    path = f"/api/v1/subscriptions/{subscribed.pk}"
    for quantity in (3, 1, 3):
        response = api.patch(path, {"quantity": quantity}, key=tenant_a.key)
        assert (response.status_code, response.json()["quantity"]) == (200, quantity)

    assert (
        stripe_sdk().v1.subscriptions.retrieve(subscribed.stripe_subscription_id)["items"].data[0].quantity
        == 3
    )
    keys = [key for _, _, key in recorder.writes]
    assert len(keys) == 4  # 3, 1, 3 (replayed), 3 under a fresh key
    assert keys[1] != keys[0]
    assert keys[2] == keys[0]
    assert keys[3].startswith(f"{keys[0]}:")


def test_a_repeated_cancellation_at_period_end_is_sent_once(api, tenant_a, subscribed, recorder):
    path = f"/api/v1/subscriptions/{subscribed.pk}/cancel"
    for _ in range(2):
        response = api.post(path, {"at_period_end": True}, key=tenant_a.key)
        assert (response.status_code, response.json()["cancel_at_period_end"]) == (200, True)
    assert len(recorder.writes) == 1
    assert recorder.writes[0][2].startswith(f"subscription:{subscribed.pk}:cancel-at-period-end:")


def test_another_projects_key_changes_nothing(api, tenant_a, tenant_b, subscribed, recorder):
    path = f"/api/v1/subscriptions/{subscribed.pk}"
    assert api.patch(path, {"quantity": 3}, key=tenant_b.key).status_code == 404
    assert api.post(f"{path}/cancel", {}, key=tenant_b.key).status_code == 404
    assert api.post(f"{path}/resume", key=tenant_b.key).status_code == 404
    assert recorder.writes == []
    assert _audit_rows() == []


def test_a_bad_change_is_refused_before_stripe(api, tenant_a, subscribed, recorder):
    response = api.patch(f"/api/v1/subscriptions/{subscribed.pk}", {"quantity": 0}, key=tenant_a.key)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "quantity"
    assert recorder.writes == []
    assert _audit_rows() == []


def test_resuming_a_paused_subscription_sends_the_anchor_as_stripe_takes_it(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, stripe_webhooks
):
    """A trial that ended without a payment method pauses at Stripe; the tenant's resume reaches Stripe in the
    shape this API version takes (`billing_cycle_anchor[type]`) and the subscription bills again."""
    from customers.models import Customer
    from customers.services.customers import customer_ensure_stripe

    api.post("/api/v1/customers", {"external_id": "user-9"}, key=tenant_a.key)
    stripe_customer = customer_ensure_stripe(customer=Customer.objects.get(external_id="user-9"))
    sdk = stripe_sdk()
    created = sdk.v1.subscriptions.create(
        {
            "customer": stripe_customer,
            "items": [{"price": catalog.pro_monthly.stripe_price_id}],
            "trial_period_days": 7,
            "trial_settings": {"end_behavior": {"missing_payment_method": "pause"}},
        }
    )
    now = stripe_emulator.advance(7 * 86400)
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get(stripe_subscription_id=created.id)
    assert subscription.status == "paused"
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    sdk.v1.subscriptions.update(created.id, {"default_payment_method": pm})

    # Frozen wall clock: the emulator reads it plus its offset, so the resume happens exactly at `resumed_at`
    # however long the steps above took.
    with time_machine.travel(timezone.now(), tick=False):
        resumed_at = stripe_emulator.clock.now()
        resumed = api.post(f"/api/v1/subscriptions/{subscription.pk}/resume", key=tenant_a.key)

    assert (resumed.status_code, resumed.json()["status"]) == (200, "active")
    live = sdk.v1.subscriptions.retrieve(created.id, {"expand": ["latest_invoice"]})
    assert resumed_at >= now
    assert (live.status, live.billing_cycle_anchor) == ("active", resumed_at)
    assert (live.latest_invoice.status, live.latest_invoice.amount_paid) == ("paid", 3000)
    assert [row[0] for row in _audit_rows()] == ["subscription.resumed"]
