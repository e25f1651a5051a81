"""SetupIntents through the official SDK: the status flow, the card attached to the customer on success,
3-D Secure, failed verifications (402 with the SetupIntent), cancel, list, events, the params this API
version refuses (``payment_method_types``) and ``allowed_payment_method_types`` on create, update and
confirm."""

from __future__ import annotations

import pytest
import stripe

from stripe_emulator import Emulator
from tests.stripe_emulator.payments_fixtures import as_dict, control, event_types, events_of, pay


@pytest.fixture
def customer(client: stripe.StripeClient) -> stripe.Customer:
    return client.v1.customers.create({"email": "saver@example.com"})


def test_create_then_confirm_attaches_the_card(
    client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    seti = client.v1.setup_intents.create({"customer": customer.id, "metadata": {"k": "v"}})
    assert seti.id.startswith("seti_")
    assert seti.status == "requires_payment_method"
    assert seti.client_secret is not None
    assert seti.client_secret.startswith(f"{seti.id}_secret_")
    assert seti.usage == "off_session"
    assert seti.payment_method_types == ["card"]
    assert seti.automatic_payment_methods is not None
    assert seti.automatic_payment_methods.enabled is True
    assert seti.latest_attempt is None
    assert as_dict(seti.metadata) == {"k": "v"}

    updated = client.v1.setup_intents.update(seti.id, {"payment_method": "pm_card_visa"})
    assert updated.status == "requires_confirmation"
    assert updated.payment_method is not None
    assert updated.payment_method.startswith("pm_")
    assert updated.payment_method != "pm_card_visa"

    confirmed = client.v1.setup_intents.confirm(seti.id)
    assert confirmed.status == "succeeded"
    assert confirmed.last_setup_error is None
    pm = client.v1.payment_methods.retrieve(str(confirmed.payment_method))
    assert pm.customer == customer.id
    assert [p.id for p in client.v1.customers.payment_methods.list(customer.id).data] == [pm.id]
    types = event_types(client)
    assert types.index("setup_intent.created") < types.index("payment_method.attached")
    assert types.index("payment_method.attached") < types.index("setup_intent.succeeded")
    succeeded = events_of(client, "setup_intent.succeeded")[0]
    assert succeeded.data.object["id"] == seti.id
    assert succeeded.data.object["status"] == "succeeded"


def test_confirm_at_create_and_on_session_usage(
    client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    seti = client.v1.setup_intents.create(
        {
            "customer": customer.id,
            "payment_method": "pm_card_mastercard",
            "confirm": True,
            "usage": "on_session",
        }
    )
    assert (seti.status, seti.usage) == ("succeeded", "on_session")
    assert client.v1.payment_methods.retrieve(str(seti.payment_method)).customer == customer.id
    assert (
        client.v1.setup_intents.retrieve(seti.id, {"client_secret": seti.client_secret}).status == "succeeded"
    )


def test_without_a_customer_the_card_stays_unattached(client: stripe.StripeClient) -> None:
    seti = client.v1.setup_intents.create({"payment_method": "pm_card_visa", "confirm": True})
    assert seti.status == "succeeded"
    assert client.v1.payment_methods.retrieve(str(seti.payment_method)).customer is None


def test_a_set_up_card_pays_off_session_without_authentication(
    client: stripe.StripeClient, emulator: Emulator, customer: stripe.Customer
) -> None:
    # 4000002500003155 asks for 3-D Secure when set up, then not for off-session payments.
    seti = client.v1.setup_intents.create(
        {"customer": customer.id, "payment_method": "pm_card_authenticationRequiredOnSetup", "confirm": True}
    )
    assert seti.status == "requires_action"
    assert seti.next_action is not None
    assert seti.next_action.type == "use_stripe_sdk"
    answer = control(emulator, f"/_emulator/setup_intents/{seti.id}/authenticate")
    assert answer.status == 200
    assert answer.data()["status"] == "succeeded"
    pm_id = str(seti.payment_method)
    pi = pay(client, pm_id, customer=customer.id, off_session=True)
    assert pi.status == "succeeded"
    types = event_types(client)
    assert types.index("setup_intent.requires_action") < types.index("setup_intent.succeeded")


def test_three_d_secure_redirect_and_a_failed_challenge(
    client: stripe.StripeClient, emulator: Emulator, customer: stripe.Customer
) -> None:
    seti = client.v1.setup_intents.create(
        {
            "customer": customer.id,
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
            "return_url": "https://shop.example/back",
        }
    )
    assert seti.next_action is not None
    assert seti.next_action.type == "redirect_to_url"
    assert seti.next_action.redirect_to_url is not None
    assert seti.next_action.redirect_to_url.return_url == "https://shop.example/back"
    failed = control(emulator, f"/_emulator/setup_intents/{seti.id}/authenticate", outcome="fail").data()
    assert failed["status"] == "requires_payment_method"
    assert failed["payment_method"] is None
    assert failed["last_setup_error"]["code"] == "setup_intent_authentication_failure"
    assert client.v1.customers.payment_methods.list(customer.id).data == []
    assert "setup_intent.setup_failed" in event_types(client)
    again = client.v1.setup_intents.confirm(seti.id, {"payment_method": "pm_card_visa"})
    assert again.status == "succeeded"


def test_a_card_that_fails_verification_answers_402(
    client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    seti = client.v1.setup_intents.create({"customer": customer.id})
    with pytest.raises(stripe.CardError) as declined:
        client.v1.setup_intents.confirm(
            seti.id, {"payment_method": "pm_card_chargeDeclinedInsufficientFunds"}
        )
    error = declined.value.error
    assert error is not None
    assert (error.code, error.decline_code) == ("card_declined", "insufficient_funds")
    assert error.setup_intent is not None
    assert error.setup_intent.id == seti.id
    assert error.setup_intent.status == "requires_payment_method"
    after = client.v1.setup_intents.retrieve(seti.id)
    assert after.last_setup_error is not None
    assert after.last_setup_error.decline_code == "insufficient_funds"
    assert client.v1.customers.payment_methods.list(customer.id).data == []
    # 0341 passes the $0 verification (only charging it fails).
    ok = client.v1.setup_intents.confirm(seti.id, {"payment_method": "pm_card_chargeCustomerFail"})
    assert ok.status == "succeeded"


def test_cancel_list_and_refusals(client: stripe.StripeClient, customer: stripe.Customer) -> None:
    first = client.v1.setup_intents.create({"customer": customer.id})
    second = client.v1.setup_intents.create({})
    canceled = client.v1.setup_intents.cancel(first.id, {"cancellation_reason": "abandoned"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    assert "setup_intent.canceled" in event_types(client)
    with pytest.raises(stripe.InvalidRequestError) as twice:
        client.v1.setup_intents.cancel(first.id)
    assert twice.value.code == "setup_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as confirm_canceled:
        client.v1.setup_intents.confirm(first.id, {"payment_method": "pm_card_visa"})
    assert confirm_canceled.value.code == "setup_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as no_pm:
        client.v1.setup_intents.confirm(second.id)
    assert no_pm.value.code == "setup_intent_unexpected_state"

    assert [s.id for s in client.v1.setup_intents.list().data] == [second.id, first.id]
    assert [s.id for s in client.v1.setup_intents.list({"customer": customer.id}).data] == [first.id]
    assert client.v1.setup_intents.list({"limit": 1}).has_more is True
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.setup_intents.retrieve("seti_missing")
    assert missing.value.code == "resource_missing"


def test_payment_methods_of_another_customer_and_return_url_need_confirm(
    client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    other = client.v1.customers.create({})
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": other.id})
    with pytest.raises(stripe.InvalidRequestError) as foreign:
        client.v1.setup_intents.create({"customer": customer.id, "payment_method": pm.id})
    assert foreign.value.param == "payment_method"
    with pytest.raises(stripe.InvalidRequestError) as return_url:
        client.v1.setup_intents.create({"return_url": "https://shop.example/back"})
    assert return_url.value.param == "return_url"
    assert client.v1.setup_intents.list().data == []


def test_payment_method_types_is_refused_and_allowed_types_take_its_place(
    client: stripe.StripeClient,
) -> None:
    # Removed as a writable param at 2026-09-30.endive: 400 payment_method_types_no_longer_supported.
    for call in (
        lambda: client.v1.setup_intents.create({"payment_method_types": ["card"]}),  # type: ignore[typeddict-unknown-key]
        lambda: client.v1.setup_intents.update(
            client.v1.setup_intents.create().id,
            {"payment_method_types": ["card"]},  # type: ignore[typeddict-unknown-key]
        ),
    ):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            call()
        assert refused.value.http_status == 400
        assert refused.value.code == "payment_method_types_no_longer_supported"
    seti = client.v1.setup_intents.create({"allowed_payment_method_types": ["card", "sepa_debit"]})
    assert seti.allowed_payment_method_types == ["card", "sepa_debit"]
    assert seti.payment_method_types == ["card"]
    assert seti.automatic_payment_methods is None
    with pytest.raises(stripe.InvalidRequestError) as both:
        client.v1.setup_intents.create(
            {"allowed_payment_method_types": ["card"], "automatic_payment_methods": {"enabled": True}}
        )
    assert both.value.param == "allowed_payment_method_types"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.setup_intents.create({"usage": "sometimes"})  # type: ignore[typeddict-item]
    assert unknown.value.param == "usage"


def test_after_success_only_metadata_and_description_change(client: stripe.StripeClient) -> None:
    seti = client.v1.setup_intents.create({"payment_method": "pm_card_visa", "confirm": True})
    updated = client.v1.setup_intents.update(seti.id, {"metadata": {"k": "v"}, "description": "saved"})
    assert (as_dict(updated.metadata), updated.description) == ({"k": "v"}, "saved")
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.setup_intents.update(seti.id, {"payment_method": "pm_card_mastercard"})
    assert (refused.value.code, refused.value.param) == ("setup_intent_unexpected_state", "payment_method")
    assert client.v1.setup_intents.retrieve(seti.id).payment_method == seti.payment_method


def test_allowed_payment_method_types_on_update(
    client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as none_compatible:
        client.v1.setup_intents.create({"customer": customer.id, "allowed_payment_method_types": ["ideal"]})
    assert (none_compatible.value.code, none_compatible.value.param) == (
        "parameter_invalid_string",
        "allowed_payment_method_types",
    )
    assert client.v1.setup_intents.list().data == []
    seti = client.v1.setup_intents.create({"customer": customer.id})
    assert seti.allowed_payment_method_types is None
    assert seti.automatic_payment_methods is not None
    updated = client.v1.setup_intents.update(
        seti.id, {"allowed_payment_method_types": ["bacs_debit", "card"]}
    )
    assert updated.allowed_payment_method_types == ["bacs_debit", "card"]
    assert (updated.automatic_payment_methods, updated.payment_method_types) == (None, ["card"])
    assert client.v1.setup_intents.retrieve(seti.id).allowed_payment_method_types == ["bacs_debit", "card"]
    # The update param is typed ''|List: an empty value unsets the list and dynamic payment methods return.
    cleared = client.v1.setup_intents.update(seti.id, {"allowed_payment_method_types": ""})
    assert cleared.allowed_payment_method_types is None
    assert cleared.automatic_payment_methods is not None
    assert as_dict(cleared.automatic_payment_methods) == {"allow_redirects": "always", "enabled": True}
    with pytest.raises(stripe.InvalidRequestError) as no_card:
        client.v1.setup_intents.update(seti.id, {"allowed_payment_method_types": ["sepa_debit"]})
    assert (no_card.value.http_status, no_card.value.param) == (400, "allowed_payment_method_types")
    assert client.v1.setup_intents.retrieve(seti.id).allowed_payment_method_types is None

    done = client.v1.setup_intents.create({"payment_method": "pm_card_visa", "confirm": True})
    with pytest.raises(stripe.InvalidRequestError) as closed:
        client.v1.setup_intents.update(done.id, {"allowed_payment_method_types": ["card"]})
    assert (closed.value.code, closed.value.param) == (
        "setup_intent_unexpected_state",
        "allowed_payment_method_types",
    )
    assert client.v1.setup_intents.retrieve(done.id).allowed_payment_method_types is None
    assert len(client.v1.setup_intents.list().data) == 2


def test_allowed_payment_method_types_on_confirm(
    client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    seti = client.v1.setup_intents.create({"customer": customer.id})
    for params, code in (
        (
            {"payment_method": "pm_card_visa", "allowed_payment_method_types": ["sepa_debit"]},
            "parameter_invalid_string",
        ),
        (
            {"payment_method": "pm_card_visa", "payment_method_types": ["card"]},
            "payment_method_types_no_longer_supported",
        ),
    ):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.setup_intents.confirm(seti.id, params)  # type: ignore[arg-type]
        assert refused.value.http_status == 400
        assert refused.value.code == code
    unchanged = client.v1.setup_intents.retrieve(seti.id)
    assert (unchanged.status, unchanged.payment_method, unchanged.allowed_payment_method_types) == (
        "requires_payment_method",
        None,
        None,
    )
    assert client.v1.customers.payment_methods.list(customer.id).data == []

    confirmed = client.v1.setup_intents.confirm(
        seti.id, {"payment_method": "pm_card_visa", "allowed_payment_method_types": ["card", "link"]}
    )
    assert confirmed.status == "succeeded"
    assert (confirmed.allowed_payment_method_types, confirmed.payment_method_types) == (
        ["card", "link"],
        ["card"],
    )
    assert confirmed.automatic_payment_methods is None
    pm = client.v1.payment_methods.retrieve(str(confirmed.payment_method))
    assert pm.customer == customer.id
    assert len(client.v1.setup_intents.list().data) == 1
