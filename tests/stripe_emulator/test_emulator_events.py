"""Events: one per state change, with data.object equal to a retrieve at that moment."""

from __future__ import annotations

import stripe

from stripe_emulator import Emulator
from stripe_emulator.sdk import make_client
from tests.stripe_emulator.conftest import FakeClock


def test_create_and_update_events_snapshot_the_object(client: stripe.StripeClient, clock: FakeClock) -> None:
    customer = client.v1.customers.create({"email": "a@example.com", "metadata": {"a": "1"}})
    snapshot_at_create = client.v1.customers.retrieve(customer.id).to_dict()
    clock.now += 60
    client.v1.customers.update(customer.id, {"email": "b@example.com", "metadata": {"a": "", "b": "2"}})
    snapshot_at_update = client.v1.customers.retrieve(customer.id).to_dict()

    updated, created = client.v1.events.list().data
    assert created.type == "customer.created"
    assert created.data.object.to_dict() == snapshot_at_create
    assert updated.type == "customer.updated"
    assert updated.data.object.to_dict() == snapshot_at_update
    assert updated.data.previous_attributes.to_dict() == {
        "email": "a@example.com",
        "metadata": {"a": "1", "b": None},
    }
    assert updated.created == created.created + 60
    assert updated.api_version == "2026-10-28.endive"
    assert updated.livemode is False


def test_event_request_carries_request_id_and_idempotency_key(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({}, {"idempotency_key": "idem-1"})
    event = client.v1.events.list().data[0]
    assert event.request.idempotency_key == "idem-1"
    assert customer.last_response is not None
    assert event.request.id == customer.last_response.request_id


def test_no_change_no_event(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"name": "same"})
    client.v1.customers.update(customer.id, {"name": "same"})
    assert [e.type for e in client.v1.events.list().data] == ["customer.created"]


def test_delete_event_carries_the_object_as_it_was(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"email": "gone@example.com"})
    client.v1.customers.delete(customer.id)
    event = client.v1.events.list({"type": "customer.deleted"}).data[0]
    assert event.data.object.email == "gone@example.com"


def test_price_with_product_data_emits_product_then_price(client: stripe.StripeClient) -> None:
    client.v1.prices.create({"currency": "usd", "unit_amount": 1, "product_data": {"name": "p"}})
    assert [e.type for e in client.v1.events.list().data] == ["price.created", "product.created"]


def test_lookup_key_transfer_emits_update_on_the_old_holder(client: stripe.StripeClient) -> None:
    old = client.v1.prices.create(
        {"currency": "usd", "unit_amount": 1, "product_data": {"name": "p"}, "lookup_key": "k"}
    )
    client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 2,
            "product": str(old.product),
            "lookup_key": "k",
            "transfer_lookup_key": True,
        }
    )
    updates = client.v1.events.list({"type": "price.updated"}).data
    assert len(updates) == 1
    assert updates[0].data.object.id == old.id
    assert updates[0].data.previous_attributes.to_dict() == {"lookup_key": "k"}


def test_event_filters_and_retrieve(client: stripe.StripeClient, clock: FakeClock) -> None:
    client.v1.customers.create({})
    start = int(clock.now)
    clock.now += 100
    client.v1.products.create({"name": "p"})
    assert [e.type for e in client.v1.events.list({"type": "product.*"}).data] == ["product.created"]
    assert len(client.v1.events.list({"types": ["product.created", "customer.created"]}).data) == 2
    assert [e.type for e in client.v1.events.list({"created": {"gt": start}}).data] == ["product.created"]
    event = client.v1.events.list().data[0]
    assert client.v1.events.retrieve(event.id).to_dict() == event.to_dict()


def test_events_are_per_account(emulator: Emulator) -> None:
    a, b = make_client(emulator, "sk_test_events_a"), make_client(emulator, "sk_test_events_b")
    a.v1.customers.create({})
    assert b.v1.events.list().data == []
    assert len(a.v1.events.list().data) == 1
