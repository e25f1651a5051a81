"""Automatic tax (issue #15): `automatic_tax: true` on checkouts, `/payments` and `PATCH /subscriptions/{id}`
turns Stripe Tax on; Checkout collects the billing address; invoices show `tax`, payments `amount_tax`. Exact
amounts from the emulator's rates (DE 19 %, FR 20 %), tax per line rounded half away from zero."""

from urllib.parse import urlencode

import pytest

from billing.models import CheckoutSession, Invoice, Payment

OK = "https://app.example.com/ok"
CANCEL = "https://app.example.com/cancel"
DAY = 86_400


@pytest.fixture
def catalog(api, tenant_a):
    assert api.post("/api/v1/products", {"key": "pro", "name": "Pro"}, key=tenant_a.key).status_code == 201
    prices = [
        {"key": "pro-monthly", "unit_amount": 1900, "type": "recurring", "interval": "month",
         "tax_behavior": "exclusive"},
        {"key": "pro-monthly-incl", "unit_amount": 1190, "type": "recurring", "interval": "month",
         "tax_behavior": "inclusive"},
        {"key": "pack", "unit_amount": 1500, "type": "one_time", "tax_behavior": "exclusive"},
        {"key": "pack-untaxed", "unit_amount": 1500, "type": "one_time"},
    ]  # fmt: skip
    for price in prices:
        response = api.post(
            "/api/v1/prices", {"product": "pro", "currency": "eur", **price}, key=tenant_a.key
        )
        assert response.status_code == 201, response.content


