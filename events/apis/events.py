"""`/events`: a project's tenant events, and their redelivery (API.md "Outbound events")."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from core.base_api import BaseApi
from core.errors import InvalidRequest
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from events import selectors
from events.models import Event
from events.representations import (
    EventOutput,
)
from events.services.record import event_redeliver
from events.types import EVENT_TYPES
from projects.authentication import request_project


def _event(request: Request, event_id: str) -> Event:
    return selectors.event_get(project=request_project(request), event_id=event_id)


class EventListApi(BaseApi):
    @extend_schema(
        operation_id="events_list",
        summary="List events",
        description=(
            "The project's events (what its webhook endpoints receive), newest first, optionally "
            "of one `type`; each has a per-project, strictly increasing `sequence` to order them."
        ),
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("type", {"type": "string", "enum": list(EVENT_TYPES)}),
        ],
        responses=list_serializer(EventOutput, "EventList"),
    )
    def get(self, request: Request) -> Response:
        if (event_type := request.query_params.get("type")) and event_type not in EVENT_TYPES:
            raise InvalidRequest(
                f"Unknown event type {event_type!r}.", code="unknown_event_type", param="type"
            )
        queryset = selectors.event_list(project=request_project(request), event_type=event_type)
        rows, has_more = paginate_queryset(queryset, request)
        return Response(list_body(EventOutput(rows, many=True).data, has_more))


class EventDetailApi(BaseApi):
    tenant_lookup = {"event_id": Event}

    @extend_schema(
        operation_id="events_retrieve",
        summary="Retrieve an event",
        description="One event with the object it carried, as it was delivered.",
        responses=EventOutput,
    )
    def get(self, request: Request, event_id: str) -> Response:
        return Response(EventOutput(_event(request, event_id), context={"with_deliveries": True}).data)


class EventRedeliverApi(BaseApi):
    tenant_lookup = {"event_id": Event}

    @extend_schema(
        operation_id="events_redeliver",
        summary="Redeliver an event",
        description=(
            "Queues the event again for every enabled endpoint that wants its type and answers "
            "202 at once; use it after fixing a receiver."
        ),
        request=None,
        responses={202: EventOutput},
    )
    def post(self, request: Request, event_id: str) -> Response:
        event = _event(request, event_id)
        event_redeliver(event=event)
        return Response(
            EventOutput(event, context={"with_deliveries": True}).data, status=status.HTTP_202_ACCEPTED
        )
