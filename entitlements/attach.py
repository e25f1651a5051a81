"""What a customer's structure carries beside what gives each feature (`resolver`): the customer's own usage and
balance thresholds, the balance an auto-recharge charges at, and the spend cap that applies to each metered
feature, with the metered price whose bills it bounds. Read in the resolver's pass, from the same compiled
statements (`entitlements.statements`)."""

from collections.abc import Sequence
from typing import Any

from catalog.models import Feature, Price, Product, ProductVersion
from catalog.pricing import units_within
from customers.models import Customer
from entitlements import statements
from entitlements.account_cap import billed_past_limit
from entitlements.snapshot import StructureSnapshot

# A product a customer holds and the version they are on: None for its latest.
HeldVersion = tuple[str, int | None]


def structure_attach(
    structure: StructureSnapshot,
    features: list[Feature],
    customer: Customer | None,
    told: bool,
    products: Sequence[HeldVersion] = (),
) -> None:
    """Everything the resolver's structure carries of the customer's own (one call from the resolver): thresholds
    and recharge marks (not in an answer as of a past instant, `told`), and spend caps (`products`: the products
    the customer holds and the version each is on, whose account caps apply to a customer without one)."""
    if customer is not None and not told:
        thresholds_attach(structure, features, customer)
    caps_attach(structure, features, customer, products)


def caps_attach(
    structure: StructureSnapshot,
    features: list[Feature],
    customer: Customer | None,
    products: Sequence[HeldVersion] = (),
) -> None:
    """Each metered feature's spend cap as it applies to the customer: their own (`SpendCap`), else their plan's;
    with the metered price that bills the feature's use (its terms: the cap's money is what they bill) and the
    units the cap allows in all (`limit`: the period's limit plus the cap's units, or the units the price bills
    at most the cap's amount for; None when nothing bills them). Only features whose use may pass the limit
    have a cap."""
    entries = structure["features"]
    # Only a feature whose use may be billed past its plan's allowance has a cap: without one, no query. A
    # feature's own cap bounds its overage; the account cap bounds a feature without a limit too.
    keys = {
        feature.pk: feature.key
        for feature in features
        if feature.type == Feature.Type.METERED and billed_past_limit(entries[feature.key])
    }
    account: dict[str, Any] | None = None
    if customer is not None and keys:
        for feature_id, cap, cap_id in statements.SPEND_CAPS.rows(customer_id=customer.pk):
            if feature_id is None:
                account = {**cap, "id": cap_id, "set_by": "customer"}
                continue
            entry = entries.get(keys.get(feature_id, ""))
            if entry is not None and entry.get("overage"):
                entry["cap"] = {**cap, "set_by": "customer"}
    capped = {key: entry for key, entry in entries.items() if "cap" in entry}
    if account is None and customer is not None and keys and products:
        account = plan_account_cap(customer.pk, products, features)
    if account is not None and customer is not None:
        _account_attach(structure, features, customer, account, set(keys.values()))
    if not capped:
        return
    terms = metered_terms(customer.pk, {entry["id"] for entry in capped.values()}) if customer else {}
    for entry in capped.values():
        cap = entry["cap"]
        price = terms.get(entry["id"])
        cap["price"] = price
        cap["currency"] = price["currency"] if price else None
        limit = int(entry["limit"] or 0)
        if "units" in cap:
            cap["limit"] = limit + int(cap["units"])
        else:
            within = units_within(price, int(cap["amount"])) if price else None
            cap["limit"] = None if within is None else max(within, limit)


