"""Changing a subscription's billing interval (monthly ↔ yearly), with Stripe's semantics: the billing cycle
anchor resets to the change, every item's period restarts there, and a ``subscription_update`` invoice bills
the new period in full now, with the unused time on the old price credited on it (and the cut-short period's
metered usage in arrears); ``pending_if_incomplete`` and ``error_if_incomplete`` leave nothing changed on a
decline; ``invoices/create_preview`` shows that very invoice.

The clock starts at 2027-01-15 08:00 UTC (1 800 000 000): the first monthly period is 31 days
(2 678 400 s); ten days in, 1 814 400 s of it are unused."""

from __future__ import annotations

import pytest
import stripe

from stripe_emulator import Emulator

from .billing_fixtures import (
    DAY,
    attach_card,
    customer_with_card,
    events,
    item_period,
    recurring_price,
    subscribe,
    types,
)
from .conftest import FakeClock

T0 = 1_800_000_000
CHANGE = T0 + 10 * DAY  # 2027-01-25 08:00 UTC
YEAR_AFTER_CHANGE = 1_832_400_000  # 2028-01-25 08:00 UTC


def _plans(client: stripe.StripeClient) -> tuple[stripe.Price, stripe.Price]:
    monthly = recurring_price(client, 3000, name="Pro")
    yearly = recurring_price(client, 30000, interval="year", product=monthly.product)
    return monthly, yearly


def _invoices(client: stripe.StripeClient, customer: str) -> list[str]:
    return [i.id for i in client.v1.invoices.list({"customer": customer}).data]


def _lines(invoice: stripe.Invoice) -> list[tuple[int, str, bool, int, int]]:
    return [
        (
            line.amount,
            line.pricing.price_details.price,
            line.parent.subscription_item_details.proration,
            line.period.start,
            line.period.end,
        )
        for line in invoice.lines.data
    ]


