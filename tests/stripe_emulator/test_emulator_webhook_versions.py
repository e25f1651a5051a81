"""API versions of events: an account has a default version (an old account's is old), an event is created at
it, and each delivery is rendered at its endpoint's `api_version` (the account's default for an endpoint made
without one), as Stripe does."""

from __future__ import annotations

import json

import pytest
import stripe

from stripe_emulator import API_VERSION, Emulator
from stripe_emulator.sdk import make_client
from tests.stripe_emulator.conftest import KEY_A, FakeClock, Receiver

OLD = "2024-06-20"


def _set_default(emulator: Emulator, key: str, version: str) -> dict[str, object]:
    response = emulator.handle(
        "POST",
        "/_emulator/account/api_version",
        body=f"api_version={version}".encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200
    return dict(json.loads(response.body))


def test_delivery_carries_its_endpoints_version_and_the_event_the_accounts_default(
    client: stripe.StripeClient, other_client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    assert _set_default(emulator, KEY_A, OLD) == {"object": "emulator.account", "api_version": OLD}
    pinned = client.v1.webhook_endpoints.create(
        {"url": "http://pinned.invalid/hooks", "enabled_events": ["*"], "api_version": API_VERSION}
    )
    unpinned = client.v1.webhook_endpoints.create(
        {"url": "http://default.invalid/hooks", "enabled_events": ["*"]}
    )
    assert (pinned.api_version, unpinned.api_version) == (API_VERSION, None)
    customer = client.v1.customers.create({"email": "a@example.com"})
    emulator.flush_webhooks()

    by_url = {r.url: r for r in receiver.received}
    assert {url: r.event["api_version"] for url, r in by_url.items()} == {
        "http://pinned.invalid/hooks": API_VERSION,
        "http://default.invalid/hooks": OLD,
    }
    for r, secret in (
        (by_url["http://pinned.invalid/hooks"], pinned.secret),
        (by_url["http://default.invalid/hooks"], unpinned.secret),
    ):
        event = stripe.Webhook.construct_event(r.body, r.headers["Stripe-Signature"], secret or "")
        assert (event.type, event.data.object.id) == ("customer.created", customer.id)
    # One event, created at the account's default version; the other account keeps the current one.
    listed = client.v1.events.list().data
    assert [(e.id, e.api_version) for e in listed] == [
        (by_url["http://pinned.invalid/hooks"].event["id"], OLD)
    ]
    other_client.v1.customers.create({})
    assert [e.api_version for e in other_client.v1.events.list().data] == [API_VERSION]


def test_default_version_from_the_constructor_and_kept_in_the_state(
    clock: FakeClock, receiver: Receiver, tmp_path: object
) -> None:
    emulator = Emulator(clock=clock, webhook_mode="manual", webhook_sender=receiver, account_api_version=OLD)
    try:
        client = make_client(emulator, KEY_A)
        client.v1.customers.create({})
        assert client.v1.events.list().data[0].api_version == OLD
        restored = Emulator(clock=clock, webhook_mode="manual")
        restored.restore(emulator.dump())
        make_client(restored, KEY_A).v1.customers.create({})
        assert [e.api_version for e in make_client(restored, KEY_A).v1.events.list().data] == [OLD, OLD]
        restored.close()
    finally:
        emulator.close()


def test_an_endpoints_version_cannot_be_updated(client: stripe.StripeClient) -> None:
    endpoint = client.v1.webhook_endpoints.create({"url": "http://x.invalid/h", "enabled_events": ["*"]})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.webhook_endpoints.update(endpoint.id, {"api_version": API_VERSION})  # type: ignore[typeddict-unknown-key]
    assert info.value.param == "api_version"
    assert client.v1.webhook_endpoints.retrieve(endpoint.id).api_version is None
