"""The resolver: what a customer is entitled to, computed from PostgreSQL (`entitlements.cache` holds it).

Two parts, cached separately because they change at very different rates:

- the *structure* (`resolve_structure`): for every feature of the project, whether it is on, its value or limit,
  the metered period and where each part came from (`sources`), plus `valid_until`, the next instant at which
  the answer changes without any write (a grant or purchase expiring, a trial or grace period ending, a period
  rolling over). Sources: live subscriptions, one-time purchases, manual grants, the project's default product,
  and revocations, which win. A subscription gives what each of its products gives (per unit where declared:
  the product's licensed quantities added up; a product held only through metered items counts once, and a
  metered item adds nothing to a product a licensed item gives), its products' limits added up. Several plan
  or purchase limits: the largest wins (`None` = unlimited); grants on metered, credits and allocation features
  add to it (top-ups), on boolean and static features they set it.
- the *usage* (`entitlements.usage_read.resolve_usage`): what was used of each metered feature in the structure's
  period, the units of each allocation in use, each credit balance, and the units held of each.

Times are epoch seconds (floats) inside snapshots: they are compared on every check.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypedDict

from django.db.models import Q

from catalog.models import Feature, Product
from catalog.rules import windows_ordered
from catalog.versions import version_values
from core.serializers import api_time
from customers.models import Customer
from customers.selectors import customer_now
from entitlements import records_at, statements
from entitlements.attach import structure_attach
from entitlements.item_versions import subscription_versions as subscription_versions
from entitlements.models import (
    EntitlementSettings,
    Grant,
    Purchase,
    Revocation,
    SubscriptionSource,
    payment_disputed,
)
from entitlements.periods import Period as Period
from entitlements.periods import add_interval as add_interval
from entitlements.periods import month_period as month_period
from entitlements.periods import period_from_snapshot as period_from_snapshot
from entitlements.periods import subscription_period as subscription_period
from entitlements.snapshot import FeatureEntry, SourceEntry, StructureSnapshot
from projects.models import Project

# A snapshot is recomputed at least this often, whatever its valid_until says: it bounds how long a change that
# forgot to bump a version (or a bump lost while the cache was down) can be served.
MAX_SNAPSHOT_AGE_SECONDS = 300.0

# Sources that give a feature's plan value, in precedence order for static values (first wins).
_PLAN_KINDS = ("subscription", "purchase", "default_product")
COUNTED = (Feature.Type.METERED, Feature.Type.ALLOCATION)
# A product's values: feature id → (value, per_unit, overage, windows, cap, credits, per_entity), as
# `ProductFeature` stores them.
ProductValues = dict[str, tuple[Any, bool, bool, Any, Any, Any, Any]]


def settings_for(project: Project) -> EntitlementSettings:
    """The project's entitlement settings (defaults when the project never changed them)."""
    found = statements.SETTINGS.first(project_id=project.pk)
    return found if found is not None else EntitlementSettings(project=project)


# --- structure ----------------------------------------------------------------------------------------------


class _SourceFlags(TypedDict, total=False):
    """What `_Source.describe` adds last: a subscription's `status`, a purchase's `disputed`."""

    status: str
    disputed: bool


