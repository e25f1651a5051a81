"""Tenant writes retried after Stripe acted and its answer never came back (issue #27).

The wire between Tollgate and Stripe is a boundary we do not own: `Wire` lets chosen requests reach the
emulator and then loses the answer (`lose`, as many times in a row as asked: 3 exceeds the SDK's 2 retries, so
Tollgate answers 5xx and the tenant retries with the same Idempotency-Key, as the guide says), or stops the
process right after Stripe acted (`die`: a BaseException, as a SIGKILL leaves things: no handler runs, nothing
after the call commits). Each retry must make exactly one effect at Stripe, counted at Stripe through the SDK,
and answer what the completed operation answers — never a 409 about its own first attempt.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import stripe
import time_machine
from django.utils import timezone

from billing.models import Payment, Refund, Subscription
from billing.tasks import refunds_settle_sweep
from core.models import IdempotencyKey
from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from stripe_emulator.sdk import EmulatorHTTPClient
from stripe_gateway.client import install_http_client
from tests.billing.payment_factories import paid_credit_packs


class ProcessKilled(BaseException):
    """The web process died (SIGKILL) right after Stripe acted: no `except`, no `finally` of ours runs."""


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    times: int
    kill: bool = False
    meanwhile: Callable[[], Any] | None = None  # what lands at Stripe after it acted, before a retry


@dataclass
class Wire(EmulatorHTTPClient):
    emulator: Any
    faults: list[Fault] = field(default_factory=list)
    reached: list[tuple[str, str, str]] = field(default_factory=list)  # what Stripe received

    def __post_init__(self) -> None:
        super().__init__(self.emulator)

    def lose(self, method: str, path: str, *, times: int, meanwhile: Callable[[], Any] | None = None) -> None:
        self.faults.append(Fault(method, re.compile(path), times, meanwhile=meanwhile))

    def die(self, method: str, path: str) -> None:
        self.faults.append(Fault(method, re.compile(path), 1, kill=True))

    def request(self, method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any) -> Any:
        path = "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0]
        answer = super().request(method, url, headers, post_data, **kwargs)
        self.reached.append((method.upper(), path, (headers or {}).get("Idempotency-Key", "")))
        for fault in self.faults:
            if fault.times and fault.method == method.upper() and fault.path.fullmatch(path):
                fault.times -= 1
                if fault.kill:
                    raise ProcessKilled
                if fault.meanwhile is not None:
                    fault.meanwhile()
                # As the SDK's requests client reports a reset connection: retryable, under the same key.
                raise stripe.APIConnectionError("connection reset by peer (answer lost)", should_retry=True)
        return answer

    def _sleep_time_seconds(self, num_retries: int, response: Any = None) -> float:
        return 0.0  # the SDK's backoff between retries, without the wait


@pytest.fixture
def wire(stripe_emulator, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 2  # production's: the SDK retries twice under the same key
    made = Wire(stripe_emulator)
    install_http_client(made)  # the autouse emulator fixture uninstalls it after the test
    return made


def _refund(api, tenant, payment_id, body, key):
    return api.post(
        f"/api/v1/payments/{payment_id}/refund", body, key=tenant.key, headers={"Idempotency-Key": key}
    )


def _stripe_refunds(sdk, intent):
    return sorted(r.amount for r in sdk.v1.refunds.list({"payment_intent": intent}).data)


@pytest.mark.parametrize(
    ("body", "amount", "status"), [({"amount": 1000}, 1000, "partially_refunded"), ({}, 3000, "refunded")]
)
def test_a_refund_retried_after_three_lost_answers_refunds_once(
    api, tenant_a, catalog, stripe_sdk, wire, body, amount, status
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)
    wire.lose("POST", "/v1/refunds", times=3)

    first = _refund(api, tenant_a, paid["id"], body, "refund-1")

    assert first.status_code == 503, first.content
    assert first.json()["error"]["code"] == "provider_unavailable"
    assert _stripe_refunds(sdk, paid["stripe_payment_intent_id"]) == [amount]  # Stripe acted, once
    row = Refund.objects.get()
    assert (row.status, row.stripe_refund_id, row.amount) == ("unknown", "", amount)
    # The payment claims nothing it has not learnt from Stripe.
    assert Payment.objects.get(pk=paid["id"]).amount_refunded == 0

    retry = _refund(api, tenant_a, paid["id"], body, "refund-1")

    assert retry.status_code == 200, retry.content
    assert (retry.json()["status"], retry.json()["amount_refunded"]) == (status, amount)
    assert _stripe_refunds(sdk, paid["stripe_payment_intent_id"]) == [amount]
    row.refresh_from_db()
    stripe_refund = sdk.v1.refunds.list({"payment_intent": paid["stripe_payment_intent_id"]}).data[0]
    assert (row.status, row.stripe_refund_id) == ("succeeded", stripe_refund.id)
    assert Refund.objects.count() == 1
    # Every attempt, the SDK's retries included, carried the one key of the operation.
    keys = {key for method, path, key in wire.reached if (method, path) == ("POST", "/v1/refunds")}
    assert len(keys) == 1
    # A third call replays the stored answer.
    again = _refund(api, tenant_a, paid["id"], body, "refund-1")
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"


def test_a_refund_retry_with_another_amount_under_the_same_key_is_409_and_refunds_nothing_more(
    api, tenant_a, catalog, stripe_sdk, wire
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)
    wire.lose("POST", "/v1/refunds", times=3)
    assert _refund(api, tenant_a, paid["id"], {"amount": 1000}, "refund-1").status_code == 503

    other = _refund(api, tenant_a, paid["id"], {"amount": 500}, "refund-1")

    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert _stripe_refunds(sdk, paid["stripe_payment_intent_id"]) == [1000]
    assert Refund.objects.count() == 1


def test_refunds_without_a_key_are_each_their_own(api, tenant_a, catalog, stripe_sdk, wire):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)
    for _ in range(2):
        response = api.post(f"/api/v1/payments/{paid['id']}/refund", {"amount": 500}, key=tenant_a.key)
        assert response.status_code == 200
    assert _stripe_refunds(sdk, paid["stripe_payment_intent_id"]) == [500, 500]
    assert Payment.objects.get(pk=paid["id"]).amount_refunded == 1000


def test_a_process_killed_after_stripe_refunded_is_settled_by_its_retry(
    api, tenant_a, catalog, stripe_sdk, wire, settings
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)
    wire.die("POST", "/v1/refunds")
    with pytest.raises(ProcessKilled):
        _refund(api, tenant_a, paid["id"], {"amount": 700}, "refund-k")
    assert Refund.objects.get().status == "pending"
    # The dead process's claim holds the key until the lock timeout; then the retry takes it over.
    busy = _refund(api, tenant_a, paid["id"], {"amount": 700}, "refund-k")
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "idempotency_key_in_use"

    with time_machine.travel(timezone.now() + settings.IDEMPOTENCY_LOCK_TIMEOUT + timedelta(seconds=1)):
        retry = _refund(api, tenant_a, paid["id"], {"amount": 700}, "refund-k")

    assert retry.status_code == 200, retry.content
    assert retry.json()["amount_refunded"] == 700
    assert _stripe_refunds(sdk, paid["stripe_payment_intent_id"]) == [700]
    assert Refund.objects.get().status == "succeeded"


def test_a_process_killed_after_stripe_refunded_is_settled_by_the_sweep(
    api, tenant_a, catalog, stripe_sdk, wire
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)
    wire.die("POST", "/v1/refunds")
    with pytest.raises(ProcessKilled):
        _refund(api, tenant_a, paid["id"], {"amount": 700}, "refund-k")
    row = Refund.objects.get()

    assert refunds_settle_sweep() == 0  # too fresh: its attempt may still be in flight

    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert refunds_settle_sweep() == 1

    row.refresh_from_db()
    stripe_refund = sdk.v1.refunds.list({"payment_intent": paid["stripe_payment_intent_id"]}).data[0]
    assert (row.status, row.stripe_refund_id, row.amount) == ("succeeded", stripe_refund.id, 700)
    payment = Payment.objects.get(pk=paid["id"])
    assert (payment.status, payment.amount_refunded) == ("partially_refunded", 700)
    assert not Refund.objects.filter(status__in=["pending", "unknown"]).exists()


def test_a_refund_that_never_reached_stripe_is_failed_by_the_sweep_and_sent_by_its_retry(
    api, tenant_a, catalog, stripe_sdk, wire
):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)
    # The process died before its request left: the row is there, Stripe has nothing.
    Refund.objects.create(
        project=tenant_a.project,
        payment_id=paid["id"],
        amount=400,
        currency="usd",
        operation="late-payment:test",
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert refunds_settle_sweep() == 1
    row = Refund.objects.get()
    assert (row.status, row.failure_reason, row.stripe_refund_id) == ("failed", "not_sent", "")
    assert _stripe_refunds(sdk, paid["stripe_payment_intent_id"]) == []
    assert Payment.objects.get(pk=paid["id"]).amount_refunded == 0


def test_a_refund_made_at_stripe_directly_is_mirrored_by_the_sweep_of_a_lost_one(
    api, tenant_a, catalog, stripe_sdk, wire
):
    """The sweep reads every refund of the payment: one an operator made in Stripe's dashboard comes along."""
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)
    wire.lose("POST", "/v1/refunds", times=3)
    assert _refund(api, tenant_a, paid["id"], {"amount": 300}, "r").status_code == 503
    sdk.v1.refunds.create({"payment_intent": paid["stripe_payment_intent_id"], "amount": 200})

    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert refunds_settle_sweep() == 1

    assert sorted(Refund.objects.values_list("amount", "status")) == [(200, "succeeded"), (300, "succeeded")]
    assert Payment.objects.get(pk=paid["id"]).amount_refunded == 500


