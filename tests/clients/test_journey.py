"""A tenant's whole journey through the client, on a live server with the Stripe emulator: catalog, customer,
checkout, payment at "Stripe", the settled payment and subscription, and the signed events the tenant's
endpoint receives, verified with `construct_event`."""

import pytest
from django.urls import Resolver404, resolve
from tollgate_client import Tollgate
from tollgate_client.webhooks import construct_event

from tests.clients.conftest import CANCEL, OK, complete_checkout

pytestmark = pytest.mark.django_db(transaction=True)


def _routed(path: str) -> bool:
    """Whether a view answers `path` (the API's catch-all for unknown routes has no name)."""
    try:
        return resolve(path).url_name is not None
    except Resolver404:
        return False


def _define_catalog(tollgate: Tollgate) -> None:
    tollgate.features.create(key="exports", name="Exports", type="metered", unit="export")
    tollgate.products.create(key="starter", name="Starter", features={"exports": 3})
    tollgate.prices.create(
        key="starter-monthly",
        product="starter",
        currency="usd",
        unit_amount=900,
        type="recurring",
        interval="month",
    )


def _subscribe_and_pay(tollgate: Tollgate, stripe_emulator, stripe_webhooks, customer: str = "user-42"):
    session = tollgate.checkout.subscription(
        customer=customer, price="starter-monthly", success_url=OK, cancel_url=CANCEL
    )
    assert (session.status, session.mode) == ("open", "subscription")
    assert session.url
    complete_checkout(stripe_emulator, session.stripe_session_id)
    stripe_webhooks.deliver()
    return session


def test_from_catalog_to_a_paid_subscription_and_its_verified_events(
    tollgate, stripe_emulator, stripe_webhooks, receiver
):
    endpoint = tollgate.webhook_endpoints.create(url=receiver.url, events=["*"])
    assert endpoint.secret
    _define_catalog(tollgate)
    price = tollgate.prices.retrieve("starter-monthly")
    assert (price.product, price.unit_amount, price.interval) == ("starter", 900, "month")
    assert price.stripe_price_id
    assert tollgate.products.retrieve("starter").features == {"exports": 3}

    customer = tollgate.customers.create(external_id="user-42", email="ada@example.com", name="Ada")
    assert (customer.object, customer.external_id, customer.currency) == ("customer", "user-42", None)
    assert tollgate.portal.eligibility(customer="user-42").eligible is False

    session = _subscribe_and_pay(tollgate, stripe_emulator, stripe_webhooks)

    payment = tollgate.payments.retrieve(session.payment)
    assert (payment.status, payment.amount, payment.currency, payment.type) == (
        "succeeded",
        900,
        "usd",
        "subscription",
    )
    assert tollgate.checkout.retrieve(session.id).status == "complete"
    (subscription,) = tollgate.subscriptions.list(customer="user-42").data
    assert (subscription.status, subscription.product, subscription.price) == (
        "active",
        "starter",
        "starter-monthly",
    )
    (invoice,) = tollgate.invoices.list(customer="user-42").data
    assert (invoice.status, invoice.total, invoice.amount_paid) == ("paid", 900, 900)
    assert invoice.lines[0].amount == 900
    assert tollgate.customers.retrieve("user-42").currency == "usd"
    assert tollgate.portal.eligibility(customer="user-42").eligible is True
    assert tollgate.portal.create(customer="user-42", return_url=OK).url

    # The events reached the tenant's endpoint, signed: verified with the endpoint's secret.
    delivered = [
        construct_event(r.body, r.headers["Tollgate-Signature"], endpoint.secret) for r in receiver.received
    ]
    succeeded = [e for e in delivered if e.type == "payment.succeeded"]
    assert len(succeeded) == 1
    assert succeeded[0].object["id"] == payment.id
    assert succeeded[0].previous_attributes == {"status": "pending"}
    assert "subscription.created" in {e.type for e in delivered}
    # The same event through the API, with its delivery.
    listed = tollgate.events.retrieve(succeeded[0].id)
    assert (listed.type, listed.sequence, listed.object["id"]) == (
        "payment.succeeded",
        succeeded[0].sequence,
        payment.id,
    )
    assert [(d.endpoint, d.status) for d in listed.deliveries] == [(endpoint.id, "succeeded")]
    sequences = [e.sequence for e in tollgate.events.list(limit=100).auto_paging_iter()]
    assert sequences == sorted(sequences, reverse=True)

    # Changing it: cancel at period end, then undo.
    assert tollgate.subscriptions.cancel(subscription.id, at_period_end=True).cancel_at_period_end is True
    assert tollgate.subscriptions.resume(subscription.id).cancel_at_period_end is False


@pytest.mark.skipif(
    not _routed("/api/v1/entitlements/check"),
    reason="the usage/entitlements/credits routes (API.md 'Usage, entitlements, credits', issue #6) do not exist yet",
)
def test_the_paid_plan_entitles_until_the_limit(tollgate, stripe_emulator, stripe_webhooks, receiver):
    endpoint = tollgate.webhook_endpoints.create(url=receiver.url, events=["*"])
    _define_catalog(tollgate)
    before = tollgate.entitlements.check(customer="user-42", feature="exports")
    assert before.allowed is False
    _subscribe_and_pay(tollgate, stripe_emulator, stripe_webhooks)

    check = tollgate.entitlements.check(customer="user-42", feature="exports")
    assert (check.allowed, check.limit, check.used, check.remaining) == (True, 3, 0, 3)
    usage = tollgate.usage.record(id="export-1", customer="user-42", feature="exports", quantity=1)
    assert (usage.customer, usage.feature, usage.quantity) == ("user-42", "exports", 1)
    tollgate.usage.record(id="export-1", customer="user-42", feature="exports", quantity=1)  # counted once
    assert tollgate.entitlements.check(customer="user-42", feature="exports").used == 1
    consumed = tollgate.entitlements.consume(id="export-2", customer="user-42", feature="exports", quantity=2)
    assert (consumed.allowed, consumed.used, consumed.remaining) == (True, 3, 0)
    denied = tollgate.entitlements.consume(id="export-3", customer="user-42", feature="exports")
    assert denied.allowed is False
    assert tollgate.entitlements.check(customer="user-42", feature="exports").used == 3  # nothing recorded
    listed = tollgate.entitlements.list(customer="user-42")
    exports = listed.get("exports")
    assert exports is not None
    assert (exports.limit, exports.used, exports.remaining) == (3, 3, 0)

    # A top-up grant, then its removal.
    grant = tollgate.entitlements.grants.create(
        customer="user-42", feature="exports", value=2, reason="support"
    )
    assert tollgate.entitlements.check(customer="user-42", feature="exports", quantity=2).allowed is True
    tollgate.entitlements.grants.delete(grant.id, reason="goodwill over")
    assert tollgate.entitlements.check(customer="user-42", feature="exports").allowed is False

    delivered = [
        construct_event(r.body, r.headers["Tollgate-Signature"], endpoint.secret) for r in receiver.received
    ]
    assert "payment.succeeded" in {e.type for e in delivered}