def plan_account_cap(
    customer_id: str, products: Sequence[HeldVersion], features: list[Feature]
) -> dict[str, Any] | None:
    """The account cap the customer's plans declare for a customer without their own: each product's as the
    version they are on gives it (`Product.account_cap` on the latest, `ProductVersion.account_cap` on an earlier
    one); of several, the lowest amount (`block` before `alert` at the same amount) among those in a currency their
    metered prices bill in — amounts of different currencies do not compare, and a cap in no such currency sums
    nothing —, else the lowest of all; None when none declares one. Its `id` is the customer's: their row is what
    a use locks (`services.account_caps`)."""
    latest = dict(
        Product.objects.filter(pk__in={product_id for product_id, _ in products}).values_list(
            "pk", "account_cap"
        )
    )
    earlier = [(product_id, number) for product_id, number in products if number is not None]
    frozen: dict[HeldVersion, dict[str, Any] | None] = (
        {
            (product_id, number): cap
            for product_id, number, cap in ProductVersion.objects.filter(
                product_id__in={product_id for product_id, _ in earlier},
                number__in={number for _, number in earlier},
            ).values_list("product_id", "number", "account_cap")
        }
        if earlier
        else {}
    )
    declared = []
    for product_id, number in products:
        # A version never written (a product older than versions, never changed since) is its product as it is.
        cap = frozen.get((product_id, number), latest.get(product_id))
        if cap:
            declared.append(cap)
    if not declared:
        return None
    if len({c["currency"] for c in declared}) > 1:
        metered = {feature.pk for feature in features if feature.type == Feature.Type.METERED}
        billed_in = {terms["currency"] for terms in metered_terms(customer_id, metered).values()}
        declared = [c for c in declared if c["currency"] in billed_in] or declared
    cap = min(declared, key=lambda c: (int(c["amount"]), c["at_cap"] != "block", c["currency"]))
    return {**cap, "id": customer_id, "set_by": "plan"}


def _account_attach(
    structure: StructureSnapshot,
    features: list[Feature],
    customer: Customer,
    account: dict[str, Any],
    past: set[str],
) -> None:
    """The customer's account cap (`entitlements.account_cap`), with the terms of every metered price in its
    currency that bills one of their metered features (what it sums), on the entries of those features and of
    every one whose use may pass its limit (`past`): a use of any of them is judged under the cap's lock."""
    metered = {feature.pk: feature.key for feature in features if feature.type == Feature.Type.METERED}
    terms = metered_terms(customer.pk, set(metered))
    account["prices"] = {
        metered[feature_id]: price
        for feature_id, price in sorted(terms.items())
        if price["currency"] == account["currency"]
    }
    if account["set_by"] == "plan" and account["prices"]:
        # Where a plan's cap remembers the period it was reached in (`services.account_caps._reached`).
        account["anchor"] = structure["features"][min(account["prices"])]["id"]
    for key in sorted(past | set(account["prices"])):
        structure["features"][key]["account_cap"] = account


def metered_terms(customer_id: str, feature_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Per metered feature id, the terms of the metered price billing it on the customer's newest live
    subscription that has one (`selectors.metered_price_of`'s choice)."""
    held = [
        item["price"]
        for subscription in sorted(
            statements.SUBSCRIPTIONS.rows(customer_id=customer_id), key=lambda s: s.created_at, reverse=True
        )
        for item in subscription.items
        if item.get("metered")
    ]
    if not held:
        return {}
    rows = {
        row[0]: row
        for row in Price.objects.filter(
            pk__in=held, usage_type=Price.UsageType.METERED, meter_id__in=sorted(feature_ids)
        ).values_list("pk", "meter_id", "currency", "billing_scheme", "unit_amount", "tiers_mode", "tiers")
    }
    terms: dict[str, dict[str, Any]] = {}
    for price_id in held:
        row = rows.get(price_id)
        if row is not None and row[1] not in terms:
            terms[row[1]] = {
                "currency": row[2],
                "billing_scheme": row[3],
                "unit_amount": row[4],
                "tiers_mode": row[5],
                "tiers": row[6] or [],
            }
    return terms


def thresholds_attach(structure: StructureSnapshot, features: list[Feature], customer: Customer) -> None:
    """The customer's own thresholds on their metered (usage) and credits (balance) features' entries ([id,
    kind, value]), and the balance at or below which a credits feature recharges on its own."""
    kinds = (Feature.Type.METERED, Feature.Type.CREDITS)
    keys = {feature.pk: feature.key for feature in features if feature.type in kinds}
    if not keys:
        return
    for feature_id, threshold_id, kind, value in statements.THRESHOLDS.rows(customer_id=customer.pk):
        if feature_id in keys:
            structure["features"][keys[feature_id]].setdefault("thresholds", []).append(
                [threshold_id, kind, value]
            )
    if any(feature.type == Feature.Type.CREDITS for feature in features):
        for feature_id, below in statements.RECHARGES.rows(customer_id=customer.pk):
            if feature_id in keys:
                structure["features"][keys[feature_id]]["recharge_below"] = below
