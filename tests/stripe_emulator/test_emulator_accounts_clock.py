"""Accounts are isolated; the clock is injectable, advanceable, and hooks run on advance."""

from __future__ import annotations

import json

import pytest
import stripe

from stripe_emulator import Account, Emulator
from stripe_emulator.customers import CustomersBackend
from stripe_emulator.sdk import make_client
from tests.stripe_emulator.conftest import FakeClock, Receiver, add_endpoint


def test_two_accounts_are_isolated(client: stripe.StripeClient, other_client: stripe.StripeClient) -> None:
    mine = client.v1.customers.create({"email": "mine@example.com"})
    with pytest.raises(stripe.InvalidRequestError) as info:
        other_client.v1.customers.retrieve(mine.id)
    assert info.value.http_status == 404
    assert other_client.v1.customers.list().data == []
    other_client.v1.prices.create(
        {"currency": "usd", "unit_amount": 1, "product_data": {"name": "p"}, "lookup_key": "k"}
    )
    # Lookup keys are unique per account, not globally.
    client.v1.prices.create(
        {"currency": "usd", "unit_amount": 1, "product_data": {"name": "p"}, "lookup_key": "k"}
    )


def test_webhooks_go_only_to_the_accounts_endpoints(
    client: stripe.StripeClient, other_client: stripe.StripeClient, emulator: Emulator, receiver: Receiver
) -> None:
    _, _secret = add_endpoint(client)
    other_client.v1.customers.create({})
    mine = client.v1.customers.create({})
    emulator.flush_webhooks()
    assert [r.event["data"]["object"]["id"] for r in receiver.received] == [mine.id]


def test_created_comes_from_the_injected_clock(client: stripe.StripeClient, clock: FakeClock) -> None:
    assert client.v1.customers.create({}).created == int(clock.now)
    clock.now += 3600
    assert client.v1.products.create({"name": "p"}).created == int(clock.now)


def test_advance_moves_the_clock_and_runs_hooks(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock, receiver: Receiver
) -> None:
    add_endpoint(client)
    seen: list[tuple[str, int, int]] = []

    def renew(account: Account, previous: int, now: int) -> None:
        seen.append((account.api_key, previous, now))
        for customer in account.store.newest_first("customer"):
            account.backend(CustomersBackend).customer_update(
                customer["id"], {"description": f"renewed@{now}"}
            )

    emulator.on_advance(renew)
    customer = client.v1.customers.create({})
    start = int(clock.now)
    now = emulator.advance(86400)
    assert now == start + 86400
    assert seen == [(client._requestor.api_key, start, now)]
    assert client.v1.customers.retrieve(customer.id).description == f"renewed@{now}"
    assert client.v1.customers.create({}).created == now
    event = client.v1.events.list({"type": "customer.updated"}).data[0]
    assert event.request.id is None  # an automatic event, not caused by a request
    emulator.flush_webhooks()
    assert receiver.types() == ["customer.created", "customer.updated", "customer.created"]


def test_http_controls_advance_and_reset(
    emulator: Emulator, clock: FakeClock, client: stripe.StripeClient
) -> None:
    client.v1.customers.create({})
    response = emulator.handle("POST", "/_emulator/advance", body=b"seconds=120")
    assert response.status == 200
    assert response.data()["now"] == int(clock.now) + 120
    assert emulator.handle("GET", "/_emulator/clock").data()["offset"] == 120
    assert emulator.handle("POST", "/_emulator/advance", body=b"seconds=soon").status == 400
    assert emulator.handle("POST", "/_emulator/reset").status == 200
    assert client.v1.customers.list().data == []
    assert emulator.clock.offset == 0


def test_default_clock_follows_time_machine() -> None:
    time_machine = pytest.importorskip("time_machine")
    emulator = Emulator(webhook_mode="manual")
    with time_machine.travel(1_900_000_000, tick=False):
        assert make_client(emulator, "sk_test_tm").v1.customers.create({}).created == 1_900_000_000


def test_state_persists_to_a_data_file(tmp_path: object) -> None:
    path = str(tmp_path) + "/state.json"
    first = Emulator(webhook_mode="manual", data_path=path)
    client = make_client(first, "sk_test_persist")
    customer = client.v1.customers.create({"email": "kept@example.com"}, {"idempotency_key": "persisted"})
    endpoint = client.v1.webhook_endpoints.create({"url": "https://x.example/h", "enabled_events": ["*"]})
    first.advance(50)
    first.close()
    with open(path) as handle:
        assert json.load(handle)["clock_offset"] == 50

    second = Emulator(webhook_mode="manual", data_path=path)
    again = make_client(second, "sk_test_persist")
    assert again.v1.customers.retrieve(customer.id).email == "kept@example.com"
    replay = again.v1.customers.create({"email": "kept@example.com"}, {"idempotency_key": "persisted"})
    assert replay.id == customer.id
    assert (
        second.accounts["sk_test_persist"].store.get("webhook_endpoint", endpoint.id)["_secret"]
        == endpoint.secret
    )
    # New objects sort after restored ones.
    newer = again.v1.customers.create({})
    assert [c.id for c in again.v1.customers.list().data] == [newer.id, customer.id]


def test_concurrent_requests_on_one_account(emulator: Emulator) -> None:
    import threading

    client = make_client(emulator, "sk_test_concurrent")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                customer = client.v1.customers.create({})
                client.v1.customers.update(customer.id, {"metadata": {"t": threading.current_thread().name}})
        except BaseException as exc:  # surfaced below; a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ids = [c.id for c in client.v1.customers.list({"limit": 100}).auto_paging_iter()]
    assert len(ids) == len(set(ids)) == 160
    assert len(list(client.v1.events.list({"limit": 100}).auto_paging_iter())) == 320


def test_locate_finds_the_owning_account(emulator: Emulator, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({})
    found = emulator.locate(customer.id)
    assert found is not None
    assert found[0].api_key == "sk_test_account_a"
    assert found[1]["id"] == customer.id
    assert emulator.locate("cus_nowhere") is None
