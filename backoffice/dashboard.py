"""The operators' dashboard: per project and in total, what needs attention and how the business goes.

Over the last twelve months, month by month: net revenue and MRR per currency, active subscriptions, churn
(subscriptions cancelled) and failed payments. Server-rendered: each chart is inline SVG with axes, labels and a
tooltip (`<title>`) per bar; no script, no CDN.

Revenue, MRR and live subscriptions come from the figures billing keeps as the events arrive
(billing.models.revenue): the MRR and the live subscriptions at the end of a month are every change up to it,
summed; the current month's are what is live now (`revenue_figures.MRR_STATUSES`), as the metrics API answers.
Churn and failed payments are counted by the database, month by month. Nothing here reads every subscription.
The least profitable customers of the month are `backoffice.margins_chart`'s.
Revenue recognised and deferred (at each month's close) per currency: a `revenue_months` per project, summed.
"""

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncMonth
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from backoffice import metrics
from backoffice.margins_chart import least_profitable
from billing import selectors as billing_selectors
from billing.models import Drift, Figure, Payment, Subscription
from billing.services import revenue_figures
from billing.services.revenue_report import revenue_months
from core.money import money_format
from projects.models import Project
from webhooks.models import StripeEvent

logger = logging.getLogger(__name__)

CHART_WIDTH = 640
CHART_HEIGHT = 200
# Room for the value axis' labels on the left and the months under the bars.
AXIS_LEFT = 84
AXIS_BOTTOM = 26
PLOT_TOP = 10
# Between the two bars of a month, in a chart of two series.
PAIR_GAP = 2


def _money(amounts: dict[str, int]) -> str:
    """Amounts of several currencies in one cell: "$60.00, ¥500"."""
    return ", ".join(money_format(amount, currency) for currency, amount in sorted(amounts.items())) or "—"


def _nice_ceiling(value: int) -> int:
    """The top of a readable axis: the smallest of 1, 2, 4, 6, 8 × 10ⁿ at or above `value` (at least 1), so
    that half of it is a whole number too (above 1)."""
    if value <= 1:
        return 1
    magnitude = int(10 ** (len(str(value)) - 1))
    return next(step * magnitude for step in (1, 2, 4, 6, 8, 10) if step * magnitude >= value)


