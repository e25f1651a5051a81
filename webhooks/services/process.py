"""Queueing and processing stored Stripe events: a stored event rings a worker when none would see it otherwise
(a Celery task; the beat sweep rings for a bell that was lost); the worker takes the next key by the fair claim
in SQL, claims the key's due events by compare-and-set under the key's lock so no two workers run them,
dispatches each through billing's handlers (`billing.handlers.registry`), records status, attempts, error and
timings, and retries what failed on a schedule kept in the database."""

import logging
import random
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.db.models import F, Q
from django.utils import timezone

from billing.handlers.event import StripeEventIn
from billing.handlers.lookups import stripe_customer_of
from billing.handlers.registry import HANDLERS
from core import context
from core.cache import LocalCache
from core.claims import BELLS, RUN_SECONDS
from core.locks import lock_shared, lock_shared_release, lock_shared_take, lock_taken, locks_shared_held
from projects.models import Project
from webhooks import statements
from webhooks.models import StripeEvent
from webhooks.services.versions import EventHeld, object_read_again
from webhooks.statements import due_filter

logger = logging.getLogger(__name__)

# Projects' slugs for the per-event log line (a slug changes rarely; a stale one only names a log line).
_project_slugs = LocalCache()
PROJECT_SLUG_SECONDS = 60.0


# --- queueing ------------------------------------------------------------------------------------------------
#
# PostgreSQL is the schedule: a stored event is due until it is applied. A task is only the bell that wakes a
# worker: the worker takes the next key by the fair claim (`webhooks.services.fairness.key_next`: the project
# holding the fewest running keys first, then the oldest event), applies it, and takes the next, until nothing is
# due (`stripe_events_run`). A stored event rings only when a worker would not see it otherwise (`bell_needed`:
# a worker process is idle, or none runs). A bell that finds its event applied already costs one read.

# An event not yet taken this long after it was stored (or put back) lost its bell: the sweep rings again.
QUEUE_SETTLE = timedelta(seconds=30)


def queue_processing(event_id: str, key: str = "") -> bool:
    """Rings a worker for a stored event (`key`: its ordering key); returns whether the bell was queued. A broker
    outage (or, in eager mode, a processing failure) must not fail the caller: the event is stored, its status
    says what happened, and the beat sweep rings again. Eager (tests, the embedded mode), the task applies the
    event's key in-line."""
    from webhooks.tasks import process_stripe_event

    try:
        process_stripe_event.delay(event_id, key)
    except Exception:
        logger.exception("Could not queue Stripe event %s; the sweep will retry it.", event_id)
        return False
    return True


def stripe_events_requeue_due(*, limit: int = BELLS) -> int:
    """Beat: rings for the keys with a due event nobody is applying — a bell lost with the broker, a retry whose
    time came, an event whose worker died (taken back by the next holder of the key's lock): one bell per key,
    at most `limit` (each wakes a worker that runs until nothing is due). Returns how many it rang."""
    now = timezone.now()
    settle = now - QUEUE_SETTLE
    keys = list(
        StripeEvent.objects.filter(
            (
                due_filter(now)
                & (Q(updated_at__lt=settle) | Q(next_attempt_at__isnull=False, next_attempt_at__lte=now))
            )
            | Q(status=StripeEvent.Status.PROCESSING, processing_started_at__lt=settle)
        )
        .order_by()
        .values_list("ordering_key", flat=True)
        .distinct()[:limit]
    )
    # Eager (one process), each key is applied in-line; else each bell wakes a worker (which takes by the claim).
    return sum(queue_processing("", key) for key in keys)


# A bell is needed only when a worker would not see the event otherwise. The workers applying events hold
# RUNNING_LOCK (shared) while they look for work, and look once more after letting go of it; the worker processes
# that take Stripe events' bells hold IDLE_LOCK (shared) between two tasks (config/celery.py). While some worker
# runs and none is idle, a new event is seen by a running one, and a bell would only queue behind it.
RUNNING_LOCK = "stripe-events-running"
IDLE_LOCK = "stripe-events-idle"


