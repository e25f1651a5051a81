"""``POST /v1/invoices/create_preview`` through the official SDK: the invoice a subscription change would
create equals what the change then invoices, and the preview writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator

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


def _taxed_subscription(client: stripe.StripeClient) -> tuple[str, Any, Any]:
    """A customer in Germany (19 % VAT) subscribed to one seat of an exclusive-tax EUR price, without tax."""
    customer, _ = customer_with_card(client)
    client.v1.customers.update(customer, {"address": {"country": "DE", "postal_code": "10115"}})
    seat = client.v1.prices.create(
        {
            "currency": "eur",
            "unit_amount": 1000,
            "recurring": {"interval": "month"},
            "tax_behavior": "exclusive",
            "product_data": {"name": "Seat"},
        }
    )
    return customer, seat, subscribe(client, customer, seat.id)


def _totals(invoice: Any) -> tuple[int, list[int], int, int, int]:
    return (
        invoice.subtotal,
        [d.amount for d in invoice.total_discount_amounts],
        sum(t.amount for t in invoice.total_taxes),
        invoice.total,
        invoice.amount_due,
    )


def test_preview_with_discounts_and_automatic_tax_equals_the_update_and_redeems_nothing(
    emulator: Emulator, client: stripe.StripeClient, clock: FakeClock
) -> None:
    """Three seats from the middle of the period, with a 25 %-off promotion code and Stripe Tax, previewed as
    the next renewal: credit −500 and charge 1500 (half of 1000 and of 3000; prorations are never
    discountable, as at Stripe), the next period's 3000 less 25 % (750); 19 % VAT per line on what is left
    (−500 → −95, 1500 → 285, 2250 → 428)."""
    customer, _, sub = _taxed_subscription(client)
    item = sub["items"].data[0]
    middle = item.current_period_start + (item.current_period_end - item.current_period_start) // 2
    assert (item.current_period_end - item.current_period_start) % 2 == 0
    coupon = client.v1.coupons.create({"percent_off": 25, "duration": "forever"})
    promo = client.v1.promotion_codes.create(
        {"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "QUARTER", "max_redemptions": 1}
    )
    clock.now += 5 * DAY
    details: Any = {"items": [{"id": item.id, "quantity": 3}], "proration_date": middle}
    events = _all_events(client)

    preview = client.v1.invoices.create_preview(
        {
            "customer": customer,
            "subscription": sub.id,
            "subscription_details": details,
            "discounts": [{"promotion_code": promo.id}],
            "automatic_tax": {"enabled": True},
        }
    )

    assert [(line.amount, [d.amount for d in line.discount_amounts]) for line in preview.lines.data] == [
        (-500, []),
        (1500, []),
        (3000, [750]),
    ]
    assert [[t.amount for t in line.taxes] for line in preview.lines.data] == [[-95], [285], [428]]
    assert _totals(preview) == (4000, [750], 618, 3868, 3868)
    assert (preview.automatic_tax.enabled, preview.automatic_tax.status) == (True, "complete")
    # Nothing redeemed, turned on or created: the code can still be used once.
    assert _all_events(client) == events
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 0
    live = client.v1.subscriptions.retrieve(sub.id)
    assert (live.discounts, live.automatic_tax.enabled, live["items"].data[0].quantity) == ([], False, 1)

    client.v1.subscriptions.update(
        sub.id, {**details, "discounts": [{"promotion_code": promo.id}], "automatic_tax": {"enabled": True}}
    )
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 1
    clock.now = item.current_period_end + 60
    emulator.advance(0)
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert renewal.billing_reason == "subscription_cycle"
    assert _totals(renewal) == _totals(preview)
    assert [line.amount for line in renewal.lines.data] == [line.amount for line in preview.lines.data]
    assert renewal.amount_paid == 3868


def test_preview_discounts_and_tax_on_the_next_renewal(client: stripe.StripeClient, clock: FakeClock) -> None:
    """Without a change the preview is the next renewal: 1000 less 10 EUR off, plus 19 % of the rest."""
    _, _, sub = _taxed_subscription(client)
    coupon = client.v1.coupons.create({"amount_off": 1000 // 10, "currency": "eur", "duration": "forever"})
    preview = client.v1.invoices.create_preview(
        {"subscription": sub.id, "discounts": [{"coupon": coupon.id}], "automatic_tax": {"enabled": True}}
    )
    assert preview.billing_reason == "subscription_cycle"
    assert _totals(preview) == (1000, [100], 171, 1071, 1071)
    # `discounts: ""` previews without the subscription's own discount; tax off by default, as the subscription.
    client.v1.subscriptions.update(sub.id, {"discounts": [{"coupon": coupon.id}]})
    inherited = client.v1.invoices.create_preview({"subscription": sub.id})
    assert _totals(inherited) == (1000, [100], 0, 900, 900)
    assert _totals(client.v1.invoices.create_preview({"subscription": sub.id, "discounts": ""})) == (
        1000,
        [],
        0,
        1000,
        1000,
    )


def test_preview_tax_and_discount_refusals_change_nothing(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)  # no address: no tax location
    sub = subscribe(client, customer, recurring_price(client, 1000).id)
    events = _all_events(client)
    with pytest.raises(stripe.InvalidRequestError) as no_location:
        client.v1.invoices.create_preview({"subscription": sub.id, "automatic_tax": {"enabled": True}})
    assert (no_location.value.code, no_location.value.param) == (
        "customer_tax_location_invalid",
        "automatic_tax[enabled]",
    )
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.invoices.create_preview(
            {"subscription": sub.id, "discounts": [{"promotion_code": "promo_x"}]}
        )
    assert (unknown.value.http_status, unknown.value.param) == (404, "discounts[0][promotion_code]")
    assert _all_events(client) == events
    assert client.v1.subscriptions.retrieve(sub.id).discounts == []
