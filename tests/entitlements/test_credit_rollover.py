"""A rollover cap on plan credits: `pro` gives 1,000 `ai_credits` a period and carries up to 500 unspent ones into
the next period's lot (OpenMeter's `maxRolloverAmount`). Driven through the emulator's Checkout, renewals and
webhooks; read through the credits API and its ledger."""

import pytest
import time_machine

from billing.models import Payment, Subscription
from catalog.models import ProductFeature
from entitlements.models import CreditLedgerEntry, CreditLot, PlanPeriod
from tests.entitlements.test_plan_credits import (
    SECOND,
    _check,
    _consume,
    _credits,
    _held,
    _no_failed_events,
    _send,
    _subscribe,
)


@pytest.fixture
def rollover_plan(api, tenant_a, catalog):
    created = api.post(
        "/api/v1/features", {"key": "ai_credits", "name": "AI credits", "type": "credits"}, key=tenant_a.key
    )
    assert created.status_code == 201, created.json()
    value = {"limit": 1000, "rollover": 500}
    answer = api.patch("/api/v1/products/pro", {"features": {"ai_credits": value}}, key=tenant_a.key)
    assert answer.status_code == 200, answer.json()
    assert answer.json()["features"] == {"ai_credits": value}
    return catalog


def _renew(stripe_emulator, stripe_webhooks):
    stripe_emulator.advance(31 * 86400)
    stripe_webhooks.deliver()
    _no_failed_events()


def _lots():
    return list(CreditLot.objects.order_by("expires_at").values_list("amount", "remaining"))


@pytest.mark.parametrize(
    ("spent", "carried"),
    [(400, 500), (900, 100), (1000, 0)],
    ids=["capped", "all-left", "none-left"],
)
def test_a_renewal_carries_what_the_period_left_up_to_the_cap(
    api, tenant_a, rollover_plan, stripe_emulator, stripe_webhooks, spent, carried
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    first_end = Subscription.objects.get().current_period_end
    assert _consume(api, tenant_a, "job-1", spent)["balance"] == 1000 - spent

    _renew(stripe_emulator, stripe_webhooks)

    left = 1000 - spent
    assert _lots() == [(1000, left - carried), (1000 + carried, 1000 + carried)]
    body = _credits(api, tenant_a)
    renewal = Payment.objects.get(source="invoice")
    rolled = [(e["type"], e["amount"], e["reference"]) for e in body["ledger"] if e["type"] == "rollover"]
    invoice = PlanPeriod.objects.get(payment_id=renewal.pk).invoice_id
    assert sorted(rolled) == (
        [("rollover", -carried, invoice), ("rollover", carried, invoice)] if carried else []
    )
    # The balance is unchanged by the move; once the first period ends, what it did not carry is gone.
    assert body["balance"] == left + 1000
    with time_machine.travel(first_end + SECOND):
        assert _credits(api, tenant_a)["balance"] == 1000 + carried
        assert _check(api, tenant_a, 1000 + carried)["allowed"] is True
        assert _check(api, tenant_a, 1001 + carried)["allowed"] is False
    # Every lot's remaining is what its ledger entries add up to.
    for lot in CreditLot.objects.all():
        assert (
            sum(CreditLedgerEntry.objects.filter(lot=lot).values_list("amount", flat=True)) == lot.remaining
        )


def test_spends_after_an_early_renewal_come_from_the_old_lot_first(
    api, tenant_a, rollover_plan, stripe_emulator, stripe_webhooks
):
    """The renewal is applied before the first period's end (as here, where Stripe's clock runs ahead): 500 of the
    600 left move at once; 300 more spent in the old period's last moments take its 100 first, then 200 of the new
    lot — so the next period starts with 1,000 + the 300 that were in fact left, as if it had rolled at the end."""
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    first_end = Subscription.objects.get().current_period_end
    _consume(api, tenant_a, "job-1", 400)
    _renew(stripe_emulator, stripe_webhooks)
    assert _consume(api, tenant_a, "job-2", 300)["balance"] == 1300
    assert _lots() == [(1000, 0), (1500, 1300)]
    with time_machine.travel(first_end + SECOND):
        assert _credits(api, tenant_a)["balance"] == 1300


def test_replayed_renewal_events_carry_once(api, tenant_a, rollover_plan, stripe_emulator, stripe_webhooks):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    _consume(api, tenant_a, "job-1", 100)
    stripe_emulator.advance(31 * 86400)
    deliveries = _held(stripe_emulator)
    _send(stripe_webhooks, deliveries + deliveries[::-1])
    _no_failed_events()
    assert _lots() == [(1000, 400), (1500, 1500)]
    assert CreditLedgerEntry.objects.filter(type="rollover").count() == 2


def test_a_period_refunded_in_full_carries_nothing(
    api, tenant_a, rollover_plan, stripe_emulator, stripe_webhooks
):
    payment = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    _consume(api, tenant_a, "job-1", 100)
    refund = api.post(f"/api/v1/payments/{payment.pk}/refund", {"reason": "requested"}, key=tenant_a.key)
    assert refund.status_code == 200, refund.json()
    stripe_webhooks.deliver()
    assert _lots() == [(1000, 0)]

    _renew(stripe_emulator, stripe_webhooks)

    assert _lots() == [(1000, 0), (1000, 1000)]
    assert not CreditLedgerEntry.objects.filter(type="rollover").exists()
    assert _credits(api, tenant_a)["balance"] == 1000


def test_a_rollover_cap_is_for_credits_only(api, tenant_a, catalog):
    for key, kind in (("api_calls", "metered"), ("ai_credits", "credits")):
        assert (
            api.post(
                "/api/v1/features", {"key": key, "name": key, "type": kind}, key=tenant_a.key
            ).status_code
            == 201
        )
    refused = api.patch(
        "/api/v1/products/pro", {"features": {"api_calls": {"limit": 10, "rollover": 5}}}, key=tenant_a.key
    )
    assert refused.status_code == 400
    assert (
        refused.json()["error"]["message"]
        == "features.api_calls: only a credits feature's plan credits roll over."
    )
    for bad, message in (
        (
            {"limit": 10, "rollover": -1},
            "rollover is an integer ≥ 0, the most unspent credits a period carries over.",
        ),
        ({"limit": None, "rollover": 5}, "unlimited credits have no rollover."),
    ):
        answer = api.patch("/api/v1/products/pro", {"features": {"ai_credits": bad}}, key=tenant_a.key)
        assert (answer.status_code, answer.json()["error"]["message"]) == (
            400,
            f"features.ai_credits: {message}",
        )
    assert not ProductFeature.objects.exists()
    per_unit = {"per_unit": 200, "rollover": 100}
    answer = api.patch("/api/v1/products/pro", {"features": {"ai_credits": per_unit}}, key=tenant_a.key)
    assert (answer.status_code, answer.json()["features"]) == (200, {"ai_credits": per_unit})


def test_the_explain_page_says_how_many_roll_over(
    api, tenant_a, rollover_plan, stripe_emulator, stripe_webhooks
):
    from customers.models import Customer
    from entitlements.explain import entitlements_explain

    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    explained = entitlements_explain(
        project=tenant_a.project,
        customer=Customer.objects.get(project=tenant_a.project, external_id="user-1"),
    )
    credits = next(f for f in explained.features if f.key == "ai_credits")
    subscription = next(s for s in credits.sources if s.kind == "subscription")
    assert subscription.why.endswith(
        "each paid period grants 1000 credits, expiring at its end, up to 500 unspent ones carried into the next period"
    )
