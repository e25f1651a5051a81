"""Subscriptions from Checkout to renewal, dunning and changes: Stripe's events applied to the local mirrors."""

from billing.models import Invoice, Payment, Subscription
from customers.models import Customer
from events.models import Event
from webhooks.models import StripeEvent

OK = "https://app.example.com/ok"


def _complete(stripe_emulator, session_id, card="4242424242424242"):
    return stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{session_id}/complete",
        query="",
        body=f"card={card}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def _subscribe(api, tenant, stripe_emulator, stripe_webhooks, customer="user-1", **extra):
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": customer, "price": "pro-monthly", "success_url": OK, "cancel_url": OK, **extra},
        key=tenant.key,
    ).json()
    _complete(stripe_emulator, created["stripe_session_id"])
    stripe_webhooks.deliver()
    return created


def test_paid_subscription_checkout_mirrors_subscription_invoice_and_payment(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    created = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    assert not StripeEvent.objects.filter(status="failed").exists(), list(
        StripeEvent.objects.values_list("type", "last_error")
    )
    subscription = Subscription.objects.get()
    assert (subscription.status, subscription.price_id, subscription.quantity) == (
        "active",
        catalog.pro_monthly.pk,
        1,
    )
    assert subscription.current_period_end > subscription.current_period_start
    payment = Payment.objects.get(pk=created["payment"])
    assert payment.status == "succeeded"
    assert payment.stripe_subscription_id == subscription.stripe_subscription_id
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.total, invoice.amount_paid, invoice.billing_reason) == (
        "paid",
        3000,
        3000,
        "subscription_create",
    )
    assert payment.stripe_invoice_id == invoice.stripe_invoice_id
    assert Payment.objects.count() == 1  # the first invoice is the checkout's payment, not a second one
    types = set(Event.objects.filter(project=tenant_a.project).values_list("type", flat=True))
    assert {"subscription.created", "payment.succeeded", "checkout.completed"} <= types

    listed = api.get("/api/v1/subscriptions", key=tenant_a.key, json_body={"customer": "user-1"}).json()
    assert [s["id"] for s in listed["data"]] == [subscription.pk]
    assert listed["data"][0]["price"] == "pro-monthly"
    invoices = api.get("/api/v1/invoices", key=tenant_a.key, json_body={"customer": "user-1"}).json()
    assert [i["total"] for i in invoices["data"]] == [3000]
    # A second subscription to the same product is refused.
    again = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-1", "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_subscribed"


def test_trial_checkout_ends_no_payment_required(api, tenant_a, catalog, stripe_emulator, stripe_webhooks):
    created = _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, trial_days=14)
    assert Payment.objects.get(pk=created["payment"]).status == "no_payment_required"
    assert Subscription.objects.get().status == "trialing"


def test_renewal_creates_an_invoice_payment(api, tenant_a, catalog, stripe_emulator, stripe_webhooks):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    stripe_emulator.advance(31 * 86400)
    stripe_webhooks.deliver()
    renewal = Payment.objects.get(source="invoice")
    assert (renewal.status, renewal.amount, renewal.type) == ("succeeded", 3000, "subscription")
    assert renewal.stripe_payment_intent_id.startswith("pi_")
    assert Invoice.objects.filter(status="paid").count() == 2
    assert Subscription.objects.get().status == "active"


def test_cancel_at_period_end_and_resume(api, tenant_a, catalog, stripe_emulator, stripe_webhooks):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    canceled = api.post(
        f"/api/v1/subscriptions/{subscription.pk}/cancel", {"at_period_end": True}, key=tenant_a.key
    )
    assert canceled.status_code == 200
    assert canceled.json()["cancel_at_period_end"] is True
    resumed = api.post(f"/api/v1/subscriptions/{subscription.pk}/resume", key=tenant_a.key)
    assert resumed.json()["cancel_at_period_end"] is False
    now = api.post(
        f"/api/v1/subscriptions/{subscription.pk}/cancel", {"at_period_end": False}, key=tenant_a.key
    )
    assert now.json()["status"] == "canceled"
    stripe_webhooks.deliver()
    assert Subscription.objects.get().status == "canceled"
    assert Event.objects.filter(project=tenant_a.project, type="subscription.canceled").count() == 1


