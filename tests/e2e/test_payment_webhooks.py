"""Whole flows: a tenant creates a payment, the customer pays at the emulator, Stripe's webhooks reach
Tollgate's intake, the payment settles, and the tenant's endpoint receives the signed events."""

import json

import pytest
from tollgate_client.webhooks import construct_event

from billing.models import CheckoutSession, Payment
from events.models import Event
from tests.events.receiver import Receiver
from webhooks.models import StripeEvent

OK = "https://app.example.com/ok"
CANCEL = "https://app.example.com/cancel"


@pytest.fixture
def tenant_receiver(api, tenant_a):
    receiver = Receiver().start()
    created = api.post(
        "/api/v1/webhook_endpoints", {"url": receiver.url, "events": ["*"]}, key=tenant_a.key
    ).json()
    receiver.secret = created["secret"]
    yield receiver
    receiver.stop()


def _complete(stripe_emulator, session_id, card="4242424242424242"):
    return stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{session_id}/complete",
        query="",
        body=f"card={card}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def test_paid_checkout_settles_by_webhook_and_notifies_the_tenant(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, tenant_receiver
):
    created = api.post(
        "/api/v1/payments",
        {
            "customer": "user-1",
            "price": "credits-1000",
            "flow": "checkout",
            "reference": "order-1",
            "success_url": OK,
            "cancel_url": CANCEL,
        },
        key=tenant_a.key,
    ).json()
    _complete(stripe_emulator, created["stripe_checkout_session_id"])
    stripe_webhooks.deliver()

    payment = Payment.objects.get(pk=created["id"])  # read the row: the webhook, not a refresh, settled it
    assert payment.status == "succeeded"
    assert payment.stripe_payment_intent_id.startswith("pi_")
    assert CheckoutSession.objects.get(payment=payment).status == "complete"
    assert StripeEvent.objects.filter(type="checkout.session.completed", status="processed").count() == 1
    assert all(response.status_code == 200 for response in stripe_webhooks.responses)

    types = [e.type for e in Event.objects.filter(project=tenant_a.project).order_by("sequence")]
    assert "payment.succeeded" in types
    assert "checkout.completed" in types
    delivered = [
        construct_event(r.body, r.headers["Tollgate-Signature"], tenant_receiver.secret)
        for r in tenant_receiver.received
    ]
    succeeded = [e for e in delivered if e.type == "payment.succeeded"]
    assert len(succeeded) == 1
    assert succeeded[0].object["id"] == payment.pk
    assert succeeded[0].object["reference"] == "order-1"
    assert succeeded[0].previous_attributes == {"status": "pending"}