def bell_needed() -> bool:
    """Whether a stored event needs a bell: a worker is idle (the bell puts it to work beside the running ones),
    or none is running (one read of `pg_locks`). When the read fails, it rings: a bell too many costs one
    statement, a bell missing costs the sweep's wait."""
    try:
        held = locks_shared_held(RUNNING_LOCK, IDLE_LOCK)
    except DatabaseError:
        logger.warning("Could not read which workers run; ringing.", exc_info=True)
        return True
    return IDLE_LOCK in held or RUNNING_LOCK not in held


_idle_session: list[object] = []  # the database session (DB-API connection) that holds IDLE_LOCK, if any


def worker_idle(idle: bool) -> None:
    """A worker process taking Stripe events' bells says it is idle (between two tasks), or busy. Errors are
    logged, never raised: a wrong answer costs a bell or a wait for a running worker, never an event."""
    try:
        held = bool(_idle_session) and _idle_session[0] is connection.connection
        if idle and not held:
            lock_shared_take(IDLE_LOCK)
            _idle_session[:] = [connection.connection]
        elif not idle:
            if held:  # a session that ended since holds nothing
                lock_shared_release(IDLE_LOCK)
            _idle_session.clear()
    except Exception:
        logger.warning("Could not mark this worker %s.", "idle" if idle else "busy", exc_info=True)
        _idle_session.clear()


def stripe_events_run(*, seconds: float = RUN_SECONDS) -> int:
    """Applies due keys one after another, each picked by the fair claim, until none is due or `seconds` have
    passed; returns how many events it applied. A key another worker holds is skipped (that worker applies its
    new events too: it picks again when it lets go of the key). Runs holding RUNNING_LOCK in shared mode, and
    looks once more after letting go of it: an event stored while the intake saw the lock held rang no bell."""
    from webhooks.services.fairness import key_next

    started = time.monotonic()
    applied = 0
    turned_away: list[str] = []
    key = key_next(skip=turned_away)  # a bell that finds nothing due ends here: one statement
    while key is not None:
        with lock_shared(RUNNING_LOCK):
            while key is not None:
                if time.monotonic() - started >= seconds:
                    # The turn is over: another worker (or this one, woken again) goes on.
                    queue_processing("")
                    return applied
                done = _process_key(key, eager=False)
                if done is None:
                    turned_away.append(key)
                else:
                    applied += done
                key = key_next(skip=turned_away)
        # What was stored while the intake saw this worker running, of any key: one turned away while its holder
        # was on it included (the holder may have ended its run before the event came, and rung nothing).
        turned_away = []
        key = key_next(skip=turned_away)
    return applied


# --- processing -----------------------------------------------------------------------------------------------
#
# A worker takes the key's lock (core.locks: a PostgreSQL advisory lock, released by PostgreSQL if the worker
# dies), claims every due event of the key in one UPDATE … RETURNING, applies them one at a time in Stripe's
# order, and releases the lock. Events of other keys run in parallel on other workers. Holding the key's lock
# proves that no live worker is applying that key, so events of the key left `processing` (their worker died)
# are taken back at once: recovery needs no lease to run out.

MAX_ATTEMPTS = 6  # the first try and five retries
CLAIM_BATCH = 50
CONFLICT_RETRIES = 5
# A task keeps applying the events that keep arriving for its key for at most this long, then hands over.
DRAIN_SECONDS = 30.0
FINAL_STATUSES = frozenset(
    {StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED, StripeEvent.Status.FAILED}
)
# PostgreSQL's deadlock_detected and serialization_failure: another transaction won; running again succeeds.
CONFLICT_SQLSTATES = {"40P01", "40001"}


