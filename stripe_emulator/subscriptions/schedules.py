"""Subscription schedules (``/v1/subscription_schedules``), behaviour side: a schedule of phases, each a set of
items from ``start_date`` to ``end_date``, driving one subscription. Created for a customer (the subscription
starts with the first phase: now, or later from the advance hook) or ``from_subscription`` (one phase: the
subscription's current period and items, ``end_behavior=release``). Updating ``phases`` may change the current
phase (applied to the subscription now, with ``proration_behavior``) and replaces the phases after it.

Time moves schedules through :func:`schedule_tasks`, run by the subscriptions' advance hook before a renewal due
at the same second: at a phase's end the subscription takes the next phase's items (``customer.subscription.
updated``; no proration at a period boundary), and after the last phase the schedule completes, releasing the
subscription (``end_behavior=release``) or canceling it (``cancel``). Events: ``subscription_schedule.created``,
``.updated``, ``.released``, ``.canceled``, ``.completed``; the subscription's ``schedule`` names its schedule
while one drives it. Stripe refuses ``cancel_at_period_end``/``cancel_at`` on such a subscription
(:func:`refuse_cancel_change`), and canceling the subscription cancels its schedule."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.products.models import is_metered
from stripe_emulator.subscriptions.models import SubscriptionsBackend
from stripe_emulator.subscriptions.models.base import ENDED_STATUSES, plan_of
from stripe_emulator.subscriptions.periods import add_interval

OBJECT = "subscription_schedule"
OPEN_STATUSES = ("not_started", "active")


def refuse_cancel_change(sub: StripeObject) -> None:
    """Stripe's refusal of a cancellation change made on a subscription instead of its schedule."""
    if sub.get("schedule"):
        raise InvalidRequestError(
            f"The subscription is managed by the subscription schedule `{sub['schedule']}`, and updating any "
            "cancelation behavior directly is not allowed. Please update the schedule instead.",
            param=None,
        )


def _status_error(schedule: StripeObject, verb: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"You cannot {verb} a subscription schedule that is currently in the `{schedule['status']}` status. "
        f"It must be in `not_started` or `active` to be {verb}d."
        if verb != "cancel"
        else f"You cannot cancel a subscription schedule that is currently in the `{schedule['status']}` "
        "status. It must be in `not_started` or `active` to be canceled.",
        param=None,
    )


