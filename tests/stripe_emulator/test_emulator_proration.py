"""Prorations by Stripe's formula (by the second over the period, rounded to the minor unit), the three
``proration_behavior`` values, and ``pending_if_incomplete`` updates."""

from __future__ import annotations

import stripe

from stripe_emulator import Emulator

from .billing_fixtures import (
    DAY,
    attach_card,
    customer_with_card,
    item_period,
    plain,
    recurring_price,
    subscribe,
    types,
)
from .conftest import FakeClock


def _halfway(client: stripe.StripeClient, clock: FakeClock, sub: stripe.Subscription) -> None:
    start, end = item_period(sub)
    clock.now = start + (end - start) / 2


def test_worked_example_upgrade_halfway_with_always_invoice(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    """3000/month → 6000/month exactly half-way: −1500 credit, +3000 charge, total 1500, paid at once."""
    customer, pm = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    premium = recurring_price(client, 6000, product=basic.product)
    sub = subscribe(client, customer, basic.id)
    period = item_period(sub)
    _halfway(client, clock, sub)
    item = sub["items"].data[0]
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": [{"id": item.id, "price": premium.id}],
            "proration_behavior": "always_invoice",
            "expand": ["latest_invoice.payments"],
        },
    )
    invoice = updated.latest_invoice
    assert sorted(line.amount for line in invoice.lines.data) == [-1500, 3000]
    assert invoice.subtotal == invoice.total == 1500
    assert invoice.billing_reason == "subscription_update"
    assert (invoice.status, invoice.amount_due, invoice.amount_paid, invoice.amount_remaining) == (
        "paid",
        1500,
        1500,
        0,
    )
    payment = invoice.payments.data[0]
    assert client.v1.payment_intents.retrieve(payment.payment.payment_intent).payment_method == pm
    credit = next(line for line in invoice.lines.data if line.amount < 0)
    charge = next(line for line in invoice.lines.data if line.amount > 0)
    assert credit.parent.subscription_item_details.proration is True
    assert credit.pricing.price_details.price == basic.id
    assert charge.pricing.price_details.price == premium.id
    assert credit.description.startswith("Unused time")
    assert charge.description.startswith("Remaining time")
    assert charge.period.end == period[1]
    assert charge.period.start == int(clock.now)
    assert updated["items"].data[0].price.id == premium.id
    assert item_period(updated) == period  # the billing period does not move
    assert updated.status == "active"


def test_create_prorations_land_on_the_next_renewal_invoice(
    client: stripe.StripeClient, clock: FakeClock, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    premium = recurring_price(client, 6000, product=basic.product)
    sub = subscribe(client, customer, basic.id)
    _halfway(client, clock, sub)
    updated = client.v1.subscriptions.update(
        sub.id,
        {"items": [{"id": sub["items"].data[0].id, "price": premium.id}]},  # default: create_prorations
    )
    assert updated.latest_invoice == sub.latest_invoice  # nothing invoiced now
    assert types(client, "invoiceitem").count("invoiceitem.created") == 2
    _, end = item_period(updated)
    emulator.advance(end - emulator.clock.now())
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert renewal.billing_reason == "subscription_cycle"
    assert sorted(line.amount for line in renewal.lines.data) == [-1500, 3000, 6000]
    assert renewal.total == 7500
    assert renewal.amount_paid == 7500
    lines = client.v1.invoices.line_items.list(renewal.id).data
    assert sum(line.amount for line in lines) == renewal.subtotal


def test_proration_none_adds_nothing(
    client: stripe.StripeClient, clock: FakeClock, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    premium = recurring_price(client, 6000, product=basic.product)
    sub = subscribe(client, customer, basic.id)
    _halfway(client, clock, sub)
    client.v1.subscriptions.update(
        sub.id,
        {"items": [{"id": sub["items"].data[0].id, "price": premium.id}], "proration_behavior": "none"},
    )
    assert "invoiceitem.created" not in types(client)
    _, end = item_period(sub)
    emulator.advance(end - emulator.clock.now())
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert [line.amount for line in renewal.lines.data] == [6000]


def test_quantity_change_prorates_by_the_second(client: stripe.StripeClient, clock: FakeClock) -> None:
    customer, _ = customer_with_card(client)
    seats = recurring_price(client, 1000, name="Seats")
    sub = subscribe(client, customer, seats.id)
    start, end = item_period(sub)
    clock.now = start + (end - start) // 3  # a third of the way (31 days: 888 000 s of 2 678 400 s)
    remaining, length = end - int(clock.now), end - start
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": [{"id": sub["items"].data[0].id, "quantity": 3}],
            "proration_behavior": "always_invoice",
            "expand": ["latest_invoice"],
        },
    )
    amounts = sorted(line.amount for line in updated.latest_invoice.lines.data)
    assert amounts == [-round(1000 * remaining / length), round(3000 * remaining / length)]
    assert updated.latest_invoice.total == sum(amounts)


