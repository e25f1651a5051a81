"""The Stripe event pipeline (webhooks.services, "processing"): one ordering key (a customer) at a time, keys in
parallel, nothing lost when the database drops the workers' sessions or a worker dies, conflicts retried at once.

The worker tests run real Celery workers (tests/webhooks/workers.py) on the Redis broker against the test
database, with Stripe's events produced by the emulator for real checkouts made through Tollgate's API.
"""

import ast
import json
import re
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise, zip_longest
from urllib.parse import urlsplit

import psycopg
import pytest
import stripe
from django.db import connection, transaction
from django.test import Client, override_settings
from django.utils import timezone

from billing.handlers import registry
from billing.models import Invoice, Payment, Subscription
from core.locks import lock_shared_take, locks_shared_held
from customers.models import Customer
from events.models import Event
from stripe_gateway.gateway import PLATFORM_ACCOUNT
from tests.billing.payment_factories import CustomerFactory
from tests.webhooks.workers import (
    MARK,
    deliver,
    lock_holder,
    running_workers,
    sweep_later,
    terminate_worker_sessions,
    wait_for,
    worker_sessions,
)
from webhooks.models import StripeEvent
from webhooks.services.process import (
    MAX_ATTEMPTS,
    stripe_events_process_key,
)
from webhooks.services.receive import ordering_key, stripe_event_store

OK = "https://app.example.com/ok"
SECRET = "whsec_test_pipeline"
# The request a paid invoice's processor makes when it does not know the invoice's PaymentIntent yet.
INVOICE_PAYMENTS = "/v1/invoice_payments"


# --- helpers ------------------------------------------------------------------------------------------------


def _subscribe(api, tenant, stripe_emulator, customer):
    """A subscription checkout through Tollgate's API, paid on Stripe's hosted page, for a customer whose email
    the tenant gave (Checkout then updates no customer: a checkout's nine events, as these tests count them)."""
    upserted = api.post(
        "/api/v1/customers", {"external_id": customer, "email": f"{customer}@example.com"}, key=tenant.key
    )
    assert upserted.status_code in (200, 201), upserted.content
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": customer, "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant.key,
    )
    assert created.status_code == 201, created.content
    completed = stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{created.json()['stripe_session_id']}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert completed.status == 200
    return created.json()


def _capture(stripe_emulator):
    """The emulator's signed deliveries queued so far, sent into a list instead of to Tollgate."""
    captured = []
    stripe_emulator.webhooks.sender = lambda url, body, headers: (
        captured.append((url, body, dict(headers))) or 200
    )
    stripe_emulator.flush_webhooks()
    return captured


def _type(delivery):
    return json.loads(delivery[1])["type"]


def _split(deliveries, *types):
    """(the deliveries of these types by type, the others in Stripe's order)."""
    chosen = {_type(d): d for d in deliveries if _type(d) in types}
    assert sorted(chosen) == sorted(types)
    return chosen, [d for d in deliveries if _type(d) not in types]


def _all_processed(count):
    return lambda: StripeEvent.objects.filter(status="processed").count() == count


def _unprocessed():
    return list(StripeEvent.objects.exclude(status="processed").values_list("type", "status", "last_error"))


def _outbound(event_type):
    return Event.objects.filter(type=event_type).count()


