"""How much of a credit purchase has been used, day by day: prepaid credits are a liability, recognised as revenue
as they are spent or expire (`billing.services.recognition`).

A purchase's credits are the lots it granted. Used are the units spent (consumed, held and not given back) and
those an entity's removal forfeited, on the day their ledger entry was written; and, on the day a lot expires, what
it still had. Units taken back (a refund, a lost dispute) are not used: the money of a refund is given back by the
refund's own schedule. Promotional credits (grants) and a plan's credits are not bought here: they are never a
liability of their own.
"""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date

from django.db.models import Sum
from django.db.models.functions import TruncDate

from entitlements.models import CreditLedgerEntry, CreditLot

Entry = CreditLedgerEntry.Type
# The ledger's movements of units used up (signed as the ledger signs them: − taken, + given back).
USED = (Entry.CONSUME, Entry.HOLD, Entry.HOLD_RETURN, Entry.FORFEITED, Entry.CORRECTION)


@dataclass
class CreditUsage:
    """A purchase's credits: the units granted, and the units used by the end of each day they changed."""

    units: int = 0
    days: list[date] = field(default_factory=list)
    used: list[int] = field(default_factory=list)

    def used_by(self, day: date) -> int:
        index = bisect_right(self.days, day)
        return self.used[index - 1] if index else 0


def credit_usage(purchase_ids: Iterable[str]) -> dict[str, CreditUsage]:
    """The usage of each purchase's credits (purchases that granted none are left out)."""
    lots = list(
        CreditLot.objects.filter(purchase_id__in=list(purchase_ids)).values_list(
            "pk", "purchase_id", "amount", "expires_at"
        )
    )
    if not lots:
        return {}
    by_day: dict[str, dict[date, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )  # lot → day → [used, all]
    entries = (
        CreditLedgerEntry.objects.filter(lot_id__in=[lot for lot, *_ in lots])
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values_list("lot_id", "day", "type")
        .annotate(total=Sum("amount"))
    )
    for lot, day, kind, total in entries:
        if kind in USED:
            by_day[lot][day][0] -= total
        by_day[lot][day][1] += total
    moves: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))  # purchase → day → units used
    usage: dict[str, CreditUsage] = {}
    for lot, purchase, amount, expires_at in lots:
        usage.setdefault(purchase, CreditUsage()).units += amount
        expiry = expires_at.astimezone(UTC).date() if expires_at is not None else None
        remaining = 0
        for day in sorted(by_day[lot]):
            used, moved = by_day[lot][day]
            if expiry is not None and day > expiry:
                break
            moves[purchase][day] += used
            remaining += moved
        if expiry is not None and remaining > 0:
            moves[purchase][expiry] += remaining  # what it still had when it expired
    for purchase, days in moves.items():
        total = 0
        for day in sorted(days):
            total += days[day]
            usage[purchase].days.append(day)
            usage[purchase].used.append(total)
    return usage
