"""Billing meters, meter events, event summaries, and metered prices billed from usage at renewal."""

from __future__ import annotations

import pytest
import stripe

from stripe_emulator import Emulator

from .billing_fixtures import DAY, customer_with_card, item_period, recurring_price
from .conftest import FakeClock


def _meter(
    client: stripe.StripeClient, event_name: str = "api_calls", formula: str = "sum"
) -> stripe.billing.Meter:
    return client.v1.billing.meters.create(
        {
            "display_name": "API calls",
            "event_name": event_name,
            "default_aggregation": {"formula": formula},
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "value_settings": {"event_payload_key": "value"},
        }
    )


def _report(
    client: stripe.StripeClient, customer: str, value: int, *, event_name: str = "api_calls", **extra: object
) -> None:
    client.v1.billing.meter_events.create(
        {"event_name": event_name, "payload": {"stripe_customer_id": customer, "value": str(value)}, **extra}  # type: ignore[typeddict-item]
    )


def test_meter_crud_and_event_name_uniqueness(
    client: stripe.StripeClient, other_client: stripe.StripeClient
) -> None:
    meter = _meter(client)
    assert meter.status == "active"
    assert meter.default_aggregation.formula == "sum"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        _meter(client)
    assert raised.value.http_status == 400
    assert raised.value.param == "event_name"
    _meter(other_client)  # unique per account only
    renamed = client.v1.billing.meters.update(meter.id, {"display_name": "Requests"})
    assert renamed.display_name == "Requests"
    assert client.v1.billing.meters.retrieve(meter.id).display_name == "Requests"
    inactive = client.v1.billing.meters.deactivate(meter.id)
    assert inactive.status == "inactive"
    assert inactive.status_transitions.deactivated_at is not None
    with pytest.raises(stripe.InvalidRequestError):
        _meter(client)  # an inactive meter keeps its event name
    assert [m.id for m in client.v1.billing.meters.list({"status": "inactive"}).data] == [meter.id]
    assert client.v1.billing.meters.reactivate(meter.id).status == "active"


def test_meter_event_validation(client: stripe.StripeClient, clock: FakeClock) -> None:
    _meter(client)
    customer, _ = customer_with_card(client)
    now = int(clock.now)
    _report(client, customer, 5, identifier="req-1", timestamp=now - 35 * DAY)
    with pytest.raises(stripe.InvalidRequestError) as duplicate:
        _report(client, customer, 5, identifier="req-1")
    assert duplicate.value.param == "identifier"
    with pytest.raises(stripe.InvalidRequestError) as old:
        _report(client, customer, 5, timestamp=now - 35 * DAY - 1)
    assert old.value.param == "timestamp"
    with pytest.raises(stripe.InvalidRequestError):
        _report(client, customer, 5, timestamp=now + 301)
    _report(client, customer, 5, timestamp=now + 300)
    with pytest.raises(stripe.InvalidRequestError):
        _report(client, customer, 5, event_name="nope")
    with pytest.raises(stripe.InvalidRequestError):
        _report(client, "cus_missing", 5)
    event = client.v1.billing.meter_events.create(
        {"event_name": "api_calls", "payload": {"stripe_customer_id": customer, "value": "2"}}
    )
    assert event.object == "billing.meter_event"
    assert event.identifier
    assert event.timestamp == now


