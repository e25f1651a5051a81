"""The email a customer types at Stripe Checkout reaches Tollgate's customer when the tenant sent none, and never
replaces one the tenant sent — end to end: the API, the emulator's hosted checkout, Stripe's webhooks."""

from urllib.parse import urlencode

from customers.models import Customer

OK = "https://app.example.com/ok"
CANCEL = "https://app.example.com/cancel"


def _checkout(api, tenant, customer, kind="subscription", **body):
    price = {"subscription": "pro-monthly", "item": "credits-1000"}[kind]
    response = api.post(
        f"/api/v1/checkout/{kind}",
        {"customer": customer, "price": price, "success_url": OK, "cancel_url": CANCEL, **body},
        key=tenant.key,
    )
    assert response.status_code == 201, response.content
    return response.json()


def _complete(stripe_emulator, session_id, **form):
    """The customer fills in the hosted page and pays (the page's form, as a browser posts it)."""
    response = stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{session_id}/complete",
        body=urlencode({"card": "4242424242424242", **form}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200, response.body
    return response.data()


def test_the_email_typed_at_checkout_reaches_a_customer_without_one(
    api, tenant_a, tenant_b, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    api.post("/api/v1/customers", {"external_id": "user-9"}, key=tenant_b.key)
    created = _checkout(api, tenant_a, "user-9")
    assert api.get("/api/v1/customers/user-9", key=tenant_a.key).json()["email"] == ""

    session = _complete(stripe_emulator, created["stripe_session_id"], email="ada@example.com")
    assert session["customer_details"]["email"] == "ada@example.com"
    stripe_customer = stripe_sdk().v1.customers.retrieve(session["customer"])
    assert stripe_customer.email == "ada@example.com"
    invoice = stripe_sdk().v1.invoices.retrieve(session["invoice"])
    assert invoice.customer_email == "ada@example.com"

    stripe_webhooks.deliver()
    customer = api.get("/api/v1/customers/user-9", key=tenant_a.key).json()
    assert customer["email"] == "ada@example.com"
    assert (
        api.get("/api/v1/customers?email=ada@example.com", key=tenant_a.key).json()["data"][0]["id"]
        == (customer["id"])
    )
    # Only project A's customer: the same external id in project B is another person.
    assert Customer.objects.get(project=tenant_b.project, external_id="user-9").email == ""


def test_an_email_the_tenant_sent_is_kept_and_shown_read_only(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    api.post("/api/v1/customers", {"external_id": "user-9", "email": "tenant@example.com"}, key=tenant_a.key)
    created = _checkout(api, tenant_a, "user-9")
    page = stripe_emulator.handle("GET", f"/checkout/pay/{created['stripe_session_id']}").body.decode()
    assert 'value="tenant@example.com" readonly' in page

    session = _complete(stripe_emulator, created["stripe_session_id"], email="typed@example.com")
    assert session["customer_details"]["email"] == "tenant@example.com"
    assert stripe_sdk().v1.customers.retrieve(session["customer"]).email == "tenant@example.com"

    stripe_webhooks.deliver()
    assert api.get("/api/v1/customers/user-9", key=tenant_a.key).json()["email"] == "tenant@example.com"


def test_an_email_the_tenant_sends_while_the_customer_pays_is_not_overwritten(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    created = _checkout(api, tenant_a, "user-9")
    _complete(stripe_emulator, created["stripe_session_id"], email="typed@example.com")
    # The tenant's own write lands before Stripe's webhook is processed.
    api.post("/api/v1/customers", {"external_id": "user-9", "email": "late@example.com"}, key=tenant_a.key)

    stripe_webhooks.deliver()
    assert api.get("/api/v1/customers/user-9", key=tenant_a.key).json()["email"] == "late@example.com"


def test_a_missed_webhook_is_caught_up_by_reading_the_payment(api, tenant_a, catalog, stripe_emulator):
    """No webhook delivered: the tenant polling the payment applies the completed session, email included."""
    created = _checkout(api, tenant_a, "user-9", kind="item", quantity=1)
    _complete(stripe_emulator, created["stripe_session_id"], email="grace@example.com")

    payment = api.get(f"/api/v1/payments/{created['payment']}", key=tenant_a.key).json()
    assert payment["status"] == "succeeded"
    assert api.get("/api/v1/customers/user-9", key=tenant_a.key).json()["email"] == "grace@example.com"
