"""Subscriptions through the SDK: creation (paid, declined, trials), renewal by ``advance``, cancellation,
pause/resume, items, lists, and the events each step emits."""

from __future__ import annotations

from pathlib import Path

import pytest
import stripe

from stripe_emulator import Emulator
from stripe_emulator.sdk import make_client

from .billing_fixtures import (
    DAY,
    customer_with_card,
    events,
    item_period,
    plain,
    recurring_price,
    subscribe,
    types,
)
from .conftest import KEY_A, FakeClock


def test_create_paid_with_4242(client: stripe.StripeClient, clock: FakeClock) -> None:
    customer, pm = customer_with_card(client)
    price = recurring_price(client, 3000)
    sub = subscribe(client, customer, price.id, expand=["latest_invoice.payments"])
    assert sub.status == "active"
    start, end = item_period(sub)
    assert start == int(clock.now)
    assert end - start == 31 * DAY
    invoice = sub.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert (invoice.status, invoice.billing_reason, invoice.amount_paid, invoice.amount_remaining) == (
        "paid",
        "subscription_create",
        3000,
        0,
    )
    assert invoice.number
    assert invoice.hosted_invoice_url
    assert invoice.invoice_pdf
    payment = invoice.payments.data[0]
    assert payment.status == "paid"
    assert payment.amount_paid == 3000
    pi = client.v1.payment_intents.retrieve(payment.payment.payment_intent)
    assert pi.status == "succeeded"
    assert pi.payment_method == pm
    assert pi.amount == 3000
    billing = [t for t in types(client) if t.split(".")[0] in ("invoice", "invoice_payment", "customer")]
    # The payment succeeds inside the create call, so (as with Stripe) the created event already says active.
    assert billing[-6:] == [
        "invoice.created",
        "invoice.finalized",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.created",
    ]
    assert "customer.subscription.updated" not in billing
    created = events(client, "customer.subscription.created")[0]
    assert plain(created.data.object) == plain(client.v1.subscriptions.retrieve(sub.id))


def test_event_objects_equal_a_retrieve_at_that_moment(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client)
    price = recurring_price(client, 1000)
    sub = subscribe(client, customer, price.id)
    snapshot = plain(client.v1.subscriptions.retrieve(sub.id))
    client.v1.subscriptions.update(sub.id, {"metadata": {"plan": "gold"}})
    updated = events(client, "customer.subscription.updated")[-1]
    assert plain(updated.data.previous_attributes) == {"metadata": {"plan": None}}
    assert plain(updated.data.object) == plain(client.v1.subscriptions.retrieve(sub.id))
    assert plain(updated.data.object)["metadata"] == {"plan": "gold"}
    assert snapshot["metadata"] == {}
    emulator.advance(31 * DAY)
    renewal = [e for e in events(client) if e.type in ("customer.subscription.updated", "invoice.paid")][-2:]
    assert [e.type for e in renewal] == ["customer.subscription.updated", "invoice.paid"]
    assert renewal[0].request.id is None  # automatic events carry no request


def test_declined_card_leaves_subscription_incomplete_then_expired(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client, "pm_card_chargeCustomerFail")
    price = recurring_price(client, 3000)
    sub = subscribe(client, customer, price.id, expand=["latest_invoice"])
    assert sub.status == "incomplete"
    invoice = sub.latest_invoice
    assert invoice.status == "open"
    assert invoice.attempt_count == 1
    assert invoice.next_payment_attempt is None
    assert invoice.amount_remaining == 3000
    assert "invoice.payment_failed" in types(client)
    emulator.advance(22 * 3600)
    assert client.v1.subscriptions.retrieve(sub.id).status == "incomplete"
    emulator.advance(3600)
    expired = client.v1.subscriptions.retrieve(sub.id)
    assert expired.status == "incomplete_expired"
    assert expired.ended_at is not None
    assert client.v1.invoices.retrieve(invoice.id).status == "void"
    assert types(client, "customer.subscription")[-1] == "customer.subscription.updated"


