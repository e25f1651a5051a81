"""`manage.py journal_export --project slug (--month YYYY-MM | --start ISO --end ISO) [--format csv|parquet]
[--output FILE]`.

Writes the project's journal lines of the entries effective in the period as CSV (to standard output, or FILE) or
as Parquet (to FILE; `billing.services.journal_parquet`): one row per line, the debit or the credit in major units,
each account with its number in the chart (docs/operations.md, "The journal"). Nothing is written to the database.
"""

import csv
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.management.periods import period
from billing.services.journal import EXPORT_COLUMNS, journal_rows
from billing.services.journal_parquet import journal_parquet
from projects.models import Project


class Command(BaseCommand):
    help = "Export a project's journal of a month (or any period) as CSV, in the chart of accounts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument("--month", help="A calendar month, UTC (YYYY-MM).")
        parser.add_argument("--start", help="The period's start (ISO 8601, included).")
        parser.add_argument("--end", help="The period's end (ISO 8601, excluded).")
        parser.add_argument(
            "--format", choices=("csv", "parquet"), default="csv", help="CSV (default) or Parquet."
        )
        parser.add_argument("--output", help="A file to write (default: standard output; Parquet needs one).")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project {options['project']!r}.")
        start, end = period(options)
        if options["format"] == "parquet":
            if not options["output"]:
                raise CommandError("--format parquet writes a file: give --output.")
            lines = journal_parquet(project.pk, start=start, end=end, path=options["output"])
            sys.stderr.write(f"Wrote {lines} journal line(s) of {project.slug} to {options['output']}.\n")
            return
        out = open(options["output"], "w", newline="") if options["output"] else None  # noqa: SIM115
        try:
            writer = csv.writer(out or self.stdout, lineterminator="\n")
            writer.writerow(EXPORT_COLUMNS)
            for row in journal_rows(project.pk, start=start, end=end):
                writer.writerow(row)
        finally:
            if out is not None:
                out.close()
        if out is not None:
            sys.stderr.write(f"Wrote the journal of {project.slug} to {options['output']}.\n")
