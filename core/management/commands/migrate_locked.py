"""`manage.py migrate_locked`: `migrate` under a PostgreSQL advisory lock, so replicas can start together.

The first replica migrates while the others wait on the lock, then find nothing left to do. The others ask for
the lock in turns (`pg_try_advisory_lock` twice a second) instead of blocking in `pg_advisory_lock`: a session
blocked inside a statement holds a snapshot, and an index the migrating replica builds `CONCURRENTLY` waits for
every older snapshot to end — so a blocked waiter and the migration would wait for each other.
"""

import time
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

# An arbitrary constant shared by every Tollgate process ("tollgate" in ASCII, truncated to a bigint).
_LOCK_ID = 0x746F6C6C67617465
_RETRY_SECONDS = 0.5


class Command(BaseCommand):
    help = "Run migrations while holding a PostgreSQL advisory lock (plain migrate on other databases)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--noinput", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            call_command("migrate", interactive=False, verbosity=options["verbosity"])
            return
        with connection.cursor() as cursor:
            self.stdout.write("Waiting for the migration lock…")
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_ID])
                if cursor.fetchone()[0]:
                    break
                time.sleep(_RETRY_SECONDS)
            try:
                call_command("migrate", interactive=False, verbosity=options["verbosity"])
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_ID])
