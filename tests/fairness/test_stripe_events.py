"""Per-tenant fairness of Stripe event processing: intake stores and answers every event, each rings a worker; a
free worker takes the next key by the fair claim in SQL (webhooks.services.fairness.key_next): the project
holding the fewest keys being applied, then the oldest event. So a project's backlog yields to another project's
event at the next key any worker takes, not after the backlog."""

import queue
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from billing.handlers import registry
from core.locks import lock_release, lock_try
from stripe_gateway.gateway import PLATFORM_ACCOUNT
from webhooks.models import StripeEvent
from webhooks.services import process
from webhooks.services.fairness import key_next
from webhooks.services.receive import stripe_event_store
from webhooks.tasks import process_stripe_event, requeue_stuck_stripe_events

RECORD = "tollgate.test.fairness"  # a test-only event type whose handler records the order of application
BELL = "webhooks.tasks.process_stripe_event"


def _store(project, event_id, customer, created=1_800_000_000):
    body = {
        "id": event_id,
        "object": "event",
        "type": RECORD,
        "created": created,
        "data": {"object": {"id": customer, "object": "customer"}},
    }
    event, stored = stripe_event_store(account=project.pk, project=project, body=body)
    assert stored
    return event


def _waiting_lines(client):
    text = client.get("/metrics").content.decode()
    return sorted(
        line for line in text.splitlines() if line.startswith("tollgate_project_stripe_events_waiting")
    )


class OtherWorkers:
    """Other workers applying keys: their events `processing`, their keys' locks held by another database session
    (a thread of its own), as live workers hold them."""

    def __init__(self) -> None:
        self._asks: queue.Queue = queue.Queue()
        self._done: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        taken: list[str] = []
        try:
            while (names := self._asks.get()) is not None:
                taken += names
                self._done.put([lock_try(name) for name in names])
        finally:
            for name in taken:
                lock_release(name)
            connection.close()

    def apply(self, *events) -> None:
        self._asks.put([f"stripe-events:{e.ordering_key}" for e in events])
        assert all(self._done.get(timeout=10))
        StripeEvent.objects.filter(pk__in=[e.pk for e in events]).update(
            status=StripeEvent.Status.PROCESSING, processing_started_at=timezone.now(), attempts=1
        )

    def stop(self) -> None:
        self._asks.put(None)
        self._thread.join(10)


@pytest.fixture
def other_workers():
    workers = OtherWorkers()
    yield workers
    workers.stop()


@pytest.mark.django_db(transaction=True)
def test_a_projects_backlog_yields_to_another_projects_event_at_the_next_key(
    tenant_a, tenant_b, broker, client, monkeypatch, other_workers
):
    applied = []
    monkeypatch.setitem(registry.HANDLERS, RECORD, lambda event: applied.append(event.stripe_event_id))
    a_events = [_store(tenant_a.project, f"evt_a{i}", f"cus_a{i}") for i in range(1, 6)]
    b_event = _store(tenant_b.project, "evt_b1", "cus_b1")

    # Every event is stored (intake never refuses Stripe) and rang a worker.
    assert [e.tenant for e in a_events] == [tenant_a.project.pk] * 5
    assert b_event.tenant == tenant_b.project.pk
    bells = broker.take()
    assert bells == [(BELL, (e.pk, e.ordering_key)) for e in [*a_events, b_event]]
    assert _waiting_lines(client) == [
        'tollgate_project_stripe_events_waiting{project="alpha"} 5.0',
        'tollgate_project_stripe_events_waiting{project="bravo"} 1.0',
    ]

    # Two workers are applying A's first two keys. The next free worker takes B's key, younger than A's three
    # waiting, then A's in order.
    other_workers.apply(a_events[0], a_events[1])
    assert key_next(skip=[]) == b_event.ordering_key
    assert process_stripe_event(*bells[0][1]) == 4
    assert applied == ["evt_b1", "evt_a3", "evt_a4", "evt_a5"]
    assert _waiting_lines(client) == []
    assert list(StripeEvent.objects.order_by("stripe_event_id").values_list("stripe_event_id", "status")) == [
        ("evt_a1", "processing"),  # the other workers' keys: not taken from them
        ("evt_a2", "processing"),
        ("evt_a3", "processed"),
        ("evt_a4", "processed"),
        ("evt_a5", "processed"),
        ("evt_b1", "processed"),
    ]
    # The other bells find nothing due: one statement each.
    assert [process_stripe_event(*args) for _, args in bells[1:]] == [0] * 5
    assert broker.take() == []


