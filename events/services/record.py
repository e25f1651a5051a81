"""Recording a tenant event: what happened in a project, numbered per project, with one delivery per matching
endpoint.

`event_record` runs inside the transaction of the change it describes (so an event exists iff the change
does); the deliveries are queued on commit and sent by workers (`events.services.deliver`).
"""

import logging
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core.db import in_transaction
from events.models import Delivery, Event, EventSequence, WebhookEndpoint
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
    if type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {type!r}")
    if not in_transaction():
        raise RuntimeError("event_record must run inside the transaction of the change it records.")
    event = Event.objects.create(
        project=project,
        type=type,
        sequence=_next_sequence(project.pk),
        data={"object": data_object},
        previous_attributes=previous_attributes,
    )
    _deliveries_create(event)
    return event


def _next_sequence(project_id: str) -> int:
    """The project's next event number: one UPDATE … RETURNING (the row stays locked until the caller's
    transaction ends, so numbers follow commit order); the row is created on the project's first event."""
    table = EventSequence._meta.db_table
    for _ in range(2):
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET last = last + 1 WHERE project_id = %s RETURNING last",  # noqa: S608 (table name from the model)
                [project_id],
            )
            row = cursor.fetchone()
        if row is not None:
            return int(row[0])
        EventSequence.objects.get_or_create(project_id=project_id)
    raise RuntimeError(f"No event sequence for project {project_id}.")


def _deliveries_create(event: Event, endpoints: list[WebhookEndpoint] | None = None) -> list[Delivery]:
    if endpoints is None:
        endpoints = [
            e
            for e in WebhookEndpoint.objects.filter(project=event.project, enabled=True)
            if e.wants(event.type)
        ]
    now = timezone.now()
    deliveries = []
    for endpoint in endpoints:
        delivery, created = Delivery.objects.get_or_create(
            event=event, endpoint=endpoint, defaults={"project": event.project, "next_attempt_at": now}
        )
        if not created:
            Delivery.objects.filter(pk=delivery.pk).update(
                status=Delivery.Status.PENDING, next_attempt_at=now
            )
        deliveries.append(delivery)
    ids = [d.pk for d in deliveries]
    if ids:
        transaction.on_commit(lambda: _queue(ids))
    return deliveries


def _queue(delivery_ids: list[str]) -> None:
    from events.tasks import deliver_event  # the tasks module imports the delivery services

    for delivery_id in delivery_ids:
        try:
            deliver_event.delay(delivery_id)
        except Exception:  # the broker is down: the beat sweep sends it when it is back
            logger.exception("Could not queue delivery %s; the sweep will send it.", delivery_id)


def event_redeliver(*, event: Event) -> list[Delivery]:
    """Sends the event again to every enabled endpoint that wants it (a new delivery, or a reset one)."""
    with transaction.atomic():
        return _deliveries_create(event)
