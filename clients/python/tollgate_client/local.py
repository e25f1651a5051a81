"""Entitlement checks answered from this process's memory, with no network call.

    local = LocalEntitlements(tollgate, fail_open={"search"})
    if local.check(customer="user-42", feature="exports").allowed:
        ...

The first check of a customer fetches their signed snapshot (`GET /entitlements/snapshot`); later checks answer
from it in a few microseconds. It is kept (at most `max_customers`, least recently used first out) until
`valid_until`, or until the change feed names the customer: a thread polls `GET /entitlements/changes` every
`poll_interval` seconds and drops the snapshots of every customer whose entitlements changed (a grant, a
revocation, a subscription or purchase starting, changing or ending, a refund, a lost dispute), or all of them
when the catalog or the project changed, or when the feed cannot list what it missed.

The guarantees:

- **Staleness.** A change reaches every process's answers within `poll_interval` plus one poll (~0.5 s by
  default) while the feed answers. A process that has not heard the feed for `stale_after` seconds stops using its
  snapshots; with `push=False` a snapshot is used until its `valid_until` (at most the server's
  ENTITLEMENT_SNAPSHOT_SECONDS, 60 s by default), which is then the bound.
- **Never an expired snapshot.** Past `valid_until` (counted on this machine's monotonic clock from the moment
  the snapshot was asked for, so clock skew cannot lengthen it), a check fetches a new one.
- **Tollgate unreachable.** A check that needs a snapshot and cannot get one answers `allowed` False
  (fail-closed, the default) or True for the features named in `fail_open`; the answer says so
  (`answer.raw["unavailable"]`), and nothing else in it is known.
- **Revoked keys, suspended projects.** The feed's 401 or 403 drops every snapshot; later checks ask the server,
  which raises the error.
- **Signed.** Each snapshot is checked against its `Tollgate-Snapshot-Signature`: HMAC-SHA256 of the body under
  HMAC-SHA256(the API key, "tollgate-entitlement-snapshot-v1"), so it is this key's project's; and its `customer`
  must be the one asked for (another customer's snapshot is validly signed too). A snapshot that fails either
  check is not used (`SnapshotSignatureError`).
- **Counted features** (`metered`, `allocation`, `credits`): `used`, `remaining` and `balance` are those of the
  snapshot, brought up to date by what this process consumes through `consume`. What other processes consume
  shows when the snapshot is next fetched: to hold a limit exactly, consume through the server (`consume`).
- **Entities.** A check naming an `entity` (a seat, a workspace with its own limit) is answered from memory too:
  the snapshot carries each live entity's use and its own usage windows (`per_entity`), and the answer must fit
  both the account and the entity, as on the server. An entity the snapshot does not know (added since, or none) and a feature without a
  limit per entity are asked of the server, which answers or refuses them (`400 unknown_entity`,
  `entity_not_counted`). `consume` passes `entity` to the server and counts the entity's new use here.
- **Model calls.** A check giving `model` and `dimensions` (a feature with a usage formula) is judged for the
  units the formula makes of them, computed here exactly as the server does from the snapshot's `usage_formula`
  and `cost_tables` (the version in force by the server's clock, a test clock's customer's too), and answers them
  in `quantity`. A new cost table version drops every snapshot through the feed. A call the snapshot cannot
  price (a model no version in force prices, a dimension not priced, no formula) is asked of the server, which
  answers or refuses it with its own error. `consume` takes no call: record calls with `usage.record` or a lease
  (`tollgate_client.leases`), which keep their dimensions and cost.

One instance per process, shared by its threads; a forked child starts its own poller on first use.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from tollgate_client._formulas import Pricing, call_params, pricing_of
from tollgate_client._local_rules import (
    account_link,
    answer_of,
    cap_answer,
    counted_after,
    credits_link,
    entity_answer,
    entity_credits_answer,
    windows_of,
)
from tollgate_client.errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    PermissionDeniedError,
    TollgateError,
)
from tollgate_client.types import EntitlementCheck

if TYPE_CHECKING:
    from tollgate_client.client import Tollgate

SNAPSHOT_KEY_LABEL = b"tollgate-entitlement-snapshot-v1"
SIGNATURE_HEADER = "tollgate-snapshot-signature"
CHANGED_MEMORY = 100_000  # customers whose change position is remembered, for snapshots fetched meanwhile

__all__ = ["LocalEntitlements", "SnapshotSignatureError", "snapshot_signature"]


class SnapshotSignatureError(TollgateError):
    """A snapshot whose signature does not match this client's API key."""


