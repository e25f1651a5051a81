"""The fair claim: which stored work a free worker takes next, picked in SQL, shared by Stripe events and outbound
deliveries.

The work is rows already (a stored Stripe event, a delivery), each of a *group* (the project an event is applied
for, the endpoint a delivery goes to). A worker that is free asks for one row:

- due (the caller's condition), and not among the ones it was just turned away from (`skip`);
- of the group holding the fewest running ones (the caller says what running is: events `processing`, deliveries
  being sent), so a group with a backlog yields to any other group's due work at the next free worker;
- among those, the oldest;
- with `cap`, only of a group holding fewer than `cap` running ones (a slow endpoint never holds every worker);
- claimed `FOR UPDATE SKIP LOCKED` (PostgreSQL; `fair_claim`): two workers asking at once never get the same
  row. A caller whose work has a lock of its own (a Stripe event's key: its advisory lock) picks without one
  (`fair_pick`: a row lock there would be a write, dropped as the statement ends).

Celery only rings the bell (a task means "there is work"); the schedule is the table. There is no place to take
or give back and nothing to lease: a worker that dies leaves its rows running, and the caller's own rule (an
event's key lock, a delivery's `sending_until`) makes them due again.

Written out in SQL because the ORM cannot say "join the per-group counts once, then lock the first row": a
correlated count per candidate row costs a read per due row, and a backlog is many rows.
"""

import os
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from core.locks import lock_for_transaction

# A worker woken by a bell takes work for at most this long, then rings again for what is still due and ends (its
# process goes back to the pool: a task that never ends would never let a worker restart).
RUN_SECONDS = 30.0
# A sweep (or a batch of new work) rings at most this many bells at once: each wakes a worker that then runs until
# nothing is due.
BELLS = 8

# How many processes the worker running this code has (its --concurrency), set when a Celery worker starts
# (`config.celery`); a web process or command: the host's CPUs.
_runners: int | None = None


def runners_set(count: int) -> None:
    global _runners
    _runners = count


def runners() -> int:
    """The processes of the worker this code runs in (`--concurrency`), else the host's CPUs."""
    return _runners or os.cpu_count() or 1


@dataclass(frozen=True)
class FairClaim:
    """One kind of stored work. SQL fragments name the table's columns; `due` and `running` may hold %s
    placeholders (their values are passed to `fair_pick`)."""

    table: str
    group: str  # the column naming the group (tenant, endpoint)
    due: str  # condition on a row that may be taken (columns qualified with `w.`)
    running: str  # condition on a row being worked on (columns unqualified)
    running_count: str  # how a group's running work is counted: "COUNT(*)", "COUNT(DISTINCT ordering_key)"
    oldest: str  # the order among a group's due rows (columns qualified with `w.`)

    # A CTE the `due` condition may read (`held`), computed once per statement (%s placeholders first).
    with_held: str = ""

    def pick_sql(self, *, columns: str, skip_column: str, skips: int, capped: bool, lock: bool = True) -> str:
        skip = f" AND w.{skip_column} NOT IN ({', '.join(['%s'] * skips)})" if skips else ""
        cap = " AND COALESCE(r.n, 0) < %s" if capped else ""
        locked = lock and connection.features.has_select_for_update_skip_locked
        lock_clause = " FOR UPDATE OF w SKIP LOCKED" if locked else ""
        held = f"held AS MATERIALIZED ({self.with_held}), " if self.with_held else ""
        return (
            f"WITH {held}running AS (SELECT {self.group} AS grp, {self.running_count} AS n FROM {self.table} "  # noqa: S608 (names from the models)
            f"WHERE {self.running} GROUP BY {self.group}) "
            f"SELECT {columns} FROM {self.table} w LEFT JOIN running r ON r.grp = w.{self.group} "
            f"WHERE {self.due}{skip}{cap} ORDER BY COALESCE(r.n, 0), {self.oldest} LIMIT 1{lock_clause}"
        )


def fair_pick(
    claim: FairClaim,
    *,
    columns: str,
    due_params: list[Any],
    running_params: list[Any],
    held_params: list[Any] | None = None,
    skip_column: str = "id",
    skip: list[str] | None = None,
) -> tuple[Any, ...] | None:
    """The next row to work on (its `columns`), by the rule above; None when nothing is due. Read without a row
    lock: for a caller whose exclusivity is elsewhere (Stripe events: the key's advisory lock); a caller that
    takes the row itself uses `fair_claim`."""
    skip = skip or []
    sql = claim.pick_sql(columns=columns, skip_column=skip_column, skips=len(skip), capped=False, lock=False)
    params = [*(held_params or []), *running_params, *due_params, *skip]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fair_claim(
    claim: FairClaim,
    *,
    sets: str,
    set_params: list[Any],
    due_params: list[Any],
    running_params: list[Any],
    cap: int | None = None,
) -> str | None:
    """Picks the next row (`fair_pick`) and marks it taken (`sets`: `column = %s, …`) in one statement; its id,
    or None when nothing is due (or every due group is at its `cap`).

    With a `cap`, the claims of the table take turns (a transaction-level advisory lock, held for the one
    statement): two claims at once would each count the other's row as not running yet, and together pass the
    cap. A claim is one indexed statement, so the turns cost the workers little."""
    pick = claim.pick_sql(columns="w.id", skip_column="id", skips=0, capped=cap is not None)
    sql = f"UPDATE {claim.table} SET {sets} WHERE id IN ({pick}) RETURNING id"  # noqa: S608 (names from the models)
    params = [*set_params, *running_params, *due_params, *([cap] if cap is not None else [])]
    with transaction.atomic():
        if cap is not None:
            lock_for_transaction(f"fair-claim:{claim.table}")
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    return row[0] if row else None
