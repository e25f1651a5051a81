"""Webhook delivery: which endpoints an event goes to, Stripe's signature, and the queue that sends events
after the API call that caused them has answered, retrying with backoff.

Two ways to drain the queue, usable together:

* ``mode="background"``: a daemon thread sends due deliveries as they arrive (the default; the HTTP server
  uses it).
* :meth:`WebhookDispatcher.flush`: the caller's thread sends everything queued now, retries included
  (without waiting for backoff), and anything the receivers' own API calls queue meanwhile — deterministic
  tests use ``mode="manual"`` and call ``emulator.flush_webhooks()``.

No lock is held while a sender runs, so a receiver may call back into the emulator (through the SDK).
Test options deliver every event twice (``duplicates``) and/or shuffle each batch (``shuffle``), on purpose,
so receivers prove they dedupe and tolerate reordering.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from stripe_emulator.core.store import Store, clone

if TYPE_CHECKING:
    from stripe_emulator.core.emulator import Emulator

logger = logging.getLogger(__name__)

Sender = Callable[[str, bytes, Mapping[str, str]], int]
"""``(url, body, headers) -> HTTP status``. Raising counts as a connection error (and is retried)."""

WebhookMode = Literal["background", "manual"]

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (0.05, 0.2, 1.0, 5.0)
"""Seconds before attempts 2, 3, … (Stripe waits hours; an emulator's receivers are local)."""

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def endpoint_matches(endpoint: Mapping[str, object], event_type: str) -> bool:
    enabled = endpoint.get("enabled_events") or []
    assert isinstance(enabled, list)
    return endpoint.get("status") == "enabled" and ("*" in enabled or event_type in enabled)


def matching_endpoint_ids(store: Store, event_type: str) -> list[str]:
    # Oldest endpoint first, so deliveries of one event go out in registration order unless shuffled.
    return [
        e["id"] for e in reversed(store.newest_first("webhook_endpoint")) if endpoint_matches(e, event_type)
    ]


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "t.payload">`` — what ``stripe.Webhook.construct_event`` verifies."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def urllib_sender(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    """Default sender: a plain HTTP POST. Only http(s) URLs reach here (endpoint creation validates them)."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@dataclass
class Delivery:
    account_key: str
    event_id: str
    endpoint_id: str
    attempt: int = 1
    due: float = 0.0  # time.monotonic() before which the background worker leaves it queued


@dataclass(frozen=True)
class DeliveryAttempt:
    """One send, kept in ``dispatcher.attempts`` for tests and debugging."""

    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    attempt: int
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookDispatcher:
    def __init__(
        self,
        emulator: Emulator,
        *,
        mode: WebhookMode = "background",
        sender: Sender | None = None,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        duplicates: bool = False,
        shuffle: bool = False,
        seed: int | None = None,
        signature_clock: Callable[[], float] | None = None,
    ) -> None:
        self.emulator = emulator
        self.mode = mode
        self.sender: Sender = sender or urllib_sender
        self.retry_delays = tuple(retry_delays)
        self.duplicates = duplicates
        self.shuffle = shuffle
        self._random = random.Random(seed)  # noqa: S311 - shuffling test deliveries, not security
        # The receiver checks the signature's age against its own clock, so sign with wall time (patched by
        # time-machine in tests), not the emulator's advanced clock: jumping a month ahead must not make
        # every webhook "too old".
        self._signature_clock = signature_clock or (lambda: time.time())
        self._queue: list[Delivery] = []
        self._in_flight = 0
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._stopped = False
        self.attempts: list[DeliveryAttempt] = []

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1

    # -- queue ---------------------------------------------------------------------------------------------

    def enqueue(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        with self._cond:
            for delivery in deliveries:
                self._queue.append(delivery)
                if self.duplicates:
                    self._queue.append(
                        Delivery(delivery.account_key, delivery.event_id, delivery.endpoint_id)
                    )
            self._cond.notify_all()
        if self.mode == "background":
            self._ensure_worker()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._in_flight

    def clear(self) -> None:
        with self._cond:
            self._queue.clear()
            self.attempts.clear()

    def flush(self, *, max_rounds: int = 100) -> list[DeliveryAttempt]:
        """Send everything queued, in this thread, until the queue is empty; retries are sent at once.
        Returns the attempts made. ``max_rounds`` bounds receivers that answer every event with another."""
        made: list[DeliveryAttempt] = []
        for _ in range(max_rounds):
            with self._cond:
                batch, self._queue = self._queue, []
                self._in_flight += len(batch)
            if not batch:
                break
            try:
                made.extend(self._send_batch(batch))
            finally:
                with self._cond:
                    self._in_flight -= len(batch)
                    self._cond.notify_all()
        return made

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until nothing is queued or being sent (background mode); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=2)

    # -- sending -------------------------------------------------------------------------------------------

    def _send_batch(self, batch: list[Delivery]) -> list[DeliveryAttempt]:
        if self.shuffle:
            self._random.shuffle(batch)
        made = []
        for delivery in batch:
            attempt = self._send(delivery)
            if attempt is not None:
                made.append(attempt)
        return made

    def _send(self, delivery: Delivery) -> DeliveryAttempt | None:
        account = self.emulator.accounts.get(delivery.account_key)
        if account is None:
            return None  # the account was reset away
        with account.lock:
            event = account.store.get("event", delivery.event_id)
            endpoint = account.store.get("webhook_endpoint", delivery.endpoint_id)
            if (
                event is None
                or endpoint is None
                or endpoint.get("deleted")
                or endpoint.get("status") != "enabled"
            ):
                return None  # Stripe stops sending to endpoints deleted or disabled meanwhile
            # Rendered at the endpoint's version, or at the account's default for an endpoint made without one.
            # (The emulator has one shape of every object: only the version the event says it is at differs.)
            rendered = clone(event)
            rendered["api_version"] = endpoint.get("api_version") or account.api_version
            payload = json.dumps(rendered, indent=2).encode()
            url, secret, event_type = endpoint["url"], endpoint["_secret"], event["type"]
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Accept": "*/*; q=0.5, application/xml",
            "Cache-Control": "no-cache",
            "Stripe-Signature": signature_header(payload, secret, int(self._signature_clock())),
        }
        status: int | None
        error: str | None = None
        try:
            status = int(self.sender(url, payload, headers))
        except Exception as exc:  # any failure of the receiver is a failed attempt, as for Stripe
            status, error = None, f"{type(exc).__name__}: {exc}"
        attempt = DeliveryAttempt(
            delivery.event_id, event_type, delivery.endpoint_id, url, delivery.attempt, status, error
        )
        with self._cond:
            self.attempts.append(attempt)
        if attempt.ok:
            with account.lock:
                stored = account.store.get("event", delivery.event_id)
                if stored is not None and stored["pending_webhooks"] > 0:
                    stored["pending_webhooks"] -= 1
        elif delivery.attempt < self.max_attempts:
            delay = self.retry_delays[delivery.attempt - 1]
            retry = Delivery(
                delivery.account_key,
                delivery.event_id,
                delivery.endpoint_id,
                attempt=delivery.attempt + 1,
                due=time.monotonic() + delay,
            )
            with self._cond:
                self._queue.append(retry)
                self._cond.notify_all()
        else:
            logger.warning(
                "webhook %s to %s failed after %d attempts", delivery.event_id, url, delivery.attempt
            )
        return attempt

    # -- background worker ---------------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        with self._cond:
            if self._worker is not None and self._worker.is_alive():
                return
            self._stopped = False
            self._worker = threading.Thread(target=self._run, name="stripe-emulator-webhooks", daemon=True)
            self._worker.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = time.monotonic()
                batch = [d for d in self._queue if d.due <= now]
                if not batch:
                    next_due = min((d.due for d in self._queue), default=None)
                    self._cond.wait(None if next_due is None else max(next_due - now, 0.001))
                    continue
                self._queue = [d for d in self._queue if d.due > now]
                self._in_flight += len(batch)
            try:
                self._send_batch(batch)
            except Exception:  # pragma: no cover - a bug must not kill delivery for the process's lifetime
                logger.exception("webhook worker failed")
            finally:
                with self._cond:
                    self._in_flight -= len(batch)
                    self._cond.notify_all()