def _complete(stripe_emulator, session_id, country):
    completed = stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{session_id}/complete",
        body=urlencode({"card": "4242424242424242", "address[country]": country}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert completed.status == 200, completed.body
    return completed.data()


def _checkout(api, tenant, path, **body):
    response = api.post(
        f"/api/v1/checkout/{path}",
        {"customer": "user-1", "success_url": OK, "cancel_url": CANCEL, "automatic_tax": True, **body},
        key=tenant.key,
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_an_item_checkout_charges_the_tax_and_the_payment_shows_it(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, stripe_webhooks
):
    body = _checkout(api, tenant_a, "item", price="pack", quantity=2)
    session = stripe_sdk().v1.checkout.sessions.retrieve(body["stripe_session_id"])
    assert (session.automatic_tax.enabled, session.automatic_tax.status) == (True, "requires_location_inputs")
    assert (session.billing_address_collection, session.amount_total) == ("required", 3000)

    done = _complete(stripe_emulator, body["stripe_session_id"], "DE")
    stripe_webhooks.deliver()

    assert (done["amount_subtotal"], done["total_details"]["amount_tax"], done["amount_total"]) == (
        3000,
        570,
        3570,
    )
    assert stripe_sdk().v1.payment_intents.retrieve(done["payment_intent"]).amount == 3570
    payment = api.get(f"/api/v1/payments/{body['payment']}", key=tenant_a.key).json()
    assert (payment["status"], payment["amount"], payment["amount_tax"]) == ("succeeded", 3570, 570)


def test_a_subscription_checkout_and_its_renewal_are_taxed(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, stripe_webhooks
):
    body = _checkout(api, tenant_a, "subscription", price="pro-monthly")
    done = _complete(stripe_emulator, body["stripe_session_id"], "DE")
    stripe_webhooks.deliver()

    assert (done["total_details"]["amount_tax"], done["amount_total"]) == (361, 2261)
    invoices = api.get("/api/v1/invoices?customer=user-1", key=tenant_a.key).json()["data"]
    assert [(i["subtotal"], i["tax"], i["total"], i["amount_paid"]) for i in invoices] == [
        (1900, 361, 2261, 2261)
    ]
    payment = api.get(f"/api/v1/payments/{body['payment']}", key=tenant_a.key).json()
    assert (payment["status"], payment["amount"], payment["amount_tax"]) == ("succeeded", 2261, 361)

    stripe_emulator.advance(32 * DAY)
    stripe_webhooks.deliver()

    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    assert (renewal.subtotal, renewal.tax, renewal.total, renewal.amount_paid) == (1900, 361, 2261, 2261)
    renewal_payment = Payment.objects.get(stripe_invoice_id=renewal.stripe_invoice_id)
    assert (renewal_payment.source, renewal_payment.amount, renewal_payment.amount_tax) == (
        "invoice",
        2261,
        361,
    )


def test_an_inclusive_price_keeps_its_total_with_the_tax_inside(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    body = _checkout(api, tenant_a, "subscription", price="pro-monthly-incl")
    done = _complete(stripe_emulator, body["stripe_session_id"], "DE")
    stripe_webhooks.deliver()

    # 11.90 includes 19 %: net 10.00, tax 1.90
    assert (done["total_details"]["amount_tax"], done["amount_total"]) == (190, 1190)
    invoice = api.get("/api/v1/invoices?customer=user-1", key=tenant_a.key).json()["data"][0]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (1190, 190, 1190)
    payment = api.get(f"/api/v1/payments/{body['payment']}", key=tenant_a.key).json()
    assert (payment["amount"], payment["amount_tax"]) == (1190, 190)


def test_a_cart_and_a_payment_by_checkout_are_taxed(api, tenant_a, catalog, stripe_emulator, stripe_webhooks):
    body = _checkout(api, tenant_a, "cart", items=[{"price": "pack", "quantity": 1}])
    _complete(stripe_emulator, body["stripe_session_id"], "FR")
    created = api.post(
        "/api/v1/payments",
        {"customer": "user-1", "price": "pack", "flow": "checkout", "automatic_tax": True,
         "success_url": OK, "cancel_url": CANCEL},
        key=tenant_a.key,
    )  # fmt: skip
    assert created.status_code == 201, created.content
    session_id = Payment.objects.get(pk=created.json()["id"]).stripe_checkout_session_id
    _complete(stripe_emulator, session_id, "FR")
    stripe_webhooks.deliver()

    for payment_id in (body["payment"], created.json()["id"]):
        payment = api.get(f"/api/v1/payments/{payment_id}", key=tenant_a.key).json()
        assert (payment["amount"], payment["amount_tax"]) == (1800, 300)


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("checkout/item", {"price": "pack-untaxed"}, "tax_behavior_unspecified"),
        ("checkout/cart", {"items": [{"price": "pack-untaxed", "quantity": 1}]}, "tax_behavior_unspecified"),
        ("payments", {"price": "pack", "flow": "intent"}, "automatic_tax_not_supported"),
        ("payments", {"amount": 500, "currency": "eur", "flow": "checkout"}, "tax_behavior_unspecified"),
    ],
)
def test_what_cannot_be_taxed_is_400_and_writes_nothing(api, tenant_a, catalog, stripe_sdk, path, body, code):
    response = api.post(
        f"/api/v1/{path}",
        {"customer": "user-1", "success_url": OK, "cancel_url": CANCEL, "automatic_tax": True, **body},
        key=tenant_a.key,
    )
    assert response.status_code == 400, response.content
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (code, "automatic_tax")
    assert not Payment.objects.exists()
    assert not CheckoutSession.objects.exists()
    assert stripe_sdk().v1.checkout.sessions.list().data == []
    assert stripe_sdk().v1.payment_intents.list().data == []


def test_turning_tax_on_for_a_subscription_taxes_its_next_invoice(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    # The address Stripe needs comes from a taxed checkout (Tollgate customers have no address of their own).
    _complete(stripe_emulator, _checkout(api, tenant_a, "item", price="pack")["stripe_session_id"], "FR")
    body = _checkout(api, tenant_a, "subscription", price="pro-monthly", automatic_tax=False)
    _complete(stripe_emulator, body["stripe_session_id"], "FR")
    stripe_webhooks.deliver()
    subscription = api.get("/api/v1/subscriptions?customer=user-1", key=tenant_a.key).json()["data"][0]

    response = api.patch(
        f"/api/v1/subscriptions/{subscription['id']}", {"automatic_tax": True}, key=tenant_a.key
    )
    assert response.status_code == 200, response.content
    stripe_emulator.advance(32 * DAY)
    stripe_webhooks.deliver()

    renewal = Invoice.objects.get(billing_reason="subscription_cycle")
    assert (renewal.subtotal, renewal.tax, renewal.total) == (1900, 380, 2280)


def test_turning_tax_on_without_a_customer_address_is_400(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, stripe_webhooks
):
    body = _checkout(api, tenant_a, "subscription", price="pro-monthly", automatic_tax=False)
    _complete(stripe_emulator, body["stripe_session_id"], "FR")  # not saved: no customer_update without tax
    stripe_webhooks.deliver()
    subscription = api.get("/api/v1/subscriptions?customer=user-1", key=tenant_a.key).json()["data"][0]

    response = api.patch(
        f"/api/v1/subscriptions/{subscription['id']}", {"automatic_tax": True}, key=tenant_a.key
    )

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "customer_tax_location_invalid"
    stripe_subscription = stripe_sdk().v1.subscriptions.retrieve(subscription["stripe_subscription_id"])
    assert stripe_subscription.automatic_tax.enabled is False


def test_another_projects_subscription_is_404(
    api, tenant_a, tenant_b, catalog, stripe_emulator, stripe_webhooks
):
    body = _checkout(api, tenant_a, "subscription", price="pro-monthly")
    _complete(stripe_emulator, body["stripe_session_id"], "DE")
    stripe_webhooks.deliver()
    subscription = api.get("/api/v1/subscriptions?customer=user-1", key=tenant_a.key).json()["data"][0]

    response = api.patch(
        f"/api/v1/subscriptions/{subscription['id']}", {"automatic_tax": False}, key=tenant_b.key
    )

    assert response.status_code == 404


def _saved_card_in(api, tenant, stripe_emulator, stripe_sdk, stripe_webhooks, country):
    """user-1 with a saved default card at Stripe; with `country`, also the address a taxed checkout saves."""
    from customers.models import Customer
    from customers.services.customers import customer_ensure_stripe

    if country:
        _complete(stripe_emulator, _checkout(api, tenant, "item", price="pack")["stripe_session_id"], country)
        stripe_webhooks.deliver()
    else:
        api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant.key)
    stripe_customer = customer_ensure_stripe(customer=Customer.objects.get(external_id="user-1"))
    sdk = stripe_sdk()
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": pm}})
    return stripe_customer


def test_a_subscription_created_with_automatic_tax_is_taxed_from_its_first_invoice(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, stripe_webhooks
):
    _saved_card_in(api, tenant_a, stripe_emulator, stripe_sdk, stripe_webhooks, "DE")

    created = api.post(
        "/api/v1/subscriptions",
        {"customer": "user-1", "price": "pro-monthly", "quantity": 2, "automatic_tax": True},
        key=tenant_a.key,
    )

    assert created.status_code == 201, created.content
    live = stripe_sdk().v1.subscriptions.retrieve(created.json()["stripe_subscription_id"])
    assert live.automatic_tax.enabled is True
    first = stripe_sdk().v1.invoices.retrieve(live.latest_invoice)
    # 2 × 19.00 = 38.00, 19 % VAT: 7.22
    assert (first.subtotal, sum(t.amount for t in first.total_taxes), first.total, first.amount_paid) == (
        3800,
        722,
        4522,
        4522,
    )
    stripe_webhooks.deliver()
    invoice = api.get("/api/v1/invoices?customer=user-1", key=tenant_a.key).json()["data"][0]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"], invoice["amount_paid"]) == (
        3800,
        722,
        4522,
        4522,
    )
    payment = Payment.objects.get(stripe_invoice_id=first.id)
    shown = api.get(f"/api/v1/payments/{payment.pk}", key=tenant_a.key).json()
    assert (shown["source"], shown["status"], shown["amount"], shown["amount_tax"]) == (
        "invoice",
        "succeeded",
        4522,
        722,
    )
    assert stripe_sdk().v1.payment_intents.retrieve(payment.stripe_payment_intent_id).amount == 4522


