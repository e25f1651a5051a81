"""The dashboard's "Least profitable customers this month": per currency, the customers of every project whose
margin this UTC month — what their usage was billed less what it cost the tenant (billing.services.margins) — is
smallest, ten at most, least profitable first. Server-rendered as the other charts are: a horizontal bar per
customer either side of a zero line (a loss to the left), its margin written beside it, a tooltip (`<title>`)
with what was billed and what it cost, and a link to the customer's page. It reads every usage event of the
month (`margins_report`, once per project): unlike the other charts, its cost grows with the month's usage.

Margins are in micro-units (a millionth of the currency's major unit): they are written to the minor unit as
`core.money` writes money, and with the further digits they need when smaller (a call's cost is often a fraction
of a cent: "-$0.045").
"""

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.admin.utils import quote
from django.urls import reverse

from billing.services.margins import MarginRow, margins_report
from core.money import SYMBOLS, minor_unit_exponent
from customers.models import Customer
from projects.models import Project

logger = logging.getLogger(__name__)

TOP = 10
WIDTH = 640
ROW_HEIGHT = 22
PLOT_TOP = 6
AXIS_BOTTOM = 22
# The customers' names on the left, their margins on the right, the bars between.
LABEL_WIDTH = 230
VALUE_WIDTH = 84
LABEL_CHARACTERS = 36
CHARACTER_WIDTH = 6.5  # about, at the charts' 11 px
MICROS = 1_000_000


def micros_format(micros: int, currency: str) -> str:
    """Micro-units of `currency`'s major unit as money, as `core.money.money_format` writes it: to the minor unit
    ("-$12.50", "¥500"), or with the digits a smaller amount needs, up to six ("-$0.045", "0.0125 CHF")."""
    fraction_digits = f"{abs(micros) % MICROS:06d}".rstrip("0")
    places = max(len(fraction_digits), minor_unit_exponent(currency))
    whole, fraction = divmod(abs(micros) // 10 ** (6 - places), 10**places)
    number = f"{whole:,}" + (f".{fraction:0{places}d}" if places else "")
    sign = "-" if micros < 0 else ""
    symbol = SYMBOLS.get(currency.lower())
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency.upper()}"


def _nice(value: int) -> int:
    """The end of a readable axis at or beyond `value` (> 0): 1, 2, 4, 6 or 8 × 10ⁿ."""
    magnitude = int(10 ** (len(str(value)) - 1))
    return next(step * magnitude for step in (1, 2, 4, 6, 8, 10) if step * magnitude >= value)


def _month(now: datetime) -> tuple[datetime, datetime]:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, (start + timedelta(days=32)).replace(day=1)


def least_profitable(now: datetime) -> dict[str, Any]:
    """This month's least profitable customers of every project: {"month": "May 2026", "charts": [one chart per
    currency, by currency code], "failed": [the projects whose margins could not be read (logged)]}."""
    start, end = _month(now)
    by_currency: dict[str, list[tuple[Project, MarginRow]]] = defaultdict(list)
    failed = []
    for project in Project.objects.order_by("slug"):
        try:
            report = margins_report(project=project, start=start, end=end, group_by=("customer",))
        except Exception:  # one project's figures must not take the whole dashboard down
            logger.exception("The margins of project %s could not be read for the dashboard.", project.pk)
            failed.append(project.slug)
            continue
        for row in report:
            if row.currency:  # usage that neither cost nor billed anything has no money to show
                by_currency[row.currency].append((project, row))
    charts = []
    for currency, rows in sorted(by_currency.items()):
        rows.sort(key=lambda item: (item[1].margin_micros, item[0].slug, str(item[1].customer)))
        charts.append(_chart(currency, rows[:TOP]))
    return {"month": f"{start:%B %Y}", "charts": charts, "failed": failed}


