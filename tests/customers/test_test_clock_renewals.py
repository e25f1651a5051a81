"""Simulating renewals per customer, end to end through Tollgate's HTTP API: a customer on a test clock
subscribes on their saved card, the clock is advanced past the period end, Stripe's events are processed, and
the renewal invoice and its `source: "invoice"` payment are mirrored with exact amounts, while a customer not
on the clock did not renew."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from webhooks.models import StripeEvent

pytestmark = pytest.mark.django_db


def _z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _save_card(sdk, stripe_customer: str) -> None:
    """The tenant's page saves the card at Stripe (Stripe.js); Tollgate never sees it."""
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": pm}})


def _get(api, tenant, path, **query):
    response = api.get(path, key=tenant.key, json_body=query or None)
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_clock_customer_renews_when_the_clock_passes_the_period_end(
    api, tenant_a, catalog, stripe_sdk, stripe_webhooks
):
    sdk = stripe_sdk()
    # A customer on the platform's real time, subscribed first.
    api.post("/api/v1/customers", {"external_id": "user-2"}, key=tenant_a.key)
    _save_card(sdk, customer_ensure_stripe(customer=Customer.objects.get(external_id="user-2")))
    other = api.post(
        "/api/v1/subscriptions", {"customer": "user-2", "price": "pro-monthly"}, key=tenant_a.key
    )
    assert other.status_code == 201, other.json()

    # The clock starts now; its customer is created on it and subscribes to 2 seats (2 × 3000).
    start = timezone.now().replace(microsecond=0)
    clock = api.post(
        "/api/v1/test_clocks", {"frozen_time": _z(start), "name": "Renewals"}, key=tenant_a.key
    ).json()
    customer = api.post(
        "/api/v1/customers", {"external_id": "user-1", "test_clock": clock["id"]}, key=tenant_a.key
    ).json()
    assert customer["test_clock"] == clock["id"]
    _save_card(sdk, customer["stripe_customer_id"])
    created = api.post(
        "/api/v1/subscriptions",
        {"customer": "user-1", "price": "pro-monthly", "quantity": 2},
        key=tenant_a.key,
    )
    assert created.status_code == 201, created.json()
    subscription = created.json()
    assert (subscription["status"], subscription["quantity"], subscription["current_period_start"]) == (
        "active",
        2,
        _z(start),
    )
    period_end = datetime.fromisoformat(subscription["current_period_end"])
    at_stripe = sdk.v1.subscriptions.retrieve(subscription["stripe_subscription_id"])
    assert at_stripe.test_clock == clock["stripe_test_clock_id"]
    stripe_webhooks.deliver()
    before_other = _get(api, tenant_a, "/api/v1/subscriptions", customer="user-2")["data"]

    # Past the period end: Stripe renews user-1's subscription at its clock's time, and only that one.
    target = period_end + timedelta(hours=1)
    advanced = api.post(
        f"/api/v1/test_clocks/{clock['id']}/advance", {"frozen_time": _z(target)}, key=tenant_a.key
    )
    assert advanced.status_code == 200, advanced.json()
    assert _get(api, tenant_a, f"/api/v1/test_clocks/{clock['id']}")["status"] == "ready"
    stripe_webhooks.deliver()

    assert not StripeEvent.objects.filter(status="failed").exists(), list(
        StripeEvent.objects.values_list("type", "last_error")
    )
    renewed = _get(api, tenant_a, f"/api/v1/subscriptions/{subscription['id']}")
    next_end = sdk.v1.subscriptions.retrieve(subscription["stripe_subscription_id"])["items"].data[0]
    assert (renewed["status"], renewed["quantity"]) == ("active", 2)
    assert (renewed["current_period_start"], renewed["current_period_end"]) == (
        _z(period_end),
        _z(datetime.fromtimestamp(next_end.current_period_end, tz=UTC)),
    )
    assert datetime.fromisoformat(renewed["current_period_end"]) > period_end + timedelta(days=27)

    invoices = _get(api, tenant_a, "/api/v1/invoices", customer="user-1")["data"]
    assert [
        (i["billing_reason"], i["status"], i["subtotal"], i["total"], i["amount_due"], i["amount_paid"])
        for i in invoices
    ] == [
        ("subscription_cycle", "paid", 6000, 6000, 6000, 6000),
        ("subscription_create", "paid", 6000, 6000, 6000, 6000),
    ]
    renewal = invoices[0]
    assert (renewal["period_start"], renewal["period_end"], renewal["subscription"]) == (
        _z(start),
        _z(period_end),
        subscription["id"],
    )
    assert [(line["amount"], line["quantity"]) for line in renewal["lines"]] == [(6000, 2)]

    payments = _get(api, tenant_a, "/api/v1/payments", customer="user-1")["data"]
    by_invoice = {p["stripe_invoice_id"]: p for p in payments}
    paid = by_invoice[renewal["stripe_invoice_id"]]
    assert (paid["source"], paid["status"], paid["amount"], paid["currency"], paid["type"]) == (
        "invoice",
        "succeeded",
        6000,
        "usd",
        "subscription",
    )
    assert paid["stripe_payment_intent_id"].startswith("pi_")
    assert len(payments) == 2

    # The customer on the platform's time did not move: one invoice, the same period.
    assert _get(api, tenant_a, "/api/v1/subscriptions", customer="user-2")["data"] == before_other
    other_invoices = _get(api, tenant_a, "/api/v1/invoices", customer="user-2")["data"]
    assert [(i["billing_reason"], i["total"]) for i in other_invoices] == [("subscription_create", 3000)]
    assert [p["amount"] for p in _get(api, tenant_a, "/api/v1/payments", customer="user-2")["data"]] == [3000]


