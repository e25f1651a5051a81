"""A person's data in the entitlement records (issue #29): what the tenant or an operator wrote about them
(grant and revocation reasons, grant values, usage properties, ledger references). Features, quantities,
periods, counters and credits stay: they are what was sold and used, not who."""

from core.cache import bump_on_commit
from core.privacy import Erasure, matching, scrub_rows
from customers.models import Customer
from entitlements import cache as ent_cache
from entitlements.models import (
    CreditLedgerEntry,
    Grant,
    PlanCreditSlice,
    PlanPeriod,
    Purchase,
    Revocation,
    UsageEvent,
)


def entitlements_anonymise(*, customer: Customer, external_id: str, erasure: Erasure) -> int:
    """Scrubs the customer's records of the person, in the erasure's transaction, and drops the cached snapshots
    kept under the tenant's old user id once it commits. Returns how many rows changed."""
    changed = scrub_rows(
        Grant.objects.filter(customer=customer),
        json_fields=("value",),
        text_fields=("reason",),
        erasure=erasure,
    )
    changed += scrub_rows(
        Revocation.objects.filter(customer=customer), text_fields=("reason",), erasure=erasure
    )
    changed += scrub_rows(
        Purchase.objects.filter(customer=customer), text_fields=("revoke_reason",), erasure=erasure
    )
    changed += scrub_rows(
        PlanPeriod.objects.filter(customer=customer), text_fields=("revoke_reason",), erasure=erasure
    )
    changed += scrub_rows(
        PlanCreditSlice.objects.filter(customer=customer), text_fields=("stop_reason",), erasure=erasure
    )
    changed += scrub_rows(
        CreditLedgerEntry.objects.filter(customer=customer).filter(matching(("reference",), erasure.needles)),
        text_fields=("reference",),
        erasure=erasure,
    )
    # A large history: only the usage events whose properties quote the person are read.
    changed += scrub_rows(
        UsageEvent.objects.filter(customer=customer).filter(matching(("properties",), erasure.json_needles)),
        json_fields=("properties",),
        erasure=erasure,
    )
    keys = ent_cache.Keys.of(customer.project_id, external_id)
    bump_on_commit([keys.structure_version, keys.usage_version])
    return changed
