"""A customer's entities — their seats, workspaces, projects, by your own ids — each counted by an allocation
feature (issue #51 point 5): `POST /entitlements/entities` (add), `GET /entitlements/entities?customer=`,
`PATCH /entitlements/entities/{id}` (rename), `DELETE /entitlements/entities/{id}` (remove). Every change is
audited with the key. A metered feature whose plan gives each entity its own limit (`per_entity`) takes `entity`
in checks and consumes."""

from collections.abc import Sequence
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.actors import actor_from_request
from core.base_api import BaseApi
from core.pagination import list_body, list_serializer
from core.serializers import StrictSerializer
from entitlements.apis.check import WindowOutput
from entitlements.apis.params import CUSTOMER, CUSTOMER_PARAMETER, MAX_ID_LENGTH, ReasonInput, reason_parse
from entitlements.cache import snapshot_get
from entitlements.entities import entities_credit_balances, entities_live, entities_usage, entity_find
from entitlements.models import Entity
from entitlements.services.entities import entity_add, entity_remove, entity_rename
from projects.authentication import request_project
from projects.models import Project


class EntityFeatureUseOutput(serializers.Serializer[Any]):
    feature = serializers.CharField(help_text="A metered feature whose plan gives each entity its own limit.")
    limit = serializers.IntegerField(help_text="The entity's own limit a period (`per_entity`).")
    used = serializers.IntegerField(help_text="Its use this period (held units included).")
    remaining = serializers.IntegerField(help_text="limit − used, never below 0.")
    windows = WindowOutput(
        many=True,
        help_text="Its own usage windows now (`per_entity.windows`), as checks answer them; [] when none.",
    )


class EntityCreditsOutput(serializers.Serializer[Any]):
    feature = serializers.CharField(help_text="A credits feature whose plan lets each entity hold its own.")
    balance = serializers.IntegerField(help_text="The entity's own credits, spent before the account's.")


class EntityOutput(serializers.Serializer[Any]):
    id = serializers.CharField(help_text="Tollgate's id of the entity (`ent_…`): the path of its changes.")
    object = serializers.CharField(default="entity")
    customer = serializers.CharField(source="customer.external_id")
    feature = serializers.CharField(source="feature.key", help_text="The allocation feature that counts it.")
    entity = serializers.CharField(source="external_id", help_text="Your id for it: what uses name.")
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    removed_at = serializers.DateTimeField(allow_null=True, help_text="Set once it is removed.")
    usage = serializers.SerializerMethodField(
        help_text="Its use this period of each metered feature whose plan (the customer's now) gives the entities "
        "of its allocation feature their own limit, by feature key; [] when none does. A removed entity's use "
        "stays counted for the period."
    )

    credits = serializers.SerializerMethodField(
        help_text="Its own credits of each credits feature whose plan (the customer's now) lets the entities of "
        "its allocation feature hold credits, by feature key; [] when none does (0 once it is removed)."
    )

    @extend_schema_field(EntityFeatureUseOutput(many=True))
    def get_usage(self, obj: Entity) -> list[dict[str, Any]]:
        return list(self.context["usage"].get(obj.pk, []))

    @extend_schema_field(EntityCreditsOutput(many=True))
    def get_credits(self, obj: Entity) -> list[dict[str, Any]]:
        return list(self.context["credits"].get(obj.pk, []))


def _output(project: Project, entities: Sequence[Entity], external_id: str, many: bool = True) -> Any:
    """The entities (of one customer) as the API answers them, each with its use this period."""
    structure = snapshot_get(project=project, external_id=external_id, with_usage=False).structure
    context = {
        "usage": entities_usage(structure, entities),
        "credits": entities_credit_balances(structure, entities),
    }
    data = EntityOutput(entities, many=True, context=context).data
    return data if many else data[0]


class EntitiesApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=MAX_ID_LENGTH)
        feature = serializers.CharField(max_length=100, help_text="The allocation feature that counts it.")
        entity = serializers.CharField(
            max_length=MAX_ID_LENGTH, help_text="Your id for it (unique per customer)."
        )
        name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="entitlements_entities_add",
        summary="Add an entity to a customer",
        description=(
            "Adds one of the customer's entities (a seat, a workspace), taking one unit of the allocation "
            "`feature` that counts it. 201 when added; 200 with the entity as it is when the customer already "
            "has a live entity of that id and feature (nothing taken twice). 409 `allocation_exhausted` when "
            "every unit the customer's plan gives is in use; 400 `feature_not_allocation`, `entity_exists` (the "
            "id names an entity of another feature). Nothing changes on an error."
        ),
        request=InputSerializer,
        responses={201: EntityOutput, 200: EntityOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        entity, created = entity_add(
            project=request_project(request),
            external_id=data["customer"],
            feature_key=data["feature"],
            entity_id=data["entity"],
            name=data["name"],
            actor=actor_from_request(request),
        )
        return Response(
            _output(request_project(request), [entity], data["customer"], many=False),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="entitlements_entities_list",
        summary="List a customer's entities",
        description="The customer's live entities, oldest first.",
        parameters=[CUSTOMER_PARAMETER],
        responses=list_serializer(EntityOutput, "EntityList"),
    )
    def get(self, request: Request) -> Response:
        project = request_project(request)
        customer = CUSTOMER.parse(request.query_params)
        rows = list(entities_live(project_id=project.pk, external_id=customer))
        return Response(list_body(_output(project, rows, customer), has_more=False))


class EntityDetailApi(BaseApi):
    tenant_lookup = {"entity_id": Entity}

    class RenameSerializer(StrictSerializer):
        name = serializers.CharField(max_length=255, allow_blank=True)

    @extend_schema(
        operation_id="entitlements_entities_rename",
        summary="Rename an entity",
        description=(
            "Its id, its use and its unit stay. 400 `entity_removed` for a removed one; 404 for an id of another "
            "project."
        ),
        request=RenameSerializer,
        responses={200: EntityOutput},
    )
    def patch(self, request: Request, entity_id: str) -> Response:
        entity_find(project_id=request_project(request).pk, pk=entity_id)  # 404 before the body's 400
        serializer = self.RenameSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entity = entity_rename(
            project=request_project(request),
            pk=entity_id,
            name=serializer.validated_data["name"],
            actor=actor_from_request(request),
        )
        return Response(_output(request_project(request), [entity], entity.customer.external_id, many=False))

    @extend_schema(
        operation_id="entitlements_entities_remove",
        summary="Remove an entity",
        description=(
            "Gives its unit of the allocation feature back; uses naming it are refused from now on "
            "(`unknown_entity`). Its use this period stays counted, its own and the account's: the same id "
            "added again within the period finds it (no fresh allowance). Removing it again changes nothing. "
            "Audited with the `reason` given. 404 for an id of another project."
        ),
        request=ReasonInput,
        responses={200: EntityOutput},
    )
    def delete(self, request: Request, entity_id: str) -> Response:
        entity = entity_remove(
            project=request_project(request),
            pk=entity_id,
            actor=actor_from_request(request),
            reason=reason_parse(request),
        )
        return Response(_output(request_project(request), [entity], entity.customer.external_id, many=False))