def retry_delay(attempts: int) -> timedelta:
    """After the n-th failed attempt: 5 s, 10 s, 20 s, 40 s, 80 s … capped at 10 minutes."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 600))


def is_conflict(exc: BaseException) -> bool:
    while exc is not None:
        if getattr(exc, "sqlstate", None) in CONFLICT_SQLSTATES or getattr(exc, "pgcode", None) in (
            CONFLICT_SQLSTATES
        ):
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


LOCK_PREFIX = "stripe-events:"


def _lock_name(key: str) -> str:
    return f"{LOCK_PREFIX}{key}"


def stripe_events_process_key(*, key: str, eager: bool = False) -> int:
    """Applies every due event of `key`, oldest first, unless another worker is applying the key (then that
    worker picks up these events too). Returns how many events this call applied. `eager`: failed attempts are
    retried in place at once (embedded mode has no broker to schedule a retry on)."""
    if not _pending_exists(key):
        # Drained already: a read, not a turn of the key's lock. Events left `processing` count as pending, so a
        # key whose worker died is taken back.
        return 0
    applied = 0
    while True:
        done = _process_key(key, eager=eager)
        if done is None:
            return applied  # another worker (in one process: another thread) holds the key: it applies them
        applied += done
        # An event stored while we held the lock had its call turned away by the lock: take it now.
        if not _due_exists(key):
            return applied


def _process_key(key: str, *, eager: bool) -> int | None:
    """Under the key's lock, claims and applies its due events batch by batch for at most DRAIN_SECONDS; how many
    it applied, or None when another worker holds the key."""
    applied = 0
    started = time.monotonic()
    with lock_taken(_lock_name(key)) as taken:
        if not taken:
            return None
        while time.monotonic() - started < DRAIN_SECONDS:
            batch = _claim(key)
            applied += _apply_batch(batch, eager=eager)
            if len(batch) < CLAIM_BATCH and not (eager and _due_exists(key)):
                break  # all that was due is applied (eager: a failed attempt is due again at once)
    return applied


def _apply_batch(batch: list[tuple[StripeEvent, bool]], *, eager: bool) -> int:
    """Applies a claimed batch of one key's events in order, each outcome recorded as soon as it is known (so a
    worker that dies leaves at most the event it was applying to be taken back and applied again); returns how
    many it applied. An event claimed under a key other than its customer's whose customer is known by now is
    handed over to the customer's key instead (`_customer_key`)."""
    applied = 0
    handed: set[str] = set()
    # The batch is one key's: once its customer is known, it is every event's (no lookup per event).
    known: str | None = None
    for event, orphan in batch:
        if orphan and event.attempts > MAX_ATTEMPTS:
            # Taken back from workers that died applying it, again and again (it kills them, or outlives the
            # task's time limit): give up instead of crash-looping the key.
            StripeEvent.objects.filter(pk=event.pk).update(
                status=StripeEvent.Status.FAILED,
                attempts=F("attempts") - 1,  # this claim applied nothing
                last_error=f"Its worker died while applying it ({event.attempts - 1} attempts).",
                updated_at=timezone.now(),
            )
            continue
        customer_key = known or _customer_key(event)
        if customer_key is not None:
            known = customer_key
            _hand_over(event, customer_key)
            handed.add(customer_key)
            continue
        _apply(event, eager=eager)
        applied += 1
    for key in handed:
        if eager:
            applied += stripe_events_process_key(key=key, eager=True)
        # Else the key is due: the worker's next fair claim (or another worker's) takes it.
    return applied


def _customer_key(event: StripeEvent) -> str | None:
    """The ordering key of the Stripe customer an event is about, when the event was keyed by another object
    (its body names no customer: an invoice's payment record, a dispute, a guest-looking charge) and the
    customer is known here by now; else None. Keys of customers are `<account>:cus_…`."""
    account, _, ident = event.ordering_key.partition(":")
    if ident.startswith("cus_"):
        return None
    stripe_customer = stripe_customer_of(account=account, stripe_object_id=ident)
    if not stripe_customer:
        return None
    key = f"{account}:{stripe_customer}"[:300]
    return key if key != event.ordering_key else None


def _hand_over(event: StripeEvent, key: str) -> None:
    """Moves a claimed event to its customer's key, due at once, without counting the claim as an attempt: the
    holder of that key applies it in the customer's order, one event at a time with the customer's others."""
    StripeEvent.objects.filter(pk=event.pk, status=StripeEvent.Status.PROCESSING).update(
        ordering_key=key,
        status=StripeEvent.Status.RECEIVED,
        attempts=F("attempts") - 1,
        next_attempt_at=None,
        updated_at=timezone.now(),
    )
    logger.info("Stripe event %s handed over to its customer's key.", event.stripe_event_id)


# An event of a key that a holder of the key's lock claims: due, or left `processing` (`_pending_exists`, `_claim`).
_PENDING_SQL = "((status = %s AND (next_attempt_at IS NULL OR next_attempt_at <= %s)) OR status = %s)"


