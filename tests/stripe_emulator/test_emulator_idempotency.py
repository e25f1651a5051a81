"""Idempotency-Key: replay, misuse, expiry, and what is (not) saved."""

from __future__ import annotations

import pytest
import stripe

from stripe_emulator import CardError, Emulator, Route
from stripe_emulator.core.routing import Request, Response
from tests.stripe_emulator.conftest import FakeClock


def test_same_key_same_params_replays_the_response(client: stripe.StripeClient, emulator: Emulator) -> None:
    first = client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "key-1"})
    second = client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "key-1"})
    assert second.id == first.id
    assert second.last_response is not None
    assert first.last_response is not None
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert second.last_response.request_id == first.last_response.request_id
    assert "idempotent-replayed" not in {k.lower() for k in first.last_response.headers}
    assert len(client.v1.customers.list().data) == 1
    assert len(client.v1.events.list({"type": "customer.created"}).data) == 1


def test_same_key_other_params_is_idempotency_error(client: stripe.StripeClient) -> None:
    client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "key-2"})
    with pytest.raises(stripe.IdempotencyError) as info:
        client.v1.customers.create({"email": "b@example.com"}, {"idempotency_key": "key-2"})
    assert info.value.http_status == 400
    assert "key-2" in info.value.user_message


def test_same_key_other_endpoint_is_idempotency_error(client: stripe.StripeClient) -> None:
    client.v1.customers.create({"name": "x"}, {"idempotency_key": "key-3"})
    with pytest.raises(stripe.IdempotencyError):
        client.v1.products.create({"name": "x"}, {"idempotency_key": "key-3"})


def test_keys_are_per_account(client: stripe.StripeClient, other_client: stripe.StripeClient) -> None:
    a = client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "shared"})
    b = other_client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "shared"})
    assert a.id != b.id


def test_keys_expire_after_24h_of_emulator_time(client: stripe.StripeClient, emulator: Emulator) -> None:
    first = client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "old"})
    emulator.advance(24 * 3600 + 1)
    again = client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "old"})
    assert again.id != first.id


def test_keys_expire_with_the_injected_clock(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    first = client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "old"})
    clock.now += 24 * 3600 + 1
    assert client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "old"}).id != first.id


def test_validation_errors_are_not_saved(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update("cus_nope", {"name": "x"}, {"idempotency_key": "k"})
    customer = client.v1.customers.create({"name": "x"})
    # Same key, same params, now valid: the first failure was not saved, so it executes.
    updated = client.v1.customers.update(customer.id, {"name": "x"}, {"idempotency_key": "k2"})
    assert updated.name == "x"


def test_card_errors_are_replayed(emulator: Emulator, client: stripe.StripeClient) -> None:
    calls: list[int] = []

    def decline(req: Request) -> Response:
        calls.append(1)
        raise CardError(decline_code="insufficient_funds", param="payment_method")

    emulator.add_route(Route("POST", "/v1/test_declines", decline))
    for _ in range(2):
        with pytest.raises(stripe.CardError) as info:
            client.raw_request("post", "/v1/test_declines", idempotency_key="decl")
        assert info.value.http_status == 402
        assert info.value.code == "card_declined"
        assert info.value.json_body is not None
        assert info.value.json_body["error"]["decline_code"] == "insufficient_funds"
    assert len(calls) == 1
