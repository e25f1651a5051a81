"""dj-stripe 2.11 against Tollgate on the same Stripe events (issue #50's gate: "end to end still ≥ 3× dj-stripe
2.11 on the same events with 0 deadlocks").

Capture: bench/burst.py's, once per run (`BENCH_BURST_CHECKOUTS` subscriptions, default 100, paid then renewed: a
month of their signed webhook deliveries and the emulator's state). Then `BENCH_DJSTRIPE_ROUNDS` rounds (default 2),
each replaying the capture to Tollgate and then to dj-stripe, interleaved so a machine that drifts shows in both:

- Tollgate: bench/burst.py's case (a), capture order, worker at its default concurrency (its `_replay`): gunicorn
  (4 sync workers) + a Celery worker on a copy of the capture database, applied events/s = events processed /
  (first send → last `processed_at`).
- dj-stripe 2.11.0 in a venv of its own (`var/bench-djstripe/venv`, made on first use with the pinned versions of
  `PINS`: dj-stripe needs `stripe<16`, Tollgate's venv has 16), serving bench/djstripe_site (the smallest project:
  djstripe's URLs, PostgreSQL, the capture's key, signature validation) with gunicorn, the same 4 sync workers.
  Its database is migrated once per run and prepared (bench/djstripe_site/prepare.py: the API key and its account,
  the capture's webhook endpoint with its signing secret), then copied for every replay. The same bodies, in the
  same order, re-signed at send time with the same secret by the same 8 senders, go to `/stripe/webhook/<uuid>/`.
  dj-stripe processes an event inside the request (it retrieves the event's object, and what that refers to, from
  Stripe: here an emulator serving a fresh copy of the capture's state, as on Tollgate's side), so its answer is
  the event applied, or not: events/s = events answered 2xx / (first send → last answer).

Measured on each side: events/s; failures (Tollgate: failed or lost events; dj-stripe: non-2xx answers, counted by
event type and dj-stripe's exception from its `WebhookEventTrigger` rows, with the first tracebacks: a processing
error is shown, never folded into the rate); deadlocks (`pg_stat_database.deadlocks` delta of the replay database,
and the reports in PostgreSQL's log); CPU per event as burst counts it: the web process tree (and Tollgate's
worker tree) plus the replay database's PostgreSQL backends; the emulator's apart (Stripe's stand-in, not counted).

Verdict: Tollgate's median events/s / dj-stripe's median events/s ≥ 3, with no deadlock in Tollgate's replays. It
is given only when dj-stripe answered 2xx for every event of every round and no replay timed out or failed to run;
otherwise the report says what dj-stripe failed on and gives no verdict.

`BENCH_DJSTRIPE_SHUFFLED=1` also replays burst's case (b) (the same deliveries shuffled, fixed seed) to both sides
each round. `BENCH_DJSTRIPE_TIMEOUT` (default 900 s) bounds a dj-stripe replay; burst's `BENCH_BURST_TIMEOUT`
bounds Tollgate's. Databases (on DATABASE_URL's server): burst's `<name>_burst` and `<name>_burst_replay`, and
`<name>_djstripe`, `<name>_djstripe_replay`, dropped at the end unless `BENCH_DJSTRIPE_KEEP=1`. Redis:
`BENCH_REDIS_URL` (default database 12, flushed by every Tollgate replay). Every subprocess is ended in `finally`.
Logs: var/bench-djstripe/.

Run: `make bench-djstripe` or `python -m bench.djstripe`, with DATABASE_URL=postgres://… and Redis.
"""

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.burst import (
    GUNICORN_WORKERS,
    ROOT,
    SENDERS,
    SHUFFLE_SEED,
    STRIPE_KEY,
    BackendCpu,
    Capture,
    Processes,
    Replay,
    _admin_sql,
    _capture,
    _database_counts,
    _database_urls,
    _drop,
    _median,
    _pg_log_deadlocks,
    _pg_log_offset,
    _progress,
    _replay,
    _send_all,
    _start_emulator,
    _start_gunicorn,
    _tree_cpu,
    _warm_up,
)
from bench.setup import bytecode_compile