def snapshot_signature(api_key: str, body: bytes) -> str:
    """The `Tollgate-Snapshot-Signature` value of a snapshot body for this API key."""
    key = hmac.new(api_key.encode(), SNAPSHOT_KEY_LABEL, hashlib.sha256).digest()
    return "v1=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def snapshot_fetch(client: Tollgate, customer: str, api_key: str) -> tuple[dict[str, Any], float]:
    """The customer's signed snapshot (`GET /entitlements/snapshot`), its signature (under `api_key`) and its
    customer checked (`SnapshotSignatureError`), and the monotonic time it was asked at."""
    asked_at = time.monotonic()
    response = client._transport.send("GET", "/entitlements/snapshot", params={"customer": customer})
    expected = snapshot_signature(api_key, response.content)
    if not hmac.compare_digest(expected, response.headers.get(SIGNATURE_HEADER, "")):
        raise SnapshotSignatureError("The entitlement snapshot's signature does not match this API key.")
    data: dict[str, Any] = json.loads(response.content)
    if data.get("customer") != customer:  # signed, but another customer's: served in place of this one's
        raise SnapshotSignatureError(
            f"The entitlement snapshot is of customer {data.get('customer')!r}, not {customer!r}."
        )
    return data, asked_at


class _Snapshot:
    __slots__ = ("answers", "expires", "features", "feed", "offset", "pricing", "version")

    def __init__(self, data: dict[str, Any], expires: float, asked_at: float = 0.0) -> None:
        self.features: dict[str, dict[str, Any]] = data["features"]
        self.feed: int = data["feed"]
        self.version: int = data["version"]
        self.answers: str = data["answers"]
        self.expires = expires
        # The customer's clock is the monotonic clock plus `offset`: usage windows and periods end on it (a test
        # clock's customer's on the clock's time, `clock`; an older server sends only `issued_at`).
        self.offset = float(data.get("clock", data.get("issued_at", 0.0))) - asked_at
        # Its features' usage formulas and the cost tables, on the server's real clock: None without a formula.
        self.pricing: Pricing | None = pricing_of(data, asked_at)
        for entry in self.features.values():
            if entry.get("windows"):
                entry["windows"] = windows_of(entry["windows"])
            _prepare(entry)
        credits_link(self.features)
        account_link(self.features)


def _prepare(entry: dict[str, Any]) -> None:
    """What every answer of a metered entry with controls shares, made once per entry (an entry is replaced, never
    changed, when a local consume moves its counts): its windows' objects and raw dicts, and its cap's answer."""
    spans = entry.get("windows")
    if spans:
        entry["_window_objects"] = [window for window, _ in spans]
        entry["_window_raws"] = [window.raw for window, _ in spans]
    if entry.get("cap") is not None:
        counted = (entry["used"] or 0) + (entry.get("held") or 0) - (entry.get("covered") or 0)
        entry["_cap"] = cap_answer(entry["cap"], entry["limit"], counted)


_RACED = _Snapshot({"features": {}, "feed": 0, "version": 0, "answers": ""}, expires=0.0)


_ANSWERS_KEPT = 16  # answers kept per entry, by quantity
_ENTITY_ANSWERS_KEPT = 256  # and by (entity, quantity), in the same dict: an entry is replaced, never changed


def _answer(feature: str, entry: dict[str, Any], quantity: int, now: float = 0.0) -> EntitlementCheck:
    """What `GET /entitlements/check` answers for this feature entry, as `_local_rules.answer_of` makes it; kept in
    the entry by quantity when it does not depend on the time (no `retry_after`). An entry never changes — a local
    consume or a new snapshot replaces it — so a kept answer is the one the entry gives."""
    kept = entry.get("_answers")
    if kept is not None:
        answer = kept.get(quantity)
        if answer is not None:
            return answer
    answer = answer_of(feature, entry, quantity, now)
    if answer.retry_after is None:
        if kept is None:
            kept = entry["_answers"] = {}
        if len(kept) < _ANSWERS_KEPT:
            kept[quantity] = answer
    return answer


