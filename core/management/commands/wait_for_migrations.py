"""`manage.py wait_for_migrations [--timeout 300]`: returns once the database has every migration applied.

Workers and beat start with it (`wait_for_migrations && exec celery …`): a task that ran against a half-migrated
schema would fail on a missing column, or worse, write under the old one. It never migrates itself — web's
`migrate_locked` does — so it needs no lock and works the same under compose, systemd or Kubernetes. A database
that is not reachable yet counts as not migrated. Exits 1 when the timeout passes first.
"""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor


def unapplied_migrations(alias: str = DEFAULT_DB_ALIAS) -> list[str]:
    """`app.name` of every migration not applied on the database yet, in the order migrate would apply them."""
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


class Command(BaseCommand):
    help = "Wait until the database has no unapplied migrations (exit 1 after --timeout seconds)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait at most (300)")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between checks (1)")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"]
        deadline = time.monotonic() + options["timeout"]
        said = ""  # the kind of wait last reported: a line when it changes, not one per check
        while True:
            try:
                pending = unapplied_migrations(alias)
                kind, state = "pending", ""
            except DatabaseError as exc:
                pending = ["?"]
                kind, state = "unreachable", f"the database is not reachable ({type(exc).__name__})"
            finally:
                # A fresh connection per check: one broken while the database restarts must not stay cached.
                connections[alias].close()
            if not pending:
                self.stdout.write("Migrations are applied.")
                return
            if kind == "pending":
                state = f"{len(pending)} unapplied migration(s), the first {pending[0]}"
            if kind != said:
                self.stdout.write(f"Waiting for migrations: {state}.")
                said = kind
            if time.monotonic() >= deadline:
                raise CommandError(f"Gave up after {options['timeout']:g} s: {state}.")
            time.sleep(options["interval"])
