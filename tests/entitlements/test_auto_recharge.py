"""Auto-recharge of a credits balance (issue #31, point 4): a spend that leaves the balance at or below the mark
charges the customer's saved card off session, at Stripe (the emulator, through the SDK), and grants the credits
only once the payment succeeded, never twice — also when Stripe's answer is lost, when the process dies after
Stripe acted, when the card is declined, and under concurrent spenders. What Stripe did is counted at Stripe."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from billing.models import Payment
from billing.tasks import auto_recharges_resume
from catalog.models import Feature, ProductFeature
from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from entitlements.models import AutoRecharge, CreditLot
from events.models import Event
from tests.billing import test_lost_answers
from tests.catalog import price_create, product_create
from tests.entitlements.helpers import feature
from tests.entitlements.test_consume import _concurrently, _post, consume

wire = test_lost_answers.wire  # Stripe's answers lost, or the process killed after Stripe acted


@pytest.fixture
def credits(tenant_a, catalog, api):
    """`ai_credits`: the catalog's `credits-1000` pack (15.00) grants 1,000; user u1 starts with 150."""
    ai = feature(tenant_a.project, "ai_credits", Feature.Type.CREDITS)
    ProductFeature.objects.create(product=catalog.credits, feature=ai, value=1000)
    body = {"customer": "u1", "feature": "ai_credits", "value": 150, "reason": "welcome"}
    assert api.post("/api/v1/entitlements/grants", body, key=tenant_a.key).status_code == 201
    return ai


def save_card(sdk, project, external_id, token):
    """Attaches a test card to the customer at Stripe and makes it their default; its PaymentMethod id."""
    stripe_customer = customer_ensure_stripe(
        customer=Customer.objects.get(project=project, external_id=external_id)
    )
    card = sdk.v1.payment_methods.attach(token, {"customer": stripe_customer})
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": card.id}})
    return card.id


def configure(api, tenant, **extra):
    body = {"customer": "u1", "feature": "ai_credits", "below": 100, "price": "credits-1000", **extra}
    return api.post("/api/v1/entitlements/auto_recharges", body, key=tenant.key)


def intents_at_stripe(sdk, project, external_id="u1"):
    stripe_customer = Customer.objects.get(project=project, external_id=external_id).stripe_customer_id
    return list(sdk.v1.payment_intents.list({"customer": stripe_customer, "limit": 100}).data)


def balance(api, tenant, external_id="u1"):
    query = {"customer": external_id, "feature": "ai_credits"}
    return api.get("/api/v1/entitlements/check", key=tenant.key, json_body=query).json()["balance"]


def events(kind):
    return [e.data["object"] for e in Event.objects.filter(type=kind).order_by("sequence")]


