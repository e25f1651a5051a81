"""What Tollgate had recorded at a past instant, for point-in-time answers (`entitlements.history`): the version of
each subscription it had been told of last, and the grants, revocations and purchases recorded by then and not yet
ended then. The resolver applies its usual rules to them with `now` set to that instant."""

from datetime import datetime

from django.db.models import Q

from customers.models import Customer
from entitlements.models import SubscriptionSource, SubscriptionVersion
from entitlements.services.sources import SOURCE_FIELDS


def subscriptions_at(customer: Customer, at: datetime) -> list[SubscriptionSource]:
    """Each subscription of the customer as its newest version recorded at or before `at` said (unsaved rows, in
    the order the resolver reads them: oldest subscription first)."""
    newest: dict[str, SubscriptionVersion] = {}
    versions = SubscriptionVersion.objects.filter(customer=customer, recorded_at__lte=at).order_by(
        "recorded_at", "pk"
    )
    for version in versions:
        newest[version.subscription_id] = version
    told = [
        SubscriptionSource(
            id=version.subscription_id, **{name: getattr(version, name) for name in SOURCE_FIELDS}
        )
        for version in newest.values()
    ]
    return sorted(told, key=lambda subscription: (subscription.created_at, subscription.pk))


def overrides_told(at: datetime) -> Q:
    """Grants and revocations recorded at or before `at` and not ended (deleted or lifted) by then."""
    return Q(created_at__lte=at) & (Q(deleted_at__isnull=True) | Q(deleted_at__gt=at))


def purchases_told(at: datetime) -> Q:
    """Purchases recorded at or before `at` and not ended by a refund or a lost dispute by then."""
    return Q(created_at__lte=at) & (Q(revoked_at__isnull=True) | Q(revoked_at__gt=at))
