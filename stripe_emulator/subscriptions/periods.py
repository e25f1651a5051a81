"""Billing-period arithmetic, as Stripe does it: periods are counted from the subscription's
``billing_cycle_anchor``; monthly and yearly periods keep the anchor's day of month and time of day, clamped
to the month's last day (an anchor on Jan 31 renews Feb 28/29, Mar 31, Apr 30 …); daily and weekly periods
are fixed numbers of seconds."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

from stripe_emulator.core.currencies import round_half_away

DAY = 86_400
WEEK = 7 * DAY


def add_interval(anchor: int, interval: str, count: int, times: int = 1) -> int:
    """``anchor`` moved by ``times`` × (``count`` ``interval``s), computed from the anchor each time so a
    month-end anchor never drifts (Jan 31 + 2 months is Mar 31, not Mar 28)."""
    if interval == "day":
        return anchor + DAY * count * times
    if interval == "week":
        return anchor + WEEK * count * times
    months = count * times * (12 if interval == "year" else 1)
    start = datetime.fromtimestamp(anchor, UTC)
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def next_boundary(anchor: int, interval: str, count: int, after: int) -> int:
    """The first period boundary (anchor + k periods, k ≥ 1 when ``after`` ≥ anchor) strictly after
    ``after``."""
    if after < anchor:
        return anchor
    times = 1
    if interval in ("day", "week"):
        step = (DAY if interval == "day" else WEEK) * count
        times = max(1, (after - anchor) // step)
    else:
        months = 12 * count if interval == "year" else count
        a, b = datetime.fromtimestamp(anchor, UTC), datetime.fromtimestamp(after, UTC)
        elapsed = (b.year - a.year) * 12 + b.month - a.month  # calendar months, never an underestimate by >1
        times = max(1, elapsed // months - 1)
    boundary = add_interval(anchor, interval, count, times)
    while boundary <= after:
        times += 1
        boundary = add_interval(anchor, interval, count, times)
    return boundary


def prorate(amount: int, remaining: int, period: int) -> int:
    """Stripe's proration: ``amount`` × ``remaining`` / ``period`` seconds, rounded half away from zero to
    the minor unit."""
    if period <= 0:
        return 0
    return round_half_away(amount * remaining, period)
