"""The API representation of webhook endpoints, events and deliveries: one output serializer per object renders the
REST API answers, the OpenAPI schema, the signed payload of a delivery (`event_payload`) and the
`data.object` of `webhook_endpoint.*` events alike."""

from typing import Any

from rest_framework import serializers
from rest_framework.fields import SkipField

from events.models import Delivery, Event, WebhookEndpoint


class EndpointOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="webhook_endpoint")
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(allow_null=True)
    failing_since = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, instance: WebhookEndpoint) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["object"] = "webhook_endpoint"
        data["disabled_reason"] = instance.disabled_reason or None
        return data


# The endpoint with the signing secret just made (`context={"secret": ...}`): shown on create and roll only.
# (Comments, not docstrings, on the output serializers: a docstring would become the schema's description.)
class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(help_text="The signing secret. Shown this once.")

    def to_representation(self, instance: WebhookEndpoint) -> dict[str, Any]:
        return {**EndpointOutput(instance).data, "secret": self.context["secret"]}


# The endpoint as it was, in the answer to its deletion.
class EndpointDeletedOutput(EndpointOutput):
    deleted = serializers.BooleanField(help_text="Always true: the endpoint is gone.")

    def to_representation(self, instance: WebhookEndpoint) -> dict[str, Any]:
        return {**EndpointOutput(instance).data, "deleted": True}


class DeliveryOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    endpoint = serializers.CharField(source="endpoint_id")
    status = serializers.ChoiceField(choices=Delivery.Status.choices)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)


class _DeliveriesInOrder(serializers.ListSerializer[Any]):
    """An event's deliveries, oldest first; only where the API shows them (`context={"with_deliveries": True}`)."""

    def get_attribute(self, instance: Event) -> Any:
        if not self.context.get("with_deliveries"):
            raise SkipField
        return instance.deliveries.order_by("created_at")


# An event as delivered; with `context={"with_deliveries": True}` (the API's event detail) also its deliveries.
class EventOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="event")
    type = serializers.CharField()
    created = serializers.DateTimeField(source="created_at")
    project = serializers.CharField(source="project_id")
    sequence = serializers.IntegerField(help_text="Per project, strictly increasing.")
    data = serializers.DictField(help_text="{'object': the API representation of the object}")  # type: ignore[assignment]
    previous_attributes = serializers.DictField(required=False)
    deliveries = _DeliveriesInOrder(child=DeliveryOutput(), required=False)

    def to_representation(self, instance: Event) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["object"] = "event"
        if instance.previous_attributes is None:
            data.pop("previous_attributes")
        return data


def event_payload(event: Event) -> dict[str, Any]:
    """The event as delivered (signed) to endpoints: its API representation."""
    # to_representation, as `EventOutput.data` is its event's `data` field to the type checker.
    return EventOutput().to_representation(event)