@pytest.mark.parametrize("case", ["untaxed_price", "no_address"])
def test_a_subscription_that_cannot_be_taxed_is_refused_with_nothing_created(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, stripe_webhooks, case
):
    from billing.models import Subscription
    from core.models import AuditLogEntry

    response = api.post(
        "/api/v1/prices",
        {"key": "pro-untaxed", "product": "pro", "currency": "eur", "unit_amount": 1900, "type": "recurring",
         "interval": "month"},
        key=tenant_a.key,
    )  # fmt: skip
    assert response.status_code == 201
    stripe_customer = _saved_card_in(
        api, tenant_a, stripe_emulator, stripe_sdk, stripe_webhooks, "DE" if case == "untaxed_price" else None
    )
    price = "pro-untaxed" if case == "untaxed_price" else "pro-monthly"
    invoices = [i.id for i in stripe_sdk().v1.invoices.list({"customer": stripe_customer}).data]

    refused = api.post(
        "/api/v1/subscriptions",
        {"customer": "user-1", "price": price, "automatic_tax": True},
        key=tenant_a.key,
    )

    assert refused.status_code == 400, refused.content
    expected = ("tax_behavior_unspecified", "automatic_tax")
    if case == "no_address":
        expected = ("customer_tax_location_invalid", "automatic_tax")
    assert (refused.json()["error"]["code"], refused.json()["error"]["param"]) == expected
    assert stripe_sdk().v1.subscriptions.list({"customer": stripe_customer, "status": "all"}).data == []
    assert [i.id for i in stripe_sdk().v1.invoices.list({"customer": stripe_customer}).data] == invoices
    stripe_webhooks.deliver()
    assert not Subscription.objects.exists()
    assert not AuditLogEntry.objects.filter(action="subscription.created").exists()


