"""Credit lots and their ledger, as every source of credits makes and ends them (plan periods, purchases, grants,
an entity's removal): a lot created with its `grant` entry (`lot_create`), one movement recorded (`lot_entry`), lots
taken back (`lots_take_back`), credits given back to the lots they were taken from (`lots_refill`)."""

from datetime import datetime
from typing import Any

from django.db.models import F

from catalog.models import Feature
from customers.models import Customer
from entitlements.models import CreditLedgerEntry, CreditLot, Grant, PlanCreditSlice, PlanPeriod, Purchase
from entitlements.models.records import DEFAULT_CREDIT_PRIORITY


def lot_create(
    *,
    customer: Customer,
    feature: Feature,
    amount: int,
    expires_at: datetime | None,
    reference: str,
    purchase: Purchase | None = None,
    plan_period: PlanPeriod | None = None,
    grant: Grant | None = None,
    priority: int = DEFAULT_CREDIT_PRIORITY,
    entity: str = "",
    plan_slice: PlanCreditSlice | None = None,
) -> CreditLot:
    source = CreditLot.Source.GRANT
    if purchase is not None:
        source = CreditLot.Source.PURCHASE
    elif plan_period is not None:
        source = CreditLot.Source.PLAN
    lot = CreditLot.objects.create(
        project_id=customer.project_id,
        customer=customer,
        feature=feature,
        source=source,
        purchase=purchase,
        plan_period=plan_period,
        grant=grant,
        amount=amount,
        remaining=amount,
        expires_at=expires_at,
        priority=priority,
        entity=entity,
        plan_slice=plan_slice,
    )
    lot_entry(lot, CreditLedgerEntry.Type.GRANT, amount, reference)
    return lot


def lot_entry(lot: CreditLot, kind: str, amount: int, reference: str) -> None:
    """Records one movement of `lot`'s credits in the ledger (signed: + granted, − taken)."""
    CreditLedgerEntry.objects.create(
        project_id=lot.project_id,
        customer_id=lot.customer_id,
        feature_id=lot.feature_id,
        lot=lot,
        type=kind,
        amount=amount,
        reference=reference,
    )


def lots_take_back(
    lots: Any, *, now: datetime, reference: str, kind: str = CreditLedgerEntry.Type.REVOKE
) -> None:
    """Voids the lots, each with a ledger entry of `kind` taking back what it has left."""
    for lot in lots.select_for_update().filter(voided_at__isnull=True).order_by("pk"):
        if lot.remaining > 0:
            lot_entry(lot, kind, -lot.remaining, reference)
        lot.remaining = 0
        lot.voided_at = now
        lot.save(update_fields=["remaining", "voided_at"])


def lots_refill(
    *,
    project_id: str,
    customer_id: str,
    taken: list[tuple[str, int]],
    credits: int,
    type: str,
    reference: str,
) -> int:
    """`credits` go back to the lots they were `taken` from ((lot id, credits), in spending order), last taken
    first, with ledger entries of `type` naming `reference`; a lot voided meanwhile (a refund, a grant removed:
    its credits taken back) gets nothing back, and one expired meanwhile gets them back to end with it (its
    balance is nil either way). The credits given back."""
    entries = []
    features = dict(
        CreditLot.objects.filter(pk__in=[lot for lot, _ in taken], voided_at__isnull=True).values_list(
            "pk", "feature_id"
        )
    )
    given = 0
    for lot_id, units in reversed(taken):
        if credits <= 0:
            break
        back = min(units, credits)
        credits -= back
        if lot_id not in features:  # the lot is voided, or gone with its feature: nothing to give back to
            continue
        given += back
        CreditLot.objects.filter(pk=lot_id).update(remaining=F("remaining") + back)
        entries.append(
            CreditLedgerEntry(
                project_id=project_id,
                customer_id=customer_id,
                feature_id=features[lot_id],
                lot_id=lot_id,
                type=type,
                amount=back,
                reference=reference,
            )
        )
    CreditLedgerEntry.objects.bulk_create(entries)
    return given