@dataclass
class _Source:
    kind: str
    id: str
    product: str
    quantity: int
    values: ProductValues
    period: Period | None = None
    ends_at: datetime | None = None
    flags: _SourceFlags = field(default_factory=lambda: _SourceFlags())
    group: str = ""  # the items of one subscription share it: their counted values add up
    product_id: str = ""
    version: int | None = None  # the product's version it is on, when not the latest

    def value_for(self, feature: Feature) -> tuple[bool, Any]:
        return product_value(self.values, feature, self.quantity)

    def overage_for(self, feature: Feature) -> bool:
        """Whether the product lets use of `feature` go past its limit (`ProductFeature.overage`)."""
        return feature.pk in self.values and self.values[feature.pk][2]

    def windows_for(self, feature: Feature) -> dict[str, int]:
        """The product's usage windows of `feature` (`ProductFeature.windows`), none when it has none."""
        return windows_ordered(self.values[feature.pk][3]) if feature.pk in self.values else {}

    def cap_for(self, feature: Feature) -> dict[str, Any] | None:
        """The product's spend cap on `feature`'s overage (`ProductFeature.cap`), or None."""
        return self.values[feature.pk][4] if feature.pk in self.values else None

    def credits_for(self, feature: Feature) -> dict[str, Any] | None:
        """The product's credits waterfall of `feature` (`ProductFeature.credits`: `{"feature": key, "cost": n}`),
        or None."""
        return self.values[feature.pk][5] if feature.pk in self.values else None

    def per_entity_for(self, feature: Feature) -> dict[str, Any] | None:
        """The product's limit per entity of `feature` (`ProductFeature.per_entity`: `{"feature": key, "limit":
        m}`; a credits feature's `{"feature": key, "on_remove": "return" | "forfeit"}`), or None."""
        return self.values[feature.pk][6] if feature.pk in self.values else None

    def describe(self, value: Any) -> SourceEntry:
        described: SourceEntry = {
            "type": self.kind,
            "id": self.id,
            "product": self.product,
            "value": value,
        }
        if self.kind != "default_product":
            described["quantity"] = self.quantity
        if self.ends_at is not None:
            described["ends_at"] = iso(self.ends_at)
        if "status" in self.flags:
            described["status"] = self.flags["status"]
        if "disputed" in self.flags:
            described["disputed"] = self.flags["disputed"]
        return described


def product_value(values: ProductValues, feature: Feature, quantity: int) -> tuple[bool, Any]:
    """Whether a product (its `values`, from `product_values`) gives `feature`, and the value `quantity` units
    of it give (`per_unit` values are multiplied)."""
    if feature.pk not in values:
        return False, None
    value, per_unit = values[feature.pk][:2]
    return True, value * quantity if per_unit and isinstance(value, int) else value


def purchase_in_force(
    *, revoked_at: datetime | None, starts_at: datetime, ends_at: datetime | None, now: datetime
) -> bool:
    """Whether a purchase gives access at `now`: the rule `_plan_sources` applies in SQL, for one row."""
    return revoked_at is None and starts_at <= now and (ends_at is None or ends_at > now)


def override_in_force(*, deleted_at: datetime | None, expires_at: datetime | None, now: datetime) -> bool:
    """Whether a grant or revocation applies at `now`: the rule `resolve_structure` applies in SQL, for one row."""
    return deleted_at is None and (expires_at is None or expires_at > now)


def iso(moment: datetime | None) -> str | None:
    """An API time: ISO 8601 in UTC with a `Z`, as every other answer writes it."""
    return api_time(moment)


def iso_epoch(epoch: float | None) -> str | None:
    """`iso` of a snapshot time (epoch seconds)."""
    return iso(datetime.fromtimestamp(epoch, UTC)) if epoch is not None else None


def subscription_on(
    subscription: SubscriptionSource, now: datetime, grace: timedelta
) -> tuple[bool, datetime | None]:
    """Whether a subscription gives access at `now`, and when that changes by itself (None: not by time)."""
    status = subscription.status
    end = subscription.current_period_end
    statuses = SubscriptionSource.Status
    if status == statuses.ACTIVE:
        if subscription.cancel_at_period_end and end is not None:
            return now < end, end if now < end else None
        return True, None
    if status == statuses.TRIALING:
        trial_end = subscription.trial_end
        if trial_end is None or now < trial_end:
            return True, trial_end
        # Trial over but Stripe's verdict on the first payment is not mirrored yet: grace, as past_due.
        return now < trial_end + grace, trial_end + grace if now < trial_end + grace else None
    if status == statuses.PAST_DUE:
        since = subscription.current_period_start or subscription.updated_at
        grace_end = since + grace
        return now < grace_end, grace_end if now < grace_end else None
    return False, None  # unpaid, paused, incomplete, incomplete_expired, canceled


