"""Money moves are two steps: a `*_request` tool previews the move and answers a one-time confirmation id, and
nothing moves until `move_confirm` — by a key with `can_confirm` — or an operator in the admin confirms it. The
move is made once: a second confirmation answers the stored result, a confirmation whose answer was lost is
continued under the same Stripe key; an expired or declined one is refused. Counted at Stripe (the emulator)."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from agents.models import MoveConfirmation
from agents.services.keys import agent_key_revoke
from agents.tools import ToolError, ToolRefused
from billing.models import Payment, Refund, Subscription
from core.actors import Actor
from core.models import AuditLogEntry
from stripe_gateway.client import install_http_client
from tests.agents.conftest import tool_calls
from tests.billing.payment_factories import paid_credit_packs
from tests.billing.test_lost_answers import Wire
from tests.e2e.test_subscription_lifecycle import _subscribe

pytestmark = pytest.mark.django_db

ASKS = ["customer_lookup", "refund_request", "subscription_cancel_request"]
CONFIRMS = ["move_confirm"]


@pytest.fixture
def paid(api, tenant_a, catalog, stripe_sdk):
    """user-1's paid payment of 30.00 (two credit packs), at Stripe."""
    return paid_credit_packs(api, tenant_a, stripe_sdk())


def _stripe_refunds(stripe_sdk, paid):
    refunds = stripe_sdk().v1.refunds.list({"payment_intent": paid["stripe_payment_intent_id"]}).data
    return [(refund.amount, refund.metadata["tollgate_payment"]) for refund in refunds]


def _nothing_refunded(stripe_sdk, paid):
    assert _stripe_refunds(stripe_sdk, paid) == []
    assert not Refund.objects.exists()
    payment = Payment.objects.get(pk=paid["id"])
    assert (payment.status, payment.amount_refunded) == ("succeeded", 0)


def test_a_refund_request_previews_and_refunds_nothing(tenant_a, paid, agent_key, call, stripe_sdk):
    asker = agent_key(tenant_a.project, tools=ASKS)

    with time_machine.travel(timezone.now(), tick=False):
        asked = call(asker, "refund_request", payment=paid["id"], amount=1200, reason="duplicate charge")
        expires_at = timezone.now() + timedelta(minutes=15)

    confirmation = MoveConfirmation.objects.get()
    assert asked == {
        "confirmation_id": confirmation.pk,
        "status": "pending",
        "preview": {
            "move": "refund",
            "payment": paid["id"],
            "customer": "user-1",
            "amount": 1200,
            "currency": "usd",
            "payment_amount": 3000,
            "refunded_before": 0,
            "refundable_after": 1800,
            "reason": "duplicate charge",
        },
        "expires_at": expires_at.isoformat().replace("+00:00", "Z"),
    }
    assert confirmation.pk.startswith("mvc_")
    assert (confirmation.status, confirmation.agent_key_id, confirmation.tool) == (
        "pending",
        asker.pk,
        "refund_request",
    )
    _nothing_refunded(stripe_sdk, paid)
    requested = AuditLogEntry.objects.get(action="move_confirmation.requested")
    assert (requested.actor_type, requested.actor_id, requested.target_id) == (
        "agent_key",
        asker.pk,
        confirmation.pk,
    )


def test_a_refund_request_is_checked_as_the_api_checks_a_refund(tenant_a, paid, agent_key, call, stripe_sdk):
    asker = agent_key(tenant_a.project, tools=ASKS)
    with pytest.raises(ToolError) as too_much:
        call(asker, "refund_request", payment=paid["id"], amount=3001, reason="x")
    assert (too_much.value.code, too_much.value.param, too_much.value.status) == (
        "invalid_amount",
        "amount",
        400,
    )
    assert not MoveConfirmation.objects.exists()