def test_a_spend_to_the_mark_charges_the_saved_card_once_and_grants_once(
    api, tenant_a, credits, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    card = save_card(sdk, tenant_a.project, "u1", "pm_card_visa")
    made = configure(api, tenant_a)
    assert made.status_code == 201
    recharge = made.json()
    assert {k: v for k, v in recharge.items() if k not in ("id", "created_at")} == {
        "object": "auto_recharge",
        "customer": "u1",
        "feature": "ai_credits",
        "below": 100,
        "price": "credits-1000",
        "quantity": 1,
        "credits": 1000,
        "amount": 1500,
        "currency": "usd",
        "payment_method": None,
        "status": "armed",
        "attempts": 0,
        "last_payment": None,
        "last_error": None,
        "recharged_at": None,
        "deleted": False,
    }

    assert consume(api, tenant_a.key, "c1", "ai_credits", 40)["balance"] == 110
    assert not Payment.objects.exists()
    assert intents_at_stripe(sdk, tenant_a.project) == []

    assert consume(api, tenant_a.key, "c2", "ai_credits", 20)["balance"] == 90  # the answer before the grant
    payment = Payment.objects.get()
    assert (payment.flow, payment.status, payment.amount, payment.currency) == (
        "off_session",
        "succeeded",
        1500,
        "usd",
    )
    assert payment.payment_method == card
    intents = intents_at_stripe(sdk, tenant_a.project)
    assert [(i.id, i.status, i.amount, i.payment_method) for i in intents] == [
        (payment.stripe_payment_intent_id, "succeeded", 1500, card)
    ]
    assert balance(api, tenant_a) == 1090
    assert list(
        CreditLot.objects.filter(purchase__payment_id=payment.pk).values_list("amount", flat=True)
    ) == [1000]
    now = api.get(f"/api/v1/entitlements/auto_recharges/{recharge['id']}", key=tenant_a.key).json()
    assert (now["status"], now["attempts"], now["last_payment"], now["last_error"]) == (
        "armed",
        1,
        payment.pk,
        None,
    )
    assert now["recharged_at"] is not None
    announced = {
        "customer": "u1",
        "feature": "ai_credits",
        "auto_recharge": recharge["id"],
        "payment": payment.pk,
        "credits": 1000,
        "balance": 1090,
    }
    assert events("credits.recharged") == [announced]

    # Stripe's events about the same payment come later (twice): nothing more is granted or announced.
    stripe_webhooks.deliver()
    stripe_webhooks.deliver()
    assert consume(api, tenant_a.key, "c3", "ai_credits", 1)["balance"] == 1089
    assert CreditLot.objects.filter(purchase__isnull=False).count() == 1
    assert events("credits.recharged") == [announced]
    assert len(intents_at_stripe(sdk, tenant_a.project)) == 1


def test_a_declined_card_fails_once_grants_nothing_and_waits_to_be_re_armed(
    api, tenant_a, credits, stripe_sdk
):
    sdk = stripe_sdk()
    save_card(sdk, tenant_a.project, "u1", "pm_card_chargeCustomerFail")
    recharge = configure(api, tenant_a).json()
    consume(api, tenant_a.key, "c1", "ai_credits", 60)
    failed = Payment.objects.get()
    assert (failed.status, failed.decline_code) == ("requires_payment_method", "generic_decline")
    assert [i.status for i in intents_at_stripe(sdk, tenant_a.project)] == ["requires_payment_method"]
    assert balance(api, tenant_a) == 90
    assert not CreditLot.objects.filter(purchase__isnull=False).exists()
    state = AutoRecharge.objects.get()
    assert (state.status, state.attempt, state.last_error, state.payment_id) == (
        "failed",
        1,
        "generic_decline",
        failed.pk,
    )
    assert events("credits.recharge_failed") == [
        {
            "customer": "u1",
            "feature": "ai_credits",
            "auto_recharge": recharge["id"],
            "payment": failed.pk,
            "error": "generic_decline",
        }
    ]
    # Spending on below the mark charges nothing more until the tenant re-arms it.
    consume(api, tenant_a.key, "c2", "ai_credits", 10)
    assert len(intents_at_stripe(sdk, tenant_a.project)) == 1
    assert Payment.objects.count() == 1

    # Re-armed with a good card while the balance is below the mark: it charges now.
    good = sdk.v1.payment_methods.attach(
        "pm_card_mastercard", {"customer": Customer.objects.get(external_id="u1").stripe_customer_id}
    ).id
    again = configure(api, tenant_a, payment_method=good)
    assert again.status_code == 200
    # The answer is given as the charge starts; the charge runs on its own (here, right after the answer).
    assert (again.json()["status"], again.json()["attempts"], again.json()["payment_method"]) == (
        "charging",
        2,
        good,
    )
    assert AutoRecharge.objects.get().status == "armed"
    assert balance(api, tenant_a) == 1080
    assert sorted(i.status for i in intents_at_stripe(sdk, tenant_a.project)) == [
        "requires_payment_method",
        "succeeded",
    ]
    assert len(events("credits.recharged")) == 1
    assert len(events("credits.recharge_failed")) == 1


def test_no_saved_card_fails_without_calling_stripe_to_charge(api, tenant_a, credits, stripe_sdk):
    configure(api, tenant_a)
    consume(api, tenant_a.key, "c1", "ai_credits", 60)
    state = AutoRecharge.objects.get()
    assert (state.status, state.last_error, state.payment_id) == ("failed", "no_saved_card", "")
    assert not Payment.objects.exists()
    assert intents_at_stripe(stripe_sdk(), tenant_a.project) == []
    assert [e["error"] for e in events("credits.recharge_failed")] == ["no_saved_card"]


def test_lost_answers_from_stripe_are_one_charge(
    api, tenant_a, credits, stripe_sdk, wire, django_capture_on_commit_callbacks
):
    committing = django_capture_on_commit_callbacks
    sdk = stripe_sdk()
    save_card(sdk, tenant_a.project, "u1", "pm_card_visa")
    configure(api, tenant_a)
    # Stripe charges; its answer is lost three times in a row (the SDK's two retries too): the task gives up.
    wire.lose("POST", "/v1/payment_intents", times=3)
    consume(api, tenant_a.key, "c1", "ai_credits", 60)
    assert [i.status for i in intents_at_stripe(sdk, tenant_a.project)] == ["succeeded"]
    assert (Payment.objects.get().status, AutoRecharge.objects.get().status) == ("pending", "charging")
    assert balance(api, tenant_a) == 90

    with time_machine.travel(timezone.now() + timedelta(seconds=61)), committing(execute=True):
        assert auto_recharges_resume.delay().get() == 1
    sent = [key for method, path, key in wire.reached if (method, path) == ("POST", "/v1/payment_intents")]
    assert len(sent) == 4
    assert len(set(sent)) == 1
    assert [i.status for i in intents_at_stripe(sdk, tenant_a.project)] == ["succeeded"]
    assert Payment.objects.get().status == "succeeded"
    assert balance(api, tenant_a) == 1090
    assert AutoRecharge.objects.get().status == "armed"
    assert len(events("credits.recharged")) == 1


def test_a_process_killed_after_stripe_charged_is_continued_by_the_sweep(
    api, tenant_a, credits, stripe_sdk, wire, django_capture_on_commit_callbacks
):
    committing = django_capture_on_commit_callbacks
    sdk = stripe_sdk()
    save_card(sdk, tenant_a.project, "u1", "pm_card_visa")
    configure(api, tenant_a)
    wire.die("POST", "/v1/payment_intents")
    with pytest.raises(test_lost_answers.ProcessKilled):
        consume(api, tenant_a.key, "c1", "ai_credits", 60)
    assert [i.status for i in intents_at_stripe(sdk, tenant_a.project)] == ["succeeded"]  # Stripe charged
    assert Payment.objects.get().stripe_payment_intent_id == ""  # we never heard it
    assert AutoRecharge.objects.get().status == "charging"
    assert balance(api, tenant_a) == 90

    assert auto_recharges_resume.delay().get() == 0  # not due yet: a charge may still be under way
    with time_machine.travel(timezone.now() + timedelta(seconds=61)), committing(execute=True):
        assert auto_recharges_resume.delay().get() == 1
    assert [i.status for i in intents_at_stripe(sdk, tenant_a.project)] == ["succeeded"]  # still one charge
    assert Payment.objects.get().status == "succeeded"
    assert balance(api, tenant_a) == 1090
    assert AutoRecharge.objects.get().status == "armed"
    assert len(events("credits.recharged")) == 1


def test_configuring_refuses_what_cannot_recharge_and_changes_nothing(api, tenant_a, credits, catalog):
    feature(tenant_a.project, "exports", Feature.Type.METERED)
    price_create(product_create(tenant_a.project, "tshirt", "T-shirt"), "tshirt", 2000)
    cases = [
        ({"feature": "exports"}, "feature_not_credits"),
        ({"price": "pro-monthly"}, "price_not_one_time"),
        ({"price": "tshirt"}, "price_grants_no_credits"),
        ({"below": -1}, "invalid_parameter"),
        ({"payment_method": "card_123"}, "invalid_parameter"),
    ]
    for extra, code in cases:
        response = configure(api, tenant_a, **extra)
        assert (response.status_code, response.json()["error"]["code"]) == (400, code), extra
    assert not AutoRecharge.objects.exists()


def test_deleting_stops_the_next_charge_and_other_projects_cannot_see_it(
    api, tenant_a, tenant_b, credits, stripe_sdk
):
    recharge = configure(api, tenant_a).json()
    path = f"/api/v1/entitlements/auto_recharges/{recharge['id']}"
    assert api.get(path, key=tenant_b.key).status_code == 404
    assert api.delete(path, key=tenant_b.key).status_code == 404
    listed = api.get(
        "/api/v1/entitlements/auto_recharges", key=tenant_a.key, json_body={"customer": "u1"}
    ).json()
    assert [r["id"] for r in listed["data"]] == [recharge["id"]]
    deleted = api.delete(path, key=tenant_a.key)
    assert (deleted.status_code, deleted.json()["deleted"]) == (200, True)
    consume(api, tenant_a.key, "c1", "ai_credits", 60)
    assert not AutoRecharge.objects.exists()
    assert not Payment.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_spenders_past_the_mark_start_one_charge(tenant_a, catalog, stripe_sdk):
    ai = feature(tenant_a.project, "ai_credits", Feature.Type.CREDITS)
    ProductFeature.objects.create(product=catalog.credits, feature=ai, value=1000)
    client = Client()
    headers = {"Authorization": f"Bearer {tenant_a.key}"}
    grant = {"customer": "hot", "feature": "ai_credits", "value": 300, "reason": "welcome"}
    assert (
        client.post(
            "/api/v1/entitlements/grants", grant, content_type="application/json", headers=headers
        ).status_code
        == 201
    )
    sdk = stripe_sdk()
    save_card(sdk, tenant_a.project, "hot", "pm_card_visa")
    body = {"customer": "hot", "feature": "ai_credits", "below": 100, "price": "credits-1000"}
    assert (
        client.post(
            "/api/v1/entitlements/auto_recharges", body, content_type="application/json", headers=headers
        ).status_code
        == 201
    )
    results = _concurrently(
        50,
        lambda i, c: _post(
            c,
            tenant_a.key,
            "/api/v1/entitlements/consume",
            {"id": f"t{i}", "customer": "hot", "feature": "ai_credits", "quantity": 5},
        ),
    )
    assert sum(r["allowed"] for r in results) == 50
    assert [i.status for i in intents_at_stripe(sdk, tenant_a.project, "hot")] == ["succeeded"]
    assert Payment.objects.count() == 1
    assert AutoRecharge.objects.get().attempt == 1
    assert sum(CreditLot.objects.values_list("remaining", flat=True)) == 300 - 250 + 1000
    assert len(events("credits.recharged")) == 1


def test_a_price_deactivated_after_configuring_charges_nothing(api, tenant_a, credits, catalog, stripe_sdk):
    """The pack's price is deactivated after the recharge was configured: the next attempt fails with
    `price_inactive` before anything is charged, and grants nothing."""
    save_card(stripe_sdk(), tenant_a.project, "u1", "pm_card_visa")
    assert configure(api, tenant_a).status_code == 201
    assert (
        api.patch(f"/api/v1/prices/{catalog.credit_pack.pk}", {"active": False}, key=tenant_a.key).status_code
        == 200
    )
    consume(api, tenant_a.key, "c1", "ai_credits", 60)
    state = AutoRecharge.objects.get()
    assert (state.status, state.last_error, state.payment_id) == ("failed", "price_inactive", "")
    assert not Payment.objects.exists()
    assert intents_at_stripe(stripe_sdk(), tenant_a.project) == []
    assert [e["error"] for e in events("credits.recharge_failed")] == ["price_inactive"]
    assert balance(api, tenant_a) == 90
