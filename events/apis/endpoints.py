"""`/webhook_endpoints` (API.md "Outbound events")."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.actors import actor_from_request
from core.base_api import BaseApi
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import HttpsUrlField, StrictSerializer
from events import selectors
from events.models import WebhookEndpoint
from events.representations import (
    EndpointDeletedOutput,
    EndpointOutput,
    EndpointWithSecretOutput,
)
from events.services.endpoints import endpoint_create, endpoint_delete, endpoint_roll_secret, endpoint_update
from events.types import EVENT_TYPES
from projects.authentication import request_project


def _endpoint(request: Request, endpoint_id: str) -> WebhookEndpoint:
    return selectors.endpoint_get(project=request_project(request), endpoint_id=endpoint_id)


@extend_schema_field({"type": "string", "enum": ["*", *EVENT_TYPES]})
class EventTypeField(serializers.CharField):
    """An event type or `*`: the schema lists them; `events_validate` refuses the others (400
    `unknown_event_type`)."""


class _EndpointFields(StrictSerializer):
    url = HttpsUrlField()
    events = serializers.ListField(child=EventTypeField(), allow_empty=False, min_length=1, max_length=100)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)


class WebhookEndpointListCreateApi(BaseApi):
    class InputSerializer(_EndpointFields):
        pass

    @extend_schema(
        operation_id="webhook_endpoints_list",
        summary="List webhook endpoints",
        description="The project's endpoints receiving Tollgate's events, without their secrets.",
        parameters=PAGINATION_PARAMETERS,
        responses=list_serializer(EndpointOutput, "WebhookEndpointList"),
    )
    def get(self, request: Request) -> Response:
        rows, has_more = paginate_queryset(selectors.endpoint_list(project=request_project(request)), request)
        return Response(list_body(EndpointOutput(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="webhook_endpoints_create",
        summary="Create a webhook endpoint",
        description=(
            'Registers an HTTPS URL to receive the given event types (`["*"]` for all), signed '
            "with `Tollgate-Signature`. The signing `secret` is in this answer only: store it. "
            "Errors: 400 `https_required`, `invalid_url`, `unknown_event_type`."
        ),
        request=InputSerializer,
        responses={201: EndpointWithSecretOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = endpoint_create(
            project=request_project(request), actor=actor_from_request(request), **serializer.validated_data
        )
        return Response(
            EndpointWithSecretOutput(endpoint, context={"secret": secret}).data,
            status=status.HTTP_201_CREATED,
        )


class WebhookEndpointDetailApi(BaseApi):
    tenant_lookup = {"endpoint_id": WebhookEndpoint}

    class InputSerializer(_EndpointFields):
        url = HttpsUrlField(required=False)
        events = serializers.ListField(
            child=EventTypeField(), allow_empty=False, min_length=1, max_length=100, required=False
        )

    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        summary="Retrieve a webhook endpoint",
        description="One endpoint: its URL, event types and whether it is enabled; never its secret.",
        responses=EndpointOutput,
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        return Response(EndpointOutput(_endpoint(request, endpoint_id)).data)

    @extend_schema(
        operation_id="webhook_endpoints_update",
        summary="Update a webhook endpoint",
        description=(
            "Changes an endpoint's URL, event types, description or `enabled`; deliveries from "
            "then on follow the change. Same validation errors as create."
        ),
        request=InputSerializer,
        responses=EndpointOutput,
    )
    def patch(self, request: Request, endpoint_id: str) -> Response:
        endpoint = _endpoint(request, endpoint_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = endpoint_update(
            endpoint=endpoint, actor=actor_from_request(request), **serializer.validated_data
        )
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(
        operation_id="webhook_endpoints_delete",
        summary="Delete a webhook endpoint",
        description=(
            "Deletes an endpoint and answers it with `deleted: true`; no event is sent to it from then on."
        ),
        request=None,
        responses={200: EndpointDeletedOutput},
    )
    def delete(self, request: Request, endpoint_id: str) -> Response:
        endpoint = _endpoint(request, endpoint_id)
        body = EndpointDeletedOutput(endpoint).data
        endpoint_delete(endpoint=endpoint, actor=actor_from_request(request))
        return Response(body)


class WebhookEndpointRollSecretApi(BaseApi):
    tenant_lookup = {"endpoint_id": WebhookEndpoint}

    class InputSerializer(StrictSerializer):
        overlap_seconds = serializers.IntegerField(min_value=0, max_value=7 * 86400, required=False)

    @extend_schema(
        operation_id="webhook_endpoints_roll_secret",
        summary="Roll an endpoint's secret",
        description=(
            "A new signing secret, answered this once; the old one stays valid for "
            "`overlap_seconds` (default a day; 0 ends it now), during which deliveries carry both "
            "signatures."
        ),
        request=InputSerializer,
        responses=EndpointWithSecretOutput,
    )
    def post(self, request: Request, endpoint_id: str) -> Response:
        endpoint = _endpoint(request, endpoint_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = endpoint_roll_secret(
            endpoint=endpoint,
            actor=actor_from_request(request),
            overlap_seconds=serializer.validated_data.get("overlap_seconds"),
        )
        return Response(EndpointWithSecretOutput(endpoint, context={"secret": secret}).data)