def _months(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Each month of the window [start, end) as [its first instant, the next month's first instant or `end`)."""
    months = []
    first = start
    while first < end:
        following = (first + timedelta(days=32)).replace(day=1)
        months.append((first, min(following, end)))
        first = following
    return months


def bar_chart(
    *,
    title: str,
    months: list[tuple[datetime, datetime]],
    values: list[int],
    fmt: Callable[[int], str],
    second: list[int] | None = None,
    names: tuple[str, str] = ("", ""),
) -> dict[str, Any]:
    """A bar per month, scaled to the chart, with a value axis (0, half, top) and a tooltip per bar. With
    `second`, a second series on the same axis: two bars side by side per month (`values` on the left), named
    by `names` in a legend and in their tooltips."""
    top = _nice_ceiling(max([*values, *(second or [])], default=0))
    plot_height = CHART_HEIGHT - AXIS_BOTTOM - PLOT_TOP
    plot_width = CHART_WIDTH - AXIS_LEFT - 8
    slot = plot_width / max(len(months), 1)
    pair_width = max((round(slot * 0.8) - PAIR_GAP) // 2, 2)

    def bar(x: int, width: int, value: int, tooltip: str) -> dict[str, Any]:
        height = round(max(value, 0) / top * plot_height)
        y = PLOT_TOP + plot_height - height
        return {"x": x, "y": y, "width": width, "height": height, "value": value, "tooltip": tooltip}

    bars = []
    seconds = second if second is not None else [0] * len(months)
    for index, ((first, _), value, other) in enumerate(zip(months, values, seconds, strict=True)):
        month = first.strftime("%Y-%m")
        column = {
            "label_x": round(AXIS_LEFT + index * slot + slot / 2),
            "label": first.strftime("%b"),
            "month": month,
            "value": value,
            "text": fmt(value),
        }
        if second is None:
            column |= bar(round(AXIS_LEFT + index * slot + slot * 0.15), max(round(slot * 0.7), 2), value, "")
        else:
            left = round(AXIS_LEFT + index * slot + (slot - 2 * pair_width - PAIR_GAP) / 2)
            column["pair"] = [
                bar(left, pair_width, value, f"{month}, {names[0]}: {fmt(value)}"),
                bar(left + pair_width + PAIR_GAP, pair_width, other, f"{month}, {names[1]}: {fmt(other)}"),
            ]
        bars.append(column)
    ticks = [
        {"y": round(PLOT_TOP + plot_height - fraction * plot_height), "text": fmt(round(top * fraction))}
        for fraction in ((0, 1) if top == 1 else (0, 0.5, 1))
    ]
    return {
        "title": title,
        "names": names if second is not None else None,
        "bars": bars,
        "ticks": ticks,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "axis_x": AXIS_LEFT,
        "plot_top": PLOT_TOP,
        "plot_height": plot_height,
        "axis_y": PLOT_TOP + plot_height,
        "axis_right": CHART_WIDTH - 8,
        "label_y": CHART_HEIGHT - 8,
        "first_month": months[0][0].strftime("%b %Y") if months else "",
        "last_month": months[-1][0].strftime("%b %Y") if months else "",
    }


def _per_month(months: list[tuple[datetime, datetime]], rows: QuerySet[Any], when: str) -> list[int]:
    """How many of `rows` fall in each month, by their `when`, counted by the database."""
    counts = dict(
        rows.annotate(month=TruncMonth(when, tzinfo=UTC))
        .values("month")
        .annotate(count=Count("pk"))
        .order_by()
        .values_list("month", "count")
    )
    return [counts.get(first, 0) for first, _ in months]


def _recognition(months: list[tuple[datetime, datetime]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Per currency, the revenue recognised in each month and deferred at its close, summed over the projects
    (one `revenue_months` of the whole window each), as a chart of two series; and the projects whose report
    could not be read (logged, left out)."""
    firsts = [first.date() for first, _ in months]
    recognised: dict[str, list[int]] = defaultdict(lambda: [0] * len(months))
    deferred: dict[str, list[int]] = defaultdict(lambda: [0] * len(months))
    failed = []
    for project in Project.objects.order_by("slug"):
        try:
            reports = revenue_months(project, firsts[0], firsts[-1])
        except Exception:  # one project's schedules must not take the whole dashboard down
            logger.exception(
                "The revenue report of project %s could not be read for the dashboard.", project.pk
            )
            failed.append(project.slug)
            continue
        for report in reports:
            index = firsts.index(report.month)
            for figures in report.currencies:
                recognised[figures.currency][index] += figures.recognised
                deferred[figures.currency][index] += figures.deferred_closing
    charts = [
        bar_chart(
            title=f"Revenue recognised and deferred ({currency.upper()})",
            months=months,
            values=values,
            second=deferred[currency],
            names=("recognised in the month", "deferred at its close"),
            fmt=lambda amount, currency=currency: money_format(amount, currency),  # type: ignore[misc]
        )
        for currency, values in sorted(recognised.items())
        if any(values) or any(deferred[currency])
    ]
    return charts, failed


def history(now: datetime) -> dict[str, Any]:
    """Month by month over the last twelve months: revenue and MRR per currency, active subscriptions, churn,
    failed payments, and revenue recognised and deferred per currency, over every project."""
    start, end = metrics.default_window(now)
    months = _months(start, end)
    firsts = [first.date() for first, _ in months]
    revenue: dict[str, list[int]] = defaultdict(lambda: [0] * len(months))
    for project in Project.objects.order_by("slug"):
        for (period, currency), amounts in metrics.revenue_by_period(
            project=project, start=start, end=end, interval="month"
        ).items():
            revenue[currency][firsts.index(period)] += amounts["revenue"] - amounts["refunds"]

    # MRR and live subscriptions at the end of each month: every change up to it, summed (billing's figures).
    mrr: dict[str, list[int]] = defaultdict(lambda: [0] * len(months))
    active = [0] * len(months)
    changes = billing_selectors.revenue_figures(
        project=None, figures=(Figure.MRR, Figure.ACTIVE), until=end.date() + timedelta(days=1), by="month"
    )
    for (figure, currency, changed_in), amount in changes.items():
        assert changed_in is not None
        for index, first in enumerate(firsts):
            if changed_in <= first:
                if figure == Figure.ACTIVE:
                    active[index] += amount
                else:
                    mrr[currency][index] += amount

    churn = _per_month(
        months,
        Subscription.objects.filter(canceled_at__gte=start, canceled_at__lt=end),
        "canceled_at",
    )
    failed = _per_month(
        months,
        Payment.objects.filter(status=Payment.Status.FAILED, created_at__gte=start, created_at__lt=end),
        "created_at",
    )

    def money_charts(title: str, series: dict[str, list[int]]) -> list[dict[str, Any]]:
        return [
            bar_chart(
                title=f"{title} ({currency.upper()})",
                months=months,
                values=values,
                fmt=lambda amount, currency=currency: money_format(amount, currency),  # type: ignore[misc]
            )
            for currency, values in sorted(series.items())
        ]

    rounded = {
        currency: [revenue_figures.mrr_minor_units(micros) for micros in amounts]
        for currency, amounts in mrr.items()
        if any(amounts)
    }
    recognition, recognition_failed = _recognition(months)
    return {
        "revenue": money_charts("Net revenue per month", dict(revenue)),
        "mrr": money_charts("MRR at the end of each month", rounded),
        "active": bar_chart(
            title="Active subscriptions at the end of each month", months=months, values=active, fmt=str
        ),
        "churn": bar_chart(title="Subscriptions cancelled per month", months=months, values=churn, fmt=str),
        "failed": bar_chart(title="Failed payments per month", months=months, values=failed, fmt=str),
        "recognition": recognition,
        "recognition_failed": recognition_failed,
    }


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
    for project in Project.objects.order_by("slug"):
        row: dict[str, Any] = {
            "project": project,
            "active": sum(
                billing_selectors.revenue_figures(project=project, figures=(Figure.ACTIVE,)).values()
            ),
            "mrr": metrics.mrr(project=project),
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
        **admin.site.each_context(request),
        "title": "Dashboard",
        "rows": rows,
        "totals": totals,
        "history": history(now),
        "margins": least_profitable(now),
        "window": f"{start:%B %Y} to {end:%B %Y}",
    }
    return TemplateResponse(request, "admin/dashboard.html", context)