def _deadlocks():
    """Deadlocks PostgreSQL detected in the test database. A backend reports its counts when it ends or, at the
    latest, a while after a transaction: this session's own are flushed first; workers' sessions must have ended."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _during(a, b):
    """Whether two applied events were being applied at the same time."""
    return a.processing_started_at < b.processed_at and b.processing_started_at < a.processed_at


def _ts(value):
    return datetime.fromtimestamp(value, tz=UTC)


@pytest.fixture
def workers(transactional_db, stripe_emulator):
    with running_workers(stripe_emulator) as started:
        yield started


# --- two real workers, customers interleaved (#20) ------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_apply_each_customer_one_event_at_a_time_and_customers_in_parallel(
    api, tenant_a, catalog, stripe_emulator, stripe_sdk, stripe_webhooks, workers
):
    deadlocks_before = _deadlocks()
    started = [workers.start(name, ready=False) for name in ("w1", "w2")]
    customers = [f"user-{n}" for n in range(6)]
    checkouts, deliveries = {}, {}
    for customer in customers:
        checkouts[customer] = _subscribe(api, tenant_a, stripe_emulator, customer)
        deliveries[customer] = _capture(stripe_emulator)
    assert [len(d) for d in deliveries.values()] == [9] * 6
    for worker in started:
        worker.wait_ready()

    # Stripe sends each customer's events in order, the customers' streams interleaved: four of one customer's,
    # four of the next one's… A customer's events arrive faster than one worker applies them, so the other
    # worker is handed tasks of the same customer (turned away by the key's lock, or — without it — applying
    # them alongside); and six customers keep both workers busy at once. No slower Stripe needed.
    client = Client()
    bursts = [[d[i : i + 4] for i in range(0, len(d), 4)] for d in deliveries.values()]
    interleaved = [d for row in zip_longest(*bursts, fillvalue=[]) for burst in row for d in burst]
    assert len(interleaved) == 54
    for delivery in interleaved:
        deliver(client, delivery)
    assert wait_for(_all_processed(54), timeout=60), _unprocessed()
    workers.stop_all()
    assert wait_for(lambda: not worker_sessions(), timeout=10)  # their statistics are flushed as they end

    events = list(StripeEvent.objects.order_by("processing_started_at"))
    assert len(events) == 54
    # Every event claimed once and applied once (a second claim would count a second attempt), so its
    # [processing_started_at, processed_at] is its one application.
    assert {(e.status, e.attempts, e.conflicts, e.last_error) for e in events} == {("processed", 1, 0, "")}
    by_key = {}
    for event in events:
        by_key.setdefault(event.ordering_key, []).append(event)
    customer_keys = {key for key in by_key if key.startswith("platform:cus_")}
    assert len(customer_keys) == 6
    # An invoice's payment record names no customer: it is stored under its invoice's key and handed over to
    # its customer's key once the invoice is mirrored; claimed before that, it reads an invoice that is not
    # there yet and changes nothing (the invoice's own event reads the record later, under the customer's key).
    left_over = [e for key, applied in by_key.items() if key not in customer_keys for e in applied]
    assert {e.type for e in left_over} <= {"invoice_payment.paid"}
    assert sorted(len(by_key[key]) for key in customer_keys) == sorted(
        9 - sum(1 for e in left_over if e.payload["data"]["object"]["invoice"] in _invoices_of(key))
        for key in customer_keys
    )
    assert sum(len(by_key[key]) for key in customer_keys) + len(left_over) == 54
    for key, applied in by_key.items():
        for earlier, later in pairwise(applied):
            assert earlier.processed_at <= later.processing_started_at, (key, earlier.type, later.type)
    across = [
        (a.type, b.type)
        for i, a in enumerate(events)
        for b in events[i + 1 :]
        if a.ordering_key in customer_keys
        and b.ordering_key in customer_keys
        and a.ordering_key != b.ordering_key
        and _during(a, b)
    ]
    assert across, "no two customers' events were ever applied at the same time"

    sdk = stripe_sdk()
    for customer in customers:
        session = sdk.v1.checkout.sessions.retrieve(checkouts[customer]["stripe_session_id"])
        stripe_subscription = sdk.v1.subscriptions.retrieve(session.subscription)
        item = stripe_subscription["items"].data[0]
        stripe_invoice = sdk.v1.invoices.retrieve(
            stripe_subscription.latest_invoice, {"expand": ["payments"]}
        )
        intent = sdk.v1.payment_intents.retrieve(stripe_invoice.payments.data[0].payment.payment_intent)
        assert (
            stripe_subscription.status,
            stripe_invoice.status,
            stripe_invoice.amount_paid,
            intent.status,
        ) == (
            "active",
            "paid",
            3000,
            "succeeded",
        )

        local = Customer.objects.get(project=tenant_a.project, external_id=customer)
        assert local.stripe_customer_id == session.customer
        subscription = Subscription.objects.get(customer=local)
        assert (
            subscription.stripe_subscription_id,
            subscription.status,
            subscription.stripe_price_id,
            subscription.price_id,
            subscription.quantity,
            subscription.current_period_start,
            subscription.current_period_end,
            subscription.cancel_at_period_end,
        ) == (
            stripe_subscription.id,
            stripe_subscription.status,
            item.price.id,
            catalog.pro_monthly.pk,
            item.quantity,
            _ts(item.current_period_start),
            _ts(item.current_period_end),
            stripe_subscription.cancel_at_period_end,
        )
        invoice = Invoice.objects.get(customer=local)
        assert (
            invoice.stripe_invoice_id,
            invoice.status,
            invoice.number,
            invoice.billing_reason,
            invoice.total,
            invoice.amount_due,
            invoice.amount_paid,
            invoice.amount_remaining,
            invoice.subscription_id,
            invoice.stripe_payment_intent_id,
        ) == (
            stripe_invoice.id,
            stripe_invoice.status,
            stripe_invoice.number,
            stripe_invoice.billing_reason,
            stripe_invoice.total,
            stripe_invoice.amount_due,
            stripe_invoice.amount_paid,
            stripe_invoice.amount_remaining,
            subscription.pk,
            intent.id,
        )
        payment = Payment.objects.get(customer=local)
        assert (
            payment.pk,
            payment.status,
            payment.amount,
            payment.currency,
            payment.stripe_checkout_session_id,
            payment.stripe_subscription_id,
            payment.stripe_invoice_id,
            payment.stripe_payment_intent_id,
        ) == (
            checkouts[customer]["payment"],
            intent.status,
            intent.amount,
            intent.currency,
            session.id,
            stripe_subscription.id,
            stripe_invoice.id,
            intent.id,
        )
    succeeded = Event.objects.filter(project=tenant_a.project, type="payment.succeeded")
    assert sorted(e.data["object"]["id"] for e in succeeded) == sorted(
        c["payment"] for c in checkouts.values()
    )
    assert (
        _outbound("subscription.created"),
        _outbound("invoice.paid"),
        _outbound("checkout.completed"),
    ) == (
        6,
        6,
        6,
    )

    assert _deadlocks() == deadlocks_before
    for worker in started:
        output = worker.output()
        assert "deadlock detected" not in output
        assert f"{MARK} retry" not in output
        assert "database conflict" not in output


# --- the database drops the workers' sessions (#14 point 8) --------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_database_sessions_were_ended_processes_the_next_events(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, workers, settings, monkeypatch
):
    """A PostgreSQL restart ends every session; the worker keeps its connection between tasks
    (CELERY_DB_REUSE_MAX), so the next task starts on a dead one. Simulated without restarting the shared
    server: pg_terminate_backend on the worker's sessions, which is what a restart does to them."""
    worker = workers.start("w1", ready=False)
    first = _subscribe(api, tenant_a, stripe_emulator, "user-1")
    first_deliveries = _capture(stripe_emulator)
    second = _subscribe(api, tenant_a, stripe_emulator, "user-2")
    second_deliveries = _capture(stripe_emulator)
    worker.wait_ready()
    client = Client()
    for delivery in first_deliveries:
        deliver(client, delivery)
    assert wait_for(_all_processed(9), timeout=30), _unprocessed()

    # Every delivery rang (bells rung while one was waiting to be sent went with it); a bell whose events a worker
    # already running applied finds nothing. All that were received ran: idle.
    def counts() -> tuple[int, int]:
        output = worker.output()
        received = len(re.findall(r"Task webhooks\.tasks\.\w+\[[^]]+\] received", output))
        finished = len(re.findall(rf"{re.escape(MARK)} task webhooks\.tasks\.\w+ SUCCESS", output))
        return received, finished

    def idle() -> bool:
        """Every task received has finished, and none came in the next second (no bell left on its way)."""
        before = counts()
        if before[0] < 1 or before[0] != before[1]:
            return False
        time.sleep(1.0)
        return counts() == before

    from config.celery import publisher

    assert publisher.idle(timeout=30)  # every bell the intake handed over is on the broker
    assert wait_for(idle, timeout=30), worker.output()[-3000:]

    assert len(terminate_worker_sessions()) == 1  # the pool process's one session, kept between tasks
    assert worker_sessions() == []
    for delivery in second_deliveries:
        deliver(client, delivery)

    assert wait_for(_all_processed(18), timeout=30), (_unprocessed(), worker.output()[-3000:])
    assert worker.process.poll() is None
    # The dead session was noticed before a task used it (core.db.connections_check): no task failed on it.
    assert f"{MARK} retry" not in worker.output()
    assert set(StripeEvent.objects.values_list("attempts", flat=True)) == {1}
    assert Payment.objects.get(pk=first["payment"]).status == "succeeded"
    assert Payment.objects.get(pk=second["payment"]).status == "succeeded"
    assert _outbound("payment.succeeded") == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_session_lost_while_an_event_runs_is_retried_and_the_event_applied_once(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, workers
):
    """The session ends while the worker waits for Stripe in the middle of an event (what a restart does to a
    busy worker). The task retries once the database answers, takes the event back, and applies it: effects
    once."""
    worker = workers.start("w1", ready=False)
    created = _subscribe(api, tenant_a, stripe_emulator, "user-1")
    held, others = _split(_capture(stripe_emulator), "invoice.paid", "invoice_payment.paid")
    before = [d for d in others if _type(d) in ("customer.updated", "invoice.created", "invoice.finalized")]
    after = [d for d in others if d not in before]
    worker.wait_ready()
    client = Client()
    for delivery in before:
        deliver(client, delivery)
    assert wait_for(_all_processed(3), timeout=30), _unprocessed()
    assert wait_for(worker.settled, timeout=30), worker.output()[-3000:]

    # invoice.paid arrives before the invoice_payment event naming its intent: the processor asks Stripe.
    workers.stripe.hold(INVOICE_PAYMENTS)
    deliver(client, held["invoice.paid"])
    assert workers.stripe.arrived.wait(30), worker.output()[-3000:]
    event = StripeEvent.objects.get(type="invoice.paid")
    assert (event.status, event.attempts) == ("processing", 1)
    assert len(terminate_worker_sessions()) == 1
    workers.stripe.release()

    assert wait_for(lambda: StripeEvent.objects.get(pk=event.pk).status == "processed", timeout=30), (
        _unprocessed(),
        worker.output()[-3000:],
    )
    event.refresh_from_db()
    assert (event.attempts, event.conflicts, event.last_error, event.next_attempt_at) == (2, 0, "", None)
    assert worker.output().count(f"{MARK} retry") == 1  # the task's retry after the lost session
    assert workers.stripe.calls(INVOICE_PAYMENTS) == 2  # asked before the loss, and again by the retry
    payment = Payment.objects.get(pk=created["payment"])
    invoice = Invoice.objects.get()
    assert (payment.status, payment.stripe_invoice_id, invoice.status) == (
        "succeeded",
        invoice.stripe_invoice_id,
        "paid",
    )
    assert payment.stripe_payment_intent_id == invoice.stripe_payment_intent_id != ""
    assert (_outbound("invoice.paid"), _outbound("payment.succeeded")) == (1, 1)

    for delivery in [held["invoice_payment.paid"], *after]:
        deliver(client, delivery)
    assert wait_for(_all_processed(9), timeout=30), _unprocessed()
    assert (_outbound("invoice.paid"), _outbound("payment.succeeded")) == (1, 1)


