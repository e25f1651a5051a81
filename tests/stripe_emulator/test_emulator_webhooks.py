"""Webhook endpoints and delivery: signatures the SDK verifies, retries, duplicates, reordering, re-entrancy,
and the background worker."""

from __future__ import annotations

import time

import pytest
import stripe

from stripe_emulator import Emulator
from stripe_emulator.sdk import make_client
from tests.stripe_emulator.conftest import KEY_A, Received, Receiver, add_endpoint


def test_endpoint_crud_and_secret_only_on_create(client: stripe.StripeClient) -> None:
    created = client.v1.webhook_endpoints.create(
        {
            "url": "https://example.com/hook",
            "enabled_events": ["customer.created"],
            "description": "d",
            "metadata": {"a": "1"},
        }
    )
    assert created.id.startswith("we_")
    assert created.secret is not None
    assert created.secret.startswith("whsec_")
    assert created.status == "enabled"
    fetched = client.v1.webhook_endpoints.retrieve(created.id)
    assert "secret" not in fetched
    assert [e.id for e in client.v1.webhook_endpoints.list().data] == [created.id]
    updated = client.v1.webhook_endpoints.update(created.id, {"disabled": True, "enabled_events": ["*"]})
    assert (updated.status, updated.enabled_events) == ("disabled", ["*"])
    assert client.v1.webhook_endpoints.delete(created.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.webhook_endpoints.retrieve(created.id)
    assert info.value.user_message == f"No such webhook endpoint: '{created.id}'"


def test_endpoint_validation(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.webhook_endpoints.create({"url": "ftp://x", "enabled_events": ["*"]})
    assert info.value.param == "url"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.webhook_endpoints.create({"url": "https://x.example"})
    assert missing.value.param == "enabled_events"


def test_delivery_is_signed_and_verifiable(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    _, secret = add_endpoint(client)
    customer = client.v1.customers.create({"email": "a@example.com"})
    assert receiver.received == []  # queued, not sent during the API call
    attempts = emulator.flush_webhooks()
    assert [a.ok for a in attempts] == [True]
    delivery = receiver.received[0]
    assert delivery.url == "http://receiver.invalid/hooks"
    assert delivery.headers["Content-Type"].startswith("application/json")
    event = stripe.Webhook.construct_event(delivery.body, delivery.headers["Stripe-Signature"], secret)
    assert event.type == "customer.created"
    assert event.data.object.id == customer.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body, delivery.headers["Stripe-Signature"], "whsec_wrong")
    # Delivered, so no longer pending.
    assert client.v1.events.retrieve(event.id).pending_webhooks == 0


def test_only_matching_enabled_endpoints_receive(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    add_endpoint(client, ["product.created"])
    disabled, _ = add_endpoint(client, ["*"])
    client.v1.webhook_endpoints.update(disabled, {"disabled": True})
    client.v1.customers.create({})
    client.v1.products.create({"name": "p"})
    emulator.flush_webhooks()
    assert receiver.types() == ["product.created"]
    assert client.v1.events.list({"type": "customer.created"}).data[0].pending_webhooks == 0


def test_retry_after_500_then_success(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    add_endpoint(client)
    receiver.statuses = [500, 503]
    client.v1.customers.create({})
    event_id = client.v1.events.list().data[0].id
    assert client.v1.events.retrieve(event_id).pending_webhooks == 1
    attempts = emulator.flush_webhooks()
    assert [(a.attempt, a.status) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    assert len({r.body for r in receiver.received}) == 1  # the same event each time
    assert client.v1.events.retrieve(event_id).pending_webhooks == 0


def test_retries_are_bounded(client: stripe.StripeClient, emulator: Emulator, receiver: Receiver) -> None:
    add_endpoint(client)
    receiver.statuses = [500] * 10
    client.v1.customers.create({})
    attempts = emulator.flush_webhooks()
    assert len(attempts) == emulator.webhooks.max_attempts == 3
    assert emulator.webhooks.pending() == 0


def test_connection_errors_are_retried(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    add_endpoint(client)
    failures = [ConnectionRefusedError("down")]

    def flaky(delivery: Received) -> None:
        if failures:
            raise failures.pop()

    receiver.on_receive = flaky
    client.v1.customers.create({})
    attempts = emulator.flush_webhooks()
    assert attempts[0].status is None
    assert attempts[0].error is not None
    assert "down" in attempts[0].error
    assert attempts[-1].ok


def test_duplicates_option_delivers_each_event_twice(receiver: Receiver) -> None:
    emulator = Emulator(webhook_mode="manual", webhook_sender=receiver, webhook_duplicates=True)
    client = make_client(emulator, KEY_A)
    add_endpoint(client)
    client.v1.customers.create({})
    emulator.flush_webhooks()
    assert len(receiver.received) == 2
    assert receiver.received[0].event["id"] == receiver.received[1].event["id"]


def test_shuffle_option_reorders_within_a_flush(receiver: Receiver) -> None:
    emulator = Emulator(webhook_mode="manual", webhook_sender=receiver, webhook_shuffle=True, webhook_seed=7)
    client = make_client(emulator, KEY_A)
    add_endpoint(client)
    for i in range(12):
        client.v1.customers.create({"name": str(i)})
    emulator.flush_webhooks()
    names = [r.event["data"]["object"]["name"] for r in receiver.received]
    assert sorted(names, key=int) == [str(i) for i in range(12)]
    assert names != [str(i) for i in range(12)]


def test_receiver_may_call_back_during_flush(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    add_endpoint(client)

    def react(delivery: Received) -> None:
        event = delivery.event
        if event["type"] == "customer.created":
            # Re-entrant: through the SDK, into the same emulator, while the flush is running.
            client.v1.customers.update(event["data"]["object"]["id"], {"metadata": {"seen": "yes"}})

    receiver.on_receive = react
    customer = client.v1.customers.create({})
    emulator.flush_webhooks()
    assert receiver.types() == ["customer.created", "customer.updated"]
    assert client.v1.customers.retrieve(customer.id).metadata.to_dict() == {"seen": "yes"}


def test_background_worker_delivers_after_the_response(receiver: Receiver) -> None:
    emulator = Emulator(webhook_sender=receiver, webhook_retry_delays=(0.01,))
    try:
        client = make_client(emulator, KEY_A)
        _, secret = add_endpoint(client)
        receiver.statuses = [500]
        client.v1.customers.create({})
        assert emulator.wait_for_webhooks(timeout=5)
        assert len(receiver.received) == 2  # the 500, then the retry
        last = receiver.received[-1]
        assert (
            stripe.Webhook.construct_event(last.body, last.headers["Stripe-Signature"], secret).type
            == "customer.created"
        )
    finally:
        emulator.close()


def test_signature_timestamp_uses_wall_time_not_the_advanced_clock(
    client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    _, secret = add_endpoint(client)
    emulator.advance(30 * 24 * 3600)
    client.v1.customers.create({})
    emulator.flush_webhooks()
    header = receiver.received[0].headers["Stripe-Signature"]
    assert abs(int(header.split(",")[0][2:]) - time.time()) < 60
    stripe.Webhook.construct_event(receiver.received[0].body, header, secret)  # within the 300 s tolerance
