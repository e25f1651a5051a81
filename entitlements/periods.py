"""Metered periods: a subscription's billing cycle (rolled forward on time, before Stripe's renewal is mirrored) or
calendar months in UTC, and how to step between them (`add_interval`: Stripe's month arithmetic). The resolver
places each metered feature's use in one (`entitlements.resolver`, which names these too)."""

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from entitlements.models import SubscriptionSource
from entitlements.snapshot import FeatureEntry


def add_interval(moment: datetime, interval: str, count: int) -> datetime:
    """`moment` plus `count` intervals; months and years keep the day of month, clamped (Jan 31 + 1 month =
    Feb 28/29), as Stripe does."""
    if interval == "day":
        return moment + timedelta(days=count)
    if interval == "week":
        return moment + timedelta(weeks=count)
    months = count * (12 if interval == "year" else 1)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def month_period(now: datetime) -> tuple[datetime, datetime]:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, add_interval(start, "month", 1)


@dataclass(frozen=True)
class Period:
    """A metered period and how to step to its neighbours: a subscription's billing cycle, or calendar months."""

    start: datetime
    end: datetime
    interval: str = "month"
    count: int = 1

    def previous(self) -> "Period":
        return Period(
            add_interval(self.start, self.interval, -self.count), self.start, self.interval, self.count
        )


def subscription_period(subscription: SubscriptionSource, now: datetime) -> Period:
    """The subscription's current period at `now`, rolled forward when Stripe's renewal is not mirrored yet."""
    start, end = subscription.current_period_start, subscription.current_period_end
    interval = subscription.interval or "month"
    count = subscription.interval_count or 1
    if start is None or end is None or end <= start:
        month_start, month_end = month_period(now)
        return Period(month_start, month_end)
    while end <= now:
        start, end = end, add_interval(end, interval, count)
    return Period(start, end, interval, count)


def period_from_snapshot(entry: FeatureEntry) -> Period:
    return Period(
        datetime.fromtimestamp(entry["period_start"], UTC),
        datetime.fromtimestamp(entry["period_end"], UTC),
        entry.get("interval", "month"),
        entry.get("interval_count", 1),
    )
