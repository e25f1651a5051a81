"""Retention of the Stripe inbox (webhooks.services.retention, core.retention): events processed or ignored
and unchanged for WEBHOOK_RETENTION_DAYS go, in batches; every other event stays, and so does everything the
product still reads. A delivery Stripe sends again of a pruned event applies nothing twice, and `/metrics` reads
bounded figures before and after."""

import io
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Drift, Invoice, Payment, ReconciliationRun, Subscription
from catalog.models import ProductFeature
from core.serializers import api_time
from events.models import Delivery, Event
from tests.entitlements.helpers import feature
from tests.webhooks.workers import deliver
from webhooks.models import StripeEvent, StripeEventsPruned
from webhooks.services.replay import stripe_event_replay
from webhooks.services.retention import stripe_events_prune
from webhooks.tasks import stripe_events_prune_task

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
OK = "https://app.example.com/ok"


@pytest.fixture(autouse=True)
def _retention(settings):
    settings.WEBHOOK_RETENTION_DAYS = 35


def _stored(n, status, *, days_ago, conflicts=0, project=None):
    """A stored event last changed `days_ago` days ago (received then, and finished then when it is finished)."""
    event = StripeEvent.objects.create(
        account="platform" if project is None else project.pk,
        project=project,
        stripe_event_id=f"evt_r{n}",
        type="balance.available",
        stripe_created=1_800_000_000,
        payload={"id": f"evt_r{n}", "type": "balance.available", "data": {"object": {}}},
        ordering_key=f"platform:evt_r{n}",
        status=status,
        conflicts=conflicts,
    )
    when = timezone.now() - timedelta(days=days_ago)
    finished = status in (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED)
    StripeEvent.objects.filter(pk=event.pk).update(
        received_at=when, updated_at=when, processed_at=when if finished else None
    )
    return event.stripe_event_id


def _kept():
    return sorted(StripeEvent.objects.values_list("stripe_event_id", flat=True))


def test_only_finished_events_older_than_the_age_are_pruned(tenant_a):
    gone = [
        _stored(1, "processed", days_ago=36),
        _stored(2, "processed", days_ago=400, project=tenant_a.project),
        _stored(3, "ignored", days_ago=36),
    ]
    kept = [
        _stored(4, "processed", days_ago=34),  # recent
        _stored(5, "ignored", days_ago=34),
        _stored(6, "received", days_ago=90),  # not applied yet (a retry due later, or never taken)
        _stored(7, "processing", days_ago=90),  # being applied (or its worker died: taken back)
        _stored(8, "failed", days_ago=90),  # given up or held: waits for an operator's replay
    ]

    assert stripe_events_prune() == 3

    assert _kept() == sorted(kept)
    assert not StripeEvent.objects.filter(stripe_event_id__in=gone).exists()
    assert StripeEventsPruned.objects.values_list("events", "conflicts").get() == (3, 0)


def test_the_beat_task_prunes_and_a_second_run_finds_nothing():
    _stored(1, "processed", days_ago=40)
    _stored(2, "processed", days_ago=1)

    assert stripe_events_prune_task.delay().get() == 1
    assert stripe_events_prune_task.delay().get() == 0
    assert _kept() == ["evt_r2"]
    assert StripeEventsPruned.objects.values_list("events", flat=True).get() == 1


def test_batches_are_bounded_and_each_is_its_own_delete(settings):
    for n in range(7):
        _stored(n, "processed", days_ago=50)
    _stored(99, "failed", days_ago=50)

    with CaptureQueriesContext(connection) as queries:
        assert stripe_events_prune(batch=3) == 7
    deletes = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "webhooks_stripeevent"')]
    picks = [q["sql"] for q in queries if 'FROM "webhooks_stripeevent"' in q["sql"] and "LIMIT 3" in q["sql"]]

    assert len(deletes) == 3  # 3 + 3 + 1
    assert len(picks) == 3  # the last batch is short: no fourth look
    if connection.vendor == "postgresql":
        assert all(pick.endswith("FOR UPDATE SKIP LOCKED") for pick in picks)
    assert _kept() == ["evt_r99"]
    assert stripe_events_prune(batch=3) == 0