def test_downgrade_credit_becomes_customer_balance(
    client: stripe.StripeClient, clock: FakeClock, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    premium = recurring_price(client, 6000, name="Premium")
    basic = recurring_price(client, 3000, product=premium.product)
    sub = subscribe(client, customer, premium.id)
    _halfway(client, clock, sub)
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": [{"id": sub["items"].data[0].id, "price": basic.id}],
            "proration_behavior": "always_invoice",
            "expand": ["latest_invoice"],
        },
    )
    invoice = updated.latest_invoice
    assert invoice.total == -1500
    assert invoice.amount_due == 0
    assert invoice.status == "paid"
    assert invoice.ending_balance == -1500
    assert client.v1.customers.retrieve(customer).balance == -1500
    _, end = item_period(sub)
    emulator.advance(end - emulator.clock.now())
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert (renewal.total, renewal.starting_balance, renewal.amount_due, renewal.amount_paid) == (
        3000,
        -1500,
        1500,
        1500,
    )
    assert client.v1.customers.retrieve(customer).balance == 0


def test_pending_if_incomplete_failed_upgrade_changes_nothing(
    client: stripe.StripeClient, clock: FakeClock, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    premium = recurring_price(client, 6000, product=basic.product)
    sub = subscribe(client, customer, basic.id)
    failing = attach_card(client, customer, "pm_card_chargeCustomerFail")
    client.v1.subscriptions.update(sub.id, {"default_payment_method": failing})
    before = client.v1.subscriptions.retrieve(sub.id)
    _halfway(client, clock, sub)
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": [{"id": sub["items"].data[0].id, "price": premium.id}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
            "expand": ["latest_invoice"],
        },
    )
    assert updated.status == "active"
    assert updated["items"].data[0].price.id == basic.id  # nothing applied
    assert item_period(updated) == item_period(before)
    assert updated.pending_update is not None
    pending = plain(updated.pending_update.subscription_items[0])
    current = plain(before["items"].data[0])
    # A full subscription item as it will be, not a partial dict: every field of the current one, the new price.
    assert set(pending) == set(current)
    assert pending == {**current, "price": plain(premium), "plan": pending["plan"]}
    assert (pending["plan"]["id"], pending["plan"]["amount"]) == (premium.id, 6000)
    assert updated.latest_invoice.status == "open"
    assert updated.latest_invoice.amount_remaining == 1500
    # Paying the invoice with a good card applies the pending update.
    good = attach_card(client, customer, "pm_card_visa")
    client.v1.invoices.pay(updated.latest_invoice.id, {"payment_method": good})
    applied = client.v1.subscriptions.retrieve(sub.id)
    assert applied.pending_update is None
    assert applied["items"].data[0].price.id == premium.id


def test_pending_update_expires_after_23_hours(
    client: stripe.StripeClient, clock: FakeClock, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client, "pm_card_visa")
    basic = recurring_price(client, 3000, name="Basic")
    premium = recurring_price(client, 6000, product=basic.product)
    sub = subscribe(client, customer, basic.id)
    failing = attach_card(client, customer, "pm_card_chargeCustomerFail")
    client.v1.subscriptions.update(sub.id, {"default_payment_method": failing})
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": [{"id": sub["items"].data[0].id, "price": premium.id}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        },
    )
    emulator.advance(23 * 3600)
    expired = client.v1.subscriptions.retrieve(sub.id)
    assert expired.pending_update is None
    assert expired["items"].data[0].price.id == basic.id
    assert client.v1.invoices.retrieve(updated.latest_invoice).status == "void"
    assert expired.status == "active"


def test_changes_during_a_trial_are_not_prorated(client: stripe.StripeClient, clock: FakeClock) -> None:
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    premium = recurring_price(client, 6000, product=basic.product)
    sub = subscribe(client, customer, basic.id, trial_period_days=14)
    clock.now += 2 * DAY
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": [{"id": sub["items"].data[0].id, "price": premium.id}],
            "proration_behavior": "always_invoice",
        },
    )
    assert updated.status == "trialing"
    assert updated.latest_invoice == sub.latest_invoice
    assert "invoiceitem.created" not in types(client)


def test_a_pending_update_shows_an_added_item_under_the_id_it_gets(
    client: stripe.StripeClient, clock: FakeClock, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 3000, name="Basic")
    addon = recurring_price(client, 1000, name="Add-on")
    sub = subscribe(client, customer, basic.id)
    failing = attach_card(client, customer, "pm_card_chargeCustomerFail")
    client.v1.subscriptions.update(sub.id, {"default_payment_method": failing})
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": [{"id": sub["items"].data[0].id}, {"price": addon.id, "quantity": 2}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        },
    )
    kept, added = (plain(i) for i in updated.pending_update.subscription_items)
    assert kept == plain(sub["items"].data[0])
    assert (added["object"], added["subscription"], added["price"]["id"], added["quantity"]) == (
        "subscription_item",
        sub.id,
        addon.id,
        2,
    )
    assert (added["current_period_start"], added["current_period_end"]) == item_period(sub)
    assert [i.id for i in updated["items"].data] == [kept["id"]]  # nothing applied yet
    good = attach_card(client, customer, "pm_card_visa")
    clock.now += 3600  # paid an hour later: the item is added, and created, then
    client.v1.invoices.pay(updated.latest_invoice, {"payment_method": good})
    applied = client.v1.subscriptions.retrieve(sub.id)
    assert sorted(i.id for i in applied["items"].data) == sorted([kept["id"], added["id"]])
    assert plain(client.v1.subscription_items.retrieve(added["id"])) == {
        **added,
        "created": added["created"] + 3600,
    }
