"""The universal /payments endpoint: both flows, references, declines, 3-D Secure, refunds, cancel, expiry,
and Stripe being unavailable — all against the emulator through the official SDK."""

from datetime import timedelta

import pytest
import stripe
import time_machine
from django.utils import timezone

from billing.models import CheckoutSession, Payment, Refund
from billing.tasks import payments_expire_due
from projects.models import Project
from stripe_gateway import client

OK = "https://app.example.com/ok"
CANCEL = "https://app.example.com/cancel"


def _pay(api, tenant, **body):
    return api.post("/api/v1/payments", {"customer": "user-1", **body}, key=tenant.key)


def _intent(api, tenant, **body):
    response = _pay(api, tenant, flow="intent", **body)
    assert response.status_code == 201, response.content
    return response.json()


def _complete_checkout(stripe_emulator, stripe_session_id, card="4242424242424242"):
    return stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{stripe_session_id}/complete",
        query="",
        body=f"card={card}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def test_intent_flow_returns_a_client_secret_and_publishable_key(api, tenant_a, catalog, stripe_sdk):
    body = _intent(api, tenant_a, price="credits-1000", quantity=2)
    assert body["object"] == "payment"
    assert body["type"] == "one_time"
    assert body["flow"] == "intent"
    assert body["source"] == "intent"
    assert body["status"] == "pending"
    assert body["amount"] == 3000
    assert body["currency"] == "usd"
    assert body["client_secret"].startswith(body["stripe_payment_intent_id"] + "_secret_")
    assert body["publishable_key"] == "pk_test_tollgate_platform"
    assert "checkout_url" not in body
    intent = stripe_sdk().v1.payment_intents.retrieve(body["stripe_payment_intent_id"])
    assert intent.amount == 3000
    assert intent.metadata["tollgate_payment"] == body["id"]


def test_type_is_inferred(api, tenant_a, catalog):
    assert (
        _pay(api, tenant_a, price="pro-monthly", success_url=OK, cancel_url=CANCEL).json()["type"]
        == "subscription"
    )
    assert (
        _pay(
            api,
            tenant_a,
            customer="u2",
            items=[{"price": "sticker"}, {"price": "credits-1000"}],
            flow="intent",
        ).json()["type"]
        == "cart"
    )
    custom = _pay(
        api, tenant_a, customer="u3", amount=999, currency="usd", description="Consulting", flow="intent"
    ).json()
    assert (custom["type"], custom["amount"], custom["description"]) == ("one_time", 999, "Consulting")


def test_checkout_flow_returns_a_checkout_url(api, tenant_a, catalog, stripe_sdk):
    response = _pay(api, tenant_a, price="credits-1000", flow="checkout", success_url=OK, cancel_url=CANCEL)
    assert response.status_code == 201
    body = response.json()
    assert body["checkout_url"].startswith("http")
    assert "client_secret" not in body
    assert stripe_sdk().v1.checkout.sessions.retrieve(body["stripe_checkout_session_id"]).amount_total == 1500


def test_successful_confirmation_is_reported(api, tenant_a, catalog, stripe_sdk):
    body = _intent(api, tenant_a, price="credits-1000")
    stripe_sdk().v1.payment_intents.confirm(
        body["stripe_payment_intent_id"], {"payment_method": "pm_card_visa"}
    )
    payment = api.get(f"/api/v1/payments/{body['id']}", key=tenant_a.key).json()
    assert payment["status"] == "succeeded"
    assert payment["succeeded_at"] is not None


def test_decline_is_retryable_requires_payment_method(api, tenant_a, catalog, stripe_sdk):
    body = _intent(api, tenant_a, price="credits-1000")
    with pytest.raises(stripe.CardError):
        stripe_sdk().v1.payment_intents.confirm(
            body["stripe_payment_intent_id"], {"payment_method": "pm_card_chargeDeclinedInsufficientFunds"}
        )
    payment = api.get(f"/api/v1/payments/{body['id']}", key=tenant_a.key).json()
    assert payment["status"] == "requires_payment_method"
    assert payment["decline_code"] == "insufficient_funds"
    # The customer retries with another card: the same payment succeeds.
    stripe_sdk().v1.payment_intents.confirm(
        body["stripe_payment_intent_id"], {"payment_method": "pm_card_visa"}
    )
    Payment.objects.filter(pk=body["id"]).update()  # no local write needed: the next read refreshes
    from django.core.cache import cache

    cache.clear()
    assert api.get(f"/api/v1/payments/{body['id']}", key=tenant_a.key).json()["status"] == "succeeded"