def test_retention_at_0_keeps_everything_and_below_31_days_is_refused(settings):
    _stored(1, "processed", days_ago=1000)
    settings.WEBHOOK_RETENTION_DAYS = 0
    assert stripe_events_prune() == 0

    settings.WEBHOOK_RETENTION_DAYS = 30
    with pytest.raises(ImproperlyConfigured):
        stripe_events_prune()
    assert _kept() == ["evt_r1"]

    settings.WEBHOOK_RETENTION_DAYS = 31
    assert stripe_events_prune() == 1


def test_a_replayed_event_stays_the_whole_age_again(django_capture_on_commit_callbacks):
    _stored(1, "processed", days_ago=40)

    with django_capture_on_commit_callbacks(execute=True):
        stripe_event_replay(event=StripeEvent.objects.get(stripe_event_id="evt_r1"))

    # Run again just now (no handler takes its type: ignored again, as the first time).
    assert StripeEvent.objects.get(stripe_event_id="evt_r1").status == "ignored"
    assert stripe_events_prune() == 0
    assert _kept() == ["evt_r1"]


# --- /metrics -------------------------------------------------------------------------------------------------


def _figures(client, prefix):
    lines = client.get("/metrics").content.decode().splitlines()
    return sorted(line for line in lines if line.startswith(prefix))


def test_metrics_after_pruning_count_the_events_at_work_and_the_last_hours_and_keep_the_conflicts(client):
    _stored(1, "processed", days_ago=40, conflicts=2)
    _stored(2, "ignored", days_ago=40)
    _stored(3, "processed", days_ago=2, conflicts=1)  # kept, but finished before the last hour
    _stored(4, "failed", days_ago=40, conflicts=4)
    _stored(5, "received", days_ago=0)
    _stored(6, "processed", days_ago=0)  # finished just now
    before = _figures(client, "tollgate_stripe_event")

    assert stripe_events_prune() == 2

    assert (
        _figures(client, "tollgate_stripe_event")
        == before
        == [
            "tollgate_stripe_event_conflicts_total 7.0",
            "tollgate_stripe_event_processing_seconds 0.0",
            'tollgate_stripe_events{status="failed"} 1.0',
            'tollgate_stripe_events{status="processed"} 1.0',
            'tollgate_stripe_events{status="received"} 1.0',
        ]
    )
    assert StripeEventsPruned.objects.values_list("events", "conflicts").get() == (2, 2)


def test_metrics_read_the_inbox_and_deliveries_only_through_indexed_filters(client):
    _stored(1, "processed", days_ago=0)

    with CaptureQueriesContext(connection) as queries:
        assert client.get("/metrics").status_code == 200
    reads = {
        q["sql"]
        for q in queries
        if 'FROM "webhooks_stripeevent"' in q["sql"] or 'FROM "webhooks_delivery"' in q["sql"]
    }

    assert len(reads) == 6  # by status, latency, conflicts; waiting per project (fairness) × 2; deliveries
    for sql in reads:
        where = sql.split(" WHERE ", 1)[1] if " WHERE " in sql else ""
        # Every read starts from a column an index leads with: the status ((status, updated_at),
        # (status, next_attempt_at), (status, last_attempt_at)) or the conflicts (the partial index).
        assert '"status"' in where or '"conflicts" > 0' in where, sql
        if '"status" IN' in where and ("'processed'" in where or "'succeeded'" in where):
            # A finished status is read over the last hour only.
            assert '"updated_at" >=' in where or '"last_attempt_at" >=' in where, sql


# --- what the product still reads ------------------------------------------------------------------------------