def test_a_refused_change_does_not_turn_tax_on(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, stripe_webhooks
):
    """`automatic_tax` with a change is written only once the whole change is checked: a bad promotion code or
    an untaxed price refuses the request with Stripe Tax still off."""
    _complete(stripe_emulator, _checkout(api, tenant_a, "item", price="pack")["stripe_session_id"], "FR")
    body = _checkout(api, tenant_a, "subscription", price="pro-monthly", automatic_tax=False)
    _complete(stripe_emulator, body["stripe_session_id"], "FR")
    stripe_webhooks.deliver()
    subscription = api.get("/api/v1/subscriptions?customer=user-1", key=tenant_a.key).json()["data"][0]
    untaxed = {
        "key": "pro-untaxed",
        "product": "pro",
        "currency": "eur",
        "unit_amount": 900,
        "type": "recurring",
    }
    assert api.post("/api/v1/prices", {**untaxed, "interval": "month"}, key=tenant_a.key).status_code == 201
    path = f"/api/v1/subscriptions/{subscription['id']}"
    before = stripe_sdk().v1.subscriptions.retrieve(subscription["stripe_subscription_id"]).to_dict()

    for change, code in (
        ({"quantity": 2, "promotion_code": "NOPE"}, "promotion_code_invalid"),
        ({"price": "pro-untaxed"}, "tax_behavior_unspecified"),
        ({"items": [{"price": "pro-untaxed"}]}, "tax_behavior_unspecified"),
    ):
        refused = api.patch(path, {**change, "automatic_tax": True}, key=tenant_a.key)
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, code), refused.content

    assert stripe_sdk().v1.subscriptions.retrieve(subscription["stripe_subscription_id"]).to_dict() == before
    changed = api.patch(path, {"quantity": 2, "automatic_tax": True}, key=tenant_a.key)
    assert changed.status_code == 200, changed.content
    live = stripe_sdk().v1.subscriptions.retrieve(subscription["stripe_subscription_id"])
    assert (live.automatic_tax.enabled, live["items"].data[0].quantity) == (True, 2)