def test_a_key_that_may_not_confirm_is_refused_and_nothing_moves(tenant_a, paid, agent_key, call, stripe_sdk):
    asker = agent_key(tenant_a.project, tools=[*ASKS, *CONFIRMS])  # the tool, but not the right
    asked = call(asker, "refund_request", payment=paid["id"], reason="goodwill")
    unscoped = agent_key(tenant_a.project, tools=ASKS, can_confirm=True)  # the right, but not the tool

    with pytest.raises(ToolRefused) as no_right:
        call(asker, "move_confirm", confirmation_id=asked["confirmation_id"])
    with pytest.raises(ToolRefused) as no_tool:
        call(unscoped, "move_confirm", confirmation_id=asked["confirmation_id"])

    assert (no_right.value.code, no_right.value.status) == ("confirm_not_allowed", 403)
    assert no_tool.value.code == "tool_not_allowed"
    assert MoveConfirmation.objects.get().status == "pending"
    _nothing_refunded(stripe_sdk, paid)
    assert tool_calls(asker) == [
        ("refund_request", "ok", ""),
        ("move_confirm", "refused", "confirm_not_allowed"),
    ]
    assert tool_calls(unscoped) == [("move_confirm", "refused", "tool_not_allowed")]


def test_a_confirmed_refund_is_made_once_however_often_it_is_confirmed(
    tenant_a, paid, agent_key, call, stripe_sdk
):
    asker = agent_key(tenant_a.project, tools=ASKS)
    confirmer = agent_key(tenant_a.project, tools=CONFIRMS, can_confirm=True, name="supervisor")
    asked = call(asker, "refund_request", payment=paid["id"], amount=1200, reason="duplicate charge")

    made = call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])
    again = call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])

    assert again == made
    assert (made["confirmation_id"], made["tool"], made["status"]) == (
        asked["confirmation_id"],
        "refund_request",
        "confirmed",
    )
    assert made["decided_by"] == f"agent_key:{confirmer.pk} {confirmer.prefix}…"
    assert (made["result"]["id"], made["result"]["status"], made["result"]["amount_refunded"]) == (
        paid["id"],
        "partially_refunded",
        1200,
    )
    assert _stripe_refunds(stripe_sdk, paid) == [(1200, paid["id"])]
    refund = Refund.objects.get()
    assert (refund.amount, refund.operation, refund.status) == (
        1200,
        f"agent:{asked['confirmation_id']}",
        "succeeded",
    )
    audited = AuditLogEntry.objects.filter(
        action__in=["move_confirmation.confirmed", "payment.refund_requested"]
    ).values_list("action", "actor_type", "actor_id")
    assert sorted(audited) == [
        ("move_confirmation.confirmed", "agent_key", confirmer.pk),
        ("payment.refund_requested", "agent_key", confirmer.pk),
    ]


def test_a_confirmation_whose_answer_was_lost_is_continued_under_the_same_stripe_key(
    tenant_a, paid, agent_key, call, stripe_sdk, stripe_emulator, settings
):
    settings.STRIPE_MAX_NETWORK_RETRIES = 2
    wire = Wire(stripe_emulator)
    install_http_client(wire)  # the autouse emulator fixture uninstalls it after the test
    wire.lose("POST", "/v1/refunds", times=3)  # the first attempt and the SDK's two retries: Stripe acted
    asker = agent_key(tenant_a.project, tools=ASKS)
    confirmer = agent_key(tenant_a.project, tools=CONFIRMS, can_confirm=True)
    asked = call(asker, "refund_request", payment=paid["id"], reason="goodwill")

    with pytest.raises(ToolError) as lost:
        call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])
    assert lost.value.status >= 500
    confirmation = MoveConfirmation.objects.get()
    assert (confirmation.status, confirmation.result) == ("confirmed", None)  # outcome unknown: not failed

    made = call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])

    assert (made["result"]["status"], made["result"]["amount_refunded"]) == ("refunded", 3000)
    assert _stripe_refunds(stripe_sdk, paid) == [(3000, paid["id"])]
    keys = {key for method, path, key in wire.reached if (method, path) == ("POST", "/v1/refunds")}
    assert keys == {f"refund:agent:{asked['confirmation_id']}"}


def test_an_expired_confirmation_is_refused_and_nothing_moves(tenant_a, paid, agent_key, call, stripe_sdk):
    asker = agent_key(tenant_a.project, tools=ASKS)
    confirmer = agent_key(tenant_a.project, tools=CONFIRMS, can_confirm=True)
    asked = call(asker, "refund_request", payment=paid["id"], reason="goodwill")

    with (
        time_machine.travel(timezone.now() + timedelta(minutes=15, seconds=1)),
        pytest.raises(ToolError) as expired,
    ):
        call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])

    assert (expired.value.code, expired.value.status) == ("confirmation_expired", 409)
    assert MoveConfirmation.objects.get().status == "expired"
    _nothing_refunded(stripe_sdk, paid)
    assert tool_calls(confirmer) == [("move_confirm", "failed", "confirmation_expired")]


