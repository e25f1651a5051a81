"""A tenant's whole journey through the client, on a live server with the Stripe emulator: catalog, customer,
checkout, payment at "Stripe", the settled payment and subscription, the entitlements it gives used up to the
limit, and the signed events the tenant's endpoint receives (payment, entitlements changed, threshold
reached), verified with `construct_event`."""

import pytest
from tollgate_client import Tollgate
from tollgate_client.webhooks import construct_event

from tests.clients.conftest import CANCEL, OK, complete_checkout

pytestmark = pytest.mark.django_db(transaction=True)


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


def test_the_paid_plan_entitles_until_the_limit(tollgate, stripe_emulator, stripe_webhooks, receiver):
    endpoint = tollgate.webhook_endpoints.create(url=receiver.url, events=["*"])
    _define_catalog(tollgate)
    before = tollgate.entitlements.check(customer="user-42", feature="exports")
    assert (before.allowed, before.enabled, before.limit) == (False, False, 0)
    _subscribe_and_pay(tollgate, stripe_emulator, stripe_webhooks)

    # The tenant's endpoint heard that user-42's entitlements changed, signed.
    (updated,) = [e for e in _delivered(receiver, endpoint.secret) if e.type == "entitlements.updated"]
    assert updated.object["customer"] == "user-42"
    (exports_now,) = [e for e in updated.object["entitlements"] if e["feature"] == "exports"]
    assert (exports_now["enabled"], exports_now["limit"], exports_now["used"]) == (True, 3, 0)
    assert [s["type"] for s in exports_now["sources"]] == ["subscription"]

    check = tollgate.entitlements.check(customer="user-42", feature="exports")
    assert (check.allowed, check.limit, check.used, check.remaining) == (True, 3, 0, 3)
    usage = tollgate.usage.record(id="export-1", customer="user-42", feature="exports", quantity=1)
    assert (usage.customer, usage.feature, usage.quantity) == ("user-42", "exports", 1)
    tollgate.usage.record(id="export-1", customer="user-42", feature="exports", quantity=1)  # counted once
    assert tollgate.entitlements.check(customer="user-42", feature="exports").used == 1
    consumed = tollgate.entitlements.consume(id="export-2", customer="user-42", feature="exports", quantity=2)
    assert (consumed.allowed, consumed.used, consumed.remaining) == (True, 3, 0)
    denied = tollgate.entitlements.consume(id="export-3", customer="user-42", feature="exports")
    assert (denied.allowed, denied.used, denied.remaining) == (False, 3, 0)
    assert tollgate.entitlements.check(customer="user-42", feature="exports").used == 3  # nothing recorded
    listed = tollgate.entitlements.list(customer="user-42")
    exports = listed.get("exports")
    assert exports is not None
    assert (exports.limit, exports.used, exports.remaining) == (3, 3, 0)
    (source,) = exports.sources
    assert (source.type, source.product, source.value) == ("subscription", "starter", 3)
    assert exports.resets_at == tollgate.subscriptions.list(customer="user-42").data[0].current_period_end

    # Reaching the limit (80 % and 100 % crossed by the one consume) was announced, signed.
    reached = [e for e in _delivered(receiver, endpoint.secret) if e.type == "usage.threshold_reached"]
    assert sorted(
        (
            e.object["customer"],
            e.object["feature"],
            e.object["threshold"],
            e.object["limit"],
            e.object["used"],
        )
        for e in reached
    ) == [("user-42", "exports", 0.8, 3, 3), ("user-42", "exports", 1.0, 3, 3)]

    # A top-up grant, then its removal.
    grant = tollgate.entitlements.grants.create(
        customer="user-42", feature="exports", value=2, reason="support"
    )
    assert tollgate.entitlements.check(customer="user-42", feature="exports", quantity=2).allowed is True
    assert tollgate.entitlements.grants.delete(grant.id, reason="goodwill over").deleted is True
    assert tollgate.entitlements.check(customer="user-42", feature="exports").allowed is False

    delivered = _delivered(receiver, endpoint.secret)
    assert "payment.succeeded" in {e.type for e in delivered}
    limits = [
        next(f["limit"] for f in e.object["entitlements"] if f["feature"] == "exports")
        for e in sorted(delivered, key=lambda e: e.sequence)
        if e.type == "entitlements.updated"
    ]
    assert limits == [3, 5, 3]  # paid, topped up, top-up ended


def _delivered(receiver, secret: str):
    """Every delivery the tenant's endpoint received, verified with the endpoint's secret."""
    return [construct_event(r.body, r.headers["Tollgate-Signature"], secret) for r in receiver.received]