def _pending_params(now: datetime) -> list[Any]:
    return [StripeEvent.Status.RECEIVED, now, StripeEvent.Status.PROCESSING]


def _pending_exists(key: str) -> bool:
    """Whether the key has an event due or being applied (one indexed read, written out by hand: on a burst
    many tasks end with it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {StripeEvent._meta.db_table} WHERE ordering_key = %s AND {_PENDING_SQL} LIMIT 1",  # noqa: S608 (names from the model)
            [key, *_pending_params(timezone.now())],
        )
        return cursor.fetchone() is not None


def _due_exists(key: str) -> bool:
    return statements.DUE.first(key=key, now=timezone.now()) is not None


def _claim(key: str) -> list[tuple[StripeEvent, bool]]:
    """Claims up to CLAIM_BATCH due events of the key in one round trip, oldest first (by Stripe's `created`,
    then arrival), each with whether it was an orphan. Called under the key's lock, so the key's `processing`
    events are orphans of a worker that died: they are taken back in the same statement. The compare-and-set on
    the status keeps "one event, one worker"."""
    now = timezone.now()
    table = StripeEvent._meta.db_table
    due = (
        f"SELECT id, status AS was FROM {table} WHERE ordering_key = %s AND {_PENDING_SQL} "  # noqa: S608 (names from the model)
        "ORDER BY stripe_created, received_at, id LIMIT %s"
    )
    due_params: list[Any] = [key, *_pending_params(now), CLAIM_BATCH]
    claim = (
        f"UPDATE {table} SET status = %s, attempts = {table}.attempts + 1, processing_started_at = %s, "  # noqa: S608 (names from the model)
        f"updated_at = %s"
    )
    claim_params: list[Any] = [StripeEvent.Status.PROCESSING, now, now]
    cas: list[Any] = [StripeEvent.Status.RECEIVED, StripeEvent.Status.PROCESSING]
    if connection.vendor == "postgresql":
        events = list(
            StripeEvent.objects.raw(
                f"{claim} FROM ({due}) AS due{_without_flush()} "
                f"WHERE {table}.id = due.id AND {table}.status IN (%s, %s) "
                f"RETURNING {table}.*, due.was",
                [*claim_params, *due_params, *cas],
            )
        )
        was = {event.pk: event.__dict__.pop("was") for event in events}
    else:  # one process (embedded mode): the same in two statements
        with connection.cursor() as cursor:
            cursor.execute(due, due_params)
            was = dict(cursor.fetchall())
        if not was:
            return []
        marks = ", ".join(["%s"] * len(was))
        events = list(
            StripeEvent.objects.raw(
                f"{claim} WHERE id IN ({marks}) AND status IN (%s, %s) RETURNING *",
                [*claim_params, *was, *cas],
            )
        )
    claimed = [(event, was[event.pk] == StripeEvent.Status.PROCESSING) for event in events]
    claimed.sort(key=lambda pair: (pair[0].stripe_created, pair[0].received_at, pair[0].pk))
    return claimed


def _apply(event: StripeEvent, *, eager: bool) -> str:
    """`_apply_logged` under the id of the request that stored the event: the worker applying it may have been
    woken by another event's bell, by the sweep's, or by none. The line names the task's own id beside it
    (`task_request_id`: a beat run's, say, for an event the sweep rang for)."""
    woken_by = context.request_id.get()
    if not event.request_id or event.request_id == woken_by:
        return _apply_logged(event, eager=eager, woken_by="")
    token = context.request_id.set(event.request_id)
    try:
        return _apply_logged(event, eager=eager, woken_by=woken_by)
    finally:
        context.request_id.reset(token)


def _apply_logged(event: StripeEvent, *, eager: bool, woken_by: str) -> str:
    """Applies one claimed event (`_apply_event`) with the event in the logging context, and writes one line for
    it: Stripe's event id and type, the outcome, how long it took, and whom it concerns: the project's slug, the
    tenant's own id of the customer and the Tollgate payment with its `reference`, as the handler's routing
    found them (`core.context.subjects_note`: no read of its own)."""
    token = context.stripe_event.set(event.stripe_event_id)
    subjects: dict[str, str] = {}
    subjects_token = context.stripe_event_subjects.set(subjects)
    started = time.monotonic()
    try:
        status = _apply_event(event, eager=eager)
    finally:
        context.stripe_event.reset(token)
        context.stripe_event_subjects.reset(subjects_token)
    duration_ms = round((time.monotonic() - started) * 1000, 2)
    if not subjects.get("project") and event.project_id:
        # From a project's own Stripe account, about nothing of ours: the line still names the project.
        slug = _project_slugs.get(event.project_id)
        if slug is None:
            slug = Project.objects.filter(pk=event.project_id).values_list("slug", flat=True).first() or ""
            _project_slugs.set(event.project_id, slug, PROJECT_SLUG_SECONDS)
        subjects["project"] = slug
    # The worker has no project of its own in the context: the line names the event's.
    project = context.project_slug.set(subjects["project"]) if subjects.get("project") else None
    try:
        logger.info(
            "Stripe event %s (%s): %s",
            event.stripe_event_id,
            event.type,
            status,
            extra={
                "stripe_event": event.stripe_event_id,
                "event_type": event.type,
                "status": status,
                "payment": subjects.get("payment", ""),
                "reference": subjects.get("reference", ""),
                "customer": subjects.get("customer", ""),
                "attempt": event.attempts,
                "duration_ms": duration_ms,
                **({"task_request_id": woken_by} if woken_by else {}),
            },
        )
    finally:
        if project is not None:
            context.project_slug.reset(project)
    return status


def _apply_event(event: StripeEvent, *, eager: bool) -> str:
    """Runs the event's handler (`billing.handlers.registry`). A conflict (deadlock, serialization failure) is retried at once after a
    few jittered milliseconds; any other error schedules the next attempt (or, after the last, fails it)."""
    handler = HANDLERS.get(event.type)
    event.processing_started_at = timezone.now()  # recorded with the outcome: when it was really applied
    if handler is None:
        _finish(event, StripeEvent.Status.IGNORED)
        return StripeEvent.Status.IGNORED
    try:
        # At another API version: read again at the pinned one (`webhooks.services.versions`).
        pinned = event.api_version in ("", settings.STRIPE_API_VERSION)
        data_object = event.data_object if pinned else object_read_again(event)
    except EventHeld as held:
        logger.warning("Stripe event %s held: %s", event.stripe_event_id, held)
        _finish(event, StripeEvent.Status.FAILED, error=str(held)[:2000])  # admin, metrics, replay
        return StripeEvent.Status.FAILED
    except Exception as exc:  # Stripe unreachable: retried as a failed attempt is
        if _connection_lost(exc):
            raise
        return _failed(event, exc, eager=eager)
    conflicts = 0
    while True:
        try:
            handler(_facts(event, dict(data_object)))
            break
        except Exception as exc:
            if is_conflict(exc) and conflicts < CONFLICT_RETRIES:
                conflicts += 1
                _count_conflict(event)
                time.sleep(random.uniform(0.005, 0.02) * 2**conflicts)  # noqa: S311 (jitter, not secrecy)
                continue
            if _connection_lost(exc):
                raise  # the task retries once the database is back; the event is taken back as an orphan
            return _failed(event, exc, eager=eager)
    _finish(event, StripeEvent.Status.PROCESSED)
    return StripeEvent.Status.PROCESSED


def _facts(event: StripeEvent, data_object: dict[str, Any]) -> StripeEventIn:
    """What billing's handler is told of the event (a fresh copy per attempt)."""
    return StripeEventIn(
        stripe_event_id=event.stripe_event_id,
        type=event.type,
        account=event.account,
        project_id=event.project_id,
        stripe_created=event.stripe_created,
        data_object=data_object,
        told_payment_intent=event.told_payment_intent,
    )


def _connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, InterfaceError):
        return True
    return isinstance(exc, OperationalError) and not connection.is_usable()


