"""Per-tenant fairness of Stripe event processing: which project an event is applied for, and the fair claim of
the next key a free worker applies.

Intake never refuses Stripe (every verified delivery is stored and answered 200). What is fair is processing: a
worker that is free takes the key of the project holding the fewest keys being applied, then the oldest due event
(`core.claims`). So a project alone uses every worker, and a project whose Stripe account bursts holds the workers
only until another project has an event due: that event is the next any worker takes, after at most the key each
worker is applying. The backlog waits its turn in PostgreSQL, where it is stored anyway.
"""

from typing import Any

from django.db import connection
from django.utils import timezone

from core.claims import FairClaim, fair_pick
from core.locks import IN_THIS_DATABASE, NAMESPACE, locks_held_in_process
from projects.models import Project
from webhooks.models import StripeEvent

_TENANT_MAX = StripeEvent._meta.get_field("tenant").max_length or 40

# Due, or left `processing` (by a worker that died: the next holder of the key's lock takes it back,
# `process._claim`), of a key no live worker holds: on PostgreSQL the key's lock is not among the advisory locks
# held (`pg_locks`, read once per statement: the server drops a dead worker's with its session); without it (one
# process), the process's own locks tell (`key_next`).
_DUE = (
    "((w.status = %s AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= %s)) OR w.status = %s){unlocked}"
)
_HELD = (
    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::oid AND objsubid = 2 "  # noqa: S608
    f"AND {IN_THIS_DATABASE}"  # a constant of core.locks
)
_UNLOCKED = " AND hashtext(%s || w.ordering_key)::oid NOT IN (SELECT objid FROM held)"


def _keys(postgresql: bool) -> FairClaim:
    return FairClaim(
        table=StripeEvent._meta.db_table,
        group="tenant",
        due="(" + _DUE.format(unlocked=_UNLOCKED if postgresql else "") + ")",
        running="status = %s",
        running_count="COUNT(DISTINCT ordering_key)",
        oldest="w.received_at, w.id",
        with_held=_HELD if postgresql else "",
    )


def event_tenant(*, project: Project | None, body: dict[str, Any]) -> str:
    """The project an event is applied for: the project whose own Stripe account sent it; for the platform's
    account, the project its object names in `metadata.tollgate_project` (Tollgate writes it on every object
    it creates at Stripe), else "" (the platform's events, a group of their own)."""
    if project is not None:
        return str(project.pk)
    obj = (body.get("data") or {}).get("object") or {}
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    named = metadata.get("tollgate_project") if isinstance(metadata, dict) else None
    if isinstance(named, str) and 0 < len(named) <= _TENANT_MAX:
        return named
    return ""


def key_next(*, skip: list[str]) -> str | None:
    """The ordering key a free worker applies next, or None when no event is due. Not one held by a live worker
    (that worker applies the key's new events too), nor one of `skip` (a key this worker found taken between the
    pick and its lock)."""
    from webhooks.services.process import LOCK_PREFIX

    postgresql = connection.vendor == "postgresql"
    if not postgresql:  # the keys' locks are this process's own
        held = [
            name.removeprefix(LOCK_PREFIX) for name in locks_held_in_process() if name.startswith(LOCK_PREFIX)
        ]
        skip = [*skip, *held]
    received, processing = StripeEvent.Status.RECEIVED, StripeEvent.Status.PROCESSING
    row = fair_pick(
        _keys(postgresql),
        columns="w.ordering_key",
        due_params=[received, timezone.now(), processing, *([LOCK_PREFIX] if postgresql else [])],
        running_params=[processing],
        held_params=[NAMESPACE] if postgresql else [],
        skip_column="ordering_key",
        skip=skip,
    )
    return row[0] if row else None
