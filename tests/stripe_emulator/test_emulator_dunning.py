"""Failed renewals: ``past_due``, Smart Retries on the documented schedule (1, 3, 5 days after the first
failure), then ``canceled`` (default), ``unpaid`` or left ``past_due`` per the account's billing settings."""

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
    set_billing_settings,
    subscribe,
    types,
)
from .conftest import KEY_A, FakeClock


def _failing_renewal(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> tuple[stripe.Subscription, int]:
    """A subscription paid with 4242 whose card then switches to 0341 (attaches, fails when charged);
    advanced to its first renewal. Returns (subscription, renewal time)."""
    customer, _ = customer_with_card(client)
    sub = subscribe(client, customer, recurring_price(client, 2000).id)
    failing = attach_card(client, customer, "pm_card_chargeCustomerFail")
    client.v1.subscriptions.update(sub.id, {"default_payment_method": failing})
    _, end = item_period(sub)
    emulator.advance(end - emulator.clock.now())
    return client.v1.subscriptions.retrieve(sub.id), end


def test_failed_renewal_goes_past_due_then_retries_then_cancels(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    sub, renewed_at = _failing_renewal(client, emulator, clock)
    assert sub.status == "past_due"
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert invoice.status == "open"
    assert invoice.attempt_count == 1
    assert invoice.next_payment_attempt == renewed_at + 1 * DAY
    assert invoice.amount_remaining == invoice.amount_due == 2000
    emulator.advance(1 * DAY)
    invoice = client.v1.invoices.retrieve(invoice.id)
    assert invoice.attempt_count == 2
    assert invoice.next_payment_attempt == renewed_at + 3 * DAY
    emulator.advance(2 * DAY)
    invoice = client.v1.invoices.retrieve(invoice.id)
    assert invoice.attempt_count == 3
    assert invoice.next_payment_attempt == renewed_at + 5 * DAY
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    emulator.advance(2 * DAY)
    invoice = client.v1.invoices.retrieve(invoice.id)
    assert invoice.attempt_count == 4
    assert invoice.next_payment_attempt is None
    assert invoice.status == "open"
    canceled = client.v1.subscriptions.retrieve(sub.id)
    assert canceled.status == "canceled"
    assert canceled.cancellation_details.reason == "payment_failed"
    assert canceled.ended_at == renewed_at + 5 * DAY
    assert types(client, "invoice.payment_failed").count("invoice.payment_failed") == 4
    assert types(client, "customer.subscription")[-1] == "customer.subscription.deleted"


def test_all_retries_in_one_advance_run_in_order(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    customer, _ = customer_with_card(client, "pm_card_chargeCustomerFail")
    sub = subscribe(client, customer, recurring_price(client, 2000).id, trial_period_days=7)
    emulator.advance(30 * DAY)
    canceled = client.v1.subscriptions.retrieve(sub.id)
    assert canceled.status == "canceled"
    failed = events(client, "invoice.payment_failed")
    assert [e.data.object.attempt_count for e in failed] == [1, 2, 3, 4]
    statuses = [e.data.object.status for e in events(client, "customer.subscription")]
    assert statuses == ["trialing", "trialing", "active", "past_due", "canceled"]  # created, will_end, …


def test_unpaid_variant(client: stripe.StripeClient, emulator: Emulator, clock: FakeClock) -> None:
    settings = set_billing_settings(emulator, KEY_A, after_final_failure="unpaid")
    assert settings["after_final_failure"] == "unpaid"
    assert settings["retry_days"] == [1, 3, 5]
    sub, _ = _failing_renewal(client, emulator, clock)
    emulator.advance(5 * DAY)
    unpaid = client.v1.subscriptions.retrieve(sub.id)
    assert unpaid.status == "unpaid"
    # Unpaid subscriptions keep invoicing but no payment is attempted.
    _, end = item_period(unpaid)
    emulator.advance(end - emulator.clock.now())
    latest = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert latest.status == "open"
    assert latest.attempt_count == 0
    assert latest.next_payment_attempt is None


def test_custom_retry_schedule(client: stripe.StripeClient, emulator: Emulator, clock: FakeClock) -> None:
    set_billing_settings(emulator, KEY_A, retry_days=[2], after_final_failure="past_due")
    sub, renewed_at = _failing_renewal(client, emulator, clock)
    assert client.v1.invoices.retrieve(sub.latest_invoice).next_payment_attempt == renewed_at + 2 * DAY
    emulator.advance(2 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    assert client.v1.invoices.retrieve(sub.latest_invoice).next_payment_attempt is None


def test_retry_succeeds_after_the_customer_fixes_the_card(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    sub, _ = _failing_renewal(client, emulator, clock)
    good = attach_card(client, sub.customer, "pm_card_visa")
    client.v1.subscriptions.update(sub.id, {"default_payment_method": good})
    emulator.advance(1 * DAY)
    recovered = client.v1.subscriptions.retrieve(sub.id)
    assert recovered.status == "active"
    invoice = client.v1.invoices.retrieve(sub.latest_invoice)
    assert invoice.status == "paid"
    assert invoice.attempt_count == 1
    assert invoice.amount_paid == 2000


def test_manual_pay_of_a_past_due_invoice_is_a_card_error_then_works(
    client: stripe.StripeClient, emulator: Emulator, clock: FakeClock
) -> None:
    sub, _ = _failing_renewal(client, emulator, clock)
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(sub.latest_invoice)
    good = attach_card(client, sub.customer, "pm_card_visa")
    paid = client.v1.invoices.pay(sub.latest_invoice, {"payment_method": good})
    assert paid.status == "paid"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_settings_control_validates(emulator: Emulator) -> None:
    response = emulator.handle(
        "POST",
        "/_emulator/billing/settings",
        body=b"after_final_failure=explode",
        headers={"Authorization": f"Bearer {KEY_A}"},
    )
    assert response.status == 400
