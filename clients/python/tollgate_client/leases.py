"""Consumes a counted feature from leases: units taken from Tollgate in one step, used from memory, reported in
batches, and the rest given back.

    from tollgate_client.leases import LeasedQuota

    quota = LeasedQuota(tollgate, customer="user-42", feature="api_calls", lease=100)
    if quota.consume(id=request_id):   # no I/O while the lease lasts
        ...
    quota.close()                      # reports what is left to report, gives the unused units back

A lease is a hold (`POST /entitlements/holds`): Tollgate sets its units aside under the feature's limit, so the
units every process leases plus what the server counted never pass the limit, across processes and hosts.
`consume` answers from the lease; when it runs short, or nears its end, the lease is reported, released and a new
one taken (of `lease` units, or what is left of the limit when that is less). Each use's `id` is reported
(`POST /entitlements/holds/{id}/usage`, every `flush_every` seconds by a background thread, and on `close`), so
an id used twice — here, in another process or by a consume — is counted once.

Guarantees and their bounds:

- **The limit.** Uses are answered only from a lease that Tollgate granted and that has not reached its end: a
  lease is not used past `expires_in − margin` seconds after it was asked for (the monotonic clock; `margin`
  defaults to a tenth of `expires_in`, at least one second), so its units are reported before Tollgate's sweep may
  give them to another process. On a feature with usage windows a lease's units are the current windows' (the
  server takes them from each), so it is not used past the first of those windows' end either (`resets_at`,
  counted from the hold's creation on Tollgate's clock — a test clock's customer's time): every use happens in
  the window that counted it, and the units allowed in any window are at most its limit, across every process. Only when Tollgate cannot be reached for all of `margin` do the uses of a lease
  reach it after its end: they are then recorded as usage (`POST /usage/batch`, metered features, with their
  ids) and may pass the limit by at most that lease's units; for credits and allocation features they cannot be
  recorded and are counted in `lost` (and logged).
- **A process that dies** returns its leases' unused units when they expire (`expires_in`, plus up to 30 s);
  uses it made and had not reported yet (at most `flush_every` seconds of them) are not counted.
- **Unreachable Tollgate.** `consume` answers from a lease it holds; it needs Tollgate to take a new one, and
  answers False when it cannot (an outage denies, never over-grants). Uses whose report failed stay with their
  lease, which is not released while it has any (that would give used units back to the limit): every flush,
  renewal and `close` tries them again, with their ids, so none is lost or counted twice. What `close` still
  cannot report is counted in `lost`.
- **Model calls** (`consume(id=…, model=…, dimensions=…)`, a metered feature with a usage formula): the units
  are computed here as Tollgate computes them (from the customer's snapshot, refreshed every `ttl`) and taken
  from the lease; each call is reported with its model and dimensions, and Tollgate prices it again when the report
  reaches it, storing its units and cost. A report Tollgate priced past what the hold has left (a cost table
  version started in between) is recorded as usage instead (`POST /usage/batch`, with the calls' ids).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from tollgate_client._formulas import Pricing, call_params
from tollgate_client.errors import (
    APIConnectionError,
    APIStatusError,
    ConflictError,
    InvalidRequestError,
    TollgateError,
)
from tollgate_client.local import snapshot_fetch

if TYPE_CHECKING:
    from tollgate_client.client import Tollgate
    from tollgate_client.params import UsageEventParams

logger = logging.getLogger("tollgate_client.leases")

_MAX_REPORT = 1000  # events per report (the server's limit)

Call = tuple[str | None, dict[str, int]]  # a model call's model and dimensions
Use = tuple[str, int, Call | None]  # a use's id, its units and, for a model call, what they were made of


@dataclass
class _Lease:
    hold_id: str
    left: int
    deadline: float  # monotonic: not used past it
    pending: list[Use] = field(default_factory=list)


# A usage window's length in seconds; weeks start on Monday, 4 days after the Unix epoch (a Thursday): Tollgate's
# calendar windows (`entitlements.windows.window_bounds`).
_WINDOW_SECONDS = {"minute": 60, "hour": 3_600, "day": 86_400, "week": 604_800}
_MONDAY = 4 * 86_400


def _window_end(window: str, at: float) -> float:
    """When the calendar `window` holding the instant `at` (Unix seconds) ends."""
    seconds = _WINDOW_SECONDS[window]
    offset = _MONDAY if window == "week" else 0
    return float((int(at) - offset) // seconds * seconds + offset + seconds)


def _ends(resets_at: str) -> float:
    """An instant as Tollgate writes it (ISO 8601, `Z`: a window's end, a hold's creation) in Unix seconds."""
    return datetime.fromisoformat(resets_at.replace("Z", "+00:00")).timestamp()


def _call_event(event_id: str, call: Call) -> dict[str, Any]:
    """A model call as a report or a usage event gives it: its dimensions, and its model when it named one."""
    model, dimensions = call
    event: dict[str, Any] = {"id": event_id, "dimensions": dimensions}
    if model is not None:
        event["model"] = model
    return event


def _retryable(error: TollgateError) -> bool:
    """Whether a failed exchange may succeed later: Tollgate unreachable, overloaded or failing."""
    if isinstance(error, APIConnectionError):
        return True
    return isinstance(error, APIStatusError) and (error.status == 429 or error.status >= 500)


class LeasedQuota:
    """Uses of one customer's counted feature (`metered`, `credits` or `allocation`), answered from leases. One
    per (customer, feature) and process; its methods may be called from any thread. `entity`: the uses are one
    of the customer's entities' (a seat, a workspace), on a metered feature with a limit per entity — each lease
    is taken on that entity's limit as well as the account's (one per (customer, feature, entity))."""

    def __init__(
        self,
        tollgate: Tollgate,
        *,
        customer: str,
        feature: str,
        lease: int = 100,
        expires_in: int = 60,
        margin: float | None = None,
        flush_every: float = 0.5,
        metered: bool = True,
        entity: str | None = None,
    ) -> None:
        if lease < 1 or expires_in < 2:
            raise ValueError("lease ≥ 1 unit and expires_in ≥ 2 seconds")
        self._tollgate = tollgate
        self.customer = customer
        self.feature = feature
        self.entity = entity
        self.lease_size = lease
        self.expires_in = expires_in
        self.margin = margin if margin is not None else max(1.0, expires_in / 10)
        self.flush_every = flush_every
        self._metered = metered  # late uses can be recorded as plain usage (only metered features take usage)
        self._state = threading.Lock()  # the lease and its pending uses: held for microseconds
        self._io = (
            threading.Lock()
        )  # one exchange with Tollgate at a time; taken before `_state`, never after
        self._lease: _Lease | None = None
        self._ended: list[_Lease] = []  # ended leases with uses to report or a hold to release (`_io` held)
        self._seen: set[str] = set()
        self.lost = 0
        # The formula and cost tables model calls are priced by here (from the customer's snapshot, fetched on
        # the first call and again by the flush thread once its `ttl` has passed), and until when.
        self._pricing: Pricing | None = None
        self._pricing_until = 0.0
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="tollgate-lease-flush", daemon=True)
        self._flusher.start()

    # --- using ------------------------------------------------------------------------------------------------

    def consume(
        self,
        *,
        id: str,
        quantity: int = 1,
        model: str | None = None,
        dimensions: Mapping[str, int] | None = None,
    ) -> bool:
        """Uses `quantity` units if the lease (or a new one) has them: True, and the use is reported with `id`;
        False, and nothing is used. The same `id` again answers True and uses nothing more.

        A model call gives `model` and `dimensions` instead of `quantity` (a metered feature with a usage
        formula): it uses the units the formula makes of them now, computed here as Tollgate does (from the
        customer's snapshot), and is reported with its model and dimensions, so that its usage event carries
        them and its cost (Tollgate prices it again when the report reaches it). A call the snapshot cannot
        price is priced by Tollgate's check; one it refuses raises its `InvalidRequestError`
        (`unknown_dimension`, `model_not_priced`, …); False when Tollgate cannot be reached to price it."""
        call: Call | None = None
        if model is not None or dimensions is not None:
            if id in self._seen:
                return True
            call = (model, dict(dimensions or {}))
            made = self._units(quantity, call)
            if made is None:
                return False
            quantity = made
        with self._state:
            if self._take(id, quantity, call):
                return True
        with self._io:  # a new lease is needed: report and end this one, take the next
            with self._state:
                if self._take(id, quantity, call):  # another thread renewed meanwhile
                    return True
                ending = self._lease
                self._lease = None
            self._end(ending)
            fresh = self._lease_take(quantity)
            with self._state:
                self._lease = fresh
                return fresh is not None and self._take(id, quantity, call)

    def _take(self, event_id: str, quantity: int, call: Call | None = None) -> bool:
        """From the current lease, in memory (`_state` held)."""
        if event_id in self._seen:
            return True
        lease = self._lease
        if lease is None or lease.left < quantity or time.monotonic() >= lease.deadline:
            return False
        lease.left -= quantity
        lease.pending.append((event_id, quantity, call))
        self._seen.add(event_id)
        if len(self._seen) > 100_000:  # ids of reported uses: the server dedupes them anyway
            self._seen = {event_id}
        return True

    def _units(self, quantity: int, call: Call) -> int | None:
        """The units of a model call now: from the snapshot's formula and cost tables, or Tollgate's check
        (which raises what it refuses); None when Tollgate cannot be reached for either."""
        if self._pricing is None:
            with self._io:
                if self._pricing is None and not self._pricing_fetch():
                    return None
        pricing = self._pricing
        made = pricing.units(self.feature, *call, time.monotonic()) if pricing is not None else None
        if made is not None and quantity == 1:
            return made
        params: dict[str, Any] = {"customer": self.customer, "feature": self.feature, "entity": self.entity}
        if quantity != 1:
            params["quantity"] = quantity  # refused with the call: `parameter_conflict`
        try:
            answer = self._tollgate.request(
                "GET", "/entitlements/check", params={**params, **call_params(*call)}
            )
        except TollgateError as error:
            if _retryable(error):
                return None
            raise
        return int(answer["quantity"])

    def _pricing_fetch(self) -> bool:
        """The customer's snapshot's formulas and cost tables (`_io` held); False when Tollgate cannot be
        reached (the pricing held stays)."""
        try:
            data, asked_at = snapshot_fetch(self._tollgate, self.customer, self._tollgate._transport.api_key)
        except TollgateError as error:
            if _retryable(error):
                return False
            raise
        self._pricing = Pricing(data, asked_at)
        self._pricing_until = asked_at + float(data["ttl"])
        return True

    @property
    def left(self) -> int:
        """Units left in the current lease (0 without one)."""
        with self._state:
            return self._lease.left if self._lease is not None else 0

    # --- talking to Tollgate ------------------------------------------------------------------------------------

    def _lease_take(self, quantity: int) -> _Lease | None:
        """A new lease of `lease_size` units (at least `quantity`), or of what the limit has left when that is
        less; None when not even `quantity` is left (or Tollgate cannot be reached)."""
        want = max(self.lease_size, quantity)
        holds = self._tollgate.entitlements.holds
        retried = False
        for _ in range(5):  # concurrent leases may take what an answer said was left
            hold_id = f"lease-{uuid.uuid4().hex}"
            asked = time.monotonic()
            try:
                answer = holds.create(
                    id=hold_id,
                    customer=self.customer,
                    feature=self.feature,
                    quantity=want,
                    expires_in=self.expires_in,
                    entity=self.entity,
                )
            except TollgateError:
                logger.warning(
                    "tollgate_client: no lease of %s for %s", self.feature, self.customer, exc_info=True
                )
                return None
            entitlement = answer.entitlement
            if answer.allowed:
                deadline = asked + self.expires_in - self.margin
                # Its units are the windows' current at the hold's creation (the account's, the entity's own):
                # not used past the first's end. Counted on Tollgate's clock, from the hold's creation (a test
                # clock's customer's windows end on the clock's time, and this machine's clock may differ from
                # Tollgate's); the answer's windows may already be the next ones, answered a moment later.
                spans = [*entitlement.windows, *(entitlement.entity.windows if entitlement.entity else ())]
                if spans:
                    made = _ends(answer.hold.created_at) if answer.hold is not None else time.time()
                    ends = min(_window_end(window.window, made) for window in spans)
                    deadline = min(deadline, asked + ends - made)
                lease = _Lease(hold_id=hold_id, left=want, deadline=deadline)
                if time.monotonic() < deadline:
                    return lease
                # Its window ended on the way back (the hold was made in its last moment): give it back and
                # ask again, in the next window.
                self._end(lease)
                continue
            # What is left is the least of the period's and each window's; the period's is the allowance left, and
            # past it what the blocking spend caps leave (the feature's, the account's) and what a credits
            # waterfall's balance pays for. Without a limit (pay as you go), only what the caps leave.
            period = entitlement.remaining
            capped = [
                cap.left_units
                for cap in (entitlement.cap, entitlement.account_cap)
                if cap is not None and cap.at_cap == "block" and cap.left_units is not None
            ]
            if period is not None or capped:
                period = min(capped) if capped else max(period or 0, 0)
                if entitlement.credits is not None:
                    period += entitlement.credits.units
            left = [period, *(window.remaining for window in entitlement.windows)]
            if (
                entitlement.entity is not None
            ):  # a lease of an entity's: its own limit and windows leave less, maybe
                left += [
                    entitlement.entity.remaining,
                    *(window.remaining for window in entitlement.entity.windows),
                ]
            remaining = min((units for units in left if units is not None), default=None)
            if remaining is None or remaining < quantity:
                return None
            if remaining >= want:  # refused by what the answer no longer shows (a window just turned over):
                if retried:  # once more; else a refusal it does not explain
                    return None
                retried = True
            want = min(want, remaining)
        return None

    def _end(self, lease: _Lease | None) -> None:
        """Ends the lease (if any) and settles every ended lease: reports their uses and releases them (the unused
        units go back). A lease whose uses cannot be reported yet keeps its hold — releasing it would give back
        units that were used — and is settled again by the next flush, renewal or `close`. `_io` held."""
        if lease is not None:
            self._ended.append(lease)
        for ended in list(self._ended):
            if not (self._report(ended) and self._release(ended)):
                return  # Tollgate cannot be reached: the others wait for the next try too
            self._ended.remove(ended)

    def _release(self, lease: _Lease) -> bool:
        """Gives the lease's unused units back; False when it should be tried again. `_io` held."""
        try:
            self._tollgate.entitlements.holds.release(lease.hold_id)
        except ConflictError:
            pass  # it expired (or was released by an operator): its unused units went back already
        except TollgateError as error:
            if _retryable(error):
                return False
            logger.warning("tollgate_client: lease %s not released; it ends at its expiry", lease.hold_id)
        return True

    def _report(self, lease: _Lease) -> bool:
        """Sends the lease's pending uses with their ids (`_io` held): to the hold while it lasts, as usage once
        it has ended. True when none is left to send; uses whose report failed stay pending, in order, for the
        next try (the server counts each id once, so a report whose answer was lost is safely sent again)."""
        with self._state:
            events, lease.pending = lease.pending, []
        for start in range(0, len(events), _MAX_REPORT):
            batch = events[start : start + _MAX_REPORT]
            try:
                self._send(lease, batch)
            except TollgateError as error:
                if _retryable(error):
                    with self._state:
                        lease.pending[:0] = events[start:]
                    return False
                units = sum(quantity for _, quantity, _ in batch)
                logger.error(
                    "tollgate_client: %d uses of lease %s not recorded", units, lease.hold_id, exc_info=True
                )
                self.lost += units
        return True

    def _send(self, lease: _Lease, batch: list[Use]) -> None:
        """One report (`_io` held). A use whose id another use took (another customer's, feature's or quantity's)
        refuses the whole report: the others are then sent one by one, and that use is counted in `lost`. A
        report of model calls that Tollgate priced past what the hold has left (a cost table version started
        since they were priced here) is recorded as usage instead, with the calls' ids, as a late one is."""
        events: list[tuple[str, int] | Mapping[str, Any]] = [
            (event_id, quantity) if call is None else _call_event(event_id, call)
            for event_id, quantity, call in batch
        ]
        try:
            self._tollgate.entitlements.holds.report_usage(lease.hold_id, events=events)
        except InvalidRequestError as error:
            if error.code != "usage_exceeds_hold" or all(call is None for _, _, call in batch):
                raise
            self._record_late(lease, batch)
        except ConflictError as error:
            if error.code != "idempotency_id_reused":  # the lease ended before its uses reached Tollgate
                self._record_late(lease, batch)
            elif len(batch) == 1:
                raise
            else:
                for event in batch:
                    try:
                        self._send(lease, [event])
                    except ConflictError:
                        logger.error(
                            "tollgate_client: use %r not recorded: its id names another use", event[0]
                        )
                        self.lost += event[1]

    def _record_late(self, lease: _Lease, events: list[Use]) -> None:
        units = sum(quantity for _, quantity, _ in events)
        if self._metered:
            logger.warning(
                "tollgate_client: %d units of uses of lease %s recorded as usage, not from the lease",
                units,
                lease.hold_id,
            )
            self._tollgate.usage.record_batch(events=[self._late_use(*event) for event in events])
        else:
            logger.error(
                "tollgate_client: lease %s ended; %d units used from it are not counted", lease.hold_id, units
            )
            self.lost += units

    def _late_use(self, event_id: str, quantity: int, call: Call | None) -> UsageEventParams:
        use: dict[str, Any] = {"id": event_id, "customer": self.customer, "feature": self.feature}
        if call is None:
            use["quantity"] = quantity
        else:  # priced by Tollgate as it records it
            use.update(_call_event(event_id, call))
        if self.entity is not None:
            use["entity"] = self.entity
        return cast("UsageEventParams", use)

    def _lost(self) -> None:
        """At `close`: what is still unreported cannot be reported any more (`_io` held)."""
        for lease in self._ended:
            units = sum(quantity for _, quantity, _ in lease.pending)
            if units:
                logger.error(
                    "tollgate_client: Tollgate unreachable at close; %d uses of lease %s not reported",
                    units,
                    lease.hold_id,
                )
                self.lost += units
        self._ended = []

    def flush(self) -> None:
        """Reports the current lease's pending uses now, and settles the leases that ended with uses to report."""
        with self._io:
            lease = self._lease
            if lease is not None:
                self._report(lease)
            if self._ended:
                self._end(None)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_every):
            try:
                self.flush()
                with self._io:
                    with self._state:
                        due = self._lease is not None and time.monotonic() >= self._lease.deadline
                        ending = self._lease if due else None
                        if due:
                            self._lease = None
                    if ending is not None:
                        self._end(ending)
                    if self._pricing is not None and time.monotonic() >= self._pricing_until:
                        self._pricing_fetch()  # model calls are priced by the one held until it answers
            except Exception:  # a flush that failed is tried again; the thread must live
                logger.warning("tollgate_client: lease flush failed", exc_info=True)

    def close(self) -> None:
        """Reports every pending use, releases the lease and stops the background flush."""
        self._stop.set()
        self._flusher.join(timeout=self.flush_every + 30)
        with self._io:
            with self._state:
                ending, self._lease = self._lease, None
            self._end(ending)
            self._lost()

    def __enter__(self) -> LeasedQuota:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