LOGS = ROOT / "var" / "bench-djstripe"
VENV = LOGS / "venv"
# dj-stripe 2.11.0 and what it runs on, pinned; Django, gunicorn and psycopg at Tollgate's own versions.
PINS = (
    "dj-stripe==2.11.0",
    "stripe==15.6.2",
    "Django==5.2.19",
    "gunicorn==27.0.1",
    "psycopg[binary]==3.3.9",
    "requests==2.34.2",
)
SITE = "bench.djstripe_site"
ROUNDS = max(1, int(os.environ.get("BENCH_DJSTRIPE_ROUNDS", "2")))
TIMEOUT = float(os.environ.get("BENCH_DJSTRIPE_TIMEOUT", "900"))
SHUFFLED = os.environ.get("BENCH_DJSTRIPE_SHUFFLED") == "1"
TARGET_RATIO = 3.0  # issue #50: Tollgate end to end ≥ 3× dj-stripe 2.11
SHOWN_FAILURES = 3  # answers and tracebacks printed per replay


@dataclass
class DjReplay:
    """One replay of the capture into dj-stripe."""

    name: str
    events: int
    round: int = 1
    ok: int = 0  # 2xx answers
    e2e_seconds: float = 0.0
    e2e_rate: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    timed_out: bool = False
    statuses: dict[int, int] = field(default_factory=dict)  # non-2xx answers by status (-1: no answer)
    answers: list[str] = field(default_factory=list)  # the first non-2xx answers: "event type status: body"
    failures: dict[str, int] = field(default_factory=dict)  # "event type: exception" → triggers not processed
    tracebacks: list[str] = field(default_factory=list)
    stored: int = 0  # djstripe_event rows
    missing: int = 0  # captured events with no djstripe_event row
    deadlocks: int = 0
    deadlock_log: list[str] = field(default_factory=list)
    web_cpu: float = 0.0
    pg_cpu: float = 0.0
    emulator_cpu: float = 0.0
    transactions: int = 0
    log: str = ""  # gunicorn's log: Django's report of every 500
    error: str = ""

    @property
    def failed(self) -> int:
        return self.events - self.ok

    @property
    def cpu_ms(self) -> float:
        return (self.web_cpu + self.pg_cpu) * 1000 / self.events if self.events else 0.0


# --- dj-stripe's venv and database ----------------------------------------------------------------------------


def _venv_python() -> str:
    """The dj-stripe venv's Python, made (or brought to `PINS`) first when needed."""
    python = VENV / "bin" / "python"
    stamp = VENV / "bench-pins.txt"
    wanted = "\n".join(PINS) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return str(python)
    if not python.exists():
        print(
            f"  creating {VENV.relative_to(ROOT)} (dj-stripe 2.11.0 and its pinned dependencies) …",
            flush=True,
        )
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PINS],
        check=True,
        timeout=900,
    )
    stamp.write_text(wanted)
    return str(python)