def test_three_d_secure_requires_action(api, tenant_a, catalog, stripe_sdk):
    body = _intent(api, tenant_a, price="credits-1000")
    stripe_sdk().v1.payment_intents.confirm(
        body["stripe_payment_intent_id"], {"payment_method": "pm_card_authenticationRequired"}
    )
    assert api.get(f"/api/v1/payments/{body['id']}", key=tenant_a.key).json()["status"] == "requires_action"


def test_reference_returns_the_same_payment_and_no_second_stripe_object(api, tenant_a, catalog, stripe_sdk):
    first = _pay(api, tenant_a, price="credits-1000", flow="intent", reference="order-42")
    second = _pay(api, tenant_a, price="credits-1000", flow="intent", reference="order-42")
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert len(stripe_sdk().v1.payment_intents.list().data) == 1
    found = api.get("/api/v1/payments", key=tenant_a.key, json_body={"reference": "order-42"}).json()
    assert [p["id"] for p in found["data"]] == [first.json()["id"]]


def test_reference_with_another_body_is_409(api, tenant_a, catalog, stripe_sdk):
    _pay(api, tenant_a, price="credits-1000", flow="intent", reference="order-42")
    response = _pay(api, tenant_a, price="sticker", flow="intent", reference="order-42")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "reference_conflict"
    assert Payment.objects.count() == 1
    assert len(stripe_sdk().v1.payment_intents.list().data) == 1


def test_idempotency_key_never_creates_a_second_stripe_object(api, tenant_a, catalog, stripe_sdk):
    headers = {"Idempotency-Key": "pay-once"}
    first = api.post(
        "/api/v1/payments",
        {"customer": "u", "price": "sticker", "flow": "intent"},
        key=tenant_a.key,
        headers=headers,
    )
    second = api.post(
        "/api/v1/payments",
        {"customer": "u", "price": "sticker", "flow": "intent"},
        key=tenant_a.key,
        headers=headers,
    )
    assert second.content == first.content
    assert Payment.objects.count() == 1
    assert len(stripe_sdk().v1.payment_intents.list().data) == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"price": "sticker", "amount": 100, "currency": "usd"}, "price"),
        ({"amount": 100}, "currency"),
        ({"amount": 0, "currency": "usd"}, "amount"),
        ({"amount": 1.5, "currency": "usd"}, "amount"),
        ({"price": "sticker", "flow": "checkout"}, "success_url"),
        ({"price": "sticker", "flow": "wire"}, "flow"),
        ({"price": "sticker", "type": "subscription"}, "type"),
        ({"items": [{"price": "sticker"}, {"price": "credits-gbp"}]}, "items"),
    ],
)
def test_bad_payment_requests_are_400_and_write_nothing(api, tenant_a, catalog, stripe_sdk, body, param):
    response = _pay(api, tenant_a, **body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert Payment.objects.count() == 0
    assert len(stripe_sdk().v1.payment_intents.list().data) == 0


def _paid(api, tenant, stripe_sdk, **body):
    created = _intent(api, tenant, price="credits-1000", quantity=2, **body)
    stripe_sdk().v1.payment_intents.confirm(
        created["stripe_payment_intent_id"], {"payment_method": "pm_card_visa"}
    )
    assert api.get(f"/api/v1/payments/{created['id']}", key=tenant.key).json()["status"] == "succeeded"
    return created


def test_partial_then_full_refund(api, tenant_a, catalog, stripe_sdk):
    paid = _paid(api, tenant_a, stripe_sdk)
    partial = api.post(
        f"/api/v1/payments/{paid['id']}/refund",
        {"amount": 1000, "reason": "one pack unused"},
        key=tenant_a.key,
    )
    assert partial.status_code == 200
    assert (partial.json()["status"], partial.json()["amount_refunded"]) == ("partially_refunded", 1000)
    too_much = api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 2001}, key=tenant_a.key)
    assert too_much.status_code == 400
    assert too_much.json()["error"]["param"] == "amount"
    rest = api.post(f"/api/v1/payments/{paid['id']}/refund", {}, key=tenant_a.key)
    assert (rest.json()["status"], rest.json()["amount_refunded"]) == ("refunded", 3000)
    charge = stripe_sdk().v1.charges.list({"payment_intent": paid["stripe_payment_intent_id"]}).data[0]
    assert charge.amount_refunded == 3000
    assert sorted(Refund.objects.values_list("amount", flat=True)) == [1000, 2000]


