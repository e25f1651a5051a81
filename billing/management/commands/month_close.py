"""`manage.py month_close --project slug --month YYYY-MM [--output-dir DIR] [--no-sync]`.

A month's close for finance, in one run, into four files of DIR named `<slug>-<YYYY-MM>-…`:

1. `tie-out.txt`: the month's money tied out with Stripe's balance transactions (`manage.py tie_out`; read from
   Stripe first unless --no-sync);
2. `revenue.csv`: revenue billed, given back and recognised, deferred revenue and prepaid credits, per currency and
   product (`manage.py revenue_report --format csv`);
3. `journal.csv`: the month's journal lines in the chart of accounts (`manage.py journal_export`), once the revenue
   recognised in the months ended is posted to it (`billing.services.journal_recognition`), and the same lines as
   `journal.parquet` (`manage.py journal_export --format parquet`).

Prints a summary per currency. Every file is written whatever the tie-out says; the command then exits non-zero
when the month does not tie out, so a close script stops before the books are handed over.
"""

import io
import time
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.management.periods import period
from billing.services.journal_parquet import journal_parquet
from billing.services.journal_recognition import journal_recognition
from billing.services.revenue_report import month_start, revenue_months
from projects.models import Project


class Command(BaseCommand):
    help = "Close a project's month: tie out with Stripe, then write the revenue report and the journal."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument("--month", required=True, help="A calendar month, UTC (YYYY-MM).")
        parser.add_argument("--output-dir", default=".", help="Where the files go (default: here).")
        parser.add_argument(
            "--no-sync",
            action="store_true",
            help="Tie out with the balance transactions already read from Stripe.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project {options['project']!r}.")
        start, end = period({"month": options["month"], "start": None, "end": None})
        month = options["month"]
        folder = Path(options["output_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        prefix = folder / f"{project.slug}-{month}"
        began = time.monotonic()

        tie_out = io.StringIO()
        sync = ["--no-sync"] if options["no_sync"] else []
        try:
            call_command("tie_out", "--project", project.slug, "--month", month, *sync, stdout=tie_out)
            untied = ""
        except CommandError as exc:
            untied = str(exc)
        Path(f"{prefix}-tie-out.txt").write_text(tie_out.getvalue())

        with open(f"{prefix}-revenue.csv", "w", newline="") as revenue:
            call_command(
                "revenue_report",
                "--project",
                project.slug,
                "--month",
                month,
                "--format",
                "csv",
                stdout=revenue,
            )
        # the revenue recognised in the months ended, posted to the journal before it is exported
        recognised = journal_recognition(project)
        with open(f"{prefix}-journal.csv", "w", newline="") as journal:
            call_command("journal_export", "--project", project.slug, "--month", month, stdout=journal)
        journal_parquet(project.pk, start=start, end=end, path=f"{prefix}-journal.parquet")

        self.stdout.write(f"{project.slug}, {month}:")
        self.stdout.write(f"  tie-out: {untied or 'tied out'} ({prefix}-tie-out.txt)")
        [report] = revenue_months(project, month_start(start.date()), month_start(start.date()), sync=False)
        for row in report.currencies:
            self.stdout.write(
                f"  {row.currency}: billed {row.billed}, given back {row.refunds}, recognised {row.recognised}, "
                f"deferred {row.deferred_closing}, prepaid credits {row.credits_closing} at the month's end"
            )
        if not report.currencies:
            self.stdout.write("  nothing billed, deferred or prepaid.")
        with open(f"{prefix}-journal.csv") as journal:
            lines = sum(1 for _ in journal) - 1  # its header aside
        self.stdout.write(
            f"  revenue: {prefix}-revenue.csv; journal: {lines} line(s), {prefix}-journal.csv and .parquet"
        )
        if recognised:
            entries = "entry" if recognised == 1 else "entries"
            self.stdout.write(f"  revenue recognised: {recognised} journal {entries} posted")
        self.stdout.write(f"  in {time.monotonic() - began:.1f} s")
        if untied:
            raise CommandError(f"Not closed: {untied}")
        self.stdout.write("Closed.")
