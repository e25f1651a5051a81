"""What one adoption run carries from step to step: the project and its Stripe account, the reads (paced under
the account's read limit and counted), the adoption point, what was adopted so far, and the report."""

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from billing.services.adoption_mapping import CustomerKey, Mapping
from billing.services.reconciliation_reader import _Reader
from catalog.models import Feature
from core.actors import Actor
from core.errors import RateLimited
from customers.models import Customer, TestClock
from projects.models import Project

# At most this many ids are listed per list of the report (the counts are complete).
REPORT_LIST_LIMIT = 100
# And at most this many lines of the diff.
REPORT_CHANGES_LIMIT = 2000


class CountingReader(_Reader):
    """The reconciliation's paced reader, counting every read it paces (each page of a list, each object)."""

    def __init__(self, account: str, gateway: Any) -> None:
        super().__init__(account, gateway)
        self.reads = 0

    def pace(self) -> None:
        super().pace()
        self.reads += 1

    def newest_event(self) -> dict[str, Any] | None:
        self.pace()
        return self.gateway.event_newest()

    def test_clocks(self) -> list[dict[str, Any]]:
        """The account's test clocks (test mode; none in live mode)."""
        self.pace()
        return self.gateway.test_clocks_list()


def paced(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Runs a mirror's apply, waiting out the read limiter when the apply's own Stripe read (a discount, a
    same-second re-fetch) finds it spent: the adoption shares the account's limit with the webhooks."""
    for _ in range(200):
        try:
            return call(*args, **kwargs)
        except RateLimited:
            time.sleep(0.05)
    return call(*args, **kwargs)


class Report:
    """Counts by kind and outcome, the lists of what was left out (ids, capped), and the diff's lines."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.lists: dict[str, list[Any]] = defaultdict(list)
        self.changes: list[str] = []
        self.changes_total = 0

    def count(self, kind: str, outcome: str, line: str = "") -> None:
        self.counts[kind][outcome] += 1
        if line and outcome not in ("unchanged",):
            self.changes_total += 1
            if len(self.changes) < REPORT_CHANGES_LIMIT:
                self.changes.append(line)

    def note(self, name: str, item: Any) -> None:
        if len(self.lists[name]) < REPORT_LIST_LIMIT:
            self.lists[name].append(item)

    def written(self) -> int:
        """How many objects were (or, in a dry run, would be) created or changed."""
        return sum(n for counts in self.counts.values() for outcome, n in counts.items() if outcome in WRITES)

    def as_json(self) -> dict[str, Any]:
        return {
            "counts": {kind: dict(sorted(counts.items())) for kind, counts in sorted(self.counts.items())},
            **dict(sorted(self.lists.items())),
            "changes": self.changes,
            "changes_total": self.changes_total,
            "nothing_to_do": self.written() == 0,
        }


WRITES = frozenset({"created", "updated", "linked"})


@dataclass
class Adoption:
    """One run's state."""

    project: Project
    actor: Actor
    reader: CountingReader
    mapping: Mapping
    customer_key: CustomerKey
    dry_run: bool
    marker: int = 0  # Stripe's time as the reads began (the adoption point)
    clock_times: dict[str, int] = field(default_factory=dict)
    # The account's test clocks as read at the adoption point (Stripe id → the clock).
    clocks: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: Report = field(default_factory=Report)
    # Stripe customer id → the project's customer (None: one a dry run would create).
    customers: dict[str, Customer | None] = field(default_factory=dict)
    # Stripe test clock id → the project's row (None: a dry run's to create, or one made after the point).
    test_clocks: dict[str, TestClock | None] = field(default_factory=dict)
    prices: set[str] = field(default_factory=set)  # the Stripe prices that are (or would be) in the catalog
    # The mapped products' Stripe prices the catalog cannot hold as they are → what the operator can do.
    skipped_prices: dict[str, str] = field(default_factory=dict)
    # The account's billing meters (read once, when a metered price is met), and each mapped meter's feature.
    stripe_meters: dict[str, dict[str, Any]] | None = None
    meter_features: dict[str, tuple[Feature | None, str]] = field(default_factory=dict)
    products: set[str] = field(default_factory=set)  # the Stripe products mapped (or that would be)
    # The Stripe ids of what another project owns (skipped, with what belongs to them): `adoption_ownership`.
    held_elsewhere: set[str] = field(default_factory=set)

    @property
    def account(self) -> str:
        return self.reader.account

    def as_of(self, stripe_object: dict[str, Any]) -> int:
        """Stripe's time as of the reads for one object: its customer's test clock's, else the account's."""
        test_clock = stripe_object.get("test_clock")
        if isinstance(test_clock, dict):
            test_clock = test_clock.get("id")
        if not test_clock:
            return self.marker
        return self.clock_times.get(str(test_clock), 0)