def test_monthly_to_yearly_restarts_the_period_and_invoices_it_now(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    sub = subscribe(client, customer, monthly.id)
    assert item_period(sub) == (T0, T0 + 2_678_400)
    item = sub["items"].data[0]
    clock.now = CHANGE
    updated = client.v1.subscriptions.update(
        sub.id, {"items": [{"id": item.id, "price": yearly.id}], "expand": ["latest_invoice"]}
    )  # the default proration_behavior (create_prorations) invoices at once all the same
    assert updated.billing_cycle_anchor == CHANGE
    assert item_period(updated) == (CHANGE, YEAR_AFTER_CHANGE)
    assert (updated["items"].data[0].id, updated["items"].data[0].price.id) == (item.id, yearly.id)
    assert updated.status == "active"
    invoice = updated.latest_invoice
    assert invoice.id != sub.latest_invoice
    assert (invoice.billing_reason, invoice.status) == ("subscription_update", "paid")
    # 3000 × 1 814 400 / 2 678 400 = 2032.26 → −2032 credited; the year charged in full.
    assert _lines(invoice) == [
        (-2032, monthly.id, True, CHANGE, T0 + 2_678_400),
        (30000, yearly.id, False, CHANGE, YEAR_AFTER_CHANGE),
    ]
    assert invoice.lines.data[0].description == "Unused time on 1 × Pro after 25 Jan 2027"
    assert invoice.lines.data[1].description == "1 × Pro (at $300.00 / year)"
    assert (invoice.subtotal, invoice.total, invoice.amount_due, invoice.amount_paid) == (
        27968,
        27968,
        27968,
        27968,
    )
    assert (invoice.period_start, invoice.period_end) == (CHANGE, CHANGE)
    update_event = events(client, "customer.subscription.updated")[-1]
    previous = update_event.data.previous_attributes
    assert previous["billing_cycle_anchor"] == T0
    assert previous["latest_invoice"] == sub.latest_invoice
    assert previous["items"]["data"][0]["current_period_end"] == T0 + 2_678_400
    assert previous["items"]["data"][0]["price"]["id"] == monthly.id


def test_events_of_an_interval_change(client: stripe.StripeClient, clock: FakeClock) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    sub = subscribe(client, customer, monthly.id)
    seen = len(types(client))
    clock.now = CHANGE
    client.v1.subscriptions.update(sub.id, {"items": [{"id": sub["items"].data[0].id, "price": yearly.id}]})
    new = [
        t
        for t in types(client)[seen:]
        if not t.startswith(("payment_intent.", "charge.", "invoice_payment."))
    ]
    assert new == [
        "invoiceitem.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]


def test_proration_behavior_none_charges_the_new_period_without_credit(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    sub = subscribe(client, customer, monthly.id)
    clock.now = CHANGE
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": [{"id": sub["items"].data[0].id, "price": yearly.id}],
            "proration_behavior": "none",
            "expand": ["latest_invoice"],
        },
    )
    assert _lines(updated.latest_invoice) == [(30000, yearly.id, False, CHANGE, YEAR_AFTER_CHANGE)]
    assert updated.latest_invoice.amount_paid == 30000
    assert item_period(updated) == (CHANGE, YEAR_AFTER_CHANGE)


def test_yearly_to_monthly_credits_the_unused_year_to_the_balance_and_renews_monthly(
    client: stripe.StripeClient, clock: FakeClock, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    sub = subscribe(client, customer, yearly.id)
    assert item_period(sub) == (T0, T0 + 31_536_000)
    at = T0 + 100 * DAY  # 2027-04-25 08:00 UTC; 265 of 365 days unused
    clock.now = at
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": [{"id": sub["items"].data[0].id, "price": monthly.id}],
            "proration_behavior": "always_invoice",
            "expand": ["latest_invoice"],
        },
    )
    month_end = at + 30 * DAY  # 2027-05-25 08:00 UTC
    assert item_period(updated) == (at, month_end)
    assert updated.billing_cycle_anchor == at
    invoice = updated.latest_invoice
    # 30000 × 265 / 365 = 21780.82 → −21781
    assert _lines(invoice) == [
        (-21781, yearly.id, True, at, T0 + 31_536_000),
        (3000, monthly.id, False, at, month_end),
    ]
    assert (invoice.total, invoice.amount_due, invoice.status) == (-18781, 0, "paid")
    assert client.v1.customers.retrieve(customer).balance == -18781
    emulator.advance(month_end - emulator.clock.now())
    renewed = client.v1.subscriptions.retrieve(sub.id)
    assert item_period(renewed) == (month_end, month_end + 31 * DAY)
    renewal = client.v1.invoices.retrieve(renewed.latest_invoice)
    assert (renewal.billing_reason, renewal.total, renewal.amount_due) == ("subscription_cycle", 3000, 0)
    assert client.v1.customers.retrieve(customer).balance == -15781


def test_the_next_renewal_is_a_year_after_the_change(
    client: stripe.StripeClient, clock: FakeClock, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    sub = subscribe(client, customer, monthly.id)
    clock.now = CHANGE
    client.v1.subscriptions.update(sub.id, {"items": [{"id": sub["items"].data[0].id, "price": yearly.id}]})
    emulator.advance(T0 + 2_678_400 - emulator.clock.now())  # the old monthly boundary: nothing happens
    assert len(_invoices(client, customer)) == 2
    emulator.advance(YEAR_AFTER_CHANGE - emulator.clock.now())
    renewed = client.v1.subscriptions.retrieve(sub.id)
    assert item_period(renewed) == (
        YEAR_AFTER_CHANGE,
        1_864_022_400,
    )  # 2029-01-25 08:00 UTC (2028 is a leap year)
    renewal = client.v1.invoices.retrieve(renewed.latest_invoice)
    assert (renewal.billing_reason, renewal.total, renewal.status) == ("subscription_cycle", 30000, "paid")
    assert len(_invoices(client, customer)) == 3


def test_pending_if_incomplete_decline_changes_nothing_until_paid(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    sub = subscribe(client, customer, monthly.id)
    failing = attach_card(client, customer, "pm_card_chargeCustomerFail")
    client.v1.subscriptions.update(sub.id, {"default_payment_method": failing})
    item = sub["items"].data[0]
    clock.now = CHANGE
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": [{"id": item.id, "price": yearly.id}],
            "payment_behavior": "pending_if_incomplete",
            "expand": ["latest_invoice"],
        },
    )
    assert updated.status == "active"
    assert updated["items"].data[0].price.id == monthly.id
    assert item_period(updated) == (T0, T0 + 2_678_400)
    assert updated.billing_cycle_anchor == T0
    pending = updated.pending_update
    assert pending.billing_cycle_anchor == CHANGE
    assert pending.expires_at == CHANGE + 23 * 3600
    [pending_item] = pending.subscription_items
    assert (pending_item.id, pending_item.price.id) == (item.id, yearly.id)
    assert (pending_item.current_period_start, pending_item.current_period_end) == (CHANGE, YEAR_AFTER_CHANGE)
    invoice = updated.latest_invoice
    assert (invoice.status, invoice.amount_remaining) == ("open", 27968)
    # Paid later (an hour on) with a good card: the update applies with the period it was asked with.
    clock.now = CHANGE + 3600
    good = attach_card(client, customer, "pm_card_visa")
    client.v1.invoices.pay(invoice.id, {"payment_method": good})
    applied = client.v1.subscriptions.retrieve(sub.id)
    assert applied.pending_update is None
    assert applied["items"].data[0].price.id == yearly.id
    assert item_period(applied) == (CHANGE, YEAR_AFTER_CHANGE)
    assert applied.billing_cycle_anchor == CHANGE


