"""Billing meters (``billing.meter``), the usage events reported against them (``billing.meter_event``) and
their aggregation (``billing.meter_event_summary``, and the usage a metered price bills at renewal).

Rules: ``event_name`` is unique per account (inactive meters keep theirs); an event's ``timestamp`` is at most
35 days old and at most 5 minutes in the future — of its customer's test clock's ``frozen_time`` when the
customer is on one, as Stripe judges a clock's customer's events (and the default timestamp is that time);
``identifier`` is unique per account (a repeat is refused,
so a retried report never counts twice). Events are validated when received — unlike Stripe, which accepts
them and reports problems asynchronously — so a typo fails the test that made it. An event canceled by a meter
event adjustment (within 24 hours of receiving it) counts in no summary and no invoice.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.errors import InvalidRequestError, ParameterInvalid, ResourceAlreadyExists
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.testclocks.models import customer_clock_scope

FORMULAS = ("count", "last", "sum")
MAX_AGE = 35 * 86_400
MAX_FUTURE = 5 * 60
WINDOWS = {"day": 86_400, "hour": 3_600}
CANCEL_WINDOW = 24 * 3_600  # a meter event may be canceled within 24 hours of Stripe receiving it


class MetersBackend(BaseBackend):
    # -- meters --------------------------------------------------------------------------------------------

    def meter_create(
        self,
        *,
        display_name: str,
        event_name: str,
        formula: str,
        customer_payload_key: str = "stripe_customer_id",
        value_payload_key: str = "value",
        event_time_window: str | None = None,
    ) -> StripeObject:
        if self.meter_by_event_name(event_name) is not None:
            raise ResourceAlreadyExists(
                f"A meter with the event_name `{event_name}` already exists. Use a different event_name.",
                param="event_name",
            )
        now = self.now()
        meter: StripeObject = {
            "id": ids.id_for("billing.meter"),
            "object": "billing.meter",
            "created": now,
            "customer_mapping": {"event_payload_key": customer_payload_key, "type": "by_id"},
            "default_aggregation": {"formula": formula},
            "display_name": display_name,
            "event_name": event_name,
            "event_time_window": event_time_window,
            "livemode": False,
            "status": "active",
            "status_transitions": {"deactivated_at": None},
            "updated": now,
            "value_settings": {"event_payload_key": value_payload_key},
        }
        self.store.insert(meter)
        return meter

    def meter_require(self, meter_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("billing.meter", meter_id, param=param)

    def meter_by_event_name(self, event_name: str) -> StripeObject | None:
        for meter in self.store.iter_type("billing.meter"):
            if meter["event_name"] == event_name:
                return meter
        return None

    def meter_list(self, *, status: str | None = None) -> list[StripeObject]:
        return self.store.newest_first("billing.meter", lambda m: status is None or m["status"] == status)

    def meter_update(self, meter_id: str, *, display_name: str | None) -> StripeObject:
        meter = self.meter_require(meter_id)
        if display_name is not None and display_name != meter["display_name"]:
            meter["display_name"] = display_name
            meter["updated"] = self.now()
        return meter

    def meter_set_active(self, meter_id: str, active: bool) -> StripeObject:
        meter = self.meter_require(meter_id)
        wanted = "active" if active else "inactive"
        if meter["status"] == wanted:
            raise InvalidRequestError(
                f"This meter is already {wanted}.", code="billing_meter_invalid_state", param=None
            )
        now = self.now()
        meter["status"] = wanted
        meter["status_transitions"]["deactivated_at"] = None if active else now
        meter["updated"] = now
        return meter

    # -- events --------------------------------------------------------------------------------------------

    def meter_event_create(
        self,
        *,
        event_name: str,
        payload: dict[str, Any],
        identifier: str | None = None,
        timestamp: int | None = None,
    ) -> StripeObject:
        now = self.now()
        meter = self.meter_by_event_name(event_name)
        if meter is None or meter["status"] != "active":
            raise InvalidRequestError(
                f"No active meter was found with the event_name `{event_name}`.",
                code="billing_meter_event_no_meter",
                param="event_name",
            )
        customer_key = meter["customer_mapping"]["event_payload_key"]
        customer = payload.get(customer_key)
        if not customer:
            raise InvalidRequestError(
                f"Missing required param: payload[{customer_key}].",
                code="parameter_missing",
                param=f"payload[{customer_key}]",
            )
        self.store.require("customer", str(customer), param=f"payload[{customer_key}]")
        # The customer is in the payload, not a param the request's clock resolver reads: its clock, here.
        scope = customer_clock_scope(self.account, str(customer))
        if scope is not None:
            now = scope.now
        when = now if timestamp is None else timestamp
        if when < now - MAX_AGE or when > now + MAX_FUTURE:
            raise ParameterInvalid(
                "Timestamp must be within the past 35 days and not more than 5 minutes in the future.",
                param="timestamp",
            )
        value_key = meter["value_settings"]["event_payload_key"]
        raw = payload.get(value_key)
        if raw is None and meter["default_aggregation"]["formula"] != "count":
            raise InvalidRequestError(
                f"Missing required param: payload[{value_key}].",
                code="parameter_missing",
                param=f"payload[{value_key}]",
            )
        value = Decimal(1)
        if raw is not None:
            try:
                value = Decimal(str(raw))
            except InvalidOperation as exc:
                raise ParameterInvalid(
                    f"Invalid value: payload[{value_key}] must be a number.", param=f"payload[{value_key}]"
                ) from exc
        identifier = identifier or ids.random_token(32)
        if any(e["identifier"] == identifier for e in self.store.iter_type("billing.meter_event")):
            raise ResourceAlreadyExists(
                f"A meter event with the identifier `{identifier}` already exists.", param="identifier"
            )
        event: StripeObject = {
            "id": ids.id_for("billing.meter_event"),
            "object": "billing.meter_event",
            "created": now,
            "event_name": event_name,
            "identifier": identifier,
            "livemode": False,
            "payload": {k: str(v) for k, v in payload.items()},
            "timestamp": when,
            "_meter": meter["id"],
            "_customer": str(customer),
            "_value": str(value),
        }
        self.store.insert(event)
        return event

    def meter_event_adjustment_create(
        self, *, event_name: str, type: str, identifier: str | None
    ) -> StripeObject:
        """Cancels the meter event `identifier` of the meter `event_name`: from then on it counts in no summary
        and no invoice. As Stripe does, an event received more than 24 hours ago is not canceled, nor is one
        that does not exist: Stripe accepts the adjustment and processes it asynchronously (a failure surfaces
        as a meter error report, not in the answer); the emulator processes it at once, so the answer says
        `complete` once the event is canceled and `pending` when nothing was."""
        meter = self.meter_by_event_name(event_name)
        if meter is None or meter["status"] != "active":
            raise InvalidRequestError(
                f"No active meter was found with the event_name `{event_name}`.",
                code="billing_meter_event_no_meter",
                param="event_name",
            )
        if type != "cancel":
            raise ParameterInvalid("Invalid type: must be one of cancel.", param="type")
        if not identifier:
            raise InvalidRequestError(
                "Missing required param: cancel[identifier].",
                code="parameter_missing",
                param="cancel[identifier]",
            )
        status = "pending"
        for event in self.store.iter_type("billing.meter_event"):
            if event["identifier"] != identifier or event["_meter"] != meter["id"]:
                continue
            if event.get("_canceled"):
                status = "complete"  # canceled already: a retried adjustment changes nothing more
            else:
                scope = customer_clock_scope(self.account, event["_customer"])  # received on its clock's time
                if (scope.now if scope is not None else self.now()) - int(event["created"]) <= CANCEL_WINDOW:
                    event["_canceled"] = True
                    status = "complete"
        return {
            "object": "billing.meter_event_adjustment",
            "cancel": {"identifier": identifier},
            "event_name": event_name,
            "livemode": False,
            "status": status,
            "type": "cancel",
        }

    def _events(self, meter: StripeObject, customer: str, start: int, end: int) -> list[StripeObject]:
        return sorted(
            (
                e
                for e in self.store.iter_type("billing.meter_event")
                if e["_meter"] == meter["id"]
                and e["_customer"] == customer
                and start <= e["timestamp"] < end
                and not e.get("_canceled")
            ),
            key=lambda e: (e["timestamp"], e["_seq"]),
        )

    def aggregate(self, meter: StripeObject, events: list[StripeObject]) -> Decimal:
        formula = meter["default_aggregation"]["formula"]
        if formula == "count":
            return Decimal(len(events))
        if formula == "last":
            return Decimal(events[-1]["_value"]) if events else Decimal(0)
        return sum((Decimal(e["_value"]) for e in events), Decimal(0))

    def meter_usage(self, meter_id: str, customer: str, start: int, end: int) -> Decimal:
        """The meter's aggregated value for ``customer`` over [start, end): what a metered price bills."""
        meter = self.meter_require(meter_id, param=None)
        return self.aggregate(meter, self._events(meter, customer, start, end))

    def meter_event_summaries(
        self, meter_id: str, *, customer: str, start_time: int, end_time: int, window: str | None = None
    ) -> list[StripeObject]:
        """One summary for the whole range, or one per ``day``/``hour`` window (oldest first)."""
        meter = self.meter_require(meter_id)
        self.store.require("customer", customer, param="customer")
        if end_time <= start_time:
            raise InvalidRequestError("end_time must be after start_time.", param="end_time")
        step = WINDOWS[window] if window else end_time - start_time
        if window and (start_time % step or end_time % step):
            raise InvalidRequestError(
                f"start_time and end_time must be aligned to the value_grouping_window ({window}).",
                param="start_time",
            )
        summaries = []
        for begin in range(start_time, end_time, step):
            finish = min(begin + step, end_time)
            value = self.aggregate(meter, self._events(meter, customer, begin, finish))
            summaries.append(
                {
                    "id": f"mtrusg_{meter['id'][4:]}_{begin}",
                    "object": "billing.meter_event_summary",
                    "aggregated_value": float(value) if value != value.to_integral_value() else int(value),
                    "end_time": finish,
                    "livemode": False,
                    "meter": meter["id"],
                    "start_time": begin,
                }
            )
        return summaries


def render_meter_event(event: StripeObject) -> StripeObject:
    """A meter event as Stripe returns it (it has no ``id``)."""
    rendered: StripeObject = clone(event)
    rendered.pop("id", None)
    return rendered