def _entity_answer(
    feature: str, entry: dict[str, Any], quantity: int, entity: str, used: int, now: float
) -> EntitlementCheck:
    """`_answer` judged for the entity too (its use `used` from the entry's `per_entity`, or on a credits feature
    its own balance from `entity_credits`), kept in the entry by (entity, quantity) beside the account's answers
    when it does not depend on the time."""
    kept = entry.get("_answers")
    if kept is not None:
        answer = kept.get((entity, quantity))
        if answer is not None:
            return answer
    owned = entry.get("_credits_entities")
    own = owned.get(entity, 0) if owned else 0
    if own:  # its own credits pay its waterfall first, then the account's
        paid = {**entry, "_credits_balance": int(entry.get("_credits_balance") or 0) + own}
        answer = answer_of(feature, paid, quantity, now)
    else:
        answer = _answer(feature, entry, quantity, now)
    if entry.get("entity_credits") is not None:
        answer = entity_credits_answer(answer, entry, entity, used, quantity)
    else:
        answer = entity_answer(answer, entry, entity, used, quantity, now)
    if answer.retry_after is None:
        if kept is None:
            kept = entry["_answers"] = {}
        if len(kept) < _ENTITY_ANSWERS_KEPT:
            kept[(entity, quantity)] = answer
    return answer