# --- subscriptions ----------------------------------------------------------------------------------------


def _saved_card_customer(api, tenant, sdk, external_id="user-1"):
    api.post("/api/v1/customers", {"external_id": external_id}, key=tenant.key)
    stripe_customer = customer_ensure_stripe(
        customer=Customer.objects.get(project=tenant.project, external_id=external_id)
    )
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": pm}})
    return stripe_customer


def _create(api, tenant, key):
    return api.post(
        "/api/v1/subscriptions",
        {"customer": "user-1", "price": "pro-monthly"},
        key=tenant.key,
        headers={"Idempotency-Key": key},
    )


def _stripe_subscriptions(sdk, stripe_customer):
    return [s.id for s in sdk.v1.subscriptions.list({"customer": stripe_customer, "status": "all"}).data]


@pytest.mark.parametrize("webhooks_first", [False, True], ids=["mirror-behind", "mirror-caught-up"])
def test_post_subscriptions_retried_after_three_lost_answers_creates_one(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, wire, webhooks_first
):
    sdk = stripe_sdk()
    stripe_customer = _saved_card_customer(api, tenant_a, sdk)
    wire.lose("POST", "/v1/subscriptions", times=3)

    first = _create(api, tenant_a, "sub-1")

    assert first.status_code == 503, first.content
    created = _stripe_subscriptions(sdk, stripe_customer)
    assert len(created) == 1
    if webhooks_first:  # the mirror knows the subscription before the retry: still not `already_subscribed`
        stripe_webhooks.deliver()
        assert Subscription.objects.filter(stripe_subscription_id=created[0]).exists()

    retry = _create(api, tenant_a, "sub-1")

    assert retry.status_code == 201, retry.content
    assert retry.json()["stripe_subscription_id"] == created[0]
    assert retry.json()["status"] == "active"
    assert _stripe_subscriptions(sdk, stripe_customer) == created
    # Another key is another request: that one is refused, nothing created.
    other = _create(api, tenant_a, "sub-2")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "already_subscribed"
    assert _stripe_subscriptions(sdk, stripe_customer) == created