def _djstripe_env(database_url: str, stripe_base: str, secret: str = "") -> dict[str, str]:
    """bench/djstripe_site's environment: nothing of Tollgate's settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "PYTHONPATH", "VIRTUAL_ENV", "DATABASE_URL"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": f"{SITE}.settings",
            "DJSTRIPE_BENCH_DATABASE_URL": database_url,
            "DJSTRIPE_BENCH_STRIPE_KEY": STRIPE_KEY,
            "DJSTRIPE_BENCH_STRIPE_API_BASE": stripe_base,
            "DJSTRIPE_BENCH_WEBHOOK_SECRET": secret,
        }
    )
    return env


def _run(python: str, args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    result = subprocess.run(
        [python, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _prepare(
    python: str, capture: Capture, admin_url: str, url_template: str, template_db: str, procs: Processes
) -> dict[str, str]:
    """dj-stripe's database, migrated and prepared (bench/djstripe_site/prepare.py) against an emulator serving
    the capture's state; every replay starts from a copy of it. Returns prepare's `{uuid, endpoint, account}`."""
    _drop(admin_url, template_db)
    _admin_sql(admin_url, f'CREATE DATABASE "{template_db}"')
    emulator, stripe_base = _start_emulator(procs, capture, "djstripe-prepare", LOGS)
    try:
        env = _djstripe_env(url_template.format(name=template_db), stripe_base, capture.secret)
        _run(python, ["-m", "django", "migrate", "--noinput", "-v0"], env)
        prepared: dict[str, str] = json.loads(_run(python, ["-m", f"{SITE}.prepare"], env).splitlines()[-1])
    finally:
        Processes.stop(emulator)
    return prepared


# --- dj-stripe's replay ---------------------------------------------------------------------------------------


def _event_type(body: str) -> str:
    try:
        return str(json.loads(body).get("type", "?"))
    except ValueError:
        return "(not JSON)"


def _exception(message: str, traceback: str) -> str:
    """A trigger's exception as `Class: first line of its message` (dj-stripe keeps the message, cut to 128
    characters, and the traceback, whose last line naming an exception names its class)."""
    if not message and not traceback:
        return "not valid (signature not verified)"
    name = next(
        (
            match.group(1).rsplit(".", 1)[-1]
            for line in reversed(traceback.splitlines())
            if (match := re.match(r"([A-Za-z_][\w.]*)(?::|$)", line))
        ),
        "",
    )
    first = message.strip().splitlines()[0] if message.strip() else ""
    return f"{name}: {first}" if name else first


def _replay_djstripe(
    python: str,
    capture: Capture,
    name: str,
    order: list[int],
    prepared: dict[str, str],
    admin_url: str,
    url_template: str,
    template_db: str,
    replay_db: str,
    procs: Processes,
) -> DjReplay:
    import psycopg

    tag = f"djstripe-{name.split()[0].strip('()')}"
    result = DjReplay(name=name, events=len(order))
    begun = time.perf_counter()
    bodies = [capture.deliveries[i][2] for i in order]
    database_url = url_template.format(name=replay_db)
    _drop(admin_url, replay_db)
    _admin_sql(admin_url, f'CREATE DATABASE "{replay_db}" TEMPLATE "{template_db}"')
    emulator, stripe_base = _start_emulator(procs, capture, tag, LOGS)
    env = _djstripe_env(database_url, stripe_base)
    log = LOGS / f"replay-{tag}-gunicorn.log"
    result.log = str(log.relative_to(ROOT))
    gunicorn, base = _start_gunicorn(
        procs,
        env,
        GUNICORN_WORKERS,
        log,
        python=python,
        app=f"{SITE}.wsgi:application",
        ready_path="/stripe/",  # any answer (a 404) means a worker serves
    )
    # Every worker past its first request, connected: an endpoint nobody has answers 404 after its query.
    _warm_up(base, f"/stripe/webhook/{uuid.UUID(int=0)}/")
    _progress(begun, "dj-stripe up and warm; sending")
    path = f"/stripe/webhook/{prepared['uuid']}/"
    refused: list[tuple[int, int, str]] = []
    lock = threading.Lock()

    def record(index: int, status: int, answer: str) -> None:
        with lock:
            refused.append((index, status, answer))

    pg_url = urlunsplit(urlsplit(database_url)._replace(scheme="postgresql"))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        counts_before = _database_counts(conn, replay_db)
        log_offset = _pg_log_offset()
        backends = BackendCpu(conn, replay_db)
        web_before = _tree_cpu(gunicorn.pid)
        emulator_before = _tree_cpu(emulator.pid)
        stop = threading.Event()
        sent: dict[str, Any] = {}
        clock_start = time.perf_counter()

        def send() -> None:
            latencies, errors, last = _send_all(
                base, bodies, capture.secret, stop, path=path, timeout=TIMEOUT, on_failure=record
            )
            sent.update(latencies=latencies, errors=errors, last=last)

        sending = threading.Thread(target=send, name="djstripe-senders", daemon=True)
        sending.start()
        deadline = clock_start + TIMEOUT
        while sending.is_alive():
            backends.sample()
            if time.perf_counter() > deadline:
                result.timed_out = True
                stop.set()
                break
            time.sleep(0.2)
        sending.join(timeout=90)  # a sender finishes the request it is in (30 s at most) and stops
        backends.sample()
        result.web_cpu = _tree_cpu(gunicorn.pid) - web_before
        result.emulator_cpu = _tree_cpu(emulator.pid) - emulator_before
        result.pg_cpu = backends.seconds()
        latencies: list[float] = sent.get("latencies", [])
        errors: list[int] = sent.get("errors", [])
        result.ok = len(latencies) - len(errors)
        for status in errors:
            result.statuses[status] = result.statuses.get(status, 0) + 1
        if latencies:
            result.e2e_seconds = sent["last"] - clock_start
            result.p50_ms = sorted(latencies)[len(latencies) // 2] * 1000
            result.p99_ms = (
                sorted(latencies)[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))] * 1000
            )
        if result.timed_out or not latencies:
            result.e2e_seconds = time.perf_counter() - clock_start
        result.e2e_rate = result.ok / result.e2e_seconds if result.e2e_seconds > 0 else 0.0
        for index, status, answer in sorted(refused)[:SHOWN_FAILURES]:
            kind = capture.deliveries[order[index]][1]
            result.answers.append(f"{kind} → {status}: {' '.join(answer.split())[:300]}")
        # What dj-stripe recorded: each delivery it could not process keeps its exception and traceback.
        for body, exception, traceback in conn.execute(
            "SELECT body, exception, traceback FROM djstripe_webhookeventtrigger WHERE NOT processed ORDER BY id"
        ).fetchall():
            key = f"{_event_type(body)}: {_exception(exception, traceback)}"
            result.failures[key] = result.failures.get(key, 0) + 1
        result.tracebacks = [
            row[0]
            for row in conn.execute(
                "SELECT traceback FROM djstripe_webhookeventtrigger WHERE traceback <> '' ORDER BY id LIMIT %s",
                [SHOWN_FAILURES],
            ).fetchall()
        ]
        stored = {row[0] for row in conn.execute("SELECT id FROM djstripe_event")}
        result.stored = len(stored)
        result.missing = len({capture.deliveries[i][0] for i in order} - stored)
    _progress(begun, f"{result.ok} events answered 2xx in {result.e2e_seconds:.1f} s; stopping the servers")
    # Backends report their statistics when they end: stop the servers before reading the deadlock count.
    for proc in (gunicorn, emulator):
        Processes.stop(proc)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        counts_after = _database_counts(conn, replay_db)
    result.deadlocks = counts_after[0] - counts_before[0]
    result.transactions = counts_after[1] - counts_before[1]
    result.deadlock_log = _pg_log_deadlocks(log_offset, replay_db)
    _progress(begun, "done")
    return result


# --- report ---------------------------------------------------------------------------------------------------


def _print_answers(r: "Replay | DjReplay", meaning: str) -> None:
    """A replay's answer latencies (`meaning`: what an answer says) and transactions per event, unless it failed."""
    if not r.error:
        print(
            f"{'':<37}answers p50/p99 {r.p50_ms:.0f}/{r.p99_ms:.0f} ms ({meaning}); "
            f"{r.transactions / r.events:.1f} database transactions per event"
        )


