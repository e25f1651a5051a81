"""Stripe test clocks through the official SDK: the clock resource, customers on a clock living at its
frozen time, an advance renewing their subscriptions exactly as the emulator's own ``advance`` does, and what
Stripe refuses."""

from __future__ import annotations

import pytest
import stripe

from stripe_emulator import Emulator

from .billing_fixtures import DAY, customer_with_card, events, plain, recurring_price, types
from .conftest import FakeClock

# 2024-01-15T00:00:00Z: a clock far from the emulator's own time (1_800_000_000 is in 2027).
FROZEN = 1_705_276_800
FEB_15 = 1_707_955_200
MAR_15 = 1_710_460_800


def _clock_customer(client: stripe.StripeClient, clock_id: str) -> str:
    customer = client.v1.customers.create({"email": "clock@example.com", "test_clock": clock_id})
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}})
    return customer.id


def test_create_retrieve_list_delete(client: stripe.StripeClient, clock: FakeClock) -> None:
    created = client.v1.test_helpers.test_clocks.create({"frozen_time": FROZEN, "name": "Renewals"})
    assert created.id.startswith("clock_")
    assert plain(created) == {
        "id": created.id,
        "object": "test_helpers.test_clock",
        "created": 1_800_000_000,
        "deletes_after": 1_800_000_000 + 30 * DAY,
        "frozen_time": FROZEN,
        "livemode": False,
        "name": "Renewals",
        "status": "ready",
        "status_details": {},
    }
    other = client.v1.test_helpers.test_clocks.create({"frozen_time": FROZEN})
    assert other.name is None
    assert plain(client.v1.test_helpers.test_clocks.retrieve(created.id)) == plain(created)
    listed = client.v1.test_helpers.test_clocks.list()
    assert [c.id for c in listed.data] == [other.id, created.id]
    assert listed.url == "/v1/test_helpers/test_clocks"

    deleted = client.v1.test_helpers.test_clocks.delete(created.id)
    assert plain(deleted) == {"id": created.id, "object": "test_helpers.test_clock", "deleted": True}
    assert [c.id for c in client.v1.test_helpers.test_clocks.list().data] == [other.id]
    assert types(client, "test_helpers.") == [
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.deleted",
    ]


def test_customer_and_subscription_live_at_the_frozen_time(client: stripe.StripeClient) -> None:
    clock_ = client.v1.test_helpers.test_clocks.create({"frozen_time": FROZEN})
    customer = _clock_customer(client, clock_.id)
    assert client.v1.customers.retrieve(customer).test_clock == clock_.id
    assert client.v1.customers.retrieve(customer).created == FROZEN
    price = recurring_price(client, 1500)
    sub = client.v1.subscriptions.create({"customer": customer, "items": [{"price": price.id}]})
    item = sub["items"].data[0]
    assert (sub.status, sub.created, item.current_period_start, item.current_period_end) == (
        "active",
        FROZEN,
        FROZEN,
        FEB_15,
    )
    first = client.v1.invoices.retrieve(sub.latest_invoice)
    assert (first.created, first.amount_paid) == (FROZEN, 1500)
    assert [c.id for c in client.v1.customers.list({"test_clock": clock_.id}).data] == [customer]


def test_pages_of_a_list_hold_a_clock_customer_listed_by_its_created(client: stripe.StripeClient) -> None:
    """A clock's customer takes `created` from the clock (here long before the others), and a list shows it in
    that order: every page cursor follows the same order, so paging one at a time meets every customer once."""
    first = client.v1.customers.create({"email": "a@example.com"}).id
    clock_ = client.v1.test_helpers.test_clocks.create({"frozen_time": FROZEN})
    on_clock = client.v1.customers.create({"email": "b@example.com", "test_clock": clock_.id}).id
    last = client.v1.customers.create({"email": "c@example.com"}).id
    assert [c.id for c in client.v1.customers.list().data] == [last, first, on_clock]

    paged, after = [], None
    for _ in range(5):
        page = client.v1.customers.list({"limit": 1, **({"starting_after": after} if after else {})})
        paged += [c.id for c in page.data]
        if not page.has_more:
            break
        after = page.data[-1].id
    assert paged == [last, first, on_clock]

    before = client.v1.customers.list({"limit": 2, "ending_before": on_clock})
    assert [c.id for c in before.data] == [last, first]