def test_refund_of_an_unpaid_payment_is_409(api, tenant_a, catalog, stripe_sdk):
    created = _intent(api, tenant_a, price="sticker")
    response = api.post(f"/api/v1/payments/{created['id']}/refund", {}, key=tenant_a.key)
    assert response.status_code == 409
    assert Refund.objects.count() == 0
    assert len(stripe_sdk().v1.refunds.list().data) == 0


def test_cancel_an_open_intent(api, tenant_a, catalog, stripe_sdk):
    created = _intent(api, tenant_a, price="sticker")
    response = api.post(f"/api/v1/payments/{created['id']}/cancel", key=tenant_a.key)
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert stripe_sdk().v1.payment_intents.retrieve(created["stripe_payment_intent_id"]).status == "canceled"
    assert api.post(f"/api/v1/payments/{created['id']}/cancel", key=tenant_a.key).status_code == 409


def test_pending_checkout_expires_after_the_ttl(api, tenant_a, catalog, stripe_sdk):
    Project.objects.filter(pk=tenant_a.project.pk).update(payment_ttl_seconds=600)
    created = _pay(api, tenant_a, price="sticker", flow="checkout", success_url=OK, cancel_url=CANCEL).json()
    with time_machine.travel(timezone.now() + timedelta(seconds=599)):
        assert payments_expire_due.delay().get() == 0
    with time_machine.travel(timezone.now() + timedelta(seconds=601)):
        assert payments_expire_due.delay().get() == 1
    payment = Payment.objects.get(pk=created["id"])
    assert payment.status == "expired"
    assert CheckoutSession.objects.get(payment=payment).status == "expired"
    assert (
        stripe_sdk().v1.checkout.sessions.retrieve(created["stripe_checkout_session_id"]).status == "expired"
    )


def test_payment_that_succeeds_when_it_is_expired_is_succeeded_and_refunded_on_request(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk
):
    Project.objects.filter(pk=tenant_a.project.pk).update(payment_ttl_seconds=600, refund_late_payments=True)
    created = _pay(api, tenant_a, price="sticker", flow="checkout", success_url=OK, cancel_url=CANCEL).json()
    _complete_checkout(stripe_emulator, created["stripe_checkout_session_id"])
    with time_machine.travel(timezone.now() + timedelta(seconds=601)):
        payments_expire_due.delay().get()
    payment = Payment.objects.get(pk=created["id"])
    assert payment.status == "refunded"
    assert payment.amount_refunded == 200
    assert payment.succeeded_at is not None


def test_stripe_unavailable_is_503_and_nothing_claims_success(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk
):
    class Unreachable(stripe.HTTPClient):
        """A network that drops every connection: the process boundary we do not own."""

        name = "unreachable"

        def request(self, method, url, headers, post_data=None, **kwargs):
            raise stripe.APIConnectionError("connection refused")

        def request_with_retries(
            self, method, url, headers, post_data=None, max_network_retries=None, **kwargs
        ):
            raise stripe.APIConnectionError("connection refused")

        def close(self):
            pass

    client.install_http_client(Unreachable())
    response = _pay(api, tenant_a, price="sticker", flow="intent", reference="order-9")
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "payment_provider_error"
    payment = Payment.objects.get(reference="order-9")
    assert payment.status == "pending"
    assert payment.stripe_payment_intent_id == ""
    assert payment.succeeded_at is None

    # Stripe is back: the same reference resumes the payment with one Stripe object, not a second payment.
    from stripe_emulator.sdk import EmulatorHTTPClient

    client.install_http_client(EmulatorHTTPClient(stripe_emulator))
    retry = _pay(api, tenant_a, price="sticker", flow="intent", reference="order-9")
    assert retry.status_code == 200
    assert retry.json()["id"] == payment.pk
    assert retry.json()["stripe_payment_intent_id"].startswith("pi_")
    assert len(stripe_sdk().v1.payment_intents.list().data) == 1


