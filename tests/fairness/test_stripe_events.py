"""Per-tenant fairness of Stripe event processing: intake stores and answers every event; a project's backlog
takes at most the pool's places (STRIPE_EVENT_TASKS_POOL) in the broker's queue, all of them while it is alone,
and past its share (STRIPE_EVENT_TASKS_PER_PROJECT) only while no other project waits with fewer; its other
events wait their turn in PostgreSQL and another project's event is applied after at most those few tasks, not
after the backlog."""

import pytest
from django.test import override_settings

from billing.handlers import registry
from stripe_gateway.gateway import PLATFORM_ACCOUNT
from webhooks.models import StripeEvent
from webhooks.services.receive import stripe_event_store
from webhooks.tasks import process_stripe_event, requeue_stuck_stripe_events

RECORD = "tollgate.test.fairness"  # a test-only event type whose handler records the order of application


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


def _run_in_order(pending, broker, limit=50):
    """Runs the queued tasks one at a time, oldest first, as one worker would; what a task queues goes behind
    what was waiting."""
    for _ in range(limit):
        if not pending:
            return
        name, args = pending.pop(0)
        assert name == "webhooks.tasks.process_stripe_event"
        process_stripe_event(*args)
        pending.extend(broker.take())
    raise AssertionError("the queue never drained")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(STRIPE_EVENT_TASKS_PER_PROJECT=1, STRIPE_EVENT_TASKS_POOL=2)
