"""`customers.export` and `customers.erase` through the Python client, on a live server with the emulator: the
document, the erasure's answer and its replay under the same key, the refusal of a live subscription, the
customer gone afterwards — and Stripe's customer deleted."""

import pytest
from tollgate_client import Tollgate
from tollgate_client.errors import ConflictError, InvalidRequestError, NotFoundError

from customers.models import Customer
from tests.clients.conftest import CANCEL, OK, complete_checkout

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "py.client-privacy@example.org"
NAME = "Pyra Clientprivacy"


def test_export_then_erase_through_the_client(
    tollgate: Tollgate, catalog, stripe_emulator, stripe_sdk, stripe_webhooks
):
    tollgate.customers.create(external_id="user-py", email=EMAIL, name=NAME, metadata={"team": "blue-otters"})
    session = tollgate.checkout.item(customer="user-py", price="sticker", success_url=OK, cancel_url=CANCEL)
    complete_checkout(stripe_emulator, session.stripe_session_id)
    stripe_webhooks.deliver()

    document = tollgate.customers.export("user-py")
    assert (document.object, document.customer.email, document.customer.name) == (
        "customer_export",
        EMAIL,
        NAME,
    )
    assert [p["amount"] for p in document.payments] == [200]
    assert document.customer.metadata == {"team": "blue-otters"}

    with pytest.raises(InvalidRequestError):
        tollgate.customers.erase("user-py", reason="")
    stripe_customer_id = Customer.objects.get(external_id="user-py").stripe_customer_id
    erased = tollgate.customers.erase("user-py", reason="dsr #12", idempotency_key="erase-user-py")
    assert erased.object == "customer_erasure"
    assert erased.stripe_customer_deleted is True
    assert erased.customer.startswith("erased_")
    replayed = tollgate.customers.erase("user-py", reason="dsr #12", idempotency_key="erase-user-py")
    assert replayed.to_dict() == erased.to_dict()
    with pytest.raises(NotFoundError):
        tollgate.customers.retrieve("user-py")
    with pytest.raises(NotFoundError):
        tollgate.customers.export("user-py")
    assert stripe_sdk().v1.customers.retrieve(stripe_customer_id).to_dict() == {
        "id": stripe_customer_id,
        "object": "customer",
        "deleted": True,
    }
    row = Customer.objects.get(pk=erased.id)
    assert (row.email, row.name, row.metadata) == ("", "", {"team": "[erased]"})


def test_erase_with_a_live_subscription_is_refused(
    tollgate: Tollgate, catalog, stripe_emulator, stripe_webhooks
):
    session = tollgate.checkout.subscription(
        customer="user-sub", price="pro-monthly", success_url=OK, cancel_url=CANCEL
    )
    complete_checkout(stripe_emulator, session.stripe_session_id)
    stripe_webhooks.deliver()
    with pytest.raises(ConflictError) as refused:
        tollgate.customers.erase("user-sub", reason="dsr #13")
    assert refused.value.code == "customer_has_live_subscriptions"
    assert tollgate.customers.retrieve("user-sub").external_id == "user-sub"
