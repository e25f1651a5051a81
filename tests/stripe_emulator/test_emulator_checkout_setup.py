"""Checkout Sessions in setup mode through the SDK: the completed session carries a succeeded SetupIntent
whose card is attached to the customer, 3-D Secure on the page, declines, expiry, what setup mode
refuses, and ``allowed_payment_method_types`` (which lets setup mode go without ``currency``)."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_emulator import Emulator
from tests.stripe_emulator.payments_fixtures import as_dict, control, event_types, events_of

SUCCESS = "https://shop.example/saved?session={CHECKOUT_SESSION_ID}"


def _setup_session(client: stripe.StripeClient, **extra: Any) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(
        {"mode": "setup", "currency": "usd", "success_url": SUCCESS, **extra}
    )


def _complete(emulator: Emulator, session_id: str, **form: str) -> Any:
    return control(emulator, f"/_emulator/checkout/sessions/{session_id}/complete", **form)


def test_setup_mode_saves_the_card_on_the_customer(emulator: Emulator, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({"email": "saver@example.com"})
    session = _setup_session(
        client,
        customer=customer.id,
        setup_intent_data={"description": "Card for renewals", "metadata": {"plan": "pro"}},
    )
    assert (session.mode, session.status, session.payment_status) == ("setup", "open", "no_payment_required")
    assert (session.currency, session.amount_total, session.setup_intent) == ("usd", None, None)

    answer = _complete(emulator, session.id)
    assert answer.status == 200
    done = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["setup_intent"]})
    assert (done.status, done.payment_status, done.customer) == (
        "complete",
        "no_payment_required",
        customer.id,
    )
    seti = done.setup_intent
    assert isinstance(seti, stripe.SetupIntent)
    assert (seti.status, seti.customer, seti.usage) == ("succeeded", customer.id, "off_session")
    assert (seti.description, as_dict(seti.metadata)) == ("Card for renewals", {"plan": "pro"})
    pm = client.v1.payment_methods.retrieve(str(seti.payment_method))
    assert pm.customer == customer.id
    completed = events_of(client, "checkout.session.completed")
    assert len(completed) == 1
    assert completed[0].data.object["setup_intent"] == seti.id
    types = event_types(client)
    assert types.index("setup_intent.succeeded") < types.index("checkout.session.completed")
    assert "payment_intent.created" not in types


def test_customer_creation_always_creates_the_customer_that_holds_the_card(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    session = _setup_session(client, customer_creation="always")
    _complete(emulator, session.id, email="new@example.com")
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert done.customer is not None
    assert client.v1.customers.retrieve(str(done.customer)).email == "new@example.com"
    seti = client.v1.setup_intents.retrieve(str(done.setup_intent))
    assert seti.customer == done.customer
    assert client.v1.payment_methods.retrieve(str(seti.payment_method)).customer == done.customer


def test_three_d_secure_on_the_page_then_completion(emulator: Emulator, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({})
    session = _setup_session(client, customer=customer.id)
    pending = _complete(emulator, session.id, card="4000002500003155").data()
    assert pending["status"] == "open"
    seti = client.v1.setup_intents.retrieve(pending["setup_intent"])
    assert seti.status == "requires_action"
    page = emulator.handle("GET", f"/checkout/pay/{session.id}").body.decode()
    assert "Authenticate" in page
    with pytest.raises(stripe.InvalidRequestError) as no_cancel:
        client.v1.setup_intents.cancel(seti.id)
    assert no_cancel.value.code == "setup_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as no_confirm:
        client.v1.setup_intents.confirm(seti.id, {"payment_method": "pm_card_visa"})
    assert no_confirm.value.code == "setup_intent_unexpected_state"

    failed = control(emulator, f"/_emulator/checkout/sessions/{session.id}/authenticate", outcome="fail")
    assert failed.status == 402
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    _complete(emulator, session.id, card="4000002500003155")
    done = control(emulator, f"/_emulator/checkout/sessions/{session.id}/authenticate").data()
    assert done["status"] == "complete"
    assert done["setup_intent"] == seti.id
    assert client.v1.setup_intents.retrieve(seti.id).status == "succeeded"
    # The card was set up: an off-session payment needs no authentication.
    pm_id = str(client.v1.setup_intents.retrieve(seti.id).payment_method)
    pi = client.v1.payment_intents.create(
        {
            "amount": 1500,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": pm_id,
            "confirm": True,
            "off_session": True,
        }
    )
    assert pi.status == "succeeded"


def test_a_declined_card_keeps_the_session_open(emulator: Emulator, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create({})
    session = _setup_session(client, customer=customer.id)
    declined = _complete(emulator, session.id, card="4000000000000002")
    assert declined.status == 402
    body = declined.data()["error"]
    assert (body["code"], body["decline_code"]) == ("card_declined", "generic_decline")
    assert body["setup_intent"]["status"] == "requires_payment_method"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    _complete(emulator, session.id)
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert done.status == "complete"
    assert done.setup_intent == body["setup_intent"]["id"]
    assert len(client.v1.customers.payment_methods.list(customer.id).data) == 1


def test_expiring_a_session_cancels_its_open_setup_intent(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    session = _setup_session(client)
    _complete(emulator, session.id, card="4000002760003184")
    expired = client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired"
    seti = client.v1.setup_intents.retrieve(str(expired.setup_intent))
    assert (seti.status, seti.cancellation_reason) == ("canceled", "abandoned")


def test_setup_mode_refusals(client: stripe.StripeClient) -> None:
    price = client.v1.prices.create(
        {"currency": "usd", "unit_amount": 500, "product_data": {"name": "Thing"}}
    )
    cases: list[tuple[dict[str, Any], str]] = [
        ({"mode": "setup"}, "currency"),
        ({"mode": "setup", "success_url": SUCCESS}, "currency"),
        (
            {"mode": "setup", "currency": "usd", "line_items": [{"price": price.id, "quantity": 1}]},
            "line_items",
        ),
        (
            {"mode": "setup", "currency": "usd", "payment_intent_data": {"description": "x"}},
            "payment_intent_data",
        ),
        ({"mode": "setup", "currency": "usd", "automatic_tax": {"enabled": True}}, "automatic_tax[enabled]"),
        ({"mode": "setup", "currency": "usd", "allow_promotion_codes": True}, "discounts"),
        (
            {
                "mode": "payment",
                "line_items": [{"price": price.id, "quantity": 1}],
                "setup_intent_data": {"description": "x"},
            },
            "setup_intent_data",
        ),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.checkout.sessions.create(params)  # type: ignore[arg-type]
        assert refused.value.param == param, params
    assert client.v1.checkout.sessions.list().data == []


def test_hosted_page_in_setup_mode(emulator: Emulator, client: stripe.StripeClient) -> None:
    session = _setup_session(client)
    page = emulator.handle("GET", f"/checkout/pay/{session.id}").body.decode()
    assert "Save card" in page
    assert "Total due today" not in page
    redirect = control(emulator, f"/_emulator/checkout/sessions/{session.id}/complete", ui="html")
    assert redirect.status == 303
    assert redirect.headers["Location"] == f"https://shop.example/saved?session={session.id}"


def test_payment_method_types_is_gone_from_checkout(client: stripe.StripeClient) -> None:
    """Removed from Checkout Session create at 2026-09-30.endive: an unknown parameter now."""
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(
            {"mode": "setup", "currency": "usd", "payment_method_types": ["card"]}  # type: ignore[typeddict-unknown-key]
        )
    assert (refused.value.code, refused.value.param) == ("parameter_unknown", "payment_method_types")
    assert client.v1.checkout.sessions.list().data == []


def test_allowed_payment_method_types_lets_setup_mode_go_without_currency(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    """Since 2026-09-30.endive: ``currency`` is required in setup mode only when
    ``allowed_payment_method_types`` is not set; the compatible subset shows in ``payment_method_types``."""
    customer = client.v1.customers.create({"email": "saver@example.com"})
    session = client.v1.checkout.sessions.create(
        {
            "mode": "setup",
            "customer": customer.id,
            "success_url": SUCCESS,
            "allowed_payment_method_types": ["sepa_debit", "card"],
        }
    )
    assert session.currency is None
    assert session.allowed_payment_method_types == ["sepa_debit", "card"]
    assert session.payment_method_types == ["card"]
    retrieved = client.v1.checkout.sessions.retrieve(session.id)
    assert (retrieved.allowed_payment_method_types, retrieved.payment_method_types) == (
        ["sepa_debit", "card"],
        ["card"],
    )
    page = emulator.handle("GET", f"/checkout/pay/{session.id}")
    assert page.status == 200
    assert "Save card" in page.body.decode()
    assert _complete(emulator, session.id).status == 200
    done = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["setup_intent"]})
    assert done.status == "complete"
    seti = done.setup_intent
    assert isinstance(seti, stripe.SetupIntent)
    assert (seti.status, seti.customer) == ("succeeded", customer.id)
    assert client.v1.payment_methods.retrieve(str(seti.payment_method)).customer == customer.id

    with_currency = _setup_session(client, allowed_payment_method_types=["card"])
    assert (with_currency.currency, with_currency.allowed_payment_method_types) == ("usd", ["card"])
    without = _setup_session(client)
    assert (without.allowed_payment_method_types, without.payment_method_types) == (None, ["card"])


def test_allowed_payment_method_types_in_payment_mode(
    emulator: Emulator, client: stripe.StripeClient
) -> None:
    price = client.v1.prices.create(
        {"currency": "eur", "unit_amount": 1500, "product_data": {"name": "Ticket"}}
    )
    session = client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 2}],
            "success_url": SUCCESS,
            "allowed_payment_method_types": ["card", "ideal"],
        }
    )
    assert (session.currency, session.amount_total) == ("eur", 3000)
    assert (session.allowed_payment_method_types, session.payment_method_types) == (
        ["card", "ideal"],
        ["card"],
    )
    assert _complete(emulator, session.id).status == 200
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.payment_status) == ("complete", "paid")


def test_allowed_payment_method_types_without_a_card_is_refused(client: stripe.StripeClient) -> None:
    """The emulator supports cards only: a list that leaves nothing compatible is a 400 naming the param,
    in every mode, and nothing is created. ``excluded_payment_method_types`` and
    ``payment_method_configuration`` (exclusive with it on intents) are not emulated on Checkout: unknown."""
    price = client.v1.prices.create(
        {"currency": "usd", "unit_amount": 500, "product_data": {"name": "Thing"}}
    )
    monthly = client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Plan"},
        }
    )
    cases: list[dict[str, Any]] = [
        {"mode": "setup", "allowed_payment_method_types": ["sepa_debit"]},
        {"mode": "setup", "currency": "eur", "allowed_payment_method_types": ["sepa_debit", "ideal"]},
        {
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 1}],
            "allowed_payment_method_types": ["us_bank_account"],
        },
        {
            "mode": "subscription",
            "line_items": [{"price": monthly.id, "quantity": 1}],
            "allowed_payment_method_types": ["paypal"],
        },
    ]
    for params in cases:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.checkout.sessions.create({"success_url": SUCCESS, **params})  # type: ignore[typeddict-item]
        assert refused.value.http_status == 400
        assert refused.value.error is not None
        assert refused.value.error.type == "invalid_request_error"
        assert (refused.value.code, refused.value.param) == (
            "parameter_invalid_string",
            "allowed_payment_method_types",
        )
    for other, value in (
        ("excluded_payment_method_types", ["ideal"]),
        ("payment_method_configuration", "pmc_1"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as unknown:
            client.v1.checkout.sessions.create(
                {"mode": "setup", "allowed_payment_method_types": ["card"], other: value}  # type: ignore[misc]
            )
        assert (unknown.value.code, unknown.value.param) == ("parameter_unknown", other)
    assert client.v1.checkout.sessions.list().data == []
    assert client.v1.setup_intents.list().data == []
    assert client.v1.payment_intents.list().data == []