def test_advance_renews_like_the_emulator_advance(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    clock_ = client.v1.test_helpers.test_clocks.create({"frozen_time": FROZEN})
    customer = _clock_customer(client, clock_.id)
    plain_customer = client.v1.customers.create({"email": "real@example.com"})
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": plain_customer.id})
    price = recurring_price(client, 1500)
    sub = client.v1.subscriptions.create({"customer": customer, "items": [{"price": price.id}]})
    real = client.v1.subscriptions.create(
        {"customer": plain_customer.id, "items": [{"price": price.id}], "default_payment_method": pm.id}
    )
    events_before = {e.id for e in client.v1.events.list({"limit": 100}).auto_paging_iter()}

    answer = client.v1.test_helpers.test_clocks.advance(clock_.id, {"frozen_time": FEB_15 + 60})
    assert (answer.status, plain(answer.status_details)) == (
        "advancing",
        {"advancing": {"target_frozen_time": FEB_15 + 60}},
    )
    after = client.v1.test_helpers.test_clocks.retrieve(clock_.id)
    assert (after.status, after.frozen_time, plain(after.status_details)) == ("ready", FEB_15 + 60, {})

    renewed = client.v1.subscriptions.retrieve(sub.id)
    item = renewed["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (FEB_15, MAR_15)
    cycle = client.v1.invoices.retrieve(renewed.latest_invoice)
    assert (cycle.billing_reason, cycle.status, cycle.amount_paid, cycle.created) == (
        "subscription_cycle",
        "paid",
        1500,
        FEB_15,
    )
    new_events = [
        e for e in client.v1.events.list({"limit": 100}).auto_paging_iter() if e.id not in events_before
    ]
    # Oldest first by `created`, as Stripe lists events: the renewal's at the clock's time (the advance's target, February 2024), the
    # clock's own events at the account's real time (the clock is the account's object, its `created` real).
    assert [(e.type, e.created) for e in reversed(new_events)] == [
        ("invoice.created", FEB_15 + 60),
        ("customer.subscription.updated", FEB_15 + 60),
        ("invoice.finalized", FEB_15 + 60),
        ("payment_intent.created", FEB_15 + 60),
        ("charge.succeeded", FEB_15 + 60),
        ("payment_intent.succeeded", FEB_15 + 60),
        ("invoice_payment.paid", FEB_15 + 60),
        ("invoice.paid", FEB_15 + 60),
        ("invoice.payment_succeeded", FEB_15 + 60),
        ("test_helpers.test_clock.advancing", 1_800_000_000),
        ("test_helpers.test_clock.ready", 1_800_000_000),
    ]
    by_type = {e.type: e for e in new_events}
    advancing = by_type["test_helpers.test_clock.advancing"].data.object
    ready = by_type["test_helpers.test_clock.ready"].data.object
    assert (advancing.status, advancing.frozen_time, plain(advancing.status_details)) == (
        "advancing",
        FROZEN,
        {"advancing": {"target_frozen_time": FEB_15 + 60}},
    )
    assert (ready.status, ready.frozen_time, plain(ready.status_details)) == ("ready", FEB_15 + 60, {})
    # The subscription on the emulator's own clock did not move, and the emulator's advance leaves the test
    # clock's subscription alone.
    assert client.v1.subscriptions.retrieve(real.id).latest_invoice == real.latest_invoice
    emulator.advance(40 * DAY)
    assert client.v1.subscriptions.retrieve(real.id).latest_invoice != real.latest_invoice
    assert client.v1.subscriptions.retrieve(sub.id).latest_invoice == renewed.latest_invoice


def test_advance_refusals(client: stripe.StripeClient) -> None:
    clock_ = client.v1.test_helpers.test_clocks.create({"frozen_time": FROZEN})
    for target in (FROZEN, FROZEN - 1):
        with pytest.raises(stripe.InvalidRequestError) as backwards:
            client.v1.test_helpers.test_clocks.advance(clock_.id, {"frozen_time": target})
        assert backwards.value.param == "frozen_time"
    # Without subscriptions: two years at most.
    with pytest.raises(stripe.InvalidRequestError) as too_far:
        client.v1.test_helpers.test_clocks.advance(clock_.id, {"frozen_time": 1_768_435_200 + 1})
    assert too_far.value.param == "frozen_time"
    # With a monthly subscription: two months at most.
    customer = _clock_customer(client, clock_.id)
    price = recurring_price(client, 1500)
    client.v1.subscriptions.create({"customer": customer, "items": [{"price": price.id}]})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.test_helpers.test_clocks.advance(clock_.id, {"frozen_time": MAR_15 + 1})
    assert client.v1.test_helpers.test_clocks.retrieve(clock_.id).frozen_time == FROZEN
    assert (
        client.v1.test_helpers.test_clocks.advance(clock_.id, {"frozen_time": MAR_15}).status == "advancing"
    )
    invoices = client.v1.invoices.list({"customer": customer}).data
    assert [i.billing_reason for i in invoices] == [
        "subscription_cycle",
        "subscription_cycle",
        "subscription_create",
    ]


def test_deleting_a_clock_deletes_its_customers(client: stripe.StripeClient) -> None:
    clock_ = client.v1.test_helpers.test_clocks.create({"frozen_time": FROZEN})
    customer = _clock_customer(client, clock_.id)
    price = recurring_price(client, 1500)
    sub = client.v1.subscriptions.create({"customer": customer, "items": [{"price": price.id}]})
    client.v1.test_helpers.test_clocks.delete(clock_.id)
    assert client.v1.customers.retrieve(customer).deleted is True
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError) as on_deleted:
        client.v1.customers.create({"test_clock": clock_.id})
    assert (on_deleted.value.http_status, on_deleted.value.param) == (404, "test_clock")
    assert on_deleted.value.user_message == f"No such test clock: '{clock_.id}'"
    with pytest.raises(stripe.InvalidRequestError) as advance_deleted:
        client.v1.test_helpers.test_clocks.advance(clock_.id, {"frozen_time": FEB_15})
    assert advance_deleted.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.create({"test_clock": "clock_unknown"})
    assert unknown.value.http_status == 404
    assert [c.id for c in client.v1.customers.list().data] == []


def test_objects_of_a_clock_customer_name_the_clock(client: stripe.StripeClient) -> None:
    """Stripe gives `test_clock` to customers, subscriptions, invoices and invoice items (and to schedules,
    quotes and credit grants, which the emulator does not emulate): the clock of the customer, else null."""
    clock_ = client.v1.test_helpers.test_clocks.create({"frozen_time": FROZEN})
    customer = _clock_customer(client, clock_.id)
    real, _ = customer_with_card(client, email="real@example.com")
    basic = recurring_price(client, 1500)
    premium = recurring_price(client, 3000, product=basic.product)

    for who, expected in ((customer, clock_.id), (real, None)):
        sub = client.v1.subscriptions.create({"customer": who, "items": [{"price": basic.id}]})
        assert sub.test_clock == expected
        assert client.v1.subscriptions.retrieve(sub.id).test_clock == expected
        assert client.v1.invoices.retrieve(sub.latest_invoice).test_clock == expected
        changed = client.v1.subscriptions.update(
            sub.id,
            {
                "items": [{"id": sub["items"].data[0].id, "price": premium.id}],
                "proration_behavior": "create_prorations",
            },
        )
        assert changed.test_clock == expected
        prorations = client.v1.invoices.create_preview({"subscription": sub.id})
        assert prorations.test_clock == expected
        items = [
            e.data.object for e in events(client, "invoiceitem.created") if e.data.object.customer == who
        ]
        assert [i.test_clock for i in items] == [expected, expected]
        for event in events(client):
            obj = event.data.object.to_dict()
            if obj["object"] in ("subscription", "invoice", "invoiceitem") and obj.get("customer") == who:
                assert obj["test_clock"] == expected, event.type


def test_the_portal_acts_at_the_clock_time(client: stripe.StripeClient, emulator: Emulator) -> None:
    clock_ = client.v1.test_helpers.test_clocks.create({"frozen_time": FROZEN})
    customer = _clock_customer(client, clock_.id)
    basic = recurring_price(client, 1500)
    premium = recurring_price(client, 3000, product=basic.product)
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": basic.id, "quantity": 2}]}
    )
    client.v1.test_helpers.test_clocks.advance(clock_.id, {"frozen_time": FROZEN + 15 * DAY})
    config = client.v1.billing_portal.configurations.create(
        {
            "features": {
                "subscription_update": {
                    "enabled": True,
                    "default_allowed_updates": ["price"],
                    "proration_behavior": "always_invoice",
                    "products": [{"product": basic.product, "prices": [basic.id, premium.id]}],
                }
            }
        }
    )
    session = client.v1.billing_portal.sessions.create(
        {"customer": customer, "configuration": config.id, "return_url": "https://example.com"}
    )
    response = emulator.handle(
        "POST",
        f"/portal/{session.id}/subscriptions/{sub.id}/update",
        body=f"price={premium.id}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 303
    switched = client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    invoice = switched.latest_invoice
    # 15 of the period's 31 days were used: the other 16 are credited at 2 × 1500 and charged at 2 × 3000.
    assert (invoice.created, invoice.test_clock, switched["items"].data[0].quantity) == (
        FROZEN + 15 * DAY,
        clock_.id,
        2,
    )
    assert sorted(line.amount for line in invoice.lines.data) == [-1548, 3097]


def test_a_checkout_of_a_clock_customer_runs_at_the_clock_time(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    clock_ = client.v1.test_helpers.test_clocks.create({"frozen_time": FROZEN})
    customer = client.v1.customers.create({"email": "clock@example.com", "test_clock": clock_.id})
    price = recurring_price(client, 1500)
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://example.com/ok",
        }
    )
    response = emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{session.id}/complete",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200
    sub = client.v1.subscriptions.retrieve(client.v1.checkout.sessions.retrieve(session.id).subscription)
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert (sub.test_clock, sub.created, sub["items"].data[0].current_period_end) == (
        clock_.id,
        FROZEN,
        FEB_15,
    )
    assert (invoice.test_clock, invoice.created, invoice.amount_paid) == (clock_.id, FROZEN, 1500)
