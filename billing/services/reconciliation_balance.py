"""The reconciliation's money check: a run reads the account's balance transactions (`balance_sync`) after the
object checks have compared (and, with fix, repaired) charges, refunds and disputes, then ties each project's
money out with Stripe's (`tie_out`) and records every difference left as drift of a `balance_transaction`.

A difference is not repaired here: the money moves only through the objects, which the checks before it repair.
One left after a run with fix is money the objects cannot explain (a charge Tollgate has no payment of, say),
recorded open for an operator.

Before comparing, a run that may write posts the journal of every movement whose entries differ from its row
(`journal_repair`: rows written before the journal existed, or around its writers), each recorded as drift of a
`journal` movement, fixed: after an upgrade, once per movement; after that, a writer that missed one.
"""

from datetime import UTC, datetime

from django.utils import timezone

from billing.models import Drift
from billing.services.journal import journal_repair
from billing.services.reconciliation_reader import _Reader
from billing.services.reconciliation_recording import _Recording
from billing.services.tie_out import Difference, balance_sync, tie_out
from projects.models import Project

_EVER = datetime(1970, 1, 1, tzinfo=UTC)


def _kind(difference: Difference) -> str:
    if difference.tollgate == 0:
        return Drift.Kind.MISSING_LOCALLY
    return Drift.Kind.MISSING_IN_STRIPE if difference.stripe == 0 else Drift.Kind.MISMATCH


class _BalanceChecks(_Recording):
    """The tie-out of each project's money with Stripe's balance transactions."""

    def balance(self, reader: _Reader, projects: list[Project]) -> None:
        balance_sync(reader, projects, since=self.since)
        end = timezone.now()
        for project in projects:
            if not self.run.dry_run:  # the journal of rows written around its writers (an upgrade's backfill)
                for kind, source in journal_repair(project.pk):
                    drift = self.drift(project, Drift.Kind.MISSING_LOCALLY, "journal", source, field=kind)
                    self._settle([drift], failed="")  # posted now: recorded as drift fixed
            for result in tie_out(project, start=self.since or _EVER, end=end).values():
                self.run.checked += 1
                for difference in result.differences:
                    self.drift(
                        project,
                        _kind(difference),
                        "balance_transaction",
                        difference.source,
                        field=f"{difference.category} ({difference.currency})",
                        local=difference.tollgate,
                        stripe=difference.stripe,
                    )
