"""Entitlement writes. Today: the one hook that every change of what a customer may use calls.

`entitlements_recompute` is called by billing and the Stripe processors whenever a subscription, payment,
invoice, refund or dispute changes for a customer. It bumps the customer's entitlement version on commit, so
any answer cached under the previous version is never served again. The resolver, grants, usage and credits
(issue #6) build on this hook and add the `entitlements.updated` event when the answer changed.
"""

from django.db import transaction

from billing.models import Customer
from core.cache import cache_delete_many, cache_set

VERSION_TTL_SECONDS = 7 * 86_400


def version_key(customer_id: str) -> str:
    return f"entitlements:version:{customer_id}"


def entitlements_recompute(*, customer: Customer) -> None:
    """What `customer` may use has (possibly) changed: invalidate cached answers once the change commits."""
    key = version_key(customer.pk)

    def bump() -> None:
        # A new random version rather than an increment: correct even if the cache lost the old value.
        from core.ids import random_token

        cache_delete_many([key])
        cache_set(key, random_token(12), VERSION_TTL_SECONDS)

    transaction.on_commit(bump)
