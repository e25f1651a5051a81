"""A worker's one line per Stripe event names whom the event concerns (#16 "Logs"), and each beat run of a task
has a correlation id of its own that the tasks it queues carry on."""

import json
import logging
import re
from datetime import timedelta

import pytest
from celery.utils.imports import symbol_by_name
from django.utils import timezone

from config.celery import app as celery_app
from core.task_context import BeatScheduler
from tests.logs import logged
from tests.webhooks.workers import running_workers, wait_for
from webhooks.models import StripeEvent

OK = "https://app.example.com/ok"
BEAT_ID = re.compile(r"beat-requeue_stuck_stripe_events-[0-9a-f]{32}")


def _paid(api, tenant, stripe_emulator, *, customer, reference):
    """A one-time checkout payment through Tollgate's API, paid on Stripe's hosted page."""
    created = api.post(
        "/api/v1/payments",
        {
            "customer": customer,
            "price": "sticker",
            "flow": "checkout",
            "reference": reference,
            "success_url": OK,
            "cancel_url": OK,
        },
        key=tenant.key,
    )
    assert created.status_code == 201, created.content
    completed = stripe_emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{created.json()['stripe_checkout_session_id']}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert completed.status == 200
    return created.json()


def _event_lines(stream):
    """The per-event lines (those with an outcome), by Stripe event type."""
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == "webhooks.services.process" and "status" in line]


def _one(lines, event_type):
    found = [line for line in lines if line["event_type"] == event_type]
    assert len(found) == 1, found
    return found[0]


def test_a_payments_events_name_the_payment_its_reference_the_customer_and_the_project(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks
):
    with logged("webhooks.services.process", logging.INFO) as stream:
        payment = _paid(api, tenant_a, stripe_emulator, customer="user-1", reference="order-42")
        stripe_webhooks.deliver()
    lines = _event_lines(stream)
    for event_type in ("checkout.session.completed", "payment_intent.succeeded"):
        line = _one(lines, event_type)
        event = StripeEvent.objects.get(type=event_type)
        assert {
            key: line[key]
            for key in ("stripe_event", "status", "project", "customer", "payment", "reference", "attempt")
        } == {
            "stripe_event": event.stripe_event_id,
            "status": "processed",
            "project": "alpha",
            "customer": "user-1",
            "payment": payment["id"],
            "reference": "order-42",
            "attempt": 1,
        }


def test_a_customers_event_names_the_customer_and_the_project_and_no_payment(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, stripe_sdk
):
    payment = _paid(api, tenant_a, stripe_emulator, customer="user-7", reference="order-7")
    stripe_webhooks.deliver()
    stripe_customer = StripeEvent.objects.get(type="checkout.session.completed").data_object["customer"]
    with logged("webhooks.services.process", logging.INFO) as stream:
        stripe_sdk().v1.customers.update(stripe_customer, {"name": "Ada"})
        stripe_webhooks.deliver()
    line = _one(_event_lines(stream), "customer.updated")
    assert (line["project"], line["customer"], line["payment"], line["reference"]) == (
        "alpha",
        "user-7",
        "",
        "",
    )
    assert payment["customer"] == "user-7"


def test_an_event_about_a_stripe_customer_not_ours_names_nobody(api, tenant_a, stripe_webhooks, stripe_sdk):
    stranger = stripe_sdk().v1.customers.create({"email": "someone@example.com"})
    with logged("webhooks.services.process", logging.INFO) as stream:
        stripe_sdk().v1.customers.update(stranger.id, {"name": "Someone"})
        stripe_webhooks.deliver()
    line = _one(_event_lines(stream), "customer.updated")
    assert (line["project"], line["customer"], line["payment"], line["reference"]) == ("-", "", "", "")


def _stuck(*customers):
    """Every stored event back to `received` and untouched for a minute: their tasks were lost."""
    return StripeEvent.objects.filter(payload__data__object__customer__in=customers).update(
        status=StripeEvent.Status.RECEIVED, updated_at=timezone.now() - timedelta(minutes=1)
    )


def _stripe_customers():
    """The Stripe customers the stored events' objects belong to (a customer's own events name none)."""
    named = (
        StripeEvent.objects.values_list("payload__data__object__customer", flat=True).order_by().distinct()
    )
    return [customer for customer in named if customer]


def _beat(tmp_path):
    """The scheduler `celery beat` runs, as the settings name it, with the settings' schedule."""
    scheduler_class = symbol_by_name(celery_app.conf.beat_scheduler)
    assert scheduler_class is BeatScheduler
    return scheduler_class(app=celery_app, schedule_filename=str(tmp_path / "celerybeat-schedule"))