def test_incomplete_becomes_active_when_the_invoice_is_paid_with_another_card(
    client: stripe.StripeClient,
) -> None:
    customer, _ = customer_with_card(client, "pm_card_chargeCustomerFail")
    price = recurring_price(client, 3000)
    sub = subscribe(client, customer, price.id)
    good = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer})
    invoice = client.v1.invoices.pay(sub.latest_invoice, {"payment_method": good.id})
    assert invoice.status == "paid"
    assert invoice.amount_paid == 3000
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_error_if_incomplete_creates_nothing(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client, "pm_card_chargeCustomerFail")
    price = recurring_price(client, 3000)
    before = len(events(client))
    with pytest.raises(stripe.CardError) as raised:
        subscribe(client, customer, price.id, payment_behavior="error_if_incomplete")
    assert raised.value.http_status == 402
    assert client.v1.subscriptions.list({"status": "all"}).data == []
    assert client.v1.invoices.list().data == []
    assert len(events(client)) == before


def test_default_incomplete_is_paid_by_confirming_the_payment_intent(client: stripe.StripeClient) -> None:
    customer, pm = customer_with_card(client)
    price = recurring_price(client, 2500)
    sub = subscribe(
        client,
        customer,
        price.id,
        payment_behavior="default_incomplete",
        expand=["latest_invoice.confirmation_secret"],
    )
    assert sub.status == "incomplete"
    secret = sub.latest_invoice.confirmation_secret.client_secret
    pi_id = secret.split("_secret_")[0]
    client.v1.payment_intents.confirm(pi_id, {"payment_method": pm})
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert client.v1.invoices.retrieve(sub.latest_invoice.id).status == "paid"


def test_trial_then_active_with_a_paid_invoice(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    price = recurring_price(client, 3000)
    sub = subscribe(client, customer, price.id, trial_period_days=14, expand=["latest_invoice"])
    assert sub.status == "trialing"
    assert sub.trial_end == int(clock.now) + 14 * DAY
    assert item_period(sub)[1] == sub.trial_end
    assert sub.latest_invoice.status == "paid"
    assert sub.latest_invoice.total == 0
    emulator.advance(10 * DAY)
    assert "customer.subscription.trial_will_end" not in types(client)
    emulator.advance(1 * DAY)  # three days before the trial ends
    assert types(client, "customer.subscription")[-1] == "customer.subscription.trial_will_end"
    emulator.advance(3 * DAY)
    active = client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert active.status == "active"
    assert item_period(active)[0] == sub.trial_end
    assert active.latest_invoice.status == "paid"
    assert active.latest_invoice.amount_paid == 3000
    assert active.latest_invoice.billing_reason == "subscription_cycle"
    assert types(client, "customer.subscription").count("customer.subscription.trial_will_end") == 1


def test_trial_without_payment_method_pauses_then_resumes(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer = client.v1.customers.create({"email": "nocard@example.com"}).id
    price = recurring_price(client, 3000)
    sub = subscribe(
        client,
        customer,
        price.id,
        trial_period_days=7,
        trial_settings={"end_behavior": {"missing_payment_method": "pause"}},
    )
    trial_end = sub.trial_end
    emulator.advance(7 * DAY)
    paused = client.v1.subscriptions.retrieve(sub.id)
    assert paused.status == "paused"
    assert plain(paused)["status_details"] == {
        "paused": {
            "subscription": {"type": "trial_end_without_payment_method"},
            "transitioned_at": trial_end,
            "type": "subscription",
        }
    }
    assert (
        plain(events(client, "customer.subscription.paused")[0].data.object)["status_details"]
        == plain(paused)["status_details"]
    )
    assert (plain(sub)["status_details"], plain(sub)["presentment_details"]) == (None, None)
    assert "customer.subscription.paused" in types(client)
    emulator.advance(60 * DAY)  # paused subscriptions do not renew
    assert len(client.v1.invoices.list({"subscription": sub.id}).data) == 1
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer}).id
    client.v1.subscriptions.update(sub.id, {"default_payment_method": pm})
    resumed = client.v1.subscriptions.resume(sub.id, {"expand": ["latest_invoice"]})
    assert resumed.status == "active"
    assert plain(resumed)["status_details"] is None
    assert resumed.latest_invoice.status == "paid"
    assert types(client, "customer.subscription")[-1] == "customer.subscription.resumed"


def _paused(client: stripe.StripeClient, emulator: Emulator) -> tuple[str, str]:
    customer = client.v1.customers.create({"email": "nocard@example.com"}).id
    price = recurring_price(client, 3000)
    sub = subscribe(
        client,
        customer,
        price.id,
        trial_period_days=7,
        trial_settings={"end_behavior": {"missing_payment_method": "pause"}},
    )
    emulator.advance(7 * DAY)
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer}).id
    client.v1.subscriptions.update(sub.id, {"default_payment_method": pm})
    return sub.id, customer


