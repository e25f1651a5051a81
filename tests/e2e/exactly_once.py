"""The machinery of the exactly-once property test (issue #27, point 3; `tests/e2e/test_exactly_once.py`).

One seed = a random sequence of tenant and operator writes (refunds, subscription creates, cancellations,
resumptions, quantity changes, moves between a product's versions that reprice it) over two or three customers,
each write with at most one fault injected at one boundary, and each retried the way docs/integration.md tells tenants to ("retry with the same
`Idempotency-Key`": no answer, 5xx, 429 and 409 `idempotency_key_in_use` are retried with the same key and
body). The product cannot tell any fault from the real thing, because none is a mock:

* Tollgate's web is a real gunicorn process (`WebProcess`) on the test database, publishing to the real Redis
  broker, with `STRIPE_API_BASE` pointing at `StripeFaultProxy`, a real HTTP proxy in front of the emulator's
  HTTP server. The proxy can refuse the next matching Stripe request before forwarding it (Stripe never
  acted), forward it and drop Stripe's answer (once: the SDK's own retries absorb it; three times: past the
  SDK's two retries, so Tollgate answers 5xx and the tenant retries), or forward it and SIGKILL the web
  process before passing the answer back (Stripe acted, our process died before committing). It records
  every Stripe request with its `Idempotency-Key`.
* The tenant and the operator reach the web process through `TenantProxy`, which can forward a request and
  drop Tollgate's answer (our commit done, the answer lost). A timer can SIGKILL the web process at a random
  moment of a request. Whenever the web process is dead, the harness restarts it on the same port before the
  next try, as a supervisor would.
* Real Celery workers (`convergence.Workers`) apply Stripe's webhooks, which the emulator delivers signed,
  over HTTP, to the web process (retrying with backoff while it is down, as Stripe does).

Afterwards (`Runner.settle`), the workers drain the inbox, the repair tools the product offers run (a refund
settle sweep when one exists, `reconcile --fix`), and `Checks` compares, independently of Tollgate's view:
(a) one Stripe effect per intended write, counted at Stripe through the SDK; (b) every local row equal to
Stripe's (payments, refunds, subscriptions, invoices, credits: `convergence.Comparison` plus refunds);
(c) entitlements equal to what that state implies; (d) the revenue metrics equal to sums over Stripe's
charges and refunds; and (e) every write answered what the completed operation answers.
"""

from __future__ import annotations

import abc
import contextlib
import html.parser
import io
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from billing.models import Refund, SubscriptionItem
from stripe_gateway.gateway import stripe_id as stripe_id_of
from tests.billing.stripe_invoices import open_invoice_at_stripe
from tests.e2e import convergence as cv

ROOT = Path(__file__).resolve().parents[2]

# --- configuration ---------------------------------------------------------------------------------------------

FAULTS = (
    "none",
    "stripe_refused_once",  # refused before forwarding, once: the SDK's own retry gets through
    "stripe_refused_past_retries",  # refused 3 times in a row: Tollgate answers 5xx, Stripe never acted
    "stripe_lost_once",  # Stripe acted, its answer lost once: the SDK retries with its idempotency key
    "stripe_lost_past_retries",  # Stripe acted, its answer lost 3 times: Tollgate answers 5xx
    "stripe_acted_web_killed",  # Stripe acted, then the web process was SIGKILLed before our commit
    "answer_lost",  # Tollgate committed and answered, the answer never reached the caller
    "web_killed",  # the web process SIGKILLed at a random moment of the request
)
# The faults at Stripe's boundary, as (kind, times) for StripeFaultProxy.
STRIPE_FAULTS = {
    "stripe_refused_once": ("refuse", 1),
    "stripe_refused_past_retries": ("refuse", 3),
    "stripe_lost_once": ("lose", 1),
    "stripe_lost_past_retries": ("lose", 3),
    "stripe_acted_web_killed": ("kill", 1),
}
# The Stripe write each kind of write makes (method, path), where its Stripe fault is injected.
STRIPE_WRITE = {
    "refund": ("POST", r"/v1/refunds"),
    "operator_refund": ("POST", r"/v1/refunds"),
    "subscribe": ("POST", r"/v1/subscriptions"),
    "cancel_now": ("DELETE", r"/v1/subscriptions/[^/]+"),
    "cancel_at_period_end": ("POST", r"/v1/subscriptions/[^/]+"),
    "resume": ("POST", r"/v1/subscriptions/[^/]+"),
    "change_quantity": ("POST", r"/v1/subscriptions/[^/]+"),
    "credit_note": ("POST", r"/v1/credit_notes"),
    "void": ("POST", r"/v1/invoices/[^/]+/void"),
    "uncollectible": ("POST", r"/v1/invoices/[^/]+/mark_uncollectible"),
    "line_add": ("POST", r"/v1/invoiceitems"),
    "line_remove": ("DELETE", r"/v1/invoiceitems/[^/]+"),
    "version_move": ("POST", r"/v1/subscriptions/[^/]+"),
}
# The two versions of `pro` set up for the moves: "before" froze `pro-monthly` at 30.00, "repriced" (the latest,
# what a new subscriber is on) at REPRICED; a move between them moves the subscription's Stripe item between
# their Stripe prices. Their numbers are the setup's (`Runner.versions`).
REPRICED = 3300
VERSIONS = ("before", "repriced")
PACK_UNIT = 1500  # `credits-1000`'s unit amount (tests/catalog.py)
PLAN_PRICE = "pro-monthly"
MAX_TRIES = 8  # a write's tries in all; its time is bounded by WRITE_SECONDS too
WRITE_SECONDS = 60.0
OPERATOR = ("finance-op", "correct horse battery staple")


def seeds() -> list[int]:
    """`TOLLGATE_EXACTLY_ONCE_SEEDS`: a count N (seeds 0…N-1, default 20) or a comma-separated list ("7,12")."""
    raw = os.environ.get("TOLLGATE_EXACTLY_ONCE_SEEDS", "20").strip()
    if "," in raw:
        return [int(part) for part in raw.split(",") if part.strip()]
    return list(range(int(raw)))


def allowed_faults() -> tuple[str, ...]:
    """`TOLLGATE_EXACTLY_ONCE_FAULTS`: all of FAULTS by default; `none` runs every write without a fault (the
    harness's own check: those seeds must pass wherever the product is not at fault); a comma-separated list
    restricts the draw. The draw itself is the same whatever this says, so a seed keeps its writes."""
    raw = os.environ.get("TOLLGATE_EXACTLY_ONCE_FAULTS", "").strip()
    if not raw or raw == "all":
        return FAULTS
    chosen = tuple(part.strip() for part in raw.split(",") if part.strip())
    unknown = [name for name in chosen if name not in FAULTS]
    if unknown:
        raise ValueError(f"TOLLGATE_EXACTLY_ONCE_FAULTS: unknown {unknown}; known: {', '.join(FAULTS)}")
    return chosen


def back_to_back() -> bool:
    """`TOLLGATE_EXACTLY_ONCE_BACK_TO_BACK=1`: the next write starts as soon as the last one answered, without
    waiting for the workers to apply its webhooks (a tenant's script does that; the mirror then races)."""
    return os.environ.get("TOLLGATE_EXACTLY_ONCE_BACK_TO_BACK", "") not in ("", "0")


def port_candidates() -> Iterator[int]:
    """`TOLLGATE_TEST_PORTS` ("18400-18499"): the ports this test's servers may take; else any free one."""
    raw = os.environ.get("TOLLGATE_TEST_PORTS", "").strip()
    if raw and "-" in raw:
        low, high = (int(part) for part in raw.split("-", 1))
        yield from range(low, high + 1)
    while True:
        yield 0


def bind_port(taken: set[int]) -> int:
    """A port nobody listens on, from the allowed range (skipping `taken`, which it then includes)."""
    for port in port_candidates():
        if port in taken:
            continue
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen = int(sock.getsockname()[1])
        taken.add(chosen)
        return chosen
    raise RuntimeError("no free port")  # pragma: no cover - port_candidates never ends


# --- the web process -------------------------------------------------------------------------------------------