def test_retry_with_the_same_idempotency_key_after_a_stripe_failure_resumes_the_payment(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk
):
    """The 503 is not replayed (the key stays free), but the payment it left behind is resumed, not duplicated."""
    from stripe_emulator.sdk import EmulatorHTTPClient

    class Unreachable(stripe.HTTPClient):
        """A network that drops every connection: the process boundary we do not own."""

        name = "unreachable"

        def request(self, method, url, headers, post_data=None, **kwargs):
            raise stripe.APIConnectionError("connection refused")

        def request_with_retries(
            self, method, url, headers, post_data=None, max_network_retries=None, **kwargs
        ):
            raise stripe.APIConnectionError("connection refused")

        def close(self):
            pass

    headers = {"Idempotency-Key": "pay-once-please"}
    body = {"customer": "user-1", "price": "sticker", "flow": "intent"}
    client.install_http_client(Unreachable())
    assert api.post("/api/v1/payments", body, key=tenant_a.key, headers=headers).status_code == 503
    client.install_http_client(EmulatorHTTPClient(stripe_emulator))
    retry = api.post("/api/v1/payments", body, key=tenant_a.key, headers=headers)
    assert retry.status_code == 200
    assert Payment.objects.count() == 1
    assert retry.json()["stripe_payment_intent_id"].startswith("pi_")
    assert len(stripe_sdk().v1.payment_intents.list().data) == 1
    # The same key with another body is refused, and creates nothing.
    other = api.post("/api/v1/payments", {**body, "price": "credits-1000"}, key=tenant_a.key, headers=headers)
    assert other.status_code == 409
    assert Payment.objects.count() == 1


def test_status_is_the_light_read_for_pollers(api, tenant_a, catalog, stripe_sdk, stripe_emulator):
    paid = _paid(api, tenant_a, stripe_sdk)
    assert (
        api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 1000}, key=tenant_a.key).status_code
        == 200
    )
    events_before = len(stripe_sdk().v1.events.list({"limit": 100}).data)

    response = api.get(f"/api/v1/payments/{paid['id']}/status", key=tenant_a.key)

    assert response.status_code == 200
    assert response.json() == {"id": paid["id"], "status": "partially_refunded", "amount_refunded": 1000}
    # Read from Tollgate's own record: nothing asked of, or changed at, Stripe.
    assert len(stripe_sdk().v1.events.list({"limit": 100}).data) == events_before


def test_status_of_another_projects_or_an_unknown_payment_is_404(
    api, tenant_a, tenant_b, catalog, stripe_sdk
):
    created = _intent(api, tenant_a, price="sticker")
    other = api.get(f"/api/v1/payments/{created['id']}/status", key=tenant_b.key)
    unknown = api.get("/api/v1/payments/pay_doesnotexist/status", key=tenant_a.key)
    assert (other.status_code, other.json()["error"]["code"]) == (404, "resource_missing")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "resource_missing")
    assert api.get(f"/api/v1/payments/{created['id']}/status", key=tenant_a.key).json() == {
        "id": created["id"],
        "status": "pending",
        "amount_refunded": 0,
    }


@pytest.mark.parametrize("bad_id", ["pay_%00", "pay%00x"])
def test_status_with_a_nul_in_the_id_is_400(api, tenant_a, bad_id):
    response = api.get(f"/api/v1/payments/{bad_id}/status", key=tenant_a.key)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_characters")
