"""`manage.py tie_out --project slug [--month YYYY-MM | --start ISO --end ISO] [--no-sync]`.

Reads the project's Stripe account's balance transactions (unless --no-sync), then prints, per currency, the
period's money as Stripe counted it (gross by category, fees, net) beside Tollgate's, and every movement where they
differ. Exits non-zero when they do not tie out, so a month's close (or a scheduler) notices.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.management.periods import period
from billing.services.reconciliation_reader import _Reader
from billing.services.tie_out import FIGURES, balance_sync, tie_out
from core.errors import ApiError
from projects.models import Project
from stripe_gateway.gateway import gateway_for, stripe_account_of


class Command(BaseCommand):
    help = "Tie a project's money out with Stripe's balance transactions for a month (or any period), per currency."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument("--month", help="A calendar month, UTC (YYYY-MM).")
        parser.add_argument("--start", help="The period's start (ISO 8601, included).")
        parser.add_argument("--end", help="The period's end (ISO 8601, excluded).")
        parser.add_argument(
            "--no-sync", action="store_true", help="Use the balance transactions already read from Stripe."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project {options['project']!r}.")
        start, end = period(options)
        if not options["no_sync"]:
            reader = _Reader(stripe_account_of(project), gateway_for(project))
            try:
                stored = balance_sync(reader, [project])
            except ApiError as exc:
                raise CommandError(f"Stripe did not answer ({exc.code}): {exc.message}") from exc
            self.stdout.write(f"Read {stored} balance transaction(s) of {project.slug} from Stripe.")
        results = tie_out(project, start=start, end=end)
        self.stdout.write(f"{project.slug}, {start.isoformat()} to {end.isoformat()} (end excluded):")
        if not results:
            self.stdout.write("  no money moved.")
        for result in results.values():
            held = result.tollgate
            self.stdout.write(f"  {result.currency}:  {'':16} {'Stripe':>12} {'Tollgate':>12}")
            for name in FIGURES:
                mine = f" {held[name]:>12}" if name in held else ""
                self.stdout.write(f"    {name:<18} {result.stripe[name]:>12}{mine}")
            for d in result.differences:
                self.stdout.write(
                    f"    differs: {d.category} {d.source}: Tollgate {d.tollgate}, Stripe {d.stripe}"
                )
        untied = sum(len(result.differences) for result in results.values())
        if untied:
            raise CommandError(f"Not tied out: {untied} movement(s) differ.")
        self.stdout.write("Tied out.")
