"""Which project owns a Stripe object, on the Stripe account several projects share (the platform's).

Two marks say it. Tollgate names the project in `metadata.tollgate_project` of every object it creates
(customers, products, prices, coupons, promotion codes, subscriptions, payments); and a project's rows hold the
Stripe ids of what it created or adopted (a customer, product, price, coupon, promotion code, subscription,
invoice, a feature's meter, a test clock). A project on its own Stripe account shares it with no other project,
so only the metadata can name another one there.

Adoption skips an object either mark gives to another project (`billing.services.adoption_ownership`); a
tenant's write never reaches a Stripe object that a row of another project held first (`held_first_elsewhere`):
the creator's row is older than any adopted copy of it.
"""

from typing import Any

from django.db.models import Model, QuerySet

from core.errors import NotFound


def named_elsewhere(stripe_object: dict[str, Any], *, project_id: str) -> bool:
    """Whether the object's `metadata.tollgate_project` names a project other than this one."""
    metadata = stripe_object.get("metadata")
    named = metadata.get("tollgate_project") if isinstance(metadata, dict) else None
    return bool(named) and str(named) != project_id


def held_elsewhere(rows: QuerySet[Any], *, project: Any, field: str, stripe_id: str) -> bool:
    """Whether a row of another project on the same Stripe account holds the Stripe object (`field` of `rows`
    is its Stripe id)."""
    if not stripe_id or project.stripe_secret_key:  # its own account: no other project's rows are of it
        return False
    return (
        rows.filter(project__stripe_secret_key="", **{field: stripe_id})
        .exclude(project_id=project.pk)
        .exists()
    )


def held_first_elsewhere(row: Model, *, project: Any, field: str) -> bool:
    """Whether a row of another project on the same Stripe account held `row`'s Stripe object (`field`) before
    `row` did: the object is that project's, and `row` an adopted copy of it."""
    rows = type(row)._default_manager.filter(created_at__lt=row.created_at)  # type: ignore[attr-defined]
    return held_elsewhere(rows, project=project, field=field, stripe_id=str(getattr(row, field) or ""))


# The rows a tenant's write reaches Stripe through: (the field of their Stripe id, what the 404 calls them, the
# attribute it names them by).
_WRITTEN_THROUGH = {
    "catalog.Product": ("stripe_product_id", "product", "key"),
    "catalog.Price": ("stripe_price_id", "price", "key"),
    "billing.Coupon": ("stripe_coupon_id", "coupon", "key"),
    "billing.PromotionCode": ("stripe_promotion_code_id", "promotion code", "pk"),
    "customers.TestClock": ("stripe_test_clock_id", "test clock", "pk"),
}


def refuse_held_first_elsewhere(row: Model, *, project: Any, param: str | None = None) -> None:
    """404 ("No such product: 'pro'.", as for any object the project does not own) before a tenant's write to
    `row`'s Stripe object (a product, price, coupon, promotion code or test clock) when another project held it
    first; nothing is written, here or at Stripe. Called where each kind's Stripe write happens."""
    field, noun, name = _WRITTEN_THROUGH[row._meta.label]
    if held_first_elsewhere(row, project=project, field=field):
        raise NotFound(f"No such {noun}: {getattr(row, name)!r}.", param=param)
