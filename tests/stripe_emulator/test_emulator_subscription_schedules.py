"""Subscription schedules through the official SDK: a schedule made from a subscription, a second phase added
for the period's end, the clock moving the subscription into it (its items, price, quantity and invoice) and
completing the schedule, release and cancel, and what Stripe refuses — each refusal changing nothing."""

from __future__ import annotations

import pytest
import stripe

from stripe_emulator import Emulator

from .billing_fixtures import (
    customer_with_card,
    events,
    item_period,
    plain,
    recurring_price,
    subscribe,
    types,
)
from .conftest import FakeClock


def _subscribed(client: stripe.StripeClient, amount: int = 5000) -> tuple[stripe.Subscription, stripe.Price]:
    customer, _ = customer_with_card(client)
    price = recurring_price(client, amount, name="Pro")
    return subscribe(client, customer, price.id), price


def test_from_subscription_takes_the_current_period_and_items(client: stripe.StripeClient) -> None:
    sub, price = _subscribed(client)
    start, end = item_period(sub)
    schedule = client.v1.subscription_schedules.create({"from_subscription": sub.id})
    assert schedule.id.startswith("sub_sched_")
    assert (schedule.status, schedule.subscription, schedule.end_behavior) == ("active", sub.id, "release")
    assert plain(schedule.current_phase) == {"start_date": start, "end_date": end}
    assert [(p.start_date, p.end_date) for p in schedule.phases] == [(start, end)]
    assert [(i.price, i.quantity) for i in schedule.phases[0]["items"]] == [(price.id, 1)]
    assert client.v1.subscriptions.retrieve(sub.id).schedule == schedule.id
    assert types(client, "subscription_schedule.") == ["subscription_schedule.created"]
    assert plain(client.v1.subscription_schedules.retrieve(schedule.id)) == plain(schedule)
    listed = client.v1.subscription_schedules.list({"customer": sub.customer})
    assert [s.id for s in listed.data] == [schedule.id]


def test_refusals_change_nothing(client: stripe.StripeClient) -> None:
    sub, price = _subscribed(client)
    schedule = client.v1.subscription_schedules.create({"from_subscription": sub.id})
    before_events = len(events(client))
    with pytest.raises(stripe.InvalidRequestError, match="already attached to a schedule"):
        client.v1.subscription_schedules.create({"from_subscription": sub.id})
    with pytest.raises(stripe.InvalidRequestError, match="cannot set `phases` if `from_subscription`"):
        client.v1.subscription_schedules.create(
            {"from_subscription": sub.id, "phases": [{"items": [{"price": price.id}]}]}
        )
    with pytest.raises(stripe.InvalidRequestError, match="managed by the subscription schedule") as refused:
        client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    assert refused.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError, match="start date of the current phase"):
        client.v1.subscription_schedules.update(
            schedule.id,
            {
                "phases": [
                    {"items": [{"price": price.id}], "start_date": schedule.current_phase.start_date + 5}
                ]
            },
        )
    assert len(events(client)) == before_events
    assert plain(client.v1.subscription_schedules.retrieve(schedule.id)) == plain(schedule)
    assert client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is False

    released = client.v1.subscription_schedules.release(schedule.id)
    with pytest.raises(stripe.InvalidRequestError, match="currently in the `released` status"):
        client.v1.subscription_schedules.release(schedule.id)
    with pytest.raises(stripe.InvalidRequestError, match="currently in the `released` status"):
        client.v1.subscription_schedules.update(schedule.id, {"end_behavior": "cancel"})
    assert plain(client.v1.subscription_schedules.retrieve(schedule.id)) == plain(released)


