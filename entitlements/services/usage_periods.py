"""The metered period a usage event counts in (`usage_period_for`): the current one, the next for a second
stamped a little ahead, or an earlier one — within the grace window, or backfilled — the one the customer's
counter counted that second in then."""

from datetime import UTC, datetime, timedelta

from core.errors import InvalidRequest
from core.serializers import api_time
from entitlements import resolver
from entitlements.models import UsageCounter
from entitlements.services.meters import meter_second
from entitlements.snapshot import FeatureEntry

MAX_FUTURE_SECONDS = 300  # clock skew tolerated on usage timestamps


def usage_period_for(
    entry: FeatureEntry,
    timestamp: datetime,
    now: datetime,
    grace_seconds: int,
    param: str,
    backfill: bool = False,
    customer_id: str | None = None,
    counted_seen: list[tuple[str, resolver.Period]] | None = None,
) -> resolver.Period:
    """The metered period an event at `timestamp` counts in, or 400 when it is too late (or in the future): the
    one holding its second (`meter_second`), as Stripe's meter files it — stamped a little ahead, past the
    period's end, the next one. An earlier second (late, within the grace window; or a `backfill`, no billing
    side effects, in any earlier period) counts in the period the customer's counter of the feature counted it in
    then (`_counted_period`): their periods then may not be today's cycle stepped back (a plan taken since, an
    interval changed). With no counter then, today's cycle stepped back. `counted_seen`: the periods a batch has
    found so far, by customer (a batch of late events reads each period once)."""
    if timestamp > now + timedelta(seconds=MAX_FUTURE_SECONDS):
        raise InvalidRequest(
            f"{param}: {api_time(timestamp)} is in the future.", code="timestamp_in_future", param=param
        )
    period = resolver.period_from_snapshot(entry)
    second = meter_second(timestamp)
    if second >= period.end.timestamp():
        end = resolver.add_interval(period.end, period.interval, period.count)
        return resolver.Period(period.end, end, period.interval, period.count)
    if second >= period.start.timestamp():
        return period
    previous = period.previous()
    grace_end = period.start + timedelta(seconds=grace_seconds)
    if not backfill and (second < previous.start.timestamp() or now >= grace_end):
        raise InvalidRequest(
            f"{param}: {api_time(timestamp)} is too old. Usage is accepted for the current period (since "
            f"{api_time(period.start)}) and for the previous one until {grace_seconds} seconds after it ended "
            f"({api_time(grace_end)}); a backfill of a closed period states `no_billing_side_effects`.",
            code="timestamp_too_old",
            param=param,
        )
    if customer_id:
        seen = counted_seen if counted_seen is not None else []
        key = f"{customer_id}:{entry['id']}"
        counted = next(
            (p for k, p in seen if k == key and p.start.timestamp() <= second < p.end.timestamp()), None
        )
        if counted is None:
            counted = _counted_period(customer_id, entry, second, period)
            if counted is not None:
                seen.append((key, counted))
        if counted is not None:
            return counted
    while second < previous.start.timestamp():
        previous = previous.previous()
    return previous


def _counted_period(
    customer_id: str, entry: FeatureEntry, second: int, current: resolver.Period
) -> resolver.Period | None:
    """The period of the customer's counter of the feature that holds `second`, before `current` (the latest
    such, should periods have overlapped at a change of plan): where their usage of that second was counted."""
    at = datetime.fromtimestamp(second, UTC)
    bounds = (
        UsageCounter.objects.filter(
            customer_id=customer_id,
            feature_id=entry["id"],
            period_start__lte=at,
            period_end__gt=at,
            period_start__lt=current.start,
        )
        .order_by("-period_start")
        .values_list("period_start", "period_end")
        .first()
    )
    if bounds is None:
        return None
    return resolver.Period(bounds[0], bounds[1], current.interval, current.count)
