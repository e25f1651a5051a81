"""Grants, revocations, purchases, subscriptions (now and each version told), paid plan periods, usage counters, credit lots and holds (`records`); plan credits granted on a cadence (`cadence`); the
tenant's thresholds and auto-recharges (`alerts`); a customer's entities and their use (`entities`); the usage events' keys and dropped months (`partitions`); corrections of usage events (`corrections`); period totals by Stripe-meter status (`rollups`).

Counters and lots change only through atomic SQL in `entitlements.services` (conditional `UPDATE … SET used =
used + n WHERE used + n <= limit`, row locks on lots), so limits and balances hold under concurrency.

Django registers an app's models by importing `entitlements.models`, so this package imports each of them; code
imports them from here (`from entitlements.models import CreditLot`)."""

from entitlements.models.alerts import AutoRecharge, SpendCap, ThresholdCrossing, UsageThreshold
from entitlements.models.cadence import PlanCreditSlice
from entitlements.models.corrections import UsageCorrection
from entitlements.models.entities import Entity, EntityCounter, EntityWindowCounter
from entitlements.models.partitions import UsageEventKey, UsagePartitionDrop
from entitlements.models.records import (
    AllocationCounter,
    CreditLedgerEntry,
    CreditLot,
    EntitlementSettings,
    EntitlementState,
    Grant,
    Hold,
    PlanPeriod,
    Purchase,
    Revocation,
    SubscriptionSource,
    SubscriptionVersion,
    UsageCounter,
    UsageEvent,
    payment_disputed,
)
from entitlements.models.rollups import UsageMeterTotal
from entitlements.models.windows import UsageWindowCounter

__all__ = [
    "AllocationCounter",
    "AutoRecharge",
    "CreditLedgerEntry",
    "CreditLot",
    "EntitlementSettings",
    "EntitlementState",
    "Entity",
    "EntityCounter",
    "EntityWindowCounter",
    "Grant",
    "Hold",
    "PlanCreditSlice",
    "PlanPeriod",
    "Purchase",
    "Revocation",
    "SpendCap",
    "SubscriptionSource",
    "SubscriptionVersion",
    "ThresholdCrossing",
    "UsageCorrection",
    "UsageCounter",
    "UsageEvent",
    "UsageEventKey",
    "UsageMeterTotal",
    "UsagePartitionDrop",
    "UsageThreshold",
    "UsageWindowCounter",
    "payment_disputed",
]