def test_a_projects_backlog_takes_the_pool_and_another_projects_event_waits_only_its_turn(
    tenant_a, tenant_b, shares, broker, client, monkeypatch
):
    applied = []
    monkeypatch.setitem(registry.HANDLERS, RECORD, lambda event: applied.append(event.stripe_event_id))
    a_events = [_store(tenant_a.project, f"evt_a{i}", f"cus_a{i}") for i in range(1, 6)]
    b_event = _store(tenant_b.project, "evt_b1", "cus_b1")

    # Every event is stored (intake never refuses Stripe). A, alone, took the whole pool (two places, past its
    # share of one); B's key has a task all the same (within B's share).
    assert StripeEvent.objects.count() == 6
    assert {e.tenant for e in a_events} == {tenant_a.project.pk}
    assert b_event.tenant == tenant_b.project.pk
    queued = broker.take()
    assert [(name, args[:3]) for name, args in queued] == [
        (
            "webhooks.tasks.process_stripe_event",
            (a_events[0].pk, a_events[0].ordering_key, tenant_a.project.pk),
        ),
        (
            "webhooks.tasks.process_stripe_event",
            (a_events[1].pk, a_events[1].ordering_key, tenant_a.project.pk),
        ),
        ("webhooks.tasks.process_stripe_event", (b_event.pk, b_event.ordering_key, tenant_b.project.pk)),
    ]
    assert all(len(args[3]) == 32 for _, args in queued)  # each holds a place in its share
    assert _waiting_lines(client) == [
        'tollgate_project_stripe_events_waiting{project="alpha"} 5.0',
        'tollgate_project_stripe_events_waiting{project="bravo"} 1.0',
    ]
    # The sweep queues none of A's waiting keys: the pool is full.
    assert requeue_stuck_stripe_events() == 0

    _run_in_order(queued, broker)

    # B's event was applied third, after the two tasks of A's, not sixth behind A's backlog; each task that
    # ended handed its place over to A's next waiting key. Once B's task ended, A was alone in the pool: evt_a3's
    # task went on with A's last waiting key itself (evt_a5; evt_a4's task was queued when evt_b1's ended).
    assert applied == ["evt_a1", "evt_a2", "evt_b1", "evt_a3", "evt_a5", "evt_a4"]
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert _waiting_lines(client) == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(STRIPE_EVENT_TASKS_PER_PROJECT=1, STRIPE_EVENT_TASKS_POOL=1)
def test_a_waiting_key_is_queued_by_the_sweep_when_its_share_frees_without_a_hand_over(
    tenant_a, shares, broker, monkeypatch
):
    """A task lost with its worker gives its place back when the lease runs out; here the place is given back
    and nothing handed over (as after a failure to), and the beat sweep queues the waiting key."""
    from core.fairness import share_release
    from webhooks.services.process import SHARE_KIND

    applied = []
    monkeypatch.setitem(registry.HANDLERS, RECORD, lambda event: applied.append(event.stripe_event_id))
    first = _store(tenant_a.project, "evt_first", "cus_first")
    second = _store(tenant_a.project, "evt_second", "cus_second")
    [(_, args)] = broker.take()
    assert args[:2] == (first.pk, first.ordering_key)
    share_release(kind=SHARE_KIND, tenant=tenant_a.project.pk, token=args[3], what=first.ordering_key)
    StripeEvent.objects.update(updated_at=StripeEvent.objects.get(pk=first.pk).received_at.replace(year=2020))

    assert requeue_stuck_stripe_events() == 1  # the pool has one place: the oldest waiting key takes it
    [(_, swept)] = broker.take()
    assert swept[1:3] == (first.ordering_key, tenant_a.project.pk)
    second.refresh_from_db()
    assert (second.status, applied) == ("received", [])


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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(STRIPE_EVENT_TASKS_PER_PROJECT=1, STRIPE_EVENT_TASKS_POOL=4)
def test_past_its_share_a_project_yields_a_freed_place_to_another_project_waiting(
    tenant_a, tenant_b, shares, broker, monkeypatch
):
    applied = []
    monkeypatch.setitem(registry.HANDLERS, RECORD, lambda event: applied.append(event.stripe_event_id))
    for i in range(1, 6):
        _store(tenant_a.project, f"evt_a{i}", f"cus_a{i}")
    for i in range(1, 4):
        _store(tenant_b.project, f"evt_b{i}", f"cus_b{i}")
    queued = broker.take()
    # A took the pool's four places; B its share of one (past the pool); evt_a5, evt_b2 and evt_b3 wait.
    assert [args[1].rpartition(":")[2] for _, args in queued] == [
        "cus_a1",
        "cus_a2",
        "cus_a3",
        "cus_a4",
        "cus_b1",
    ]

    process_stripe_event(*queued.pop(0)[1])  # evt_a1: the pool is still full (A 3, B 1)
    assert broker.take() == []
    process_stripe_event(*queued.pop(0)[1])  # evt_a2: a place is free; A holds 2, B waits holding 1
    [(_, handed)] = broker.take()
    assert handed[1].rpartition(":")[2] == "cus_b2"  # not A's waiting evt_a5: A holds more
    assert StripeEvent.objects.get(stripe_event_id="evt_a5").status == "received"

    _run_in_order([*queued, ("webhooks.tasks.process_stripe_event", handed)], broker)
    assert applied == ["evt_a1", "evt_a2", "evt_a3", "evt_a4", "evt_b1", "evt_b2", "evt_a5", "evt_b3"]
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(STRIPE_EVENT_TASKS_PER_PROJECT=1, STRIPE_EVENT_TASKS_POOL=1)
def test_a_failed_events_retry_is_queued_even_with_the_pool_full(tenant_a, shares, broker, monkeypatch):
    """The convergence stall: the retry took a place in the share, held by its own task (or leases), so none
    was queued and the event waited for beat's sweep. A retry takes no place: it is always on the broker."""
    calls = []

    def fails_once(event):
        calls.append(event.stripe_event_id)
        if len(calls) == 1:
            raise RuntimeError("not mirrored yet")

    monkeypatch.setitem(registry.HANDLERS, RECORD, fails_once)
    event = _store(tenant_a.project, "evt_retry", "cus_retry")
    _store(tenant_a.project, "evt_other", "cus_other")  # waits: the pool's one place is the first task's
    [(_, args)] = broker.take()
    assert args[:3] == (event.pk, event.ordering_key, tenant_a.project.pk)

    process_stripe_event(*args)

    event.refresh_from_db()
    assert (event.status, event.attempts, event.last_error) == (
        "received",
        1,
        "RuntimeError: not mirrored yet",
    )
    # The retry is queued (a countdown, no place); the freed place went to the other waiting key, which the task,
    # its project alone in the pool, applied itself.
    [(_, retry)] = broker.take()
    assert retry == (event.pk, event.ordering_key, tenant_a.project.pk, "")
    assert calls == ["evt_retry", "evt_other"]


