"""Moving subscribers between product versions through the Python client, on the live server with the Stripe
emulator: a customer subscribed on version 1 of a product, version 2 published by changing its features; a preview
says what the move would change and moves nothing, the move puts the subscription's item on version 2 (once: a
second run moves nobody), and a version never published is refused with `unknown_version`."""

import pytest
from tollgate_client import InvalidRequestError
from tollgate_client.types import (
    VersionChange,
    VersionMove,
    VersionMoveInvoice,
    VersionMoves,
    VersionPriceMove,
)

from billing.models import SubscriptionItem
from catalog.models import Price
from tests.clients.conftest import CANCEL, OK, complete_checkout

pytestmark = pytest.mark.django_db(transaction=True)

V1 = {"api_calls": 100, "export": True}
V2 = {"api_calls": 300, "ai_credits": 200}
V1_TO_V2 = [
    {"feature": "ai_credits", "before": None, "after": 200},
    {"feature": "api_calls", "before": 100, "after": 300},
    {"feature": "export", "before": True, "after": None},
]


def _changes(changes: list[VersionChange]) -> list[dict[str, object]]:
    return [{"feature": c.feature, "before": c.before, "after": c.after} for c in changes]


def _moves(answer: VersionMoves) -> list[tuple[object, ...]]:
    assert all(isinstance(move, VersionMove) for move in answer.moves)
    return [
        (m.subscription, m.customer, m.from_version, m.to_version, _changes(m.changes), m.moved)
        for m in answer.moves
    ]


@pytest.fixture
def subscribed(tollgate, stripe_emulator, stripe_webhooks) -> str:
    """`team` made at version 1 (`V1`), `user-1` subscribed to it through Checkout, then version 2 (`V2`)
    published; the subscription's id."""
    tollgate.features.create(key="api_calls", name="API calls", type="metered", unit="call")
    tollgate.features.create(key="export", name="Export", type="boolean")
    tollgate.features.create(key="ai_credits", name="AI credits", type="credits")
    assert tollgate.products.create(key="team", name="Team", features=V1).version == 1
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
    (subscription,) = tollgate.subscriptions.list(customer="user-1").data
    assert [item.version for item in subscription.items] == [1]
    updated = tollgate.products.update("team", features=V2)
    assert (updated.version, updated.features) == (2, V2)
    return subscription.id


def test_a_subscriber_previewed_then_moved_once(tollgate, subscribed):
    preview = tollgate.subscriptions.version_moves(product="team", to_version=2, preview=True)

    assert isinstance(preview, VersionMoves)
    assert (preview.object, preview.product, preview.to_version, preview.preview, preview.moved) == (
        "version_moves",
        "team",
        2,
        True,
        0,
    )
    assert _moves(preview) == [(subscribed, "user-1", 1, 2, V1_TO_V2, False)]
    assert [item.version for item in tollgate.subscriptions.retrieve(subscribed).items] == [1]

    moved = tollgate.subscriptions.version_moves(
        product="team", to_version=2, from_versions=[1], reason="new tier", idempotency_key="move-1"
    )

    assert (moved.preview, moved.moved) == (False, 1)
    assert _moves(moved) == [(subscribed, "user-1", 1, 2, V1_TO_V2, True)]
    assert [item.version for item in tollgate.subscriptions.retrieve(subscribed).items] == [2]
    assert list(SubscriptionItem.objects.values_list("product_version", flat=True)) == [2]
    replayed = tollgate.subscriptions.version_moves(
        product="team", to_version=2, from_versions=[1], reason="new tier", idempotency_key="move-1"
    )
    assert replayed.raw == moved.raw  # the first answer, replayed

    again = tollgate.subscriptions.version_moves(product="team", to_version=2, subscriptions=[subscribed])

    assert (again.moved, again.moves) == (0, [])
    assert [item.version for item in tollgate.subscriptions.retrieve(subscribed).items] == [2]


def test_a_version_never_published_is_refused(tollgate, subscribed):
    with pytest.raises(InvalidRequestError) as refused:
        tollgate.subscriptions.version_moves(product="team", to_version=7)

    assert (refused.value.status, refused.value.code) == (400, "unknown_version")
    with pytest.raises(InvalidRequestError) as not_a_plan:
        tollgate.subscriptions.version_moves(product="team", to_version=2, prices=["nope"])
    assert (not_a_plan.value.status, not_a_plan.value.code, not_a_plan.value.param) == (
        400,
        "unknown_price",
        "prices",
    )
    plan = tollgate.subscriptions.version_moves(
        product="team", to_version=2, prices=["team-monthly"], preview=True
    )
    assert [move.subscription for move in plan.moves] == [subscribed]
    assert [item.version for item in tollgate.subscriptions.retrieve(subscribed).items] == [1]


def test_a_version_that_reprices_moves_the_stripe_price_previewed_first(
    tollgate, subscribed, stripe_emulator, stripe_webhooks, stripe_sdk
):
    old = Price.objects.get(key="team-monthly").stripe_price_id
    tollgate.products.draft_save("team", prices={"team-monthly": {"unit_amount": 2500}})
    assert tollgate.products.draft_publish("team", version=3).version == 3
    new = Price.objects.get(key="team-monthly").stripe_price_id

    preview = tollgate.subscriptions.version_moves(product="team", to_version=3, preview=True)

    (move,) = preview.moves
    assert all(isinstance(price, VersionPriceMove) for price in move.prices)
    assert [(p.price, p.before, p.after, p.quantity) for p in move.prices] == [("team-monthly", old, new, 1)]
    assert (move.proration, move.effective_at) == ("now_prorate", None)
    assert isinstance(move.invoice, VersionMoveInvoice)
    assert (move.invoice.currency, move.invoice.lines[-1].amount) == ("usd", 2500)  # the renewal at 25.00
    assert move.invoice.amount_due == sum(line.amount for line in move.invoice.lines)

    moved = tollgate.subscriptions.version_moves(product="team", to_version=3)

    assert (moved.moved, moved.moves[0].invoice) == (1, None)
    live = stripe_sdk().v1.subscriptions.retrieve(
        SubscriptionItem.objects.get().subscription.stripe_subscription_id
    )
    assert [item.price.id for item in live["items"].data] == [new]
    stripe_webhooks.deliver()
    assert [item.version for item in tollgate.subscriptions.retrieve(subscribed).items] == [3]
