"""Recording a tenant event: what happened in a project, numbered per project, with one delivery per matching
endpoint.

`event_record` runs inside the transaction of the change it describes (so an event exists iff the change
does); the deliveries are queued on commit and sent by workers (`events.services.deliver`).
"""

import json
import logging
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core.db import in_transaction
from events.models import Delivery, Event, EventSequence, WebhookEndpoint, subscribed
from events.services.delivery_turns import deliveries_queue
from events.types import EVENT_TYPES
from projects.models import Project

logger = logging.getLogger(__name__)


def event_record(
    *,
    project: Project,
    type: str,
    data_object: dict[str, Any],
    previous_attributes: dict[str, Any] | None = None,
) -> Event:
    """Records a domain event in the caller's transaction and queues its deliveries on commit."""
    return events_record(project=project, events=[(type, data_object, previous_attributes)])[0]


# What happened, as `event_record` takes it: (type, data object, previous attributes).
EventFacts = tuple[str, dict[str, Any], dict[str, Any] | None]


def events_record(*, project: Project, events: list[EventFacts]) -> list[Event]:
    """`event_record` of several events of one change, numbered in the order given (one call for a change that
    tells two things, such as a Checkout's payment succeeding and its session completing)."""
    for type, _, _ in events:
        if type not in EVENT_TYPES:
            raise ValueError(f"Unknown event type {type!r}")
    if not in_transaction():
        raise RuntimeError("event_record must run inside the transaction of the change it records.")
    recorded: list[Event] = []
    for type, data_object, previous_attributes in events:
        event = Event(
            project=project, type=type, data={"object": data_object}, previous_attributes=previous_attributes
        )
        endpoints = None
        if connection.vendor == "postgresql":
            endpoints = _insert_numbered(event)
        else:
            event.sequence = _next_sequence(project.pk)
            event.save(force_insert=True)
        _deliveries_create(event, new=True, endpoints=endpoints)
        recorded.append(event)
    return recorded


def _insert_numbered(event: Event) -> list[tuple[str, list[str]]]:
    """Numbers and inserts the event in one statement, which also reads the project's enabled endpoints (id and
    subscribed types): the sequence row's UPDATE … RETURNING feeds the INSERT."""
    event.created_at = timezone.now()
    fields = [f for f in Event._meta.concrete_fields if f.attname != "sequence"]
    values = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
    sequence, endpoints = _numbered(
        event.project_id,
        f"WITH s AS ({_NEXT}), e AS (INSERT INTO {Event._meta.db_table} ({', '.join(str(f.column) for f in fields)}, "  # noqa: S608 (names from the models)
        f"sequence) SELECT {', '.join(['%s'] * len(fields))}, s.last FROM s RETURNING sequence) "
        "SELECT e.sequence, (SELECT json_agg(json_build_array(w.id, w.events)) "
        f"FROM {WebhookEndpoint._meta.db_table} w WHERE w.project_id = %s AND w.enabled) FROM e",
        [event.project_id, *values, event.project_id],
    )
    event.sequence = int(sequence)
    event._state.adding = False
    event._state.db = connection.alias
    if isinstance(endpoints, str):  # json arrives as text where a loader says so
        endpoints = json.loads(endpoints)
    return [(pk, events) for pk, events in endpoints or []]


_NEXT = f"UPDATE {EventSequence._meta.db_table} SET last = last + 1 WHERE project_id = %s RETURNING last"  # noqa: S608


def _next_sequence(project_id: str) -> int:
    return int(_numbered(project_id, _NEXT, [project_id])[0])


def _numbered(project_id: str, sql: str, params: list[Any]) -> tuple[Any, ...]:
    """Runs a statement that takes the project's next event number (`_NEXT`) and returns its row. The sequence row
    stays locked until the caller's transaction ends, so numbers follow commit order; it is created on the
    project's first event."""
    for _ in range(2):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is not None:
            return tuple(row)
        EventSequence.objects.get_or_create(project_id=project_id)
    raise RuntimeError(f"No event sequence for project {project_id}.")


def _deliveries_create(
    event: Event, *, new: bool = False, endpoints: list[tuple[str, list[str]]] | None = None
) -> list[Delivery]:
    """One delivery per enabled endpoint (`endpoints`: id and subscribed types, read here unless given) that wants
    the event: made anew for a new event (none can exist yet), else made or set pending again."""
    if endpoints is None:
        endpoints = list(
            WebhookEndpoint.objects.filter(project_id=event.project_id, enabled=True).values_list(
                "pk", "events"
            )
        )
    endpoint_ids = [pk for pk, events in endpoints if subscribed(events, event.type)]
    now = timezone.now()
    deliveries: list[Delivery] = []
    if new:
        deliveries = Delivery.objects.bulk_create(
            [
                Delivery(event=event, endpoint_id=pk, project_id=event.project_id, next_attempt_at=now)
                for pk in endpoint_ids
            ]
        )
        endpoint_ids = []
    for pk in endpoint_ids:
        delivery, created = Delivery.objects.get_or_create(
            event=event, endpoint_id=pk, defaults={"project_id": event.project_id, "next_attempt_at": now}
        )
        if not created and not Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.PENDING, next_attempt_at=now
        ):
            # Pruned by retention since it was read (events.services.retention waited for by the update): anew.
            delivery = Delivery.objects.create(
                event=event, endpoint_id=pk, project_id=event.project_id, next_attempt_at=now
            )
        deliveries.append(delivery)
    pairs = [(d.pk, d.endpoint_id) for d in deliveries]
    if pairs:
        # Rings the deliveries workers (events.services.delivery_turns: each takes the next by the fair claim).
        transaction.on_commit(lambda: deliveries_queue(deliveries=pairs))
    return deliveries


def event_redeliver(*, event: Event) -> list[Delivery]:
    """Sends the event again to every enabled endpoint that wants it (a new delivery, or a reset one)."""
    with transaction.atomic():
        return _deliveries_create(event)
