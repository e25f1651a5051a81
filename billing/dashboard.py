"""The operators' dashboard: per project and in total, what needs attention and how the business goes.

Server-rendered (the revenue chart is inline SVG): no script, no CDN.
"""

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from billing import metrics
from billing.models import Drift, Payment, Subscription
from core.money import money_format
from projects.models import Project
from webhooks.models import StripeEvent

CHART_WIDTH = 600
CHART_HEIGHT = 160


def _money(amounts: dict[str, int]) -> str:
    """Amounts of several currencies in one cell: "$60.00, ¥500"."""
    return ", ".join(money_format(amount, currency) for currency, amount in sorted(amounts.items())) or "—"


def _revenue_chart(series: dict[str, int], currency: str) -> dict[str, Any]:
    """Bars of monthly revenue, scaled to the chart (amounts in minor units)."""
    months = sorted(series)
    peak = max(series.values(), default=0) or 1
    width = CHART_WIDTH / max(len(months), 1)
    bars = []
    for index, month in enumerate(months):
        height = round(series[month] / peak * (CHART_HEIGHT - 20))
        bars.append(
            {
                "x": round(index * width + 4),
                "y": CHART_HEIGHT - height,
                "width": max(round(width - 8), 2),
                "height": height,
                "label": month[:7],
                "amount": money_format(series[month], currency),
            }
        )
    return {"currency": currency, "bars": bars, "width": CHART_WIDTH, "height": CHART_HEIGHT}


@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    start, end = metrics.default_window(now)
    rows = []
    totals: dict[str, Any] = {
        "active": 0,
        "mrr": defaultdict(int),
        "failed_events": 0,
        "open_drift": 0,
        "expiring": 0,
    }
    charts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for project in Project.objects.order_by("slug"):
        revenue = metrics.revenue_metrics(project=project, start=start, end=end, interval="month")
        for period in revenue["data"]:
            charts[period["currency"]][period["period_start"]] += period["net"]
        row = {
            "project": project,
            "active": Subscription.objects.filter(project=project, status__in=metrics.MRR_STATUSES).count(),
            "mrr": revenue["mrr"],
            "failed_events": StripeEvent.objects.filter(
                project=project, status=StripeEvent.Status.FAILED
            ).count(),
            "open_drift": Drift.objects.filter(
                project=project, status__in=(Drift.Status.OPEN, Drift.Status.FAILED)
            ).count(),
            "expiring": Payment.objects.filter(
                project=project, status__in=Payment.OPEN_STATUSES, expires_at__lt=now + timedelta(hours=1)
            ).count(),
        }
        row["mrr_text"] = _money(row["mrr"])
        rows.append(row)
        totals["active"] += row["active"]
        for currency, amount in row["mrr"].items():
            totals["mrr"][currency] += amount
        totals["open_drift"] += row["open_drift"]
        totals["expiring"] += row["expiring"]
    # Events of the platform account that reached no project are counted in the total too.
    totals["failed_events"] = StripeEvent.objects.filter(status=StripeEvent.Status.FAILED).count()
    totals["mrr_text"] = _money(dict(totals["mrr"]))
    context = {
        "title": "Dashboard",
        "rows": rows,
        "totals": totals,
        "charts": [_revenue_chart(dict(series), currency) for currency, series in sorted(charts.items())],
        "site_header": "Tollgate",
    }
    return TemplateResponse(request, "admin/dashboard.html", context)