def _count_conflict(event: StripeEvent) -> None:
    StripeEvent.objects.filter(pk=event.pk).update(conflicts=F("conflicts") + 1)
    logger.info("Stripe event %s met a database conflict; retrying at once.", event.stripe_event_id)


def _failed(event: StripeEvent, exc: Exception, *, eager: bool) -> str:
    logger.warning("Processing %s %s failed: %s", event.type, event.stripe_event_id, exc.__class__.__name__)
    error = f"{exc.__class__.__name__}: {exc}"[:2000]
    if event.attempts >= MAX_ATTEMPTS:
        _finish(event, StripeEvent.Status.FAILED, error=error)  # visible in admin, replayable
        return StripeEvent.Status.FAILED
    delay = timedelta(0) if eager else retry_delay(event.attempts)
    _finish(event, StripeEvent.Status.RECEIVED, error=error, next_attempt_at=timezone.now() + delay)
    if not eager and delay <= timedelta(minutes=1):
        # A short wait rides on the broker; longer ones are queued by the beat sweep when due.
        _queue_later(event, delay)
    return StripeEvent.Status.RECEIVED


def _queue_later(event: StripeEvent, delay: timedelta) -> None:
    """Rings a worker when the retry is due (a countdown on the broker): nothing else looks for work that
    becomes due later but beat's sweep. Retries are few (a failed event's, five at most)."""
    from webhooks.tasks import process_stripe_event

    try:
        process_stripe_event.apply_async((event.pk, event.ordering_key), countdown=delay.total_seconds())
    except Exception:
        logger.exception("Could not queue the retry of Stripe event %s; the sweep will.", event.pk)


