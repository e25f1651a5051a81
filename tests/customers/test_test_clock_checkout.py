"""A customer on a test clock checks out at the clock's time: Stripe measures the Checkout Session's `expires_at`
from the session's creation at the customer's clock, so Tollgate computes it from there, not from the wall
clock (a clock in the past or the future would otherwise have every checkout refused)."""

from datetime import UTC, datetime

import pytest

from billing.models import Payment, Subscription
from tests.clients.conftest import complete_checkout

pytestmark = pytest.mark.django_db

OK = "https://app.example.com/ok"


@pytest.mark.parametrize("frozen_time", ["2026-01-15T00:00:00Z", "2031-06-01T12:00:00Z"])
def test_a_clock_customer_checks_out_and_renews_at_the_clocks_time(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks, frozen_time
):
    clock = api.post("/api/v1/test_clocks", {"frozen_time": frozen_time}, key=tenant_a.key).json()
    api.post("/api/v1/customers", {"external_id": "user-9", "test_clock": clock["id"]}, key=tenant_a.key)
    checkout = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-9", "price": "pro-monthly", "quantity": 2, "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    )
    assert checkout.status_code == 201, checkout.json()
    session = stripe_sdk().v1.checkout.sessions.retrieve(checkout.json()["stripe_session_id"])
    start = int(datetime.fromisoformat(frozen_time).timestamp())
    ttl = tenant_a.project.payment_ttl_seconds
    # the clock's time, plus the payment's lifetime
    assert start + ttl - 60 < session.expires_at <= start + ttl
    complete_checkout(stripe_emulator, session.id)
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get(customer__external_id="user-9")
    assert subscription.current_period_start == datetime.fromisoformat(frozen_time).astimezone(UTC)
    assert Payment.objects.get(pk=checkout.json()["payment"]).status == "succeeded"
