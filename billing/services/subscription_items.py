"""The items of a subscription a tenant asks for (`items: [{price, quantity?}]` of a checkout, a created or a
changed subscription), checked before anything is written: recurring, active prices synced to Stripe, of one
currency and one billing interval, each price once, no quantity on a metered price, at most Stripe's 20. And
`already_subscribed`, per product, decided while the customer's subscription writes are serialized
(`customer_subscribing`).
"""

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import transaction

from billing import selectors
from billing.models import Subscription
from catalog import selectors as catalog_selectors
from catalog.models import Price
from core.errors import Conflict, InvalidRequest, RateLimited
from core.locks import lock_release, lock_try
from customers.models import Customer
from projects.models import Project

# How long a subscription write waits for another one of the same customer (a Stripe call and its mirror take
# well under a second; Stripe's own timeout bounds a slow one).
SUBSCRIBING_WAIT_SECONDS = 30.0
_SUBSCRIBING_POLL_SECONDS = 0.02

# Stripe's limit of items per subscription, and of recurring line items per Checkout Session in subscription mode.
MAX_SUBSCRIPTION_ITEMS = 20


@dataclass(frozen=True)
class ItemSpec:
    """One requested item: a price, and its quantity (None for a metered price, or when not given)."""

    price: Price
    quantity: int | None

    @property
    def metered(self) -> bool:
        return self.price.usage_type == Price.UsageType.METERED


def subscription_items_parse(
    *, project: Project, items: Sequence[tuple[str, int | None]], param: str = "items"
) -> list[ItemSpec]:
    """The requested items as catalog prices, in the order given; a refusal names the offending index."""
    if not items:
        raise InvalidRequest(f"{param} must not be empty.", code="parameter_missing", param=param)
    if len(items) > MAX_SUBSCRIPTION_ITEMS:
        raise InvalidRequest(
            f"A subscription has at most {MAX_SUBSCRIPTION_ITEMS} items (Stripe's limit); this has {len(items)}.",
            code="too_many_items",
            param=param,
        )
    specs: list[ItemSpec] = []
    for index, (price_ref, quantity) in enumerate(items):
        where = f"{param}[{index}].price"
        price = catalog_selectors.price_get(project=project, key_or_id=price_ref, param=where)
        if not price.is_recurring:
            raise InvalidRequest(
                f"Price {price.key!r} is not recurring: a subscription takes recurring prices only.",
                code="price_not_recurring",
                param=where,
            )
        if not price.active:
            raise InvalidRequest(f"Price {price.key!r} is not active.", code="price_inactive", param=where)
        if not price.stripe_price_id:
            raise InvalidRequest(
                f"Price {price.key!r} is not synced to Stripe yet.", code="price_not_synced", param=where
            )
        if any(spec.price.pk == price.pk for spec in specs):
            raise InvalidRequest(f"Price {price.key!r} is given twice.", code="duplicate_price", param=where)
        spec = ItemSpec(price=price, quantity=quantity)
        if spec.metered and quantity is not None:
            raise InvalidRequest(
                f"Price {price.key!r} is metered: it is billed by usage and takes no quantity.",
                code="quantity_not_allowed",
                param=f"{param}[{index}].quantity",
            )
        if specs:
            first = specs[0].price
            if price.currency != first.currency:
                raise InvalidRequest("All items must be in one currency.", code="currency_mixed", param=where)
            if (price.interval, price.interval_count) != (first.interval, first.interval_count):
                raise InvalidRequest(
                    "All items must bill on one interval.", code="interval_mismatch", param=where
                )
        specs.append(spec)
    return specs


def primary_spec(specs: Sequence[ItemSpec]) -> ItemSpec:
    """The item the subscription's own price, product and quantity repeat: the first licensed one, else the
    first (as the mirror decides it)."""
    return next((spec for spec in specs if not spec.metered), specs[0])


@contextmanager
def customer_subscribing(customer: Customer) -> Iterator[None]:
    """Serializes the writes that may give `customer` a product by subscription (`POST /subscriptions`, an
    item change adding a product): held from the `already_subscribed` check through the Stripe call to the
    mirror of Stripe's answer, so a concurrent request checks only once the first one's subscription is
    mirrored. A named lock (`core.locks`: a PostgreSQL advisory lock of this connection, outside any
    transaction, as a Stripe call must be); a request that waits longer than SUBSCRIBING_WAIT_SECONDS is told
    to retry (429), nothing written."""
    name = f"subscribing:{customer.pk}"
    deadline = time.monotonic() + SUBSCRIBING_WAIT_SECONDS
    while not lock_try(name):
        if time.monotonic() >= deadline:
            raise RateLimited(
                "Another subscription change of this customer is still running; retry shortly.",
                code="subscription_change_in_progress",
                headers={"Retry-After": "1"},
            )
        time.sleep(_SUBSCRIBING_POLL_SECONDS)
    try:
        yield
    finally:
        lock_release(name)


def already_subscribed_check(
    *,
    customer: Customer,
    specs: Sequence[ItemSpec],
    params: Sequence[str],
    exclude: Subscription | None = None,
) -> None:
    """409 `already_subscribed` when one of the products of `specs` is on a live subscription of the customer
    (other than `exclude`, the one being changed); `params[i]` names the offending item. Read under the
    customer's row lock, as checkout's purchases read it (`billing.services.payment_create`)."""
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        for spec, param in zip(specs, params, strict=True):
            live = selectors.live_subscription_to(
                customer=customer, product=spec.price.product, exclude=exclude
            )
            if live is not None:
                raise Conflict(
                    f"The customer already has a live subscription to {spec.price.product.key!r} ({live.pk}).",
                    code="already_subscribed",
                    param=param,
                )