def test_pending_interval_change_expires_and_the_month_renews_as_before(
    client: stripe.StripeClient, clock: FakeClock, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    sub = subscribe(client, customer, monthly.id)
    failing = attach_card(client, customer, "pm_card_chargeCustomerFail")
    client.v1.subscriptions.update(sub.id, {"default_payment_method": failing})
    clock.now = CHANGE
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": [{"id": sub["items"].data[0].id, "price": yearly.id}],
            "payment_behavior": "pending_if_incomplete",
        },
    )
    emulator.advance(23 * 3600)
    expired = client.v1.subscriptions.retrieve(sub.id)
    assert expired.pending_update is None
    assert client.v1.invoices.retrieve(updated.latest_invoice).status == "void"
    assert (expired["items"].data[0].price.id, item_period(expired)) == (monthly.id, (T0, T0 + 2_678_400))


def test_error_if_incomplete_decline_is_refused_and_nothing_changes(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    sub = subscribe(client, customer, monthly.id)
    failing = attach_card(client, customer, "pm_card_chargeCustomerFail")
    client.v1.subscriptions.update(sub.id, {"default_payment_method": failing})
    before = client.v1.subscriptions.retrieve(sub.id)
    seen = types(client)
    clock.now = CHANGE
    with pytest.raises(stripe.CardError) as raised:
        client.v1.subscriptions.update(
            sub.id,
            {
                "items": [{"id": sub["items"].data[0].id, "price": yearly.id}],
                "payment_behavior": "error_if_incomplete",
            },
        )
    assert raised.value.code == "card_declined"
    assert client.v1.subscriptions.retrieve(sub.id).to_dict() == before.to_dict()
    assert types(client) == seen
    assert _invoices(client, customer) == [sub.latest_invoice]


def test_allow_incomplete_decline_applies_the_change_and_goes_past_due(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    sub = subscribe(client, customer, monthly.id)
    failing = attach_card(client, customer, "pm_card_chargeCustomerFail")
    client.v1.subscriptions.update(sub.id, {"default_payment_method": failing})
    clock.now = CHANGE
    updated = client.v1.subscriptions.update(
        sub.id,
        {"items": [{"id": sub["items"].data[0].id, "price": yearly.id}], "expand": ["latest_invoice"]},
    )
    assert (updated.status, updated["items"].data[0].price.id) == ("past_due", yearly.id)
    assert item_period(updated) == (CHANGE, YEAR_AFTER_CHANGE)
    assert (updated.latest_invoice.status, updated.latest_invoice.amount_remaining) == ("open", 27968)


def test_metered_usage_of_the_cut_short_period_is_billed_on_the_change_invoice(
    client: stripe.StripeClient, clock: FakeClock, emulator: Emulator
) -> None:
    meter = client.v1.billing.meters.create(
        {
            "display_name": "API calls",
            "event_name": "api_calls",
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "value_settings": {"event_payload_key": "value"},
        }
    )
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    calls_monthly = recurring_price(client, 2, name="API calls", meter=meter.id)
    calls_yearly = recurring_price(client, 2, interval="year", product=calls_monthly.product, meter=meter.id)
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": monthly.id}, {"price": calls_monthly.id}]}
    )
    base_item, calls_item = sorted(sub["items"].data, key=lambda i: i.price.id != monthly.id)
    clock.now = T0 + DAY
    client.v1.billing.meter_events.create(
        {"event_name": "api_calls", "payload": {"stripe_customer_id": customer, "value": "500"}}
    )
    clock.now = CHANGE
    updated = client.v1.subscriptions.update(
        sub.id,
        {
            "items": [
                {"id": base_item.id, "price": yearly.id},
                {"id": calls_item.id, "price": calls_yearly.id},
            ],
            "expand": ["latest_invoice"],
        },
    )
    invoice = updated.latest_invoice
    assert _lines(invoice) == [
        (-2032, monthly.id, True, CHANGE, T0 + 2_678_400),
        (1000, calls_monthly.id, False, T0, CHANGE),  # 500 calls × 2 ¢, in arrears
        (30000, yearly.id, False, CHANGE, YEAR_AFTER_CHANGE),
    ]
    assert invoice.lines.data[1].quantity == 500
    assert (invoice.total, invoice.status) == (28968, "paid")
    assert {item_period({"items": {"data": [i]}}) for i in updated["items"].data} == {
        (CHANGE, YEAR_AFTER_CHANGE)
    }
    # That usage is not billed again a year on.
    emulator.advance(YEAR_AFTER_CHANGE - emulator.clock.now())
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert [(line.amount, line.pricing.price_details.price) for line in renewal.lines.data] == [
        (30000, yearly.id),
        (0, calls_yearly.id),
    ]


def test_preview_shows_the_interval_change_invoice_and_writes_nothing(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    sub = subscribe(client, customer, monthly.id)
    clock.now = CHANGE
    seen = types(client)
    details = {"items": [{"id": sub["items"].data[0].id, "price": yearly.id}]}
    preview = client.v1.invoices.create_preview({"subscription": sub.id, "subscription_details": details})
    assert preview.id.startswith("upcoming_in_")
    assert (preview.billing_reason, preview.status, preview.amount_due) == (
        "subscription_update",
        "draft",
        27968,
    )
    assert _lines(preview) == [
        (-2032, monthly.id, True, CHANGE, T0 + 2_678_400),
        (30000, yearly.id, False, CHANGE, YEAR_AFTER_CHANGE),
    ]
    assert types(client) == seen
    unchanged = client.v1.subscriptions.retrieve(sub.id)
    assert (unchanged["items"].data[0].price.id, item_period(unchanged)) == (monthly.id, (T0, T0 + 2_678_400))
    assert _invoices(client, customer) == [sub.latest_invoice]

    updated = client.v1.subscriptions.update(sub.id, {**details, "expand": ["latest_invoice"]})
    assert _lines(updated.latest_invoice) == _lines(preview)
    assert [line.description for line in updated.latest_invoice.lines.data] == [
        line.description for line in preview.lines.data
    ]


def test_mixing_intervals_and_changing_currency_are_refused(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    addon = recurring_price(client, 500, name="Add-on")
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": monthly.id}, {"price": addon.id}]}
    )
    base_item = next(i for i in sub["items"].data if i.price.id == monthly.id)
    clock.now = CHANGE
    seen = types(client)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.subscriptions.update(sub.id, {"items": [{"id": base_item.id, "price": yearly.id}]})
    assert raised.value.user_message == (
        "Currency and interval fields must match across all plans on this subscription. Found mismatch in "
        "interval field."
    )
    eur_yearly = client.v1.prices.create(
        {
            "currency": "eur",
            "unit_amount": 30000,
            "recurring": {"interval": "year"},
            "product": monthly.product,
        }
    )
    single = subscribe(client, customer, monthly.id)
    seen = types(client)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.subscriptions.update(
            single.id, {"items": [{"id": single["items"].data[0].id, "price": eur_yearly.id}]}
        )
    assert raised.value.user_message == "The currency of a subscription cannot be changed."
    assert types(client) == seen
    assert client.v1.subscriptions.retrieve(single.id)["items"].data[0].price.id == monthly.id
    assert item_period(client.v1.subscriptions.retrieve(sub.id)) == (T0, T0 + 2_678_400)


def test_an_interval_change_during_a_trial_keeps_the_trial(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    sub = subscribe(client, customer, monthly.id, trial_period_days=14)
    clock.now = T0 + 2 * DAY
    updated = client.v1.subscriptions.update(
        sub.id, {"items": [{"id": sub["items"].data[0].id, "price": yearly.id}]}
    )
    assert (updated.status, updated.trial_end, updated.latest_invoice) == (
        "trialing",
        T0 + 14 * DAY,
        sub.latest_invoice,
    )
    assert updated["items"].data[0].price.id == yearly.id


# -- the hosted portal ---------------------------------------------------------------------------------------


def _portal(client: stripe.StripeClient, customer: str, prices: list[str], product: str) -> str:
    config = client.v1.billing_portal.configurations.create(
        {
            "business_profile": {"headline": "Tollgate"},
            "default_return_url": "https://tollgate.example/account",
            "features": {
                "subscription_update": {
                    "enabled": True,
                    "default_allowed_updates": ["price"],
                    "proration_behavior": "create_prorations",
                    "products": [{"product": product, "prices": prices}],
                }
            },
        }
    )
    session = client.v1.billing_portal.sessions.create({"customer": customer, "configuration": config.id})
    return session.id


def _page(emulator: Emulator, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
    if form is None:
        response = emulator.handle("GET", path)
        return response.status, response.body.decode()
    body = "&".join(f"{k}={v}" for k, v in form.items()).encode()
    response = emulator.handle(
        "POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    return response.status, response.headers.get("Location", "")


def test_the_portal_offers_and_performs_the_switch_to_yearly(
    client: stripe.StripeClient, clock: FakeClock, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    sub = subscribe(client, customer, monthly.id)
    session = _portal(client, customer, [monthly.id, yearly.id], str(monthly.product))
    clock.now = CHANGE
    status, page = _page(emulator, f"/portal/{session}")
    assert status == 200
    assert (
        f'<option value="{yearly.id}">Pro — $300.00/year (billed now, new period starts today)</option>'
        in page
    )
    status, location = _page(
        emulator, f"/portal/{session}/subscriptions/{sub.id}/update", {"price": yearly.id}
    )
    assert (status, location) == (303, f"/portal/{session}?message=Your%20plan%20has%20been%20updated.")
    switched = client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert (switched["items"].data[0].price.id, item_period(switched)) == (
        yearly.id,
        (CHANGE, YEAR_AFTER_CHANGE),
    )
    assert switched.billing_cycle_anchor == CHANGE
    assert _lines(switched.latest_invoice) == [
        (-2032, monthly.id, True, CHANGE, T0 + 2_678_400),
        (30000, yearly.id, False, CHANGE, YEAR_AFTER_CHANGE),
    ]
    assert (switched.latest_invoice.status, switched.latest_invoice.amount_paid) == ("paid", 27968)
    _, page = _page(emulator, f"/portal/{session}")
    assert (
        f'<option value="{monthly.id}">Pro — $30.00/month (billed now, new period starts today)</option>'
        in page
    )
    assert "Renews on Jan 25, 2028" in page


def test_a_declined_portal_switch_changes_nothing(
    client: stripe.StripeClient, clock: FakeClock, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    monthly, yearly = _plans(client)
    sub = subscribe(client, customer, monthly.id)
    failing = attach_card(client, customer, "pm_card_chargeCustomerFail")
    client.v1.subscriptions.update(sub.id, {"default_payment_method": failing})
    session = _portal(client, customer, [monthly.id, yearly.id], str(monthly.product))
    before = client.v1.subscriptions.retrieve(sub.id)
    seen = types(client)
    clock.now = CHANGE
    status, location = _page(
        emulator, f"/portal/{session}/subscriptions/{sub.id}/update", {"price": yearly.id}
    )
    assert status == 303
    assert location == f"/portal/{session}?message=Your%20card%20was%20declined."
    assert client.v1.subscriptions.retrieve(sub.id).to_dict() == before.to_dict()
    assert types(client) == seen
    assert _invoices(client, customer) == [sub.latest_invoice]