def test_a_move_refused_at_confirmation_fails_and_answers_its_error_again(
    api, tenant_a, paid, agent_key, call, stripe_sdk
):
    asker = agent_key(tenant_a.project, tools=ASKS)
    confirmer = agent_key(tenant_a.project, tools=CONFIRMS, can_confirm=True)
    asked = call(asker, "refund_request", payment=paid["id"], reason="goodwill")
    api.post(f"/api/v1/payments/{paid['id']}/refund", {}, key=tenant_a.key)  # refunded meanwhile, all of it

    for _ in range(2):
        with pytest.raises(ToolError) as refused:
            call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])
        assert refused.value.code == "payment_not_refundable"

    confirmation = MoveConfirmation.objects.get()
    assert confirmation.status == "failed"
    assert confirmation.result["error"]["code"] == "payment_not_refundable"
    assert _stripe_refunds(stripe_sdk, paid) == [(3000, paid["id"])]  # the API's refund only


def _operator(role: str) -> Client:
    user = User.objects.create_user(f"{role}-op", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def _admin_action(client, action, confirmation_id, reason="checked with the customer"):
    return client.post(
        "/admin/agents/moveconfirmation/",
        {"action": action, "_selected_action": [confirmation_id], "apply": "1", "reason": reason},
    )


def test_an_operator_confirms_in_the_admin_and_the_move_is_made_once(
    tenant_a, paid, agent_key, call, stripe_sdk, django_capture_on_commit_callbacks
):
    asker = agent_key(tenant_a.project, tools=ASKS)
    asked = call(asker, "refund_request", payment=paid["id"], amount=500, reason="late delivery")
    finance, admin = _operator("finance"), _operator("admin")

    with django_capture_on_commit_callbacks(execute=True):
        _admin_action(finance, "confirm", asked["confirmation_id"])  # finance may not: no such action for it
        assert MoveConfirmation.objects.get().status == "pending"
        for _ in range(2):
            response = _admin_action(admin, "confirm", asked["confirmation_id"])
            assert response.status_code == 302

    confirmation = MoveConfirmation.objects.get()
    operator = User.objects.get(username="admin-op")
    assert (confirmation.status, confirmation.decided_by) == ("confirmed", f"user:{operator.pk} admin-op")
    assert (confirmation.result["status"], confirmation.result["amount_refunded"]) == (
        "partially_refunded",
        500,
    )
    assert _stripe_refunds(stripe_sdk, paid) == [(500, paid["id"])]
    confirmed = AuditLogEntry.objects.get(action="move_confirmation.confirmed")
    assert (confirmed.actor_type, confirmed.actor_id, confirmed.reason) == (
        "user",
        str(operator.pk),
        "checked with the customer",
    )
    refund_row = AuditLogEntry.objects.get(action="payment.refund_requested")
    assert (refund_row.actor_type, refund_row.actor_id) == ("user", str(operator.pk))


def test_a_declined_move_is_never_made(tenant_a, paid, agent_key, call, stripe_sdk):
    asker = agent_key(tenant_a.project, tools=ASKS)
    confirmer = agent_key(tenant_a.project, tools=CONFIRMS, can_confirm=True)
    asked = call(asker, "refund_request", payment=paid["id"], reason="goodwill")

    response = _admin_action(_operator("admin"), "decline", asked["confirmation_id"], reason="not eligible")
    assert response.status_code == 302
    with pytest.raises(ToolError) as declined:
        call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])

    assert declined.value.code == "confirmation_declined"
    assert MoveConfirmation.objects.get().status == "declined"
    _nothing_refunded(stripe_sdk, paid)
    row = AuditLogEntry.objects.get(action="move_confirmation.declined")
    assert (row.actor_type, row.reason) == ("user", "not eligible")


