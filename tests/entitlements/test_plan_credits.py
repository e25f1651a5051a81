"""Plan credits: a subscription whose product carries a `credits` feature grants them at the start of every paid
period — one lot per period from the invoice that paid it, expiring at the period end — once per invoice whatever
arrives twice or in any order; a full refund or a lost dispute of that invoice's payment takes back what is
unspent. Driven through the emulator's Checkout, renewals and webhooks, read through the API and the admin's
explain page."""

import json
import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client

from billing.models import Invoice, Payment, Subscription
from billing.services.entitlement_facts import payment_facts_hand
from billing.services.payment_transitions import payment_transition
from catalog.models import Product
from core.models import AuditLogEntry
from entitlements.explain import entitlements_explain
from entitlements.models import CreditLedgerEntry, CreditLot, PlanPeriod, UsageEvent
from tests.catalog import price_create
from webhooks.models import StripeEvent

OK = "https://app.example.com/ok"
SECOND = timedelta(seconds=1)


@pytest.fixture
def plans(api, tenant_a, catalog):
    """`pro` (pro-monthly, $30) gives 1,000 `ai_credits` a period; `max` (max-monthly, $90) 5,000;
    `team` (team-monthly, $10 a seat) 200 per seat."""
    created = api.post(
        "/api/v1/features", {"key": "ai_credits", "name": "AI credits", "type": "credits"}, key=tenant_a.key
    )
    assert created.status_code == 201, created.json()
    for key, value in (("pro", 1000), ("max", 5000), ("team", {"per_unit": 200})):
        if key != "pro":
            made = api.post("/api/v1/products", {"key": key, "name": key}, key=tenant_a.key)
            assert made.status_code == 201, made.json()
        answer = api.patch(f"/api/v1/products/{key}", {"features": {"ai_credits": value}}, key=tenant_a.key)
        assert answer.status_code == 200, answer.json()
    price_create(
        Product.objects.get(project=tenant_a.project, key="max"), "max-monthly", 9000, interval="month"
    )
    price_create(
        Product.objects.get(project=tenant_a.project, key="team"), "team-monthly", 1000, interval="month"
    )
    return catalog


def _complete(stripe_emulator, session_id):
    answer = stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{session_id}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return answer


def _checkout(api, tenant, stripe_emulator, price="pro-monthly", customer="user-1", **extra):
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": customer, "price": price, "success_url": OK, "cancel_url": OK, **extra},
        key=tenant.key,
    )
    assert created.status_code == 201, created.json()
    _complete(stripe_emulator, created.json()["stripe_session_id"])
    return created.json()


def _subscribe(api, tenant, stripe_emulator, stripe_webhooks, **extra):
    created = _checkout(api, tenant, stripe_emulator, **extra)
    stripe_webhooks.deliver()
    return Payment.objects.get(pk=created["payment"])


