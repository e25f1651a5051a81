"""One-time purchases through Stripe's own events: a paid checkout grants the product's features and credits
(value × quantity), a full refund or a lost dispute takes them back, a partial refund and an open dispute do not.
Catalog and default-product changes reach cached answers at once."""

from datetime import timedelta

import pytest
import stripe
import time_machine
from django.utils import timezone

from billing.models import Payment
from entitlements.models import CreditLedgerEntry, CreditLot, Purchase
from events.models import Event

OK = "https://app.example.com/ok"
CANCEL = "https://app.example.com/cancel"


@pytest.fixture
def shop(api, tenant_a, catalog):
    """The catalog's credit pack (`credits-1000`, $15) gives 1,000 `ai_credits` and the `priority` flag."""
    for key, kind in (("ai_credits", "credits"), ("priority", "boolean")):
        assert (
            api.post(
                "/api/v1/features", {"key": key, "name": key, "type": kind}, key=tenant_a.key
            ).status_code
            == 201
        )
    answer = api.patch(
        "/api/v1/products/credits", {"features": {"ai_credits": 1000, "priority": True}}, key=tenant_a.key
    )
    assert answer.status_code == 200, answer.json()
    return catalog


def _pay(api, tenant_a, stripe_sdk, stripe_webhooks, *, quantity=1, card="pm_card_visa"):
    created = api.post(
        "/api/v1/payments",
        {"customer": "user-1", "items": [{"price": "credits-1000", "quantity": quantity}], "flow": "intent"},
        key=tenant_a.key,
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    try:
        stripe_sdk().v1.payment_intents.confirm(body["stripe_payment_intent_id"], {"payment_method": card})
    except stripe.CardError:
        assert card == "pm_card_chargeDeclined"
    stripe_webhooks.deliver()
    return Payment.objects.get(pk=body["id"])


def _credits(api, tenant_a):
    return api.get("/api/v1/credits?customer=user-1&feature=ai_credits", key=tenant_a.key).json()


def _priority(api, tenant_a):
    return api.get("/api/v1/entitlements/check?customer=user-1&feature=priority", key=tenant_a.key).json()


def _resolve_dispute(stripe_sdk, stripe_emulator, outcome):
    dispute_id = stripe_sdk().v1.disputes.list().data[0].id
    stripe_emulator.handle(
        "POST",
        f"/_emulator/disputes/{dispute_id}/resolve",
        query="",
        body=f"outcome={outcome}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def test_paid_purchase_grants_value_times_quantity_and_a_full_refund_takes_back_what_is_left(
    api, tenant_a, shop, stripe_sdk, stripe_webhooks
):
    assert _priority(api, tenant_a)["allowed"] is False  # warms the cache before anything is bought
    payment = _pay(api, tenant_a, stripe_sdk, stripe_webhooks, quantity=2)
    assert payment.status == "succeeded"
    assert Purchase.objects.filter(payment_id=payment.pk).count() == 1
    assert _credits(api, tenant_a)["balance"] == 2000
    assert _priority(api, tenant_a)["allowed"] is True
    spent = api.post(
        "/api/v1/entitlements/consume",
        {"id": "job-1", "customer": "user-1", "feature": "ai_credits", "quantity": 500},
        key=tenant_a.key,
    ).json()
    assert (spent["allowed"], spent["balance"]) == (True, 1500)
    updated = Event.objects.filter(project=tenant_a.project, type="entitlements.updated").count()

    refund = api.post(
        f"/api/v1/payments/{payment.pk}/refund", {"reason": "requested_by_customer"}, key=tenant_a.key
    )
    assert refund.status_code == 200, refund.json()
    stripe_webhooks.deliver()
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("refunded", 3000)
    purchase = Purchase.objects.get(payment_id=payment.pk)
    assert (purchase.revoked_at is not None, purchase.revoke_reason) == (True, "refunded in full")
    assert _credits(api, tenant_a)["balance"] == 0
    assert _priority(api, tenant_a)["allowed"] is False
    taken_back = CreditLedgerEntry.objects.get(type="revoke")
    assert (taken_back.amount, taken_back.reference) == (-1500, payment.pk)
    assert Event.objects.filter(project=tenant_a.project, type="entitlements.updated").count() == updated + 1
    stripe_webhooks.deliver()  # nothing more to deliver; a replayed refund changes nothing
    assert CreditLedgerEntry.objects.filter(type="revoke").count() == 1


def test_partial_refund_changes_nothing(api, tenant_a, shop, stripe_sdk, stripe_webhooks):
    payment = _pay(api, tenant_a, stripe_sdk, stripe_webhooks)
    answer = api.post(f"/api/v1/payments/{payment.pk}/refund", {"amount": 500}, key=tenant_a.key)
    assert answer.status_code == 200, answer.json()
    stripe_webhooks.deliver()
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", 500)
    assert Purchase.objects.get(payment_id=payment.pk).revoked_at is None
    assert _credits(api, tenant_a)["balance"] == 1000
    assert _priority(api, tenant_a)["allowed"] is True


def test_open_dispute_keeps_access_flagged_and_a_lost_one_ends_it(
    api, tenant_a, shop, stripe_sdk, stripe_emulator, stripe_webhooks
):
    payment = _pay(api, tenant_a, stripe_sdk, stripe_webhooks, card="pm_card_createDispute")
    assert (payment.status, payment.dispute_status) == ("disputed", "needs_response")
    assert _priority(api, tenant_a)["allowed"] is True
    listed = api.get("/api/v1/entitlements?customer=user-1", key=tenant_a.key).json()
    priority = next(e for e in listed["entitlements"] if e["feature"] == "priority")
    assert [(s["type"], s.get("disputed")) for s in priority["sources"]] == [("purchase", True)]

    _resolve_dispute(stripe_sdk, stripe_emulator, "lost")
    stripe_webhooks.deliver()
    payment.refresh_from_db()
    assert (payment.status, payment.dispute_status) == ("disputed", "lost")
    assert Purchase.objects.get(payment_id=payment.pk).revoke_reason == "lost dispute"
    assert _priority(api, tenant_a)["allowed"] is False
    assert _credits(api, tenant_a)["balance"] == 0
    assert CreditLot.objects.get(purchase__payment_id=payment.pk).voided_at is not None


def test_won_dispute_keeps_everything(api, tenant_a, shop, stripe_sdk, stripe_emulator, stripe_webhooks):
    payment = _pay(api, tenant_a, stripe_sdk, stripe_webhooks, card="pm_card_createDispute")
    _resolve_dispute(stripe_sdk, stripe_emulator, "won")
    stripe_webhooks.deliver()
    payment.refresh_from_db()
    assert (payment.status, payment.dispute_status) == ("succeeded", "won")
    assert Purchase.objects.get(payment_id=payment.pk).revoked_at is None
    assert _credits(api, tenant_a)["balance"] == 1000


def test_a_declined_payment_grants_nothing(api, tenant_a, shop, stripe_sdk, stripe_webhooks):
    payment = _pay(api, tenant_a, stripe_sdk, stripe_webhooks, card="pm_card_chargeDeclined")
    assert payment.status == "requires_payment_method"
    assert not Purchase.objects.exists()
    assert _credits(api, tenant_a)["balance"] == 0


def test_catalog_and_default_product_changes_reach_cached_answers(api, tenant_a, platform_key, shop):
    assert _priority(api, tenant_a)["allowed"] is False  # cached: no default product yet
    answer = api.patch(
        f"/api/v1/projects/{tenant_a.project.pk}", {"default_product": "pro"}, key=platform_key
    )
    assert answer.status_code == 200, answer.json()
    assert _priority(api, tenant_a)["allowed"] is False  # "pro" gives no priority yet
    assert (
        api.patch("/api/v1/products/pro", {"features": {"priority": True}}, key=tenant_a.key).status_code
        == 200
    )
    assert _priority(api, tenant_a)["allowed"] is True
    created = api.post(
        "/api/v1/features", {"key": "beta", "name": "Beta", "type": "boolean"}, key=tenant_a.key
    )
    assert created.status_code == 201
    listed = api.get("/api/v1/entitlements?customer=user-1", key=tenant_a.key).json()
    assert [e["feature"] for e in listed["entitlements"]] == ["ai_credits", "beta", "priority"]


def test_a_purchase_of_a_product_sold_for_thirty_days_ends_on_time(
    api, tenant_a, shop, stripe_sdk, stripe_webhooks
):
    assert api.patch("/api/v1/products/credits", {"access_days": 30}, key=tenant_a.key).status_code == 200
    payment = _pay(api, tenant_a, stripe_sdk, stripe_webhooks)
    purchase = Purchase.objects.get(payment_id=payment.pk)
    assert purchase.ends_at == payment.succeeded_at + timedelta(days=30)
    assert (_priority(api, tenant_a)["allowed"], _credits(api, tenant_a)["balance"]) == (True, 1000)
    with time_machine.travel(timezone.now() + timedelta(days=29)):
        assert _priority(api, tenant_a)["allowed"] is True
    with time_machine.travel(purchase.ends_at + timedelta(seconds=1)):  # no write: the snapshot's valid_until
        assert (_priority(api, tenant_a)["allowed"], _credits(api, tenant_a)["balance"]) == (False, 0)
