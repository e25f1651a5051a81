"""The items of a subscription a tenant asks for (`items: [{price, quantity?}]` of a checkout, a created or a
changed subscription), checked before anything is written: recurring, active prices synced to Stripe, of one
currency and one billing interval, each price once, no quantity on a metered price, at most Stripe's 20.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from billing import selectors
from billing.models import Price
from core.errors import InvalidRequest
from projects.models import Project

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
        price = selectors.price_get(project=project, key_or_id=price_ref, param=where)
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
