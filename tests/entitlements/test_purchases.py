"""The hooks billing calls: one-time purchases (lifetime or for a duration), their credits, and what a full
refund or a lost dispute takes back. Payments are ORM rows, as the Stripe processors leave them."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from billing.models import Payment, Subscription
from catalog.models import Feature
from core.models import AuditLogEntry
from entitlements.models import CreditLot, EntitlementState, Purchase
from entitlements.services.purchases import purchase_revoke
from events.models import Event
from tests.entitlements.helpers import (
    check,
    customer,
    feature,
    hand,
    listed,
    paid_payment,
    product,
    subscribe,
)


@pytest.fixture
def shop(tenant_a):
    p = tenant_a.project
    sso = feature(p, "sso")
    credits = feature(p, "ai_credits", Feature.Type.CREDITS)
    exports = feature(p, "exports", Feature.Type.METERED)
    return {
        "lifetime": product(p, "lifetime", {sso: True}),
        "pass": product(p, "month-pass", {sso: True, exports: 50}, duration_days=30),
        "pack": product(p, "credit-pack", {credits: 1000}),
    }


def test_purchase_gives_lifetime_access_and_is_recorded_once(api, tenant_a, shop, committed):
    cust = customer(tenant_a.project, "u1")
    payment = paid_payment(cust, shop["lifetime"])
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is False
    committed(hand, payment=payment)
    committed(hand, payment=payment)  # checkout.session.completed and payment_intent.succeeded
    assert Purchase.objects.filter(payment_id=payment.pk).count() == 1
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is True
    source = listed(api, tenant_a.key, "u1")["sso"]["sources"][0]
    assert source["type"] == "purchase"
    assert source["product"] == "lifetime"
    assert "ends_at" not in source
    with time_machine.travel(timezone.now() + timedelta(days=3650)):
        assert check(api, tenant_a.key, "u1", "sso")["allowed"] is True


def test_purchase_for_a_duration_ends_on_time(api, tenant_a, shop, committed):
    cust = customer(tenant_a.project, "u1")
    committed(hand, payment=paid_payment(cust, shop["pass"]))
    answer = check(api, tenant_a.key, "u1", "exports")
    assert (answer["allowed"], answer["limit"]) == (True, 50)  # a metered allowance resets monthly
    with time_machine.travel(timezone.now() + timedelta(days=30, seconds=5)):
        assert check(api, tenant_a.key, "u1", "sso")["allowed"] is False


def test_pending_or_failed_payment_records_nothing(tenant_a, shop, committed):
    cust = customer(tenant_a.project, "u1")
    payment = paid_payment(cust, shop["lifetime"], status=Payment.Status.PENDING, succeeded_at=None)
    committed(hand, payment=payment)
    assert not Purchase.objects.exists()


def test_credit_pack_grants_value_times_quantity(api, tenant_a, shop, committed):
    cust = customer(tenant_a.project, "u1")
    committed(hand, payment=paid_payment(cust, shop["pack"], quantity=3))
    answer = check(api, tenant_a.key, "u1", "ai_credits", 3000)
    assert (answer["allowed"], answer["balance"]) == (True, 3000)
    credits = api.get(
        "/api/v1/credits", key=tenant_a.key, json_body={"customer": "u1", "feature": "ai_credits"}
    ).json()
    assert credits["balance"] == 3000
    assert [(e["type"], e["amount"]) for e in credits["ledger"]] == [("grant", 3000)]


def test_full_refund_ends_access_and_takes_back_unspent_credits(api, tenant_a, shop, committed):
    cust = customer(tenant_a.project, "u1")
    lifetime = paid_payment(cust, shop["lifetime"])
    pack = paid_payment(cust, shop["pack"])
    committed(hand, payment=lifetime)
    committed(hand, payment=pack)
    consumed = api.post(
        "/api/v1/entitlements/consume",
        {"id": "c1", "customer": "u1", "feature": "ai_credits", "quantity": 300},
        key=tenant_a.key,
    ).json()
    assert consumed["balance"] == 700
    Payment.objects.filter(pk__in=[lifetime.pk, pack.pk]).update(status=Payment.Status.REFUNDED)
    committed(hand, payment=lifetime)  # billing hands the refunded payments
    committed(hand, payment=pack)
    committed(hand, payment=pack)  # idempotent
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is False
    assert check(api, tenant_a.key, "u1", "ai_credits")["balance"] == 0
    lot = CreditLot.objects.get()
    assert (lot.remaining, lot.voided_at is not None) == (0, True)
    ledger = api.get(
        "/api/v1/credits", key=tenant_a.key, json_body={"customer": "u1", "feature": "ai_credits"}
    ).json()
    assert sorted(e["amount"] for e in ledger["ledger"]) == [-700, -300, 1000]
    assert AuditLogEntry.objects.filter(action="purchase.revoked").count() == 2
    committed(hand, payment=pack)  # a late success event does not bring it back
    assert check(api, tenant_a.key, "u1", "ai_credits")["balance"] == 0


def test_partial_refund_changes_nothing(api, tenant_a, shop, committed):
    cust = customer(tenant_a.project, "u1")
    payment = paid_payment(cust, shop["lifetime"])
    committed(hand, payment=payment)
    Payment.objects.filter(pk=payment.pk).update(
        status=Payment.Status.PARTIALLY_REFUNDED, amount_refunded=500
    )
    committed(hand, payment=payment)  # billing hands the payment on every status change
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is True


def test_open_dispute_keeps_access_flagged_and_a_lost_one_ends_it(api, tenant_a, shop, committed):
    cust = customer(tenant_a.project, "u1")
    payment = paid_payment(cust, shop["lifetime"])
    committed(hand, payment=payment)
    Payment.objects.filter(pk=payment.pk).update(
        status=Payment.Status.DISPUTED, dispute_status="needs_response"
    )
    committed(hand, payment=payment)
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is True
    assert listed(api, tenant_a.key, "u1")["sso"]["sources"][0]["disputed"] is True
    Payment.objects.filter(pk=payment.pk).update(dispute_status="lost")
    committed(hand, payment=payment)
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is False


def test_subscription_refund_does_not_cancel_the_subscription(api, tenant_a, shop, committed):
    cust = customer(tenant_a.project, "u1")
    subscription = subscribe(cust, shop["lifetime"])
    invoice_payment = paid_payment(
        cust, shop["lifetime"], type=Payment.Type.SUBSCRIPTION, source=Payment.Source.INVOICE, items=[]
    )
    committed(purchase_revoke, customer=cust, payment_id=invoice_payment.pk, reason="refunded")
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE
    assert check(api, tenant_a.key, "u1", "sso")["allowed"] is True


def test_recompute_announces_entitlements_updated_only_when_the_answer_changed(
    tenant_a, shop, committed, recompute
):
    cust = customer(tenant_a.project, "u1")
    recompute(cust)
    assert not Event.objects.filter(type="entitlements.updated").exists()  # nothing changed from the default
    committed(hand, payment=paid_payment(cust, shop["lifetime"]))
    events = list(Event.objects.filter(type="entitlements.updated"))
    assert len(events) == 1
    body = events[0].data["object"]
    assert body["customer"] == "u1"
    assert {row["feature"]: row["enabled"] for row in body["entitlements"]}["sso"] is True
    recompute(cust)
    assert Event.objects.filter(type="entitlements.updated").count() == 1
    assert EntitlementState.objects.filter(customer=cust).exists()


def test_a_credit_pack_purchase_is_announced(tenant_a, shop, committed):
    """A pack gives only credits (no limit or value moves), and is announced all the same, with the balance."""
    cust = customer(tenant_a.project, "u1")
    committed(hand, payment=paid_payment(cust, shop["pack"], quantity=2))
    event = Event.objects.get(type="entitlements.updated")
    rows = {row["feature"]: row for row in event.data["object"]["entitlements"]}
    assert (rows["ai_credits"]["balance"], [s["type"] for s in rows["ai_credits"]["sources"]]) == (
        2000,
        ["purchase"],
    )
