"""A project's entitlement settings (platform key): `GET|PATCH /projects/{id or slug}/entitlement_settings`,
the grace periods and the `credits.low` mark.
"""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.actors import actor_from_request
from core.base_api import BaseApi
from core.serializers import StrictSerializer
from entitlements import selectors
from entitlements.services.recompute import entitlement_settings_update
from projects import selectors as project_selectors
from projects.permissions import IsPlatformKey


class EntitlementSettingsApi(BaseApi):
    """`GET|PATCH /projects/{id or slug}/entitlement_settings`: grace periods and the `credits.low` mark."""

    permission_classes = [IsPlatformKey]

    class InputSerializer(StrictSerializer):
        past_due_grace_seconds = serializers.IntegerField(
            min_value=0,
            max_value=90 * 86_400,
            required=False,
            help_text="How long a past_due subscription keeps giving access from the start of its unpaid period.",
        )
        usage_grace_seconds = serializers.IntegerField(
            min_value=0,
            max_value=7 * 86_400,
            required=False,
            help_text="How long after a period ends usage events for it are still accepted.",
        )
        credits_low_percent = serializers.IntegerField(
            min_value=0,
            max_value=100,
            required=False,
            help_text="`credits.low` fires when a balance falls to this share of the credits still valid.",
        )
        reason = serializers.CharField(
            max_length=500, required=False, allow_blank=True, help_text="Recorded in the audit log."
        )

    class OutputSerializer(serializers.Serializer[Any]):
        object = serializers.CharField(default="entitlement_settings")
        project = serializers.CharField(source="project_id")
        past_due_grace_seconds = serializers.IntegerField()
        usage_grace_seconds = serializers.IntegerField()
        credits_low_percent = serializers.IntegerField()

    @extend_schema(
        operation_id="projects_entitlement_settings_retrieve",
        summary="Retrieve entitlement settings (platform)",
        description=(
            "Platform key: a project's grace periods (past-due access, late usage) and its "
            "`credits.low` mark."
        ),
        responses=OutputSerializer,
    )
    def get(self, request: Request, project_id: str) -> Response:
        project = project_selectors.project_get(id_or_slug=project_id)
        return Response(self.OutputSerializer(selectors.entitlement_settings_get(project=project)).data)

    @extend_schema(
        operation_id="projects_entitlement_settings_update",
        summary="Update entitlement settings (platform)",
        description=(
            "Platform key: changes a project's grace periods or `credits.low` mark, audited with "
            "`reason`; every cached entitlement answer of the project is recomputed with them."
        ),
        request=InputSerializer,
        responses=OutputSerializer,
    )
    def patch(self, request: Request, project_id: str) -> Response:
        project = project_selectors.project_get(id_or_slug=project_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        reason = changes.pop("reason", "")
        updated = entitlement_settings_update(
            project=project, actor=actor_from_request(request), reason=reason, **changes
        )
        return Response(self.OutputSerializer(updated).data)