@pytest.fixture
def subscribed(api, tenant_a, catalog, stripe_webhooks):
    """u1 subscribed to pro (which gives SSO) through Tollgate's checkout and Stripe's webhooks, every delivery
    kept as Stripe signed it; the events are then made 40 days old."""
    ProductFeature.objects.create(product=catalog.pro, feature=feature(tenant_a.project, "sso"), value=True)
    sent = []
    send = stripe_webhooks.emulator.webhooks.sender

    def keep(url, body, headers):
        sent.append((url, body, dict(headers)))
        return send(url, body, headers)

    stripe_webhooks.emulator.webhooks.sender = keep
    assert api.post("/api/v1/customers", {"external_id": "u1", "email": "u1@example.com"}, key=tenant_a.key)
    created = api.post(
        "/api/v1/checkout/subscription",
        {"customer": "u1", "price": "pro-monthly", "success_url": OK, "cancel_url": OK},
        key=tenant_a.key,
    )
    assert created.status_code == 201, created.content
    completed = stripe_webhooks.emulator.handle(
        "POST",
        f"/_emulator/checkout/sessions/{created.json()['stripe_session_id']}/complete",
        query="",
        body=b"card=4242424242424242",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert completed.status == 200
    stripe_webhooks.deliver()
    assert StripeEvent.objects.exclude(status__in=("processed", "ignored")).count() == 0
    assert len(sent) == StripeEvent.objects.count() > 5
    long_ago = timezone.now() - 40 * DAY
    StripeEvent.objects.update(received_at=long_ago, updated_at=long_ago)
    return sent


def _state():
    """What the events made: the mirrors, the tenant events recorded and their deliveries."""
    return {
        "subscriptions": sorted(Subscription.objects.values_list("stripe_subscription_id", "status")),
        "invoices": sorted(Invoice.objects.values_list("stripe_invoice_id", "status", "amount_paid")),
        "payments": sorted(Payment.objects.values_list("id", "status", "amount")),
        "tenant_events": sorted(Event.objects.values_list("type", "sequence")),
        "deliveries": Delivery.objects.count(),
    }


def test_a_pruned_event_that_stripe_delivers_again_applies_nothing_twice(
    subscribed, django_capture_on_commit_callbacks
):
    """Stripe does not send an event again after 30 days; if one came (a Dashboard resend), the handlers find
    everything it says already applied (they are idempotent by Stripe's `created` and the objects' states)."""
    before = _state()
    count = len(subscribed)

    assert stripe_events_prune() == count

    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        for delivery in subscribed:
            deliver(client, delivery)

    assert StripeEvent.objects.count() == count  # stored again, once each
    assert StripeEvent.objects.exclude(status__in=("processed", "ignored")).count() == 0
    assert _state() == before


def test_an_event_within_stripes_window_is_kept_and_its_second_delivery_turned_away(
    subscribed, settings, django_capture_on_commit_callbacks
):
    """At the shortest age allowed (31 days), an event Stripe may still send (made 30 days ago) is kept, so its
    second delivery is not stored again."""
    settings.WEBHOOK_RETENTION_DAYS = 31
    thirty_days_ago = timezone.now() - 30 * DAY
    StripeEvent.objects.update(received_at=thirty_days_ago, updated_at=thirty_days_ago)
    before = _state()

    assert stripe_events_prune() == 0

    with django_capture_on_commit_callbacks(execute=True):
        deliver(Client(), subscribed[-1])
    assert StripeEvent.objects.count() == len(subscribed)
    assert StripeEvent.objects.filter(updated_at__gt=thirty_days_ago).count() == 0  # nothing ran again
    assert _state() == before


def test_reconciliation_and_as_of_answers_need_no_pruned_event(subscribed, api, tenant_a):
    """A reconciliation reads Stripe and the mirrors; an `as_of` answer the entitlement records: neither reads the
    inbox, so both answer after pruning exactly as before."""
    time.sleep(1.2)  # `as_of` is a past second, after the subscription was recorded
    moment = api_time(timezone.now() - timedelta(milliseconds=100))

    def as_of():
        response = api.get(
            "/api/v1/entitlements", key=tenant_a.key, json_body={"customer": "u1", "as_of": moment}
        )
        assert response.status_code == 200, response.json()
        return response.json()

    answer = as_of()
    assert {row["feature"]: row["enabled"] for row in answer["entitlements"]} == {"sso": True}
    open_run = ReconciliationRun.objects.create(project=tenant_a.project)  # a run still open when prune runs

    assert stripe_events_prune() == len(subscribed)

    assert as_of() == answer
    call_command("reconcile", "--project", tenant_a.project.slug, stdout=io.StringIO())
    run = ReconciliationRun.objects.exclude(pk=open_run.pk).get()
    assert (run.status, run.drift_count) == ("completed", 0)
    assert Drift.objects.count() == 0
