"""`GET /margins` (#54 point 4): what each customer was billed for its usage against what that usage cost the
tenant, per month and currency, by customer, feature and model (`billing.services.margins`)."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.services.margins import GROUPS, margins_report
from core.base_api import BaseApi
from core.errors import InvalidRequest
from core.pagination import list_body, list_serializer
from customers.selectors import customer_get
from projects.authentication import request_project

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_ID_LENGTH = 255
MAX_WINDOW = timedelta(days=366)
_TIME_HELP = (
    "ISO 8601: a date (`2026-03-01`, its midnight UTC) or a date and time (`2026-03-01T12:00:00Z`; UTC unless it "
    "names an offset, whose `+` must be URL-encoded as %2B)."
)
_MICROS = "Micro-units of `currency` (1 USD = 1,000,000)"


class MarginOutput(serializers.Serializer[Any]):
    object = serializers.CharField(default="margin")
    period = serializers.CharField(help_text="The month of the usage (UTC), `YYYY-MM`.")
    currency = serializers.CharField(
        help_text="Three-letter ISO code, lowercase, of every amount of the row; empty for usage that neither "
        "cost nor billed any money. Money is never summed across currencies: a row is one currency's."
    )
    customer = serializers.CharField(
        allow_null=True,
        help_text="The customer's id (your `external_id`); null when the report is not grouped by customer.",
    )
    feature = serializers.CharField(
        allow_null=True, help_text="The feature's key; null when the report is not grouped by feature."
    )
    model = serializers.CharField(
        allow_null=True,
        help_text="The model the usage named (empty for usage that named none); null when the report is not "
        "grouped by model.",
    )
    calls = serializers.IntegerField(
        help_text="Model calls counted: a `usage` or `consume` event each (a hold's units beyond it count with "
        "its call)."
    )
    units = serializers.IntegerField(help_text="Their quantity, in the feature's units.")
    cost_micros = serializers.IntegerField(
        help_text=f"{_MICROS}: what the usage cost you, by your cost table (events priced by one only)."
    )
    billed_micros = serializers.IntegerField(
        help_text=f"{_MICROS}: what the customer was billed for the usage, `overage_micros` + `credits_micros`."
    )
    overage_micros = serializers.IntegerField(
        help_text=f"{_MICROS}: what the customer's metered price bills for the usage reported to its meter (not "
        "the units paid with credits), each event at the margin of the period's units (a graduated price's free "
        "tier bills the period's first events nothing)."
    )
    credits_micros = serializers.IntegerField(
        help_text=f"{_MICROS}: the credits the usage burned, at what the customer paid for them (granted "
        "credits are worth nothing)."
    )
    credits_burned = serializers.IntegerField(help_text="The credits the usage burned.")
    margin_micros = serializers.IntegerField(help_text=f"{_MICROS}: `billed_micros` − `cost_micros`.")
    margin_bps = serializers.IntegerField(
        allow_null=True,
        help_text="The margin in basis points of what was billed (10000 × margin ÷ billed, rounded down: "
        "−2500 is −25 %); null when nothing was billed.",
    )


def _time(raw: Any, name: str) -> datetime | None:
    """The parameter as an instant in UTC (a date: its midnight UTC; no offset: UTC), or None when absent."""
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {_TIME_HELP}", code="invalid_parameter", param=name) from exc
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 moved across midnight: before or after any usage
        return datetime.min.replace(tzinfo=UTC) if value.year == 1 else datetime.max.replace(tzinfo=UTC)


def margins_window(raw_from: Any, raw_to: Any) -> tuple[datetime, datetime]:
    """[from, to) of the report, from the API's parameters (or the agents' tool's arguments): `to` defaults to
    now, `from` to the first day of the month (UTC) the window's last instant falls in — with neither, the current
    month so far; at most MAX_WINDOW long (InvalidRequest otherwise)."""
    start, end = _time(raw_from, "from"), _time(raw_to, "to")
    end = end or timezone.now()
    if start is None:
        last = end - timedelta(microseconds=1) if end > datetime.min.replace(tzinfo=UTC) else end
        start = last.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if end <= start:
        raise InvalidRequest(
            "to must be after from: the report covers [from, to).", code="invalid_range", param="to"
        )
    if end - start > MAX_WINDOW:
        # The report reads every event of the window: a year at a time keeps one request's work bounded.
        raise InvalidRequest(
            f"from: the report covers at most {MAX_WINDOW.days} days; ask for a year at a time.",
            code="invalid_range",
            param="from",
        )
    return start, end


def _group_by(request: Request) -> Sequence[str]:
    raw = request.query_params.get("group_by")
    if raw is None:
        return GROUPS
    names = {name.strip() for name in str(raw).split(",")} - {""}
    if unknown := sorted(names - set(GROUPS)):
        raise InvalidRequest(
            f"group_by: {unknown[0]!r} is not one of {', '.join(GROUPS)}.",
            code="invalid_parameter",
            param="group_by",
        )
    return tuple(name for name in GROUPS if name in names)


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw in (None, ""):
        return DEFAULT_LIMIT
    try:
        limit = int(str(raw))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(
            f"limit must be an integer from 1 to {MAX_LIMIT}.", code="invalid_limit", param="limit"
        )
    return limit


def _customer_id(request: Request) -> str | None:
    raw = request.query_params.get("customer")
    if raw in (None, ""):
        return None
    if len(str(raw)) > MAX_ID_LENGTH:
        raise InvalidRequest(
            f"customer: at most {MAX_ID_LENGTH} characters.", code="invalid_parameter", param="customer"
        )
    return str(raw)


class MarginListApi(BaseApi):
    @extend_schema(
        operation_id="margins_list",
        summary="List margins",
        description=(
            "What your customers were billed for their usage against what that usage cost you, for the usage "
            "recorded in [`from`, `to`): one row per month (UTC) and currency, and per customer, feature and "
            "model as `group_by` asks, least profitable first (the smallest `margin_micros`, then period, "
            "currency and the names), the first `limit` rows (`has_more`: rows were left out; there is no "
            "cursor, ask for more rows or fewer groups). Billed is the metered price's overage for the usage "
            "and the credits it burned at what the customer paid for them; cost is what your cost table priced "
            "the usage at. Money in micro-units of `currency` (1 USD = 1,000,000). 400 `invalid_range` (`to` "
            "not after `from`, or a window longer than 366 days), `invalid_parameter`, `invalid_limit`; 404 for an unknown `customer`."
        ),
        parameters=[
            OpenApiParameter(
                "from",
                {"oneOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]},
                description=f"The window's start (inclusive). {_TIME_HELP} Default: the first day of the month "
                "(UTC) of the window's last instant (`to=2026-03-01` alone: February); with neither `from` nor `to`, "
                "the current month so far.",
            ),
            OpenApiParameter(
                "to",
                {"oneOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]},
                description=f"The window's end (exclusive), after `from`. {_TIME_HELP} Default: now.",
            ),
            OpenApiParameter(
                "group_by",
                {"type": "array", "items": {"type": "string", "enum": list(GROUPS)}},
                style="form",
                explode=False,
                description="Comma-separated, any of `customer`, `feature` and `model` (default all three); "
                "a row's fields of those not named are null. Empty: one row per month and currency.",
            ),
            OpenApiParameter(
                "customer",
                {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
                description="Only this customer's usage (your `external_id`).",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                description=f"How many rows, the least profitable first: 1 to {MAX_LIMIT}, default "
                f"{DEFAULT_LIMIT}.",
            ),
        ],
        responses=list_serializer(MarginOutput, "MarginList"),
    )
    def get(self, request: Request) -> Response:
        start, end = margins_window(request.query_params.get("from"), request.query_params.get("to"))
        group_by, limit, external_id = _group_by(request), _limit(request), _customer_id(request)
        project = request_project(request)
        customer = (
            customer_get(project=project, external_id=external_id, param="customer") if external_id else None
        )
        rows = margins_report(project=project, start=start, end=end, group_by=group_by, customer=customer)
        return Response(list_body(MarginOutput(rows[:limit], many=True).data, len(rows) > limit))