# --- a killed worker (#14 point 9) ---------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_of_a_killed_worker_is_applied_by_another_after_the_sweep_never_while_it_lives(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, workers
):
    both = [workers.start(name, ready=False) for name in ("w1", "w2")]
    created = _subscribe(api, tenant_a, stripe_emulator, "user-1")
    held, others = _split(_capture(stripe_emulator), "invoice.paid", "invoice_payment.paid")
    before = [d for d in others if _type(d) in ("customer.updated", "invoice.created", "invoice.finalized")]
    for worker in both:
        worker.wait_ready()
    client = Client()
    for delivery in before:
        deliver(client, delivery)
    assert wait_for(_all_processed(3), timeout=30), _unprocessed()
    assert wait_for(lambda: all(w.settled() for w in both), timeout=30)

    workers.stripe.hold(INVOICE_PAYMENTS)  # the worker applying invoice.paid hangs on Stripe
    deliver(client, held["invoice.paid"])
    assert workers.stripe.arrived.wait(30)
    event = StripeEvent.objects.get(type="invoice.paid")
    holder_name = lock_holder(f"stripe-events:{event.ordering_key}")
    holder = next(w for w in both if holder_name and holder_name.endswith(f"-{w.name}"))
    other = next(w for w in both if w is not holder)

    # The holder is alive: the sweep queues the key (its event looks stuck), the other worker's task is turned
    # away by the key's lock, and the event stays with its worker.
    finished = other.finished_tasks()
    assert sweep_later() == 1
    assert wait_for(lambda: other.finished_tasks() == finished + 1, timeout=30), other.output()[-3000:]
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("processing", 1)
    assert _outbound("payment.succeeded") == 0
    assert workers.stripe.calls(INVOICE_PAYMENTS) == 1

    # The holder dies (SIGKILL: no cleanup). PostgreSQL ends its session, and with it the key's lock.
    killed_at = timezone.now()
    holder.kill()
    workers.stripe.release()
    assert wait_for(lambda: not worker_sessions(holder), timeout=10)
    assert sweep_later() == 1
    assert wait_for(lambda: StripeEvent.objects.get(pk=event.pk).status == "processed", timeout=60), (
        _unprocessed(),
        other.output()[-3000:],
    )
    event.refresh_from_db()
    assert event.processing_started_at > killed_at
    assert event.processed_at - killed_at < timedelta(seconds=30)  # well under the 2 minutes asked for
    assert (event.attempts, event.conflicts, event.last_error) == (2, 0, "")
    # The task marks its event processed before Celery reports the task finished: wait for the report.
    assert wait_for(lambda: other.finished_tasks() == finished + 2, timeout=10), other.output()[-3000:]
    payment = Payment.objects.get(pk=created["payment"])
    assert (payment.status, payment.stripe_payment_intent_id) == (
        "succeeded",
        Invoice.objects.get().stripe_payment_intent_id,
    )
    assert (_outbound("invoice.paid"), _outbound("payment.succeeded")) == (1, 1)


# --- conflicts ------------------------------------------------------------------------------------------------


def _other_session():
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        autocommit=True,
    )


