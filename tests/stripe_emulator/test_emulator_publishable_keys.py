"""Publishable keys (``pk_test_…``, the pair of ``sk_test_…``) reach only what Stripe.js may call — creating a
PaymentMethod, and retrieving or confirming a PaymentIntent or SetupIntent with its client secret — and are
refused as Stripe refuses them everywhere else, changing nothing; ``allowed_payment_method_types`` on a
PaymentIntent's confirm, as on its create and update."""

from __future__ import annotations

import pytest
import stripe

from stripe_emulator import Emulator
from stripe_emulator.sdk import make_client

from .billing_fixtures import events, plain
from .conftest import KEY_A

PUBLISHABLE = "pk_test_" + KEY_A.removeprefix("sk_test_")


@pytest.fixture
def browser(emulator: Emulator) -> stripe.StripeClient:
    return make_client(emulator, PUBLISHABLE)


def _card(client: stripe.StripeClient) -> stripe.PaymentMethod:
    return client.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )


def test_a_publishable_key_creates_a_payment_method_in_its_accounts(
    client: stripe.StripeClient, browser: stripe.StripeClient
) -> None:
    card = _card(browser)
    assert plain(client.v1.payment_methods.retrieve(card.id)) == plain(card)


def test_a_publishable_key_confirms_an_intent_only_with_its_client_secret(
    client: stripe.StripeClient, browser: stripe.StripeClient
) -> None:
    pi = client.v1.payment_intents.create({"amount": 1500, "currency": "usd"})
    card = _card(browser)
    with pytest.raises(stripe.InvalidRequestError, match="Missing required param: client_secret") as missing:
        browser.v1.payment_intents.retrieve(pi.id)
    assert missing.value.param == "client_secret"
    with pytest.raises(
        stripe.InvalidRequestError, match="does not match the client_secret associated with the PaymentIntent"
    ):
        browser.v1.payment_intents.confirm(
            pi.id, {"payment_method": card.id, "client_secret": "pi_x_secret_y"}
        )
    assert plain(client.v1.payment_intents.retrieve(pi.id)) == plain(pi)

    seen = browser.v1.payment_intents.retrieve(pi.id, {"client_secret": pi.client_secret})
    assert (seen.id, seen.status) == (pi.id, "requires_payment_method")
    confirmed = browser.v1.payment_intents.confirm(
        pi.id, {"payment_method": card.id, "client_secret": pi.client_secret}
    )
    assert (confirmed.status, confirmed.amount_received) == ("succeeded", 1500)

    seti = client.v1.setup_intents.create({})
    done = browser.v1.setup_intents.confirm(
        seti.id, {"payment_method": _card(browser).id, "client_secret": seti.client_secret}
    )
    assert done.status == "succeeded"


def test_every_other_call_with_a_publishable_key_is_refused_and_changes_nothing(
    client: stripe.StripeClient, browser: stripe.StripeClient
) -> None:
    before = len(events(client))
    pi = client.v1.payment_intents.create({"amount": 1500, "currency": "usd"})
    for call in (
        lambda: browser.v1.customers.create({"email": "x@example.com"}),
        lambda: browser.v1.payment_intents.create({"amount": 100, "currency": "usd"}),
        lambda: browser.v1.payment_intents.update(pi.id, {"amount": 1}),
        lambda: browser.v1.payment_intents.list(),
        lambda: browser.v1.subscription_schedules.list(),
    ):
        with pytest.raises(
            stripe.AuthenticationError, match="cannot be made with a publishable API key"
        ) as refused:
            call()
        assert refused.value.http_status == 401
    assert client.v1.customers.list().data == []
    assert plain(client.v1.payment_intents.retrieve(pi.id)) == plain(pi)
    assert len(events(client)) == before + 1  # the intent's own payment_intent.created


def test_confirm_takes_allowed_payment_method_types_and_refuses_payment_method_types(
    client: stripe.StripeClient,
) -> None:
    pi = client.v1.payment_intents.create({"amount": 1500, "currency": "eur"})
    assert pi.automatic_payment_methods is not None
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.confirm(
            pi.id, {"payment_method": "pm_card_visa", "payment_method_types": ["card"]}
        )
    assert refused.value.code == "payment_method_types_no_longer_supported"
    with pytest.raises(stripe.InvalidRequestError, match="emulator supports only card"):
        client.v1.payment_intents.confirm(
            pi.id, {"payment_method": "pm_card_visa", "allowed_payment_method_types": ["sepa_debit"]}
        )
    assert plain(client.v1.payment_intents.retrieve(pi.id)) == plain(pi)

    confirmed = client.v1.payment_intents.confirm(
        pi.id, {"payment_method": "pm_card_visa", "allowed_payment_method_types": ["card", "sepa_debit"]}
    )
    assert confirmed.status == "succeeded"
    assert confirmed.allowed_payment_method_types == ["card", "sepa_debit"]
    assert confirmed.automatic_payment_methods is None
