"""The catalog's compiled reads (`core.statements`): our price for a Stripe price id, with its product, which the
subscription mirror reads for every item of every subscription event (`selectors.price_for_stripe`). The queryset
its caller used to build in place."""

from catalog.models import Price
from core.statements import Statement

PRICE_FOR_STRIPE = Statement(
    lambda project_id, stripe_price_id: (
        Price.objects.select_related("product")
        .filter(project_id=project_id, stripe_price_id=stripe_price_id)
        .order_by("pk")[:1]
    )
)
