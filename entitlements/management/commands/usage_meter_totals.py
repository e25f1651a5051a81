"""`manage.py usage_meter_totals [--project SLUG] [--period-start TIME] [--fix]`.

Recomputes the period totals of usage by Stripe-meter status (what `GET /usage` answers `billed_quantity` and
`pending_quantity` from) from the usage events, of every period or of the periods starting at `--period-start`,
of every project or of one, and prints each total that drifted (stored, then computed). Without `--fix` it changes
nothing and exits non-zero when something drifted; with `--fix` it writes the computed totals.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from entitlements.services.meter_totals import meter_totals_rebuild
from projects.models import Project


class Command(BaseCommand):
    help = "Check (and with --fix repair) the usage meter totals against the usage events."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", help="A project slug (default: every project).")
        parser.add_argument("--period-start", help="Only the periods starting at this ISO 8601 time.")
        parser.add_argument("--fix", action="store_true", help="Write the totals computed from the events.")

    def handle(self, *args: Any, **options: Any) -> None:
        project_id = None
        if options["project"]:
            project = Project.objects.filter(slug=options["project"]).first()
            if project is None:
                raise CommandError(f"No project {options['project']!r}.")
            project_id = project.pk
        period_start = None
        if options["period_start"]:
            period_start = parse_datetime(options["period_start"])
            if period_start is None or period_start.tzinfo is None:
                raise CommandError("--period-start: an ISO 8601 time with its offset (2026-03-01T00:00:00Z).")
        drifts = meter_totals_rebuild(period_start=period_start, project_id=project_id, fix=options["fix"])
        for drift in drifts:
            self.stdout.write(
                f"{drift.project_id} {drift.customer_id} {drift.feature_id} {drift.period_start.isoformat()} "
                f"{drift.meter_status}: stored {drift.stored}, computed {drift.computed}"
            )
        if not drifts:
            self.stdout.write("The usage meter totals match the usage events.")
        elif options["fix"]:
            self.stdout.write(f"{len(drifts)} total(s) drifted; written as computed from the events.")
        else:
            raise CommandError(
                f"{len(drifts)} total(s) drifted from the usage events (run with --fix to repair)."
            )