def _customer_links(rows: list[tuple[Project, MarginRow]]) -> dict[tuple[str, str], str]:
    wanted: dict[str, set[str]] = defaultdict(set)
    for project, row in rows:
        wanted[project.pk].add(str(row.customer))
    links = {}
    for project_id, external_ids in wanted.items():
        for pk, external_id in Customer.objects.filter(
            project_id=project_id, external_id__in=external_ids
        ).values_list("pk", "external_id"):
            links[(project_id, external_id)] = reverse("admin:customers_customer_change", args=[quote(pk)])
    return links


def _ticks(places: list[tuple[int, int]], currency: str) -> list[dict[str, Any]]:
    """The axis' labels at (x, amount), two or three: the ends aligned inward, zero centred on its line — and left
    unwritten when it would run into an end's label (the solid zero line says it)."""
    texts = [micros_format(amount, currency) for _, amount in places]
    anchors = ["start", *["middle"] * (len(places) - 2), "end"]
    if len(places) == 3:
        (first, _), (zero, _), (last, _) = places
        half = len(texts[1]) * CHARACTER_WIDTH / 2
        if (
            zero - half < first + len(texts[0]) * CHARACTER_WIDTH + 4
            or zero + half > last - len(texts[2]) * CHARACTER_WIDTH - 4
        ):
            texts[1] = ""
    return [
        {"x": x, "text": text, "anchor": anchor}
        for (x, _), text, anchor in zip(places, texts, anchors, strict=True)
    ]


def _chart(currency: str, rows: list[tuple[Project, MarginRow]]) -> dict[str, Any]:
    """Horizontal bars from a zero line, scaled to the largest loss on the left and the largest margin on the
    right (each end a readable round amount)."""
    margins = [row.margin_micros for _, row in rows]
    low = -_nice(-min(margins)) if min(margins) < 0 else 0
    high = _nice(max(margins)) if max(margins) > 0 else (0 if low else 1)
    plot_left, plot_right = LABEL_WIDTH, WIDTH - VALUE_WIDTH
    scale = (plot_right - plot_left) / (high - low)
    zero = round(plot_left - low * scale)
    links = _customer_links(rows)
    bars = []
    for index, (project, row) in enumerate(rows):
        end = round(plot_left + (row.margin_micros - low) * scale)
        name = f"{project.slug} · {row.customer}"
        y = PLOT_TOP + index * ROW_HEIGHT
        bars.append(
            {
                "project": project.slug,
                "customer": row.customer,
                "link": links.get((project.pk, str(row.customer)), ""),
                "label": name if len(name) <= LABEL_CHARACTERS else name[: LABEL_CHARACTERS - 1] + "…",
                "x": min(zero, end),
                "y": y + 3,
                "width": max(abs(end - zero), 1),
                "height": ROW_HEIGHT - 6,
                "text_y": y + ROW_HEIGHT // 2 + 4,
                "loss": row.margin_micros < 0,
                "value": row.margin_micros,
                "text": micros_format(row.margin_micros, currency),
                "tooltip": (
                    f"{name}: margin {micros_format(row.margin_micros, currency)}"
                    + (f" ({row.margin_bps / 100:.2f} % of billed)" if row.margin_bps is not None else "")
                    + f"; billed {micros_format(row.billed_micros, currency)}, "
                    f"cost {micros_format(row.cost_micros, currency)}"
                ),
            }
        )
    plot_bottom = PLOT_TOP + len(rows) * ROW_HEIGHT
    ticks = _ticks(
        [(round(plot_left + (amount - low) * scale), amount) for amount in sorted({low, 0, high})], currency
    )
    return {
        "title": f"Least profitable customers this month ({currency.upper()})",
        "currency": currency,
        "bars": bars,
        "ticks": ticks,
        "width": WIDTH,
        "height": plot_bottom + AXIS_BOTTOM,
        "zero": zero,
        "plot_top": PLOT_TOP,
        "plot_left": plot_left,
        "plot_right": plot_right,
        "plot_bottom": plot_bottom,
        "label_x": plot_left - 6,
        "value_x": WIDTH - 4,
        "tick_y": plot_bottom + 15,
    }
