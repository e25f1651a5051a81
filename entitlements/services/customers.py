"""Customers on first sight: usage, consume and grants may name a tenant's user the project has not registered
yet; `customers_ensure` has the customers app create the missing customers and invalidates the cached snapshots
that named no customer row.
"""

from collections.abc import Iterable

from core.cache import bump_on_commit
from customers.models import Customer
from customers.services import customers as customer_services
from entitlements import cache as ent_cache
from projects.models import Project


def customers_ensure(*, project: Project, external_ids: Iterable[str]) -> dict[str, str]:
    """Our customer ids for the tenant's user ids, creating the missing customers."""
    found, created = customer_services.customers_ensure(project=project, external_ids=external_ids)
    if created:
        # Cached snapshots of an unknown customer name no customer row: recompute them.
        bump_on_commit([ent_cache.Keys.of(project.pk, e).structure_version for e in created])
    return found


def _customer_for(project: Project, external_id: str) -> Customer:
    customer_id = customers_ensure(project=project, external_ids=[external_id])[external_id]
    return Customer.objects.get(pk=customer_id)
