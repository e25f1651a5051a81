"""What every check of a reconciliation run shares: comparing a local object with Stripe's (`check`), recording
each difference as drift, and, with `fix`, repairing it and recording the drift fixed or failed after comparing
again against the same Stripe state. The per-resource checks build on `_Recording`.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.utils import timezone

from billing.models import Drift, ReconciliationRun
from core.errors import ApiError
from projects.models import Project

Expected = dict[str, tuple[Any, Any]]  # field → (local, stripe)


def _differences(pairs: Expected) -> Expected:
    return {name: pair for name, pair in pairs.items() if pair[0] != pair[1]}


class _Recording:
    """A run's state and how it records drift."""

    def __init__(self, run: ReconciliationRun, *, fix: bool, since: datetime | None) -> None:
        self.run = run
        self.fix = fix and not run.dry_run
        self.since = since
        self.marker = 0  # Stripe's time as of this account's read (see the package docstring)
        self.clock_times: dict[str, int] = {}  # and each of its test clocks' time, read with it

    def as_of(self, stripe_object: dict[str, Any]) -> int:
        """Stripe's time as of this account's read for one object read after it: its customer's test clock's
        (read with the marker), the account's otherwise. An object of a clock made since carries no earlier
        read: 0, so no later event of it is taken for older."""
        test_clock = stripe_object.get("test_clock")
        if isinstance(test_clock, dict):
            test_clock = test_clock.get("id")
        if not test_clock:
            return self.marker
        return self.clock_times.get(str(test_clock), 0)

    def check(
        self,
        project: Project,
        object_type: str,
        stripe_id: str,
        *,
        local_id: str,
        compare: Callable[[], Expected | None],
        repair: Callable[[], None],
    ) -> None:
        """Compares one object (None from `compare`: missing locally); with fix, repairs it, compares again
        against the same Stripe state, and records each drift fixed or failed."""
        before = compare()
        if before is not None and not _differences(before):
            return
        drifts = self._record(project, object_type, stripe_id, local_id, before)
        if not self.fix:
            return
        try:
            repair()
        except ApiError as exc:
            self._settle(drifts, failed=f"repair failed: {exc.code}: {exc.message}")
            return
        after = compare()
        remaining = _differences(after) if after is not None else {"": ("missing", "present")}
        self._settle(
            drifts,
            failed="; ".join(
                f"{name or object_type}: local={pair[0]!r} stripe={pair[1]!r}"
                for name, pair in remaining.items()
            )
            if remaining
            else "",
        )

    def _record(
        self, project: Project, object_type: str, stripe_id: str, local_id: str, before: Expected | None
    ) -> list[Drift]:
        if before is None:
            return [self.drift(project, Drift.Kind.MISSING_LOCALLY, object_type, stripe_id)]
        return [
            self.drift(
                project,
                Drift.Kind.MISMATCH,
                object_type,
                stripe_id,
                local_id=local_id,
                field=name,
                local=pair[0],
                stripe=pair[1],
            )
            for name, pair in _differences(before).items()
        ]

    def drift(
        self,
        project: Project,
        kind: str,
        object_type: str,
        stripe_id: str,
        *,
        local_id: str = "",
        field: str = "",
        local: Any = "",
        stripe: Any = "",
    ) -> Drift:
        self.run.drift_count += 1
        return Drift.objects.create(
            run=self.run,
            project=project,
            kind=kind,
            object_type=object_type,
            stripe_id=stripe_id,
            local_id=local_id,
            field=field,
            local_value=str(local)[:255],
            stripe_value=str(stripe)[:255],
        )

    def _settle(self, drifts: list[Drift], *, failed: str) -> None:
        for drift in drifts:
            drift.status = Drift.Status.FAILED if failed else Drift.Status.FIXED
            drift.detail = failed
            drift.resolved_at = None if failed else timezone.now()
            drift.save(update_fields=["status", "detail", "resolved_at"])
            if not failed:
                self.run.fixed_count += 1

    def _created(self) -> dict[str, Any]:
        return {"created": {"gte": int(self.since.timestamp())}} if self.since else {}