def test_each_beat_run_has_its_own_id_shared_by_the_tasks_its_sweep_queues(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, tmp_path
):
    first = _paid(api, tenant_a, stripe_emulator, customer="user-1", reference="order-1")
    second = _paid(api, tenant_a, stripe_emulator, customer="user-2", reference="order-2")
    stripe_webhooks.deliver()
    stripe_customers = _stripe_customers()
    assert len(stripe_customers) == 2
    scheduler = _beat(tmp_path)
    entry = scheduler.schedule["requeue-stuck-stripe-events"]
    ids = []
    try:
        for _ in range(2):
            assert _stuck(*stripe_customers) == 4
            with (
                logged("celery.beat", logging.INFO) as beat,
                logged("webhooks.services.process", logging.INFO) as events,
                logged("celery.app.trace", logging.INFO) as tasks,
            ):
                scheduler.apply_entry(entry)  # eager in the tests: the sweep and what it queues run here
            lines = _event_lines(events)
            assert sorted((line["payment"], line["event_type"]) for line in lines) == sorted(
                (payment["id"], event_type)
                for payment in (first, second)
                for event_type in ("checkout.session.completed", "payment_intent.succeeded")
            )
            traces = [json.loads(line) for line in tasks.getvalue().splitlines()]
            assert sorted(line["data"]["name"] for line in traces) == [
                "webhooks.tasks.process_stripe_event",
                "webhooks.tasks.process_stripe_event",
                "webhooks.tasks.requeue_stuck_stripe_events",
            ]
            (sending,) = [json.loads(line) for line in beat.getvalue().splitlines()]
            assert sending["message"] == (
                "Scheduler: Sending due task requeue-stuck-stripe-events (webhooks.tasks.requeue_stuck_stripe_events)"
            )
            (run_id,) = {line["request_id"] for line in [sending, *traces]}
            assert BEAT_ID.fullmatch(run_id)
            # Each event's line carries the id of the request that stored it, and the sweep's beside it.
            stored_by = dict(StripeEvent.objects.values_list("stripe_event_id", "request_id"))
            assert [(line["request_id"], line["task_request_id"]) for line in lines] == [
                (stored_by[line["stripe_event"]], run_id) for line in lines
            ]
            assert all(line["request_id"].startswith("req_") for line in lines)
            ids.append(run_id)
    finally:
        scheduler.close()
    assert ids[0] != ids[1]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_logs_a_beat_sweeps_task_under_the_runs_id_and_each_event_under_its_delivery(
    api, tenant_a, catalog, stripe_emulator, stripe_webhooks, tmp_path
):
    _paid(api, tenant_a, stripe_emulator, customer="user-1", reference="order-1")
    _paid(api, tenant_a, stripe_emulator, customer="user-2", reference="order-2")
    stripe_webhooks.deliver()
    stripe_customers = _stripe_customers()
    with running_workers(stripe_emulator) as workers:
        worker = workers.start("w1")
        assert _stuck(*stripe_customers) == 4
        scheduler = _beat(tmp_path)
        try:
            scheduler.apply_entry(scheduler.schedule["requeue-stuck-stripe-events"])  # to the broker
        finally:
            scheduler.close()
        assert wait_for(lambda: worker.finished_tasks() == 2, timeout=30), worker.output()[-3000:]
        assert (
            StripeEvent.objects.filter(
                payload__data__object__customer__in=stripe_customers, status="processed"
            ).count()
            == 4
        )
        output = worker.output().splitlines()
    event_lines = [line for line in output if "Stripe event evt_" in line and "): processed" in line]
    assert len(event_lines) == 4, output[-40:]
    sweep_lines = [
        line
        for line in output
        if "Task webhooks.tasks.requeue_stuck_stripe_events[" in line and "succeeded" in line
    ]
    assert len(sweep_lines) == 1, output[-40:]
    (run_id,) = {match.group(0) for line in sweep_lines for match in [BEAT_ID.search(line)] if match}
    assert f"[{run_id}]" in sweep_lines[0]
    # Each event's line is under the request that stored it (the JSON line names the beat run's beside it).
    stored_by = dict(StripeEvent.objects.values_list("stripe_event_id", "request_id"))
    for line in event_lines:
        event_id = re.search(r"Stripe event (evt_\w+)", line).group(1)
        assert stored_by[event_id].startswith("req_")
        assert f"[{stored_by[event_id]}]" in line, line