def _serialization_failure(row, other):
    """Our SERIALIZABLE transaction reads a row, another session changes it, and ours then writes it."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        cursor.execute("SELECT name FROM billing_customer WHERE id = %s", [row.pk])
        other.execute("UPDATE billing_customer SET name = 'other' WHERE id = %s", [row.pk])
        cursor.execute("UPDATE billing_customer SET name = 'ours' WHERE id = %s", [row.pk])


def _deadlock(rows, other):
    """Ours locks A then wants B; the other session holds B and wants A. Ours detects the cycle first (its
    deadlock_timeout is shorter), so ours is the one PostgreSQL aborts."""
    a, b = rows

    def other_wants_a():
        other.execute("UPDATE billing_customer SET name = 'other' WHERE id = %s", [a.pk])
        other.execute("COMMIT")

    thread = threading.Thread(target=other_wants_a, daemon=True)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL deadlock_timeout = '50ms'")
            cursor.execute("UPDATE billing_customer SET name = 'ours' WHERE id = %s", [a.pk])
            other.execute("BEGIN")
            other.execute("SET LOCAL deadlock_timeout = '10s'")
            other.execute("UPDATE billing_customer SET name = 'other' WHERE id = %s", [b.pk])
            thread.start()

            def other_waits_for_us():
                cursor.execute(
                    "SELECT pg_backend_pid() = ANY(pg_blocking_pids(%s))", [other.info.backend_pid]
                )
                return cursor.fetchone()[0]

            assert wait_for(other_waits_for_us, timeout=10)
            cursor.execute("UPDATE billing_customer SET name = 'ours' WHERE id = %s", [b.pk])
    finally:
        thread.join(10)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
@pytest.mark.parametrize(("conflict", "sqlstate"), [("serialization", "40001"), ("deadlock", "40P01")])
def test_a_database_conflict_inside_a_processor_is_retried_at_once_and_counted(
    tenant_a, monkeypatch, conflict, sqlstate
):
    rows = [CustomerFactory(project=tenant_a.project), CustomerFactory(project=tenant_a.project)]
    deadlocks_before = _deadlocks()
    other = _other_session()
    calls, raised = [], []

    def conflicting(event):
        calls.append(event.stripe_event_id)
        if len(calls) == 1:
            try:
                if conflict == "serialization":
                    _serialization_failure(rows[0], other)
                else:
                    _deadlock(rows, other)
            except Exception as exc:
                raised.append(exc.__cause__.sqlstate)
                raise

    monkeypatch.setitem(registry.HANDLERS, "tollgate.test.conflict", conflicting)
    body = json.dumps(
        {
            "id": "evt_conflict",
            "object": "event",
            "type": "tollgate.test.conflict",
            "created": 1_800_000_000,
            "data": {"object": {"id": "cus_conflict", "object": "customer"}},
        }
    )
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
    try:
        response = Client().post(
            "/webhooks/stripe",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": header},
        )
    finally:
        other.close()
    assert response.status_code == 200
    assert raised == [sqlstate]  # a real conflict from PostgreSQL, not a raised look-alike
    # …and PostgreSQL counted the deadlock where the worker test looks for deadlocks.
    assert _deadlocks() - deadlocks_before == (1 if conflict == "deadlock" else 0)
    assert calls == ["evt_conflict", "evt_conflict"]
    event = StripeEvent.objects.get()
    assert (event.status, event.attempts, event.conflicts, event.last_error, event.next_attempt_at) == (
        "processed",
        1,
        1,
        "",
        None,
    )
    # Retried in place within the same attempt: no retry delay (the first is 5 s) was waited.
    assert event.processed_at - event.processing_started_at < timedelta(seconds=1)


# --- ordering keys and the key's lock --------------------------------------------------------------------------


def _event_of(sdk, event_type, object_id):
    for event in sdk.v1.events.list({"type": event_type, "limit": 100}).data:
        body = event.to_dict(for_json=True)
        if body["data"]["object"]["id"] == object_id:
            return body
    raise AssertionError(f"no {event_type} for {object_id}")


def _complete(stripe_emulator, session_id):
    completed = stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{session_id}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert completed.status == 200


def test_ordering_key_of_stripes_objects(stripe_sdk, stripe_emulator):
    """Stripe's own event bodies (the emulator's /v1/events): a customer's objects share the customer's key;
    a guest payment's intent, charge, dispute and session share the intent's; an invoice's payment record,
    which names no customer, has the invoice's."""
    sdk = stripe_sdk()
    customer = sdk.v1.customers.create({"email": "a@example.com"})
    monthly = sdk.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 1000,
            "recurring": {"interval": "month"},
            "product_data": {"name": "P"},
        }
    )
    subscription = sdk.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"price": monthly.id}], "default_payment_method": "pm_card_visa"}
    )
    invoice = sdk.v1.invoices.retrieve(subscription.latest_invoice, {"expand": ["payments"]})
    invoice_payment = invoice.payments.data[0]
    customer_intent = sdk.v1.payment_intents.retrieve(invoice_payment.payment.payment_intent)
    guest = sdk.v1.payment_intents.create(
        {"amount": 2000, "currency": "usd", "payment_method": "pm_card_createDispute", "confirm": True}
    )
    dispute = sdk.v1.disputes.list({"limit": 1}).data[0]
    session = sdk.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": monthly.id, "quantity": 1}],
            "success_url": OK,
        }
    )
    guest_session = sdk.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {"currency": "usd", "unit_amount": 500, "product_data": {"name": "x"}},
                    "quantity": 1,
                }
            ],
            "success_url": OK,
        }
    )
    _complete(stripe_emulator, session.id)
    _complete(stripe_emulator, guest_session.id)
    guest_session = sdk.v1.checkout.sessions.retrieve(guest_session.id)
    product = sdk.v1.products.retrieve(monthly.product)

    of = lambda event_type, object_id, account=PLATFORM_ACCOUNT: ordering_key(  # noqa: E731
        account, _event_of(sdk, event_type, object_id)
    )
    assert of("customer.created", customer.id) == f"platform:{customer.id}"
    assert of("customer.created", customer.id, "proj_own") == f"proj_own:{customer.id}"
    assert of("customer.subscription.created", subscription.id) == f"platform:{customer.id}"
    assert of("invoice.paid", invoice.id) == f"platform:{customer.id}"
    assert of("payment_intent.succeeded", customer_intent.id) == f"platform:{customer.id}"
    assert of("charge.succeeded", customer_intent.latest_charge) == f"platform:{customer.id}"
    assert of("checkout.session.completed", session.id) == f"platform:{customer.id}"
    assert of("invoice_payment.paid", invoice_payment.id) == f"platform:{invoice.id}"
    assert dispute.payment_intent == guest.id
    assert of("payment_intent.succeeded", guest.id) == f"platform:{guest.id}"
    assert of("charge.succeeded", guest.latest_charge) == f"platform:{guest.id}"
    assert of("charge.dispute.created", dispute.id) == f"platform:{guest.id}"
    assert of("checkout.session.completed", guest_session.id) == f"platform:{guest_session.payment_intent}"
    assert of("product.created", product.id) == f"platform:{product.id}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_events_that_name_no_customer_are_handed_over_to_their_customers_key(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    """A dispute names a payment intent, an invoice's payment record an invoice: stored under those keys, they
    are applied under their customer's key as soon as the customer is known here, so one customer's events
    never run beside each other; the claim that handed one over is not counted as an attempt."""
    api.post("/api/v1/customers", {"external_id": "user-d", "email": "d@example.com"}, key=tenant_a.key)
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "user-d", "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    ).json()
    completed = stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{created['stripe_session_id']}/complete",
        query="",
        body=b"card=4000000000000259",  # succeeds, then a dispute opens
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert completed.status == 200
    stripe_webhooks.deliver()

    customer = Customer.objects.get(project=tenant_a.project, external_id="user-d")
    customer_key = f"platform:{customer.stripe_customer_id}"
    payment = Payment.objects.get(pk=created["payment"])
    dispute = StripeEvent.objects.get(type="charge.dispute.created")
    record = StripeEvent.objects.get(type="invoice_payment.paid")
    assert ordering_key(PLATFORM_ACCOUNT, dispute.payload) == f"platform:{payment.stripe_payment_intent_id}"
    assert ordering_key(PLATFORM_ACCOUNT, record.payload) == f"platform:{record.data_object['invoice']}"
    assert (dispute.ordering_key, dispute.status, dispute.attempts) == (customer_key, "processed", 1)
    assert (record.ordering_key, record.status, record.attempts) == (customer_key, "processed", 1)
    assert set(StripeEvent.objects.values_list("ordering_key", flat=True)) == {customer_key}
    assert (payment.status, payment.dispute_status) == ("disputed", "needs_response")
    invoice = Invoice.objects.get(customer=customer)
    assert invoice.stripe_payment_intent_id == record.data_object["payment"]["payment_intent"]


def _invoices_of(key):
    """The Stripe invoices of the customer whose ordering key this is."""
    stripe_customer = key.partition(":")[2]
    return set(
        Invoice.objects.filter(customer__stripe_customer_id=stripe_customer).values_list(
            "stripe_invoice_id", flat=True
        )
    )


def _stored(event_id, event_type, customer="cus_pipeline", **fields):
    body = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": 1_800_000_000,
        "data": {"object": {"id": customer, "object": "customer"}},
    }
    return StripeEvent.objects.create(
        account=PLATFORM_ACCOUNT,
        stripe_event_id=event_id,
        type=event_type,
        stripe_created=body["created"],
        payload=body,
        ordering_key=ordering_key(PLATFORM_ACCOUNT, body),
        **fields,
    )


def _orphaned(event_id, attempts=1):
    """An event a worker claimed five minutes ago and died applying (its status still `processing`)."""
    return _stored(
        event_id,
        "tollgate.test.count",
        status=StripeEvent.Status.PROCESSING,
        attempts=attempts,
        processing_started_at=timezone.now() - timedelta(minutes=5),
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_key_being_applied_turns_others_away_and_its_holder_applies_what_arrived_meanwhile(monkeypatch):
    entered, release = threading.Event(), threading.Event()
    calls = []

    def blocking(event):
        calls.append((event.stripe_event_id, threading.current_thread().name))
        if event.stripe_event_id == "evt_first":
            entered.set()
            assert release.wait(10)

    monkeypatch.setitem(registry.HANDLERS, "tollgate.test.block", blocking)
    first = _stored("evt_first", "tollgate.test.block")
    key = first.ordering_key
    applied = []

    def holder():
        try:
            applied.append(stripe_events_process_key(key=key))
        finally:
            connection.close()

    thread = threading.Thread(target=holder, name="holder")
    thread.start()
    try:
        assert entered.wait(10)
        # Stored while the key is being applied: its task (run eagerly here) is turned away by the lock…
        second, created = stripe_event_store(
            account=PLATFORM_ACCOUNT,
            project=None,
            body={**first.payload, "id": "evt_second", "created": 1_800_000_001},
        )
        assert created
        # …and so is any other call for the key, whatever queued it.
        assert stripe_events_process_key(key=key) == 0
        second.refresh_from_db()
        assert (second.status, second.attempts) == ("received", 0)
    finally:
        release.set()
        thread.join(10)
    assert applied == [2]  # the holder applied its event and the one stored meanwhile
    assert calls == [("evt_first", "holder"), ("evt_second", "holder")]
    assert set(StripeEvent.objects.values_list("status", "attempts")) == {("processed", 1)}


def _blocking_on_evt_one(monkeypatch, settings):
    """A real broker's bells (not eager, the broker emptied) and a handler that records each event it applies and
    holds `evt_one` until released: (entered, release, calls, the body of a stored event to copy)."""
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    _queued_tasks()  # an empty broker
    entered, release = threading.Event(), threading.Event()
    calls = []

    def blocking(event):
        calls.append(event.stripe_event_id)
        if event.stripe_event_id == "evt_one":
            entered.set()
            assert release.wait(10)

    monkeypatch.setitem(registry.HANDLERS, "tollgate.test.block", blocking)
    body = _stored("evt_template", "tollgate.test.block").payload
    StripeEvent.objects.filter(stripe_event_id="evt_template").delete()
    return entered, release, calls, body


def _queued_tasks() -> list[list]:
    """The bells waiting on the (in-memory) broker: each one's event id and key, once the background publisher
    has sent what it was handed (the intake publishes there)."""
    from config.celery import app, publisher

    assert publisher.idle(timeout=30), "the background publisher did not publish within 30 s"

    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue("stripe-events")
        messages = []
        while queue.qsize():
            message = queue.get(block=False)
            event_id, key, *_ = ast.literal_eval(message.headers["argsrepr"])
            messages.append(f"({event_id!r}, {key!r})")
            message.ack()
        queue.close()
    return messages


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_every_event_rings_and_the_worker_applying_its_key_applies_the_events_stored_meanwhile(
    monkeypatch, settings
):
    """A checkout's events arrive together: each rings a worker; the first worker takes the customer's key and
    applies them all, those stored while it runs included; the other bells find nothing due."""

    entered, release, calls, body = _blocking_on_evt_one(monkeypatch, settings)

    def store(event_id, created):
        event, stored = stripe_event_store(
            account=PLATFORM_ACCOUNT, project=None, body={**body, "id": event_id, "created": created}
        )
        assert stored
        return event

    one, two = store("evt_one", 1_800_000_001), store("evt_two", 1_800_000_002)
    key = one.ordering_key
    assert _queued_tasks() == [f"('{one.pk}', '{key}')", f"('{two.pk}', '{key}')"]

    from webhooks.tasks import process_stripe_event

    ran = []
    worker = threading.Thread(
        target=lambda: (ran.append(process_stripe_event(one.pk, key)), connection.close())
    )
    worker.start()
    try:
        assert entered.wait(10)
        three = store("evt_three", 1_800_000_003)
        assert _queued_tasks() == [f"('{three.pk}', '{key}')"]
    finally:
        release.set()
        worker.join(10)
    assert ran == [3]
    assert calls == ["evt_one", "evt_two", "evt_three"]
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert [process_stripe_event(two.pk, key), process_stripe_event(three.pk, key)] == [0, 0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_bell_that_finds_nothing_due_ends_with_one_statement_and_no_lock():
    from django.test.utils import CaptureQueriesContext

    from webhooks.tasks import process_stripe_event

    _stored("evt_done", "tollgate.test.count")
    StripeEvent.objects.update(status="processed")
    with CaptureQueriesContext(connection) as queries:
        assert process_stripe_event() == 0
    assert len(queries.captured_queries) == 1
    assert "pg_try_advisory_lock" not in queries.captured_queries[0]["sql"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_left_processing_by_a_dead_worker_is_taken_back_and_applied_once(monkeypatch):
    calls = []
    monkeypatch.setitem(
        registry.HANDLERS, "tollgate.test.count", lambda event: calls.append(event.stripe_event_id)
    )
    orphan = _orphaned("evt_orphan")
    assert stripe_events_process_key(key=orphan.ordering_key) == 1
    assert stripe_events_process_key(key=orphan.ordering_key) == 0
    orphan.refresh_from_db()
    assert (orphan.status, orphan.attempts, orphan.last_error) == ("processed", 2, "")
    assert calls == [orphan.stripe_event_id]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_task_for_an_event_its_key_already_applied_answers_with_one_query(monkeypatch):
    """The first task of a customer's burst applies every due event of the key; the tasks queued for the others
    find their event applied and end with one read, without taking the key's lock."""
    from django.test.utils import CaptureQueriesContext

    from webhooks.services.process import stripe_event_process

    calls = []
    monkeypatch.setitem(
        registry.HANDLERS, "tollgate.test.count", lambda event: calls.append(event.stripe_event_id)
    )
    first = _stored("evt_first", "tollgate.test.count")
    second = _stored("evt_second", "tollgate.test.count")
    assert stripe_event_process(event_id=first.pk) == "processed"
    assert calls == ["evt_first", "evt_second"]
    with CaptureQueriesContext(connection) as queries:
        assert stripe_event_process(event_id=second.pk) == "processed"
    assert len(queries.captured_queries) == 1
    assert "advisory" not in queries.captured_queries[0]["sql"]
    assert calls == ["evt_first", "evt_second"]
    second.refresh_from_db()
    assert (second.status, second.attempts) == ("processed", 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_keys_task_that_finds_it_drained_ends_with_one_read_and_a_dead_workers_event_is_taken_back(
    monkeypatch,
):
    """Eager (the embedded mode): applying a key an earlier event's task drained ends with one read, without the
    key's lock; an event left `processing` (its worker died) still goes to the lock."""
    from django.test.utils import CaptureQueriesContext

    calls = []
    monkeypatch.setitem(
        registry.HANDLERS, "tollgate.test.count", lambda event: calls.append(event.stripe_event_id)
    )
    first = _stored("evt_first", "tollgate.test.count")
    assert stripe_events_process_key(key=first.ordering_key) == 1
    with CaptureQueriesContext(connection) as queries:
        assert stripe_events_process_key(key=first.ordering_key) == 0
    assert len(queries.captured_queries) == 1
    assert "advisory" not in queries.captured_queries[0]["sql"]

    orphan = _orphaned("evt_orphan")
    assert stripe_events_process_key(key=orphan.ordering_key) == 1
    assert calls == [first.stripe_event_id, orphan.stripe_event_id]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_claim_and_the_outcome_commit_without_a_flush_and_nothing_else_does(monkeypatch):
    """The pipeline's bookkeeping (claim, outcome) is replayable, so its statements commit with
    synchronous_commit off; a processor's writes are the money state and commit durably, and so does an
    outcome recorded inside someone else's transaction (eager processing within a request)."""
    from django.test.utils import CaptureQueriesContext

    written = []

    def processor(event):
        with transaction.atomic():
            Customer.objects.filter(pk="cus_none").update(email="x@example.com")
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('synchronous_commit')")
                written.append(cursor.fetchone()[0])

    monkeypatch.setitem(registry.HANDLERS, "tollgate.test.write", processor)
    event = _stored("evt_durable", "tollgate.test.write")
    with CaptureQueriesContext(connection) as queries:
        assert stripe_events_process_key(key=event.ordering_key) == 1
    assert written == ["on"]
    bookkeeping = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE webhooks_stripeevent")
    ]
    assert len(bookkeeping) == 2  # the claim and the outcome
    assert all("set_config('synchronous_commit', 'off', true)" in sql for sql in bookkeeping)

    again = _stored("evt_inside", "tollgate.test.write")
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert stripe_events_process_key(key=again.ordering_key) == 1
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('synchronous_commit')")
            assert cursor.fetchone()[0] == "on"
    inside = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE webhooks_stripeevent")
    ]
    assert len(inside) == 2
    assert not any("synchronous_commit" in sql for sql in inside)