@pytest.mark.django_db
def test_places_lapse_on_redis_clock_not_the_callers(shares):
    """Processes' clocks differ (hosts; the convergence test's workers travel in time): a place taken by a
    process whose clock is a day behind is still held for its lease by Redis's clock."""
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from core.fairness import share_holders, share_take

    with time_machine.travel(timezone.now() - timedelta(days=1), tick=True):
        held = share_take(kind="test-clock", tenant="t1", what="k1", cap=1, pool=1, lease_seconds=30)
    assert held is not None
    assert share_take(kind="test-clock", tenant="t1", what="k2", cap=1, pool=1, lease_seconds=30) is None
    assert share_holders(kind="test-clock", tenant="t1") == ["k1"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(STRIPE_EVENT_TASKS_PER_PROJECT=1, STRIPE_EVENT_TASKS_POOL=2)
def test_a_key_handed_a_place_gets_no_second_task_for_its_next_event(
    tenant_a, tenant_b, shares, broker, monkeypatch
):
    """A waiting key queued by a hand-over (or the sweep) is marked queued like any other: the key's next event,
    stored while that task waits, rides on it instead of queuing a second task that finds nothing to do (the
    burst queued 0.35–0.40 tasks per event against 0.26 before the shares). B holds a place, so A's task that
    ends hands its place over (queues a task) rather than going on with the key itself."""
    applied = []
    monkeypatch.setitem(registry.HANDLERS, RECORD, lambda event: applied.append(event.stripe_event_id))
    _store(tenant_a.project, "evt_1", "cus_1")
    _store(tenant_b.project, "evt_b", "cus_b")
    third = _store(tenant_a.project, "evt_3", "cus_3")  # the pool's two places are taken: it waits
    first, second = broker.take()

    process_stripe_event(*first[1])  # hands its place to cus_3
    [(_, handed)] = broker.take()
    assert handed[1:3] == (third.ordering_key, tenant_a.project.pk)

    _store(tenant_a.project, "evt_3b", "cus_3")
    assert broker.take() == []  # the handed task will apply it

    process_stripe_event(*handed)
    process_stripe_event(*second[1])
    assert applied == ["evt_1", "evt_3", "evt_3b", "evt_b"]
    assert broker.take() == []
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(STRIPE_EVENT_TASKS_PER_PROJECT=1, STRIPE_EVENT_TASKS_POOL=1)
def test_a_task_alone_in_the_pool_goes_on_with_its_projects_waiting_keys(
    tenant_a, shares, broker, monkeypatch
):
    """A burst of one project: its keys past the pool wait in PostgreSQL, and a task that ends while no other
    project holds or waits for a place takes the next waiting key on itself (a place of its own, the key's
    mark) instead of queuing a task for it: one Celery task applies the backlog."""
    from core.fairness import share_holders
    from webhooks.services.process import SHARE_KIND

    applied = []
    monkeypatch.setitem(registry.HANDLERS, RECORD, lambda event: applied.append(event.stripe_event_id))
    for i in range(1, 5):
        _store(tenant_a.project, f"evt_{i}", f"cus_{i}")
    [(_, task)] = broker.take()  # the pool's one place; cus_2 … cus_4 wait

    process_stripe_event(*task)

    assert applied == ["evt_1", "evt_2", "evt_3", "evt_4"]
    assert broker.take() == []
    assert share_holders(kind=SHARE_KIND, tenant=tenant_a.project.pk) == []  # every place given back
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(STRIPE_EVENT_TASKS_PER_PROJECT=1, STRIPE_EVENT_TASKS_POOL=1)
def test_a_key_a_task_goes_on_with_is_marked_and_its_place_held(tenant_a, shares, broker, monkeypatch):
    """Between the hand-over and the key's drain: the key's next event rides on the task (no task queued for
    it), and the place taken for the key is held, so another key's event waits rather than taking it."""
    from core.fairness import share_holders
    from webhooks.services.fairness import stripe_events_turn_end
    from webhooks.services.process import SHARE_KIND, stripe_events_process_key

    applied = []
    monkeypatch.setitem(registry.HANDLERS, RECORD, lambda event: applied.append(event.stripe_event_id))
    first = _store(tenant_a.project, "evt_1", "cus_1")
    second = _store(tenant_a.project, "evt_2", "cus_2")  # waits
    [(_, task)] = broker.take()
    assert stripe_events_process_key(key=first.ordering_key) == 1

    going_on = stripe_events_turn_end(tenant=task[2], token=task[3], key=task[1], go_on=True)

    assert going_on is not None
    assert going_on[0] == second.ordering_key
    assert share_holders(kind=SHARE_KIND, tenant=tenant_a.project.pk) == [second.ordering_key]
    _store(tenant_a.project, "evt_2b", "cus_2")  # rides on the task going on with cus_2
    third = _store(tenant_a.project, "evt_3", "cus_3")  # refused: the place is cus_2's
    assert broker.take() == []
    assert stripe_events_process_key(key=second.ordering_key) == 2
    assert applied == ["evt_1", "evt_2", "evt_2b"]
    assert stripe_events_turn_end(tenant=task[2], token=going_on[1], key=going_on[0]) is None  # go_on: no
    [(_, handed)] = broker.take()
    assert handed[1:3] == (third.ordering_key, tenant_a.project.pk)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(STRIPE_EVENT_TASKS_PER_PROJECT=1, STRIPE_EVENT_TASKS_POOL=1)
def test_a_task_goes_on_for_at_most_its_budget_then_hands_over(tenant_a, shares, broker, monkeypatch):
    """A task does not hold its worker for a backlog without end: past GO_ON_SECONDS from its start it ends its
    turn, and the hand-over queues the next waiting key's task."""
    from webhooks import tasks

    applied = []
    monkeypatch.setitem(registry.HANDLERS, RECORD, lambda event: applied.append(event.stripe_event_id))
    monkeypatch.setattr(tasks, "GO_ON_SECONDS", 0.0)
    _store(tenant_a.project, "evt_1", "cus_1")
    second = _store(tenant_a.project, "evt_2", "cus_2")
    [(_, task)] = broker.take()

    process_stripe_event(*task)

    assert applied == ["evt_1"]
    [(_, handed)] = broker.take()
    assert handed[1:3] == (second.ordering_key, tenant_a.project.pk)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(STRIPE_EVENT_TASKS_PER_PROJECT=1, STRIPE_EVENT_TASKS_POOL=2)
def test_an_event_due_on_a_key_whose_task_looked_its_last_is_handed_a_place(
    tenant_a, shares, broker, monkeypatch
):
    """The burst left an event unapplied until beat's sweep: stored (or handed over to its customer's key) after
    the key's task had looked for due events its last time, but before that task gave its place back. Refused
    a place, its project waited; the next task to end offered the freed place, skipped the key because a place
    was still held for it, and, finding nothing else, no longer counted the project waiting; the key's own task
    then gave its place back to nobody. A key is skipped only while its task has yet to look (its mark)."""
    from webhooks.services.fairness import stripe_events_turn_end
    from webhooks.services.process import stripe_events_process_key

    applied = []
    monkeypatch.setitem(registry.HANDLERS, RECORD, lambda event: applied.append(event.stripe_event_id))
    first = _store(tenant_a.project, "evt_k1", "cus_k1")
    _store(tenant_a.project, "evt_k2", "cus_k2")
    (_, task_k1), (_, task_k2) = broker.take()  # the pool's two places

    # The task of cus_k1 applies its key and looks its last; it has not given its place back yet.
    assert stripe_events_process_key(key=first.ordering_key) == 1
    late = _store(tenant_a.project, "evt_k1_late", "cus_k1")  # refused: the pool is full
    assert broker.take() == []

    # cus_k2's task ends: its freed place goes to cus_k1's late event, which the task (its project alone in the
    # pool) applies itself.
    process_stripe_event(*task_k2)
    assert broker.take() == []
    late.refresh_from_db()
    assert late.status == "processed"
    stripe_events_turn_end(tenant=task_k1[2], token=task_k1[3], key=task_k1[1])  # the first task ends
    assert broker.take() == []
    assert applied == ["evt_k1", "evt_k2", "evt_k1_late"]
