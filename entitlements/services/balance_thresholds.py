"""A credits balance going down: the customer's own balance thresholds (`UsageThreshold` on a credits feature: a
number of credits, or a percent of the credits granted in the lots still valid) announced as
`credits.threshold_reached` when a spend or a hold takes the balance from above one to or below it, and the
auto-recharge started (`services.recharge.recharge_start`). Both run in the spend's transaction, under the lots'
row locks, so concurrent spends see the balance one after the other.

A threshold fires once per funding: the crossing is keyed by the newest lot's creation (`ThresholdCrossing`), so
a hold given back and spent again announces nothing new, and credits granted anew re-arm it.
"""

import math

from django.db.models import Max
from django.db.models.functions import Coalesce

from entitlements.models import CreditLot, UsageThreshold
from entitlements.services.counters import crossing_insert
from entitlements.services.recharge import recharge_start
from entitlements.snapshot import FeatureEntry
from events.services.record import event_record
from projects.models import Project


def balance_mark(kind: str, value: int, granted: int) -> int:
    """The balance a threshold stands at: `value` credits, or `value` % of the credits granted."""
    return value if kind == UsageThreshold.Kind.QUANTITY else math.floor(granted * value / 100)


def balance_fell(
    *,
    project: Project,
    customer_id: str,
    external_id: str,
    feature_key: str,
    entry: FeatureEntry,
    before: int,
    after: int,
    granted: int,
) -> None:
    """The balance went from `before` to `after` (`granted`: the credits of the lots still valid): announces
    the thresholds passed and starts the auto-recharge when it is due."""
    crossed = [
        (threshold_id, kind, value, mark)
        for threshold_id, kind, value in entry.get("thresholds", [])
        if before > (mark := balance_mark(kind, value, granted)) >= after
    ]
    if crossed:
        # The account's newest funding: a lot granted, or returned to it by an entity's removal
        funded = CreditLot.objects.filter(
            CreditLot.owned_by(""), customer_id=customer_id, feature_id=entry["id"]
        ).aggregate(newest=Max(Coalesce("returned_at", "created_at")))["newest"]
        for threshold_id, kind, value, mark in crossed:
            if funded is None or not crossing_insert(
                project.pk, customer_id, entry["id"], funded, threshold_id
            ):
                continue
            event_record(
                project=project,
                type="credits.threshold_reached",
                data_object={
                    "customer": external_id,
                    "feature": feature_key,
                    "threshold_id": threshold_id,
                    "percent": value if kind == UsageThreshold.Kind.PERCENT else None,
                    "units": mark,
                    "balance": after,
                },
            )
    below = entry.get("recharge_below")
    if below is not None and after <= below:
        recharge_start(customer_id=customer_id, feature_id=entry["id"], balance=after)