@pytest.mark.django_db
def test_the_sweep_queues_each_stuck_key_once(monkeypatch):
    """Three stuck events of one customer and one of another: two keys, each queued once (the task applies
    every due event of its key)."""
    calls = []
    monkeypatch.setitem(
        registry.HANDLERS, "tollgate.test.count", lambda event: calls.append(event.stripe_event_id)
    )
    for event_id, customer in (
        ("evt_a1", "cus_a"),
        ("evt_a2", "cus_a"),
        ("evt_a3", "cus_a"),
        ("evt_b1", "cus_b"),
    ):
        _stored(event_id, "tollgate.test.count", customer=customer)
    assert sweep_later() == 2
    assert sorted(calls) == ["evt_a1", "evt_a2", "evt_a3", "evt_b1"]
    assert set(StripeEvent.objects.values_list("status", "attempts")) == {("processed", 1)}


@pytest.mark.django_db
def test_an_event_whose_worker_died_at_its_last_attempt_is_failed_not_applied_again(monkeypatch):
    calls = []
    monkeypatch.setitem(
        registry.HANDLERS, "tollgate.test.count", lambda event: calls.append(event.stripe_event_id)
    )
    orphan = _orphaned("evt_poison", attempts=MAX_ATTEMPTS)
    stripe_events_process_key(key=orphan.ordering_key)
    orphan.refresh_from_db()
    assert (orphan.status, orphan.attempts, calls) == ("failed", MAX_ATTEMPTS, [])
    assert orphan.last_error == f"Its worker died while applying it ({MAX_ATTEMPTS} attempts)."


