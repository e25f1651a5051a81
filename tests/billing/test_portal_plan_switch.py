"""A plan switch made by the customer in Stripe's portal keeps the quantity: 3 seats stay 3 seats, prorated
exactly, and Tollgate's mirror follows from Stripe's events."""

from datetime import datetime
from urllib.parse import urlsplit

from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from tests.catalog import price_create

RETURN = "https://app.example.com/account"


def test_a_three_seat_plan_switched_in_the_portal_keeps_three_seats(
    api, tenant_a, catalog, stripe_sdk, stripe_emulator, stripe_webhooks
):
    pro_plus = price_create(catalog.pro, "pro-plus-monthly", 6000, interval="month")
    # The portal offers the project's public plans only.
    assert api.patch("/api/v1/products/pro", {"public": True}, key=tenant_a.key).status_code == 200
    sdk = stripe_sdk()
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant_a.key)
    stripe_customer = customer_ensure_stripe(customer=Customer.objects.get(external_id="user-1"))
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    sdk.v1.customers.update(stripe_customer, {"invoice_settings": {"default_payment_method": pm}})
    created = api.post(
        "/api/v1/subscriptions",
        {"customer": "user-1", "price": "pro-monthly", "quantity": 3},
        key=tenant_a.key,
    ).json()
    start = datetime.fromisoformat(created["current_period_start"])
    end = datetime.fromisoformat(created["current_period_end"])
    stripe_webhooks.deliver()
    stripe_emulator.advance((end - start).total_seconds() / 2)  # half-way through the month

    portal = api.post("/api/v1/portal", {"customer": "user-1", "return_url": RETURN}, key=tenant_a.key).json()
    switched = stripe_emulator.handle(
        "POST",
        f"{urlsplit(portal['url']).path}/subscriptions/{created['stripe_subscription_id']}/update",
        body=f"price={pro_plus.stripe_price_id}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert switched.status == 303
    stripe_webhooks.deliver()

    item = sdk.v1.subscriptions.retrieve(created["stripe_subscription_id"])["items"].data[0]
    assert (item.price.id, item.quantity) == (pro_plus.stripe_price_id, 3)
    mirrored = api.get(f"/api/v1/subscriptions/{created['id']}", key=tenant_a.key).json()
    assert (mirrored["price"], mirrored["quantity"]) == ("pro-plus-monthly", 3)
    assert [(i["price"], i["quantity"]) for i in mirrored["items"]] == [("pro-plus-monthly", 3)]

    # The portal's configuration prorates into the next invoice: half a month of 3 × 3000 credited, half a
    # month of 3 × 6000 charged, then the new month of 3 × 6000.
    stripe_emulator.advance((end - start).total_seconds() / 2 + 3600)
    stripe_webhooks.deliver()
    invoices = api.get("/api/v1/invoices", key=tenant_a.key, json_body={"customer": "user-1"}).json()["data"]
    renewal = invoices[0]
    assert renewal["billing_reason"] == "subscription_cycle"
    assert sorted((line["amount"], line["quantity"]) for line in renewal["lines"]) == [
        (-4500, 3),
        (9000, 3),
        (18000, 3),
    ]
    assert (renewal["total"], renewal["amount_paid"]) == (22500, 22500)
    payments = api.get("/api/v1/payments", key=tenant_a.key, json_body={"customer": "user-1"}).json()["data"]
    paid = next(p for p in payments if p["stripe_invoice_id"] == renewal["stripe_invoice_id"])
    assert (paid["source"], paid["status"], paid["amount"]) == ("invoice", "succeeded", 22500)