def _subscribed(api, tenant, sdk, stripe_webhooks):
    stripe_customer = _saved_card_customer(api, tenant, sdk)
    created = _create(api, tenant, "setup")
    assert created.status_code == 201, created.content
    stripe_webhooks.deliver()
    return created.json(), stripe_customer


def test_cancel_now_retried_after_three_lost_answers_answers_the_canceled_subscription(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, wire
):
    sdk = stripe_sdk()
    subscription, _ = _subscribed(api, tenant_a, sdk, stripe_webhooks)
    sid = subscription["stripe_subscription_id"]
    wire.lose("DELETE", f"/v1/subscriptions/{sid}", times=3)
    path = f"/api/v1/subscriptions/{subscription['id']}/cancel"
    headers = {"Idempotency-Key": "cancel-1"}

    first = api.post(path, {"at_period_end": False}, key=tenant_a.key, headers=headers)

    assert first.status_code == 503, first.content
    assert sdk.v1.subscriptions.retrieve(sid).status == "canceled"
    stripe_webhooks.deliver()  # the mirror learns of the cancellation before the tenant retries
    assert Subscription.objects.get(pk=subscription["id"]).status == "canceled"

    retry = api.post(path, {"at_period_end": False}, key=tenant_a.key, headers=headers)

    assert retry.status_code == 200, retry.content
    assert retry.json()["status"] == "canceled"
    deletes = [r for r in wire.reached if r[:2] == ("DELETE", f"/v1/subscriptions/{sid}")]
    assert len(deletes) == 3  # the first attempt and the SDK's two retries; the retry read Stripe instead