def subscription_units(subscription: SubscriptionSource) -> list[tuple[str, int]]:
    """(product id, units) of each product a subscription holds, in the order of its items, or, for a mirror
    that has no items (mirrored before items were), its primary price's. See `product_units`."""
    items = subscription.items
    if not items:
        return [(subscription.product_id, subscription.quantity)]
    return product_units(
        [(item["product"], bool(item["metered"]), int(item["quantity"] or 1)) for item in items]
    )


def product_units(items: list[tuple[str, bool, int]]) -> list[tuple[str, int]]:
    """The units of each product among one subscription's `items` ((product id, metered, quantity)), in the
    order the products first appear: the licensed items' quantities added up; a product held only through
    metered items counts once; a metered item adds nothing to a product a licensed item also gives (a base
    price and its metered overage are one plan, not two)."""
    licensed: dict[str, int] = {}
    order: list[str] = []
    for product_id, metered, quantity in items:
        if product_id not in order:
            order.append(product_id)
        if not metered:
            licensed[product_id] = licensed.get(product_id, 0) + quantity
    return [(product_id, licensed.get(product_id, 1)) for product_id in order]


def _added_by_group(given: list[tuple[_Source, Any]]) -> list[tuple[_Source, Any]]:
    """Counted values of sources of one group (the items of one subscription) added up (`None`, unlimited,
    stays unlimited), one pair per group, the first source of the group standing for it."""
    grouped: dict[str, tuple[_Source, Any]] = {}
    for source, value in given:
        key = source.group or f"{source.kind}:{source.id}"
        if key not in grouped:
            grouped[key] = (source, value)
            continue
        first, total = grouped[key]
        if total is None or value is None:
            grouped[key] = (first, None)
        elif isinstance(total, int) and isinstance(value, int):
            grouped[key] = (first, total + value)
    return list(grouped.values())


def _plan_sources(
    customer: Customer | None, default_product: str | None, now: datetime, grace: timedelta, told: bool
) -> tuple[list[_Source], list[datetime]]:
    """The live subscriptions, purchases and default product of a customer, and the instants they change (`told`:
    as recorded at `now`, a past instant — `records_at`)."""
    changes: list[datetime] = []
    # (kind, id, product, quantity, period, ends_at, flags, group, version): sources of one group (the items of
    # one subscription) add their counted values up; across groups the largest wins. `version`: the product's
    # version a subscription's item is on (None: its latest).
    pending: list[
        tuple[str, str, str, int, Period | None, datetime | None, _SourceFlags, str, int | None]
    ] = []
    if customer is not None:
        subscriptions = (
            records_at.subscriptions_at(customer, now)
            if told
            else statements.SUBSCRIPTIONS.rows(customer_id=customer.pk)
        )
        for subscription in subscriptions:
            on, change_at = subscription_on(subscription, now, grace)
            if change_at is not None:
                changes.append(change_at)
            if not on:
                continue
            flags: _SourceFlags = {"status": subscription.status}
            period = subscription_period(subscription, now)
            versions, moves = subscription_versions(subscription.items, now)
            changes.extend(moves)
            for product_id, quantity in subscription_units(subscription):
                pending.append(
                    (
                        "subscription",
                        subscription.pk,
                        product_id,
                        quantity,
                        period,
                        None,
                        flags,
                        subscription.pk,
                        versions.get(product_id, 1),
                    )
                )
        purchases = (
            Purchase.objects.filter(customer=customer, starts_at__lte=now)
            .filter(records_at.purchases_told(now))
            .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
            .values_list("pk", "product_id", "quantity", "ends_at", "payment_status", "dispute_status")
            if told
            else statements.PURCHASES.rows(customer_id=customer.pk, now=now)
        )
        for pk, product_id, quantity, ends_at, payment_status, dispute_status in purchases:
            if ends_at is not None:
                changes.append(ends_at)
            flags = _SourceFlags()
            if payment_disputed(payment_status=payment_status, dispute_status=dispute_status):
                flags["disputed"] = True  # access kept while the dispute is open; a lost one ends it
            pending.append(("purchase", pk, product_id, quantity, None, ends_at, flags, pk, None))
    if default_product is not None:
        pending.append(
            (
                "default_product",
                default_product,
                default_product,
                1,
                None,
                None,
                _SourceFlags(),
                default_product,
                None,
            )
        )
    product_ids = {row[2] for row in pending}
    values: dict[str, ProductValues] = {pid: {} for pid in product_ids}
    # A product's key only shows in the sources of the features it gives: read with its values.
    keys: dict[str, str] = {}
    latest: dict[str, int] = {}
    if product_ids:
        for (
            product_id,
            key,
            latest[product_id],
            feature_id,
            value,
            per_unit,
            overage,
            windows,
            cap,
            credits,
            per_entity,
        ) in statements.PRODUCT_VALUES.rows(product_ids=sorted(product_ids)):
            values[product_id][feature_id] = (value, per_unit, overage, windows, cap, credits, per_entity)
            keys[product_id] = key
    # A subscriber kept on an earlier version reads what that version froze.
    earlier = [(row[2], row[8]) for row in pending if row[8] is not None and row[8] != latest.get(row[2], 1)]
    frozen = version_values(earlier) if earlier else {}
    if any(product_id not in keys for product_id, _ in frozen):
        keys.update(Product.objects.filter(pk__in=[p for p, _ in frozen]).values_list("pk", "key"))
    sources = [
        _Source(
            kind,
            pk,
            keys.get(product_id, product_id),
            quantity,
            frozen.get((product_id, version or 0), values[product_id]),
            period,
            ends_at,
            flags,
            group,
            product_id,
            version if (product_id, version) in earlier else None,
        )
        for kind, pk, product_id, quantity, period, ends_at, flags, group, version in pending
    ]
    return sources, changes