# --- graceful shutdown (#12) ----------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sigterm_lets_the_running_event_finish_before_the_worker_exits(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, workers
):
    """A deploy stops the worker with SIGTERM while it waits for Stripe in the middle of `invoice.paid`: Celery's
    warm shutdown takes no new task, lets the running one finish (applied once, acknowledged), then exits 0."""
    worker = workers.start("w1", ready=False)
    created = _subscribe(api, tenant_a, stripe_emulator, "user-1")
    held, others = _split(_capture(stripe_emulator), "invoice.paid", "invoice_payment.paid")
    before = [d for d in others if _type(d) in ("customer.updated", "invoice.created", "invoice.finalized")]
    worker.wait_ready()
    client = Client()
    for delivery in before:
        deliver(client, delivery)
    assert wait_for(_all_processed(3), timeout=30), _unprocessed()

    workers.stripe.hold(INVOICE_PAYMENTS)
    deliver(client, held["invoice.paid"])
    assert workers.stripe.arrived.wait(30), worker.output()[-3000:]
    worker.process.send_signal(signal.SIGTERM)  # to the main process, as a container runtime does
    time.sleep(0.5)
    assert worker.process.poll() is None  # still finishing the event it holds
    workers.stripe.release()

    assert worker.process.wait(timeout=30) == 0, worker.output()[-3000:]
    event = StripeEvent.objects.get(type="invoice.paid")
    assert (event.status, event.attempts, event.last_error) == ("processed", 1, "")
    assert Payment.objects.get(pk=created["payment"]).status == "succeeded"
    assert (_outbound("invoice.paid"), _outbound("payment.succeeded")) == (1, 1)
    assert "Warm shutdown" in worker.output()