def test_a_clock_ahead_of_real_time_does_not_make_other_customers_events_look_old(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """A test clock advanced a month ahead stamps its customer's events with its own time. A repair of another
    customer's subscription (reconcile --fix after a lost webhook) is stamped with Stripe's time for that
    customer — the wall's — not the account's newest event, so that customer's next events still apply."""
    from billing.models import Subscription
    from billing.services.reconcile import reconcile

    sdk = stripe_sdk()
    api.post("/api/v1/customers", {"external_id": "user-2"}, key=tenant_a.key)
    _save_card(sdk, customer_ensure_stripe(customer=Customer.objects.get(external_id="user-2")))
    other = api.post(
        "/api/v1/subscriptions", {"customer": "user-2", "price": "pro-monthly"}, key=tenant_a.key
    )
    assert other.status_code == 201, other.json()
    other = other.json()

    start = timezone.now().replace(microsecond=0)
    clock = api.post("/api/v1/test_clocks", {"frozen_time": _z(start)}, key=tenant_a.key).json()
    customer = api.post(
        "/api/v1/customers", {"external_id": "user-1", "test_clock": clock["id"]}, key=tenant_a.key
    ).json()
    _save_card(sdk, customer["stripe_customer_id"])
    assert (
        api.post("/api/v1/subscriptions", {"customer": "user-1", "price": "pro-monthly"}, key=tenant_a.key)
    ).status_code == 201
    advanced = api.post(
        f"/api/v1/test_clocks/{clock['id']}/advance",
        {"frozen_time": _z(start + timedelta(days=40))},
        key=tenant_a.key,
    )
    assert advanced.status_code == 200, advanced.json()
    stripe_webhooks.deliver()
    newest = sdk.v1.events.list({"limit": 1}).data[0]
    assert newest.created > int((timezone.now() + timedelta(days=30)).timestamp())  # the clock's time

    # user-2's seats change at Stripe and the webhook is lost; reconcile --fix repairs the mirror.
    item = sdk.v1.subscriptions.retrieve(other["stripe_subscription_id"])["items"].data[0]
    sdk.v1.subscriptions.update(other["stripe_subscription_id"], {"items": [{"id": item.id, "quantity": 3}]})
    stripe_emulator.webhooks.sender = lambda url, body, headers: 200  # lost
    stripe_emulator.flush_webhooks()
    stripe_emulator.webhooks.sender = stripe_webhooks.send
    reconcile(project=tenant_a.project, fix=True)
    mirror = Subscription.objects.get(pk=other["id"])
    assert mirror.quantity == 3
    assert mirror.stripe_event_created <= int(timezone.now().timestamp()) + 1

    # user-2's next change, at real time, is applied from its event.
    changed = api.patch(f"/api/v1/subscriptions/{other['id']}", {"quantity": 4}, key=tenant_a.key)
    assert changed.status_code == 200, changed.json()
    stripe_webhooks.deliver()
    mirror.refresh_from_db()
    assert (
        mirror.quantity,
        sdk.v1.subscriptions.retrieve(other["stripe_subscription_id"])["items"].data[0].quantity,
    ) == (4, 4)