@pytest.mark.django_db(transaction=True)
def test_the_claim_takes_the_project_with_fewest_keys_applied_then_the_oldest_event(
    tenant_a, tenant_b, broker, other_workers
):
    a1, a2, a3 = (_store(tenant_a.project, f"evt_a{i}", f"cus_a{i}") for i in range(1, 4))
    b1, b2 = (_store(tenant_b.project, f"evt_b{i}", f"cus_b{i}") for i in range(1, 3))
    a1_later = _store(tenant_a.project, "evt_a1_later", "cus_a1")  # a second event of A's first key
    platform = stripe_event_store(
        account=PLATFORM_ACCOUNT,
        project=None,
        body={
            "id": "evt_p",
            "object": "event",
            "type": RECORD,
            "created": 1,
            "data": {"object": {"id": "cus_p", "object": "customer"}},
        },
    )[0]
    broker.take()

    assert key_next(skip=[]) == a1.ordering_key  # nothing applied: the oldest
    other_workers.apply(a1)  # A has one key being applied (its two events: one key)
    assert key_next(skip=[]) == b1.ordering_key  # B and the platform have none: B's is older
    other_workers.apply(b1)
    assert key_next(skip=[]) == platform.ordering_key  # A 1, B 1, the platform 0
    other_workers.apply(platform)
    # One each: the oldest due event (a1_later, due too, came after A's and B's others).
    assert key_next(skip=[]) == a2.ordering_key
    assert a1_later.ordering_key == a1.ordering_key
    assert key_next(skip=[a2.ordering_key]) == a3.ordering_key  # skipped: found taken by its lock
    other_workers.apply(a2)
    assert key_next(skip=[]) == b2.ordering_key  # A 2, B 1
    other_workers.apply(b2, a3)
    # Only a1_later is due now, and its key is held by a live worker: that worker takes it when done.
    assert key_next(skip=[]) is None
    # The other workers die: PostgreSQL drops their locks with their sessions (one process: they give them back),
    # and their `processing` events are due again, by the same rule (the platform holds one key, B two, A three).
    other_workers.stop()
    assert key_next(skip=[]) == platform.ordering_key


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_key_held_by_another_worker_is_skipped_and_applied_when_it_lets_go(tenant_a, broker, monkeypatch):
    """Another worker holds the key's lock (a live worker applying it): the free worker applies the other keys and
    leaves that key's new event to the holder, which takes it when it lets go (here: the next bell)."""
    applied = []
    monkeypatch.setitem(registry.HANDLERS, RECORD, lambda event: applied.append(event.stripe_event_id))
    held = _store(tenant_a.project, "evt_held", "cus_held")
    _store(tenant_a.project, "evt_free", "cus_free")
    broker.take()
    taken, release = threading.Event(), threading.Event()

    def holder():
        lock_try(f"stripe-events:{held.ordering_key}")
        taken.set()
        release.wait(30)
        lock_release(f"stripe-events:{held.ordering_key}")
        connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert taken.wait(10)
        assert process_stripe_event(held.pk, held.ordering_key) == 1
        assert applied == ["evt_free"]
        assert StripeEvent.objects.get(pk=held.pk).status == "received"
    finally:
        release.set()
        thread.join(10)
    assert process_stripe_event() == 1
    assert applied == ["evt_free", "evt_held"]


@pytest.mark.django_db(transaction=True)
def test_the_sweep_rings_for_keys_whose_bell_was_lost_and_a_worker_ends_its_turn_with_a_bell(
    tenant_a, broker, monkeypatch
):
    applied = []
    monkeypatch.setitem(registry.HANDLERS, RECORD, lambda event: applied.append(event.stripe_event_id))
    for i in range(1, 4):
        _store(tenant_a.project, f"evt_{i}", f"cus_{i}")
    broker.take()  # the bells lost with the broker
    assert requeue_stuck_stripe_events() == 0  # stored just now: their bells may still be on their way
    StripeEvent.objects.update(updated_at=timezone.now() - timedelta(minutes=5))
    assert requeue_stuck_stripe_events() == 3  # one bell per key, at most eight
    assert sorted(broker.take()) == sorted((BELL, ("", e.ordering_key)) for e in StripeEvent.objects.all())

    # A worker whose turn is over (30 s) applies nothing more and rings for what is still due.
    monkeypatch.setattr(process, "RUN_SECONDS", 0.0)
    assert process.stripe_events_run(seconds=0.0) == 0
    assert broker.take() == [(BELL, ("", ""))]
    assert process_stripe_event() == 3
    assert applied == ["evt_1", "evt_2", "evt_3"]
    assert broker.take() == []


@pytest.mark.django_db
def test_a_platform_event_is_applied_in_the_share_of_the_project_its_object_names(tenant_a, stripe_sdk):
    """Tollgate writes `metadata.tollgate_project` on what it creates at Stripe; the platform account's events
    about those objects are applied in that project's share, others in the platform's."""
    sdk = stripe_sdk()
    sdk.v1.customers.create(
        params={"email": "x@example.com", "metadata": {"tollgate_project": tenant_a.project.pk}}
    )
    sdk.v1.customers.create(params={"email": "y@example.com"})
    events = sorted(sdk.v1.events.list().data, key=lambda e: e.data.object.email)
    stored = [
        stripe_event_store(account=PLATFORM_ACCOUNT, project=None, body=event.to_dict())[0]
        for event in events
    ]
    assert [(e.type, e.tenant) for e in stored] == [
        ("customer.created", tenant_a.project.pk),
        ("customer.created", ""),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_failed_events_retry_rings_when_it_is_due(tenant_a, broker, monkeypatch):
    """The retry of a failed event rings with its countdown (nothing else looks for work that becomes due later
    but beat's sweep)."""
    calls = []

    def fails_once(event):
        calls.append(event.stripe_event_id)
        if len(calls) == 1:
            raise RuntimeError("not mirrored yet")

    monkeypatch.setitem(registry.HANDLERS, RECORD, fails_once)
    event = _store(tenant_a.project, "evt_retry", "cus_retry")
    other = _store(tenant_a.project, "evt_other", "cus_other")
    bells = broker.take()
    assert bells == [(BELL, (event.pk, event.ordering_key)), (BELL, (other.pk, other.ordering_key))]

    assert process_stripe_event(*bells[0][1]) == 2  # evt_retry failed, evt_other applied

    event.refresh_from_db()
    assert (event.status, event.attempts, event.last_error) == (
        "received",
        1,
        "RuntimeError: not mirrored yet",
    )
    assert calls == ["evt_retry", "evt_other"]
    assert broker.take() == [(BELL, (event.pk, event.ordering_key))]  # the retry's, with its countdown
