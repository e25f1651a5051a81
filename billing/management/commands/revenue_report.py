"""`manage.py revenue_report --project slug [--month YYYY-MM] [--months N] [--format table|csv]`.

Brings the project's revenue schedules up to the mirror, then prints each month's revenue per currency and product:
billed, given back (refunds and credit notes), recognised, then the deferred revenue and the prepaid credits'
liability, each at the month's opening, added, recognised and at its closing. Amounts are in minor units;
currencies are never added together.
"""

import csv
from datetime import UTC, date, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.services.revenue_report import FIGURES, Figures, month_start, months_before, revenue_months
from projects.models import Project

COLUMNS = FIGURES


def _values(figures: Figures) -> list[int]:
    return [getattr(figures, name) for name in COLUMNS]


class Command(BaseCommand):
    help = "Revenue recognised and deferred, per month, currency and product, in minor units."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="The project's slug.")
        parser.add_argument("--month", help="The (last) month, UTC (YYYY-MM); default: this month.")
        parser.add_argument("--months", type=int, default=1, help="How many months, ending with --month.")
        parser.add_argument("--format", choices=["table", "csv"], default="table")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project {options['project']!r}.")
        try:
            last = (
                datetime.strptime(options["month"], "%Y-%m").replace(tzinfo=UTC).date()
                if options["month"]
                else month_start(datetime.now(UTC).date())
            )
        except ValueError as exc:
            raise CommandError("--month must be YYYY-MM.") from exc
        if options["months"] < 1:
            raise CommandError("--months must be 1 or more.")
        reports = revenue_months(project, months_before(last, options["months"]), last)
        if options["format"] == "csv":
            writer = csv.writer(self.stdout, lineterminator="\n")
            writer.writerow(["month", "currency", "product", "product_name", *COLUMNS])
            for report in reports:
                for currency in report.currencies:
                    writer.writerow([f"{report.month:%Y-%m}", currency.currency, "", "", *_values(currency)])
                    for product in currency.products:
                        writer.writerow(
                            [
                                f"{report.month:%Y-%m}",
                                currency.currency,
                                product.product or "",
                                product.name,
                                *_values(product),
                            ]
                        )
            return
        for report in reports:
            self._table(project, report.month, report.currencies)

    def _table(self, project: Project, month: date, currencies: list[Any]) -> None:
        self.stdout.write(f"{project.slug}, {month:%Y-%m}:")
        if not currencies:
            self.stdout.write("  nothing billed, deferred or prepaid.")
        for currency in currencies:
            self.stdout.write(
                f"  {currency.currency + ':':<34}{'billed':>12}{'refunds':>12}{'recognised':>12}"
            )
            for row in [*currency.products, currency]:
                label = "total" if row is currency else (row.name or row.product or "(no product)")[:32]
                self.stdout.write(f"    {label:<32}{row.billed:>12}{row.refunds:>12}{row.recognised:>12}")
            for balance, title in (("deferred", "deferred revenue"), ("credits", "prepaid credits")):
                opening, added, recognised, closing = (
                    getattr(currency, f"{balance}_{name}")
                    for name in ("opening", "added", "recognised", "closing")
                )
                self.stdout.write(
                    f"    {title + ':':<18}opening {opening}, added {added}, recognised {recognised}, closing {closing}"
                )
