"""`manage.py reconcile [--project slug] [--since ISO] [--fix] [--dry-run]`.

Exits non-zero when drift remains unfixed, so a scheduler or CI notices. A Stripe that does not answer at all is
said at once, with what to do, and no run is recorded: none started (the nightly task records its failed runs).
"""

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from billing.services.reconcile import reconcile
from core.errors import ApiError
from projects.models import Project
from stripe_gateway.gateway import gateway_for, platform_gateway


class Command(BaseCommand):
    help = "Compare local state with Stripe, record drift, and with --fix apply Stripe's state."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", help="A project slug (default: every project).")
        parser.add_argument("--since", help="Only Stripe objects created since this ISO 8601 time.")
        parser.add_argument("--fix", action="store_true", help="Apply Stripe's state where it differs.")
        parser.add_argument("--dry-run", action="store_true", help="Report only, even with --fix.")

    def handle(self, *args: Any, **options: Any) -> None:
        project = None
        if options["project"]:
            project = Project.objects.filter(slug=options["project"]).first()
            if project is None:
                raise CommandError(f"No project {options['project']!r}.")
        since = None
        if options["since"]:
            try:
                since = datetime.fromisoformat(options["since"])
            except ValueError as exc:
                raise CommandError("--since must be an ISO 8601 time.") from exc
            if timezone.is_naive(since):
                since = timezone.make_aware(since, UTC)
        self._stripe_answers(project)
        run = reconcile(project=project, fix=options["fix"], dry_run=options["dry_run"], since=since)
        for drift in run.drifts.order_by("id"):
            detail = (
                f" {drift.field}: local={drift.local_value!r} stripe={drift.stripe_value!r}"
                if drift.field
                else ""
            )
            still = f" (still differs: {drift.detail})" if drift.detail else ""
            self.stdout.write(
                f"[{drift.status}] {drift.kind} {drift.object_type} {drift.stripe_id}{detail}{still}"
            )
        self.stdout.write(
            f"Run {run.pk}: {run.status}, {run.checked} checked, {run.drift_count} drift, {run.fixed_count} fixed."
        )
        if run.status == run.Status.FAILED:
            raise CommandError(f"Reconciliation failed: {run.error}")
        if run.drift_count > run.fixed_count:
            raise CommandError(f"{run.drift_count - run.fixed_count} drift item(s) remain unfixed.")

    @staticmethod
    def _stripe_answers(project: Project | None) -> None:
        """One read of Stripe (its clock) before a run is recorded, on the account of the project given (its own
        or the platform's; every project: the platform's): an address where nothing answers (the emulator
        stopped, or on another port than STRIPE_API_BASE says) is a set-up to fix, not a failed run."""
        try:
            (gateway_for(project) if project is not None else platform_gateway()).clock()
        except ApiError as exc:
            if exc.code != "provider_unavailable":
                return  # Stripe answered: the run records whatever it refuses
            base = settings.STRIPE_API_BASE
            remedy = (
                "Start Stripe's emulator (`make demo` starts one), or set STRIPE_API_BASE to where it runs."
                if base
                else "Check this host's connection to Stripe, and try again."
            )
            raise CommandError(
                f"Stripe's API at {base or 'https://api.stripe.com'} did not answer ({exc.code}): nothing was "
                f"reconciled and no run recorded. {remedy}"
            ) from exc
