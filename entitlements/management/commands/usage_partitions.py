"""`manage.py usage_partitions [--create-ahead N] [--drop-older-than MONTHS] [--dry-run]`.

Without options: lists the usage events' monthly partitions (PostgreSQL). `--create-ahead N` makes the current
month's and the N following; `--drop-older-than MONTHS` drops the months that ended more than MONTHS months before
the current one began, except those still holding usage of an open period or usage not reported to Stripe (each
kept month is named with why; the command then exits non-zero). `--dry-run` says what would happen and changes
nothing. On SQLite the table is not partitioned: the command says so and changes nothing (there is no option to
delete rows there).
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from core.actors import Actor
from entitlements.services.usage_partitions import (
    month_add,
    month_of,
    partitioned,
    usage_partitions_create_ahead,
    usage_partitions_drop,
    usage_partitions_list,
)


class Command(BaseCommand):
    help = "List, make ahead and drop (retention) the monthly partitions of usage events (PostgreSQL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--create-ahead", type=int, metavar="N", help="Make this month's partition and the N next ones."
        )
        parser.add_argument(
            "--drop-older-than",
            type=int,
            metavar="MONTHS",
            help="Drop the months that ended more than MONTHS (at least 1) months before this one began.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Say what would be done; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        ahead, older, dry_run = options["create_ahead"], options["drop_older_than"], options["dry_run"]
        if ahead is not None and ahead < 0:
            raise CommandError("--create-ahead must be 0 or more.")
        if older is not None and older < 1:
            raise CommandError("--drop-older-than must be at least 1 (the current month is never dropped).")
        if not partitioned():
            self.stdout.write(
                f"Usage events are partitioned by month on PostgreSQL only; this database ({connection.vendor}) "
                "keeps one plain table, so there is nothing to make or drop. Nothing was changed."
            )
            return
        if ahead is not None:
            if dry_run:
                existing = {month for month, _ in usage_partitions_list()}
                current = month_of(timezone.now())
                wanted = [month_add(current, n) for n in range(ahead + 1)]
                for month in (m for m in wanted if m not in existing):
                    self.stdout.write(f"would make {month:%Y-%m}")
            else:
                for month in usage_partitions_create_ahead(months_ahead=ahead):
                    self.stdout.write(f"made {month:%Y-%m}")
        refused = 0
        if older is not None:
            verdicts = usage_partitions_drop(
                older_than_months=older, actor=Actor.system("manage.py usage_partitions"), dry_run=dry_run
            )
            for verdict in verdicts:
                if verdict.droppable:
                    done = "would drop" if dry_run else "dropped"
                    keys = "" if dry_run else f" and {verdict.keys} key(s)"
                    self.stdout.write(
                        f"{done} {verdict.month:%Y-%m} ({verdict.table}: {verdict.events} event(s){keys})"
                    )
                else:
                    refused += 1
                    self.stdout.write(
                        f"kept {verdict.month:%Y-%m} ({verdict.table}): {'; '.join(verdict.refused)}"
                    )
            if not verdicts:
                self.stdout.write(f"No month ended more than {older} month(s) before this one.")
        if ahead is None and older is None:
            for month, table in usage_partitions_list():
                self.stdout.write(f"{month:%Y-%m} {table}")
        if dry_run:
            self.stdout.write("Dry run: nothing was changed.")
        elif refused:
            raise CommandError(f"{refused} month(s) kept: they may not be dropped yet (see above).")
