"""The ownership rule of adoption, which every kind of object it reads goes through before anything else: an
object another project owns is skipped, counted `held_by_another_project` under its kind and listed
(`held_by_another_project`: `{"kind", "id"}`), on a dry run and a real run alike.

Another project owns it when its `metadata.tollgate_project` names that project, when a row of a project on the
same Stripe account holds its Stripe id, or when what it belongs to is another project's (a price's product, a
promotion code's coupon, a customer's test clock, a subscription's or an invoice's customer, a schedule's
subscription): `stripe_gateway.ownership`.
"""

from collections.abc import Iterable
from typing import Any

from django.db.models import Model

from billing.models import Coupon, Invoice, PromotionCode, Subscription
from billing.services.adoption_state import Adoption
from catalog.models import Feature, Price, Product
from customers.models import Customer, TestClock
from stripe_gateway.ownership import held_elsewhere, named_elsewhere

# Per kind of the report: the rows that hold such an object's Stripe id, and their field of it.
HOLDERS: dict[str, tuple[type[Model], str]] = {
    "test_clocks": (TestClock, "stripe_test_clock_id"),
    "products": (Product, "stripe_product_id"),
    "prices": (Price, "stripe_price_id"),
    "meters": (Feature, "stripe_meter_id"),
    "coupons": (Coupon, "stripe_coupon_id"),
    "promotion_codes": (PromotionCode, "stripe_promotion_code_id"),
    "customers": (Customer, "stripe_customer_id"),
    "subscriptions": (Subscription, "stripe_subscription_id"),
    "invoices": (Invoice, "stripe_invoice_id"),
}


def held_by_another_project(
    state: Adoption, kind: str, stripe_object: dict[str, Any], *, parents: Iterable[str] = ()
) -> bool:
    """Whether another project owns the object (then skipped: counted and listed); `parents`: the Stripe ids
    of what it belongs to."""
    object_id = str(stripe_object["id"])
    if object_id in state.held_elsewhere:
        return True
    holder = HOLDERS.get(kind)
    elsewhere = (
        named_elsewhere(stripe_object, project_id=state.project.pk)
        or any(parent and parent in state.held_elsewhere for parent in parents)
        or (
            holder is not None
            and held_elsewhere(
                holder[0]._default_manager.all(), project=state.project, field=holder[1], stripe_id=object_id
            )
        )
    )
    if elsewhere:
        state.held_elsewhere.add(object_id)
        state.report.count(kind, "held_by_another_project")
        state.report.note("held_by_another_project", {"kind": kind, "id": object_id})
    return elsewhere