def test_resume_takes_billing_cycle_anchor_as_a_hash_with_type(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    sub_id, _ = _paused(client, emulator)
    now = int(emulator.advance(3 * DAY))
    resumed = client.v1.subscriptions.resume(sub_id, {"billing_cycle_anchor": {"type": "now"}})
    assert (resumed.status, resumed.billing_cycle_anchor) == ("active", now)
    assert item_period(resumed)[0] == now


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        (
            {"billing_cycle_anchor": "now"},
            "billing_cycle_anchor",
            "Invalid object: billing_cycle_anchor must be a hash of parameters.",
        ),
        (
            {"billing_cycle_anchor": {"type": "later"}},
            "billing_cycle_anchor[type]",
            "Invalid type: must be one of now, or unchanged",
        ),
    ],
)
def test_resume_refuses_the_old_string_anchor_and_unknown_types(
    client: stripe.StripeClient, emulator: Emulator, params: dict, param: str, message: str
) -> None:
    sub_id, _ = _paused(client, emulator)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.subscriptions.resume(sub_id, params)
    assert exc.value.http_status == 400
    assert exc.value.error.type == "invalid_request_error"
    assert exc.value.error.param == param
    assert exc.value.error.message == message
    assert client.v1.subscriptions.retrieve(sub_id).status == "paused"