class SchedulesBackend(BaseBackend):
    @property
    def subs(self) -> SubscriptionsBackend:
        return self.account.backend(SubscriptionsBackend)

    def schedule_require(self, schedule_id: str) -> StripeObject:
        return self.store.require(OBJECT, schedule_id, param="schedule")

    def schedule_list(
        self, *, customer: str | None = None, released: bool | None = None, scheduled: bool | None = None
    ) -> list[StripeObject]:
        def keep(schedule: StripeObject) -> bool:
            if customer is not None and schedule["customer"] != customer:
                return False
            if released is not None and (schedule["status"] == "released") != released:
                return False
            return scheduled is None or (schedule["status"] == "not_started") == scheduled

        return [s for s in self.store.newest_first(OBJECT) if keep(s)]

    # -- phases --------------------------------------------------------------------------------------------

    def _phase(
        self, spec: dict[str, Any], start: int, currency: str, last: bool, param: str
    ) -> dict[str, Any]:
        """One phase from its spec (``items``, ``end_date`` | ``iterations`` | ``duration``,
        ``proration_behavior``, ``metadata``) starting at ``start``: its end from the first item's interval when
        given as iterations or a duration (one iteration for a last phase given none)."""
        items = []
        for n, item in enumerate(spec["items"]):
            price = self.subs._price(item["price"], f"{param}[items][{n}][price]")
            if price["currency"] != currency:
                raise InvalidRequestError(
                    "The price specified does not match the currency of the subscription schedule.",
                    param=f"{param}[items][{n}][price]",
                )
            items.append(
                {
                    "billing_thresholds": None,
                    "discounts": [],
                    "metadata": dict(item.get("metadata") or {}),
                    "plan": plan_of(price),
                    "price": price["id"],
                    # A metered price takes no quantity (usage is reported instead).
                    "quantity": None
                    if is_metered(price)
                    else (1 if item.get("quantity") is None else item["quantity"]),
                    "tax_rates": [],
                }
            )
        end = spec.get("end_date")
        if end is None:
            recurring = self.store.require("price", items[0]["price"])["recurring"]
            duration = spec.get("duration") or {}
            if duration:
                end = add_interval(start, duration["interval"], int(duration.get("interval_count") or 1))
            elif spec.get("iterations") is not None or last:
                times = int(spec.get("iterations") or 1)
                end = add_interval(start, recurring["interval"], int(recurring["interval_count"]), times)
            else:
                raise InvalidRequestError(
                    "Every phase but the last one must have an `end_date`, `duration` or `iterations`.",
                    param=f"{param}[end_date]",
                )
        if end <= start:
            raise InvalidRequestError(
                "The end_date of a phase must be after its start_date.", param=f"{param}[end_date]"
            )
        return {
            "add_invoice_items": [],
            "application_fee_percent": None,
            "billing_cycle_anchor": None,
            "billing_thresholds": None,
            "collection_method": None,
            "currency": currency,
            "default_payment_method": None,
            "default_tax_rates": [],
            "description": None,
            "discounts": [],
            "end_date": end,
            "invoice_settings": None,
            "items": items,
            "metadata": dict(spec.get("metadata") or {}),
            "on_behalf_of": None,
            "proration_behavior": spec.get("proration_behavior") or "create_prorations",
            "start_date": start,
            "transfer_data": None,
            "trial_end": None,
        }

    def _phases(
        self, specs: list[dict[str, Any]], start: int, currency: str, first_param: int = 0
    ) -> list[dict[str, Any]]:
        phases: list[dict[str, Any]] = []
        for n, spec in enumerate(specs):
            if n and spec.get("start_date") is not None and spec["start_date"] != start:
                raise InvalidRequestError(
                    "Phases must be contiguous: a phase's start_date must be the previous phase's end_date.",
                    param=f"phases[{n + first_param}][start_date]",
                )
            phase = self._phase(spec, start, currency, n == len(specs) - 1, f"phases[{n + first_param}]")
            phases.append(phase)
            start = phase["end_date"]
        return phases

    # -- create --------------------------------------------------------------------------------------------

    def _new(self, customer: str, end_behavior: str, metadata: dict[str, str]) -> StripeObject:
        return {
            "id": ids.id_for(OBJECT),
            "object": OBJECT,
            "application": None,
            "billing_mode": {"type": "classic", "flexible": None},
            "canceled_at": None,
            "completed_at": None,
            "created": self.now(),
            "current_phase": None,
            "customer": customer,
            "customer_account": None,
            "default_settings": {
                "application_fee_percent": None,
                "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
                "billing_cycle_anchor": "automatic",
                "billing_thresholds": None,
                "collection_method": "charge_automatically",
                "default_payment_method": None,
                "description": None,
                "invoice_settings": {
                    "account_tax_ids": None,
                    "days_until_due": None,
                    "issuer": {"type": "self"},
                },
                "on_behalf_of": None,
                "transfer_data": None,
            },
            "end_behavior": end_behavior,
            "livemode": False,
            "metadata": metadata,
            "phases": [],
            "released_at": None,
            "released_subscription": None,
            "status": "not_started",
            "subscription": None,
            "test_clock": self.account.test_clock_of(customer),
        }

    def schedule_from_subscription(self, sub_id: str) -> StripeObject:
        sub = self.subs.subscription_require(sub_id, param="from_subscription")
        if sub.get("schedule"):
            raise InvalidRequestError(
                f"You cannot migrate a subscription that is already attached to a schedule: `{sub['schedule']}`.",
                param="from_subscription",
            )
        if sub["status"] in ENDED_STATUSES:
            raise InvalidRequestError(
                f"You cannot migrate a subscription that has status `{sub['status']}`.",
                param="from_subscription",
            )
        start, end = self.subs._period(sub)
        schedule = self._new(sub["customer"], "release", {})
        items = [{"price": i["price"]["id"], "quantity": i.get("quantity")} for i in self.subs.items_of(sub)]
        schedule["phases"] = [
            self._phase({"items": items, "end_date": end}, start, sub["currency"], True, "phases[0]")
        ]
        schedule["status"] = "active"
        schedule["subscription"] = sub["id"]
        schedule["current_phase"] = {"start_date": start, "end_date": end}
        self.store.insert(schedule)
        self.emit("subscription_schedule.created", schedule)
        with self.subs._operation(sub):
            sub["schedule"] = schedule["id"]
        return schedule

    def schedule_create(
        self,
        *,
        customer: str,
        phases: list[dict[str, Any]],
        start_date: int | str | None,
        end_behavior: str,
        metadata: dict[str, str],
        default_payment_method: str | None,
    ) -> StripeObject:
        cust = self.store.require("customer", customer, param="customer")
        if not phases:
            raise InvalidRequestError(
                "Missing required param: phases.", code="parameter_missing", param="phases"
            )
        now = self.now()
        start = now if start_date in (None, "now") else int(start_date)
        currency = self.subs._price(phases[0]["items"][0]["price"], "phases[0][items][0][price]")["currency"]
        schedule = self._new(cust["id"], end_behavior, metadata)
        schedule["phases"] = self._phases(phases, start, currency)
        schedule["default_settings"]["default_payment_method"] = default_payment_method
        self.store.insert(schedule)
        self.emit("subscription_schedule.created", schedule)
        if start <= now:
            self._start(schedule, now)
        return schedule

    def _start(self, schedule: StripeObject, at: int) -> None:
        """A not-started schedule's first phase begins: its subscription is created with the phase's items."""
        phase = schedule["phases"][0]
        sub = self.subs.subscription_create_internal(
            customer=schedule["customer"],
            items=[{"price": i["price"], "quantity": i["quantity"]} for i in phase["items"]],
            default_payment_method=schedule["default_settings"]["default_payment_method"],
        )
        before = clone(schedule)
        schedule["status"] = "active"
        schedule["subscription"] = sub["id"]
        schedule["current_phase"] = {"start_date": phase["start_date"], "end_date": phase["end_date"]}
        self.account.emit_update("subscription_schedule.updated", schedule, before)
        with self.subs._operation(sub):
            sub["schedule"] = schedule["id"]

    # -- update, release, cancel ---------------------------------------------------------------------------

    def schedule_update(
        self,
        schedule_id: str,
        *,
        phases: list[dict[str, Any]] | None,
        end_behavior: str | None,
        proration_behavior: str | None,
        metadata: dict[str, str] | None,
    ) -> StripeObject:
        schedule = self.schedule_require(schedule_id)
        if schedule["status"] not in OPEN_STATUSES:
            raise _status_error(schedule, "update")
        before = clone(schedule)
        sub = self.store.get("subscription", schedule["subscription"] or "")
        apply_now = None
        if phases is not None:
            current = schedule["current_phase"]
            if current is not None:
                first = phases[0].get("start_date")
                if first not in (None, current["start_date"]) and not (first == "now"):
                    raise InvalidRequestError(
                        "You can not modify the start date of the current phase.",
                        param="phases[0][start_date]",
                    )
                start = current["start_date"]
            else:
                first = phases[0].get("start_date")
                start = self.now() if first in (None, "now") else int(first)
            new = self._phases(phases, start, schedule["phases"][0]["currency"])
            if current is not None and sub is not None:
                old_items = [(i["price"], i["quantity"]) for i in self._phase_at(schedule)["items"]]
                if [(i["price"], i["quantity"]) for i in new[0]["items"]] != old_items:
                    apply_now = new[0]
                current["end_date"] = new[0]["end_date"]
            schedule["phases"] = new
        if end_behavior is not None:
            schedule["end_behavior"] = end_behavior
        if metadata is not None:
            schedule["metadata"] = metadata
        if apply_now is not None and sub is not None:
            self._apply_phase(sub, apply_now, proration_behavior or "create_prorations", self.now())
        self.account.emit_update("subscription_schedule.updated", schedule, before)
        return schedule

    def _phase_at(self, schedule: StripeObject) -> dict[str, Any]:
        current = schedule["current_phase"] or {}
        return next(
            (p for p in schedule["phases"] if p["start_date"] == current.get("start_date")),
            schedule["phases"][0],
        )

    def schedule_release(self, schedule_id: str, *, preserve_cancel_date: bool = True) -> StripeObject:
        schedule = self.schedule_require(schedule_id)
        if schedule["status"] not in OPEN_STATUSES:
            raise _status_error(schedule, "release")
        self._release(schedule, self.now(), "released")
        return schedule

    def _release(self, schedule: StripeObject, at: int, status: str) -> None:
        sub = self.store.get("subscription", schedule["subscription"] or "")
        schedule["status"] = status
        schedule["current_phase"] = None
        if status == "released":
            schedule["released_at"] = at
        else:
            schedule["completed_at"] = at
        schedule["released_subscription"] = schedule["subscription"]
        schedule["subscription"] = None
        self.emit(f"subscription_schedule.{status}", schedule)
        if sub is not None:
            with self.subs._operation(sub):
                sub["schedule"] = None

    def schedule_cancel(
        self, schedule_id: str, *, invoice_now: bool = True, prorate: bool = True
    ) -> StripeObject:
        schedule = self.schedule_require(schedule_id)
        if schedule["status"] not in OPEN_STATUSES:
            raise _status_error(schedule, "cancel")
        sub = self.store.get("subscription", schedule["subscription"] or "")
        if sub is not None and sub["status"] not in ENDED_STATUSES:
            # Ending the subscription cancels its schedule (SubscriptionsBase._end), as Stripe does.
            self.subs.subscription_cancel(sub["id"], invoice_now=invoice_now, prorate_=prorate)
        else:
            schedule.update(status="canceled", canceled_at=self.now(), current_phase=None)
            self.emit("subscription_schedule.canceled", schedule)
        return schedule

    # -- time ----------------------------------------------------------------------------------------------

    def due(self, now: int) -> list[tuple[int, StripeObject]]:
        tasks = []
        for schedule in self.store.iter_type(OBJECT):
            if not self.account.on_current_clock(schedule["customer"]):
                continue
            if schedule["status"] == "not_started" and schedule["phases"][0]["start_date"] <= now:
                tasks.append((schedule["phases"][0]["start_date"], schedule))
            elif schedule["status"] == "active" and schedule["current_phase"]["end_date"] <= now:
                tasks.append((schedule["current_phase"]["end_date"], schedule))
        return tasks

    def run(self, schedule: StripeObject, at: int) -> None:
        if schedule["status"] == "not_started":
            self._start(schedule, at)
            return
        sub = self.subs.subscription_require(schedule["subscription"])
        following = [
            p for p in schedule["phases"] if p["start_date"] >= schedule["current_phase"]["end_date"]
        ]
        if not following:
            if schedule["end_behavior"] == "cancel":
                sub["schedule"] = None
                with self.subs._operation(sub):
                    self.subs._end(sub, at, reason="cancellation_requested")
                schedule["status"] = "completed"
                schedule["completed_at"] = at
                schedule["current_phase"] = None
                schedule["released_subscription"] = None
                self.emit("subscription_schedule.completed", schedule)
            else:
                self._release(schedule, at, "completed")
            return
        phase = following[0]
        before = clone(schedule)
        schedule["current_phase"] = {"start_date": phase["start_date"], "end_date": phase["end_date"]}
        self._apply_phase(sub, phase, phase["proration_behavior"], at)
        self.account.emit_update("subscription_schedule.updated", schedule, before)

    def _apply_phase(
        self, sub: StripeObject, phase: dict[str, Any], proration_behavior: str, at: int
    ) -> None:
        """The subscription takes ``phase``'s items: one of the same price keeps its item, one of the same product
        takes the new price on its item, others are added; the rest are deleted. At (or after) the period's end
        nothing is left to prorate; another interval restarts the period and invoices it, as an update does."""
        live = self.subs.items_of(sub)
        unmatched = list(live)
        specs: list[dict[str, Any]] = []
        for wanted in phase["items"]:
            price = self.store.require("price", wanted["price"])
            found = next((i for i in unmatched if i["price"]["id"] == price["id"]), None) or next(
                (i for i in unmatched if i["price"]["product"] == price["product"]), None
            )
            spec: dict[str, Any] = {"price": price["id"]}
            if wanted["quantity"] is not None:
                spec["quantity"] = wanted["quantity"]
            if found is not None:
                unmatched.remove(found)
                spec["id"] = found["id"]
            specs.append(spec)
        specs += [{"id": item["id"], "deleted": True} for item in unmatched]
        plan = self.subs._plan_items(sub, specs, "phases")
        _, end = self.subs._period(sub)
        behavior = "none" if at >= end else proration_behavior
        with self.subs._operation(sub):
            if self.subs._changes_interval(sub, plan):
                invoice = self.subs._interval_invoice(sub, plan, behavior, None, "allow_incomplete", at)
                self.subs._collect_update(sub, invoice, "allow_incomplete", True, at)
                return
            invoice_now = self.subs._apply_plan(sub, plan, behavior, None, "allow_incomplete", at)
            if invoice_now:
                self.subs._invoice_prorations(sub, invoice_now, plan, "allow_incomplete", True, at)


def schedule_tasks(account: Any, now: int) -> list[tuple[int, StripeObject]]:
    return account.backend(SchedulesBackend).due(now)


def schedule_run(account: Any, schedule: StripeObject, at: int) -> None:
    account.backend(SchedulesBackend).run(schedule, at)