# --- logs: one line per event, under the request id that queued it (#12) ----------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_worker_logs_each_event_once_under_the_request_id_that_queued_it(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, workers
):
    worker = workers.start("w1", ready=False)
    _subscribe(api, tenant_a, stripe_emulator, "user-1")
    url, body, headers = next(
        d for d in _capture(stripe_emulator) if _type(d) == "checkout.session.completed"
    )
    worker.wait_ready()
    response = Client().post(
        urlsplit(url).path,
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": headers["Stripe-Signature"], "X-Request-Id": "trace-corr-1"},
    )
    assert response.status_code == 200
    assert wait_for(_all_processed(1), timeout=30), _unprocessed()
    event = StripeEvent.objects.get()
    assert wait_for(lambda: f"{MARK} task webhooks.tasks.process_stripe_event" in worker.output(), timeout=10)
    lines = [
        line for line in worker.output().splitlines() if f"Stripe event {event.stripe_event_id} " in line
    ]
    assert len(lines) == 1, worker.output()[-3000:]
    assert "[trace-corr-1]" in lines[0]
    assert f"Stripe event {event.stripe_event_id} (checkout.session.completed): processed" in lines[0]
    # Celery's own line for the task carries the same correlation id.
    assert any("[trace-corr-1]" in line and "succeeded" in line for line in worker.output().splitlines())