def _credits(api, tenant, customer="user-1"):
    response = api.get(f"/api/v1/credits?customer={customer}&feature=ai_credits", key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def _consume(api, tenant, event_id, quantity):
    response = api.post(
        "/api/v1/entitlements/consume",
        {"id": event_id, "customer": "user-1", "feature": "ai_credits", "quantity": quantity},
        key=tenant.key,
    )
    assert response.status_code == 200, response.json()
    return response.json()


def _check(api, tenant, quantity):
    response = api.get(
        f"/api/v1/entitlements/check?customer=user-1&feature=ai_credits&quantity={quantity}", key=tenant.key
    )
    assert response.status_code == 200, response.json()
    return response.json()


def _held(stripe_emulator):
    """The queued deliveries, taken out of the emulator's queue instead of sent."""
    held = []
    sender = stripe_emulator.webhooks.sender
    stripe_emulator.webhooks.sender = lambda url, body, headers: (
        held.append((url, body, dict(headers))) or 200
    )
    stripe_emulator.flush_webhooks()
    stripe_emulator.webhooks.sender = sender
    return held


def _send(stripe_webhooks, deliveries):
    for url, body, headers in deliveries:
        assert stripe_webhooks.send(url, body, headers) == 200


def _type(delivery):
    return json.loads(delivery[1])["type"]


def _no_failed_events():
    failed = list(StripeEvent.objects.filter(status="failed").values_list("type", "last_error"))
    assert failed == []


def test_the_first_paid_period_grants_the_plans_credits_until_the_period_end(
    api, tenant_a, plans, stripe_emulator, stripe_webhooks
):
    assert _credits(api, tenant_a)["balance"] == 0
    payment = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    _no_failed_events()
    subscription = Subscription.objects.get()
    invoice = Invoice.objects.get()
    assert (payment.status, invoice.billing_reason) == ("succeeded", "subscription_create")

    body = _credits(api, tenant_a)
    assert body["balance"] == 1000
    assert [(lot["source"], lot["amount"], lot["remaining"], lot["voided"]) for lot in body["lots"]] == [
        ("plan", 1000, 1000, False)
    ]
    lot = CreditLot.objects.get()
    assert lot.expires_at == subscription.current_period_end
    period = PlanPeriod.objects.get()
    assert (period.payment_id, period.invoice_id, period.product_id, period.quantity) == (
        payment.pk,
        invoice.pk,
        plans.pro.pk,
        1,
    )
    assert (period.period_start, period.period_end) == (
        subscription.current_period_start,
        subscription.current_period_end,
    )
    assert [(e["type"], e["amount"], e["reference"]) for e in body["ledger"]] == [("grant", 1000, invoice.pk)]
    assert (_check(api, tenant_a, 1000)["allowed"], _check(api, tenant_a, 1001)["allowed"]) == (True, False)

    spent = _consume(api, tenant_a, "job-1", 300)
    assert (spent["allowed"], spent["balance"]) == (True, 700)
    # More than is left: refused, and nothing is recorded.
    before = (CreditLedgerEntry.objects.count(), UsageEvent.objects.count())
    refused = _consume(api, tenant_a, "job-2", 701)
    assert (refused["allowed"], refused["balance"]) == (False, 700)
    assert (CreditLedgerEntry.objects.count(), UsageEvent.objects.count()) == before
    assert CreditLot.objects.get().remaining == 700

    with time_machine.travel(subscription.current_period_end - SECOND):
        assert _credits(api, tenant_a)["balance"] == 700
        assert _check(api, tenant_a, 1)["balance"] == 700
    with time_machine.travel(subscription.current_period_end + SECOND):  # no write: the lot's expiry
        assert _credits(api, tenant_a)["balance"] == 0
        answer = _check(api, tenant_a, 1)
        assert (answer["allowed"], answer["balance"]) == (False, 0)


def test_every_event_delivered_twice_and_shuffled_grants_each_period_once(
    api, tenant_a, plans, stripe_emulator, stripe_webhooks
):
    stripe_emulator.webhooks.shuffle = True
    stripe_emulator.webhooks.duplicates = True
    _checkout(api, tenant_a, stripe_emulator)
    stripe_emulator.advance(31 * 86400)  # a renewal
    stripe_webhooks.deliver()
    stripe_webhooks.deliver()
    _no_failed_events()
    subscription = Subscription.objects.get()
    payments = Payment.objects.order_by("created_at")
    assert [(p.source, p.status) for p in payments] == [("checkout", "succeeded"), ("invoice", "succeeded")]
    assert PlanPeriod.objects.count() == 2
    lots = list(CreditLot.objects.order_by("expires_at"))
    assert [(lot.source, lot.amount, lot.plan_period.payment_id) for lot in lots] == [
        ("plan", 1000, payments[0].pk),
        ("plan", 1000, payments[1].pk),
    ]
    assert lots[1].expires_at == subscription.current_period_end
    assert CreditLedgerEntry.objects.filter(type="grant").count() == 2


def test_checkout_completion_before_the_invoice_is_mirrored_still_grants_once(
    api, tenant_a, plans, stripe_emulator, stripe_webhooks
):
    """Checkout's completion settles the payment before `invoice.*` mirrors its invoice: the invoice's arrival
    grants the period, and the late `invoice.paid` and every duplicate grant nothing more."""
    created = _checkout(api, tenant_a, stripe_emulator)
    held = _held(stripe_emulator)
    first = [d for d in held if _type(d) in ("checkout.session.completed", "customer.subscription.created")]
    rest = [d for d in held if d not in first]
    assert [_type(d) for d in first] == ["customer.subscription.created", "checkout.session.completed"]
    _send(stripe_webhooks, first)
    payment = Payment.objects.get(pk=created["payment"])
    assert payment.status == "succeeded"
    assert not Invoice.objects.exists()
    assert _credits(api, tenant_a)["balance"] == 0  # paid, but which period it paid is not known yet
    assert not PlanPeriod.objects.exists()

    _send(stripe_webhooks, rest)
    _send(stripe_webhooks, held)  # and everything again
    _no_failed_events()
    assert _credits(api, tenant_a)["balance"] == 1000
    assert PlanPeriod.objects.get().payment_id == payment.pk
    assert CreditLot.objects.get().expires_at == Subscription.objects.get().current_period_end


def test_a_renewal_grants_a_new_lot_and_the_old_periods_unspent_credits_expire_at_its_end(
    api, tenant_a, plans, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    first_end = Subscription.objects.get().current_period_end
    assert _consume(api, tenant_a, "job-1", 400)["balance"] == 600
    assert _check(api, tenant_a, 1)["balance"] == 600  # a warm answer, which the renewal must refresh

    stripe_emulator.advance(31 * 86400)
    stripe_webhooks.deliver()
    _no_failed_events()
    subscription = Subscription.objects.get()
    renewal = Payment.objects.get(source="invoice")
    invoice = Invoice.objects.get(billing_reason="subscription_cycle")
    assert renewal.status == "succeeded"
    assert subscription.current_period_start == first_end
    # A renewal invoice's own period is the period that ended; the lot is for the period its line bills.
    assert invoice.period_end == first_end
    old, new = CreditLot.objects.order_by("expires_at")
    assert (old.remaining, old.expires_at) == (600, first_end)
    assert (new.source, new.amount, new.remaining, new.expires_at) == (
        "plan",
        1000,
        1000,
        subscription.current_period_end,
    )
    assert new.plan_period.payment_id == renewal.pk
    assert (new.plan_period.period_start, new.plan_period.period_end) == (
        first_end,
        subscription.current_period_end,
    )
    # No rollover: until the first period ends both lots count, then only the new one.
    assert _check(api, tenant_a, 1)["balance"] == 1600
    with time_machine.travel(first_end - SECOND):
        assert _credits(api, tenant_a)["balance"] == 1600
    with time_machine.travel(first_end + SECOND):  # no write: the old lot's expiry ends the cached answer
        body = _credits(api, tenant_a)
        assert body["balance"] == 1000
        assert _check(api, tenant_a, 1000)["allowed"] is True
        assert _check(api, tenant_a, 1001)["allowed"] is False
        assert _consume(api, tenant_a, "job-2", 1000)["balance"] == 0
        assert CreditLot.objects.get(pk=old.pk).remaining == 600  # the expired lot is never spent


def test_a_full_refund_of_the_invoices_payment_takes_back_its_unspent_plan_credits(
    api, tenant_a, plans, stripe_emulator, stripe_webhooks
):
    payment = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    assert _consume(api, tenant_a, "job-1", 250)["balance"] == 750

    refund = api.post(f"/api/v1/payments/{payment.pk}/refund", {"reason": "requested"}, key=tenant_a.key)
    assert refund.status_code == 200, refund.json()
    stripe_webhooks.deliver()
    _no_failed_events()
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("refunded", 3000)
    body = _credits(api, tenant_a)
    assert body["balance"] == 0
    assert [(lot["remaining"], lot["voided"]) for lot in body["lots"]] == [(0, True)]
    assert [(e["type"], e["amount"]) for e in body["ledger"]] == [
        ("revoke", -750),
        ("consume", -250),
        ("grant", 1000),
    ]
    assert body["ledger"][0]["reference"] == payment.pk
    period = PlanPeriod.objects.get()
    assert (period.revoked_at is not None, period.revoke_reason) == (True, "refunded in full")
    audit = AuditLogEntry.objects.get(action="plan_period.revoked")
    assert (audit.target_id, audit.actor_type, audit.reason) == (period.pk, "system", "refunded in full")
    assert _consume(api, tenant_a, "job-2", 1)["allowed"] is False
    # The subscription itself is Stripe's business: the refund does not cancel it.
    assert Subscription.objects.get().status == "active"

    stripe_webhooks.deliver()  # nothing queued; replaying the refund takes nothing more
    payment.refresh_from_db()
    payment_facts_hand(payment=payment)  # billing's call, again
    assert CreditLedgerEntry.objects.filter(type="revoke").count() == 1
    assert AuditLogEntry.objects.filter(action="plan_period.revoked").count() == 1


def test_a_partial_refund_keeps_the_credits_and_a_lost_dispute_takes_them_back(
    api, tenant_a, plans, stripe_emulator, stripe_webhooks, django_capture_on_commit_callbacks
):
    payment = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    refund = api.post(f"/api/v1/payments/{payment.pk}/refund", {"amount": 1000}, key=tenant_a.key)
    assert refund.status_code == 200, refund.json()
    stripe_webhooks.deliver()
    payment.refresh_from_db()
    assert payment.status == "partially_refunded"
    assert _credits(api, tenant_a)["balance"] == 1000

    # What the dispute processor does with `charge.dispute.created`, then `charge.dispute.closed` (lost).
    with django_capture_on_commit_callbacks(execute=True):
        payment = payment_transition(
            payment=payment,
            allowed_from=Payment.PAID_STATUSES,
            status=Payment.Status.DISPUTED,
            dispute_status="needs_response",
        )
    assert _credits(api, tenant_a)["balance"] == 1000  # an open dispute keeps them
    with django_capture_on_commit_callbacks(execute=True):
        payment_transition(payment=payment, allowed_from=Payment.PAID_STATUSES, dispute_status="lost")
    body = _credits(api, tenant_a)
    assert (body["balance"], body["ledger"][0]["type"], body["ledger"][0]["amount"]) == (0, "revoke", -1000)
    assert PlanPeriod.objects.get().revoke_reason == "lost dispute"


def test_a_trial_grants_the_plans_credits_for_the_trial_period(
    api, tenant_a, plans, stripe_emulator, stripe_webhooks
):
    payment = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, trial_days=14)
    _no_failed_events()
    subscription = Subscription.objects.get()
    assert (payment.status, subscription.status) == ("no_payment_required", "trialing")
    assert _credits(api, tenant_a)["balance"] == 1000
    lot = CreditLot.objects.get()
    assert lot.expires_at == subscription.trial_end
    assert PlanPeriod.objects.get().payment_id == payment.pk

    stripe_emulator.advance(15 * 86400)  # the trial ends: the first charged period
    stripe_webhooks.deliver()
    _no_failed_events()
    subscription.refresh_from_db()
    assert subscription.status == "active"
    new = CreditLot.objects.exclude(pk=lot.pk).get()
    assert (new.amount, new.expires_at) == (1000, subscription.current_period_end)
    with time_machine.travel(subscription.trial_end + SECOND):
        assert _credits(api, tenant_a)["balance"] == 1000


def test_per_unit_credits_are_multiplied_by_the_subscribed_quantity(
    api, tenant_a, plans, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, price="team-monthly", quantity=3)
    _no_failed_events()
    assert _credits(api, tenant_a)["balance"] == 600
    assert PlanPeriod.objects.get().quantity == 3


def test_a_plan_change_in_the_middle_of_a_period_grants_nothing_until_the_next_period(
    api, tenant_a, plans, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    half = (subscription.current_period_end - subscription.current_period_start).total_seconds() / 2
    stripe_emulator.advance(int(half))
    stripe_webhooks.deliver()
    changed = api.patch(
        f"/api/v1/subscriptions/{subscription.pk}",
        {"price": "max-monthly", "proration_behavior": "always_invoice"},
        key=tenant_a.key,
    )
    assert changed.status_code == 200, changed.json()
    stripe_webhooks.deliver()
    _no_failed_events()
    update = Invoice.objects.get(billing_reason="subscription_update")
    upgrade = Payment.objects.get(stripe_invoice_id=update.stripe_invoice_id)
    assert (upgrade.status, upgrade.amount) == ("succeeded", 3000)
    assert Subscription.objects.get().product_id == Subscription.objects.get().price.product_id
    assert _credits(api, tenant_a)["balance"] == 1000  # the difference is not granted
    # The change's invoice bills prorations only: settled as a period of no plan, granting nothing.
    settled = PlanPeriod.objects.get(payment_id=upgrade.pk)
    assert (settled.product_id, settled.lots.count()) == (None, 0)

    stripe_emulator.advance(int(half) + 86400)
    stripe_webhooks.deliver()
    _no_failed_events()
    subscription.refresh_from_db()
    cycle = Invoice.objects.get(billing_reason="subscription_cycle")
    new = CreditLot.objects.get(plan_period__invoice_id=cycle.pk)
    assert (new.amount, new.expires_at) == (5000, subscription.current_period_end)
    assert new.plan_period.product.key == "max"


def test_an_upgrade_then_a_downgrade_within_a_period_grants_nothing_twice(
    api, tenant_a, plans, stripe_emulator, stripe_webhooks
):
    """The plan-change rule (docs, "No credits twice through plan changes"): credits come with invoices that bill
    a whole period, so going up to `max` and back down to `pro` in one period grants neither plan again, and the
    next renewal grants the plan held then, once."""
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    assert _consume(api, tenant_a, "spent", 600)["balance"] == 400
    subscription = Subscription.objects.get()
    third = (subscription.current_period_end - subscription.current_period_start).total_seconds() / 3
    for price in ("max-monthly", "pro-monthly"):
        stripe_emulator.advance(int(third))
        stripe_webhooks.deliver()
        changed = api.patch(
            f"/api/v1/subscriptions/{subscription.pk}",
            {"price": price, "proration_behavior": "always_invoice"},
            key=tenant_a.key,
        )
        assert changed.status_code == 200, changed.json()
        stripe_webhooks.deliver()
        _no_failed_events()
        assert _credits(api, tenant_a)["balance"] == 400
    assert Invoice.objects.filter(billing_reason="subscription_update").count() == 2
    assert list(CreditLot.objects.values_list("amount", "remaining")) == [(1000, 400)]
    # The two changes' invoices bill prorations only: settled, no plan, nothing granted.
    assert PlanPeriod.objects.exclude(product=None).count() == 1

    stripe_emulator.advance(int(third) + 86400)
    stripe_webhooks.deliver()
    _no_failed_events()
    assert sorted(CreditLot.objects.values_list("amount", flat=True)) == [1000, 1000]  # pro's, once


def test_a_failed_renewal_grants_nothing(api, tenant_a, plans, stripe_sdk, stripe_emulator, stripe_webhooks):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    sdk = stripe_sdk()
    card = sdk.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4000000000000341", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    sdk.v1.payment_methods.attach(card.id, {"customer": subscription.customer.stripe_customer_id})
    sdk.v1.subscriptions.update(subscription.stripe_subscription_id, {"default_payment_method": card.id})
    stripe_emulator.advance(31 * 86400)
    stripe_webhooks.deliver()
    assert Subscription.objects.get().status == "past_due"
    assert Payment.objects.get(source="invoice").status == "requires_payment_method"
    assert PlanPeriod.objects.count() == 1
    assert CreditLot.objects.count() == 1


def test_another_projects_key_sees_nothing_and_cannot_refund(
    api, tenant_a, tenant_b, plans, stripe_emulator, stripe_webhooks
):
    payment = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    assert _credits(api, tenant_a)["balance"] == 1000

    missing = api.get("/api/v1/credits?customer=user-1&feature=ai_credits", key=tenant_b.key)
    assert missing.status_code == 404
    assert (
        api.post(
            "/api/v1/features", {"key": "ai_credits", "name": "AI", "type": "credits"}, key=tenant_b.key
        ).status_code
        == 201
    )
    body = _credits(api, tenant_b)  # the same user id in B is another customer, with nothing
    assert (body["balance"], body["lots"], body["ledger"]) == (0, [], [])
    answer = _check(api, tenant_b, 1)
    assert (answer["allowed"], answer["balance"]) == (False, 0)

    before = (
        CreditLedgerEntry.objects.count(),
        list(CreditLot.objects.values_list("remaining", "voided_at")),
    )
    refused = api.post(f"/api/v1/payments/{payment.pk}/refund", {"reason": "x"}, key=tenant_b.key)
    assert refused.status_code == 404
    stripe_webhooks.deliver()
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert (
        CreditLedgerEntry.objects.count(),
        list(CreditLot.objects.values_list("remaining", "voided_at")),
    ) == (before)
    assert PlanPeriod.objects.get().revoked_at is None
    assert _credits(api, tenant_a)["balance"] == 1000


def test_the_explain_page_shows_where_the_balance_comes_from(
    api, tenant_a, plans, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    _consume(api, tenant_a, "job-1", 400)
    stripe_emulator.advance(31 * 86400)
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get()
    customer = subscription.customer
    first_end = subscription.current_period_start
    old, new = CreditLot.objects.select_related("plan_period").order_by("expires_at")

    def explained():
        (credits,) = (
            f
            for f in entitlements_explain(project=tenant_a.project, customer=customer).features
            if f.key == "ai_credits"
        )
        return credits

    def when(moment):
        return moment.strftime("%Y-%m-%d %H:%M UTC")

    def origin(lot):
        period = lot.plan_period
        return (
            f"from subscription invoice {Invoice.objects.get(pk=period.invoice_id).number or period.invoice_id} "
            "for the period "
            f"{when(period.period_start)} – {when(period.period_end)}"
        )

    with time_machine.travel(first_end - SECOND):
        credits = explained()
        balance = _credits(api, tenant_a)["balance"]
        assert balance == credits.answer["balance"] == 1600
        assert (credits.allowed, credits.verdict) == (True, "Allowed: 1600 credits left.")
        lots = {s.id: s for s in credits.sources if s.kind == "credit_lot"}
        assert sum(s.value for s in lots.values() if s.effect == "gives") == balance
        assert (lots[old.pk].effect, lots[old.pk].why) == (
            "gives",
            f"600 of 1000 credits left {origin(old)}; expire {when(old.expires_at)}",
        )
        plan = next(s for s in credits.sources if s.kind == "subscription")
        assert (plan.effect, plan.value) == ("gives", 1000)
        assert plan.why.endswith("; each paid period grants 1000 credits, expiring at its end")

    with time_machine.travel(first_end + SECOND):
        credits = explained()
        balance = _credits(api, tenant_a)["balance"]
        assert balance == credits.answer["balance"] == 1000
        lots = {s.id: s for s in credits.sources if s.kind == "credit_lot"}
        assert [(lot_id, s.effect, s.value) for lot_id, s in lots.items() if s.effect == "gives"] == [
            (new.pk, "gives", 1000)
        ]
        assert lots[old.pk].why == f"1000 credits {origin(old)}, expired {when(first_end)} with 600 unspent"
        assert lots[new.pk].why == f"1000 of 1000 credits left {origin(new)}; expire {when(new.expires_at)}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_every_paying_event_at_once_grants_the_period_once(
    api, tenant_a, plans, stripe_emulator, stripe_webhooks
):
    """Each of the first invoice's events, three times, all at once on PostgreSQL: one period, one lot."""
    _checkout(api, tenant_a, stripe_emulator)
    work = [delivery for delivery in _held(stripe_emulator) for _ in range(3)]
    barrier = threading.Barrier(len(work))
    statuses: list[int] = []

    def post(delivery):
        _, body, headers = delivery
        barrier.wait()
        response = Client().post(
            "/webhooks/stripe",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": headers["Stripe-Signature"]},
        )
        statuses.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=post, args=(delivery,)) for delivery in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) == {200}
    _no_failed_events()
    assert PlanPeriod.objects.count() == 1
    assert list(CreditLot.objects.values_list("source", "amount", "remaining")) == [("plan", 1000, 1000)]
    assert CreditLedgerEntry.objects.filter(type="grant").count() == 1
    assert _credits(api, tenant_a)["balance"] == 1000