def _larger(current: Any, candidate: Any) -> Any:
    """The larger of two limits, `None` meaning unlimited."""
    if current is None or candidate is None:
        return None
    return max(current, candidate)


def resolve_structure(*, project: Project, customer: Customer | None, now: datetime) -> StructureSnapshot:
    """The structure part of a customer's entitlements (see the module docstring)."""
    return _resolve(project, customer, now)[0]


def resolve_structure_and_default(
    *, project: Project, customer: Customer, now: datetime
) -> tuple[StructureSnapshot, Callable[[], StructureSnapshot]]:
    """`resolve_structure` of `customer`, and how to compute, from the same reads, that of no customer."""
    return _resolve(project, customer, now)


def resolve_structure_at(*, project: Project, customer: Customer | None, at: datetime) -> StructureSnapshot:
    """`resolve_structure` as of `at`, a past instant, from what Tollgate had recorded by then (`records_at`;
    the catalog, the settings and the customer's own thresholds are today's)."""
    return _resolve(project, customer, at, told=True)[0]


def _resolve(
    project: Project, customer: Customer | None, now: datetime, told: bool = False
) -> tuple[StructureSnapshot, Callable[[], StructureSnapshot]]:
    settings = settings_for(project)
    grace = timedelta(seconds=settings.past_due_grace_seconds)
    # A customer on a Stripe test clock is judged at the clock's time (`real` stays for the cache's horizon). Only
    # such a customer is asked about (test mode): a Stripe event's recompute of any other stays out of `customers`.
    on_clock = not told and customer is not None and customer.test_clock_id is not None
    real, now = now, customer_now(customer=customer, now=now) if on_clock else now
    features: list[Feature] = (
        statements.FEATURES_AND_DEFAULT.rows(project_id=project.pk, default_product=project.default_product)
        if project.default_product
        else statements.FEATURES.rows(project_id=project.pk)
    )
    default_product = getattr(features[0], "default_product_pk", None) if features else None
    sources, changes = _plan_sources(customer, default_product, now, grace, told)
    grants: list[Grant] = []
    revocations: list[Revocation] = []
    if customer is not None and not told:
        grants = statements.GRANTS.rows(customer_id=customer.pk, now=now)
        revocations = statements.REVOCATIONS.rows(customer_id=customer.pk, now=now)
    elif customer is not None:
        in_force = records_at.overrides_told(now)
        grants = list(
            Grant.objects.filter(in_force, customer=customer)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .order_by("created_at", "pk")
        )
        revocations = list(
            Revocation.objects.filter(in_force, customer=customer).filter(
                Q(expires_at__isnull=True) | Q(expires_at__gt=now)
            )
        )
    changes += [g.expires_at for g in grants if g.expires_at is not None]
    changes += [r.expires_at for r in revocations if r.expires_at is not None]
    anyone = [source for source in sources if source.kind == "default_product"]
    structure = _structure(settings, features, sources, grants, revocations, changes, now, customer)
    held = sorted(
        {(source.product_id, source.version) for source in sources}, key=lambda pair: (pair[0], pair[1] or 0)
    )
    structure_attach(structure, features, customer, told, held)
    if now != real:  # nothing changes by time while the clock stands; its move bumps the answers version
        structure["clock_time"] = now.timestamp()
        structure["valid_until"] = real.timestamp() + MAX_SNAPSHOT_AGE_SECONDS
    return structure, partial(_structure, settings, features, anyone, [], [], [], real, None)