def test_the_events_json_line_names_the_stripe_event_and_the_payment(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    import logging

    from tests.logs import logged

    with logged("webhooks.services.process", logging.INFO) as stream:
        created = _subscribe(api, tenant_a, stripe_emulator, "user-1")
        stripe_webhooks.deliver()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    completed = next(line for line in lines if line.get("event_type") == "checkout.session.completed")
    event = StripeEvent.objects.get(type="checkout.session.completed")
    assert (completed["stripe_event"], completed["status"], completed["payment"]) == (
        event.stripe_event_id,
        "processed",
        created["payment"],
    )
    assert (
        len(
            [line for line in lines if line.get("stripe_event") == event.stripe_event_id and "status" in line]
        )
        == 1
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_each_outcome_is_recorded_before_the_next_event_of_the_batch_runs(monkeypatch):
    """A worker that dies in the middle of a batch leaves only the event it was applying to be applied again:
    every earlier event of the batch already reads `processed` in the database when the next one starts."""
    seen = []

    def processor(event):
        seen.append(
            (
                event.stripe_event_id,
                list(StripeEvent.objects.order_by("stripe_event_id").values_list("status")),
            )
        )

    monkeypatch.setitem(registry.HANDLERS, "tollgate.test.look", processor)
    events = [_stored(f"evt_{n}", "tollgate.test.look") for n in range(3)]

    assert stripe_events_process_key(key=events[0].ordering_key) == 3

    assert seen == [
        ("evt_0", [("processing",), ("processing",), ("processing",)]),
        ("evt_1", [("processed",), ("processing",), ("processing",)]),
        ("evt_2", [("processed",), ("processed",), ("processing",)]),
    ]
    assert set(StripeEvent.objects.values_list("status", "attempts")) == {("processed", 1)}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_customer_linked_during_a_batch_is_found_by_its_later_events():
    """Nobody's at the batch's first event, linked by our metadata at its second (a customer Checkout created):
    the third event finds it (here: a deletion at Stripe unlinks it), and nothing of "nobody's" outlives a batch."""
    customer = CustomerFactory()
    events = [
        _stored("evt_a", "customer.updated", customer="cus_new"),
        _stored("evt_b", "customer.updated", customer="cus_new"),
        _stored("evt_c", "customer.deleted", customer="cus_new"),
    ]
    linking = events[1].payload
    linking["data"]["object"]["metadata"] = {"tollgate_customer": customer.pk}
    StripeEvent.objects.filter(pk=events[1].pk).update(payload=linking)

    assert stripe_events_process_key(key=events[0].ordering_key) == 3

    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    customer.refresh_from_db()
    assert customer.stripe_customer_id == ""  # linked by evt_b, unlinked by evt_c
    CustomerFactory(project=customer.project, external_id="other", stripe_customer_id="cus_later")
    later = _stored("evt_d", "customer.deleted", customer="cus_later")
    assert stripe_events_process_key(key=later.ordering_key) == 1
    assert Customer.objects.get(external_id="other").stripe_customer_id == ""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_while_a_worker_runs_and_none_is_idle_the_intake_rings_no_bell_and_the_runner_applies_the_event(
    monkeypatch, settings
):
    """The Stripe burst's bells: a worker that runs (RUNNING_LOCK held) sees every event stored meanwhile, of its
    key or another, in its loop or in its look after letting go; so the intake rings only when a worker process
    is idle (IDLE_LOCK) or none runs. Here none is idle: the events stored while the worker runs ring nothing,
    and the worker applies them all before it ends."""
    from webhooks.services.process import IDLE_LOCK, bell_needed
    from webhooks.tasks import process_stripe_event

    entered, release, calls, body = _blocking_on_evt_one(monkeypatch, settings)

    def store(event_id, created, customer="cus_pipeline"):
        data = {"object": {"id": customer, "object": "customer"}}
        event, stored = stripe_event_store(
            account=PLATFORM_ACCOUNT,
            project=None,
            body={**body, "id": event_id, "created": created, "data": data},
            background=True,
        )
        assert stored
        return event

    assert bell_needed() is True  # no worker runs
    one = store("evt_one", 1_800_000_001)
    assert _queued_tasks() == [f"('{one.pk}', '{one.ordering_key}')"]

    ran = []
    worker = threading.Thread(
        target=lambda: (ran.append(process_stripe_event(one.pk, "")), connection.close())
    )
    worker.start()
    try:
        assert entered.wait(10)
        assert bell_needed() is False
        same_key = store("evt_two", 1_800_000_002)
        other_key = store("evt_three", 1_800_000_003, customer="cus_other")
        assert _queued_tasks() == []
        # A worker process idle beside it: a bell puts it to work.
        idle_taken, idle_end = threading.Event(), threading.Event()
        idle = threading.Thread(
            target=lambda: (
                lock_shared_take(IDLE_LOCK),
                idle_taken.set(),
                idle_end.wait(10),
                connection.close(),
            )
        )
        idle.start()
        assert idle_taken.wait(10)
        assert bell_needed() is True
        four = store("evt_four", 1_800_000_004, customer="cus_four")
        assert _queued_tasks() == [f"('{four.pk}', '{four.ordering_key}')"]
        idle_end.set()
        idle.join(10)
    finally:
        release.set()
        worker.join(10)
    assert ran == [4]
    assert sorted(calls) == ["evt_four", "evt_one", "evt_three", "evt_two"]
    assert calls[:2] == ["evt_one", "evt_two"]  # the key's order
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert (same_key.ordering_key == one.ordering_key, other_key.ordering_key != one.ordering_key) == (
        True,
        True,
    )
    assert bell_needed() is True  # the worker let go of RUNNING_LOCK


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_stripe_events_worker_process_says_it_is_idle_between_tasks_and_nothing_once_dead(workers):
    """The intake's bell rule reads it (`bell_needed`): a real worker's pool process holds IDLE_LOCK from its
    start, lets go of it while a task runs, and holds nothing once killed (PostgreSQL ends its session)."""
    from webhooks.services.process import IDLE_LOCK, RUNNING_LOCK, bell_needed
    from webhooks.tasks import process_stripe_event

    worker = workers.start("w1")
    assert wait_for(lambda: locks_shared_held(IDLE_LOCK, RUNNING_LOCK) == {IDLE_LOCK}, timeout=10)
    assert bell_needed() is True
    process_stripe_event.delay()  # a bell that finds nothing: the process is busy, then idle again
    assert wait_for(worker.settled, timeout=30), worker.output()[-3000:]
    assert locks_shared_held(IDLE_LOCK, RUNNING_LOCK) == {IDLE_LOCK}
    worker.kill()
    assert wait_for(lambda: locks_shared_held(IDLE_LOCK) == set(), timeout=10)
    assert bell_needed() is True  # no worker runs: a stored event rings for the next one to start


@pytest.mark.django_db(transaction=True)
def test_an_event_applied_by_a_worker_woken_by_another_bell_is_logged_under_its_own_request_id(
    monkeypatch, settings
):
    """Few bells ring in a burst (a running worker sees the new events), so the worker's task is often another
    event's, or the sweep's: each event's line carries the id of the request that stored it, none the task's."""
    import logging

    from config.celery import app
    from core import context
    from tests.logs import logged
    from webhooks.tasks import process_stripe_event

    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    body = _stored("evt_template", "tollgate.test.count").payload
    StripeEvent.objects.filter(stripe_event_id="evt_template").delete()
    monkeypatch.setitem(registry.HANDLERS, "tollgate.test.count", lambda event: None)
    stored = []
    for event_id, request_id, customer in (("evt_a", "req-a", "cus_a"), ("evt_b", "req-b", "cus_b")):
        token = context.request_id.set(request_id)
        try:
            data = {"object": {"id": customer, "object": "customer"}}
            stored.append(
                stripe_event_store(
                    account=PLATFORM_ACCOUNT, project=None, body={**body, "id": event_id, "data": data}
                )[0]
            )
        finally:
            context.request_id.reset(token)
    token = context.stripe_event.set("-")
    bell = context.request_id.set("req-a")  # the bell of the first event wakes the worker
    try:
        with logged("webhooks.services.process", logging.INFO) as stream:
            assert process_stripe_event(stored[0].pk, stored[0].ordering_key) == 2
    finally:
        context.request_id.reset(bell)
        context.stripe_event.reset(token)
    lines = {
        line["stripe_event"]: line["request_id"]
        for line in map(json.loads, stream.getvalue().splitlines())
        if "stripe_event" in line
    }
    assert lines == {"evt_a": "req-a", "evt_b": "req-b"}
    assert [e.request_id for e in StripeEvent.objects.order_by("stripe_event_id")] == ["req-a", "req-b"]
    assert _queued_tasks()  # each stored event rang (no worker ran): drained here
