"""Credits on a cadence through the Python client, on a live server with the Stripe emulator: a yearly plan whose
product grants its credits every month (`"cadence": "month"`) is defined, bought and paid; the client reads the
first month's lot and the eleven months scheduled to come, then the second month once the beat's task has granted
it."""

import pytest
import time_machine
from tollgate_client.types import CreditBalance, ScheduledCredits

from entitlements.models import PlanCreditSlice
from entitlements.tasks import plan_credits_grant_due
from tests.clients.conftest import CANCEL, OK, complete_checkout

pytestmark = pytest.mark.django_db(transaction=True)

SECOND_AFTER = 1


def test_a_yearly_plans_monthly_credits_read_through_the_client(tollgate, stripe_emulator, stripe_webhooks):
    tollgate.features.create(key="ai_credits", name="AI credits", type="credits")
    value = {"limit": 500, "cadence": "month", "rollover": 100}
    tollgate.products.create(key="studio", name="Studio", features={"ai_credits": value})
    assert tollgate.products.retrieve("studio").features == {"ai_credits": value}
    tollgate.prices.create(
        key="studio-yearly",
        product="studio",
        currency="usd",
        unit_amount=48000,
        type="recurring",
        interval="year",
    )
    session = tollgate.checkout.subscription(
        customer="user-5", price="studio-yearly", success_url=OK, cancel_url=CANCEL
    )
    complete_checkout(stripe_emulator, session.stripe_session_id)
    stripe_webhooks.deliver()

    credits = tollgate.credits.retrieve(customer="user-5", feature="ai_credits")
    assert isinstance(credits, CreditBalance)
    assert credits.balance == 500
    assert [(lot.source, lot.amount) for lot in credits.lots] == [("plan", 500)]
    assert len(credits.scheduled) == 11
    first, second = credits.scheduled[:2]
    assert isinstance(first, ScheduledCredits)
    slices = list(PlanCreditSlice.objects.order_by("index"))
    assert (first.id, first.amount, first.rollover, first.invoice) == (
        slices[1].pk,
        500,
        100,
        slices[1].plan_period.invoice_id,
    )
    assert (first.starts_at, first.expires_at, second.starts_at) == (
        slices[1].starts_at.isoformat().replace("+00:00", "Z"),
        slices[1].ends_at.isoformat().replace("+00:00", "Z"),
        slices[2].starts_at.isoformat().replace("+00:00", "Z"),
    )
    assert credits.lots[0].expires_at == first.starts_at
    assert tollgate.entitlements.consume(
        id="gen-1", customer="user-5", feature="ai_credits", quantity=450
    ).allowed

    # The second month: the beat's task grants it, with the 50 the first left unspent.
    with time_machine.travel(slices[1].starts_at):
        assert plan_credits_grant_due() == 1
    with time_machine.travel(slices[1].starts_at.timestamp() + SECOND_AFTER, tick=False):
        later = tollgate.credits.retrieve(customer="user-5", feature="ai_credits")
        assert later.balance == 550
        assert [(lot.amount, lot.remaining) for lot in later.lots] == [(500, 0), (550, 550)]
        assert [s.id for s in later.scheduled] == [s.pk for s in slices[2:]]
