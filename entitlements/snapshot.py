"""The shapes of an entitlement snapshot (`entitlements.resolver` computes it, `entitlements.cache` stores it as
JSON in Redis): `TypedDict`s, so a misspelt key is a mypy error while the value stays a plain dict at run time —
the cache format, the API answers and the cost of a check are those of the dicts they describe.

- `StructureSnapshot`: what a customer is entitled to, one `FeatureEntry` per feature key;
- `FeatureEntry`: one feature (on, value or limit, metered period, `SourceEntry` list of where it came from);
- `UsageSnapshot`: what was used (`UsageCounts`: metered use, allocations in use, credit balances, units held).

Times are epoch seconds (floats), as the resolver writes them.
"""

from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict


class SourceEntry(TypedDict):
    """Where part of a feature's answer came from: a subscription, purchase or the default product (`product`,
    `value`, `quantity` but for the default product, `ends_at` when it ends, `status` of a subscription, `disputed`
    of a purchase), a grant (`value`, `reason`, `expires_at`) or a revocation (`reason`, `expires_at`)."""

    type: str
    id: str
    product: NotRequired[str]
    value: NotRequired[Any]
    quantity: NotRequired[int]
    ends_at: NotRequired[str | None]
    status: NotRequired[str]
    disputed: NotRequired[bool]
    reason: NotRequired[str]
    expires_at: NotRequired[str | None]


class FeatureEntry(TypedDict):
    """One feature of a `StructureSnapshot`. The period keys are there for metered features only;
    `credits_low_percent` only on the copy a consume works on (`services.consume._structure_for_consume`)."""

    id: str
    type: str
    enabled: bool
    revoked: bool
    value: Any
    limit: int | None
    sources: list[SourceEntry]
    meter: bool
    period_start: NotRequired[float]
    period_end: NotRequired[float]
    interval: NotRequired[str]
    interval_count: NotRequired[int]
    credits_low_percent: NotRequired[int]
    thresholds: NotRequired[
        list[list[Any]]
    ]  # metered and credits: the customer's own usage or balance thresholds, [id, kind, value]
    recharge_below: NotRequired[int]  # credits: the balance at or below which an auto-recharge charges
    overage: NotRequired[bool]  # metered: use may go past `limit` (a plan's value allows it)
    windows: NotRequired[
        list[list[Any]]
    ]  # metered: [[window, limit], …], shortest first (`services.windows`)
    # metered with overage: the spend cap that applies (`attach.caps_attach`): units | amount, at_cap, set_by,
    # price (the metered price's terms, or None), currency, limit (units allowed in all, None: no bound)
    cap: NotRequired[dict[str, Any]]
    # metered with a credits waterfall: {"feature": the credits feature's key, "cost": credits a unit}; use past
    # the limit is paid from that feature's balance before any overage (`services.waterfall`)
    credits: NotRequired[dict[str, Any]]
    # metered with a limit per entity: {"feature": the allocation feature whose entities it counts, "limit": m}
    # (`services.entities`)
    per_entity: NotRequired[dict[str, Any]]
    # credits whose plan lets each entity of an allocation feature hold credits of its own: {"feature": key,
    # "on_remove": "return" | "forfeit"} (`services.entities`)
    entity_credits: NotRequired[dict[str, Any]]
    # metered with overage, of a customer with an account cap (`entitlements.account_cap`): id, amount, currency,
    # at_cap, set_by, prices (the terms of each metered price it sums, by feature key)
    account_cap: NotRequired[dict[str, Any]]
    # metered with a usage formula (`catalog.formulas`): how a use's model and dimensions make its units
    usage_formula: NotRequired[dict[str, Any]]
    # only on the copy a use is judged on, under the account cap's lock: the bound it puts on the own use
    account_limit: NotRequired[int]


class StructureSnapshot(TypedDict):
    """`resolver.resolve_structure`; `tag` and `gen` are set by the cache when it stores it."""

    customer_id: str | None
    features: dict[str, FeatureEntry]
    valid_until: float
    usage_grace_seconds: int
    credits_low_percent: int
    # A customer on a Stripe test clock: the clock's frozen time it was judged at (`customers.selectors.
    # customer_now`), at which its usage, credit lots and holds are judged too (`judged_at`).
    clock_time: NotRequired[float]
    tag: NotRequired[str]
    gen: NotRequired[str]


def judged_at(structure: StructureSnapshot, now: datetime) -> datetime:
    """The time the structure's customer is judged at: its test clock's (`clock_time`), else `now`."""
    clock_time = structure.get("clock_time")
    return now if clock_time is None else datetime.fromtimestamp(clock_time, UTC)


class UsageCounts(TypedDict):
    """What an answer needs of usage, per feature key: metered use, allocation units in use, credit balances."""

    used: dict[str, int]
    in_use: dict[str, int]
    balance: dict[str, int]
    held: dict[str, int]
    # metered features with usage windows: {key: {window: [its start (Unix seconds), used, held]}}
    windows: NotRequired[dict[str, dict[str, list[Any]]]]
    # metered features: the units of `used` paid from credits (a credits waterfall), where any were
    covered: NotRequired[dict[str, int]]


class UsageSnapshot(UsageCounts):
    """`usage_read.resolve_usage`; `tag` and `gen` (the structure's it was computed from) are set by the cache."""

    customer_id: str | None
    valid_until: float | None
    tag: NotRequired[str]
    gen: NotRequired[str]