def test_trial_without_payment_method_can_cancel(client: stripe.StripeClient, emulator: Emulator) -> None:
    customer = client.v1.customers.create().id
    price = recurring_price(client, 3000)
    sub = subscribe(
        client,
        customer,
        price.id,
        trial_period_days=3,
        trial_settings={"end_behavior": {"missing_payment_method": "cancel"}},
    )
    emulator.advance(3 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    assert types(client, "customer.subscription")[-1] == "customer.subscription.deleted"


def test_trial_end_now_starts_billing_immediately(client: stripe.StripeClient, clock: FakeClock) -> None:
    customer, _ = customer_with_card(client)
    price = recurring_price(client, 3000)
    sub = subscribe(client, customer, price.id, trial_period_days=30)
    ended = client.v1.subscriptions.update(sub.id, {"trial_end": "now", "expand": ["latest_invoice"]})
    assert ended.status == "active"
    assert ended.trial_end == int(clock.now)
    assert ended.latest_invoice.amount_paid == 3000
    assert item_period(ended)[0] == int(clock.now)


def test_renewals_each_period_in_order(client: stripe.StripeClient, emulator: Emulator) -> None:
    customer, _ = customer_with_card(client)
    price = recurring_price(client, 1200)
    sub = subscribe(client, customer, price.id)
    _, end = item_period(sub)
    emulator.advance(100 * DAY)  # 15 Jan + 100 days: renewals on 15 Feb, 15 Mar, 15 Apr
    invoices = client.v1.invoices.list({"subscription": sub.id}).data
    assert [i.billing_reason for i in invoices] == ["subscription_cycle"] * 3 + ["subscription_create"]
    assert all(i.status == "paid" and i.amount_paid == 1200 for i in invoices)
    assert [i.created for i in reversed(invoices[:3])] == sorted(i.created for i in invoices[:3])
    renewed = client.v1.subscriptions.retrieve(sub.id)
    new_start, new_end = item_period(renewed)
    assert new_start == invoices[0].created
    assert new_start > end
    assert new_end > new_start
    assert renewed.status == "active"


@pytest.mark.parametrize(
    ("interval", "count", "days"),
    [("day", 1, 1), ("week", 2, 14), ("month", 3, 90), ("year", 1, 365)],
)
def test_intervals(
    client: stripe.StripeClient, emulator: Emulator, interval: str, count: int, days: int
) -> None:
    customer, _ = customer_with_card(client)
    price = recurring_price(client, 500, interval=interval, interval_count=count)
    sub = subscribe(client, customer, price.id)
    start, end = item_period(sub)
    assert abs((end - start) - days * DAY) <= 2 * DAY
    emulator.advance(end - start)
    assert item_period(client.v1.subscriptions.retrieve(sub.id))[0] == end


def test_month_end_anchor(client: stripe.StripeClient, emulator: Emulator, clock: FakeClock) -> None:
    clock.now = 1_801_396_800  # 31 Jan 2027 12:00 UTC
    customer, _ = customer_with_card(client)
    sub = subscribe(client, customer, recurring_price(client, 100).id)
    ends = []
    for _ in range(3):
        _, end = item_period(client.v1.subscriptions.retrieve(sub.id))
        ends.append(end)
        emulator.advance(end - emulator.clock.now())
    from datetime import UTC, datetime

    days = [datetime.fromtimestamp(e, UTC).strftime("%m-%d") for e in ends]
    assert days == ["02-28", "03-31", "04-30"]


def test_cancel_at_period_end(client: stripe.StripeClient, emulator: Emulator) -> None:
    customer, _ = customer_with_card(client)
    sub = subscribe(client, customer, recurring_price(client, 3000).id)
    _, end = item_period(sub)
    scheduled = client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    assert scheduled.cancel_at_period_end
    assert scheduled.cancel_at == end
    assert scheduled.status == "active"
    emulator.advance(end - scheduled.created - 1)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    emulator.advance(1)
    canceled = client.v1.subscriptions.retrieve(sub.id)
    assert canceled.status == "canceled"
    assert canceled.ended_at == end
    assert len(client.v1.invoices.list({"subscription": sub.id}).data) == 1  # no renewal invoice
    assert types(client, "customer.subscription")[-1] == "customer.subscription.deleted"
    deleted = events(client, "customer.subscription.deleted")[-1]
    assert plain(deleted.data.object) == plain(canceled)


def test_resume_a_scheduled_cancellation(client: stripe.StripeClient, emulator: Emulator) -> None:
    customer, _ = customer_with_card(client)
    sub = subscribe(client, customer, recurring_price(client, 3000).id)
    client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    kept = client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": False})
    assert not kept.cancel_at_period_end
    assert kept.cancel_at is None
    assert kept.canceled_at is None
    emulator.advance(40 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_cancel_now(client: stripe.StripeClient, emulator: Emulator) -> None:
    customer, _ = customer_with_card(client)
    sub = subscribe(client, customer, recurring_price(client, 3000).id)
    canceled = client.v1.subscriptions.cancel(sub.id, {"cancellation_details": {"comment": "too pricey"}})
    assert canceled.status == "canceled"
    assert canceled.canceled_at == canceled.ended_at
    assert canceled.cancellation_details.comment == "too pricey"
    assert canceled.cancellation_details.reason == "cancellation_requested"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.cancel(sub.id)
    emulator.advance(60 * DAY)
    assert len(client.v1.invoices.list({"subscription": sub.id}).data) == 1
    assert client.v1.subscriptions.list({"customer": customer}).data == []
    assert [s.id for s in client.v1.subscriptions.list({"status": "canceled"}).data] == [sub.id]


def test_cancel_now_with_proration_credits_the_customer(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client)
    sub = subscribe(client, customer, recurring_price(client, 3100).id)  # 31-day period: 100 per day
    clock.now += 11 * DAY
    client.v1.subscriptions.cancel(sub.id, {"prorate": True, "invoice_now": True})
    final = client.v1.invoices.list({"subscription": sub.id}).data[0]
    assert final.total == -2000
    assert final.amount_due == 0
    assert final.status == "paid"
    assert client.v1.customers.retrieve(customer).balance == -2000


def test_list_filters(client: stripe.StripeClient) -> None:
    a, _ = customer_with_card(client, email="a@example.com")
    b, _ = customer_with_card(client, email="b@example.com")
    cheap, dear = recurring_price(client, 100), recurring_price(client, 900)
    s1 = subscribe(client, a, cheap.id)
    s2 = subscribe(client, b, dear.id, trial_period_days=5)
    assert [s.id for s in client.v1.subscriptions.list({"customer": a}).data] == [s1.id]
    assert [s.id for s in client.v1.subscriptions.list({"price": dear.id}).data] == [s2.id]
    assert [s.id for s in client.v1.subscriptions.list({"status": "trialing"}).data] == [s2.id]
    client.v1.subscriptions.cancel(s1.id)
    assert [s.id for s in client.v1.subscriptions.list({"status": "all"}).data] == [s2.id, s1.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.list({"status": "bogus"})


def test_customer_expand_subscriptions(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    sub = subscribe(client, customer, recurring_price(client, 100).id)
    expanded = client.v1.customers.retrieve(customer, {"expand": ["subscriptions"]})
    assert [s.id for s in expanded.subscriptions.data] == [sub.id]


def test_validation_errors(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    one_time = client.v1.prices.create({"currency": "usd", "unit_amount": 100, "product_data": {"name": "x"}})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        subscribe(client, customer, one_time.id)
    assert raised.value.param == "items[0][price]"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        subscribe(client, "cus_nope", recurring_price(client, 100).id)
    assert missing.value.http_status == 404
    monthly, yearly = recurring_price(client, 100), recurring_price(client, 1000, interval="year")
    with pytest.raises(stripe.InvalidRequestError, match="interval"):
        client.v1.subscriptions.create(
            {"customer": customer, "items": [{"price": monthly.id}, {"price": yearly.id}]}
        )
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.subscriptions.create({"customer": customer, "items": [{"price": monthly.id}], "bogus": "1"})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.param == "bogus"


def test_subscription_items(client: stripe.StripeClient, clock: FakeClock) -> None:
    customer, _ = customer_with_card(client)
    base = recurring_price(client, 1000, name="Seats")
    addon = recurring_price(client, 500, name="Support")
    sub = subscribe(client, customer, base.id)
    item = client.v1.subscription_items.create(
        {"subscription": sub.id, "price": addon.id, "quantity": 2, "proration_behavior": "none"}
    )
    assert item.quantity == 2
    assert item.current_period_end == item_period(sub)[1]
    listed = client.v1.subscription_items.list({"subscription": sub.id}).data
    assert {i.id for i in listed} == {sub["items"].data[0].id, item.id}
    updated = client.v1.subscription_items.update(item.id, {"quantity": 3, "proration_behavior": "none"})
    assert updated.quantity == 3
    assert client.v1.subscription_items.retrieve(item.id).quantity == 3
    deleted = client.v1.subscription_items.delete(item.id, {"proration_behavior": "none"})
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscription_items.retrieve(item.id)
    with pytest.raises(stripe.InvalidRequestError, match="at least one"):
        client.v1.subscription_items.delete(sub["items"].data[0].id)
    assert len(client.v1.subscriptions.retrieve(sub.id)["items"].data) == 1


def test_3ds_first_payment_needs_action_then_activates(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer, _ = customer_with_card(client, "pm_card_authenticationRequired")
    sub = subscribe(client, customer, recurring_price(client, 3000).id, expand=["latest_invoice.payments"])
    assert sub.status == "incomplete"
    assert "invoice.payment_action_required" in types(client)
    pi = sub.latest_invoice.payments.data[0].payment.payment_intent
    assert client.v1.payment_intents.retrieve(pi).status == "requires_action"
    response = emulator.handle(
        "POST", f"/_emulator/payment_intents/{pi}/authenticate", headers={"Authorization": f"Bearer {KEY_A}"}
    )
    assert response.status == 200
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert types(client, "customer.subscription")[-1] == "customer.subscription.updated"


def test_state_survives_persistence(tmp_path: Path, clock: FakeClock) -> None:
    path = str(tmp_path / "state.json")
    first = Emulator(clock=clock, webhook_mode="manual", data_path=path)
    client = make_client(first, KEY_A)
    customer, _ = customer_with_card(client)
    sub = subscribe(client, customer, recurring_price(client, 800).id)
    first.close()
    second = Emulator(clock=clock, webhook_mode="manual", data_path=path)
    second.advance(31 * DAY)
    again = make_client(second, KEY_A)
    assert len(again.v1.invoices.list({"subscription": sub.id}).data) == 2
    assert again.v1.subscriptions.retrieve(sub.id).status == "active"
    second.close()


def test_a_price_change_without_quantity_sets_it_to_1_as_stripe_documents(
    client: stripe.StripeClient,
) -> None:
    """Stripe's reference (`items[][price]` on update, `price` on a subscription item): "When changing a
    subscription item's price, `quantity` is set to 1 unless a `quantity` parameter is provided." The same
    price again, or no price, keeps the quantity."""
    customer, _ = customer_with_card(client)
    basic = recurring_price(client, 1000, name="Seats")
    premium = recurring_price(client, 2000, product=basic.product)
    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": basic.id, "quantity": 3}]}
    )
    item = sub["items"].data[0]
    same = client.v1.subscriptions.update(
        sub.id, {"items": [{"id": item.id, "price": basic.id}], "proration_behavior": "none"}
    )
    assert same["items"].data[0].quantity == 3
    kept = client.v1.subscriptions.update(
        sub.id, {"items": [{"id": item.id, "price": premium.id, "quantity": 3}], "proration_behavior": "none"}
    )
    assert (kept["items"].data[0].price.id, kept["items"].data[0].quantity) == (premium.id, 3)
    reset = client.v1.subscriptions.update(
        sub.id, {"items": [{"id": item.id, "price": basic.id}], "proration_behavior": "none"}
    )
    assert (reset["items"].data[0].price.id, reset["items"].data[0].quantity) == (basic.id, 1)
    client.v1.subscription_items.update(item.id, {"quantity": 4, "proration_behavior": "none"})
    by_item = client.v1.subscription_items.update(
        item.id, {"price": premium.id, "proration_behavior": "none"}
    )
    assert (by_item.price.id, by_item.quantity) == (premium.id, 1)


def _metered(client: stripe.StripeClient) -> stripe.Price:
    meter = client.v1.billing.meters.create(
        {
            "display_name": "API calls",
            "event_name": "api_calls",
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "value_settings": {"event_payload_key": "value"},
        }
    )
    return recurring_price(client, 3, name="Calls", meter=meter.id)


def test_a_quantity_for_a_metered_price_is_refused_not_dropped(client: stripe.StripeClient) -> None:
    customer, _ = customer_with_card(client)
    base = recurring_price(client, 2000, name="Base")
    calls = _metered(client)
    with pytest.raises(stripe.InvalidRequestError) as on_create:
        client.v1.subscriptions.create(
            {"customer": customer, "items": [{"price": base.id}, {"price": calls.id, "quantity": 5}]}
        )
    error = on_create.value
    assert (error.http_status, error.code, error.param, error.user_message) == (
        400,
        None,
        "items[1][quantity]",
        "You cannot set the quantity for metered plans.",
    )
    assert error.error is not None
    assert error.error.type == "invalid_request_error"
    # Nothing was created: no subscription, no invoice, no event.
    assert client.v1.subscriptions.list({"customer": customer, "status": "all"}).data == []
    assert client.v1.invoices.list({"customer": customer}).data == []
    assert [t for t in types(client) if t.startswith(("customer.subscription", "invoice"))] == []

    sub = client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": base.id}, {"price": calls.id}]}
    )
    metered_item = next(i for i in sub["items"].data if i.price.id == calls.id)
    assert metered_item.quantity is None
    before = plain(client.v1.subscriptions.retrieve(sub.id))
    with pytest.raises(stripe.InvalidRequestError) as on_update:
        client.v1.subscriptions.update(sub.id, {"items": [{"id": metered_item.id, "quantity": 2}]})
    assert (on_update.value.param, on_update.value.user_message) == (
        "items[0][quantity]",
        "You cannot set the quantity for metered plans.",
    )
    with pytest.raises(stripe.InvalidRequestError) as on_item:
        client.v1.subscription_items.update(metered_item.id, {"quantity": 2})
    assert (on_item.value.param, on_item.value.user_message) == (
        "quantity",
        "You cannot set the quantity for metered plans.",
    )
    other = _other_metered(client)
    with pytest.raises(stripe.InvalidRequestError) as on_new_item:
        client.v1.subscription_items.create({"subscription": sub.id, "price": other.id, "quantity": 1})
    assert on_new_item.value.param == "quantity"
    with pytest.raises(stripe.InvalidRequestError) as on_added:
        client.v1.subscriptions.update(
            sub.id, {"items": [{"price": other.id, "quantity": 1}], "proration_behavior": "none"}
        )
    assert on_added.value.param == "items[0][quantity]"
    assert plain(client.v1.subscriptions.retrieve(sub.id)) == before


def _other_metered(client: stripe.StripeClient) -> stripe.Price:
    meter = client.v1.billing.meters.create(
        {
            "display_name": "Storage",
            "event_name": "storage_gb",
            "default_aggregation": {"formula": "sum"},
            "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
            "value_settings": {"event_payload_key": "value"},
        }
    )
    return recurring_price(client, 10, name="Storage", meter=meter.id)
