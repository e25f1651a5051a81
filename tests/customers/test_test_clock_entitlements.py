"""A customer on a test clock set in the past lives at the clock's time, in Tollgate as at Stripe: the hosted
Checkout page works while the clock has not passed the session's `expires_at` (Stripe judges it by the clock), the
payment sweep leaves the session open however much real time passes, and after the clock is advanced through a
renewal the new period's plan credits read their balance and a metered feature `resets_at` the clock's period end
(a lot's expiry and a period are judged by the customer's clock, not by today)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from billing.models import Payment, Subscription
from billing.services.payment_closing import payments_expire_due
from customers.models import Customer
from entitlements.models import CreditLot, Grant
from tests.clients.conftest import complete_checkout
from tests.entitlements.helpers import listed

pytestmark = pytest.mark.django_db

OK = "https://app.example.com/ok"


def _z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def features(api, tenant_a, catalog):
    """`pro` gives 1,000 `ai_credits` a period and 100 `api_calls` a period."""
    for key, kind in (("ai_credits", "credits"), ("api_calls", "metered")):
        made = api.post("/api/v1/features", {"key": key, "name": key, "type": kind}, key=tenant_a.key)
        assert made.status_code == 201, made.json()
    answer = api.patch(
        "/api/v1/products/pro", {"features": {"ai_credits": 1000, "api_calls": 100}}, key=tenant_a.key
    )
    assert answer.status_code == 200, answer.json()
    return catalog


def _page(stripe_emulator, session_id: str) -> str:
    answer = stripe_emulator.handle("GET", f"/checkout/pay/{session_id}", query="", body=b"", headers={})
    assert answer.status == 200
    return answer.body.decode()


def _check(api, tenant, feature: str) -> dict:
    response = api.get(f"/api/v1/entitlements/check?customer=user-9&feature={feature}", key=tenant.key)
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_customer_on_a_past_clock_checks_out_renews_and_is_judged_at_the_clocks_time(
    api, tenant_a, features, stripe_sdk, stripe_emulator, stripe_webhooks
):
    start = (timezone.now() - timedelta(days=60)).replace(microsecond=0)
    clock = api.post("/api/v1/test_clocks", {"frozen_time": _z(start)}, key=tenant_a.key).json()
    api.post("/api/v1/customers", {"external_id": "user-9", "test_clock": clock["id"]}, key=tenant_a.key)
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-9", "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    )
    assert (created.status_code, created.json()["status"]) == (201, "open")
    session_id = created.json()["stripe_session_id"]
    payment = Payment.objects.get(pk=created.json()["payment"])

    # The hosted page is the session's, open: the clock has not passed its expires_at.
    page = _page(stripe_emulator, session_id)
    assert "This Checkout Session has expired." not in page
    assert stripe_sdk().v1.checkout.sessions.retrieve(session_id).status == "open"

    # Real time passes the payment's lifetime; the clock does not move, so nothing expires.
    with time_machine.travel(timezone.now() + timedelta(seconds=tenant_a.project.payment_ttl_seconds + 60)):
        assert payments_expire_due() == 0
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert stripe_sdk().v1.checkout.sessions.retrieve(session_id).status == "open"
    assert Customer.objects.get(external_id="user-9").stripe_customer_id

    complete_checkout(stripe_emulator, session_id)
    stripe_webhooks.deliver()
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    subscription = Subscription.objects.get(customer__external_id="user-9")
    assert subscription.current_period_start == start
    first_end = subscription.current_period_end

    credits = _check(api, tenant_a, "ai_credits")
    assert (credits["allowed"], credits["balance"]) == (True, 1000)
    spent = api.post(
        "/api/v1/entitlements/consume",
        {"id": "job-1", "customer": "user-9", "feature": "ai_credits", "quantity": 300},
        key=tenant_a.key,
    ).json()
    assert (spent["allowed"], spent["balance"]) == (True, 700)
    lots = api.get("/api/v1/credits?customer=user-9&feature=ai_credits", key=tenant_a.key).json()
    assert (lots["balance"], [lot["remaining"] for lot in lots["lots"]]) == (700, [700])
    calls = listed(api, tenant_a.key, "user-9")["api_calls"]
    assert (calls["enabled"], calls["limit"]) == (True, 100)
    assert datetime.fromisoformat(calls["resets_at"]) == first_end

    # Through the renewal: the clock moves an hour past the first period's end.
    target = first_end + timedelta(hours=1)
    advanced = api.post(
        f"/api/v1/test_clocks/{clock['id']}/advance", {"frozen_time": _z(target)}, key=tenant_a.key
    )
    assert advanced.status_code == 200, advanced.json()
    assert api.get(f"/api/v1/test_clocks/{clock['id']}", key=tenant_a.key).json()["status"] == "ready"
    stripe_webhooks.deliver()
    subscription.refresh_from_db()
    assert subscription.current_period_start == first_end
    renewal = Payment.objects.get(customer__external_id="user-9", source="invoice")
    assert renewal.status == "succeeded"

    credits = _check(api, tenant_a, "ai_credits")
    # The first period's lot (700 left) expired at first_end on the clock; the new period's 1,000 are there.
    assert (credits["allowed"], credits["balance"]) == (True, 1000)
    calls = listed(api, tenant_a.key, "user-9")["api_calls"]
    assert datetime.fromisoformat(calls["resets_at"]) == subscription.current_period_end
    lots = api.get("/api/v1/credits?customer=user-9&feature=ai_credits", key=tenant_a.key).json()
    assert lots["balance"] == 1000


def test_a_grant_to_a_clock_customer_expires_on_the_clock(api, tenant_a, features, stripe_sdk):
    """A grant's `expires_at` is in the future of the customer's clock (it is refused when the clock has passed
    it, whatever the wall says), and it counts until the clock passes it."""
    start = (timezone.now() - timedelta(days=60)).replace(microsecond=0)
    clock = api.post("/api/v1/test_clocks", {"frozen_time": _z(start)}, key=tenant_a.key).json()
    api.post("/api/v1/customers", {"external_id": "user-9", "test_clock": clock["id"]}, key=tenant_a.key)
    grant = {"customer": "user-9", "feature": "ai_credits", "value": 50, "reason": "Trial"}

    late = api.post(
        "/api/v1/entitlements/grants",
        {**grant, "expires_at": _z(start - timedelta(hours=1))},
        key=tenant_a.key,
    )
    assert (late.status_code, late.json()["error"]["param"]) == (400, "expires_at")
    assert (Grant.objects.count(), CreditLot.objects.count()) == (0, 0)

    ends = start + timedelta(days=7)  # a week on the clock: long past on the wall
    made = api.post("/api/v1/entitlements/grants", {**grant, "expires_at": _z(ends)}, key=tenant_a.key)
    assert made.status_code == 201, made.json()
    credits = _check(api, tenant_a, "ai_credits")
    assert (credits["allowed"], credits["balance"]) == (True, 50)

    advanced = api.post(
        f"/api/v1/test_clocks/{clock['id']}/advance",
        {"frozen_time": _z(ends + timedelta(seconds=1))},
        key=tenant_a.key,
    )
    assert advanced.status_code == 200, advanced.json()
    assert api.get(f"/api/v1/test_clocks/{clock['id']}", key=tenant_a.key).json()["status"] == "ready"
    # No Stripe event is about this customer: the clock's move itself makes the cached answer stale.
    credits = _check(api, tenant_a, "ai_credits")
    assert (credits["allowed"], credits["balance"]) == (False, 0)
