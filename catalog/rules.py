"""What a valid catalog entry is: Stripe's limits, the value a feature of each type takes, a price's terms, and
which price fields never change. Shared by the services, the API's serializers and `sync_catalog`."""

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from catalog.models import Feature, Price, ProductFeature
from core.errors import InvalidRequest

# A keyword argument that was not given, where None is a value (no unit, for life, no trial, no meter).
UNSET: Any = object()

# Stripe caps a price's billing period at three years.
MAX_INTERVAL_COUNT = {"day": 1095, "week": 156, "month": 36, "year": 3}
MAX_TRIAL_DAYS = 730  # Stripe's limit for a trial period
MAX_UNIT_AMOUNT = 99_999_999  # Stripe's limit for a price's unit_amount (8 digits)
MAX_FEATURE_AMOUNT = 10**15
COUNTED_TYPES = (Feature.Type.METERED, Feature.Type.CREDITS, Feature.Type.ALLOCATION)

# Fields a price keeps for life (they define what is sold; Stripe keeps them too): create another price instead.
PRICE_IMMUTABLE_FIELDS = (
    "key",
    "product",
    "type",
    "interval",
    "interval_count",
    "usage_type",
    "meter",
    "billing_scheme",
    "tiers_mode",
)
# Fields Stripe keeps for life but we may change: the change creates a new Stripe price.
PRICE_REPRICING_FIELDS = ("currency", "unit_amount", "tiers", "tax_behavior")


