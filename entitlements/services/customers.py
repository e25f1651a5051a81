"""Customers on first sight: usage, consume and grants may name a tenant's user the project has not
registered yet; `customers_ensure` creates the missing customers (and invalidates the cached snapshots that
named no customer row).
"""

from collections.abc import Iterable

from billing.models import Customer
from entitlements import cache as ent_cache
from projects.models import Project


def customers_ensure(*, project: Project, external_ids: Iterable[str]) -> dict[str, str]:
    """Our customer ids for the tenant's user ids, creating the missing customers (usage may name a user the
    project has not registered yet)."""
    wanted = set(external_ids)
    found = dict(
        Customer.objects.filter(project=project, external_id__in=wanted).values_list("external_id", "pk")
    )
    missing = wanted - set(found)
    if missing:
        Customer.objects.bulk_create(
            [Customer(project=project, external_id=external_id) for external_id in sorted(missing)],
            ignore_conflicts=True,
        )
        found.update(
            Customer.objects.filter(project=project, external_id__in=missing).values_list("external_id", "pk")
        )
        # Cached snapshots of an unknown customer name no customer row: recompute them.
        ent_cache.bump_on_commit(
            [ent_cache.Keys.of(project.pk, e).structure_version for e in sorted(missing)]
        )
    return found


def _customer_for(project: Project, external_id: str) -> Customer:
    customer_id = customers_ensure(project=project, external_ids=[external_id])[external_id]
    return Customer.objects.get(pk=customer_id)