def _tollgate_row(r: Replay) -> str:
    if r.error:
        return f"{r.round:<6}{r.name:<20}{'Tollgate':<11}did not run: {r.error}"
    note = " (timed out)" if r.timed_out else ""
    bad = r.failed + r.lost
    return (
        f"{r.round:<6}{r.name:<20}{'Tollgate':<11}{r.e2e_rate:>9.1f}{r.e2e_seconds:>8.1f}"
        f"{f'{r.applied}/{r.events}':>13}{bad:>8}{r.deadlocks:>8}{r.cpu_ms:>11.1f}"
        f"{f'{r.app_cpu * 1000 / r.events:.1f}+{r.pg_cpu * 1000 / r.events:.1f}':>15}"
        f"{r.emulator_cpu * 1000 / r.events:>8.1f}{note}"
    )


def _djstripe_row(r: DjReplay) -> str:
    if r.error:
        return f"{r.round:<6}{r.name:<20}{'dj-stripe':<11}did not run: {r.error}"
    note = " (timed out)" if r.timed_out else ""
    return (
        f"{r.round:<6}{r.name:<20}{'dj-stripe':<11}{r.e2e_rate:>9.1f}{r.e2e_seconds:>8.1f}"
        f"{f'{r.ok}/{r.events}':>13}{r.failed:>8}{r.deadlocks:>8}{r.cpu_ms:>11.1f}"
        f"{f'{r.web_cpu * 1000 / r.events:.1f}+{r.pg_cpu * 1000 / r.events:.1f}':>15}"
        f"{r.emulator_cpu * 1000 / r.events:>8.1f}{note}"
    )


