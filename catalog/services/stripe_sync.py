"""The catalog's Stripe mirror: the Stripe product, price and billing meter behind each of our rows.

Called after the local write, outside any transaction, with an idempotency key derived from our ids; the Stripe
id is then stored with a compare-and-set. A Stripe failure leaves the row without a Stripe id, so it never claims
to be synced; calling the same service again (an API retry) or `*_stripe_sync` (`sync_catalog`) completes it
without creating a second Stripe object:

- a Stripe product is created under our own product id (Stripe allows a custom product id), so a second create
  finds the first;
- a Stripe price holds the lookup key `<project slug>:<price key>`, so a price whose creation answer was lost
  is found by its lookup key and adopted;
- a Stripe meter is found by its event name `tg_<project slug>_<feature key>` before one is created.

Stripe prices are immutable in amount, currency and tax behaviour: changing one of those creates a new Stripe
price that takes over the lookup key (`transfer_lookup_key`), and the old one is kept in `stripe_price_history`.
The old Stripe price stays active: subscriptions created earlier keep billing on it (changing a subscription's
price is an explicit subscription update), and nothing new can reach it, because Tollgate only ever hands out
the current `stripe_price_id` and the lookup key moved away from it.
"""

import hashlib
import json
from typing import Any

from catalog.models import Feature, Price, Product
from catalog.selectors import price_fetch, product_fetch
from core.errors import Conflict
from projects.models import Project
from stripe_gateway.gateway import StripeGateway, gateway_for, idempotency_key
from stripe_gateway.ownership import refuse_held_first_elsewhere


def price_lookup_key(price: Price) -> str:
    """The Stripe lookup key of a price: namespaced by project, since lookup keys are unique per Stripe account."""
    return f"{price.project.slug}:{price.key}"


def meter_event_name(*, project: Project, feature: Feature) -> str:
    """The Stripe meter event name of a metered feature: namespaced, since event names are unique per account."""
    return f"tg_{project.slug}_{feature.key}"


def _idem(kind: str, object_id: str, operation: str, params: dict[str, Any]) -> str:
    """An idempotency key from our id, the operation and the parameters: a retry of the same call replays at
    Stripe; a call whose parameters changed meanwhile (found by id / lookup key / event name first) does not
    collide with it."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return idempotency_key(kind, object_id, operation, digest)


def meter_event_name_check(feature: Feature) -> str:
    """The feature's meter event name, unless another feature holds it: `tg_a_b_c` is both (slug a, key b_c) and
    (slug a_b, key c), and two projects on one Stripe account must not share a meter."""
    event_name = meter_event_name(project=feature.project, feature=feature)
    if Feature.objects.filter(stripe_meter_event_name=event_name).exclude(pk=feature.pk).exists():
        raise Conflict(
            f"meter: the Stripe meter event name {event_name!r} is taken by another project's feature.",
            code="meter_event_name_taken",
            param="meter",
        )
    return event_name


def feature_meter_ensure(*, feature: Feature) -> Feature:
    """Gives a metered feature its Stripe billing meter: found by event name, else created. Idempotent."""
    feature = Feature.objects.select_related("project").get(pk=feature.pk)
    if feature.stripe_meter_id:
        return feature
    project = feature.project
    event_name = meter_event_name_check(feature)
    gateway = gateway_for(project)
    found = sorted(gateway.meters_by_event_name(event_name), key=lambda m: m.get("status") != "active")
    if found:
        meter = found[0]
    else:
        params = {"display_name": feature.name, "event_name": event_name}
        meter = gateway.meter_create(
            display_name=feature.name,
            event_name=event_name,
            idem=_idem("feature", feature.pk, "meter", params),
        )
    Feature.objects.filter(pk=feature.pk, stripe_meter_id="").update(
        stripe_meter_id=meter["id"], stripe_meter_event_name=event_name
    )
    feature.refresh_from_db()
    return feature


def _product_stripe_params(product: Product) -> dict[str, Any]:
    return {
        "name": product.name,
        "description": product.description,
        "active": product.active,
        "metadata": {"tollgate_project": product.project_id, "tollgate_product": product.pk},
    }


def product_stripe_differs(product: Product, stripe_product: dict[str, Any]) -> bool:
    wanted = _product_stripe_params(product)
    metadata = stripe_product.get("metadata") or {}
    return (
        stripe_product.get("name") != wanted["name"]
        or (stripe_product.get("description") or "") != wanted["description"]
        or stripe_product.get("active") != wanted["active"]
        or any(metadata.get(k) != v for k, v in wanted["metadata"].items())
    )


def product_stripe_sync(*, product: Product) -> Product:
    """Creates or updates the product's Stripe product to match ours (never inside a transaction)."""
    product = product_fetch(product.pk)
    # A row copied from another project's Stripe product (adopted before adoption respected ownership): 404.
    refuse_held_first_elsewhere(product, project=product.project)
    gateway = gateway_for(product.project)
    params = _product_stripe_params(product)
    if product.stripe_product_id:
        gateway.product_update(product.stripe_product_id, params)
        return product
    stripe_product = gateway.product_ensure(
        product_id=product.pk, params=params, idem=_idem("product", product.pk, "create", params)
    )
    Product.objects.filter(pk=product.pk, stripe_product_id="").update(stripe_product_id=stripe_product["id"])
    return product_fetch(product.pk)


