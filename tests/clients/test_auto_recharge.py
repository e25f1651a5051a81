"""Auto-recharge and balance thresholds through the typed client against a live server: a consume that takes the
balance to the mark charges the saved card at Stripe once, the credits arrive, and the threshold is announced."""

import pytest
from tollgate_client.types import AutoRecharge

from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from events.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_client_configures_a_recharge_that_charges_once_and_grants_once(tollgate, plans, stripe_sdk):
    tollgate.products.create(key="topup", name="Top-up", features={"ai_credits": 500})
    tollgate.prices.create(key="topup-500", product="topup", currency="usd", unit_amount=900, type="one_time")
    tollgate.entitlements.grants.create(customer="user-1", feature="ai_credits", value=120, reason="welcome")
    threshold = tollgate.entitlements.thresholds.create(customer="user-1", feature="ai_credits", quantity=100)
    sdk = stripe_sdk()
    stripe_customer = customer_ensure_stripe(customer=Customer.objects.get(external_id="user-1"))
    card = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id

    made = tollgate.entitlements.auto_recharges.create(
        customer="user-1", feature="ai_credits", below=50, price="topup-500", payment_method=card
    )
    assert isinstance(made, AutoRecharge)
    assert (made.status, made.credits, made.amount, made.currency, made.payment_method) == (
        "armed",
        500,
        900,
        "usd",
        card,
    )
    assert (
        tollgate.entitlements.consume(
            id="job-1", customer="user-1", feature="ai_credits", quantity=30
        ).balance
        == 90
    )
    assert (
        tollgate.entitlements.consume(
            id="job-2", customer="user-1", feature="ai_credits", quantity=45
        ).balance
        == 45
    )

    now = tollgate.entitlements.auto_recharges.retrieve(made.id)
    assert (now.status, now.attempts, now.last_error) == ("armed", 1, None)
    assert tollgate.payments.retrieve(now.last_payment).status == "succeeded"
    assert tollgate.entitlements.check(customer="user-1", feature="ai_credits").balance == 545
    intents = sdk.v1.payment_intents.list({"customer": stripe_customer}).data
    assert [(i.amount, i.status) for i in intents] == [(900, "succeeded")]
    crossed = [e.data["object"] for e in Event.objects.filter(type="credits.threshold_reached")]
    assert [(c["threshold_id"], c["balance"]) for c in crossed] == [(threshold.id, 90)]

    assert [r.id for r in tollgate.entitlements.auto_recharges.list(customer="user-1")] == [made.id]
    assert tollgate.entitlements.auto_recharges.delete(made.id).deleted is True
    assert tollgate.entitlements.auto_recharges.list(customer="user-1").data == []