def test_a_test_clock_customers_meter_events_are_judged_at_the_clocks_time(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    """Stripe takes a test clock's customer's meter events relative to the clock's frozen time: 35 days
    before it to 5 minutes after it, and an event without a timestamp is stamped at it."""
    _meter(client)
    frozen = int(clock.now) - 60 * DAY
    test_clock = client.v1.test_helpers.test_clocks.create({"frozen_time": frozen})
    customer = client.v1.customers.create({"test_clock": test_clock.id}).id
    _report(client, customer, 5, timestamp=frozen - 35 * DAY)
    _report(client, customer, 5, timestamp=frozen + 300)
    for refused in (frozen - 35 * DAY - 1, frozen + 301, int(clock.now)):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            _report(client, customer, 5, timestamp=refused)
        assert raised.value.param == "timestamp"
    event = client.v1.billing.meter_events.create(
        {"event_name": "api_calls", "payload": {"stripe_customer_id": customer, "value": "2"}}
    )
    assert event.timestamp == frozen


@pytest.mark.parametrize(("formula", "expected"), [("sum", 10), ("count", 3), ("last", 4)])
def test_event_summaries(client: stripe.StripeClient, clock: FakeClock, formula: str, expected: int) -> None:
    meter = _meter(client, formula=formula)
    customer, _ = customer_with_card(client)
    day = int(clock.now) // DAY * DAY
    clock.now = day + 2 * DAY
    for value, offset in ((5, 0), (1, 3600), (4, DAY + 60)):
        _report(client, customer, value, timestamp=day + offset)
    whole = client.v1.billing.meters.event_summaries.list(
        meter.id, {"customer": customer, "start_time": day, "end_time": day + 2 * DAY}
    ).data
    assert [s.aggregated_value for s in whole] == [expected]
    daily = client.v1.billing.meters.event_summaries.list(
        meter.id,
        {"customer": customer, "start_time": day, "end_time": day + 2 * DAY, "value_grouping_window": "day"},
    ).data
    assert [(s.start_time, s.end_time) for s in daily] == [(day, day + DAY), (day + DAY, day + 2 * DAY)]
    if formula == "sum":
        assert [s.aggregated_value for s in daily] == [6, 4]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing.meters.event_summaries.list(
            meter.id,
            {
                "customer": customer,
                "start_time": day + 1,
                "end_time": day + DAY,
                "value_grouping_window": "day",
            },
        )


def test_metered_price_must_name_a_meter_of_this_account(
    client: stripe.StripeClient, other_client: stripe.StripeClient
) -> None:
    meter = _meter(other_client)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        recurring_price(client, 5, meter=meter.id)
    assert raised.value.param == "recurring[meter]"
    assert raised.value.http_status == 404
    mine = _meter(client)
    assert recurring_price(client, 5, meter=mine.id).recurring.meter == mine.id


def test_metered_billing_at_renewal(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    meter = _meter(client)
    customer, _ = customer_with_card(client)
    base = recurring_price(client, 1000, name="Platform")
    usage = recurring_price(client, 2, name="API calls", meter=meter.id)  # 2 cents per call
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": base.id}, {"price": usage.id}]}
    )
    first = client.v1.invoices.retrieve(sub.latest_invoice)
    assert first.total == 1000  # metered usage is billed in arrears
    start, end = item_period(sub)
    _report(client, customer, 300)
    clock.now += 10 * DAY
    _report(client, customer, 200)
    other, _ = customer_with_card(client, email="other@example.com")
    _report(client, other, 999)  # another customer's usage is not billed here
    emulator.advance(end - emulator.clock.now())
    _report(client, customer, 7)  # next period
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    usage_line = next(line for line in renewal.lines.data if line.pricing.price_details.price == usage.id)
    assert usage_line.quantity == 500
    assert usage_line.amount == 1000
    assert (usage_line.period.start, usage_line.period.end) == (start, end)
    assert renewal.total == 2000
    assert renewal.status == "paid"
    _, next_end = item_period(client.v1.subscriptions.retrieve(sub.id))
    emulator.advance(next_end - emulator.clock.now())
    third = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert (
        next(line for line in third.lines.data if line.pricing.price_details.price == usage.id).amount == 14
    )


def test_a_meter_event_canceled_within_24_hours_counts_nowhere(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    """`POST /v1/billing/meter_event_adjustments` (type `cancel`, by the event's identifier): the event leaves
    the summaries and the renewal's usage line; a second cancel changes nothing; an event received more than 24
    hours before, or an identifier never sent, is not canceled (Stripe accepts the adjustment and would report
    the failure asynchronously: `pending` here)."""
    meter = _meter(client)
    customer, _ = customer_with_card(client)
    base = recurring_price(client, 1000, name="Platform")
    usage = recurring_price(client, 2, name="API calls", meter=meter.id)
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": base.id}, {"price": usage.id}]}
    )
    start, end = item_period(sub)
    _report(client, customer, 300, identifier="old")
    clock.now += 2 * DAY
    _report(client, customer, 200, identifier="wrong")
    _report(client, customer, 50, identifier="right")

    def cancel(identifier: str, event_name: str = "api_calls") -> stripe.billing.MeterEventAdjustment:
        return client.v1.billing.meter_event_adjustments.create(
            {"event_name": event_name, "type": "cancel", "cancel": {"identifier": identifier}}
        )

    canceled = cancel("wrong")
    assert (
        canceled.object,
        canceled.type,
        canceled.status,
        canceled.cancel.identifier,
        canceled.event_name,
    ) == (
        "billing.meter_event_adjustment",
        "cancel",
        "complete",
        "wrong",
        "api_calls",
    )
    assert cancel("wrong").status == "complete"  # a retry: canceled once
    assert cancel("old").status == "pending"  # received two days ago: kept
    assert cancel("never-sent").status == "pending"
    with pytest.raises(stripe.InvalidRequestError) as no_meter:
        cancel("right", event_name="nope")
    assert (no_meter.value.http_status, no_meter.value.param) == (400, "event_name")
    with pytest.raises(stripe.InvalidRequestError) as bad_type:
        client.v1.billing.meter_event_adjustments.create({"event_name": "api_calls", "type": "void"})  # type: ignore[typeddict-item]
    assert bad_type.value.param == "type"
    whole = client.v1.billing.meters.event_summaries.list(
        meter.id, {"customer": customer, "start_time": start, "end_time": end}
    ).data
    assert [s.aggregated_value for s in whole] == [350]
    emulator.advance(end - emulator.clock.now())
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    usage_line = next(line for line in renewal.lines.data if line.pricing.price_details.price == usage.id)
    assert (usage_line.quantity, usage_line.amount) == (350, 700)


def test_a_metered_price_changed_mid_period_bills_only_the_usage_after_it(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    """Like Stripe (`billing_mode` classic, "Update prices mid-cycle"): the item moved from price A to price B
    bills, at the renewal, only the usage from the move on, at B; the usage before it is billed by nobody. A
    metered item added within the period bills from its addition; the next period bills its whole usage."""
    meter = _meter(client)
    customer, _ = customer_with_card(client)
    a = recurring_price(client, 2, name="API calls", meter=meter.id)
    b = recurring_price(client, 3, name="API calls", meter=meter.id)
    sub = client.v1.subscriptions.create({"customer": customer, "items": [{"price": a.id}]})
    _, end = item_period(sub)
    _report(client, customer, 100)
    clock.now += 10 * DAY
    moved_at = clock.now
    client.v1.subscriptions.update(
        sub.id, {"items": [{"id": sub["items"].data[0].id, "price": b.id}], "proration_behavior": "none"}
    )
    clock.now += DAY
    _report(client, customer, 40)
    emulator.advance(end - emulator.clock.now())
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert [
        (line.pricing.price_details.price, line.quantity, line.amount, line.period.start, line.period.end)
        for line in renewal.lines.data
    ] == [(b.id, 40, 120, moved_at, end)]
    assert renewal.total == 120
    _report(client, customer, 5)
    _, next_end = item_period(client.v1.subscriptions.retrieve(sub.id))
    emulator.advance(next_end - emulator.clock.now())
    third = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert [(line.quantity, line.amount, line.period.start) for line in third.lines.data] == [(5, 15, end)]


def test_a_metered_item_added_mid_period_bills_from_its_addition(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    meter = _meter(client)
    customer, _ = customer_with_card(client)
    base = recurring_price(client, 1000, name="Platform")
    usage = recurring_price(client, 2, name="API calls", meter=meter.id)
    sub = client.v1.subscriptions.create({"customer": customer, "items": [{"price": base.id}]})
    _, end = item_period(sub)
    _report(client, customer, 100)  # no metered item yet: billed by nobody
    clock.now += 10 * DAY
    added_at = clock.now
    client.v1.subscription_items.create(
        {"subscription": sub.id, "price": usage.id, "proration_behavior": "none"}
    )
    _report(client, customer, 30)
    emulator.advance(end - emulator.clock.now())
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    metered = [line for line in renewal.lines.data if line.pricing.price_details.price == usage.id]
    assert [(line.quantity, line.amount, line.period.start) for line in metered] == [(30, 60, added_at)]


def test_a_metered_price_a_schedule_changes_at_the_period_end_bills_that_period_at_the_old_price(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    """A schedule's next phase moves the metered item from A to B at the period's end: the renewal bills the
    ending period's usage at A (in arrears, the price it ran under), the next one the usage after at B."""
    meter = _meter(client)
    customer, _ = customer_with_card(client)
    a = recurring_price(client, 2, name="API calls", meter=meter.id)
    b = recurring_price(client, 3, name="API calls", meter=meter.id, product=a.product)
    sub = client.v1.subscriptions.create({"customer": customer, "items": [{"price": a.id}]})
    start, end = item_period(sub)
    schedule = client.v1.subscription_schedules.create({"from_subscription": sub.id})
    client.v1.subscription_schedules.update(
        schedule.id,
        {
            "phases": [
                {"items": [{"price": a.id}], "start_date": start, "end_date": end},
                {"items": [{"price": b.id}], "iterations": 1},
            ]
        },
    )
    _report(client, customer, 100)
    emulator.advance(end - emulator.clock.now() + 60)
    live = client.v1.subscriptions.retrieve(sub.id)
    assert [i.price.id for i in live["items"].data] == [b.id]
    renewal = client.v1.invoices.retrieve(live.latest_invoice)
    assert [
        (line.pricing.price_details.price, line.quantity, line.amount, line.period.start, line.period.end)
        for line in renewal.lines.data
    ] == [(a.id, 100, 200, start, end)]
    _report(client, customer, 7)
    _, next_end = item_period(live)
    emulator.advance(next_end - emulator.clock.now())
    third = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert [(line.pricing.price_details.price, line.quantity, line.amount) for line in third.lines.data] == [
        (b.id, 7, 21)
    ]
