"""A subscription's first invoice and the subscription itself, applied at the same moment by two processes (a
worker applying the invoice's events, the web mirroring the subscription a subscribe just created: the customer's
key keeps two workers apart, not the web), end linked whichever reads first.

The interleaving that lost the link (the exactly-once property test, seed 3): the invoice's transaction reads
that the subscription is not mirrored; the subscription's transaction creates it and links the invoices mirrored
so far, which cannot yet see the new invoice; both commit, and the invoice (then its payment) stays unlinked.
Here a third transaction holds the invoice's unique key, so the invoice's insert waits right after its read
until the subscription's transaction has gone as far as it can; real PostgreSQL, real row locks, no mocks.

The same worker then creates the invoice's payment from the invoice it mirrored, which the subscription may have
linked since: the payment names the subscription all the same.
"""

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from billing.models import Invoice, Payment, Subscription
from billing.services.invoices import invoice_apply, invoice_payment_apply
from billing.services.subscription_mirror import subscription_apply
from customers.models import Customer
from customers.services.customers import customer_ensure_stripe
from stripe_gateway.gateway import stripe_account_of
from tests.e2e.test_subscription_lifecycle import _complete

OK = "https://app.example.com/ok"


def _paid_at_stripe_alone(api: Any, tenant: Any, stripe_emulator: Any, stripe_sdk: Any) -> tuple[dict, dict]:
    """A subscription checkout completed at Stripe, none of its webhooks delivered: Stripe's subscription and
    its first invoice, neither mirrored."""
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-1", "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant.key,
    ).json()
    _complete(stripe_emulator, created["stripe_session_id"])
    sdk = stripe_sdk()
    session = sdk.v1.checkout.sessions.retrieve(created["stripe_session_id"])
    stripe_subscription = sdk.v1.subscriptions.retrieve(session.subscription).to_dict()
    stripe_invoice = sdk.v1.invoices.retrieve(stripe_subscription["latest_invoice"]).to_dict()
    return stripe_subscription, stripe_invoice


class _Backend(threading.Thread):
    """`work` on this thread's own database connection; its PostgreSQL pid, and what it raised."""

    def __init__(self, work: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.pid: int | None = None
        self.started_work = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            self.started_work.set()
            self.work()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.started_work.set()
            connection.close()


def _waits_for(pid: int | None) -> str:
    """What the backend waits for now ('' when it runs or is idle): PostgreSQL's wait_event_type/wait_event."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return f"{row[0]}/{row[1]}" if row and row[0] == "Lock" else ""


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_first_invoice_and_its_subscription_applied_at_once_end_linked(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk
):
    stripe_subscription, stripe_invoice = _paid_at_stripe_alone(api, tenant_a, stripe_emulator, stripe_sdk)
    project = tenant_a.project
    account = stripe_account_of(project)
    customer = Customer.objects.get(project=project, external_id="user-1")
    assert not Invoice.objects.exists()
    assert not Subscription.objects.exists()

    holding, release = threading.Event(), threading.Event()

    def hold_the_invoice_key() -> None:
        with transaction.atomic():
            Invoice.objects.create(
                project=project, customer=customer, stripe_invoice_id=stripe_invoice["id"], currency="usd"
            )
            holding.set()
            release.wait(30)
            transaction.set_rollback(True)

    def apply_the_invoice() -> None:
        invoice_apply(account=account, stripe_invoice=stripe_invoice, event_created=stripe_invoice["created"])

    def apply_the_subscription() -> None:
        subscription_apply(
            account=account,
            stripe_subscription=stripe_subscription,
            event_created=stripe_subscription["created"],
        )

    holder = _Backend(hold_the_invoice_key)
    holder.start()
    assert holding.wait(20)
    invoice_side = _Backend(apply_the_invoice)
    invoice_side.start()
    invoice_side.started_work.wait(20)
    # The invoice's transaction has read that the subscription is not mirrored, and waits to insert.
    _until(lambda: _waits_for(invoice_side.pid) == "Lock/transactionid", "the invoice's insert to wait")
    subscription_side = _Backend(apply_the_subscription)
    subscription_side.start()
    subscription_side.started_work.wait(20)
    # The subscription's transaction commits (nothing made it wait before the lock), or waits for the
    # invoice's transaction to end before it links.
    _until(
        lambda: not subscription_side.is_alive() or _waits_for(subscription_side.pid) == "Lock/advisory",
        "the subscription's transaction to commit or wait",
    )
    release.set()
    for backend in (holder, invoice_side, subscription_side):
        backend.join(30)
        assert not backend.is_alive()
    assert (holder.error, invoice_side.error, subscription_side.error) == (None, None, None)

    subscription = Subscription.objects.get()
    invoice = Invoice.objects.get()
    assert (invoice.stripe_invoice_id, invoice.status, invoice.total) == (stripe_invoice["id"], "paid", 3000)
    assert (invoice.stripe_subscription_id, invoice.subscription_id) == (
        stripe_subscription["id"],
        subscription.pk,
    )


def test_a_payment_made_from_an_invoice_linked_meanwhile_names_its_subscription(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk
):
    """The handler's order for a first invoice (`invoice_apply`, then `invoice_payment_apply` with the invoice it
    returned), with the web's mirroring of the subscription in between: a subscribe answered by the API."""
    sdk = stripe_sdk()
    api.post("/api/v1/customers", {"external_id": "user-1"}, key=tenant_a.key)
    stripe_customer = customer_ensure_stripe(customer=Customer.objects.get(external_id="user-1"))
    pm = sdk.v1.payment_methods.attach("pm_card_visa", {"customer": stripe_customer}).id
    stripe_subscription = sdk.v1.subscriptions.create(
        {
            "customer": stripe_customer,
            "items": [{"price": catalog.pro_monthly.stripe_price_id}],
            "default_payment_method": pm,
            "payment_behavior": "error_if_incomplete",
        }
    ).to_dict()
    stripe_invoice = sdk.v1.invoices.retrieve(stripe_subscription["latest_invoice"]).to_dict()
    intent = sdk.v1.invoice_payments.list({"invoice": stripe_invoice["id"]}).data[0].payment.payment_intent
    account = stripe_account_of(tenant_a.project)

    mirrored = invoice_apply(
        account=account, stripe_invoice=stripe_invoice, event_created=stripe_invoice["created"]
    )
    assert mirrored is not None
    assert mirrored.subscription_id is None  # the subscription is not mirrored yet
    subscription = subscription_apply(
        account=account, stripe_subscription=stripe_subscription, event_created=stripe_subscription["created"]
    )
    assert subscription is not None
    assert Invoice.objects.get().subscription_id == subscription.pk
    assert not Payment.objects.exists()  # nothing to link yet

    payment = invoice_payment_apply(
        invoice=mirrored, stripe_invoice=stripe_invoice, payment_intent_id=intent, paid=True
    )

    assert Payment.objects.get().pk == payment.pk
    stored = Payment.objects.get()
    assert (
        stored.source,
        stored.status,
        stored.amount,
        stored.stripe_invoice_id,
        stored.stripe_payment_intent_id,
    ) == (
        "invoice",
        "succeeded",
        3000,
        stripe_invoice["id"],
        intent,
    )
    assert stored.stripe_subscription_id == stripe_subscription["id"]