def _structure(
    settings: EntitlementSettings,
    features: list[Feature],
    sources: list[_Source],
    grants: list[Grant],
    revocations: list[Revocation],
    changes: list[datetime],
    now: datetime,
    customer: Customer | None,
) -> StructureSnapshot:
    entries: dict[str, FeatureEntry] = {}
    for feature in features:
        entry = _feature_entry(feature, sources, grants, revocations, now)
        if feature.type == Feature.Type.METERED:
            changes.append(datetime.fromtimestamp(entry["period_end"], UTC))
        entries[feature.key] = entry
    for entry in entries.values():  # a waterfall's credits feature gone or revoked pays for nothing
        paying = entries.get(entry["credits"]["feature"]) if "credits" in entry else None
        if "credits" in entry and (
            paying is None or paying["type"] != Feature.Type.CREDITS or paying["revoked"]
        ):
            del entry["credits"]
    horizon = now + timedelta(seconds=MAX_SNAPSHOT_AGE_SECONDS)
    valid_until = min([c for c in changes if c > now] + [horizon])
    return {
        "customer_id": customer.pk if customer is not None else None,
        "features": entries,
        "valid_until": valid_until.timestamp(),
        "usage_grace_seconds": settings.usage_grace_seconds,
        "credits_low_percent": settings.credits_low_percent,
    }


