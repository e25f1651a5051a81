"""The emulator as Stripe at the pinned version: `DELETE /v1/customers/{id}` "permanently deletes a customer …
also immediately cancels any active subscriptions on the customer" (Stripe's API reference, "Delete a
customer"), and leaves the customer's `deleted` tombstone."""

import pytest
import stripe

EMAIL = "deleted.customer@example.org"


def test_stripe_deletes_a_customers_live_subscriptions_with_it(stripe_sdk, tenant_a, catalog):
    """The emulator as Stripe: `DELETE /v1/customers/{id}` cancels the customer's live subscriptions."""
    sdk = stripe_sdk()
    customer = sdk.v1.customers.create({"email": EMAIL})
    method = sdk.v1.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}})
    sdk.v1.payment_methods.attach(method.id, {"customer": customer.id})
    subscription = sdk.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"price": catalog.pro_monthly.stripe_price_id}],
            "default_payment_method": method.id,
        }
    )
    assert subscription.status == "active"
    assert sdk.v1.customers.delete(customer.id).deleted is True
    ended = sdk.v1.subscriptions.retrieve(subscription.id)
    assert (ended.status, ended.cancellation_details.reason) == ("canceled", "cancellation_requested")
    assert ended.ended_at is not None
    assert sdk.v1.customers.retrieve(customer.id).to_dict() == {
        "id": customer.id,
        "object": "customer",
        "deleted": True,
    }
    with pytest.raises(stripe.InvalidRequestError) as again:
        sdk.v1.customers.delete(customer.id)
    assert (again.value.http_status, again.value.code) == (404, "resource_missing")
    types = [event.type for event in sdk.v1.events.list({"limit": 100}).data]
    assert types.index("customer.deleted") < types.index("customer.subscription.deleted")  # newest first