class WebProcess:
    """Tollgate's web: one gunicorn master + one threaded worker, in a process group of its own so a SIGKILL
    takes both at once (a machine losing the process, not a graceful shutdown)."""

    def __init__(self, *, env: dict[str, str], port: int, log: Path) -> None:
        self.env = env
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.starts = 0
        self._lock = threading.RLock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self._lock:
            with self.log.open("ab") as stream:
                self.process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "gunicorn",
                        "config.wsgi:application",
                        f"--bind=127.0.0.1:{self.port}",
                        "--workers=1",
                        "--worker-class=gthread",
                        "--threads=8",
                        "--timeout=120",
                        "--graceful-timeout=2",
                        "--log-level=warning",
                    ],
                    cwd=ROOT,
                    env=self.env,
                    stdout=stream,
                    stderr=stream,
                    start_new_session=True,
                )
            self.starts += 1
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"the web process exited ({self.process.returncode}):\n{self.tail()}"
                    )
                try:
                    if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            raise AssertionError(f"the web process did not answer /health in 60 s:\n{self.tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, the whole process group; waits until it is gone."""
        with self._lock:
            if not self.alive():
                return
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.kills += 1

    def ensure_running(self) -> None:
        """The supervisor: a dead web process is started again on the same port."""
        with self._lock:
            if not self.alive():
                self.start()

    def stop(self) -> None:
        with self._lock:
            if self.alive():
                assert self.process is not None
                os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=10)

    def tail(self, size: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""


# --- the proxies -------------------------------------------------------------------------------------------------

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


@dataclass
class StripeFault:
    method: str
    pattern: str
    kind: str  # refuse | lose | kill
    times: int
    hits: int = 0


@dataclass
class StripeCall:
    write: str  # the write in progress when it was made ("" outside the sequence)
    method: str
    path: str
    idempotency_key: str
    outcome: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a caller that went away (its process killed) makes the late write fail; that is the point


class _Proxy(abc.ABC):
    """A threaded HTTP proxy to `upstream`: subclasses decide per request whether to forward and answer."""

    def __init__(self, *, upstream: str, port: int) -> None:
        self.upstream = upstream
        self.port = port
        self.server: _Server | None = None
        self.lock = threading.Lock()
        # A fresh connection per forward: a pooled one the upstream closes as it idles out (gunicorn's 2 s
        # keep-alive) could fail under the next request, which would read as the web dying under it.
        self.client = httpx.Client(
            base_url=upstream, timeout=120, limits=httpx.Limits(max_keepalive_connections=0)
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def forward(self, method: str, path: str, headers: Any, body: bytes) -> httpx.Response:
        kept = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
        return self.client.request(method, path, content=body, headers=kept)

    @abc.abstractmethod
    def handle(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> httpx.Response | None:
        """Forward (or not) and answer (or not): the response to pass back, None when nothing is answered."""

    def start(self) -> _Proxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = proxy.handle(self, self.command, body)
                if answer is None:  # no answer at all: the connection just closes
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                for name, value in answer.headers.multi_items():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", self.port), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.client.close()


class StripeFaultProxy(_Proxy):
    """Between Tollgate (web) and Stripe: forwards everything, except that an armed fault acts on the next
    `times` requests matching its method and path. Records every request with its Idempotency-Key."""

    def __init__(self, *, upstream: str, port: int, on_kill: Callable[[], None]) -> None:
        super().__init__(upstream=upstream, port=port)
        self.on_kill = on_kill
        self.fault: StripeFault | None = None
        self.calls: list[StripeCall] = []
        self.write = ""

    def arm(self, fault: StripeFault) -> None:
        with self.lock:
            self.fault = fault

    def disarm(self) -> StripeFault | None:
        with self.lock:
            fault, self.fault = self.fault, None
            return fault

    def _take(self, method: str, path: str) -> StripeFault | None:
        with self.lock:
            fault = self.fault
            if fault is None or fault.hits >= fault.times or fault.method != method:
                return None
            if not re.fullmatch(fault.pattern, path.split("?", 1)[0]):
                return None
            fault.hits += 1
            return fault

    def handle(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> httpx.Response | None:
        path = handler.path
        call = StripeCall(self.write, method, path, handler.headers.get("Idempotency-Key") or "", "")
        self.calls.append(call)
        fault = self._take(method, path)
        if fault is not None and fault.kind == "refuse":
            call.outcome = "refused, not forwarded"
            return None
        try:
            answer = self.forward(method, path, handler.headers, body)
        except httpx.HTTPError as exc:
            call.outcome = f"emulator unreachable: {exc}"
            return None
        if fault is not None and fault.kind == "lose":
            call.outcome = f"Stripe answered {answer.status_code}; answer lost"
            return None
        if fault is not None and fault.kind == "kill":
            call.outcome = f"Stripe answered {answer.status_code}; web killed before the answer"
            self.on_kill()
            return None
        call.outcome = str(answer.status_code)
        return answer


class TenantProxy(_Proxy):
    """Between the callers (tenant, operator) and the web process: forwards everything; `lose_next_answer`
    lets the next request through to Tollgate and drops its answer."""

    def __init__(self, *, upstream: str, port: int) -> None:
        super().__init__(upstream=upstream, port=port)
        self.losing = 0
        self.lost: list[str] = []

    def lose_next_answer(self) -> None:
        with self.lock:
            self.losing = 1

    def reset(self) -> None:
        with self.lock:
            self.losing = 0

    def handle(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> httpx.Response | None:
        try:
            answer = self.forward(method, handler.path, handler.headers, body)
        except httpx.HTTPError:
            return None  # the web process died under the request: the caller gets no answer either
        with self.lock:
            lose = method != "GET" and self.losing > 0
            if lose:
                self.losing -= 1
        if lose:
            self.lost.append(f"{method} {handler.path} answered {answer.status_code}; answer lost")
            return None
        return answer


# --- the callers -----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How one write went: every try, and the answer it ended with (None: no answer within the bounds)."""

    tries: list[str] = field(default_factory=list)
    seconds: float = 0.0
    status: int | None = None
    body: Any = None
    code: str = ""

    def ended(self) -> str:
        if self.status is None:
            return "no final answer"
        return f"{self.status}" + (f" {self.code}" if self.code else "")


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code") or "")
    return ""


def _retryable(status: int, code: str) -> bool:
    """docs/integration.md: no answer, 429, 5xx and 409 `idempotency_key_in_use` are retried with the key."""
    return status >= 500 or status == 429 or (status == 409 and code == "idempotency_key_in_use")


def _backoff(attempt: int) -> float:
    return min(0.25 * 2 ** (attempt - 1), 2.0)


class Retrier:
    """Sends a request until an answer that is not retryable, keeping the supervisor's promise (a dead web
    process is restarted before the next try) and a bound on tries and time."""

    def __init__(self, *, web: WebProcess, client: httpx.Client) -> None:
        self.web = web
        self.client = client

    def send(
        self,
        send: Callable[[], httpx.Response],
        *,
        judge: Callable[[httpx.Response], tuple[bool, str]],
        first_try: Callable[[], None] = lambda: None,
    ) -> tuple[Outcome, httpx.Response | None]:
        """`judge(answer)` → (retry?, what to record); `first_try` runs just before the first send."""
        outcome = Outcome()
        deadline = time.monotonic() + WRITE_SECONDS
        for attempt in range(1, MAX_TRIES + 1):
            self.web.ensure_running()
            if attempt == 1:
                first_try()
            try:
                answer = send()
            except httpx.TransportError as exc:
                outcome.tries.append(f"no answer ({type(exc).__name__})")
                if time.monotonic() > deadline:
                    break
                time.sleep(_backoff(attempt))
                continue
            retry, noted = judge(answer)
            outcome.tries.append(noted)
            if not retry:
                return outcome, answer
            if time.monotonic() > deadline:
                break
            in_use = "idempotency_key_in_use" in noted
            time.sleep(1.0 if in_use else _backoff(attempt))
        return outcome, None


class Tenant:
    """The tenant's backend: JSON over HTTP with its project key, one Idempotency-Key per write."""

    def __init__(self, *, base: str, key: str, web: WebProcess) -> None:
        self.key = key
        self.client = httpx.Client(base_url=base, timeout=120)
        self.retrier = Retrier(web=web, client=self.client)

    def get(self, path: str) -> Any:
        """A read is sent again when it got no answer, as the tenant's backend would; an answer is final."""
        outcome, answer = self.retrier.send(
            lambda: self.client.get(path, headers={"Authorization": f"Bearer {self.key}"}),
            judge=lambda answer: (False, str(answer.status_code)),
        )
        if answer is None:
            web = self.retrier.web
            raise AssertionError(f"GET {path}: {outcome.tries}; the web process's log:\n{web.tail()}")
        answer.raise_for_status()
        return answer.json()

    def write(
        self, method: str, path: str, body: Any, *, first_try: Callable[[], None] = lambda: None
    ) -> Outcome:
        headers = {
            "Authorization": f"Bearer {self.key}",
            "Idempotency-Key": f"exactly-once-{uuid.uuid4()}",  # once per logical write, kept on every retry
        }

        def judge(answer: httpx.Response) -> tuple[bool, str]:
            code = _error_code(answer)
            replayed = " (replayed)" if answer.headers.get("Idempotent-Replayed") == "true" else ""
            return _retryable(
                answer.status_code, code
            ), f"{answer.status_code}{' ' + code if code else ''}{replayed}"

        outcome, answer = self.retrier.send(
            lambda: self.client.request(method, path, json=body, headers=headers),
            judge=judge,
            first_try=first_try,
        )
        if answer is not None:
            outcome.status, outcome.code = answer.status_code, _error_code(answer)
            try:
                outcome.body = answer.json()
            except ValueError:
                outcome.body = answer.text[:300]
        return outcome

    def close(self) -> None:
        self.client.close()


class _Forms(html.parser.HTMLParser):
    """The fields of every <form> on a page, and the admin's messages (`<ul class="messagelist">`)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self.messages: list[tuple[str, str]] = []
        self._in_form = False
        self._textarea: str | None = None
        self._message: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({})
            self._in_form = True
        elif tag == "input" and self._in_form and values.get("name"):
            if values.get("type") not in ("checkbox", "radio") or "checked" in values:
                self.forms[-1][values["name"]] = values.get("value", "")
        elif tag == "textarea" and self._in_form and values.get("name"):
            self._textarea = values["name"]
            self.forms[-1][self._textarea] = ""
        elif tag == "li" and values.get("class") in ("error", "warning", "success", "info"):
            self._message = values["class"]
            self.messages.append((self._message, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "textarea":
            self._textarea = None
        elif tag == "li":
            self._message = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.forms[-1][self._textarea] += data
        if self._message is not None:
            level, text = self.messages[-1]
            self.messages[-1] = (level, text + data)


def _parse(page: str) -> _Forms:
    parser = _Forms()
    parser.feed(page)
    return parser


class Operator:
    """A `finance` operator in the back office (Billing → Payments → "Refund (full or partial)"), logged in with
    a session and CSRF like a browser. A refund's retry is the browser's: the same form submitted again, every
    field as the page gave it, after no answer, a 5xx page, or an error message about the payment provider."""

    def __init__(self, *, base: str, web: WebProcess) -> None:
        self.client = httpx.Client(base_url=base, timeout=120, follow_redirects=False)
        self.retrier = Retrier(web=web, client=self.client)

    def login(self) -> None:
        self.retrier.web.ensure_running()
        page = self.client.get("/admin/login/?next=/admin/")
        fields = next(f for f in _parse(page.text).forms if "username" in f)
        fields.update({"username": OPERATOR[0], "password": OPERATOR[1]})
        answer = self.client.post(
            "/admin/login/?next=/admin/", data=fields, headers={"Referer": f"{page.url}"}
        )
        assert answer.status_code == 302, f"operator login failed: {answer.status_code} {answer.text[:500]}"

    def refund(self, *, payment: str, amount: str, reason: str, first_try: Callable[[], None]) -> Outcome:
        self.retrier.web.ensure_running()
        changelist = self.client.get("/admin/billing/payment/")
        token = _parse(changelist.text).forms[0].get("csrfmiddlewaretoken") or self.client.cookies.get(
            "csrftoken"
        )
        chosen = self.client.post(
            "/admin/billing/payment/",
            data={
                "csrfmiddlewaretoken": token,
                "action": "refund",
                "_selected_action": payment,
                "index": "0",
            },
        )
        forms = [f for f in _parse(chosen.text).forms if "apply" in f]
        if chosen.status_code != 200 or not forms:
            return Outcome(tries=[f"the refund form: {chosen.status_code}"], status=chosen.status_code)
        fields = {**forms[0], "reason": reason, "amount": amount}

        def judge(answer: httpx.Response) -> tuple[bool, str]:
            if answer.status_code >= 500:
                return True, f"{answer.status_code} page"
            if answer.status_code != 302:
                return False, f"{answer.status_code} page"
            try:
                landing = self.client.get(answer.headers["Location"])
            except httpx.TransportError as exc:
                # The web process died after answering the form (a fault of the schedule): what it said is
                # lost with the page, so the operator sends the form again, as after any lost answer.
                return True, f"302, the page after it unanswered ({type(exc).__name__})"
            messages = _parse(landing.text).messages
            said = "; ".join(f"{level}: {' '.join(text.split())}" for level, text in messages)
            errors = [text for level, text in messages if level == "error"]
            return any("payment provider" in text for text in errors), f"302 → {said}"

        outcome, answer = self.retrier.send(
            lambda: self.client.post("/admin/billing/payment/", data=fields), judge=judge, first_try=first_try
        )
        if answer is not None:
            outcome.status = answer.status_code
            outcome.body = outcome.tries[-1]
        return outcome

    def close(self) -> None:
        self.client.close()


# --- the sequence ------------------------------------------------------------------------------------------------


@dataclass
class Pack:
    """A paid one-time purchase of `credits-1000` (setup, no fault): a payment to refund."""

    customer: str
    quantity: int
    payment: str = ""
    intent: str = ""

    @property
    def amount(self) -> int:
        return PACK_UNIT * self.quantity


@dataclass
class Bill:
    """An open invoice of `amount` billed by invoice (`send_invoice`, made at Stripe in setup, no fault): an
    invoice to credit or void."""

    customer: str
    amount: int
    stripe_invoice: str = ""
    local_id: str = ""


@dataclass
class Draft:
    """A draft invoice of no lines (`send_invoice`, made at Stripe in setup, no fault, never finalized): an invoice
    whose lines the writes add and remove."""

    customer: str
    stripe_invoice: str = ""
    local_id: str = ""


@dataclass
class Write:
    index: int
    kind: str
    customer: str
    fault: str
    params: dict[str, Any] = field(default_factory=dict)
    # What happened (filled in by the runner).
    outcome: Outcome | None = None
    stripe_calls: list[str] = field(default_factory=list)
    fault_fired: str = ""
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"#{self.index} {self.kind} {self.customer} ({params}) fault={self.fault}"


@dataclass
class ModelSubscription:
    """A subscription the sequence intends, in the state its writes intend."""

    quantity: int
    cancel_at_period_end: bool = False
    canceled: bool = False
    local_id: str = ""  # our id, from the create's answer
    version: str = VERSIONS[-1]  # the version of `pro` it is on: new subscribers get the latest


@dataclass
class Sequence:
    seed: int
    customers: list[str]
    packs: list[Pack]
    writes: list[Write]
    bills: list[Bill] = field(default_factory=list)
    # What the writes intend, for the checks: refunds per pack index, subscriptions per customer.
    refunds: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    subscriptions: dict[str, list[ModelSubscription]] = field(default_factory=lambda: defaultdict(list))
    # Credit notes per bill index (their amounts), the bills voided and those marked uncollectible.
    notes: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    voided: set[int] = field(default_factory=set)
    uncollectible: set[int] = field(default_factory=set)
    drafts: list[Draft] = field(default_factory=list)
    # The lines each draft should end with: (description, amount) by the index of the write that added it.
    lines: dict[int, dict[int, tuple[str, int]]] = field(default_factory=lambda: defaultdict(dict))

    def describe(self) -> str:
        packs = ", ".join(f"pack#{i} {p.customer} {p.amount}" for i, p in enumerate(self.packs))
        bills = ", ".join(f"bill#{i} {b.customer} {b.amount}" for i, b in enumerate(self.bills)) or "none"
        drafts = ", ".join(f"draft#{i} {d.customer}" for i, d in enumerate(self.drafts)) or "none"
        return f"customers {', '.join(self.customers)}; paid {packs}; open bills {bills}; drafts {drafts}"


def plan_sequence(seed: int, faults: tuple[str, ...]) -> Sequence:
    """The seed's customers, paid packs and 6–12 writes, each valid in the state the earlier ones intend (so
    every write should succeed), each with a fault drawn from FAULTS (then kept only if allowed)."""
    rng = random.Random(seed)
    customers = [f"x{seed}-c{n + 1}" for n in range(rng.randint(2, 3))]
    packs = [
        Pack(customer=c, quantity=rng.randint(1, 3)) for c in customers for _ in range(rng.randint(1, 2))
    ]
    left = {index: pack.amount for index, pack in enumerate(packs)}
    live: dict[str, ModelSubscription | None] = dict.fromkeys(customers)
    # The open bills (their own generator: the packs and writes of a seed stay what they were without them).
    bill_rng = random.Random(seed * 104_729 + 3)
    bills = [
        Bill(customer=c, amount=bill_rng.randint(2, 6) * 1000) for c in customers if bill_rng.random() < 0.7
    ]
    owed = {index: bill.amount for index, bill in enumerate(bills)}
    # The drafts, of their own generator too.
    draft_rng = random.Random(seed * 15_485_863 + 11)
    drafts = [Draft(customer=c) for c in customers if draft_rng.random() < 0.6]
    sequence = Sequence(seed=seed, customers=customers, packs=packs, writes=[], bills=bills, drafts=drafts)
    for index in range(rng.randint(6, 12)):
        customer = rng.choice(customers)
        sub = live[customer]
        choices: list[tuple[str, float]] = []
        refundable = [i for i, pack in enumerate(packs) if pack.customer == customer and left[i] > 0]
        if refundable:
            choices += [("refund", 3.0), ("operator_refund", 1.0)]
        open_bills = [
            i for i, bill in enumerate(bills) if bill.customer == customer and i not in sequence.voided
        ]
        # A note leaves some owed (the invoice stays open); Stripe credits no uncollectible invoice.
        creditable = [i for i in open_bills if owed[i] >= 2 and i not in sequence.uncollectible]
        voidable = [i for i in open_bills if not sequence.notes.get(i)]
        markable = [i for i in open_bills if i not in sequence.uncollectible]
        if creditable:
            choices.append(("credit_note", 1.2))
        if voidable:
            choices.append(("void", 0.8))
        if markable:
            choices.append(("uncollectible", 0.6))
        editable = [i for i, draft in enumerate(drafts) if draft.customer == customer]
        if editable:
            choices.append(("line_add", 1.0))
        if any(sequence.lines.get(i) for i in editable):
            choices.append(("line_remove", 0.6))
        if sub is None:
            choices.append(("subscribe", 2.5))
        else:
            choices += [("cancel_now", 0.7), ("change_quantity", 1.0), ("version_move", 0.8)]
            choices.append(("resume", 2.0) if sub.cancel_at_period_end else ("cancel_at_period_end", 1.5))
        kinds, weights = zip(*choices, strict=True)
        kind = rng.choices(kinds, weights)[0]
        fault = rng.choice(FAULTS)
        write = Write(
            index=index + 1, kind=kind, customer=customer, fault=fault if fault in faults else "none"
        )
        if kind in ("refund", "operator_refund"):
            target = rng.choice(refundable)
            amount = (
                left[target] if left[target] == 1 or rng.random() < 0.4 else rng.randint(1, left[target] - 1)
            )
            write.params = {"pack": target, "amount": amount, "full": amount == left[target]}
            left[target] -= amount
            sequence.refunds[target].append(amount)
        elif kind == "credit_note":
            target = rng.choice(creditable)
            amount = rng.randint(1, owed[target] - 1)
            write.params = {"bill": target, "amount": amount}
            owed[target] -= amount
            sequence.notes[target].append(amount)
        elif kind == "void":
            target = rng.choice(voidable)
            write.params = {"bill": target}
            sequence.voided.add(target)
        elif kind == "uncollectible":
            target = rng.choice(markable)
            write.params = {"bill": target}
            sequence.uncollectible.add(target)
        elif kind == "line_add":
            target = rng.choice(editable)
            amount = rng.choice((-1, 1, 1, 1)) * rng.randint(1, 40) * 100
            write.params = {"draft": target, "amount": amount, "description": f"write #{index + 1}"}
            sequence.lines[target][index + 1] = (write.params["description"], amount)
        elif kind == "line_remove":
            target = rng.choice([i for i in editable if sequence.lines.get(i)])
            added = rng.choice(sorted(sequence.lines[target]))
            write.params = {"draft": target, "added_by": added}
            del sequence.lines[target][added]
        elif kind == "subscribe":
            model = ModelSubscription(quantity=rng.randint(1, 3))
            write.params = {"quantity": model.quantity}
            live[customer] = model
            sequence.subscriptions[customer].append(model)
        else:
            assert sub is not None
            write.params = {"subscription": len(sequence.subscriptions[customer]) - 1}
            if kind == "cancel_now":
                sub.canceled = True
                live[customer] = None
            elif kind == "version_move":
                write.params["to_version"] = next(v for v in VERSIONS if v != sub.version)
                sub.version = write.params["to_version"]
            elif kind == "change_quantity":
                write.params["quantity"] = rng.choice([q for q in (1, 2, 3, 4) if q != sub.quantity])
                write.params["proration_behavior"] = rng.choice(("none", "create_prorations"))
                sub.quantity = write.params["quantity"]
            else:
                sub.cancel_at_period_end = kind == "cancel_at_period_end"
        sequence.writes.append(write)
    return sequence


# --- running a sequence --------------------------------------------------------------------------------------------


@dataclass
class Processes:
    """What the module's fixture started: the web process, both proxies, the workers."""

    web: WebProcess
    stripe: StripeFaultProxy
    front: TenantProxy
    workers: cv.Workers
    server: Any  # the emulator's HTTP server; each test plugs its emulator in
    idle: Any  # the emulator it serves between tests


def _money(amount: int) -> str:
    return f"{amount // 100}.{amount % 100:02d}"


class Runner:
    """Drives one sequence: setup (customers with a saved card, paid packs; no faults), the writes with their
    faults and retries, the settling and repair, then the checks."""

    def __init__(
        self, *, processes: Processes, emulator: Any, sdk: Any, project: Any, key: str, api: Any
    ) -> None:
        self.p = processes
        self.emulator = emulator
        self.sdk = sdk
        self.project = project
        self.key = key
        self.api = api  # in-process reads for the checks (the same database)
        self.tenant = Tenant(base=processes.front.url, key=key, web=processes.web)
        self.operator = Operator(base=processes.front.url, web=processes.web)
        self.beat_sweeps: list[str] = []
        self.repair_output = ""
        self.versions: dict[str, int] = {}  # the number of each of VERSIONS
        self.version_prices: dict[str, str] = {}  # each one's Stripe price of `pro-monthly`

    def close(self) -> None:
        self.tenant.close()
        self.operator.close()

    # -- setup --

    def _versions_setup(self) -> None:
        """`pro`'s "before" version (a feature added: it freezes `pro-monthly` at 30.00), then its "repriced" one
        from a draft that reprices it (a new Stripe price); through the API, as a tenant does."""
        from catalog.models import ProductVersion

        gives = self.tenant.get("/api/v1/products/pro")["features"]  # kept: the checks expect what they give
        steps = [
            ("POST", "/api/v1/features", {"key": "beta", "name": "Beta", "type": "boolean"}),
            ("PATCH", "/api/v1/products/pro", {"features": {**gives, "beta": True}}),
            ("PUT", "/api/v1/products/pro/draft", {"prices": {PLAN_PRICE: {"unit_amount": REPRICED}}}),
            ("POST", "/api/v1/products/pro/draft/publish", {}),
        ]
        answers = []
        for method, path, body in steps:
            made = self.tenant.write(method, path, body)
            if made.status not in (200, 201):
                raise AssertionError(f"setup: {method} {path}: {made.ended()} {made.body}")
            answers.append(made.body)
        self.versions = {"before": answers[1]["version"], "repriced": answers[3]["version"]}
        frozen = dict(
            ProductVersion.objects.filter(
                product__project=self.project, product__key="pro", number__in=self.versions.values()
            ).values_list("number", "prices")
        )
        for label, number in self.versions.items():
            self.version_prices[label] = next(
                p["stripe_price_id"] for p in frozen[number] if p["key"] == PLAN_PRICE
            )
        if len(set(self.version_prices.values()) - {None}) != len(VERSIONS):
            raise AssertionError(f"setup: the versions' Stripe prices {self.version_prices}")

    def setup(self, sequence: Sequence) -> None:
        from customers.models import Customer
        from customers.services.customers import customer_ensure_stripe

        self._versions_setup()
        for customer in sequence.customers:
            made = self.tenant.write(
                "POST", "/api/v1/customers", {"external_id": customer, "email": f"{customer}@example.com"}
            )
            if made.status not in (200, 201):
                raise AssertionError(f"setup: customer {customer}: {made.ended()} {made.body}")
            stripe_customer = customer_ensure_stripe(
                customer=Customer.objects.get(project=self.project, external_id=customer)
            )
            card = self.sdk.v1.payment_methods.attach(cv.PM_OK, {"customer": stripe_customer}).id
            self.sdk.v1.customers.update(
                stripe_customer, {"invoice_settings": {"default_payment_method": card}}
            )
        for pack in sequence.packs:
            made = self.tenant.write(
                "POST",
                "/api/v1/payments",
                {
                    "customer": pack.customer,
                    "items": [{"price": "credits-1000", "quantity": pack.quantity}],
                    "flow": "intent",
                },
            )
            if made.status != 201:
                raise AssertionError(f"setup: pack for {pack.customer}: {made.ended()} {made.body}")
            pack.payment, pack.intent = made.body["id"], made.body["stripe_payment_intent_id"]
            self.sdk.v1.payment_intents.confirm(pack.intent, {"payment_method": cv.PM_OK})
        for bill in sequence.bills:  # as a tenant's finance team bills at Stripe's dashboard
            stripe_customer = Customer.objects.get(
                project=self.project, external_id=bill.customer
            ).stripe_customer_id
            bill.stripe_invoice = open_invoice_at_stripe(self.sdk, stripe_customer, bill.amount)
        for draft in sequence.drafts:  # a draft the tenant's finance team started at Stripe's dashboard
            stripe_customer = Customer.objects.get(
                project=self.project, external_id=draft.customer
            ).stripe_customer_id
            draft.stripe_invoice = self.sdk.v1.invoices.create(
                {"customer": stripe_customer, "collection_method": "send_invoice", "days_until_due": 30}
            ).id
        deadline = time.monotonic() + 60
        for pack in sequence.packs:  # the refunds need the payments paid here (their webhooks applied)
            while self.tenant.get(f"/api/v1/payments/{pack.payment}")["status"] != "succeeded":
                if time.monotonic() > deadline:
                    raise AssertionError(f"setup: payment {pack.payment} not succeeded after 60 s")
                time.sleep(0.1)
        for bill in sequence.bills:  # the corrections need the invoices mirrored open
            while not bill.local_id:
                listed = self.tenant.get(f"/api/v1/invoices?customer={quote(bill.customer)}&status=open")
                bill.local_id = next(
                    (i["id"] for i in listed["data"] if i["stripe_invoice_id"] == bill.stripe_invoice), ""
                )
                if not bill.local_id:
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            f"setup: invoice {bill.stripe_invoice} not mirrored open after 60 s"
                        )
                    time.sleep(0.1)
        for draft in sequence.drafts:  # the line edits need the drafts mirrored
            while not draft.local_id:
                listed = self.tenant.get(f"/api/v1/invoices?customer={quote(draft.customer)}&status=draft")
                draft.local_id = next(
                    (i["id"] for i in listed["data"] if i["stripe_invoice_id"] == draft.stripe_invoice), ""
                )
                if not draft.local_id:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"setup: draft {draft.stripe_invoice} not mirrored after 60 s")
                    time.sleep(0.1)
        self.operator.login()

    # -- the writes --

    def run(self, sequence: Sequence) -> None:
        rng = random.Random(sequence.seed * 7_919 + 5)  # the moments the web process is killed at
        for write in sequence.writes:
            self.execute(write, sequence, kill_after=rng.uniform(0.0, 0.35))
            if not back_to_back():
                # Each write meets a settled mirror, so what fails is the write's own retry, not the mirror's
                # race with the write before it (TOLLGATE_EXACTLY_ONCE_BACK_TO_BACK=1 shows that race).
                self.settle(f"after write #{write.index}")

    def _subscription(self, sequence: Sequence, write: Write) -> str:
        model = sequence.subscriptions[write.customer][write.params["subscription"]]
        if model.local_id:
            return model.local_id
        # Its create did not answer an id: the customer's live subscription, as the tenant would look it up.
        listed = self.tenant.get(f"/api/v1/subscriptions?customer={quote(write.customer)}")
        live = [s for s in listed["data"] if s["status"] not in ("canceled", "incomplete_expired")]
        if live:
            model.local_id = live[0]["id"]
        return model.local_id

    def execute(self, write: Write, sequence: Sequence, *, kill_after: float) -> None:
        first_calls = len(self.p.stripe.calls)
        self.p.stripe.write = f"#{write.index}"
        timer: threading.Timer | None = None
        if write.fault in STRIPE_FAULTS:
            kind, times = STRIPE_FAULTS[write.fault]
            method, pattern = STRIPE_WRITE[write.kind]
            self.p.stripe.arm(StripeFault(method=method, pattern=pattern, kind=kind, times=times))

        def first_try() -> None:
            nonlocal timer
            if write.fault == "answer_lost":
                self.p.front.lose_next_answer()
            elif write.fault == "web_killed":
                timer = threading.Timer(kill_after, self.p.web.kill)
                timer.start()

        kills = self.p.web.kills
        began = time.monotonic()
        try:
            write.outcome = self._perform(write, sequence, first_try)
            write.outcome.seconds = time.monotonic() - began
        finally:
            if timer is not None:
                timer.cancel()
            fault = self.p.stripe.disarm()
            self.p.front.reset()
            self.p.stripe.write = ""
        if fault is not None:
            write.fault_fired = f"{fault.kind} ×{fault.hits} of {fault.times}"
        elif write.fault == "web_killed":
            write.fault_fired = f"web killed {self.p.web.kills - kills}× (after {kill_after:.2f} s)"
        elif write.fault == "answer_lost":
            write.fault_fired = "answer dropped" if self.p.front.lost else "not fired"
        self.p.front.lost.clear()
        write.stripe_calls = [
            f"{c.method} {c.path} key={c.idempotency_key or '-'} → {c.outcome}"
            for c in self.p.stripe.calls[first_calls:]
            if c.method != "GET"
        ]
        write.problems += self._judge(write, sequence)

    def _perform(self, write: Write, sequence: Sequence, first_try: Callable[[], None]) -> Outcome:
        if write.kind in ("refund", "operator_refund"):
            pack = sequence.packs[write.params["pack"]]
            if write.kind == "operator_refund":
                return self.operator.refund(
                    payment=pack.payment,
                    amount="" if write.params["full"] else _money(write.params["amount"]),
                    reason=f"exactly-once write #{write.index}",
                    first_try=first_try,
                )
            body: dict[str, Any] = {"reason": "requested_by_customer"}
            if not write.params["full"]:
                body["amount"] = write.params["amount"]
            return self.tenant.write(
                "POST", f"/api/v1/payments/{pack.payment}/refund", body, first_try=first_try
            )
        if write.kind == "credit_note":
            bill = sequence.bills[write.params["bill"]]
            return self.tenant.write(
                "POST",
                f"/api/v1/invoices/{bill.local_id}/credit_notes",
                {"amount": write.params["amount"], "reason": "order_change", "memo": f"write #{write.index}"},
                first_try=first_try,
            )
        if write.kind == "uncollectible":
            bill = sequence.bills[write.params["bill"]]
            return self.tenant.write(
                "POST",
                f"/api/v1/invoices/{bill.local_id}/mark_uncollectible",
                {"reason": f"exactly-once write #{write.index}"},
                first_try=first_try,
            )
        if write.kind == "void":
            bill = sequence.bills[write.params["bill"]]
            return self.tenant.write(
                "POST",
                f"/api/v1/invoices/{bill.local_id}/void",
                {"reason": f"exactly-once write #{write.index}"},
                first_try=first_try,
            )
        if write.kind == "line_add":
            draft = sequence.drafts[write.params["draft"]]
            return self.tenant.write(
                "POST",
                f"/api/v1/invoices/{draft.local_id}/lines",
                {"amount": write.params["amount"], "description": write.params["description"]},
                first_try=first_try,
            )
        if write.kind == "line_remove":
            draft = sequence.drafts[write.params["draft"]]
            description = f"write #{write.params['added_by']}"
            lines = self.tenant.get(f"/api/v1/invoices/{draft.local_id}")["lines"]
            line = next((li["id"] for li in lines if li["description"] == description), None)
            if line is None:
                return Outcome(tries=[f"skipped: the draft has no line {description!r} here"])
            return self.tenant.write(
                "DELETE", f"/api/v1/invoices/{draft.local_id}/lines/{line}", None, first_try=first_try
            )
        if write.kind == "subscribe":
            outcome = self.tenant.write(
                "POST",
                "/api/v1/subscriptions",
                {"customer": write.customer, "price": PLAN_PRICE, "quantity": write.params["quantity"]},
                first_try=first_try,
            )
            if outcome.status == 201 and isinstance(outcome.body, dict):
                position = sum(
                    1
                    for w in sequence.writes[: write.index - 1]
                    if w.kind == "subscribe" and w.customer == write.customer
                )
                sequence.subscriptions[write.customer][position].local_id = outcome.body["id"]
            return outcome
        subscription = self._subscription(sequence, write)
        if not subscription:
            return Outcome(tries=["skipped: the customer has no live subscription here"])
        path = f"/api/v1/subscriptions/{subscription}"
        if write.kind == "cancel_now":
            return self.tenant.write("POST", f"{path}/cancel", {"at_period_end": False}, first_try=first_try)
        if write.kind == "cancel_at_period_end":
            return self.tenant.write("POST", f"{path}/cancel", {"at_period_end": True}, first_try=first_try)
        if write.kind == "resume":
            return self.tenant.write("POST", f"{path}/resume", None, first_try=first_try)
        if write.kind == "version_move":
            body = {
                "product": "pro",
                "to_version": self.versions[write.params["to_version"]],
                "subscriptions": [subscription],
            }
            return self.tenant.write("POST", "/api/v1/subscriptions/version_moves", body, first_try=first_try)
        body = {
            "quantity": write.params["quantity"],
            "proration_behavior": write.params["proration_behavior"],
        }
        return self.tenant.write("PATCH", path, body, first_try=first_try)

    def _judge(self, write: Write, sequence: Sequence) -> list[str]:
        """(e) The answer a write ended with is what the completed operation answers."""
        outcome = write.outcome
        assert outcome is not None
        if write.kind == "operator_refund":
            said = str(outcome.body or "")
            pack = sequence.packs[write.params["pack"]]
            done = sum(
                a
                for w in sequence.writes[: write.index]
                for a in (
                    [w.params["amount"]]
                    if w.kind in ("refund", "operator_refund")
                    and w.params.get("pack") == write.params["pack"]
                    else []
                )
            )
            wanted = f"refunded ${_money(done)} of ${_money(pack.amount)}"
            if outcome.status != 302 or wanted not in said or "error:" in said:
                return [
                    f"the operator's last page: {outcome.ended()} {said!r}; expected the message {wanted!r}"
                ]
            return []
        expected_status = 201 if write.kind in ("subscribe", "credit_note", "line_add") else 200
        if outcome.status != expected_status:
            return [f"ended {outcome.ended()} (expected {expected_status}): {json.dumps(outcome.body)[:300]}"]
        body = outcome.body
        problems: list[str] = []

        def expect(name: str, value: Any) -> None:
            if body.get(name) != value:
                problems.append(f"answered {name}={body.get(name)!r}, the completed write means {value!r}")

        if write.kind == "refund":
            pack_index = write.params["pack"]
            done = sum(
                w.params["amount"]
                for w in sequence.writes[: write.index]
                if w.kind in ("refund", "operator_refund") and w.params.get("pack") == pack_index
            )
            expect("amount_refunded", done)
            expect(
                "status", "refunded" if done >= sequence.packs[pack_index].amount else "partially_refunded"
            )
        elif write.kind == "subscribe":
            expect("status", "active")
            expect("quantity", write.params["quantity"])
        elif write.kind == "cancel_now":
            expect("status", "canceled")
        elif write.kind == "cancel_at_period_end":
            expect("cancel_at_period_end", True)
        elif write.kind == "resume":
            expect("cancel_at_period_end", False)
        elif write.kind == "change_quantity":
            expect("quantity", write.params["quantity"])
        elif write.kind == "version_move":
            # A retry after the move committed (its answer lost, the web process killed after) moves nothing
            # more: `moved` may be 0 there, the version asked is what the answer says.
            expect("product", "pro")
            expect("to_version", self.versions[write.params["to_version"]])
        elif write.kind == "credit_note":
            expect("amount", write.params["amount"])
            expect("pre_payment_amount", write.params["amount"])
            expect("status", "issued")
            expect("invoice", sequence.bills[write.params["bill"]].local_id)
        elif write.kind == "void":
            expect("status", "void")
            expect("id", sequence.bills[write.params["bill"]].local_id)
        elif write.kind == "uncollectible":
            expect("status", "uncollectible")
            expect("id", sequence.bills[write.params["bill"]].local_id)
        elif write.kind in ("line_add", "line_remove"):
            expect("status", "draft")
            expect("id", sequence.drafts[write.params["draft"]].local_id)
            # The draft's lines as this write left them: each line added before it and not removed, once.
            left: dict[int, tuple[str, int]] = {}
            for w in sequence.writes[: write.index]:
                if w.params.get("draft") == write.params["draft"]:
                    if w.kind == "line_add":
                        left[w.index] = (w.params["description"], w.params["amount"])
                    elif w.kind == "line_remove":
                        left.pop(w.params["added_by"], None)
            answered = sorted((li["description"], li["amount"]) for li in body.get("lines") or [])
            if answered != sorted(left.values()):
                problems.append(
                    f"answered lines {answered}, the completed write means {sorted(left.values())}"
                )
        return problems

    # -- settling --

    def settle(self, what: str) -> None:
        """Until the emulator has delivered every webhook and the workers have applied every stored event. An
        event stored by a web process killed before it queued the task waits for beat's sweep (every 30 s, for
        events untouched for 30 s): the harness plays beat, at once, 31 s ahead on this process's clock."""
        self.p.web.ensure_running()
        if not self.emulator.webhooks.wait_idle(timeout=60):
            raise AssertionError(f"{what}: the emulator's webhooks still queued after 60 s")
        try:
            cv.wait_idle(self.p.workers, 5.0, what)
            return
        except AssertionError:
            pass
        from webhooks.services.process import stripe_events_requeue_due

        with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=True):
            queued = stripe_events_requeue_due()
        self.beat_sweeps.append(f"{what}: beat's sweep queued {queued} key(s) again")
        cv.wait_idle(self.p.workers, cv.wait_seconds(), what)

    def repair(self) -> None:
        """The repair the product offers, when it has it: a refund settle sweep, then `reconcile --fix`."""
        output = io.StringIO()
        sweep = refunds_settle_sweep()
        if sweep is not None:
            output.write(f"{sweep.__module__}.refunds_settle_sweep: {sweep()!r}\n")
            self.settle("after the refund settle sweep")
        else:
            output.write("no refunds_settle_sweep in the product (billing.tasks, billing.services.refunds)\n")
        try:
            call_command("reconcile", "--fix", stdout=output, stderr=output)
        except CommandError as exc:  # drift left unfixed: the checks say which
            output.write(f"reconcile: CommandError: {exc}\n")
        self.settle("after reconcile --fix")
        self.repair_output = output.getvalue()


def refunds_settle_sweep() -> Callable[[], Any] | None:
    """The product's refund settle sweep, if it has one (a Celery task or a plain function)."""
    import importlib

    for module, name in (
        ("billing.tasks", "refunds_settle_sweep"),
        ("billing.services.refunds", "refunds_settle_sweep"),
    ):
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if callable(found):
            return found  # type: ignore[no-any-return]
    return None


# --- the checks ----------------------------------------------------------------------------------------------------


class Effect(cv.Mismatch):
    def row(self) -> str:
        return f"  {self.object:<44} {self.field:<26} at Stripe={self.local!r:<24} intended={self.stripe!r}"


class Checks:
    """(a) effects at Stripe, (b) local rows, (c) entitlements, (d) revenue; mismatches as rows."""

    def __init__(self, *, runner: Runner, sequence: Sequence, catalog: Any) -> None:
        self.runner = runner
        self.sequence = sequence
        self.catalog = catalog
        self.sdk = runner.sdk
        self.mismatches: list[cv.Mismatch] = []
        self.checked: Counter[str] = Counter()

    def differ(self, obj: str, name: str, local: Any, stripe: Any) -> None:
        self.checked[obj.split(" ", 1)[0]] += 1
        if local != stripe:
            self.mismatches.append(cv.Mismatch(obj, name, local, stripe))

    def effect(self, obj: str, name: str, at_stripe: Any, intended: Any) -> None:
        """(a) What Stripe holds against what the writes intended."""
        self.checked["stripe-effect"] += 1
        if at_stripe != intended:
            self.mismatches.append(Effect(obj, name, at_stripe, intended))

    def run(self) -> None:
        self.stripe_effects()
        self.refunds()
        self.revenue()
        self.mirrors()
        self.tenant_events()
        self.corrections()
        self.drafts()

    def _stripe_refunds(self, intent: str) -> list[dict[str, Any]]:
        return cv._all(self.sdk.v1.refunds.list, {"payment_intent": intent})

    def stripe_effects(self) -> None:
        """(a) Counted at Stripe: the refunds of each pack are the intended ones (one per refund write, its
        amount); each customer has one subscription per intended create, each in the state its writes meant."""
        for index, pack in enumerate(self.sequence.packs):
            made = sorted(
                int(r["amount"])
                for r in self._stripe_refunds(pack.intent)
                if r["status"] in ("succeeded", "pending")
            )
            self.effect(
                f"stripe refunds of pack#{index} {pack.intent}",
                "amounts",
                made,
                sorted(self.sequence.refunds.get(index, [])),
            )
        from customers.models import Customer

        for customer in self.sequence.customers:
            stripe_customer = Customer.objects.get(
                project=self.runner.project, external_id=customer
            ).stripe_customer_id
            found = sorted(
                cv._all(self.sdk.v1.subscriptions.list, {"customer": stripe_customer, "status": "all"}),
                key=lambda s: (s["created"], s["id"]),
            )
            intended = self.sequence.subscriptions.get(customer, [])
            self.effect(f"stripe subscriptions of {customer}", "count", len(found), len(intended))
            # Paired through our rows where a create answered (two creates in one second tie on `created`),
            # the rest in Stripe's order.
            from billing.models import Subscription

            by_id = {sub["id"]: sub for sub in found}
            mirrors = dict(
                Subscription.objects.filter(project=self.runner.project).values_list(
                    "pk", "stripe_subscription_id"
                )
            )
            paired = {n: by_id.pop(mirrors.get(m.local_id, ""), None) for n, m in enumerate(intended)}
            rest = [sub for sub in found if sub["id"] in by_id]
            for number, model in enumerate(intended):
                stripe_sub = paired[number] or (rest.pop(0) if rest else None)
                if stripe_sub is None:
                    continue
                name = f"stripe subscription {stripe_sub['id']} ({customer} #{number + 1})"
                self.effect(name, "status", stripe_sub["status"], "canceled" if model.canceled else "active")
                if not model.canceled:
                    self.effect(
                        name,
                        "cancel_at_period_end",
                        bool(stripe_sub.get("cancel_at_period_end")),
                        model.cancel_at_period_end,
                    )
                self.effect(
                    name, "quantity", int(stripe_sub["items"]["data"][0].get("quantity") or 1), model.quantity
                )
                if not model.canceled:  # on the Stripe price and the version its moves meant
                    self.effect(
                        name,
                        "price",
                        stripe_id_of(stripe_sub["items"]["data"][0].get("price")),
                        self.runner.version_prices[model.version],
                    )
                    self.effect(
                        name,
                        "version here",
                        sorted(
                            SubscriptionItem.objects.filter(
                                subscription__stripe_subscription_id=stripe_sub["id"]
                            ).values_list("product_version", flat=True)
                        ),
                        [self.runner.versions[model.version]],
                    )

    def refunds(self) -> None:
        """(b) Every local refund is one Stripe refund, with Stripe's status and amount; Stripe has no refund of
        ours (metadata `tollgate_refund`) that we lack."""
        local = {r.pk: r for r in Refund.objects.filter(project=self.runner.project)}
        seen: set[str] = set()
        for pack in self.sequence.packs:
            for stripe_refund in self._stripe_refunds(pack.intent):
                ours = (stripe_refund.get("metadata") or {}).get("tollgate_refund", "")
                name = f"refund {stripe_refund['id']} ({ours or 'no tollgate_refund'})"
                row = local.get(ours)
                if row is None:
                    self.differ(
                        name, "(row)", "missing", f"{stripe_refund['status']} {stripe_refund['amount']}"
                    )
                    continue
                seen.add(ours)
                self.differ(name, "stripe_refund_id", row.stripe_refund_id, stripe_refund["id"])
                self.differ(name, "status", row.status, stripe_refund["status"])
                self.differ(name, "amount", row.amount, int(stripe_refund["amount"]))
        for pk, row in local.items():
            if pk not in seen:
                self.differ(
                    f"refund {pk} (payment {row.payment_id})",
                    "(row)",
                    f"{row.status} {row.amount} stripe_refund_id={row.stripe_refund_id!r}",
                    "no such refund at Stripe",
                )

    def revenue(self) -> None:
        """(d) `GET /metrics/revenue`: revenue and refunds per currency equal sums over Stripe's charges (their
        `amount`, and `amount_refunded`, which counts pending and succeeded refunds)."""
        start = (timezone.now() - timedelta(days=2)).isoformat()
        end = (timezone.now() + timedelta(days=2)).isoformat()
        answer = self.runner.api.get(
            f"/api/v1/metrics/revenue?from={quote(start)}&to={quote(end)}&interval=day", key=self.runner.key
        )
        local: dict[str, Counter[str]] = defaultdict(Counter)
        for row in answer.json().get("data", []):
            local[row["currency"]]["revenue"] += int(row["revenue"])
            local[row["currency"]]["refunds"] += int(row["refunds"])
        stripe: dict[str, Counter[str]] = defaultdict(Counter)
        for charge in cv._all(self.sdk.v1.charges.list, {}):
            if charge["status"] != "succeeded":
                continue
            stripe[charge["currency"]]["revenue"] += int(charge["amount"])
            stripe[charge["currency"]]["refunds"] += int(charge.get("amount_refunded") or 0)
        for currency in sorted(set(local) | set(stripe)):
            for figure in ("revenue", "refunds"):
                self.differ(
                    f"metrics/revenue {currency}", figure, local[currency][figure], stripe[currency][figure]
                )
        for obj, name, kept, expected in cv.figures_differences(
            project=self.runner.project, api=self.runner.api, key=self.runner.key
        ):
            self.differ(obj, name, kept, expected)
        for obj, name, kept, expected in cv.tie_out_differences(project=self.runner.project):
            self.differ(obj, name, kept, expected)
        for obj, name, kept, expected in cv.journal_differences(project=self.runner.project):
            self.differ(obj, name, kept, expected)
        for obj, name, kept, expected in cv.recognition_differences(project=self.runner.project):
            self.differ(obj, name, kept, expected)

    def mirrors(self) -> None:
        """(b, c) The convergence test's field-by-field comparison: subscriptions, invoices, payments, credits and
        entitlements per customer, nothing granted or announced twice, no failed Stripe event."""
        from customers.models import Customer

        plans = {
            customer: cv.Plan(
                customer=customer,
                packs=[
                    cv.Pack(
                        index=i,
                        flow="intent",
                        quantity=p.quantity,
                        disputed=False,
                        payment=p.payment,
                        stripe_intent=p.intent,
                    )
                    for i, p in enumerate(self.sequence.packs)
                    if p.customer == customer
                ],
            )
            for customer in self.sequence.customers
        }
        scenario = cv.Scenario(seed=self.sequence.seed, plans=plans, steps=[], redelivery=random.Random(0))
        stripe_customers = list(
            Customer.objects.filter(project=self.runner.project, external_id__in=self.sequence.customers)
            .exclude(stripe_customer_id="")
            .values_list("stripe_customer_id", flat=True)
        )
        truth = cv.Truth(self.sdk, stripe_customers)
        truth.now = self.runner.emulator.clock.now()
        comparison = cv.Comparison(
            project=self.runner.project,
            truth=truth,
            api=self.runner.api,
            key=self.runner.key,
            scenario=scenario,
        )
        # All of its comparisons but `outbound_events_once`, whose "one event per transition" does not hold for
        # sequences that really toggle a cancellation back and forth: `tenant_events` counts them instead.
        comparison.subscriptions()
        comparison.invoices()
        comparison.payments()
        comparison.customers(pro_product=self.catalog.pro.stripe_product_id, credit_price_amount=PACK_UNIT)
        comparison.credit_grants_once()
        comparison.inbox()
        self.mismatches += comparison.mismatches
        self.checked.update(comparison.checked)

    def tenant_events(self) -> None:
        """Nothing announced twice: per subscription, one `subscription.created`, one `subscription.canceled`
        when it was canceled, and one `subscription.updated` moving `cancel_at_period_end` per write that
        scheduled or undid a cancellation."""
        from events.models import Event

        counted: Counter[tuple[str, str]] = Counter()
        for event in Event.objects.filter(project=self.runner.project):
            obj = (event.data or {}).get("object") or {}
            if event.type == "subscription.updated" and "cancel_at_period_end" in (
                event.previous_attributes or {}
            ):
                counted[(str(obj.get("id")), "cancel_at_period_end toggled")] += 1
            elif event.type in ("subscription.created", "subscription.canceled"):
                counted[(str(obj.get("id")), event.type)] += 1
        for customer, models in self.sequence.subscriptions.items():
            for number, model in enumerate(models):
                if not model.local_id:
                    continue
                toggles = sum(
                    1
                    for w in self.sequence.writes
                    if w.customer == customer
                    and w.params.get("subscription") == number
                    and w.kind in ("cancel_at_period_end", "resume")
                )
                name = f"tenant events of {model.local_id} ({customer} #{number + 1})"
                self.differ(
                    name, "subscription.created", counted[(model.local_id, "subscription.created")], 1
                )
                self.differ(
                    name,
                    "subscription.canceled",
                    counted[(model.local_id, "subscription.canceled")],
                    int(model.canceled),
                )
                self.differ(
                    name,
                    "cancel_at_period_end toggled",
                    counted[(model.local_id, "cancel_at_period_end toggled")],
                    toggles,
                )

    def corrections(self) -> None:
        """(a, b) Each bill at Stripe: void when a write voided it, else uncollectible when one marked it so, else
        open, owing what its credit notes left; one issued credit note per credit-note write, of its amount. Its
        mirror: the invoice's status and amount due, one row per Stripe credit note with Stripe's amount and status,
        none Stripe lacks; announced once: `invoice.voided` once if voided, `invoice.marked_uncollectible` once if
        marked, `credit_note.created` once per credit note."""
        from billing.models import CreditNote, Invoice
        from events.models import Event

        announced: Counter[tuple[str, str]] = Counter()
        for event in Event.objects.filter(
            project=self.runner.project,
            type__in=("invoice.voided", "invoice.marked_uncollectible", "credit_note.created"),
        ):
            obj = (event.data or {}).get("object") or {}
            invoice = obj.get("invoice") if event.type == "credit_note.created" else obj.get("id")
            announced[(str(invoice), event.type)] += 1
        for index, bill in enumerate(self.sequence.bills):
            name = f"bill#{index} {bill.stripe_invoice} ({bill.customer})"
            voided = index in self.sequence.voided
            intended = sorted(self.sequence.notes.get(index, []))
            stripe_invoice = self.sdk.v1.invoices.retrieve(bill.stripe_invoice)
            notes = cv._all(self.sdk.v1.credit_notes.list, {"invoice": bill.stripe_invoice})
            marked = index in self.sequence.uncollectible
            status = "void" if voided else "uncollectible" if marked else "open"
            self.effect(f"stripe {name}", "status", stripe_invoice["status"], status)
            self.effect(
                f"stripe {name}",
                "credit notes",
                sorted(int(n["amount"]) for n in notes if n["status"] == "issued"),
                intended,
            )
            self.effect(
                f"stripe {name}",
                "amount_remaining",
                int(stripe_invoice["amount_remaining"]),
                bill.amount - sum(intended),  # a void invoice keeps what it owed when voided (Stripe's too)
            )
            row = Invoice.objects.get(project=self.runner.project, stripe_invoice_id=bill.stripe_invoice)
            self.differ(f"invoice {row.pk} ({name})", "status", row.status, stripe_invoice["status"])
            self.differ(
                f"invoice {row.pk} ({name})",
                "amount_remaining",
                row.amount_remaining,
                int(stripe_invoice["amount_remaining"]),
            )
            rows = {n.stripe_credit_note_id: n for n in CreditNote.objects.filter(invoice=row)}
            for note in notes:
                mirrored = rows.pop(note["id"], None)
                if mirrored is None:
                    self.differ(f"credit note {note['id']} ({name})", "(row)", "missing", note["status"])
                    continue
                self.differ(
                    f"credit note {mirrored.pk} ({name})", "amount", mirrored.amount, int(note["amount"])
                )
                self.differ(f"credit note {mirrored.pk} ({name})", "status", mirrored.status, note["status"])
            for stripe_id, extra in rows.items():
                self.differ(
                    f"credit note {extra.pk} ({name})", "(row)", stripe_id, "no such credit note at Stripe"
                )
            self.differ(
                f"tenant events of {row.pk} ({name})",
                "invoice.voided",
                announced[(row.pk, "invoice.voided")],
                int(voided),
            )
            self.differ(
                f"tenant events of {row.pk} ({name})",
                "invoice.marked_uncollectible",
                announced[(row.pk, "invoice.marked_uncollectible")],
                int(marked),
            )
            self.differ(
                f"tenant events of {row.pk} ({name})",
                "credit_note.created",
                announced[(row.pk, "credit_note.created")],
                len(notes),
            )

    def drafts(self) -> None:
        """(a, b) Each draft at Stripe: still a draft, holding one line per line-add write its line-remove writes
        left (description and amount), one invoice item each, and its total their sum. Its mirror: Stripe's
        status, total and lines."""
        from billing.models import Invoice

        for index, draft in enumerate(self.sequence.drafts):
            name = f"draft#{index} {draft.stripe_invoice} ({draft.customer})"
            intended = sorted(self.sequence.lines.get(index, {}).values())
            stripe_invoice = self.sdk.v1.invoices.retrieve(draft.stripe_invoice)
            lines = sorted(
                (str(li["description"]), int(li["amount"]))
                for li in cv._all(
                    lambda params, invoice=draft.stripe_invoice: self.sdk.v1.invoices.line_items.list(
                        invoice, params
                    ),
                    {},
                )
            )
            items = cv._all(self.sdk.v1.invoice_items.list, {"invoice": draft.stripe_invoice})
            self.effect(f"stripe {name}", "status", stripe_invoice["status"], "draft")
            self.effect(f"stripe {name}", "lines", lines, intended)
            self.effect(f"stripe {name}", "invoice items", len(items), len(intended))
            self.effect(f"stripe {name}", "total", int(stripe_invoice["total"]), sum(a for _, a in intended))
            row = Invoice.objects.get(project=self.runner.project, stripe_invoice_id=draft.stripe_invoice)
            self.differ(f"invoice {row.pk} ({name})", "status", row.status, stripe_invoice["status"])
            self.differ(f"invoice {row.pk} ({name})", "total", row.total, int(stripe_invoice["total"]))
            self.differ(
                f"invoice {row.pk} ({name})",
                "lines",
                sorted((li["description"], li["amount"]) for li in row.lines),
                lines,
            )


# --- the report ----------------------------------------------------------------------------------------------------


def render(*, sequence: Sequence, runner: Runner, checks: Checks | None, timing: str, error: str = "") -> str:
    lines = [
        f"seed {sequence.seed}: {sequence.describe()}",
        f"took {timing}; web process killed {runner.p.web.kills}×",
    ]
    lines.append("writes (fault → what fired; tries; the Stripe writes Tollgate sent while it ran):")
    for write in sequence.writes:
        mark = "FAIL" if write.problems else "ok  "
        lines.append(
            f"  {mark} {write.describe()}" + (f" → {write.fault_fired}" if write.fault_fired else "")
        )
        if write.outcome is not None:
            lines.append(
                f"         tries: {' | '.join(write.outcome.tries)}; ended {write.outcome.ended()}"
                f" ({write.outcome.seconds:.1f} s)"
            )
        for call in write.stripe_calls:
            lines.append(f"         stripe: {call}")
        for problem in write.problems:
            lines.append(f"         PROBLEM: {problem}")
    if error:
        lines.append(f"ERROR: {error}")
    if checks is not None:
        checked = ", ".join(f"{count} {kind}" for kind, count in sorted(checks.checked.items()))
        lines.append(f"checked: {checked}")
        if checks.mismatches:
            lines += [
                f"{len(checks.mismatches)} difference(s) (object, field, local, Stripe/intended):",
                *(m.row() for m in checks.mismatches),
            ]
    lines += runner.beat_sweeps
    lines += ["repair said:", *(f"  {line}" for line in runner.repair_output.splitlines()[-30:])]
    return "\n".join(lines)
