"""Refunds settle on Stripe's status (issue #27): a refund Stripe holds pending and succeeds later, one that
succeeds and then fails (`refund.failed` gives the money back), one made at Stripe directly, and their events in
any order — each ends with Stripe's id and status here, the payment's refunded amount as Stripe counts it, and
the revenue figures with it. Stripe's delayed outcomes are the emulator's test cards (Stripe's own:
4000000000007726 pending, 4000000000005126 failing), moved on by advancing its clock past their delay."""

import json
from typing import Any

import pytest

from billing.models import Payment, Refund
from tests.billing.payment_factories import paid_credit_packs


def _revenue_refunds(api, tenant):
    return sum(row["refunds"] for row in api.get("/api/v1/metrics/revenue", key=tenant.key).json()["data"])


def _state(payment_id):
    payment = Payment.objects.get(pk=payment_id)
    refunds = sorted(Refund.objects.filter(payment=payment).values_list("amount", "status", "failure_reason"))
    return payment.status, payment.amount_refunded, refunds


def test_a_refund_that_fails_later_gives_the_money_back(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, stripe_emulator
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk, "pm_card_refundFail")
    response = api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 1200}, key=tenant_a.key)
    assert response.status_code == 200
    stripe_webhooks.deliver()
    assert _state(paid["id"]) == ("partially_refunded", 1200, [(1200, "succeeded", "")])
    assert _revenue_refunds(api, tenant_a) == 1200

    stripe_emulator.advance(61)  # Stripe's "some time later"
    stripe_webhooks.deliver()

    assert _state(paid["id"]) == ("succeeded", 0, [(1200, "failed", "expired_or_canceled_card")])
    charge = sdk.v1.charges.list({"payment_intent": paid["stripe_payment_intent_id"]}).data[0]
    assert charge.amount_refunded == 0
    assert _revenue_refunds(api, tenant_a) == 0
    # The money is back, so it can be refunded again.
    again = api.post(f"/api/v1/payments/{paid['id']}/refund", {}, key=tenant_a.key)
    assert again.status_code == 200
    assert (again.json()["status"], again.json()["amount_refunded"]) == ("refunded", 3000)


def test_a_pending_refund_counts_at_once_and_settles_on_its_event(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, stripe_emulator
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk, "pm_card_pendingRefund")
    response = api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 500}, key=tenant_a.key)
    assert (response.json()["status"], response.json()["amount_refunded"]) == ("partially_refunded", 500)
    assert _state(paid["id"]) == ("partially_refunded", 500, [(500, "pending", "")])
    assert _revenue_refunds(api, tenant_a) == 500  # as Stripe counts it in the charge's amount_refunded

    stripe_emulator.advance(61)
    stripe_webhooks.deliver()

    assert _state(paid["id"]) == ("partially_refunded", 500, [(500, "succeeded", "")])


def test_a_refund_made_at_stripe_directly_is_mirrored(api, tenant_a, catalog, stripe_sdk, stripe_webhooks):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk, "pm_card_visa")
    stripe_refund = sdk.v1.refunds.create({"payment_intent": paid["stripe_payment_intent_id"], "amount": 800})

    stripe_webhooks.deliver()

    assert _state(paid["id"]) == ("partially_refunded", 800, [(800, "succeeded", "")])
    assert Refund.objects.get().stripe_refund_id == stripe_refund.id
    assert _revenue_refunds(api, tenant_a) == 800


class Captured:
    """The emulator's deliveries kept instead of sent, to deliver them in an order of the test's choosing."""

    def __init__(self, bridge: Any) -> None:
        self.bridge = bridge
        self.kept: list[tuple[str, bytes, Any]] = []
        bridge.emulator.webhooks.sender = lambda url, body, headers: (
            self.kept.append((url, body, headers)) or 200
        )

    def types(self) -> list[str]:
        self.bridge.emulator.flush_webhooks()
        return [json.loads(body)["type"] for _, body, _ in self.kept]

    def deliver(self, order: list[int]) -> None:
        for index in order:
            url, body, headers = self.kept[index]
            assert self.bridge.send(url, body, headers) == 200


@pytest.mark.parametrize("order", ["reversed", "twice"])
def test_refund_events_in_any_order_end_as_stripe_has_them(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, stripe_emulator, order
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk, "pm_card_refundFail")
    stripe_webhooks.deliver()
    captured = Captured(stripe_webhooks)
    # Made at Stripe, so only its events tell Tollgate about it: created (succeeded), then failed.
    sdk.v1.refunds.create({"payment_intent": paid["stripe_payment_intent_id"], "amount": 900})
    stripe_emulator.advance(61)
    sdk.v1.refunds.list({"payment_intent": paid["stripe_payment_intent_id"]})
    types = captured.types()
    assert types == ["refund.created", "charge.refunded", "refund.failed", "charge.refund.updated"]

    indexes = list(range(len(types)))
    captured.deliver(indexes[::-1] if order == "reversed" else indexes + indexes[:2])

    assert _state(paid["id"]) == ("succeeded", 0, [(900, "failed", "expired_or_canceled_card")])


def test_a_refund_stripe_refuses_because_we_were_behind_is_a_4xx_and_we_catch_up(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    """Stripe has a refund we have not heard of yet: our check lets 1,000 through, Stripe refuses it as more
    than is left. A 5xx would have the tenant retry in vain; the answer is what is really left."""
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk, "pm_card_visa")
    stripe_webhooks.deliver()
    stripe_webhooks.emulator.webhooks.sender = lambda *args: 200  # its events lost
    sdk.v1.refunds.create({"payment_intent": paid["stripe_payment_intent_id"], "amount": 2500})

    refused = api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 1000}, key=tenant_a.key)

    assert refused.status_code == 400, refused.content
    assert (refused.json()["error"]["code"], refused.json()["error"]["message"]) == (
        "invalid_amount",
        "amount must be between 1 and 500.",
    )
    assert _state(paid["id"]) == (
        "partially_refunded",
        2500,
        [(1000, "failed", "amount_too_large"), (2500, "succeeded", "")],
    )
    rest = api.post(f"/api/v1/payments/{paid['id']}/refund", {}, key=tenant_a.key)
    assert (rest.json()["status"], rest.json()["amount_refunded"]) == ("refunded", 3000)
    assert sorted(
        r.amount for r in sdk.v1.refunds.list({"payment_intent": paid["stripe_payment_intent_id"]})
    ) == [
        500,
        2500,
    ]
