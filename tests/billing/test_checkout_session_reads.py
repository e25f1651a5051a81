"""A completed Checkout Session settles its payment from one read of it, under the row lock its transition takes
(not an unlocked read and then a locked one), and records the payment's and the session's tenant events together:
`payment.succeeded` then `checkout.completed`, numbered one after the other, each as it is after both changes."""

import json
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import CheckoutSession, Payment, Subscription
from billing.services.revenue_figures import MRR_UNIT
from events.models import Event
from tests.e2e.test_payment_webhooks import _complete

OK = "https://app.example.com/ok"
PAYMENT_READ = 'SELECT "billing_payment"."id"'


def test_a_completed_checkout_reads_its_payment_once_and_tells_both_events_in_order(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    held: list[tuple[str, bytes, Any]] = []
    stripe_emulator.webhooks.sender = lambda url, body, headers: held.append((url, body, headers)) or 200
    created = api.post(
        "/api/v1/payments",
        {
            "customer": "user-1",
            "price": "credits-1000",
            "flow": "checkout",
            "success_url": OK,
            "cancel_url": OK,
        },
        key=tenant_a.key,
    ).json()
    session_id = created["stripe_checkout_session_id"]
    _complete(stripe_emulator, session_id)
    stripe_emulator.flush_webhooks()
    types = [json.loads(body)["type"] for _, body, _ in held]
    completed = held.pop(types.index("checkout.session.completed"))

    with CaptureQueriesContext(connection) as queries:
        stripe_webhooks.send(*completed)

    payment = Payment.objects.get(pk=created["id"])
    assert payment.status == Payment.Status.SUCCEEDED
    reads = [
        q["sql"]
        for q in queries
        if q["sql"].startswith(PAYMENT_READ) and (payment.pk in q["sql"] or session_id in q["sql"])
    ]
    assert len(reads) == 1
    if connection.vendor == "postgresql":
        assert reads[0].endswith('FOR UPDATE OF "billing_payment"')
    session = CheckoutSession.objects.get(payment=payment)
    assert session.status == CheckoutSession.Status.COMPLETE
    told = list(
        Event.objects.filter(project=tenant_a.project, type__in=("payment.succeeded", "checkout.completed"))
        .order_by("sequence")
        .values_list("type", "sequence", "data")
    )
    assert [(kind, sequence - told[0][1]) for kind, sequence, _ in told] == [
        ("payment.succeeded", 0),
        ("checkout.completed", 1),
    ]
    paid, checkout = told[0][2]["object"], told[1][2]["object"]
    assert (paid["id"], paid["status"], paid["checkout_session"]) == (payment.pk, "succeeded", session.pk)
    assert (checkout["id"], checkout["status"], checkout["payment"]) == (session.pk, "complete", payment.pk)


def test_a_new_subscriptions_mirror_reads_its_catalog_price_once(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    """The mirror routes Stripe's items to catalog prices (one read) and counts the subscription's MRR in the
    primary price's currency from that same price (not read again)."""
    held: list[tuple[str, bytes, Any]] = []
    stripe_emulator.webhooks.sender = lambda url, body, headers: held.append((url, body, headers)) or 200
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-1", "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    ).json()
    _complete(stripe_emulator, created["stripe_session_id"])
    stripe_emulator.flush_webhooks()
    price_reads: list[str] = []
    for delivery in held:
        if json.loads(delivery[1])["type"] != "customer.subscription.created":
            stripe_webhooks.send(*delivery)
            continue
        with CaptureQueriesContext(connection) as queries:
            stripe_webhooks.send(*delivery)
        price_reads = [q["sql"] for q in queries if q["sql"].startswith('SELECT "billing_price"."id"')]

    subscription = Subscription.objects.get(project=tenant_a.project)
    assert (subscription.price_id, subscription.status) == (catalog.pro_monthly.pk, "active")
    assert (subscription.mrr_counted, subscription.mrr_currency) == (
        catalog.pro_monthly.unit_amount * MRR_UNIT,
        catalog.pro_monthly.currency,
    )
    assert len(price_reads) == 1