def _price_stripe_metadata(price: Price) -> dict[str, str]:
    return {"tollgate_project": price.project_id, "tollgate_price": price.pk}


def price_stripe_differs(price: Price, stripe_price: dict[str, Any]) -> bool:
    metadata = stripe_price.get("metadata") or {}
    return (
        stripe_price.get("active") != price.active
        or stripe_price.get("lookup_key") != price_lookup_key(price)
        or any(metadata.get(k) != v for k, v in _price_stripe_metadata(price).items())
    )


def _stripe_tiers(price: Price) -> list[dict[str, Any]]:
    """The price's tiers as Stripe takes them in `prices.create` (only the amounts that are set)."""
    return [
        {
            "up_to": tier["up_to"],
            **{k: tier[k] for k in ("unit_amount", "flat_amount") if tier.get(k) is not None},
        }
        for tier in price.tiers
    ]


def _stripe_tiers_match(price: Price, stripe_price: dict[str, Any]) -> bool:
    """Whether a Stripe price (listed with `expand[]=data.tiers`: Stripe returns tiers only when expanded)
    charges what `price` does."""
    if price.billing_scheme != Price.BillingScheme.TIERED:
        return bool(stripe_price.get("billing_scheme", "per_unit") == "per_unit")
    if stripe_price.get("billing_scheme") != "tiered" or stripe_price.get("tiers_mode") != price.tiers_mode:
        return False
    theirs = [
        {
            "up_to": "inf" if tier.get("up_to") is None else tier["up_to"],
            "unit_amount": tier.get("unit_amount"),
            "flat_amount": tier.get("flat_amount"),
        }
        for tier in stripe_price.get("tiers") or []
    ]
    return bool(theirs == price.tiers)


def _price_stripe_create(gateway: StripeGateway, price: Price, meter_id: str) -> dict[str, Any]:
    lookup_key = price_lookup_key(price)
    transfer = False
    for holder in gateway.prices_by_lookup_key(lookup_key):
        ours = (holder.get("metadata") or {}).get("tollgate_price") == price.pk
        if (
            ours
            and holder["id"] not in price.stripe_price_history
            and holder.get("currency") == price.currency
            and holder.get("unit_amount") == price.unit_amount
            and _stripe_tiers_match(price, holder)
            and holder.get("tax_behavior") == price.tax_behavior
        ):
            return holder  # an earlier attempt created it and its answer was lost
        transfer = transfer or ours
    params: dict[str, Any] = {
        "product": price.product.stripe_product_id,
        "currency": price.currency,
        "lookup_key": lookup_key,
        "nickname": price.key,
        "tax_behavior": price.tax_behavior,
        "active": price.active,
        "metadata": _price_stripe_metadata(price),
    }
    if price.billing_scheme == Price.BillingScheme.TIERED:
        params.update(billing_scheme="tiered", tiers_mode=price.tiers_mode, tiers=_stripe_tiers(price))
    else:
        params["unit_amount"] = price.unit_amount
    if price.type == Price.Type.RECURRING:
        recurring: dict[str, Any] = {
            "interval": price.interval,
            "interval_count": price.interval_count,
            "usage_type": price.usage_type,
        }
        if price.usage_type == Price.UsageType.METERED:
            recurring["meter"] = meter_id
        params["recurring"] = recurring
    if transfer:
        params["transfer_lookup_key"] = True  # take the key over from our previous Stripe price
    version = str(len(price.stripe_price_history))
    return gateway.price_create(params=params, idem=_idem("price", price.pk, f"create-{version}", params))


def price_stripe_sync(*, price: Price) -> Price:
    """Creates the price's current Stripe price when it has none (product and meter first), else pushes what
    may change at Stripe (active, lookup key, metadata). Never inside a transaction."""
    price = price_fetch(price.pk)
    refuse_held_first_elsewhere(price, project=price.project)  # a copy of another project's price, or
    refuse_held_first_elsewhere(price.product, project=price.project, param="product")  # of its product: 404
    gateway = gateway_for(price.project)
    if not price.stripe_price_id:
        product = price.product
        if not product.stripe_product_id:
            product = product_stripe_sync(product=product)
            price.product = product
        meter_id = ""
        if price.usage_type == Price.UsageType.METERED and price.meter is not None:
            meter_id = feature_meter_ensure(feature=price.meter).stripe_meter_id
        stripe_price = _price_stripe_create(gateway, price, meter_id)
        if stripe_price.get("active") != price.active:
            gateway.price_update(stripe_price["id"], {"active": price.active})
        # Compare-and-set: if the price was repriced meanwhile, that request creates its own Stripe price.
        Price.objects.filter(
            pk=price.pk,
            stripe_price_id="",
            currency=price.currency,
            unit_amount=price.unit_amount,
            tiers=price.tiers,
            tax_behavior=price.tax_behavior,
        ).update(stripe_price_id=stripe_price["id"])
        return price_fetch(price.pk)
    gateway.price_update(
        price.stripe_price_id,
        {
            "active": price.active,
            "lookup_key": price_lookup_key(price),
            "transfer_lookup_key": True,
            "metadata": _price_stripe_metadata(price),
        },
    )
    return price
