"""A reconciliation run: `reconcile` groups the projects by the Stripe account they use, reads each account
through one paced reader, runs every check on it, supersedes drift that a complete run no longer finds, and
records the run (and, when an operator started it, its audit row).
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.models import Drift, ReconciliationRun
from billing.services.reconciliation_balance import _BalanceChecks
from billing.services.reconciliation_invoices import _InvoiceChecks
from billing.services.reconciliation_payments import _PaymentChecks
from billing.services.reconciliation_reader import _Reader
from billing.services.reconciliation_subscriptions import _SubscriptionChecks
from core.actors import Actor
from core.audit import audit_record
from core.errors import ApiError
from projects.models import Project
from stripe_gateway.gateway import (
    PLATFORM_ACCOUNT,
    StripeGateway,
    gateway_for,
    platform_gateway,
    stripe_account_of,
)

logger = logging.getLogger(__name__)


class _Run(_SubscriptionChecks, _InvoiceChecks, _PaymentChecks, _BalanceChecks):
    """One run: every check, and what closes it."""

    def supersede(self, projects: list[Project]) -> None:
        """A complete run is the truth now: drift that earlier runs left open (a dry run's, or repaired since
        by events or by this run) and that this run does not leave open is resolved."""
        if self.since is not None:
            return
        found = {
            (d.object_type, d.stripe_id, d.field)
            for d in Drift.objects.filter(
                run=self.run, status__in=(Drift.Status.OPEN, Drift.Status.FAILED)
            ).only("object_type", "stripe_id", "field")
        }
        stale = Drift.objects.filter(
            project__in=projects, status__in=(Drift.Status.OPEN, Drift.Status.FAILED)
        ).exclude(run=self.run)
        now = timezone.now()
        for drift in stale:
            if (drift.object_type, drift.stripe_id, drift.field) not in found:
                drift.status = Drift.Status.RESOLVED
                drift.resolved_at = now
                drift.save(update_fields=["status", "resolved_at"])


def reconcile(
    *,
    project: Project | None = None,
    fix: bool = False,
    dry_run: bool = False,
    since: datetime | None = None,
    actor: Actor | None = None,
    reason: str = "",
) -> ReconciliationRun:
    """Runs one reconciliation (of one project, or of all) and returns its record."""
    run = ReconciliationRun.objects.create(project=project, fix=fix, dry_run=dry_run)
    state = _Run(run, fix=fix, since=since)
    projects = [project] if project is not None else list(Project.objects.all())
    accounts: dict[str, tuple[StripeGateway, list[Project]]] = {}
    for each in projects:
        account = stripe_account_of(each)
        gateway = gateway_for(each) if account != PLATFORM_ACCOUNT else platform_gateway()
        accounts.setdefault(account, (gateway, []))[1].append(each)
    try:
        for account, (gateway, members) in accounts.items():
            reader = _Reader(account, gateway)
            state.marker = reader.stripe_now()
            state.clock_times = reader.test_clocks_now()
            state.subscriptions(reader, members)
            state.invoices(reader, members)
            state.open_payments(reader, members)
            state.charges(reader, members)
            state.refunds(reader, members)
            state.disputes(reader, members)
            state.balance(reader, members)
        run.status = ReconciliationRun.Status.COMPLETED
        state.supersede(projects)
    except ApiError as exc:  # Stripe unavailable: the run is recorded as failed, the next one starts over
        run.status = ReconciliationRun.Status.FAILED
        run.error = f"{exc.code}: {exc.message}"
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
        if actor is not None:
            audit_record(
                actor=actor,
                action="reconciliation.run",
                target=run,
                project=project,
                reason=reason,
                after={
                    "fix": run.fix,
                    "drift": run.drift_count,
                    "fixed": run.fixed_count,
                    "status": run.status,
                },
            )
    return run
