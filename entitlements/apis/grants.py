"""Grants and revocations: `POST /entitlements/grants` and `/entitlements/revocations`, and their
`DELETE` by id, each with a reason for the audit log.
"""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.selectors import feature_by_key
from core.actors import actor_from_request
from core.base_api import BaseApi
from core.serializers import StrictSerializer
from entitlements import selectors
from entitlements.apis.params import MAX_ID_LENGTH, ReasonInput, reason_parse
from entitlements.models import Grant, Revocation
from entitlements.services.grants import grant_create, grant_delete, revocation_create, revocation_delete
from projects.authentication import request_project


class GrantOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="entitlement_grant")
    customer = serializers.CharField(source="customer.external_id")
    feature = serializers.CharField(source="feature.key")
    value = serializers.JSONField(allow_null=True)
    priority = serializers.IntegerField(
        allow_null=True, help_text="credits: the drawdown priority given (null: the default, 10)."
    )
    entity = serializers.SerializerMethodField(
        help_text="credits: the entity (your id for it) whose own credits these are; null: the account's."
    )
    expires_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()
    deleted = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_deleted(self, grant: Grant) -> bool:
        return grant.deleted_at is not None

    def get_entity(self, grant: Grant) -> str | None:
        return grant.entity or None


class RevocationOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    object = serializers.CharField(default="entitlement_revocation")
    customer = serializers.CharField(source="customer.external_id")
    feature = serializers.CharField(source="feature.key")
    expires_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()
    deleted = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_deleted(self, revocation: Revocation) -> bool:
        return revocation.deleted_at is not None


class GrantCreateApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=MAX_ID_LENGTH)
        feature = serializers.CharField(max_length=100)
        value = serializers.JSONField(
            required=False,
            allow_null=True,
            help_text="metered/allocation: units added to the limit (null: unlimited, the default); credits: "
            "credits granted (required); boolean: true/false (default true); static: the value (required).",
        )
        expires_at = serializers.DateTimeField(required=False, allow_null=True)
        priority = serializers.IntegerField(
            min_value=0,
            max_value=255,
            required=False,
            help_text="credits only: lower is spent first (every other lot has 10); within a priority the lot "
            "expiring first goes first.",
        )
        entity = serializers.CharField(
            max_length=MAX_ID_LENGTH,
            required=False,
            help_text="credits only: the customer's entity (your id for it) whose own credits these are, where "
            "the plan lets its entities hold credits (`per_entity` on the credits value); spent only by uses "
            "naming it, before the account's.",
        )
        reason = serializers.CharField(max_length=500)

    @extend_schema(
        operation_id="entitlements_grants_create",
        summary="Grant a feature",
        description=(
            "A support grant to one customer, with a `reason` for the audit log: on `metered`, "
            "`credits` and `allocation` features it tops up what purchases give, on "
            "`boolean`/`static` it sets the value; optionally until `expires_at`. A credits grant may "
            "take a drawdown `priority` (lower first; purchases and plan credits have 10), and may be one "
            "entity's own (`entity`: 400 `unknown_entity` for none of the customer's live entities, "
            "`entity_not_counted` where the plan gives the feature no credits per entity). Nothing at Stripe."
        ),
        request=InputSerializer,
        responses={201: GrantOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = request_project(request)
        grant = grant_create(
            project=project,
            actor=actor_from_request(request),
            external_id=data["customer"],
            feature=feature_by_key(project=project, key=data["feature"]),
            reason=data["reason"],
            value=data.get("value"),
            value_given="value" in data,
            expires_at=data.get("expires_at"),
            priority=data.get("priority"),
            entity=data.get("entity"),
        )
        return Response(GrantOutput(grant).data, status=status.HTTP_201_CREATED)


class GrantDeleteApi(BaseApi):
    tenant_lookup = {"grant_id": Grant}

    @extend_schema(
        operation_id="entitlements_grants_delete",
        summary="End a grant",
        description=(
            "Ends a grant now (unspent credits of a credits grant are taken back) and answers it "
            "with `deleted: true`; an optional `reason` goes to the audit log. Repeating it "
            "changes nothing."
        ),
        request=ReasonInput,
        responses={200: GrantOutput},
    )
    def delete(self, request: Request, grant_id: str) -> Response:
        grant = selectors.grant_get(project=request_project(request), grant_id=grant_id)
        deleted = grant_delete(grant=grant, actor=actor_from_request(request), reason=reason_parse(request))
        return Response(GrantOutput(deleted).data)


class RevocationCreateApi(BaseApi):
    class InputSerializer(StrictSerializer):
        customer = serializers.CharField(max_length=MAX_ID_LENGTH)
        feature = serializers.CharField(max_length=100)
        expires_at = serializers.DateTimeField(required=False, allow_null=True)
        reason = serializers.CharField(max_length=500)

    @extend_schema(
        operation_id="entitlements_revocations_create",
        summary="Revoke a feature",
        description=(
            "Takes a feature away from one customer whatever their purchases and grants give (a "
            "revocation wins), optionally until `expires_at`, with a `reason` for the audit log."
        ),
        request=InputSerializer,
        responses={201: RevocationOutput},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = request_project(request)
        revocation = revocation_create(
            project=project,
            actor=actor_from_request(request),
            external_id=data["customer"],
            feature=feature_by_key(project=project, key=data["feature"]),
            reason=data["reason"],
            expires_at=data.get("expires_at"),
        )
        return Response(RevocationOutput(revocation).data, status=status.HTTP_201_CREATED)


class RevocationDeleteApi(BaseApi):
    tenant_lookup = {"revocation_id": Revocation}

    @extend_schema(
        operation_id="entitlements_revocations_delete",
        summary="End a revocation",
        description=(
            "Lifts a revocation now, answers it with `deleted: true`, and gives the customer back "
            "what their purchases and grants give; an optional `reason` goes to the audit log."
        ),
        request=ReasonInput,
        responses={200: RevocationOutput},
    )
    def delete(self, request: Request, revocation_id: str) -> Response:
        revocation = selectors.revocation_get(project=request_project(request), revocation_id=revocation_id)
        deleted = revocation_delete(
            revocation=revocation, actor=actor_from_request(request), reason=reason_parse(request)
        )
        return Response(RevocationOutput(deleted).data)
