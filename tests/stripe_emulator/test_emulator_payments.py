"""Payment methods, payment intents and charges, driven through the official SDK: test cards, declines
(402 with decline_code and the PaymentIntent), 3-D Secure, off-session failures, idempotency, listeners."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import stripe

from stripe_emulator import Account, Emulator
from stripe_emulator.core.store import StripeObject
from stripe_emulator.payments import PaymentsBackend
from tests.stripe_emulator.payments_fixtures import as_dict, control, event_types, events_of, pay


@pytest.fixture
def customer(client: stripe.StripeClient) -> stripe.Customer:
    return client.v1.customers.create({"email": "payer@example.com"})


# -- payment methods -------------------------------------------------------------------------------------


def test_card_payment_method_lifecycle(client: stripe.StripeClient, customer: stripe.Customer) -> None:
    pm = client.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "5555555555554444", "exp_month": 4, "exp_year": 2031, "cvc": "123"},
        }
    )
    assert (pm.card.brand, pm.card.last4, pm.card.exp_month, pm.card.exp_year) == (
        "mastercard",
        "4444",
        4,
        2031,
    )
    assert pm.customer is None
    again = client.v1.payment_methods.create(
        {"type": "card", "card": {"number": "5555 5555 5555 4444", "exp_month": 5, "exp_year": 2032}}
    )
    assert again.card.fingerprint == pm.card.fingerprint
    assert again.id != pm.id

    attached = client.v1.payment_methods.attach(pm.id, {"customer": customer.id})
    assert attached.customer == customer.id
    listed = client.v1.customers.payment_methods.list(customer.id, {"type": "card"})
    assert [p.id for p in listed.data] == [pm.id]
    assert [p.id for p in client.v1.payment_methods.list({"customer": customer.id}).data] == [pm.id]

    updated = client.v1.payment_methods.update(pm.id, {"metadata": {"k": "v"}, "card": {"exp_month": 9}})
    assert as_dict(updated.metadata) == {"k": "v"}
    assert updated.card.exp_month == 9

    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}})
    detached = client.v1.payment_methods.detach(pm.id)
    assert detached.customer is None
    assert client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method is None
    assert event_types(client).count("payment_method.attached") == 1
    assert "payment_method.detached" in event_types(client)


def test_invalid_numbers_and_declining_cards_on_attach(
    client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    with pytest.raises(stripe.CardError) as bad:
        client.v1.payment_methods.create(
            {"type": "card", "card": {"number": "4242424242424241", "exp_month": 1, "exp_year": 2031}}
        )
    assert bad.value.code == "incorrect_number"
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_methods.attach("pm_card_chargeDeclined", {"customer": customer.id})
    assert declined.value.code == "card_declined"
    # 0341 attaches fine: only charging it fails.
    pm = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": customer.id})
    assert pm.id.startswith("pm_")
    assert pm.id != "pm_card_chargeCustomerFail"
    assert pm.card.last4 == "0341"


def test_default_payment_method_must_belong_to_customer(
    client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    other = client.v1.payment_methods.create(
        {"type": "card", "card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2031}}
    )
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": other.id}})
    assert err.value.error.param == "invoice_settings[default_payment_method]"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create({"invoice_settings": {"default_payment_method": "pm_missing"}})


# -- payment intents -------------------------------------------------------------------------------------


def test_successful_payment(client: stripe.StripeClient, customer: stripe.Customer) -> None:
    pi = client.v1.payment_intents.create(
        {"amount": 2000, "currency": "usd", "customer": customer.id, "metadata": {"order": "42"}}
    )
    assert pi.status == "requires_payment_method"
    assert pi.client_secret.startswith(f"{pi.id}_secret_")
    pi = client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"})
    assert pi.status == "succeeded"
    assert pi.amount_received == 2000
    assert pi.last_payment_error is None
    assert pi.payment_method.startswith("pm_")
    assert pi.payment_method != "pm_card_visa"

    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.status, charge.paid, charge.captured, charge.amount_captured) == (
        "succeeded",
        True,
        True,
        2000,
    )
    assert charge.payment_intent == pi.id
    assert charge.customer == customer.id
    assert as_dict(charge.metadata) == {"order": "42"}
    assert charge.payment_method_details.card.last4 == "4242"
    assert charge.balance_transaction.startswith("txn_")
    assert charge.disputed is False

    types = event_types(client)
    assert types[types.index("payment_intent.created") :] == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]
    succeeded = events_of(client, "payment_intent.succeeded")[0]
    assert as_dict(succeeded.data.object) == as_dict(client.v1.payment_intents.retrieve(pi.id))
    assert [c.id for c in client.v1.charges.list({"payment_intent": pi.id}).data] == [charge.id]
    assert [p.id for p in client.v1.payment_intents.list({"customer": customer.id}).data] == [pi.id]


def test_decline_answers_402_with_the_payment_intent(client: stripe.StripeClient) -> None:
    pi = client.v1.payment_intents.create({"amount": 2000, "currency": "usd"})
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_chargeDeclined"})
    error = err.value
    assert error.http_status == 402
    assert (error.code, error.error.decline_code) == ("card_declined", "generic_decline")
    assert error.error.payment_intent.id == pi.id
    assert error.error.payment_intent.status == "requires_payment_method"
    assert error.error.charge.startswith("ch_")

    stored = client.v1.payment_intents.retrieve(pi.id)
    assert stored.status == "requires_payment_method"
    assert stored.payment_method is None
    assert stored.last_payment_error.decline_code == "generic_decline"
    assert stored.amount_received == 0
    failed = client.v1.charges.retrieve(stored.latest_charge)
    assert (failed.status, failed.paid, failed.failure_code) == ("failed", False, "card_declined")
    assert event_types(client)[-2:] == ["charge.failed", "payment_intent.payment_failed"]

    # The customer tries another card on the same intent.
    retried = client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"})
    assert retried.status == "succeeded"
    assert retried.last_payment_error is None
    assert len(client.v1.charges.list({"payment_intent": pi.id}).data) == 2


@pytest.mark.parametrize(
    ("token", "code", "decline_code"),
    [
        ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
        ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc"),
    ],
)
def test_decline_codes(client: stripe.StripeClient, token: str, code: str, decline_code: str) -> None:
    with pytest.raises(stripe.CardError) as err:
        pay(client, token)
    assert (err.value.code, err.value.error.decline_code) == (code, decline_code)
    assert err.value.error.payment_intent.last_payment_error.decline_code == decline_code


def test_raw_insufficient_funds_card(client: stripe.StripeClient) -> None:
    pm = client.v1.payment_methods.create(
        {"type": "card", "card": {"number": "4000000000009995", "exp_month": 1, "exp_year": 2031}}
    )
    with pytest.raises(stripe.CardError) as err:
        pay(client, pm.id)
    assert err.value.error.decline_code == "insufficient_funds"
    assert err.value.error.payment_method.id == pm.id


def test_three_d_secure_challenge_passed(emulator: Emulator, client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_authenticationRequired")
    assert pi.status == "requires_action"
    assert pi.next_action.type == "use_stripe_sdk"
    assert pi.latest_charge is None

    answer = control(emulator, f"/_emulator/payment_intents/{pi.id}/authenticate")
    assert answer.status == 200
    assert answer.data()["status"] == "succeeded"
    pi = client.v1.payment_intents.retrieve(pi.id)
    assert pi.status == "succeeded"
    assert pi.next_action is None
    assert pi.amount_received == 2000
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.payment_method_details.card.three_d_secure.result == "authenticated"
    types = event_types(client)
    assert types.index("payment_intent.requires_action") < types.index("payment_intent.succeeded")


def test_three_d_secure_challenge_failed(emulator: Emulator, client: stripe.StripeClient) -> None:
    pi = pay(client, "pm_card_authenticationRequired", return_url="https://shop.example/back")
    assert pi.next_action.type == "redirect_to_url"
    assert pi.next_action.redirect_to_url.return_url == "https://shop.example/back"
    answer = control(emulator, f"/_emulator/payment_intents/{pi.id}/authenticate", outcome="fail")
    assert answer.data()["status"] == "requires_payment_method"
    pi = client.v1.payment_intents.retrieve(pi.id)
    assert pi.last_payment_error.code == "payment_intent_authentication_failure"
    assert events_of(client, "payment_intent.payment_failed")
    again = control(emulator, f"/_emulator/payment_intents/{pi.id}/authenticate")
    assert again.status == 400


def test_off_session_authentication_required(client: stripe.StripeClient, customer: stripe.Customer) -> None:
    pm = client.v1.payment_methods.attach("pm_card_authenticationRequired", {"customer": customer.id})
    with pytest.raises(stripe.CardError) as err:
        pay(client, pm.id, customer=customer.id, off_session=True)
    assert (err.value.code, err.value.error.decline_code) == (
        "authentication_required",
        "authentication_required",
    )
    assert err.value.error.payment_intent.status == "requires_payment_method"


def test_card_needing_authentication_unless_set_up(
    emulator: Emulator, client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    pm = client.v1.payment_methods.attach("pm_card_authenticationRequiredOnSetup", {"customer": customer.id})
    with pytest.raises(stripe.CardError):
        pay(client, pm.id, customer=customer.id, off_session=True)
    # Authenticated once on-session with setup_future_usage: later off-session payments go through.
    first = pay(client, pm.id, customer=customer.id, setup_future_usage="off_session")
    assert first.status == "requires_action"
    control(emulator, f"/_emulator/payment_intents/{first.id}/authenticate")
    later = pay(client, pm.id, customer=customer.id, off_session=True)
    assert later.status == "succeeded"


def test_card_that_attaches_then_fails(client: stripe.StripeClient, customer: stripe.Customer) -> None:
    pm = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": customer.id})
    with pytest.raises(stripe.CardError) as err:
        pay(client, pm.id, customer=customer.id, off_session=True)
    assert err.value.error.decline_code == "generic_decline"


def test_payment_method_of_another_customer_is_refused(
    client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    with pytest.raises(stripe.InvalidRequestError):
        pay(client, pm.id)


def test_idempotent_create_is_replayed(client: stripe.StripeClient) -> None:
    params: dict[str, Any] = {
        "amount": 1500,
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "confirm": True,
    }
    first = client.v1.payment_intents.create(params, {"idempotency_key": "order-1"})
    second = client.v1.payment_intents.create(params, {"idempotency_key": "order-1"})
    assert first.id == second.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(client.v1.payment_intents.list().data) == 1
    assert len(client.v1.charges.list().data) == 1
    declined = {**params, "payment_method": "pm_card_chargeDeclined"}
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as err:
            client.v1.payment_intents.create(declined, {"idempotency_key": "order-2"})
        errors.append(err.value)
    assert errors[0].error.payment_intent.id == errors[1].error.payment_intent.id
    assert len(client.v1.payment_intents.list().data) == 2


def test_cancel_and_update(client: stripe.StripeClient) -> None:
    pi = client.v1.payment_intents.create(
        {"amount": 1000, "currency": "eur", "allowed_payment_method_types": ["card", "sepa_debit"]}
    )
    assert pi.automatic_payment_methods is None
    assert pi.allowed_payment_method_types == ["card", "sepa_debit"]
    assert pi.payment_method_types == ["card"]
    pi = client.v1.payment_intents.update(pi.id, {"amount": 1200, "description": "Pro plan"})
    assert (pi.amount, pi.description) == (1200, "Pro plan")
    pi = client.v1.payment_intents.update(pi.id, {"payment_method": "pm_card_visa"})
    assert pi.status == "requires_confirmation"
    canceled = client.v1.payment_intents.cancel(pi.id, {"cancellation_reason": "requested_by_customer"})
    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "requested_by_customer"
    assert canceled.canceled_at is not None
    assert event_types(client)[-1] == "payment_intent.canceled"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.confirm(pi.id)
    assert err.value.code == "payment_intent_unexpected_state"
    done = pay(client)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.cancel(done.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.update(done.id, {"amount": 5000})


def test_validation(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as small:
        client.v1.payment_intents.create({"amount": 10, "currency": "usd"})
    assert small.value.error.param == "amount"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.payment_intents.create({"amount": 1000, "currency": "usd", "confirm": True})
    assert missing.value.error.param == "payment_method"
    with pytest.raises(stripe.InvalidRequestError) as unknown_pm:
        client.v1.payment_intents.create({"amount": 1000, "currency": "usd", "payment_method": "pm_nope"})
    assert unknown_pm.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as capture:
        client.v1.payment_intents.create({"amount": 1000, "currency": "usd", "capture_method": "manual"})
    assert capture.value.error.param == "capture_method"


def test_status_listeners_see_every_change(emulator: Emulator, client: stripe.StripeClient) -> None:
    seen: list[tuple[str, str, str]] = []

    def listener(account: Account, pi: StripeObject, previous: str) -> None:
        seen.append((pi["id"], previous, pi["status"]))

    PaymentsBackend.status_listeners.append(listener)
    try:
        pi = pay(client, "pm_card_authenticationRequired")
        control(emulator, f"/_emulator/payment_intents/{pi.id}/authenticate")
    finally:
        PaymentsBackend.status_listeners.remove(listener)
    assert seen == [
        (pi.id, "requires_confirmation", "requires_action"),
        (pi.id, "requires_action", "succeeded"),
    ]


def test_internal_confirm_never_raises_for_declines(emulator: Emulator) -> None:
    backend = emulator.account("sk_test_internal").backend(PaymentsBackend)
    customer = "cus_x"
    with pytest.raises(stripe_error_type()):
        backend.payment_intent_create(amount=1000, currency="usd", customer=customer)
    pi = backend.payment_intent_create(amount=1000, currency="usd")
    out = backend.payment_intent_confirm_internal(pi["id"], payment_method="pm_card_chargeDeclined")
    assert out["status"] == "requires_payment_method"
    assert out["last_payment_error"]["decline_code"] == "generic_decline"
    pm = backend.payment_method_create_from_card("4000002760003184")
    out = backend.payment_intent_confirm_internal(pi["id"], payment_method=pm["id"], off_session=True)
    assert out["last_payment_error"]["code"] == "authentication_required"
    out = backend.payment_intent_confirm_internal(pi["id"], payment_method=pm["id"])
    assert out["status"] == "requires_action"


def stripe_error_type() -> type[Exception]:
    from stripe_emulator import StripeError

    return StripeError


def test_amount_received_never_exceeds_amount(emulator: Emulator, client: stripe.StripeClient) -> None:
    for token in (
        "pm_card_visa",
        "pm_card_chargeDeclined",
        "pm_card_authenticationRequired",
        "pm_card_createDispute",
    ):
        with contextlib.suppress(stripe.CardError):
            pay(client, token)
    for pi in client.v1.payment_intents.list({"limit": 100}).data:
        assert 0 <= pi.amount_received <= pi.amount
        assert (pi.amount_received == pi.amount) == (pi.status == "succeeded")


def test_payment_method_types_is_no_longer_writable(client: stripe.StripeClient) -> None:
    """Removed at 2026-09-30.endive from create, update and confirm: 400
    ``payment_method_types_no_longer_supported``; ``allowed_payment_method_types`` takes its place."""
    pi = client.v1.payment_intents.create({"amount": 1000, "currency": "usd"})
    assert pi.allowed_payment_method_types is None
    assert pi.automatic_payment_methods is not None
    calls = (
        lambda: client.v1.payment_intents.create(
            {"amount": 1000, "currency": "usd", "payment_method_types": ["card"]}  # type: ignore[typeddict-unknown-key]
        ),
        lambda: client.v1.payment_intents.update(pi.id, {"payment_method_types": ["card"]}),  # type: ignore[typeddict-unknown-key]
        lambda: client.v1.payment_intents.confirm(
            pi.id,
            {"payment_method": "pm_card_visa", "payment_method_types": ["card"]},  # type: ignore[typeddict-unknown-key]
        ),
    )
    for call in calls:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            call()
        assert refused.value.http_status == 400
        assert (refused.value.code, refused.value.param) == (
            "payment_method_types_no_longer_supported",
            "payment_method_types",
        )
    assert client.v1.payment_intents.retrieve(pi.id).status == "requires_payment_method"
    assert len(client.v1.payment_intents.list().data) == 1
    with pytest.raises(stripe.InvalidRequestError) as both:
        client.v1.payment_intents.create(
            {
                "amount": 1000,
                "currency": "usd",
                "allowed_payment_method_types": ["card"],
                "automatic_payment_methods": {"enabled": True},
            }
        )
    assert both.value.param == "allowed_payment_method_types"
    with pytest.raises(stripe.InvalidRequestError) as no_card:
        client.v1.payment_intents.create(
            {"amount": 1000, "currency": "usd", "allowed_payment_method_types": ["sepa_debit"]}
        )
    assert no_card.value.param == "allowed_payment_method_types"
    updated = client.v1.payment_intents.update(pi.id, {"allowed_payment_method_types": ["card"]})
    assert updated.allowed_payment_method_types == ["card"]
    assert updated.automatic_payment_methods is None