def _feature_entry(
    feature: Feature,
    sources: list[_Source],
    grants: list[Grant],
    revocations: list[Revocation],
    now: datetime,
) -> FeatureEntry:
    described: list[SourceEntry] = []
    given: list[tuple[_Source, Any]] = []
    for source in sources:
        has, given_value = source.value_for(feature)
        if has:
            given.append((source, given_value))
            described.append(source.describe(given_value))
    kind = feature.type
    value: Any = None
    limit: Any = None
    has_any = bool(given)
    # Use of a metered feature may go past its limit when a plan giving it says so (billed by its metered price).
    overage = kind == Feature.Type.METERED and any(source.overage_for(feature) for source, _ in given)
    if kind == Feature.Type.BOOLEAN:
        value = any(v is True for _, v in given)
    elif kind == Feature.Type.STATIC:
        ranked = sorted(given, key=lambda pair: _PLAN_KINDS.index(pair[0].kind))
        value = ranked[0][1] if ranked else None
    elif kind in COUNTED or kind == Feature.Type.CREDITS:
        limit = 0
        given = _added_by_group(given)
        for index, (_, v) in enumerate(given):
            limit = v if index == 0 else _larger(limit, v)
    own = [g for g in grants if g.feature_id == feature.pk]
    for grant in own:
        has_any = True
        described.append(
            {
                "type": "grant",
                "id": grant.pk,
                "value": grant.value,
                "reason": grant.reason,
                "expires_at": iso(grant.expires_at),
            }
        )
        if kind == Feature.Type.BOOLEAN:
            value = True if grant.value is None else bool(grant.value)
        elif kind == Feature.Type.STATIC:
            value = grant.value
        elif kind in COUNTED:
            limit = None if limit is None or grant.value is None else limit + int(grant.value)
    revoked = [r for r in revocations if r.feature_id == feature.pk]
    for revocation in revoked:
        described.append(
            {
                "type": "revocation",
                "id": revocation.pk,
                "reason": revocation.reason,
                "expires_at": iso(revocation.expires_at),
            }
        )
    if kind in COUNTED:
        enabled = has_any and (limit is None or limit > 0 or overage)
        value = limit
    elif kind == Feature.Type.CREDITS:
        enabled = True  # decided by the balance at answer time
        value = None
        limit = None
    elif kind == Feature.Type.BOOLEAN:
        enabled = bool(value)
    else:
        enabled = value is not None
    if revoked:
        enabled = False
        value = False if kind == Feature.Type.BOOLEAN else None
        limit = 0 if kind in COUNTED else None
        overage = False
    entry: FeatureEntry = {
        "id": feature.pk,
        "type": kind,
        "enabled": enabled,
        "revoked": bool(revoked),
        "value": value,
        "limit": limit,
        "sources": described,
        "meter": bool(feature.stripe_meter_event_name),
    }
    if kind == Feature.Type.METERED:
        entry["overage"] = overage and limit is not None
        period, chosen = _metered_period(feature, given, now)
        windows = chosen.windows_for(feature) if chosen is not None and not revoked else {}
        if windows:
            entry["windows"] = [[name, limit] for name, limit in windows.items()]
        cap = chosen.cap_for(feature) if chosen is not None and entry["overage"] else None
        if cap:
            entry["cap"] = {**cap, "set_by": "catalog"}
        if feature.usage_formula is not None:
            entry["usage_formula"] = feature.usage_formula
        waterfall = chosen.credits_for(feature) if chosen and limit is not None and not revoked else None
        if waterfall:
            entry["credits"] = dict(waterfall)
        # Kept when revoked: a use naming an entity is refused as the feature is, not 400 `entity_not_counted`.
        per_entity = chosen.per_entity_for(feature) if chosen is not None else None
        if per_entity:
            entry["per_entity"] = dict(per_entity)
        entry["period_start"] = period.start.timestamp()
        entry["period_end"] = period.end.timestamp()
        entry["interval"] = period.interval
        entry["interval_count"] = period.count
    elif kind == Feature.Type.CREDITS:
        # The entities' own credits (`{"feature": key, "on_remove": …}`), as a plan of the customer declares them
        # (a subscription's first): kept when revoked, as a metered feature's `per_entity` is.
        declared = [
            per_entity
            for source, _ in sorted(given, key=lambda pair: pair[0].period is None)
            if (per_entity := source.per_entity_for(feature))
        ]
        if declared:
            entry["entity_credits"] = dict(declared[0])
    return entry


def _metered_period(
    feature: Feature, given: list[tuple[_Source, Any]], now: datetime
) -> tuple[Period, _Source | None]:
    """The period of the subscription that gives the largest allowance, else calendar months (UTC); and the
    source whose usage windows apply: that subscription, else the source giving the largest allowance (the
    first of equals), so a plan's windows come with the allowance they were sold with."""
    candidates = [(source, value) for source, value in given if source.period is not None]
    if candidates:
        unlimited = [pair for pair in candidates if pair[1] is None]
        chosen = unlimited[0] if unlimited else max(candidates, key=lambda pair: int(pair[1] or 0))
        if chosen[0].period is not None:
            return chosen[0].period, chosen[0]
    start, end = month_period(now)
    unlimited = [pair for pair in given if pair[1] is None]
    best = unlimited[0] if unlimited else max(given, key=lambda pair: int(pair[1] or 0), default=None)
    return Period(start, end), best[0] if best is not None else None