def _without_flush() -> str:
    """A FROM item (empty, or starting with a comma) that makes the statement's own transaction commit without waiting for the WAL flush
    (`synchronous_commit = off` for that transaction only), for the pipeline's bookkeeping: the claim and the
    outcome of an event. Losing one in a database crash loses nothing: the stored event (committed durably at
    intake) is what Tollgate owes Stripe, the effects of applying it commit durably in their own transactions,
    and PostgreSQL's WAL is flushed in order, so a crash can only drop the newest bookkeeping. A lost claim
    leaves the event `received`; a lost outcome leaves it `processing`, taken back and applied again, which
    applies nothing twice (handlers are idempotent). What it saves is a disk flush per event, the largest
    cost of a commit here. Only when the statement is its own transaction: inside an atomic block the setting
    would reach the block's other writes."""
    if connection.vendor != "postgresql" or not connection.get_autocommit():
        return ""
    return ", (SELECT set_config('synchronous_commit', 'off', true)) AS without_flush"


def _finish(
    event: StripeEvent, status: str, error: str = "", next_attempt_at: datetime | None = None
) -> None:
    """Records the outcome of a claimed event (one plain UPDATE: this runs once per event on the hot path
    of every worker, so it skips the ORM's query building; committed without waiting for the flush,
    `_without_flush`)."""
    now = timezone.now()
    done = now if status in (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED) else None
    table = StripeEvent._meta.db_table
    # `FROM (one row)` only to carry the FROM item; it joins nothing.
    without_flush = f" FROM (SELECT 1) AS one_row{_without_flush()}" if _without_flush() else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, last_error = %s, updated_at = %s, "  # noqa: S608 (table name from the model)
            "next_attempt_at = %s, processing_started_at = %s, processed_at = COALESCE(%s, processed_at)"
            f"{without_flush} WHERE {table}.id = %s AND {table}.status = %s",
            [
                status,
                error,
                now,
                next_attempt_at,
                event.processing_started_at,
                done,
                event.pk,
                StripeEvent.Status.PROCESSING,
            ],
        )


def stripe_event_process(*, event_id: str, eager: bool = False) -> str | None:
    """Applies a stored event (and the other due events of its key). Returns the event's status afterwards,
    or None when another worker is applying its key. For a task queued without a key (one stored before keys
    existed); every delivery now queues its key's task (`stripe_events_process_key`)."""
    found = StripeEvent.objects.filter(pk=event_id).values_list("ordering_key", "status").first()
    if found is None:
        return None
    key, status = found
    if status in FINAL_STATUSES:
        # Applied already, by a task that drained its key: one query, not a turn of the key's lock. Other due
        # events of the key have tasks (or the sweep) of their own.
        return status
    stripe_events_process_key(key=key, eager=eager)
    return StripeEvent.objects.filter(pk=event_id).values_list("status", flat=True).first()
