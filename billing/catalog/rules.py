"""What a valid catalog entry is: Stripe's limits, the value a feature of each type takes, a price's terms, and
which price fields never change. Shared by the services, the API's serializers and `sync_catalog`."""

from dataclasses import dataclass
from typing import Any

from billing.models import Price
from core.errors import InvalidRequest
from entitlements.models import Feature

# A keyword argument that was not given, where None is a value (no unit, for life, no trial, no meter).
UNSET: Any = object()

# Stripe caps a price's billing period at three years.
MAX_INTERVAL_COUNT = {"day": 1095, "week": 156, "month": 36, "year": 3}
MAX_TRIAL_DAYS = 730  # Stripe's limit for a trial period
MAX_UNIT_AMOUNT = 99_999_999  # Stripe's limit for a price's unit_amount (8 digits)
MAX_FEATURE_AMOUNT = 10**15
COUNTED_TYPES = (Feature.Type.METERED, Feature.Type.CREDITS, Feature.Type.ALLOCATION)

# Fields a price keeps for life (they define what is sold; Stripe keeps them too): create another price instead.
PRICE_IMMUTABLE_FIELDS = ("key", "product", "type", "interval", "interval_count", "usage_type", "meter")
# Fields Stripe keeps for life but we may change: the change creates a new Stripe price.
PRICE_REPRICING_FIELDS = ("currency", "unit_amount", "tax_behavior")


def _is_amount(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_FEATURE_AMOUNT


def feature_value_parse(*, feature_type: str, value: Any, param: str) -> tuple[Any, bool]:
    """Checks that `value` fits a feature of `feature_type`; returns (stored value, per_unit)."""
    if feature_type == Feature.Type.BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidRequest(
                f"{param}: a boolean feature takes true or false.", code="invalid_feature_value", param=param
            )
        return value, False
    if feature_type in COUNTED_TYPES:
        if value is None:
            return None, False  # unlimited
        if isinstance(value, dict):
            if set(value) != {"per_unit"} or not _is_amount(value["per_unit"]):
                raise InvalidRequest(
                    f'{param}: a per-unit value is {{"per_unit": <integer ≥ 0>}}.',
                    code="invalid_feature_value",
                    param=param,
                )
            return value["per_unit"], True
        if not _is_amount(value):
            raise InvalidRequest(
                f'{param}: a {feature_type} feature takes an integer ≥ 0, null (unlimited) or {{"per_unit": n}}.',
                code="invalid_feature_value",
                param=param,
            )
        return value, False
    return value, False  # static: any JSON value


@dataclass(frozen=True)
class PriceTerms:
    """A price's billing terms, normalised (a one-time price has no interval, trial or usage type)."""

    type: str
    interval: str
    interval_count: int
    trial_days: int | None
    usage_type: str
    meter_key: str | None


def price_terms_check(
    *,
    type: str,
    interval: str | None,
    interval_count: int | None,
    trial_days: int | None,
    usage_type: str | None,
    meter_key: str | None,
    meter_type: str | None,
) -> PriceTerms:
    """Validates a price's terms; `meter_type` is the type of the feature `meter_key` names (None: no such one)."""
    if type == Price.Type.ONE_TIME:
        for param, value, allowed in (
            ("interval", interval, ("", None)),
            ("interval_count", interval_count, (1, None)),
            ("trial_days", trial_days, (None,)),
            ("usage_type", usage_type, (Price.UsageType.LICENSED, None)),
            ("meter", meter_key, ("", None)),
        ):
            if value not in allowed:
                raise InvalidRequest(
                    f"{param}: a one_time price takes no {param}.", code="invalid_parameter", param=param
                )
        return PriceTerms(Price.Type.ONE_TIME, "", 1, None, Price.UsageType.LICENSED, None)
    if not interval:
        raise InvalidRequest(
            "interval: a recurring price needs an interval (day, week, month or year).",
            code="parameter_missing",
            param="interval",
        )
    count = interval_count or 1
    if count > MAX_INTERVAL_COUNT[interval]:
        raise InvalidRequest(
            f"interval_count: at most {MAX_INTERVAL_COUNT[interval]} for interval={interval} "
            "(the longest billing period is three years).",
            code="invalid_parameter",
            param="interval_count",
        )
    usage = usage_type or Price.UsageType.LICENSED
    if usage == Price.UsageType.METERED:
        if not meter_key:
            raise InvalidRequest(
                "meter: a metered price needs the key of the metered feature it bills.",
                code="parameter_missing",
                param="meter",
            )
        if meter_type != Feature.Type.METERED:
            raise InvalidRequest(
                f"meter: {meter_key!r} is not a metered feature of this project.",
                code="invalid_meter",
                param="meter",
            )
    elif meter_key:
        raise InvalidRequest(
            "meter: only a metered price (usage_type=metered) takes a meter.",
            code="invalid_parameter",
            param="meter",
        )
    return PriceTerms(Price.Type.RECURRING, interval, count, trial_days, usage, meter_key or None)
