"""Re-rating a product's draft before it is published (#52 point 2): what its subscribers' last closed periods
would have billed under the draft's prices, against what Stripe invoiced them, and which of their entitlement
answers the draft would take away or lower below what they use. It reads only: nothing changes here or at Stripe.

- **Who:** the product's subscribers — subscriptions (not ended) with an item on one of its prices — optionally
  one version's cohort. A subscriber's version is its items' (`SubscriptionItem.product_version`).
- **Which periods:** each subscription's last `periods` closed periods (ended by now) its invoices bill this
  product's prices for, as Stripe's invoice lines state them: a licensed price's line pays for the period it
  names (in advance), a metered price's line bills the usage of the period it names (in arrears, on the next
  invoice) — Stripe's meter total, the usage Tollgate reported. Proration lines (changes within a period) are
  left out on both sides, so a period compares its full-price lines.
- **Today:** what those lines amount to, as invoiced (before discounts and tax). **Draft:** the same lines and
  quantities, each price the draft reprices at its new terms (`catalog.pricing.terms_amount`: per unit, or
  graduated or volume tiers), the others as invoiced. Money is summed per currency, never across.
- **Entitlements:** the subscriber's version against the draft, feature by feature: `lost` (given now, not by
  the draft, or a boolean turned off) and `lowered` (a smaller limit, per-unit values at the subscriber's
  quantity), with `used` — a metered feature's largest period use since the first re-rated period (its usage
  counters), an allocation's units in use — and `below_use` when the lowered limit is under it.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import Max
from django.utils import timezone

from billing.models import Invoice, Subscription, SubscriptionItem
from catalog.models import Feature, Price, Product, ProductDraft, ProductVersion
from catalog.pricing import terms_amount
from catalog.selectors import product_features, product_prices_by_stripe_price
from entitlements.models import AllocationCounter, UsageCounter

BILLED = ("paid", "open", "uncollectible")  # an invoice Stripe finalized and did not void


@dataclass
class _Subscriber:
    subscription_id: str
    stripe_subscription_id: str
    customer_id: str
    customer: str
    version: int
    quantity: int = 0
    currency: str = ""
    periods: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # (start, end) → [today, draft]


def _limit(value: Any, quantity: int) -> tuple[bool, int | None]:
    """(whether the value is a limit, the limit: None unlimited), per-unit values at `quantity`."""
    if value is None:
        return True, None
    if isinstance(value, bool):
        return False, None
    if isinstance(value, int):
        return True, value
    if isinstance(value, dict):
        if value.get("per_unit") is not None:
            return True, int(value["per_unit"]) * quantity
        if "limit" in value:
            return True, value["limit"]
    return False, None


def _given(value: Any) -> bool:
    return value is not False


def _entitlement_changes(
    before: dict[str, Any], after: dict[str, Any], quantity: int, used: dict[str, int]
) -> list[dict[str, Any]]:
    changes = []
    for key in sorted(before):
        old, new = before[key], after.get(key, False)
        if not _given(old):
            continue
        if key not in after or not _given(new):
            changes.append(
                {
                    "feature": key,
                    "change": "lost",
                    "before": old,
                    "after": None,
                    "used": used.get(key),
                    "below_use": False,
                }
            )
            continue
        old_is_limit, old_limit = _limit(old, quantity)
        new_is_limit, new_limit = _limit(new, quantity)
        if not (old_is_limit and new_is_limit) or new_limit is None:
            continue
        if old_limit is not None and new_limit >= old_limit:
            continue
        in_use = used.get(key)
        changes.append(
            {
                "feature": key,
                "change": "lowered",
                "before": old_limit,
                "after": new_limit,
                "used": in_use,
                "below_use": in_use is not None and in_use > new_limit,
            }
        )
    return changes


def _subscribers(product: Product, version: int | None) -> dict[str, _Subscriber]:
    items = SubscriptionItem.objects.filter(product=product).exclude(
        subscription__status__in=Subscription.ENDED_STATUSES
    )
    if version is not None:
        items = items.filter(product_version=version)
    subscribers: dict[str, _Subscriber] = {}
    for row in items.values_list(
        "subscription_id",
        "subscription__stripe_subscription_id",
        "subscription__customer_id",
        "subscription__customer__external_id",
        "product_version",
        "usage_type",
        "quantity",
        "price__currency",
    ).order_by("subscription_id", "position"):
        subscription_id, stripe_id, customer_id, external_id, number, usage_type, quantity, currency = row
        found = subscribers.setdefault(
            stripe_id, _Subscriber(subscription_id, stripe_id, customer_id, external_id, number)
        )
        found.currency = found.currency or currency
        if usage_type == Price.UsageType.LICENSED:
            found.quantity += quantity or 1
    for found in subscribers.values():
        found.quantity = found.quantity or 1  # held through metered prices only: once
    return subscribers


def _line_amount(price: Price, terms: dict[str, Any] | None, quantity: int, invoiced: int) -> int:
    if terms is None:
        return invoiced
    return terms_amount(
        {
            "billing_scheme": price.billing_scheme,
            "unit_amount": terms.get("unit_amount"),
            "tiers_mode": price.tiers_mode,
            "tiers": terms.get("tiers"),
        },
        quantity,
    )


def _rate(
    product: Product,
    draft: ProductDraft,
    subscribers: dict[str, _Subscriber],
    periods: int,
    now: datetime,
) -> None:
    """Fills each subscriber's last `periods` closed periods: [today, draft] in minor units."""
    stripe_prices = product_prices_by_stripe_price(product)
    now_ts = int(now.timestamp())
    lines_by: dict[str, dict[tuple[int, int], list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    invoices = Invoice.objects.filter(
        project_id=product.project_id,
        status__in=BILLED,
        stripe_subscription_id__in=SubscriptionItem.objects.filter(product=product).values(
            "subscription__stripe_subscription_id"
        ),
    ).values_list("stripe_subscription_id", "lines")
    for stripe_subscription_id, lines in invoices.iterator(chunk_size=2000):
        if stripe_subscription_id not in subscribers:
            continue
        for line in lines or []:
            price = stripe_prices.get(line.get("stripe_price_id") or "")
            start, end = line.get("period_start"), line.get("period_end")
            if price is None or line.get("proration") or not start or not end or int(end) > now_ts:
                continue
            amount = int(line.get("amount") or 0)
            quantity = int(line.get("quantity") or 0)
            sums = lines_by[stripe_subscription_id][(int(start), int(end))]
            sums[0] += amount
            sums[1] += _line_amount(price, draft.prices.get(price.key), quantity, amount)
    for stripe_subscription_id, by_period in lines_by.items():
        kept = sorted(by_period, key=lambda period: (period[1], period[0]))[-periods:]
        subscribers[stripe_subscription_id].periods = {period: by_period[period] for period in kept}


def _use(product: Product, subscribers: dict[str, _Subscriber], keys: set[str]) -> dict[str, dict[str, int]]:
    """Per customer id, per feature key: a metered feature's largest period use since the first re-rated period
    began, an allocation's units in use."""
    features = {
        feature.pk: feature
        for feature in Feature.objects.filter(project_id=product.project_id, key__in=keys).exclude(
            type__in=[Feature.Type.BOOLEAN, Feature.Type.CREDITS]
        )
    }
    starts = [start for found in subscribers.values() for start, _ in found.periods]
    since = datetime.fromtimestamp(min(starts), UTC) if starts else timezone.now()
    customers = {found.customer_id for found in subscribers.values()}
    used: dict[str, dict[str, int]] = defaultdict(dict)
    metered = [pk for pk, feature in features.items() if feature.type == Feature.Type.METERED]
    allocations = [pk for pk, feature in features.items() if feature.type == Feature.Type.ALLOCATION]
    if metered:
        peaks = (
            UsageCounter.objects.filter(
                project_id=product.project_id, feature_id__in=metered, period_end__gt=since
            )
            .values_list("customer_id", "feature_id")
            .annotate(peak=Max("used"))
        )
        for customer_id, feature_id, peak in peaks.iterator(chunk_size=5000):
            if customer_id in customers:
                used[customer_id][features[feature_id].key] = int(peak)
    if allocations:
        for customer_id, feature_id, in_use in AllocationCounter.objects.filter(
            project_id=product.project_id, feature_id__in=allocations
        ).values_list("customer_id", "feature_id", "in_use"):
            if customer_id in customers:
                used[customer_id][features[feature_id].key] = int(in_use)
    return used


def _version_features(product: Product, numbers: set[int]) -> dict[int, dict[str, Any]]:
    """What each version gives (API shape): the latest is the product's rows; a version never written (a product
    older than versions, unchanged since) is the rows too."""
    found = dict(
        ProductVersion.objects.filter(product=product, number__in=numbers).values_list("number", "features")
    )
    latest = product_features(product) if product.version in numbers or len(found) < len(numbers) else {}
    return {number: latest if number >= product.version else found.get(number, latest) for number in numbers}


def draft_rerating(
    *, draft: ProductDraft, periods: int = 3, version: int | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The draft re-rated against its product's subscribers (the module's docstring): `rows` (one per
    subscriber, largest difference first), `cohorts` (by version and currency) and `totals` (by currency)."""
    product = draft.product
    now = now or timezone.now()
    subscribers = _subscribers(product, version)
    _rate(product, draft, subscribers, periods, now)
    features = _version_features(product, {found.version for found in subscribers.values()})
    keys = {key for given in features.values() for key in given}
    used = _use(product, subscribers, keys)
    rows: list[dict[str, Any]] = []
    cohorts: dict[tuple[int, str], dict[str, Any]] = {}
    totals: dict[str, dict[str, Any]] = {}
    for found in subscribers.values():
        today = sum(pair[0] for pair in found.periods.values())
        drafted = sum(pair[1] for pair in found.periods.values())
        changes = _entitlement_changes(
            features[found.version], draft.features, found.quantity, used.get(found.customer_id, {})
        )
        rows.append(
            {
                "customer": found.customer,
                "subscription": found.subscription_id,
                "version": found.version,
                "currency": found.currency,
                "quantity": found.quantity,
                "periods": [
                    {
                        "start": datetime.fromtimestamp(start, UTC),
                        "end": datetime.fromtimestamp(end, UTC),
                        "today": pair[0],
                        "draft": pair[1],
                    }
                    for (start, end), pair in sorted(found.periods.items())
                ],
                "today": today,
                "draft": drafted,
                "difference": drafted - today,
                "entitlements": changes,
            }
        )
        cohort = cohorts.setdefault(
            (found.version, found.currency),
            {
                "version": found.version,
                "currency": found.currency,
                "subscriptions": 0,
                "periods": 0,
                "today": 0,
                "draft": 0,
                "difference": 0,
                "higher": 0,
                "lower": 0,
                "unchanged": 0,
                "losing_features": 0,
                "below_use": 0,
            },
        )
        cohort["subscriptions"] += 1
        cohort["periods"] += len(found.periods)
        cohort["today"] += today
        cohort["draft"] += drafted
        cohort["difference"] += drafted - today
        cohort["higher" if drafted > today else "lower" if drafted < today else "unchanged"] += 1
        cohort["losing_features"] += any(change["change"] == "lost" for change in changes)
        cohort["below_use"] += any(change["below_use"] for change in changes)
        total = totals.setdefault(
            found.currency,
            {"currency": found.currency, "subscriptions": 0, "today": 0, "draft": 0, "difference": 0},
        )
        total["subscriptions"] += 1
        total["today"] += today
        total["draft"] += drafted
        total["difference"] += drafted - today
    rows.sort(key=lambda row: (-abs(row["difference"]), row["customer"], row["subscription"]))
    return {
        "product": product.key,
        "based_on": draft.based_on,
        "version": draft.based_on + 1,
        "periods": periods,
        "as_of": now,
        "rows": rows,
        "cohorts": [cohorts[key] for key in sorted(cohorts)],
        "totals": [totals[key] for key in sorted(totals)],
    }