def test_a_second_phase_applies_at_the_period_end_and_the_schedule_completes(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    sub, price = _subscribed(client, 5000)
    cheaper = recurring_price(client, 2000, product=price.product)
    start, end = item_period(sub)
    schedule = client.v1.subscription_schedules.create({"from_subscription": sub.id})
    updated = client.v1.subscription_schedules.update(
        schedule.id,
        {
            "phases": [
                {"items": [{"price": price.id, "quantity": 1}], "start_date": start, "end_date": end},
                {"items": [{"price": cheaper.id, "quantity": 2}], "iterations": 1},
            ],
            "proration_behavior": "none",
        },
    )
    assert [(p.start_date, p.end_date) for p in updated.phases] == [
        (start, end),
        (end, updated.phases[1].end_date),
    ]
    # Nothing changes before the period ends.
    live = client.v1.subscriptions.retrieve(sub.id)
    assert [(i.price.id, i.quantity) for i in live["items"].data] == [(price.id, 1)]
    assert live.latest_invoice == sub.latest_invoice

    clock.now = float(end + 60)
    emulator.advance(0)
    live = client.v1.subscriptions.retrieve(sub.id)
    assert [(i.price.id, i.quantity) for i in live["items"].data] == [(cheaper.id, 2)]
    assert item_period(live)[0] == end
    renewal = client.v1.invoices.retrieve(live.latest_invoice)
    assert (renewal.billing_reason, renewal.amount_due, renewal.status) == (
        "subscription_cycle",
        4000,
        "paid",
    )
    moved = client.v1.subscription_schedules.retrieve(schedule.id)
    assert plain(moved.current_phase) == {"start_date": end, "end_date": updated.phases[1].end_date}
    updates = [e for e in events(client, "customer.subscription.updated") if e.created >= end]
    assert updates
    assert updates[0].data.object["items"]["data"][0]["price"]["id"] == cheaper.id

    clock.now = float(updated.phases[1].end_date + 60)
    emulator.advance(0)
    done = client.v1.subscription_schedules.retrieve(schedule.id)
    assert (done.status, done.subscription, done.released_subscription) == ("completed", None, sub.id)
    assert done.completed_at == updated.phases[1].end_date
    live = client.v1.subscriptions.retrieve(sub.id)
    assert (live.status, live.schedule) == ("active", None)
    assert [(i.price.id, i.quantity) for i in live["items"].data] == [(cheaper.id, 2)]
    assert types(client, "subscription_schedule.") == [
        "subscription_schedule.created",
        "subscription_schedule.updated",
        "subscription_schedule.updated",
        "subscription_schedule.completed",
    ]


def test_release_and_cancel(client: stripe.StripeClient) -> None:
    sub, _ = _subscribed(client)
    schedule = client.v1.subscription_schedules.create({"from_subscription": sub.id})
    released = client.v1.subscription_schedules.release(schedule.id)
    assert (released.status, released.subscription, released.released_subscription) == (
        "released",
        None,
        sub.id,
    )
    assert released.released_at is not None
    assert client.v1.subscriptions.retrieve(sub.id).schedule is None
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"

    again = client.v1.subscription_schedules.create({"from_subscription": sub.id})
    canceled = client.v1.subscription_schedules.cancel(again.id)
    assert (canceled.status, canceled.canceled_at is not None) == ("canceled", True)
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    assert types(client, "subscription_schedule.") == [
        "subscription_schedule.created",
        "subscription_schedule.released",
        "subscription_schedule.created",
        "subscription_schedule.canceled",
    ]


def test_canceling_the_subscription_cancels_its_schedule(client: stripe.StripeClient) -> None:
    sub, _ = _subscribed(client)
    schedule = client.v1.subscription_schedules.create({"from_subscription": sub.id})
    client.v1.subscriptions.cancel(sub.id)
    assert client.v1.subscription_schedules.retrieve(schedule.id).status == "canceled"


def test_a_schedule_for_a_customer_starts_its_subscription(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    price = recurring_price(client, 1500)
    schedule = client.v1.subscription_schedules.create(
        {"customer": customer, "start_date": "now", "end_behavior": "cancel",
         "phases": [{"items": [{"price": price.id, "quantity": 3}], "iterations": 2}]}
    )  # fmt: skip
    assert schedule.status == "active"
    sub = client.v1.subscriptions.retrieve(schedule.subscription)
    assert (sub.schedule, sub["items"].data[0].quantity) == (schedule.id, 3)
    assert client.v1.invoices.retrieve(sub.latest_invoice).amount_paid == 4500


def test_a_phase_at_another_interval_restarts_the_period_at_the_phase_start(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    sub, price = _subscribed(client, 3000)
    yearly = recurring_price(client, 30000, interval="year", product=price.product)
    start, end = item_period(sub)
    schedule = client.v1.subscription_schedules.create({"from_subscription": sub.id})
    client.v1.subscription_schedules.update(
        schedule.id,
        {
            "phases": [
                {"items": [{"price": price.id, "quantity": 1}], "start_date": start, "end_date": end},
                {"items": [{"price": yearly.id, "quantity": 1}], "iterations": 1},
            ]
        },
    )
    clock.now = float(end + 60)
    emulator.advance(0)
    live = client.v1.subscriptions.retrieve(sub.id)
    assert [(i.price.id, i.quantity) for i in live["items"].data] == [(yearly.id, 1)]
    new_start, new_end = item_period(live)
    assert new_start == end
    assert new_end - new_start in (365 * 86_400, 366 * 86_400)
    invoice = client.v1.invoices.retrieve(live.latest_invoice)
    assert (invoice.billing_reason, invoice.amount_paid) == ("subscription_update", 30000)
    assert client.v1.subscription_schedules.retrieve(schedule.id).current_phase.end_date == new_end
