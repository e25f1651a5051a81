"""Re-rating a draft through the Python client, on the live server with the Stripe emulator: `user-1` subscribed
to `team` through Checkout and renewed once; a draft that reprices `team-monthly` (20.00 → 25.00) and lowers
`api_calls` below what the customer used is re-rated against the closed period Stripe invoiced — and nothing is
published."""

from datetime import UTC, datetime

import pytest
import time_machine
from tollgate_client import NotFoundError
from tollgate_client.types import EntitlementChange, ReratedSubscription, Rerating, ReratingCohort

from tests.clients.conftest import CANCEL, OK, complete_checkout

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_draft_rerated_against_the_closed_period_and_nothing_published(
    tollgate, stripe_emulator, stripe_webhooks
):
    tollgate.features.create(key="api_calls", name="API calls", type="metered", unit="call")
    tollgate.features.create(key="export", name="Export", type="boolean")
    tollgate.products.create(key="team", name="Team", features={"api_calls": 100, "export": True})
    tollgate.prices.create(
        key="team-monthly",
        product="team",
        currency="usd",
        unit_amount=2000,
        type="recurring",
        interval="month",
    )
    session = tollgate.checkout.subscription(
        customer="user-1", price="team-monthly", success_url=OK, cancel_url=CANCEL
    )
    complete_checkout(stripe_emulator, session.stripe_session_id)
    stripe_webhooks.deliver()
    tollgate.usage.record(id="call-1", customer="user-1", feature="api_calls", quantity=60)
    stripe_emulator.advance(32 * 86400)  # past the first period's end: renewed
    stripe_webhooks.deliver()
    with pytest.raises(NotFoundError):
        tollgate.products.draft_rerating("team")

    saved = tollgate.products.draft_save(
        "team", features={"api_calls": 50}, prices={"team-monthly": {"unit_amount": 2500}}
    )
    assert [(c.price, c.before, c.after) for c in saved.price_changes] == [
        ("team-monthly", {"unit_amount": 2000}, {"unit_amount": 2500})
    ]
    with time_machine.travel(datetime.fromtimestamp(stripe_emulator.clock.now(), UTC), tick=False):
        rerating = tollgate.products.draft_rerating("team", periods=2)

    assert isinstance(rerating, Rerating)
    assert (rerating.object, rerating.product, rerating.based_on, rerating.version, rerating.periods) == (
        "rerating",
        "team",
        1,
        2,
        2,
    )
    (row,) = rerating.subscribers
    assert isinstance(row, ReratedSubscription)
    assert (row.customer, row.version, row.currency, row.quantity, len(row.periods)) == (
        "user-1",
        1,
        "usd",
        1,
        1,
    )
    assert (row.today, row.draft, row.difference) == (2000, 2500, 500)
    assert all(isinstance(change, EntitlementChange) for change in row.entitlements)
    assert [(c.feature, c.change, c.before, c.after, c.used, c.below_use) for c in row.entitlements] == [
        ("api_calls", "lowered", 100, 50, 60, True),
        ("export", "lost", True, None, None, False),
    ]
    (cohort,) = rerating.cohorts
    assert isinstance(cohort, ReratingCohort)
    assert (
        cohort.version,
        cohort.subscriptions,
        cohort.higher,
        cohort.losing_features,
        cohort.below_use,
    ) == (1, 1, 1, 1, 1)
    assert [(t.currency, t.today, t.draft, t.difference) for t in rerating.totals] == [
        ("usd", 2000, 2500, 500)
    ]
    # Nothing was published: the price and the product are as they were.
    assert tollgate.prices.retrieve("team-monthly").unit_amount == 2000
    assert tollgate.products.retrieve("team").version == 1
