"""`/metrics/subscriptions` and `/metrics/revenue` (project key), and the platform-key variants under
`/projects/{id}/metrics/`."""

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from backoffice import metrics
from core.base_api import BaseApi
from core.errors import InvalidRequest
from projects import selectors as project_selectors
from projects.authentication import request_project
from projects.models import Project
from projects.permissions import IsPlatformKey


class SubscriptionMetricsOutput(serializers.Serializer[Any]):
    object = serializers.CharField(default="subscription_metrics")
    total = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())
    by_product = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))


class RevenuePeriodOutput(serializers.Serializer[Any]):
    period_start = serializers.DateField()
    currency = serializers.CharField()
    revenue = serializers.IntegerField()
    refunds = serializers.IntegerField()
    net = serializers.IntegerField()


class RevenueMetricsOutput(serializers.Serializer[Any]):
    object = serializers.CharField(default="revenue_metrics")
    interval = serializers.ChoiceField(choices=["month", "day"])
    data = RevenuePeriodOutput(many=True)  # type: ignore[assignment]  # a field named like Serializer.data
    mrr = serializers.DictField(
        child=serializers.IntegerField(), help_text="Monthly recurring revenue per currency."
    )


REVENUE_PARAMETERS = [
    OpenApiParameter(
        "from", OpenApiTypes.DATETIME, description="Start (inclusive); default: twelve months ago."
    ),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="End (exclusive); default: now."),
    OpenApiParameter("interval", OpenApiTypes.STR, enum=["month", "day"], description="Default month."),
]


def _parse_time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} must be an ISO 8601 date or time.", code="invalid_parameter", param=name
        ) from exc
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_current_timezone())
    try:
        # In UTC: PostgreSQL refuses offsets beyond ±15:59, which ISO 8601 (and Python) allow up to ±23:59.
        return value.astimezone(UTC)
    except OverflowError as exc:  # year 1 or 9999 moved across midnight
        raise InvalidRequest(
            f"{name} must be an ISO 8601 date or time.", code="invalid_parameter", param=name
        ) from exc


def _revenue(request: Request, project: Project) -> Response:
    interval = request.query_params.get("interval", "month")
    if interval not in ("month", "day"):
        raise InvalidRequest("interval must be month or day.", code="invalid_parameter", param="interval")
    default_start, default_end = metrics.default_window(timezone.now())
    start = _parse_time(request, "from") or default_start
    end = _parse_time(request, "to") or default_end
    if start >= end:
        raise InvalidRequest("from must be before to.", code="invalid_parameter", param="from")
    return Response(metrics.revenue_metrics(project=project, start=start, end=end, interval=interval))


class SubscriptionMetricsApi(BaseApi):
    @extend_schema(
        operation_id="metrics_subscriptions",
        summary="Subscription counts",
        description="The calling project's subscriptions counted by status and by product.",
        responses=SubscriptionMetricsOutput,
    )
    def get(self, request: Request) -> Response:
        return Response(metrics.subscription_metrics(project=request_project(request)))


class RevenueMetricsApi(BaseApi):
    @extend_schema(
        operation_id="metrics_revenue",
        summary="Revenue",
        description=(
            "The calling project's revenue, refunds and MRR per currency (minor units) between "
            "`from` and `to`, by `interval`."
        ),
        parameters=REVENUE_PARAMETERS,
        responses=RevenueMetricsOutput,
    )
    def get(self, request: Request) -> Response:
        return _revenue(request, request_project(request))


class ProjectSubscriptionMetricsApi(BaseApi):
    permission_classes = [IsPlatformKey]

    @extend_schema(
        operation_id="projects_metrics_subscriptions",
        summary="A project's subscription counts (platform)",
        description=(
            "Platform key: the subscription counts by status and product of any project, named by id or slug."
        ),
        responses=SubscriptionMetricsOutput,
    )
    def get(self, request: Request, project_id: str) -> Response:
        return Response(
            metrics.subscription_metrics(project=project_selectors.project_get(id_or_slug=project_id))
        )


class ProjectRevenueMetricsApi(BaseApi):
    permission_classes = [IsPlatformKey]

    @extend_schema(
        operation_id="projects_metrics_revenue",
        summary="A project's revenue (platform)",
        description=(
            "Platform key: revenue, refunds and MRR per currency of any project, named by id or "
            "slug, between `from` and `to`."
        ),
        parameters=REVENUE_PARAMETERS,
        responses=RevenueMetricsOutput,
    )
    def get(self, request: Request, project_id: str) -> Response:
        return _revenue(request, project_selectors.project_get(id_or_slug=project_id))