def test_a_lone_lost_answer_of_a_cancel_is_not_a_502(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, wire
):
    """The SDK's own retry of the DELETE meets Stripe's refusal to cancel a canceled subscription."""
    sdk = stripe_sdk()
    subscription, _ = _subscribed(api, tenant_a, sdk, stripe_webhooks)
    sid = subscription["stripe_subscription_id"]
    wire.lose("DELETE", f"/v1/subscriptions/{sid}", times=1)

    response = api.post(
        f"/api/v1/subscriptions/{subscription['id']}/cancel", {"at_period_end": False}, key=tenant_a.key
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "canceled"
    assert sdk.v1.subscriptions.retrieve(sid).status == "canceled"


def test_resume_retried_after_three_lost_answers_answers_the_resumed_subscription(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, wire
):
    sdk = stripe_sdk()
    subscription, _ = _subscribed(api, tenant_a, sdk, stripe_webhooks)
    sid = subscription["stripe_subscription_id"]
    scheduled = api.post(f"/api/v1/subscriptions/{subscription['id']}/cancel", {}, key=tenant_a.key)
    assert scheduled.json()["cancel_at_period_end"] is True
    stripe_webhooks.deliver()
    wire.lose("POST", f"/v1/subscriptions/{sid}", times=3)
    path = f"/api/v1/subscriptions/{subscription['id']}/resume"
    headers = {"Idempotency-Key": "resume-1"}

    first = api.post(path, {}, key=tenant_a.key, headers=headers)

    assert first.status_code == 503, first.content
    assert sdk.v1.subscriptions.retrieve(sid).cancel_at_period_end is False
    stripe_webhooks.deliver()

    retry = api.post(path, {}, key=tenant_a.key, headers=headers)

    assert retry.status_code == 200, retry.content
    assert (retry.json()["status"], retry.json()["cancel_at_period_end"]) == ("active", False)
    updates = {
        key for method, path_, key in wire.reached if (method, path_) == ("POST", f"/v1/subscriptions/{sid}")
    }
    assert len(updates) == 2  # the cancel at period end, and the resume under its operation's one key
    # Without the key, resuming what is not scheduled to cancel is refused, and changes nothing.
    plain = api.post(path, {}, key=tenant_a.key)
    assert plain.status_code == 409
    assert plain.json()["error"]["code"] == "nothing_to_resume"


def _quantity_at_stripe(sdk, sid):
    return sdk.v1.subscriptions.retrieve(sid)["items"].data[0].quantity


def test_a_change_whose_answer_is_lost_once_is_sent_again_once_under_its_key(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, wire
):
    """The SDK's own retry is answered from Stripe's idempotency record (`Idempotent-Replayed`): that is the
    first attempt's answer, the change made, not a change undone since."""
    sdk = stripe_sdk()
    subscription, _ = _subscribed(api, tenant_a, sdk, stripe_webhooks)
    sid = subscription["stripe_subscription_id"]
    wire.lose("POST", f"/v1/subscriptions/{sid}", times=1)

    response = api.patch(f"/api/v1/subscriptions/{subscription['id']}", {"quantity": 3}, key=tenant_a.key)

    assert response.status_code == 200, response.content
    assert response.json()["quantity"] == 3
    assert _quantity_at_stripe(sdk, sid) == 3
    updates = [
        key for method, path, key in wire.reached if (method, path) == ("POST", f"/v1/subscriptions/{sid}")
    ]
    assert len(updates) == 2  # the attempt whose answer was lost, and one more under the same key
    assert len(set(updates)) == 1
    assert updates[0].startswith(f"subscription:{subscription['id']}:change:")


def test_a_change_landing_after_a_lost_answer_is_not_overwritten_by_its_retry(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks, wire
):
    """3 seats reach Stripe, the answer is lost; before the SDK retries, someone else sets 5 seats at Stripe.
    The retry is answered from Stripe's idempotency record: Tollgate's change was made, and 5 stands."""
    sdk = stripe_sdk()
    subscription, _ = _subscribed(api, tenant_a, sdk, stripe_webhooks)
    sid = subscription["stripe_subscription_id"]
    item = sdk.v1.subscriptions.retrieve(sid)["items"].data[0].id
    other = stripe_sdk()

    def five_seats() -> None:
        other.v1.subscriptions.update(sid, {"items": [{"id": item, "quantity": 5}]})

    wire.lose("POST", f"/v1/subscriptions/{sid}", times=1, meanwhile=five_seats)

    response = api.patch(f"/api/v1/subscriptions/{subscription['id']}", {"quantity": 3}, key=tenant_a.key)

    assert response.status_code == 200, response.content
    assert _quantity_at_stripe(sdk, sid) == 5
    updates = [
        key for method, path, key in wire.reached if (method, path) == ("POST", f"/v1/subscriptions/{sid}")
    ]
    assert len(updates) == 2
    assert len(set(updates)) == 1
    stripe_webhooks.deliver()
    assert Subscription.objects.get(pk=subscription["id"]).quantity == 5


def test_an_idempotency_key_reused_after_its_ttl_is_a_new_operation(api, tenant_a, catalog, stripe_sdk, wire):
    sdk = stripe_sdk()
    paid = paid_credit_packs(api, tenant_a, sdk)
    assert _refund(api, tenant_a, paid["id"], {"amount": 100}, "daily").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        later = _refund(api, tenant_a, paid["id"], {"amount": 100}, "daily")
    assert later.status_code == 200
    assert "Idempotent-Replayed" not in later
    assert _stripe_refunds(sdk, paid["stripe_payment_intent_id"]) == [100, 100]
    assert IdempotencyKey.objects.get(key="daily").status == "completed"


# --- catalog-side writes: coupons, promotion codes, test clocks ---------------------------------------------


def _post(api, tenant, path, body, key):
    return api.post(path, body, key=tenant.key, headers={"Idempotency-Key": key})


def test_coupon_and_promotion_code_retried_after_three_lost_answers_are_made_once(
    api, tenant_a, catalog, stripe_sdk, wire
):
    sdk = stripe_sdk()
    wire.lose("POST", "/v1/coupons", times=3)
    coupon = {"key": "launch", "duration": "once", "percent_off": "20"}
    assert _post(api, tenant_a, "/api/v1/coupons", coupon, "c-1").status_code == 503
    made = _post(api, tenant_a, "/api/v1/coupons", coupon, "c-1")
    assert made.status_code == 201, made.content
    assert [c.id for c in sdk.v1.coupons.list().data] == [made.json()["id"]]

    wire.lose("POST", "/v1/promotion_codes", times=3)
    promo = {"coupon": "launch", "code": "LAUNCH20"}
    assert _post(api, tenant_a, "/api/v1/promotion_codes", promo, "p-1").status_code == 503
    created = _post(api, tenant_a, "/api/v1/promotion_codes", promo, "p-1")
    # Not 409 `code_taken` by its own first attempt's code at Stripe.
    assert created.status_code == 201, created.content
    assert created.json()["code"] == "LAUNCH20"
    assert [p.code for p in sdk.v1.promotion_codes.list().data] == ["LAUNCH20"]


def test_a_test_clock_retried_after_three_lost_answers_is_made_once(api, tenant_a, stripe_sdk, wire):
    sdk = stripe_sdk()
    wire.lose("POST", "/v1/test_helpers/test_clocks", times=3)
    body = {"frozen_time": "2027-01-01T00:00:00Z", "name": "renewals"}
    assert _post(api, tenant_a, "/api/v1/test_clocks", body, "t-1").status_code == 503
    made = _post(api, tenant_a, "/api/v1/test_clocks", body, "t-1")
    assert made.status_code == 201, made.content
    assert [c.id for c in sdk.v1.test_helpers.test_clocks.list().data] == [
        made.json()["stripe_test_clock_id"]
    ]


def test_subscribing_again_right_after_a_cancel_now_is_not_refused_by_the_canceled_one(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    """The cancel answered, its events not applied yet: the mirror still says active. The next subscription is
    decided on Stripe's state of the one blocking it, read once."""
    sdk = stripe_sdk()
    subscription, stripe_customer = _subscribed(api, tenant_a, sdk, stripe_webhooks)
    canceled = api.post(
        f"/api/v1/subscriptions/{subscription['id']}/cancel", {"at_period_end": False}, key=tenant_a.key
    )
    assert canceled.json()["status"] == "canceled"
    assert Subscription.objects.get(pk=subscription["id"]).status == "active"  # events still on the way

    again = _create(api, tenant_a, "sub-again")

    assert again.status_code == 201, again.content
    assert Subscription.objects.get(pk=subscription["id"]).status == "canceled"
    assert len(_stripe_subscriptions(sdk, stripe_customer)) == 2
    # A live one still refuses, and creates nothing.
    refused = _create(api, tenant_a, "sub-third")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "already_subscribed"
    assert len(_stripe_subscriptions(sdk, stripe_customer)) == 2


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        (409, None),
        (500, None),
        (503, None),
        (400, None),
        (402, None),
        (429, None),
        (500, "false"),
        (400, "true"),
    ],
)
def test_the_gateway_retries_a_first_attempt_as_the_installed_sdk_would(status, advice):
    """`sent_once` sends a write's first attempt without the SDK's retries and retries it itself when the SDK
    would have: pinned to the installed SDK's own decision."""
    from stripe_gateway.errors import retried_by_sdk

    headers = {"stripe-should-retry": advice} if advice else {}
    error = stripe.StripeError("failed", http_status=status, headers=headers)
    sdk = stripe.HTTPClient()
    assert retried_by_sdk(error) is sdk._should_retry(("{}", status, headers), None, 0, 2)
    for should_retry in (True, False):
        lost = stripe.APIConnectionError("reset", should_retry=should_retry)
        assert retried_by_sdk(lost) is sdk._should_retry(None, lost, 0, 2) is should_retry