def _report(capture: Capture, tollgate: list[Replay], djstripe: list[DjReplay]) -> None:
    kinds: dict[str, int] = {}
    for _, kind, _ in capture.deliveries:
        kinds[kind] = kinds.get(kind, 0) + 1
    print(
        f"\ndj-stripe 2.11 against Tollgate: {capture.checkouts} subscription checkouts (paid, then renewed: "
        f"{capture.renewals} renewal invoices paid) → {len(capture.deliveries)} signed deliveries, captured in "
        f"{capture.seconds:.0f} s"
    )
    print("  " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1])))
    print(
        f"Each replayed by {SENDERS} senders to gunicorn ({GUNICORN_WORKERS} sync workers) on PostgreSQL: Tollgate "
        "with a Celery worker (prefork, default concurrency) and Redis; dj-stripe processing in the request. "
        "Higher is better, except failures, deadlocks and CPU."
    )
    print(
        f"\n{'round':<6}{'case':<20}{'side':<11}{'events/s':>9}{'e2e s':>8}{'ok/events':>13}{'failed':>8}"
        f"{'deadlk':>8}{'CPU ms/ev':>11}{'(app+pg)':>15}{'stripe':>8}"
    )
    names = list(dict.fromkeys(r.name for r in tollgate))
    ratios: dict[str, list[float]] = {}
    for round_ in range(1, ROUNDS + 1):
        for name in names:
            t = next((r for r in tollgate if r.round == round_ and r.name == name), None)
            d = next((r for r in djstripe if r.round == round_ and r.name == name), None)
            if t is not None:
                print(_tollgate_row(t))
                _print_answers(t, "the event stored")
            if d is not None:
                print(_djstripe_row(d))
                _print_answers(d, "the event processed")
            if t is not None and d is not None and not t.error and not d.error and d.e2e_rate > 0:
                ratio = t.e2e_rate / d.e2e_rate
                ratios.setdefault(name, []).append(ratio)
                print(f"{'':<37}Tollgate / dj-stripe: {ratio:.2f}×")
    print(
        "(Tollgate: events/s = applied / (first send → last processed_at), ok = applied, failed = failed + lost, "
        "app = web + worker; dj-stripe: events/s = 2xx answers / (first send → last answer), ok = 2xx answers, "
        "app = web; CPU = user+sys of those process trees + the replay database's PostgreSQL backends, per "
        "captured event; stripe = the emulator's CPU per event, not counted)"
    )

    verdict_ok, gate = False, ""
    reasons: list[str] = []
    for name in names:
        t_ran = [r for r in tollgate if r.name == name and not r.error]
        d_ran = [r for r in djstripe if r.name == name and not r.error]
        if not t_ran or not d_ran:
            continue
        t_rate = _median([r.e2e_rate for r in t_ran])
        d_rate = _median([r.e2e_rate for r in d_ran])
        ratio = t_rate / d_rate if d_rate else float("inf")
        spread = ratios.get(name, [])
        print(
            f"\n{name}, medians of {len(t_ran)}/{len(d_ran)} rounds: Tollgate {t_rate:.1f} events/s, dj-stripe "
            f"{d_rate:.1f} events/s: {ratio:.2f}×"
            + (f" (per round {', '.join(f'{x:.2f}' for x in spread)})" if spread else "")
            + f"; deadlocks Tollgate {sum(r.deadlocks for r in t_ran)}, dj-stripe {sum(r.deadlocks for r in d_ran)}"
        )
        if name.startswith("(a)"):
            deadlocks = sum(r.deadlocks for r in t_ran)
            verdict_ok = ratio >= TARGET_RATIO and deadlocks == 0
            gate = (
                f"end to end ≥ {TARGET_RATIO:.0f}× dj-stripe 2.11 on the same events with 0 deadlocks "
                f"({name}): {ratio:.2f}×, {deadlocks} deadlocks"
            )

    for d in djstripe:
        if d.error:
            reasons.append(f"dj-stripe round {d.round} {d.name} did not run")
        elif d.failed or d.timed_out:
            reasons.append(f"dj-stripe failed {d.failed} of {d.events} events in round {d.round} {d.name}")
    for t in tollgate:
        if t.error:
            reasons.append(f"Tollgate round {t.round} {t.name} did not run")
        elif t.timed_out or t.failed or t.lost:
            reasons.append(f"Tollgate round {t.round} {t.name} timed out, failed or lost events")
    if not any(r.name.startswith("(a)") for r in tollgate if not r.error) or not any(
        r.name.startswith("(a)") for r in djstripe if not r.error
    ):
        print("\nverdict: none, case (a) did not run on both sides")
    elif reasons:
        print(f"\nverdict: none, the sides are not comparable: {'; '.join(reasons)} ({gate} as measured)")
    else:
        print(f"\n{gate}: {'PASS' if verdict_ok else 'FAIL'}")

    for r in djstripe:
        if r.error or not (r.failed or r.failures or r.missing):
            continue
        print(
            f"\ndj-stripe round {r.round} {r.name}: {r.failed} of {r.events} not answered 2xx "
            f"({', '.join(f'{s}: {n}' for s, n in sorted(r.statuses.items()))}); {r.stored} events stored, "
            f"{r.missing} captured events missing"
        )
        for key, count in sorted(r.failures.items(), key=lambda kv: -kv[1]):
            print(f"  not processed ×{count}: {key}")
        for answer in r.answers:
            print(f"  answer: {answer}")
        for tb in r.tracebacks[:1]:
            print(f"  the end of the first traceback dj-stripe recorded (all in {r.log}):")
            print("\n".join(f"    {line}" for line in tb.strip().splitlines()[-12:]))
    for side, logs in (
        ("Tollgate", [(r, r.deadlock_log) for r in tollgate]),
        ("dj-stripe", [(r, r.deadlock_log) for r in djstripe]),
    ):
        relations: dict[str, int] = {}
        for _, blocks in logs:
            for block in blocks:
                for relation in set(re.findall(r'CONTEXT:.* in relation "(\w+)"', block)):
                    relations[relation] = relations.get(relation, 0) + 1
        if relations:
            where = ", ".join(f"{n} ×{c}" for n, c in sorted(relations.items(), key=lambda kv: -kv[1]))
            print(f"{side}: deadlocks PostgreSQL logged, by the relation the victim waited on: {where}")