def test_a_subscription_cancellation_is_asked_then_made_once(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk, agent_key, call
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    asker = agent_key(tenant_a.project, tools=ASKS)
    confirmer = agent_key(tenant_a.project, tools=CONFIRMS, can_confirm=True)

    asked = call(asker, "subscription_cancel_request", subscription=subscription.pk)

    period_end = subscription.current_period_end.isoformat().replace("+00:00", "Z")
    assert asked["preview"] == {
        "move": "subscription_cancel",
        "subscription": subscription.pk,
        "customer": "user-1",
        "product": "pro",
        "status": "active",
        "at_period_end": True,
        "current_period_end": period_end,
        "ends_at": period_end,
        "cancel_at_period_end_before": False,
    }
    at_stripe = stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    assert at_stripe.cancel_at_period_end is False  # nothing moved

    made = call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])
    again = call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])

    assert again == made
    assert (made["result"]["id"], made["result"]["cancel_at_period_end"]) == (subscription.pk, True)
    at_stripe = stripe_sdk().v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    assert (at_stripe.status, at_stripe.cancel_at_period_end) == ("active", True)
    assert list(
        AuditLogEntry.objects.filter(action="subscription.cancel_scheduled").values_list(
            "actor_type", "actor_id"
        )
    ) == [("agent_key", confirmer.pk)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_confirmations_at_once_make_one_refund(api, tenant_a, catalog, stripe_sdk, agent_key):
    """Four confirmations of one move on real threads: one makes it, the others answer its result or
    `move_in_progress`; Stripe has one refund, and a later confirmation answers the stored result."""
    import threading

    from django.db import connection

    from agents.tools import tool_call

    paid = paid_credit_packs(api, tenant_a, stripe_sdk())
    asker = agent_key(tenant_a.project, tools=ASKS)
    confirmer = agent_key(tenant_a.project, tools=CONFIRMS, can_confirm=True)
    asked = tool_call(
        key=asker, name="refund_request", arguments={"payment": paid["id"], "amount": 700, "reason": "x"}
    )
    barrier = threading.Barrier(4)
    answers: list[str] = []

    def confirm() -> None:
        try:
            barrier.wait()
            made = tool_call(
                key=confirmer, name="move_confirm", arguments={"confirmation_id": asked["confirmation_id"]}
            )
            answers.append(made["result"]["status"])
        except ToolError as exc:
            answers.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(answers) <= {"partially_refunded", "move_in_progress"}
    assert "partially_refunded" in answers
    assert _stripe_refunds(stripe_sdk, paid) == [(700, paid["id"])]
    final = tool_call(
        key=confirmer, name="move_confirm", arguments={"confirmation_id": asked["confirmation_id"]}
    )
    assert (final["result"]["amount_refunded"], Refund.objects.count()) == (700, 1)


def test_a_key_never_confirms_a_move_it_asked_for(tenant_a, paid, agent_key, call, stripe_sdk):
    """No key alone moves money: one with every right still needs a second key, or a person."""
    alone = agent_key(tenant_a.project, tools=[*ASKS, *CONFIRMS], can_confirm=True)
    asked = call(alone, "refund_request", payment=paid["id"], reason="goodwill")

    with pytest.raises(ToolError) as own:
        call(alone, "move_confirm", confirmation_id=asked["confirmation_id"])

    assert (own.value.code, own.value.status) == ("confirm_own_move", 403)
    assert MoveConfirmation.objects.get().status == "pending"
    _nothing_refunded(stripe_sdk, paid)
    confirmer = agent_key(tenant_a.project, tools=CONFIRMS, can_confirm=True, name="supervisor")
    assert call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])["status"] == "confirmed"
    assert _stripe_refunds(stripe_sdk, paid) == [(3000, paid["id"])]


def test_revoking_a_key_declines_the_moves_it_left_pending(tenant_a, paid, agent_key, call, stripe_sdk):
    asker = agent_key(tenant_a.project, tools=ASKS)
    asked = call(asker, "refund_request", payment=paid["id"], reason="goodwill")
    agent_key_revoke(actor=Actor.system("tests"), agent_key=asker, reason="leaked")

    confirmation = MoveConfirmation.objects.get()
    assert (confirmation.status, confirmation.decided_by) == ("declined", "system: tests")
    confirmer = agent_key(tenant_a.project, tools=CONFIRMS, can_confirm=True, name="supervisor")
    with pytest.raises(ToolError) as declined:
        call(confirmer, "move_confirm", confirmation_id=asked["confirmation_id"])
    assert declined.value.code == "confirmation_declined"
    _nothing_refunded(stripe_sdk, paid)
