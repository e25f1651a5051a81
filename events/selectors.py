"""Reads of a project's webhook endpoints and events for the API. Every selector takes the project."""

from django.db.models import QuerySet

from core.errors import NotFound
from events.models import Event, WebhookEndpoint
from projects.models import Project


def endpoint_list(*, project: Project) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(project=project)


def endpoint_get(*, project: Project, endpoint_id: str) -> WebhookEndpoint:
    endpoint = endpoint_list(project=project).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(f"No such webhook endpoint: {endpoint_id!r}.")
    return endpoint


def event_list(*, project: Project, event_type: str | None = None) -> QuerySet[Event]:
    events = Event.objects.filter(project=project)
    if event_type:
        events = events.filter(type=event_type)
    return events


def event_get(*, project: Project, event_id: str) -> Event:
    event = event_list(project=project).filter(pk=event_id).first()
    if event is None:
        raise NotFound(f"No such event: {event_id!r}.")
    return event