def _is_amount(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_FEATURE_AMOUNT


OVERAGE = ("allowed", "blocked")
# Usage windows of a metered feature, shortest first: calendar windows in UTC, each starting on a whole minute,
# hour, day or week (Monday 00:00); the length of each in seconds.
WINDOW_SECONDS = {"minute": 60, "hour": 3_600, "day": 86_400, "week": 604_800}


def windows_ordered(windows: dict[str, int] | None) -> dict[str, int]:
    """Stored windows shortest first (PostgreSQL's `jsonb` keeps an object's keys in an order of its own)."""
    return {name: windows[name] for name in WINDOW_SECONDS if name in windows} if windows else {}


# How often a plan grants a credits feature's value when not once per paid period: every calendar month or week of
# the period, counted back from its end (`entitlements.services.plan_credits`).
CADENCES = ("month", "week")

# The object forms each counted type takes beyond {"per_unit": n}, as error messages name them.
_OBJECT_FORMS: dict[str, str] = {
    Feature.Type.METERED: '{"limit": n, "overage": "allowed", "windows": {"minute": m}, "credits": {"feature": k}, '
    '"per_entity": {"feature": k, "limit": m, "windows": {"day": n}}}',
    Feature.Type.CREDITS: '{"limit": n, "rollover": m, "cadence": "month", "per_entity": {"feature": k, '
    '"on_remove": "return", "credits": e}}',
    Feature.Type.ALLOCATION: '{"limit": n}',
}


@dataclass(frozen=True)
class FeatureValue:
    """What a product gives a feature, as stored: `value` (times the quantity bought when `per_unit`); for a
    metered limit, whether use may go past it (`overage`: billed by the feature's metered price, if it has one);
    for the credits a subscription's paid periods grant, how many unspent ones carry into the next period
    (`rollover`, a cap; None: none do) and how often a period grants them (`cadence`, "month" or "week": the
    value is granted that often whatever the billing interval; None: once per paid period); for a metered
    feature, its limits per calendar window (`windows`, by window name, shortest first; None: none) and the
    credits feature its use past the limit is paid from before any overage (`credits`, the credits waterfall:
    `{"feature": key, "cost": n}`, n credits a unit; None: none) and the limit each of the customer's entities of
    an allocation feature has a period beside the account's (`per_entity`, `{"feature": key, "limit": m}`; None:
    none); for a credits feature, that each entity of an allocation feature may hold credits of its own, and what
    becomes of them when it is removed (`per_entity`, `{"feature": key, "on_remove": "return" | "forfeit"}`)."""

    value: Any
    per_unit: bool = False
    overage: bool = False
    rollover: int | None = None
    windows: dict[str, int] | None = None
    cap: dict[str, Any] | None = None  # `SPEND_CAP_FORM`, as stored
    cadence: str | None = None  # one of `CADENCES`
    credits: dict[str, Any] | None = None  # `{"feature": key, "cost": n}`, as stored
    per_entity: dict[str, Any] | None = (
        None  # `{"feature": key, "limit": m}` (credits: `"on_remove"`), as stored
    )

    @classmethod
    def of(cls, row: ProductFeature) -> "FeatureValue":
        return cls(
            row.value,
            row.per_unit,
            row.overage,
            row.rollover,
            windows_ordered(row.windows) or None,
            row.cap,
            row.cadence or None,
            row.credits,
            row.per_entity,
        )

    def api(self) -> Any:
        """The API's shape: `value`, `{"per_unit": n}`, or an object with `limit` (or `per_unit`) and
        `"overage": "allowed"`, `"windows": {"minute": m, …}`, `"credits": {"feature": k, "cost": n}`,
        `"per_entity": {"feature": k, "limit": m}`, `"rollover": m` or `"cadence": "month"`."""
        if not (
            self.overage
            or self.rollover is not None
            or self.windows
            or self.cadence
            or self.credits
            or self.per_entity
        ):
            return {"per_unit": self.value} if self.per_unit else self.value
        shaped: dict[str, Any] = {"per_unit" if self.per_unit else "limit": self.value}
        if self.overage:
            shaped["overage"] = "allowed"
        if self.cap:
            shaped["cap"] = dict(self.cap)
        if self.windows:
            shaped["windows"] = dict(self.windows)
        if self.credits:
            shaped["credits"] = dict(self.credits)
        if self.per_entity:
            shaped["per_entity"] = dict(self.per_entity)
            if self.per_entity.get("windows"):
                shaped["per_entity"]["windows"] = windows_ordered(self.per_entity["windows"])
        if self.rollover is not None:
            shaped["rollover"] = self.rollover
        if self.cadence:
            shaped["cadence"] = self.cadence
        return shaped


def _value_error(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", code="invalid_feature_value", param=param)


def feature_value_parse(
    *,
    feature_type: str,
    value: Any,
    param: str,
    credit_features: Iterable[str] | None = None,
    allocation_features: Iterable[str] | None = None,
) -> FeatureValue:
    """Checks that `value` fits a feature of `feature_type` (see `FeatureValue.api` for the shapes).
    `credit_features`: the keys of the project's credits features, which a waterfall's `credits` must name;
    `allocation_features`: its allocation features, which `per_entity` must name (None: not checked here)."""
    if feature_type == Feature.Type.BOOLEAN:
        if not isinstance(value, bool):
            raise _value_error(param, "a boolean feature takes true or false.")
        return FeatureValue(value)
    if feature_type not in COUNTED_TYPES:
        return FeatureValue(value)  # static: any JSON value
    if not isinstance(value, dict):
        if value is not None and not _is_amount(value):
            raise _value_error(
                param,
                f'a {feature_type} feature takes an integer ≥ 0, null (unlimited), {{"per_unit": n}} or '
                f"{_OBJECT_FORMS[feature_type]}.",
            )
        return FeatureValue(value)
    amounts = [key for key in ("per_unit", "limit") if key in value]
    if len(amounts) != 1 or set(value) - {
        "per_unit",
        "limit",
        "overage",
        "rollover",
        "windows",
        "cap",
        "cadence",
        "credits",
        "per_entity",
    }:
        raise _value_error(
            param,
            'an object value is {"per_unit": n} or {"limit": n}, with "overage": "allowed" or "blocked", "cap", '
            '"windows": {"minute": m, …}, "credits": {"feature": k, "cost": n} and "per_entity": {"feature": k, '
            '"limit": m} (metered) or "rollover": m and "cadence": "month" or "week" (credits).',
        )
    per_unit = amounts[0] == "per_unit"
    amount = value[amounts[0]]
    if not (_is_amount(amount) or (amount is None and not per_unit)):
        raise _value_error(param, f"{amounts[0]} is an integer ≥ 0{'' if per_unit else ' or null'}.")
    overage = value.get("overage", "blocked")
    if overage not in OVERAGE:
        raise _value_error(param, 'overage is "allowed" or "blocked".')
    if overage == "allowed":
        if feature_type != Feature.Type.METERED:
            raise _value_error(param, "only a metered feature's limit may allow overage.")
        if amount is None:
            raise _value_error(param, "an unlimited value has no overage.")
    rollover = value.get("rollover")
    if rollover is not None:
        if feature_type != Feature.Type.CREDITS:
            raise _value_error(param, "only a credits feature's plan credits roll over.")
        if not _is_amount(rollover):
            raise _value_error(
                param, "rollover is an integer ≥ 0, the most unspent credits a period carries over."
            )
        if amount is None:
            raise _value_error(param, "unlimited credits have no rollover.")
    cadence = value.get("cadence")
    if cadence is not None:
        if feature_type != Feature.Type.CREDITS:
            raise _value_error(param, "only a credits feature's plan credits have a cadence.")
        if cadence not in CADENCES:
            raise _value_error(
                param, 'cadence is "month" or "week": how often a paid period grants the value.'
            )
        if amount is None:
            raise _value_error(param, "unlimited credits have no cadence.")
    windows = _windows_parse(
        feature_type, value.get("windows"), amount, per_unit, overage == "allowed", param
    )
    cap = None
    if value.get("cap") is not None:
        if overage != "allowed":
            raise _value_error(param, 'a spend cap bounds overage: it needs "overage": "allowed".')
        cap = spend_cap_parse(value["cap"], param=f"{param}.cap", code="invalid_feature_value")
    credits = None
    if value.get("credits") is not None:
        if feature_type != Feature.Type.METERED:
            raise _value_error(param, "only a metered feature's use is paid from credits past its limit.")
        if amount is None:
            raise _value_error(param, "an unlimited value has no use past its limit to pay with credits.")
        credits = _waterfall_parse(value["credits"], f"{param}.credits", credit_features)
    per_entity = None
    if value.get("per_entity") is not None:
        if feature_type == Feature.Type.CREDITS:
            per_entity = _entity_credits_parse(
                value["per_entity"], f"{param}.per_entity", allocation_features
            )
        elif feature_type != Feature.Type.METERED:
            raise _value_error(
                param,
                "only a metered feature has a limit per entity, and a credits feature credits per entity.",
            )
        else:
            per_entity = _per_entity_parse(value["per_entity"], f"{param}.per_entity", allocation_features)
    return FeatureValue(
        amount, per_unit, overage == "allowed", rollover, windows, cap, cadence, credits, per_entity
    )


def _per_entity_parse(given: Any, param: str, allocation_features: Iterable[str] | None) -> dict[str, Any]:
    """A metered value's limit per entity, `{"feature": key, "limit": m}`: each of the customer's entities of
    that allocation feature (its seats, its workspaces) may use m units a period, beside the account's limit."""
    form = (
        'per_entity is {"feature": key, "limit": m, "windows": {"day": n, …}}: the allocation feature whose '
        "entities (seats, workspaces) each have m units a period, and (optional) n in each calendar window."
    )
    if (
        not isinstance(given, dict)
        or not {"feature", "limit"} <= set(given) <= {"feature", "limit", "windows"}
        or not isinstance(given.get("feature"), str)
    ):
        raise _value_error(param, form)
    if not _is_amount(given["limit"]):
        raise _value_error(param, "limit is an integer ≥ 0, the units each entity may use a period.")
    if allocation_features is not None and given["feature"] not in set(allocation_features):
        raise _value_error(param, f"{given['feature']!r} is not an allocation feature of this project.")
    shaped = {"feature": given["feature"], "limit": given["limit"]}
    windows = _windows_parse(
        Feature.Type.METERED, given.get("windows"), given["limit"], False, False, f"{param}.windows"
    )
    if windows:
        shaped["windows"] = windows
    return shaped


ON_REMOVE = ("return", "forfeit")


def _entity_credits_parse(
    given: Any, param: str, allocation_features: Iterable[str] | None
) -> dict[str, Any]:
    """A credits value's `per_entity`: each entity of that allocation feature may hold credits of its own (`form`)."""
    form = (
        'per_entity is {"feature": key, "on_remove": "return" | "forfeit", "credits": n}: the allocation feature '
        "whose entities (seats, workspaces) hold credits of their own, whether removing one returns its balance "
        "to the account or forfeits it, and (optional) n ≥ 1 the plan gives each whenever it grants its credits."
    )
    if (
        not isinstance(given, dict)
        or not {"feature", "on_remove"} <= set(given) <= {"feature", "on_remove", "credits"}
        or not isinstance(given.get("feature"), str)
        or given.get("on_remove") not in ON_REMOVE
        or ("credits" in given and (not _is_amount(given["credits"]) or given["credits"] < 1))
    ):
        raise _value_error(param, form)
    if allocation_features is not None and given["feature"] not in set(allocation_features):
        raise _value_error(param, f"{given['feature']!r} is not an allocation feature of this project.")
    return {key: given[key] for key in ("feature", "on_remove", "credits") if key in given}


def _waterfall_parse(given: Any, param: str, credit_features: Iterable[str] | None) -> dict[str, Any]:
    """A metered value's credits waterfall, `{"feature": key, "cost": n}` (cost: the credits one unit past the
    limit spends, an integer ≥ 1, default 1), naming one of the project's credits features."""
    form = 'credits is {"feature": key, "cost": n}: the credits feature that pays for use past the limit, n a unit.'
    if (
        not isinstance(given, dict)
        or set(given) - {"feature", "cost"}
        or not isinstance(given.get("feature"), str)
    ):
        raise _value_error(param, form)
    cost = given.get("cost", 1)
    if not _is_amount(cost) or cost < 1:
        raise _value_error(param, "cost is an integer ≥ 1, the credits one unit past the limit spends.")
    if credit_features is not None and given["feature"] not in set(credit_features):
        raise _value_error(param, f"{given['feature']!r} is not a credits feature of this project.")
    return {"feature": given["feature"], "cost": cost}


SPEND_CAP_FORM = '{"units": n} or {"amount": m}, with "at_cap": "block" (the default) or "alert"'
AT_CAP = ("block", "alert")


def spend_cap_parse(given: Any, *, param: str, code: str = "invalid_parameter") -> dict[str, Any]:
    """A spend cap on a metered feature's overage, normalised to `{"units": n | "amount": m, "at_cap": …}`:
    `units` past the limit, or `amount`, the most (minor units) the feature's metered price may bill for the
    period; at the cap use is refused (`block`) or goes on and is announced (`alert`)."""

    def refused(message: str) -> InvalidRequest:
        return InvalidRequest(f"{param}: {message}", code=code, param=param)

    if not isinstance(given, dict):
        raise refused(f"a spend cap is {SPEND_CAP_FORM}.")
    measures = [key for key in ("units", "amount") if key in given]
    if len(measures) != 1 or set(given) - {"units", "amount", "at_cap"}:
        raise refused(f"a spend cap is {SPEND_CAP_FORM}.")
    measure = measures[0]
    if not _is_amount(given[measure]):
        raise refused(f"{measure} is an integer ≥ 0.")
    at_cap = given.get("at_cap", "block")
    if at_cap not in AT_CAP:
        raise refused('at_cap is "block" or "alert".')
    return {measure: given[measure], "at_cap": at_cap}


ACCOUNT_CAP_FORM = '{"amount": m, "currency": "usd"}, with "at_cap": "block" (the default) or "alert"'


def account_cap_parse(given: Any, *, param: str) -> dict[str, Any]:
    """A customer's account cap across their metered features, normalised to `{"amount": m, "currency": c,
    "at_cap": …}`: the most (minor units of `currency`, lower case) their metered prices in that currency may bill
    together for the period (`entitlements.account_cap`). Only money: units of different features do not add up."""

    def refused(message: str) -> InvalidRequest:
        return InvalidRequest(f"{param}: {message}", code="invalid_parameter", param=param)

    if not isinstance(given, dict):
        raise refused(f"an account cap is {ACCOUNT_CAP_FORM}.")
    if "units" in given:
        raise InvalidRequest(
            f"{param}: an account cap is in money only (units of different features do not add up): {ACCOUNT_CAP_FORM}.",
            code="parameter_conflict",
            param=param,
        )
    if "amount" not in given or "currency" not in given:
        raise InvalidRequest(
            f"{param}: an account cap is {ACCOUNT_CAP_FORM}.", code="parameter_missing", param=param
        )
    if set(given) - {"amount", "currency", "at_cap"}:
        raise refused(f"an account cap is {ACCOUNT_CAP_FORM}.")
    if not _is_amount(given["amount"]):
        raise refused("amount is an integer ≥ 0.")
    currency = given["currency"]
    if (
        not isinstance(currency, str)
        or len(currency) != 3
        or not currency.isalpha()
        or not currency.isascii()
    ):
        raise refused("currency is a three-letter ISO currency code.")
    at_cap = given.get("at_cap", "block")
    if at_cap not in AT_CAP:
        raise refused('at_cap is "block" or "alert".')
    return {"amount": given["amount"], "currency": currency.lower(), "at_cap": at_cap}


def _windows_parse(
    feature_type: str, given: Any, amount: int | None, per_unit: bool, overage: bool, param: str
) -> dict[str, int] | None:
    """A metered value's `windows`, ordered shortest first; refused when a window could never be reached whole
    because a longer window (or the period's limit, where use may not pass it) allows less."""
    if given is None:
        return None
    if feature_type != Feature.Type.METERED:
        raise _value_error(param, "only a metered feature has usage windows.")
    if not isinstance(given, dict) or not given:
        raise _value_error(param, 'windows is an object of limits per window: {"minute": 100, "day": 5000}.')
    unknown = sorted(set(given) - set(WINDOW_SECONDS))
    if unknown:
        raise _value_error(param, f"unknown window {unknown[0]!r}; windows are minute, hour, day and week.")
    windows = {name: given[name] for name in WINDOW_SECONDS if name in given}
    for name, limit in windows.items():
        if not _is_amount(limit):
            raise _value_error(param, f"windows.{name} is an integer ≥ 0, the most units used in one {name}.")
    names = list(windows)
    for shorter, longer in itertools.pairwise(names):
        if windows[shorter] > windows[longer]:
            raise _value_error(
                param,
                f"contradictory windows: {windows[shorter]} a {shorter} is more than the {windows[longer]} "
                f"a {longer} allows.",
            )
    if amount is not None and not per_unit and not overage and windows[names[-1]] > amount:
        raise _value_error(
            param,
            f"contradictory windows: {windows[names[-1]]} a {names[-1]} is more than the period's limit "
            f"of {amount}.",
        )
    return windows


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


MAX_TIERS = 250  # Stripe's limit for a tiered price
TIER_KEYS = ("up_to", "unit_amount", "flat_amount")


def is_minor_units(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_UNIT_AMOUNT


def _tiers_error(message: str, param: str = "tiers") -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", code="invalid_tiers", param=param)


def tiers_parse(value: Any) -> list[dict[str, Any]]:
    """Checks a tiered price's `tiers` and returns them normalised: every tier has `up_to` (an integer ≥ 1, or
    "inf" on the last one only), `unit_amount` and `flat_amount` (integer minor units or None, not both None)."""
    if not isinstance(value, list) or not value:
        raise _tiers_error(
            'a tiered price needs a list of tiers [{"up_to": n | "inf", "unit_amount"?, "flat_amount"?}].'
        )
    if len(value) > MAX_TIERS:
        raise _tiers_error(f"at most {MAX_TIERS} tiers.")
    tiers: list[dict[str, Any]] = []
    previous = 0
    for index, tier in enumerate(value):
        param = f"tiers[{index}]"
        if not isinstance(tier, dict):
            raise _tiers_error('a tier is {"up_to": n | "inf", "unit_amount"?, "flat_amount"?}.', param)
        unknown = sorted(set(tier) - set(TIER_KEYS))
        if unknown:
            raise _tiers_error(
                f"unknown field {unknown[0]!r}; a tier takes up_to, unit_amount, flat_amount.", param
            )
        last = index == len(value) - 1
        up_to = tier.get("up_to")
        if up_to == "inf":
            if not last:
                raise _tiers_error('only the last tier may be up to "inf".', f"{param}[up_to]")
        elif not (isinstance(up_to, int) and not isinstance(up_to, bool)) or up_to < 1:
            raise _tiers_error('up_to is an integer ≥ 1, or "inf" on the last tier.', f"{param}[up_to]")
        elif last:
            raise _tiers_error('the last tier must be up to "inf".', f"{param}[up_to]")
        elif up_to <= previous:
            raise _tiers_error("tiers must be in ascending order of up_to.", f"{param}[up_to]")
        else:
            previous = up_to
        amounts = {name: tier.get(name) for name in ("unit_amount", "flat_amount")}
        if all(amount is None for amount in amounts.values()):
            raise _tiers_error("a tier needs a unit_amount, a flat_amount or both.", param)
        for name, amount in amounts.items():
            if amount is not None and not is_minor_units(amount):
                raise _tiers_error(
                    f"{name} is an integer amount in minor units, 0 to {MAX_UNIT_AMOUNT}.", f"{param}[{name}]"
                )
        tiers.append({"up_to": up_to, **amounts})
    return tiers


@dataclass(frozen=True)
class PriceAmounts:
    """How a price charges, normalised: per_unit with a unit_amount, or tiered with a mode and tiers."""

    billing_scheme: str
    unit_amount: int | None
    tiers_mode: str
    tiers: list[dict[str, Any]]


def price_amounts_check(
    *, billing_scheme: str | None, unit_amount: int | None, tiers_mode: str | None, tiers: Any
) -> PriceAmounts:
    """Validates how a new price charges: a per-unit price has a unit_amount and no tiers; a tiered one has a
    tiers_mode and tiers and no unit_amount."""
    scheme = billing_scheme or Price.BillingScheme.PER_UNIT
    if scheme not in Price.BillingScheme.values:
        raise InvalidRequest(
            "billing_scheme: per_unit or tiered.", code="invalid_parameter", param="billing_scheme"
        )
    if scheme == Price.BillingScheme.TIERED:
        if unit_amount is not None:
            raise InvalidRequest(
                "unit_amount: a tiered price has no unit_amount; its amounts are in tiers.",
                code="invalid_parameter",
                param="unit_amount",
            )
        if tiers_mode not in Price.TiersMode.values:
            raise InvalidRequest(
                "tiers_mode: a tiered price needs tiers_mode graduated or volume.",
                code="parameter_missing" if tiers_mode is None else "invalid_parameter",
                param="tiers_mode",
            )
        return PriceAmounts(scheme, None, str(tiers_mode), tiers_parse(tiers))
    for param, given in (("tiers_mode", tiers_mode), ("tiers", tiers)):
        if given not in (None, "", []):  # empty is how a per-unit price's own snapshot says "none"
            raise InvalidRequest(
                f'{param}: only a tiered price (billing_scheme "tiered") takes {param}.',
                code="invalid_parameter",
                param=param,
            )
    if unit_amount is None:
        raise InvalidRequest(
            "unit_amount: a per_unit price needs a unit_amount.",
            code="parameter_missing",
            param="unit_amount",
        )
    return PriceAmounts(scheme, unit_amount, "", [])
