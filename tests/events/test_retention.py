"""Retention of deliveries to tenants' endpoints (events.services.retention, core.retention): a delivery that
succeeded or was given up, untouched for WEBHOOK_RETENTION_DAYS, goes in batches with its attempts' log; a
pending one stays whatever its age, and so do the tenant events. `/metrics` reads bounded figures after it."""

import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import Delivery, DeliveryAttempt, Event
from events.services.record import event_redeliver
from events.services.retention import deliveries_prune
from events.tasks import deliveries_prune_task
from tests.events.factories import EventFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _retention(settings):
    settings.WEBHOOK_RETENTION_DAYS = 35


def _ago(days):
    return timezone.now() - timedelta(days=days)


def _delivery(project, name, status, *, created_days_ago, attempted_days_ago=None, endpoint=None):
    """A delivery of a new event of the project, made and last attempted that many days ago, with one attempt
    logged per attempt made."""
    endpoint = endpoint or WebhookEndpointFactory(project=project)
    event = EventFactory(project=project, type=f"test.{name}")
    delivery = Delivery.objects.create(
        project=project,
        event=event,
        endpoint=endpoint,
        status=status,
        attempts=0 if attempted_days_ago is None else 1,
        next_attempt_at=_ago(-1) if status == Delivery.Status.PENDING else None,
    )
    last = None if attempted_days_ago is None else _ago(attempted_days_ago)
    Delivery.objects.filter(pk=delivery.pk).update(created_at=_ago(created_days_ago), last_attempt_at=last)
    if last is not None:
        DeliveryAttempt.objects.create(delivery=delivery, attempted_at=last, status_code=200)
    return name


def _kept():
    return sorted(t.removeprefix("test.") for t in Delivery.objects.values_list("event__type", flat=True))


def test_only_finished_deliveries_untouched_for_the_age_are_pruned_with_their_attempts(tenant_a, tenant_b):
    a, b = tenant_a.project, tenant_b.project
    _delivery(a, "succeeded-old", "succeeded", created_days_ago=40, attempted_days_ago=40)
    _delivery(b, "given-up-old", "failed", created_days_ago=43, attempted_days_ago=40)
    _delivery(a, "never-sent-old", "failed", created_days_ago=40)  # its endpoint was disabled before a try
    kept = [
        _delivery(a, "succeeded-recent", "succeeded", created_days_ago=2, attempted_days_ago=2),
        _delivery(a, "redelivered-yesterday", "succeeded", created_days_ago=90, attempted_days_ago=1),
        _delivery(b, "pending-old", "pending", created_days_ago=90, attempted_days_ago=40),  # retrying
        _delivery(b, "pending-never-tried", "pending", created_days_ago=90),
    ]
    events = Event.objects.count()

    assert deliveries_prune() == 3

    assert _kept() == sorted(kept)
    assert DeliveryAttempt.objects.count() == 3  # the kept ones' (one each that was attempted)
    assert Event.objects.count() == events  # the tenant events stay (`/events`)


def test_batches_are_bounded_and_a_second_run_prunes_nothing(tenant_a):
    endpoint = WebhookEndpointFactory(project=tenant_a.project)
    for n in range(5):
        _delivery(
            tenant_a.project,
            f"old-{n}",
            "succeeded",
            created_days_ago=50,
            attempted_days_ago=50,
            endpoint=endpoint,
        )

    with CaptureQueriesContext(connection) as queries:
        assert deliveries_prune(batch=2) == 5
    deletes = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "webhooks_delivery" ')]

    assert len(deletes) == 3  # 2 + 2 + 1, each batch its own transaction
    assert Delivery.objects.count() == DeliveryAttempt.objects.count() == 0
    assert deliveries_prune(batch=2) == 0
    assert deliveries_prune_task.delay().get() == 0