def test_duplicate_and_reordered_deliveries_converge(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    stripe_emulator.webhooks.duplicates = True
    stripe_emulator.webhooks.shuffle = True
    created = api.post(
        "/api/v1/payments",
        {
            "customer": "user-1",
            "price": "credits-1000",
            "flow": "checkout",
            "success_url": OK,
            "cancel_url": CANCEL,
        },
        key=tenant_a.key,
    ).json()
    _complete(stripe_emulator, created["stripe_checkout_session_id"])
    stripe_webhooks.deliver()
    assert Payment.objects.get(pk=created["id"]).status == "succeeded"
    assert Event.objects.filter(project=tenant_a.project, type="payment.succeeded").count() == 1


def test_intent_flow_settles_by_webhook(api, tenant_a, catalog, stripe_sdk, stripe_webhooks):
    created = api.post(
        "/api/v1/payments", {"customer": "user-1", "price": "sticker", "flow": "intent"}, key=tenant_a.key
    ).json()
    stripe_sdk().v1.payment_intents.confirm(
        created["stripe_payment_intent_id"], {"payment_method": "pm_card_visa"}
    )
    stripe_webhooks.deliver()
    assert Payment.objects.get(pk=created["id"]).status == "succeeded"


def test_refund_made_at_stripe_reaches_the_payment(api, tenant_a, catalog, stripe_sdk, stripe_webhooks):
    created = api.post(
        "/api/v1/payments",
        {"customer": "user-1", "price": "credits-1000", "flow": "intent"},
        key=tenant_a.key,
    ).json()
    sdk = stripe_sdk()
    sdk.v1.payment_intents.confirm(created["stripe_payment_intent_id"], {"payment_method": "pm_card_visa"})
    stripe_webhooks.deliver()
    sdk.v1.refunds.create({"payment_intent": created["stripe_payment_intent_id"], "amount": 500})
    stripe_webhooks.deliver()
    payment = Payment.objects.get(pk=created["id"])
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", 500)
    refunded = Event.objects.get(project=tenant_a.project, type="payment.refunded")
    assert json.loads(json.dumps(refunded.data))["object"]["amount_refunded"] == 500


def test_dispute_flags_the_payment_and_records_the_outcome(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    created = api.post(
        "/api/v1/payments",
        {"customer": "user-1", "price": "credits-1000", "flow": "intent"},
        key=tenant_a.key,
    ).json()
    stripe_sdk().v1.payment_intents.confirm(
        created["stripe_payment_intent_id"], {"payment_method": "pm_card_createDispute"}
    )
    stripe_webhooks.deliver()
    payment = Payment.objects.get(pk=created["id"])
    assert (payment.status, payment.dispute_status) == ("disputed", "needs_response")
    dispute_id = stripe_sdk().v1.disputes.list().data[0].id
    stripe_emulator.handle(
        "POST",
        f"/_emulator/disputes/{dispute_id}/resolve",
        query="",
        body=b"outcome=lost",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    stripe_webhooks.deliver()
    payment.refresh_from_db()
    assert (payment.status, payment.dispute_status) == ("disputed", "lost")
    assert api.get(f"/api/v1/payments/{payment.pk}", key=tenant_a.key).json()["dispute_status"] == "lost"


def test_won_dispute_returns_the_payment_to_paid(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    created = api.post(
        "/api/v1/payments",
        {"customer": "user-1", "price": "credits-1000", "flow": "intent"},
        key=tenant_a.key,
    ).json()
    stripe_sdk().v1.payment_intents.confirm(
        created["stripe_payment_intent_id"], {"payment_method": "pm_card_createDispute"}
    )
    stripe_webhooks.deliver()
    dispute_id = stripe_sdk().v1.disputes.list().data[0].id
    stripe_emulator.handle(
        "POST",
        f"/_emulator/disputes/{dispute_id}/resolve",
        query="",
        body=b"outcome=won",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    stripe_webhooks.deliver()
    payment = Payment.objects.get(pk=created["id"])
    assert (payment.status, payment.dispute_status) == ("succeeded", "won")


def test_cart_checkout_paid_settles_by_webhook(api, tenant_a, catalog, stripe_emulator, stripe_webhooks):
    cart = api.post("/api/v1/carts", {"customer": "user-1"}, key=tenant_a.key).json()
    api.post(f"/api/v1/carts/{cart['id']}/items", {"price": "sticker", "quantity": 3}, key=tenant_a.key)
    created = api.post(
        "/api/v1/checkout/cart",
        {"customer": "user-1", "cart": cart["id"], "success_url": OK, "cancel_url": CANCEL},
        key=tenant_a.key,
    ).json()
    _complete(stripe_emulator, created["stripe_session_id"])
    stripe_webhooks.deliver()
    payment = Payment.objects.get(pk=created["payment"])
    assert (payment.type, payment.status, payment.amount) == ("cart", "succeeded", 600)


def test_customer_deleted_at_stripe_is_unlinked(api, tenant_a, catalog, stripe_sdk, stripe_webhooks):
    from customers.models import Customer

    api.post(
        "/api/v1/payments", {"customer": "user-1", "price": "sticker", "flow": "intent"}, key=tenant_a.key
    )
    customer = Customer.objects.get(external_id="user-1")
    stripe_sdk().v1.customers.delete(customer.stripe_customer_id)
    stripe_webhooks.deliver()
    assert Customer.objects.get(pk=customer.pk).stripe_customer_id == ""
    assert StripeEvent.objects.get(type="customer.deleted").status == "processed"
