"""`/metrics/revenue_recognition` (project key): the project's revenue recognised and deferred, per month,
currency and product (`billing.services.revenue_report`)."""

from datetime import UTC, date, datetime
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.services.revenue_report import Figures, MonthReport, month_start, months_before, revenue_months
from core.base_api import BaseApi
from core.errors import InvalidRequest
from projects.authentication import request_project

MAX_MONTHS = 24


class RevenueRecognitionQuery(serializers.Serializer[Any]):
    month = serializers.RegexField(
        r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$",
        required=False,
        help_text="YYYY-MM (UTC); default: this month.",
    )
    months = serializers.IntegerField(
        min_value=1, max_value=MAX_MONTHS, required=False, help_text="How many months, ending with `month`."
    )


class BalanceOutput(serializers.Serializer[Any]):
    opening = serializers.IntegerField(help_text="Held when the month began.")
    added = serializers.IntegerField(help_text="Billed less given back in the month.")
    recognised = serializers.IntegerField(help_text="Recognised as revenue in the month.")
    closing = serializers.IntegerField(help_text="Held when the month ended: opening + added − recognised.")


class FiguresOutput(serializers.Serializer[Any]):
    billed = serializers.IntegerField(
        help_text="Paid lines booked in the month, tax aside, discounts taken off."
    )
    refunds = serializers.IntegerField(
        help_text="Revenue given back by refunds and credit notes booked in it."
    )
    recognised = serializers.IntegerField(
        help_text="Revenue earned in the month: its days of service, and the prepaid credits spent or expired in it."
    )
    deferred = BalanceOutput(help_text="Deferred revenue: billed for service not yet given.")
    credits = BalanceOutput(help_text="The liability of prepaid credits bought and not yet spent or expired.")


class ProductFiguresOutput(FiguresOutput):
    product = serializers.CharField(allow_null=True, help_text="Tollgate's product id; null: no product.")
    name = serializers.CharField()


class CurrencyFiguresOutput(FiguresOutput):
    currency = serializers.CharField()
    products = ProductFiguresOutput(many=True)


class MonthOutput(serializers.Serializer[Any]):
    month = serializers.CharField(help_text="YYYY-MM (UTC).")
    currencies = CurrencyFiguresOutput(many=True)


class RevenueRecognitionOutput(serializers.Serializer[Any]):
    object = serializers.CharField(default="revenue_recognition")
    months = MonthOutput(many=True)


def _figures(figures: Figures) -> dict[str, Any]:
    return {
        "billed": figures.billed,
        "refunds": figures.refunds,
        "recognised": figures.recognised,
        **{
            balance: {
                name: getattr(figures, f"{balance}_{name}")
                for name in ("opening", "added", "recognised", "closing")
            }
            for balance in ("deferred", "credits")
        },
    }


def _month(report: MonthReport) -> dict[str, Any]:
    return {
        "month": f"{report.month:%Y-%m}",
        "currencies": [
            {
                "currency": currency.currency,
                **_figures(currency),
                "products": [
                    {"product": p.product, "name": p.name, **_figures(p)} for p in currency.products
                ],
            }
            for currency in report.currencies
        ],
    }


def _parse_month(raw: str | None) -> date:
    if not raw:
        return month_start(datetime.now(UTC).date())
    try:
        return datetime.strptime(raw, "%Y-%m").replace(tzinfo=UTC).date()
    except ValueError as exc:
        raise InvalidRequest("month must be YYYY-MM.", code="invalid_parameter", param="month") from exc


class RevenueRecognitionApi(BaseApi):
    @extend_schema(
        operation_id="metrics_revenue_recognition",
        summary="Revenue recognised and deferred",
        description=(
            "The calling project's revenue per month, currency and product (minor units; currencies never "
            "added together): billed, given back by refunds and credit notes, recognised day by day over each "
            "paid line's service period and as prepaid credits are spent or expire; the deferred revenue's and the "
            "credits liability's opening, additions, recognition and closing. `months` "
            "months ending with `month`, oldest first."
        ),
        parameters=[RevenueRecognitionQuery],
        responses=RevenueRecognitionOutput,
    )
    def get(self, request: Request) -> Response:
        query = RevenueRecognitionQuery(data=request.query_params)
        if not query.is_valid():
            name = next(iter(query.errors))
            raise InvalidRequest(
                "month must be YYYY-MM (1970-01 to 2999-12)."
                if name == "month"
                else f"months must be a whole number from 1 to {MAX_MONTHS}.",
                code="invalid_parameter",
                param=name,
            )
        last = _parse_month(query.validated_data.get("month"))
        first = months_before(last, query.validated_data.get("months", 1))
        reports = revenue_months(request_project(request), first, last)
        return Response({"object": "revenue_recognition", "months": [_month(r) for r in reports]})