def run() -> None:
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    if not database_url.startswith(("postgres://", "postgresql://")):
        print(
            "\ndj-stripe comparison skipped: run it with DATABASE_URL=postgres://… (it needs PostgreSQL and Redis)."
        )
        return
    started = time.perf_counter()
    LOGS.mkdir(parents=True, exist_ok=True)
    python = _venv_python()
    bytecode_compile()  # both sides import compiled bytecode (pip compiled dj-stripe's venv at install)
    admin_url, capture_db, replay_db, url_template = _database_urls(database_url)
    base_name = capture_db.removesuffix("_burst")
    djstripe_db, djstripe_replay_db = f"{base_name}_djstripe", f"{base_name}_djstripe_replay"
    procs = Processes()
    tollgate: list[Replay] = []
    djstripe: list[DjReplay] = []
    try:
        _drop(admin_url, capture_db)
        _admin_sql(admin_url, f'CREATE DATABASE "{capture_db}"')
        capture = _capture(admin_url, url_template.format(name=capture_db), redis_url, procs, logs=LOGS)
        prepared = _prepare(python, capture, admin_url, url_template, djstripe_db, procs)
        _progress(
            started, f"dj-stripe database prepared (endpoint {prepared['endpoint']}, {prepared['uuid']})"
        )
        capture_order = list(range(len(capture.deliveries)))
        cases = [("(a) capture order", capture_order)]
        if SHUFFLED:
            shuffled = capture_order[:]
            random.Random(SHUFFLE_SEED).shuffle(shuffled)
            cases.append(("(b) shuffled", shuffled))
        for round_ in range(1, ROUNDS + 1):
            for name, order in cases:
                print(f"  round {round_}/{ROUNDS}: Tollgate, {name} …", flush=True)
                try:
                    replay = _replay(
                        capture,
                        name,
                        order,
                        None,
                        admin_url,
                        url_template,
                        capture_db,
                        replay_db,
                        redis_url,
                        procs,
                        logs=LOGS,
                    )
                except Exception as exc:  # one broken run must not hide the others
                    replay = Replay(
                        name=name, workers="default", events=len(order), error=f"{type(exc).__name__}: {exc}"
                    )
                finally:
                    procs.stop_all()
                replay.round = round_
                tollgate.append(replay)
                print(f"  round {round_}/{ROUNDS}: dj-stripe, {name} …", flush=True)
                try:
                    dj = _replay_djstripe(
                        python,
                        capture,
                        name,
                        order,
                        prepared,
                        admin_url,
                        url_template,
                        djstripe_db,
                        djstripe_replay_db,
                        procs,
                    )
                except Exception as exc:
                    dj = DjReplay(name=name, events=len(order), error=f"{type(exc).__name__}: {exc}")
                finally:
                    procs.stop_all()
                dj.round = round_
                djstripe.append(dj)
    finally:
        procs.stop_all()
        if os.environ.get("BENCH_DJSTRIPE_KEEP") != "1":
            for db in (djstripe_replay_db, djstripe_db, replay_db, capture_db):
                try:
                    _drop(admin_url, db)
                except Exception as exc:
                    print(f"could not drop {db}: {exc}")
    _report(capture, tollgate, djstripe)
    print(f"(total {time.perf_counter() - started:.0f} s; logs in {LOGS.relative_to(ROOT)}/)")


if __name__ == "__main__":
    run()