class LocalEntitlements:
    """Checks from memory for one `Tollgate` client (see the module's documentation).

    `max_customers`: snapshots kept. `fail_open`: feature keys allowed when Tollgate cannot be reached (all others
    are denied). `push`: poll the change feed (else a snapshot lives until `valid_until`). `poll_interval`: seconds
    between polls. `stale_after`: seconds without a successful poll after which snapshots are not used.
    `timeout`: seconds for a snapshot fetch or a poll (no retries: a check must not wait long)."""

    def __init__(
        self,
        client: Tollgate,
        *,
        max_customers: int = 10_000,
        fail_open: Collection[str] = (),
        push: bool = True,
        poll_interval: float = 0.5,
        stale_after: float = 5.0,
        timeout: float = 2.0,
    ) -> None:
        if max_customers < 1:
            raise ValueError("max_customers must be 1 or more.")
        self._origin = client  # writes keep the client's own retries
        self._client = client.with_options(timeout=timeout, max_retries=0)
        self._api_key = client._transport.api_key
        self._max = max_customers
        self._fail_open = frozenset(fail_open)
        self._push = push
        self._poll_interval = poll_interval
        self._stale_after = stale_after
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[str, _Snapshot] = OrderedDict()
        self._pid = -1
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._reset_feed()
        if hasattr(os, "register_at_fork"):
            own = weakref.WeakMethod(self._forked)
            os.register_at_fork(after_in_child=lambda: (method := own()) is not None and method())

    # --- checks ----------------------------------------------------------------------------------------------

    def check(
        self,
        *,
        customer: str,
        feature: str,
        quantity: int = 1,
        entity: str | None = None,
        model: str | None = None,
        dimensions: Mapping[str, int] | None = None,
    ) -> EntitlementCheck:
        """May the customer use `quantity` of the feature now? Records nothing; no network call when this
        process holds a current snapshot of the customer. With `entity`, the use must fit the entity's own limit
        as well as the account's. A `quantity` the server refuses (not an integer ≥ 0) is refused as it refuses
        it: the server is asked (`InvalidRequestError`).

        A model call (`model` and `dimensions`, instead of `quantity`, on a feature with a usage formula) is
        judged for the units the formula makes of them now, computed here as the server does (the snapshot
        carries the formula and the cost tables); the answer's `quantity` says them. What the snapshot cannot
        price — a model no cost table in force prices, a dimension not priced, no formula, a malformed call — is
        asked of the server, which answers or raises its error (`InvalidRequestError` `model_not_priced`,
        `unknown_dimension`, `feature_has_no_formula`, `usage_too_large`, `parameter_conflict` with a
        `quantity`)."""
        if model is not None or dimensions is not None:
            return self._call_check(customer, feature, quantity, entity, model, dimensions)
        if type(quantity) is not int or quantity < 0:
            return self._server_check(customer, feature, quantity, entity)
        now = time.monotonic()
        snapshot = self._snapshots.get(customer)
        if snapshot is None or snapshot.expires <= now or (self._push and self._heard_until <= now):
            if self._pid != os.getpid():
                self._start()
            snapshot = self._fetch(customer)
            if snapshot is None:
                return self._unavailable(customer, feature)
            if snapshot is _RACED:  # a change heard meanwhile may postdate it: the server answers this one
                return self._server_check(customer, feature, quantity, entity)
        else:
            try:  # noqa: SIM105  # contextlib.suppress costs more than the check itself
                self._snapshots.move_to_end(customer)
            except KeyError:  # dropped by the poller meanwhile: this answer is from before the change
                pass
        entry = snapshot.features.get(feature)
        if entry is None:  # a feature this snapshot does not know: the server answers (404 if it has none)
            return self._server_check(customer, feature, quantity, entity)
        if entity is None:
            return _answer(feature, entry, quantity, now + snapshot.offset)
        own_credits = entry.get("entity_credits")
        per_entity = entry.get("per_entity")
        if own_credits is not None:  # its own balance stands for its use
            used = own_credits["balances"].get(entity)
        else:
            used = per_entity["used"].get(entity) if per_entity is not None else None
        if used is None:  # no limit per entity, or an entity added since: the server answers (or refuses)
            return self._server_check(customer, feature, quantity, entity)
        return _entity_answer(feature, entry, quantity, entity, used, now + snapshot.offset)

    def _server_check(
        self, customer: str, feature: str, quantity: int, entity: str | None = None
    ) -> EntitlementCheck:
        try:
            return self._client.entitlements.check(
                customer=customer, feature=feature, quantity=quantity, entity=entity
            )
        except (APIConnectionError, APIStatusError) as exc:
            if isinstance(exc, APIConnectionError) or (exc.status is not None and exc.status >= 500):
                return self._unavailable(customer, feature)
            raise

    def _call_check(
        self,
        customer: str,
        feature: str,
        quantity: int,
        entity: str | None,
        model: str | None,
        dimensions: Mapping[str, int] | None,
    ) -> EntitlementCheck:
        """`check` of a model call: its units made here from the snapshot, or the server's answer."""
        now = time.monotonic()
        snapshot = self._snapshots.get(customer)
        if snapshot is None or snapshot.expires <= now or (self._push and self._heard_until <= now):
            if self._pid != os.getpid():
                self._start()
            snapshot = self._fetch(customer)
            if snapshot is None:
                return self._unavailable(customer, feature)
        entry = snapshot.features.get(feature)
        pricing = snapshot.pricing
        made = (
            pricing.units(feature, model, dimensions, now)
            if snapshot is not _RACED and entry is not None and pricing is not None and dimensions is not None
            else None
        )
        if made is None or quantity != 1:  # the server answers, or refuses the call as it refuses it
            return self._server_call_check(customer, feature, quantity, entity, model, dimensions or {})
        answer = self.check(customer=customer, feature=feature, quantity=made, entity=entity)
        return EntitlementCheck.from_dict({**answer.raw, "quantity": made})

    def _server_call_check(
        self,
        customer: str,
        feature: str,
        quantity: int,
        entity: str | None,
        model: str | None,
        dimensions: Mapping[str, int],
    ) -> EntitlementCheck:
        params: dict[str, Any] = {"customer": customer, "feature": feature, "entity": entity}
        if quantity != 1:
            params["quantity"] = quantity
        params.update(call_params(model, dimensions))
        try:
            answer = self._client.request("GET", "/entitlements/check", params=params)
        except (APIConnectionError, APIStatusError) as exc:
            if isinstance(exc, APIConnectionError) or (exc.status is not None and exc.status >= 500):
                return self._unavailable(customer, feature)
            raise
        return EntitlementCheck.from_dict(answer)

    def consume(
        self, *, id: str, customer: str, feature: str, quantity: int = 1, entity: str | None = None
    ) -> EntitlementCheck:
        """`entitlements.consume` on the server (the limit holds across processes), then this process's snapshot
        of the customer counts what the server now counts (the account's; `entity` is judged by the server)."""
        answer = self._origin.entitlements.consume(
            id=id, customer=customer, feature=feature, quantity=quantity, entity=entity
        )
        with self._lock:
            snapshot = self._snapshots.get(customer)
            entry = snapshot.features.get(feature) if snapshot is not None else None
            if snapshot is not None and entry is not None:
                paid = answer.credits
                if (
                    paid is not None
                    and answer.entity is not None
                    and entry.get("_credits_entities") is not None
                ):
                    # its own credits and the account's paid: how much of each, the next snapshot says
                    self._snapshots.pop(customer, None)
                    return answer
                counted = counted_after(entry, answer)
                features = {**snapshot.features, feature: counted}
                if paid is not None:  # a waterfall's consume spent the credits feature's balance too
                    counted["covered"] = paid.covered
                    paying = features.get(paid.feature)
                    if paying is not None:
                        features[paid.feature] = {**paying, "balance": paid.balance}
                        features[paid.feature].pop("_answers", None)
                _prepare(counted)
                credits_link(features)
                account_link(features)
                snapshot.features = features
        return answer

    def forget(self, customer: str | None = None) -> None:
        """Drops the customer's snapshot (every snapshot without a customer): the next check fetches it."""
        with self._lock:
            if customer is None:
                self._snapshots.clear()
            else:
                self._snapshots.pop(customer, None)

    def close(self) -> None:
        """Stops the poller (the snapshots stay until they expire; with `push` they are not used past
        `stale_after`)."""
        self._stop.set()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join()

    def __enter__(self) -> LocalEntitlements:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- snapshots -------------------------------------------------------------------------------------------

    def _unavailable(self, customer: str, feature: str) -> EntitlementCheck:
        allowed = feature in self._fail_open
        return EntitlementCheck.from_dict(
            {
                "allowed": allowed,
                "feature": feature,
                "type": None,
                "enabled": allowed,
                "value": None,
                "limit": None,
                "used": None,
                "remaining": None,
                "balance": None,
                "held": None,
                "overage": None,
                "cap": None,
                "account_cap": None,
                "credits": None,
                "step": None,
                "windows": [],
                "binding": None,
                "retry_after": None,
                "unavailable": True,
            }
        )

    def _fetch(self, customer: str) -> _Snapshot | None:
        """The customer's snapshot from the server, kept when no change past it was heard (else `_RACED`); None
        when Tollgate cannot be reached."""
        try:
            data, asked_at = snapshot_fetch(self._client, customer, self._api_key)
        except (APIConnectionError, APIStatusError) as exc:
            if isinstance(exc, APIConnectionError) or (exc.status is not None and exc.status >= 500):
                return None
            if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
                self.forget()
            raise
        snapshot = _Snapshot(data, expires=asked_at + float(data["ttl"]), asked_at=asked_at)
        with self._lock:
            if not self._keepable(customer, snapshot):
                return _RACED
            self._snapshots[customer] = snapshot
            self._snapshots.move_to_end(customer)
            while len(self._snapshots) > self._max:
                self._snapshots.popitem(last=False)
        return snapshot

    def _keepable(self, customer: str, snapshot: _Snapshot) -> bool:
        """Whether no change the poller heard may postdate the snapshot (under the lock)."""
        if not self._push or self._feed is None:
            return True  # without a feed position yet, the first poll drops what it cannot vouch for
        return (
            snapshot.feed == self._feed
            and snapshot.answers == self._answers
            and snapshot.version >= self._changed_floor
            and self._changed.get(customer, -1) <= snapshot.version
        )

    # --- the change feed -------------------------------------------------------------------------------------

    def _reset_feed(self) -> None:
        self._feed: int | None = None
        self._version = 0
        self._answers = ""
        self._changed: dict[str, int] = {}
        self._changed_floor = 0
        self._heard_until = 0.0

    def _start(self) -> None:
        """A poller for this process (again in a forked child, whose parent's thread did not come along)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._snapshots.clear()
            self._reset_feed()
            self._stop = threading.Event()
            if not self._push:
                return
            self._poller = threading.Thread(
                target=self._poll_loop, name="tollgate-entitlement-feed", daemon=True
            )
            self._poller.start()
        self._poll()

    def _forked(self) -> None:
        """In a forked child: the parent's snapshots and feed position are not this process's to trust."""
        self._lock = threading.Lock()
        self._snapshots.clear()
        self._reset_feed()
        self._pid = -1

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll_interval):
            self._poll()

    def _poll(self) -> None:
        """One poll of the feed: drops the snapshots it names, or all of them."""
        params = {} if self._feed is None else {"since": self._version, "feed": self._feed}
        try:
            answer = self._client.request("GET", "/entitlements/changes", params=params)
        except (AuthenticationError, PermissionDeniedError):
            with self._lock:
                self._snapshots.clear()
                self._reset_feed()
            return
        except Exception:  # any failure is a poll not heard: past `stale_after` nothing is used
            return
        with self._lock:
            self._heard(answer)

    def _heard(self, answer: dict[str, Any]) -> None:
        """Applies a feed answer (under the lock)."""
        if answer["resync"] or answer["feed"] != self._feed or answer["answers"] != self._answers:
            if self._feed is not None or answer["resync"]:
                self._snapshots.clear()
            else:  # the first poll: keep what was fetched at or after this position
                for customer in [c for c, s in self._snapshots.items() if not _current(s, answer)]:
                    del self._snapshots[customer]
            self._changed.clear()
            self._changed_floor = answer["version"]
        else:
            for customer in answer["customers"]:
                self._snapshots.pop(customer, None)
                self._changed[customer] = answer["version"]
            if len(self._changed) > CHANGED_MEMORY:
                self._changed.clear()
                self._changed_floor = answer["version"]
        self._feed = answer["feed"]
        self._version = answer["version"]
        self._answers = answer["answers"]
        self._heard_until = time.monotonic() + self._stale_after


def _current(snapshot: _Snapshot, answer: dict[str, Any]) -> bool:
    return (
        snapshot.feed == answer["feed"]
        and snapshot.answers == answer["answers"]
        and snapshot.version >= answer["version"]
    )
