"""``POST /v1/invoices/create_preview`` through the official SDK: the invoice a subscription change would
create equals what the change then invoices, and the preview writes nothing."""

from __future__ import annotations

import pytest
import stripe

from .billing_fixtures import DAY, customer_with_card, recurring_price, subscribe
from .conftest import FakeClock


def _all_events(client: stripe.StripeClient) -> list[str]:
    return [e.id for e in client.v1.events.list({"limit": 100}).auto_paging_iter()]


def test_preview_equals_the_update_invoice_and_writes_nothing(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    seat = recurring_price(client, 1000, name="Seat")
    sub = subscribe(client, customer, seat.id)
    item = sub["items"].data[0]
    clock.now += 10 * DAY
    remaining, length = (
        item.current_period_end - int(clock.now),
        item.current_period_end - item.current_period_start,
    )
    credit, charge = -round(1000 * remaining / length), round(3000 * remaining / length)
    events = _all_events(client)
    details = {"items": [{"id": item.id, "quantity": 3}], "proration_behavior": "always_invoice"}

    preview = client.v1.invoices.create_preview({"subscription": sub.id, "subscription_details": details})
    assert preview.id.startswith("upcoming_in_")
    assert (preview.billing_reason, preview.status, preview.amount_due) == (
        "subscription_update",
        "draft",
        credit + charge,
    )
    assert [
        (line.amount, line.quantity, line.parent.subscription_item_details.proration)
        for line in preview.lines.data
    ] == [
        (credit, 1, True),
        (charge, 3, True),
    ]
    assert _all_events(client) == events
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].quantity == 1
    assert [i.id for i in client.v1.invoices.list({"customer": customer}).data] == [sub.latest_invoice]

    updated = client.v1.subscriptions.update(sub.id, details)
    invoice = client.v1.invoices.retrieve(updated.latest_invoice)
    assert invoice.amount_paid == preview.amount_due
    assert [line.amount for line in invoice.lines.data] == [line.amount for line in preview.lines.data]
    assert [line.description for line in invoice.lines.data] == [
        line.description for line in preview.lines.data
    ]


def test_preview_with_create_prorations_is_the_next_renewal(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    seat = recurring_price(client, 1000, name="Seat")
    sub = subscribe(client, customer, seat.id)
    item = sub["items"].data[0]
    clock.now += 10 * DAY
    remaining, length = (
        item.current_period_end - int(clock.now),
        item.current_period_end - item.current_period_start,
    )
    credit, charge = -round(1000 * remaining / length), round(3000 * remaining / length)
    preview = client.v1.invoices.create_preview(
        {
            "customer": customer,
            "subscription": sub.id,
            "subscription_details": {"items": [{"id": item.id, "quantity": 3}]},
        }
    )
    assert preview.billing_reason == "subscription_cycle"
    assert preview.created == item.current_period_end
    assert [line.amount for line in preview.lines.data] == [credit, charge, 3000]
    assert preview.amount_due == credit + charge + 3000
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].quantity == 1


def test_preview_refusals(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    other, _ = customer_with_card(client, email="b@example.com")
    sub = subscribe(client, customer, recurring_price(client, 1000).id)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.invoices.create_preview({"customer": customer})
    assert missing.value.param == "subscription"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.invoices.create_preview({"subscription": "sub_unknown"})
    assert (unknown.value.http_status, unknown.value.param) == (404, "subscription")
    with pytest.raises(stripe.InvalidRequestError) as foreign:
        client.v1.invoices.create_preview({"customer": other, "subscription": sub.id})
    assert foreign.value.param == "customer"
    with pytest.raises(stripe.InvalidRequestError) as bad_item:
        client.v1.invoices.create_preview(
            {"subscription": sub.id, "subscription_details": {"items": [{"id": "si_unknown", "quantity": 2}]}}
        )
    assert bad_item.value.param == "subscription_details[items][0][id]"