def test_the_beat_task_prunes_and_a_redelivery_of_a_pruned_one_makes_a_new_delivery(tenant_a, settings):
    _delivery(tenant_a.project, "old", "succeeded", created_days_ago=40, attempted_days_ago=40)
    event = Event.objects.get()

    assert deliveries_prune_task.delay().get() == 1
    assert Delivery.objects.count() == 0

    event_redeliver(event=event)  # the tenant asks again (POST /events/{id}/redeliver)
    assert list(Delivery.objects.values_list("status", "attempts")) == [("pending", 0)]
    assert deliveries_prune() == 0

    settings.WEBHOOK_RETENTION_DAYS = 0  # keep everything
    Delivery.objects.update(status="succeeded", created_at=_ago(400), last_attempt_at=_ago(400))
    assert deliveries_prune() == 0


def test_metrics_after_pruning_count_pending_deliveries_and_the_last_hours_finished(client, tenant_a):
    p = tenant_a.project
    _delivery(p, "old", "succeeded", created_days_ago=40, attempted_days_ago=40)
    _delivery(p, "old-failed", "failed", created_days_ago=40, attempted_days_ago=39)
    _delivery(p, "yesterday", "succeeded", created_days_ago=1, attempted_days_ago=1)
    _delivery(p, "now", "succeeded", created_days_ago=0, attempted_days_ago=0)
    _delivery(p, "given-up-now", "failed", created_days_ago=3, attempted_days_ago=0)
    _delivery(p, "pending-old", "pending", created_days_ago=60, attempted_days_ago=0)
    _delivery(p, "pending", "pending", created_days_ago=0)

    def figures():
        lines = client.get("/metrics").content.decode().splitlines()
        return sorted(line for line in lines if line.startswith("tollgate_webhook_deliveries{"))

    before = figures()
    assert deliveries_prune() == 2

    assert (
        figures()
        == before
        == [
            'tollgate_webhook_deliveries{status="failed"} 1.0',
            'tollgate_webhook_deliveries{status="pending"} 2.0',
            'tollgate_webhook_deliveries{status="succeeded"} 1.0',
        ]
    )
    assert _kept() == ["given-up-now", "now", "pending", "pending-old", "yesterday"]


def _other_session():
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_redelivery_that_meets_the_prune_of_its_delivery_makes_a_new_one(tenant_a):
    """The tenant redelivers an old event while a prune's batch holds its delivery, deleted and not yet
    committed: the redelivery finds the row, waits for the batch, and makes the delivery anew (it was lost)."""
    # Nothing listens there: the redelivery's send, on its commit, is refused at once.
    endpoint = WebhookEndpointFactory(project=tenant_a.project, url="http://127.0.0.1:9/hook")
    _delivery(
        tenant_a.project, "old", "succeeded", created_days_ago=40, attempted_days_ago=40, endpoint=endpoint
    )
    event, old = Event.objects.get(), Delivery.objects.get()
    batch = _other_session()
    batch.execute("SELECT id FROM webhooks_delivery WHERE id = %s FOR UPDATE SKIP LOCKED", [old.pk])
    batch.execute("DELETE FROM webhooks_deliveryattempt WHERE delivery_id = %s", [old.pk])
    batch.execute("DELETE FROM webhooks_delivery WHERE id = %s", [old.pk])
    made = []

    def redeliver():
        try:
            made.extend(event_redeliver(event=event))
        finally:
            connection.close()

    thread = threading.Thread(target=redeliver)
    thread.start()
    time.sleep(0.5)  # the redelivery read the row and waits on its lock
    assert thread.is_alive()
    batch.commit()
    batch.close()
    thread.join(timeout=10)

    assert [d.pk for d in made] == list(Delivery.objects.values_list("pk", flat=True))
    assert made[0].pk != old.pk
    # Made and sent (refused here: its retry is scheduled).
    assert list(Delivery.objects.values_list("event", "status", "attempts")) == [(event.pk, "pending", 1)]
    assert list(DeliveryAttempt.objects.values_list("delivery", "status_code")) == [(made[0].pk, None)]
