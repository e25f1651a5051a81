"""Projects API: `/api/v1/projects*` for platform keys, `/api/v1/project*` for a project's own key."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.actors import actor_from_request
from core.base_api import BaseApi
from core.pagination import PAGINATION_PARAMETERS, list_body, list_serializer, paginate_queryset
from core.serializers import CurrencyField, HostField, StrictSerializer
from projects import selectors
from projects.authentication import request_project
from projects.models import (
    MAX_MARGIN_ALERT_BPS,
    MAX_PAYMENT_TTL_SECONDS,
    MIN_MARGIN_ALERT_BPS,
    ApiKey,
    Project,
)
from projects.permissions import IsPlatformKey
from projects.services import keys as key_services
from projects.services import projects as services


class ProjectOutputSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    has_stripe_secret_key = serializers.SerializerMethodField()
    has_stripe_webhook_secret = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id",
            "object",
            "slug",
            "name",
            "status",
            "default_currency",
            "allowed_redirect_hosts",
            "payment_ttl_seconds",
            "default_flow",
            "default_product",
            "stripe_publishable_key",
            "refund_late_payments",
            "first_invoice_void_ends_subscription",
            "proration_upgrade",
            "proration_downgrade",
            "proration_interval_change",
            "margin_alert_below_bps",
            "has_stripe_secret_key",
            "has_stripe_webhook_secret",
            "created_at",
            "updated_at",
        ]

    def get_object(self, obj: Project) -> str:
        return "project"

    def get_has_stripe_secret_key(self, obj: Project) -> bool:
        return bool(obj.stripe_secret_key)

    def get_has_stripe_webhook_secret(self, obj: Project) -> bool:
        return bool(obj.stripe_webhook_secret)


class ApiKeyOutputSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()
    project = serializers.CharField(source="project_id")

    class Meta:
        model = ApiKey
        fields = ["id", "object", "project", "name", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_object(self, obj: ApiKey) -> str:
        return "api_key"


class ApiKeyCreatedSerializer(ApiKeyOutputSerializer):
    api_key = serializers.CharField(help_text="The secret key. Shown this once; store it now.")

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = [*ApiKeyOutputSerializer.Meta.fields, "api_key"]


class ProjectCreatedSerializer(ProjectOutputSerializer):
    api_key = serializers.CharField(
        help_text="The project's first secret key. Shown this once; store it now."
    )

    class Meta(ProjectOutputSerializer.Meta):
        fields = [*ProjectOutputSerializer.Meta.fields, "api_key"]


class ProjectSettingsSerializer(StrictSerializer):
    """The settable fields shared by create and update."""

    name = serializers.CharField(max_length=200)
    default_currency = CurrencyField(required=False)
    allowed_redirect_hosts = serializers.ListField(child=HostField(), required=False, max_length=100)
    payment_ttl_seconds = serializers.IntegerField(
        min_value=60, max_value=MAX_PAYMENT_TTL_SECONDS, required=False
    )
    default_flow = serializers.ChoiceField(choices=Project.Flow.choices, required=False)
    default_product = serializers.CharField(max_length=100, required=False, allow_blank=True)
    stripe_secret_key = serializers.RegexField(
        r"^(sk|rk)_(test|live)_[A-Za-z0-9_]+$", required=False, allow_blank=True, write_only=True
    )
    stripe_publishable_key = serializers.RegexField(
        r"^pk_(test|live)_[A-Za-z0-9_]+$", required=False, allow_blank=True
    )
    stripe_webhook_secret = serializers.RegexField(
        r"^whsec_[A-Za-z0-9+/=_]+$", required=False, allow_blank=True, write_only=True
    )
    refund_late_payments = serializers.BooleanField(
        required=False, help_text="Refund automatically a payment that succeeds after it was expired."
    )
    first_invoice_void_ends_subscription = serializers.BooleanField(
        required=False,
        help_text="Cancel a subscription at once, at Stripe, when its first invoice is voided before anything was "
        "paid on it: its entitlements end with it (`subscription.canceled` follows). Off (the default): the "
        "subscription runs on, as Stripe leaves it.",
    )
    proration_upgrade = serializers.ChoiceField(
        choices=Project.ProrationRule.choices,
        required=False,
        help_text="What a subscription change to dearer items does: `now_prorate` (default), "
        "`now_no_proration` or `period_end` (scheduled for the end of the current period).",
    )
    proration_downgrade = serializers.ChoiceField(
        choices=Project.ProrationRule.choices,
        required=False,
        help_text="The same for a change to cheaper (or equally priced) items.",
    )
    proration_interval_change = serializers.ChoiceField(
        choices=Project.ProrationRule.choices,
        required=False,
        help_text="The same for a change of billing interval (monthly ↔ yearly).",
    )
    margin_alert_below_bps = serializers.IntegerField(
        min_value=MIN_MARGIN_ALERT_BPS,
        max_value=MAX_MARGIN_ALERT_BPS,
        required=False,
        allow_null=True,
        help_text="`customer.margin_low` is sent once a month (and currency) for a customer whose margin this "
        "month falls below this many basis points of what they were billed (2000: 20 %; negative: a loss; a "
        "customer whose usage cost something and who was billed nothing is below any threshold). "
        f"{MIN_MARGIN_ALERT_BPS:,} to {MAX_MARGIN_ALERT_BPS:,}; null (the default): never.",
    )


def _render_project(project: Project, **extra: Any) -> dict[str, Any]:
    return {**ProjectOutputSerializer(project).data, **extra}


class ProjectListCreateApi(BaseApi):
    permission_classes = [IsPlatformKey]

    class InputSerializer(ProjectSettingsSerializer):
        slug = serializers.SlugField(max_length=50)

    @extend_schema(
        operation_id="projects_list",
        summary="List projects (platform)",
        description="Platform key: every tenant project, newest first.",
        parameters=PAGINATION_PARAMETERS,
        responses=list_serializer(ProjectOutputSerializer, "ProjectList"),
    )
    def get(self, request: Request) -> Response:
        rows, has_more = paginate_queryset(selectors.project_list(), request)
        return Response(list_body(ProjectOutputSerializer(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="projects_create",
        summary="Create a project (platform)",
        description=(
            "Platform key: a tenant project and its first API key (the secret `api_key` is in "
            "this answer only). Own Stripe credentials are optional (else the platform's Stripe "
            "account is used); they are stored encrypted and never echoed. 409 `slug_taken`."
        ),
        request=InputSerializer,
        responses={201: ProjectCreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project, _, secret = services.project_create(
            actor=actor_from_request(request), **serializer.validated_data
        )
        return Response(_render_project(project, api_key=secret), status=status.HTTP_201_CREATED)


class ProjectDetailApi(BaseApi):
    permission_classes = [IsPlatformKey]

    class InputSerializer(ProjectSettingsSerializer):
        name = serializers.CharField(max_length=200, required=False)
        slug = serializers.CharField(
            required=False, help_text="Immutable: only the current value is accepted."
        )
        status = serializers.ChoiceField(choices=Project.Status.choices, required=False)
        reason = serializers.CharField(
            required=False, allow_blank=True, help_text="Recorded in the audit log."
        )

    @extend_schema(
        operation_id="projects_retrieve",
        summary="Retrieve a project (platform)",
        description="Platform key: one project by id or slug, without secrets.",
        responses=ProjectOutputSerializer,
    )
    def get(self, request: Request, project_id: str) -> Response:
        return Response(_render_project(selectors.project_get(id_or_slug=project_id)))

    @extend_schema(
        operation_id="projects_update",
        summary="Update a project (platform)",
        description=(
            "Platform key: changes a project's settings or `status`; a suspension takes effect on "
            "every server within a second (its keys then get 403). `slug` cannot change (400 "
            "`immutable_field`)."
        ),
        request=InputSerializer,
        responses=ProjectOutputSerializer,
    )
    def patch(self, request: Request, project_id: str) -> Response:
        project = selectors.project_get(id_or_slug=project_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        reason = changes.pop("reason", "")
        project = services.project_update(
            actor=actor_from_request(request), project=project, reason=reason, **changes
        )
        return Response(_render_project(project))


class ProjectApiKeyListCreateApi(BaseApi):
    permission_classes = [IsPlatformKey]

    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=100, required=False, allow_blank=True)

    @extend_schema(
        operation_id="projects_api_keys_list",
        summary="List a project's API keys (platform)",
        description="Platform key: a project's keys with prefixes and revocation; never a secret.",
        parameters=PAGINATION_PARAMETERS,
        responses=list_serializer(ApiKeyOutputSerializer, "ApiKeyList"),
    )
    def get(self, request: Request, project_id: str) -> Response:
        project = selectors.project_get(id_or_slug=project_id)
        rows, has_more = paginate_queryset(selectors.api_key_list(project=project), request)
        return Response(list_body(ApiKeyOutputSerializer(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="projects_api_keys_create",
        summary="Create a project API key (platform)",
        description="Platform key: a new key for a project; the secret `api_key` is in this answer only.",
        request=InputSerializer,
        responses={201: ApiKeyCreatedSerializer},
    )
    def post(self, request: Request, project_id: str) -> Response:
        project = selectors.project_get(id_or_slug=project_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, secret = key_services.api_key_create(
            actor=actor_from_request(request), project=project, **serializer.validated_data
        )
        return Response(
            {**ApiKeyOutputSerializer(api_key).data, "api_key": secret}, status=status.HTTP_201_CREATED
        )


class RevokeInputSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, help_text="Recorded in the audit log.")


class ProjectApiKeyRevokeApi(BaseApi):
    permission_classes = [IsPlatformKey]

    @extend_schema(
        operation_id="projects_api_keys_revoke",
        summary="Revoke a project API key (platform)",
        description=(
            "Platform key: revokes one of a project's keys, refused everywhere within a second; "
            "repeating it changes nothing."
        ),
        request=RevokeInputSerializer,
        responses={200: ApiKeyOutputSerializer},
    )
    def delete(self, request: Request, project_id: str, key_id: str) -> Response:
        project = selectors.project_get(id_or_slug=project_id)
        api_key = selectors.api_key_get(project=project, key_id=key_id)
        serializer = RevokeInputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        api_key = key_services.api_key_revoke(
            actor=actor_from_request(request), api_key=api_key, **serializer.validated_data
        )
        return Response(ApiKeyOutputSerializer(api_key).data)


class CurrentProjectApi(BaseApi):
    """The calling project's own settings, without secrets."""

    @extend_schema(
        operation_id="project_retrieve",
        summary="Retrieve your project",
        description=(
            "The calling project's own settings, without any secret (only whether Stripe "
            "credentials are set)."
        ),
        responses=ProjectOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        return Response(_render_project(request_project(request)))


class CurrentProjectApiKeyListCreateApi(BaseApi):
    """A project rotates its own keys: create a new one, switch over, revoke the old one."""

    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=100, required=False, allow_blank=True)

    @extend_schema(
        operation_id="project_api_keys_list",
        summary="List your API keys",
        description=(
            "The calling project's keys with their prefixes, creation and last use, and "
            "revocation; never a secret."
        ),
        parameters=PAGINATION_PARAMETERS,
        responses=list_serializer(ApiKeyOutputSerializer, "OwnApiKeyList"),
    )
    def get(self, request: Request) -> Response:
        rows, has_more = paginate_queryset(selectors.api_key_list(project=request_project(request)), request)
        return Response(list_body(ApiKeyOutputSerializer(rows, many=True).data, has_more))

    @extend_schema(
        operation_id="project_api_keys_create",
        summary="Create an API key",
        description=(
            "A new key for the calling project, for rotation: create one, switch over, revoke the "
            "old one. The secret `api_key` is in this answer only."
        ),
        request=InputSerializer,
        responses={201: ApiKeyCreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, secret = key_services.api_key_create(
            actor=actor_from_request(request), project=request_project(request), **serializer.validated_data
        )
        return Response(
            {**ApiKeyOutputSerializer(api_key).data, "api_key": secret}, status=status.HTTP_201_CREATED
        )


class CurrentProjectApiKeyRevokeApi(BaseApi):
    tenant_lookup = {"key_id": ApiKey}

    @extend_schema(
        operation_id="project_api_keys_revoke",
        summary="Revoke an API key",
        description=(
            "Revokes one of the calling project's keys; every server refuses it within a second "
            "(401). Repeating it changes nothing."
        ),
        request=RevokeInputSerializer,
        responses={200: ApiKeyOutputSerializer},
    )
    def delete(self, request: Request, key_id: str) -> Response:
        api_key = selectors.api_key_get(project=request_project(request), key_id=key_id)
        serializer = RevokeInputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        api_key = key_services.api_key_revoke(
            actor=actor_from_request(request), api_key=api_key, **serializer.validated_data
        )
        return Response(ApiKeyOutputSerializer(api_key).data)