def test_upgrade_half_way_with_always_invoice_arrives_as_a_1500_invoice(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    from tests.catalog import price_create

    pro_plus = price_create(catalog.pro, "pro-plus-monthly", 6000, interval="month")
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    half = (subscription.current_period_end - subscription.current_period_start).total_seconds() / 2
    stripe_emulator.advance(int(half))
    stripe_webhooks.deliver()
    response = api.patch(
        f"/api/v1/subscriptions/{subscription.pk}",
        {"price": pro_plus.key, "proration_behavior": "always_invoice"},
        key=tenant_a.key,
    )
    assert response.status_code == 200, response.content
    assert response.json()["price"] == "pro-plus-monthly"
    stripe_webhooks.deliver()
    proration = Invoice.objects.exclude(billing_reason="subscription_create").get()
    assert proration.total == 1500
    assert sorted(line["amount"] for line in proration.lines) == [-1500, 3000]
    assert Payment.objects.get(stripe_invoice_id=proration.stripe_invoice_id).amount == 1500


def test_failed_renewal_goes_past_due_then_canceled(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks)
    subscription = Subscription.objects.get()
    # The customer's card now fails when charged (Stripe's 4000000000000341 test card).
    sdk = stripe_sdk()
    customer = subscription.customer
    card = sdk.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4000000000000341", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    sdk.v1.payment_methods.attach(card.id, {"customer": customer.stripe_customer_id})
    sdk.v1.subscriptions.update(subscription.stripe_subscription_id, {"default_payment_method": card.id})
    stripe_emulator.advance(31 * 86400)
    stripe_webhooks.deliver()
    assert Subscription.objects.get().status == "past_due"
    failed = Payment.objects.get(source="invoice")
    assert failed.status == "requires_payment_method"
    assert Event.objects.filter(project=tenant_a.project, type="subscription.past_due").count() == 1
    assert Event.objects.filter(project=tenant_a.project, type="invoice.payment_failed").exists()
    stripe_emulator.advance(30 * 86400)
    stripe_webhooks.deliver()
    assert Subscription.objects.get().status == "canceled"


def _state(customer):
    subscription = Subscription.objects.get(customer__external_id=customer)
    return (
        subscription.status,
        subscription.price_id,
        subscription.cancel_at_period_end,
        subscription.current_period_end - subscription.current_period_start,
        sorted(Invoice.objects.filter(customer=subscription.customer).values_list("status", "total")),
        sorted(
            Payment.objects.filter(customer=subscription.customer).values_list("status", "amount", "source")
        ),
        sorted(Event.objects.filter(data__object__customer=customer).values_list("type", flat=True)),
    )


def test_any_arrival_order_and_duplicates_converge(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    """A whole lifecycle (checkout, renewal, scheduled cancellation) whose events all arrive shuffled and twice
    ends in the state Stripe holds, as in-order delivery does (the tests above)."""
    stripe_emulator.webhooks.shuffle = True
    stripe_emulator.webhooks.duplicates = True
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-1", "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    ).json()
    _complete(stripe_emulator, created["stripe_session_id"])
    stripe_emulator.advance(31 * 86400)  # a renewal
    stripe_id = stripe_sdk().v1.subscriptions.list().data[0].id
    stripe_sdk().v1.subscriptions.update(stripe_id, {"cancel_at_period_end": True})
    stripe_webhooks.deliver()
    status, _, cancel_at_period_end, _, invoices, payments, events = _state("user-1")
    stripe_state = stripe_sdk().v1.subscriptions.retrieve(stripe_id)
    assert (
        (status, cancel_at_period_end)
        == (stripe_state.status, stripe_state.cancel_at_period_end)
        == ("active", True)
    )
    assert invoices == [("paid", 3000), ("paid", 3000)]
    assert payments == [("succeeded", 3000, "checkout"), ("succeeded", 3000, "invoice")]
    assert events.count("subscription.created") == 1
    assert events.count("payment.succeeded") == 2


def test_price_amount_change_keeps_existing_subscribers_on_their_price(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="early")
    old_stripe_price = catalog.pro_monthly.stripe_price_id
    response = api.patch("/api/v1/prices/pro-monthly", {"unit_amount": 3500}, key=tenant_a.key)
    assert response.status_code == 200, response.content
    new_stripe_price = response.json()["stripe_price_id"]
    assert new_stripe_price != old_stripe_price
    # The early subscriber still pays 3000 at renewal; a new subscriber pays 3500.
    _subscribe(api, tenant_a, stripe_emulator, stripe_webhooks, customer="late")
    stripe_emulator.advance(31 * 86400)
    stripe_webhooks.deliver()
    early = Subscription.objects.get(customer__external_id="early")
    late = Subscription.objects.get(customer__external_id="late")
    assert (early.stripe_price_id, early.price_id) == (old_stripe_price, catalog.pro_monthly.pk)
    assert late.stripe_price_id == new_stripe_price
    renewals = dict(Payment.objects.filter(source="invoice").values_list("customer__external_id", "amount"))
    assert renewals == {"early": 3000, "late": 3500}
    assert stripe_sdk().v1.prices.retrieve(old_stripe_price).active is True


def _held_deliveries(stripe_emulator):
    held = []
    sender = stripe_emulator.webhooks.sender
    stripe_emulator.webhooks.sender = lambda url, body, headers: (
        held.append((url, body, dict(headers))) or 200
    )
    stripe_emulator.flush_webhooks()
    stripe_emulator.webhooks.sender = sender
    return held


def _send(stripe_webhooks, deliveries):
    for url, body, headers in deliveries:
        assert stripe_webhooks.send(url, body, headers) == 200


def _event_type(delivery):
    import json

    return json.loads(delivery[1])["type"]


def test_updated_before_created_and_deleted_before_updated_end_as_in_order(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    sdk = stripe_sdk()
    api.post(
        "/api/v1/payments", {"customer": "user-1", "price": "sticker", "flow": "intent"}, key=tenant_a.key
    ).json()
    stripe_customer = Customer.objects.get(external_id="user-1").stripe_customer_id
    card = sdk.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    sdk.v1.payment_methods.attach(card.id, {"customer": stripe_customer})
    _send(stripe_webhooks, _held_deliveries(stripe_emulator))
    stripe_subscription = sdk.v1.subscriptions.create(
        {
            "customer": stripe_customer,
            "items": [{"price": catalog.pro_monthly.stripe_price_id}],
            "default_payment_method": card.id,
        }
    )
    sdk.v1.subscriptions.update(stripe_subscription.id, {"cancel_at_period_end": True})
    sdk.v1.subscriptions.cancel(stripe_subscription.id)
    held = [
        d for d in _held_deliveries(stripe_emulator) if _event_type(d).startswith("customer.subscription.")
    ]
    order = [_event_type(d) for d in held]
    assert order[0] == "customer.subscription.created"
    assert order[-1] == "customer.subscription.deleted"
    _send(stripe_webhooks, list(reversed(held)))  # deleted first, created last
    subscription = Subscription.objects.get(stripe_subscription_id=stripe_subscription.id)
    assert subscription.status == "canceled"
    assert subscription.stripe_event_created > 0


def test_failed_upgrade_with_pending_if_incomplete_changes_nothing(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    from tests.catalog import price_create

    premium = price_create(catalog.pro, "pro-premium", 9000, interval="month")
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-1", "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    ).json()
    _complete(stripe_emulator, created["stripe_session_id"])
    stripe_webhooks.deliver()
    subscription = Subscription.objects.get()
    sdk = stripe_sdk()
    failing = sdk.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4000000000000341", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    sdk.v1.payment_methods.attach(failing.id, {"customer": subscription.customer.stripe_customer_id})
    sdk.v1.subscriptions.update(subscription.stripe_subscription_id, {"default_payment_method": failing.id})
    stripe_webhooks.deliver()
    response = api.patch(
        f"/api/v1/subscriptions/{subscription.pk}",
        {"price": premium.key, "proration_behavior": "always_invoice"},
        key=tenant_a.key,
    )
    assert response.status_code == 200, response.content
    assert response.json()["price"] == "pro-monthly"  # the upgrade waits for a payment that failed
    stripe_webhooks.deliver()
    subscription.refresh_from_db()
    assert (subscription.price_id, subscription.status) == (catalog.pro_monthly.pk, "active")
    assert (
        sdk.v1.subscriptions.retrieve(subscription.stripe_subscription_id)["items"]["data"][0]["price"]["id"]
        == catalog.pro_monthly.stripe_price_id
    )
