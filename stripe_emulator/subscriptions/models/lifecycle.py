"""A subscription's life after creation: cancellation and resume, the reactions to its invoices being paid
or failing (status changes, dunning outcome), and everything time does to it (incomplete expiry, pending
update expiry, end of paused collection, scheduled cancellation, trial end, renewal)."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.store import StripeObject
from stripe_emulator.subscriptions.models.base import ENDED_STATUSES, TRIAL_WILL_END_NOTICE
from stripe_emulator.subscriptions.models.proration import SubscriptionProrations
from stripe_emulator.subscriptions.periods import next_boundary
from stripe_emulator.subscriptions.settings import billing_settings


class SubscriptionLifecycle(SubscriptionProrations):
    # -- invoice outcomes (called by InvoicesBackend) ------------------------------------------------------

    def on_invoice_paid(self, invoice: StripeObject) -> None:
        sub = self.store.get("subscription", invoice["_subscription"])
        if sub is None or sub["status"] in ENDED_STATUSES:
            return
        with self._operation(sub):
            if sub.get("_pending_invoice") == invoice["id"]:
                self._apply_pending(sub)
            if sub["status"] in ("incomplete", "past_due", "unpaid", "paused"):
                still_owed = [
                    i
                    for i in self.invoices.invoice_list(subscription=sub["id"], status="open")
                    if i["id"] != invoice["id"] and i["attempted"] and i["id"] != sub.get("_pending_invoice")
                ]
                if not still_owed:
                    trialing = sub["trial_end"] is not None and sub["trial_end"] > self.now()
                    sub["status"] = "trialing" if trialing else "active"

    def on_invoice_payment_failed(self, invoice: StripeObject, *, final: bool) -> None:
        sub = self.store.get("subscription", invoice["_subscription"])
        if sub is None or sub["status"] in ENDED_STATUSES:
            return
        if sub.get("_pending_invoice") == invoice["id"]:
            return  # a pending update: the subscription carries on as if no update had been requested
        with self._operation(sub):
            if invoice["billing_reason"] == "subscription_create":
                if sub["status"] != "trialing":
                    sub["status"] = "incomplete"
                return
            if not final:
                if sub["status"] in ("active", "trialing", "paused"):
                    sub["status"] = "past_due"
                return
            action = billing_settings(self.account)["after_final_failure"]
            if action == "canceled":
                self._end(sub, invoice.get("_attempt_at") or self.now(), reason="payment_failed")
            elif action == "unpaid":
                sub["status"] = "unpaid"
            else:
                sub["status"] = "past_due"

    # -- cancel / resume -----------------------------------------------------------------------------------

    def subscription_cancel(
        self,
        sub_id: str,
        *,
        invoice_now: bool = False,
        prorate_: bool = False,
        cancellation_details: dict[str, Any] | None = None,
    ) -> StripeObject:
        sub = self.subscription_require(sub_id)
        if sub["status"] in ENDED_STATUSES:
            raise InvalidRequestError(
                f"A canceled subscription can't be canceled again: {sub_id}",
                code="resource_missing",
                param=None,
            )
        now = self.now()
        with self._operation(sub):
            if prorate_ and sub["status"] not in ("trialing", "incomplete"):
                start, end = self._period(sub)
                for spec in self._prorations(sub, [], start, end, now):
                    self._pending_item(sub, spec)
            if invoice_now:
                self._final_invoice(sub, now)
            self._end(sub, now, reason="cancellation_requested")
            if cancellation_details:
                sub["cancellation_details"].update(cancellation_details)
        return sub

    def subscription_resume(
        self, sub_id: str, *, billing_cycle_anchor: str = "now", proration_behavior: str = "create_prorations"
    ) -> StripeObject:
        sub = self.subscription_require(sub_id)
        if sub["status"] != "paused":
            raise InvalidRequestError("Only a subscription with `status=paused` can be resumed.", param=None)
        now = self.now()
        with self._operation(sub):
            if billing_cycle_anchor == "now":
                sub["billing_cycle_anchor"] = now
            self._start_paid_period(sub, now, "subscription_update", "allow_incomplete", True, resume=True)
        return sub

    # -- time ----------------------------------------------------------------------------------------------

    def due_tasks(self, now: int) -> list[tuple[int, int, str, StripeObject]]:
        """Every time-driven step due by ``now``: ``(when, priority, kind, object)``."""
        tasks: list[tuple[int, int, str, StripeObject]] = []
        expiry = int(billing_settings(self.account)["incomplete_expiry_hours"] * 3600)
        for sub in self.store.iter_type("subscription"):
            if not self.account.on_current_clock(sub["customer"]):
                continue  # another clock's (a test clock's, or the emulator's) subscription
            status = sub["status"]
            if status == "incomplete":
                if sub["created"] + expiry <= now:
                    tasks.append((sub["created"] + expiry, 0, "incomplete_expire", sub))
                continue
            if status in ENDED_STATUSES:
                continue
            pending = sub["pending_update"]
            if pending is not None and pending["expires_at"] <= now:
                tasks.append((pending["expires_at"], 1, "pending_expire", sub))
            pause = sub["pause_collection"]
            if pause is not None and pause.get("resumes_at") is not None and pause["resumes_at"] <= now:
                tasks.append((pause["resumes_at"], 2, "unpause_collection", sub))
            if status == "paused":
                continue
            if sub["cancel_at"] is not None and not sub["cancel_at_period_end"] and sub["cancel_at"] <= now:
                tasks.append((sub["cancel_at"], 3, "cancel_at", sub))
                continue
            if status == "trialing":
                notice = sub["trial_end"] - TRIAL_WILL_END_NOTICE
                if not sub.get("_trial_will_end_sent") and notice <= now:
                    tasks.append((max(notice, sub["created"]), 4, "trial_will_end", sub))
                if sub["trial_end"] <= now:
                    tasks.append((sub["trial_end"], 5, "trial_end", sub))
                continue
            _, end = self._period(sub)
            if end <= now:
                tasks.append((end, 6, "renew", sub))
        return tasks

    def run_task(self, kind: str, sub: StripeObject, at: int) -> None:
        if kind == "incomplete_expire":
            with self._operation(sub):
                sub["status"] = "incomplete_expired"
                sub["canceled_at"] = sub["ended_at"] = at
                latest = self.store.get("invoice", sub["latest_invoice"] or "")
                if latest is not None and latest["status"] == "open":
                    self.invoices.invoice_void(latest["id"])
        elif kind == "pending_expire":
            with self._operation(sub):
                self._drop_pending(sub)
        elif kind == "unpause_collection":
            with self._operation(sub):
                sub["pause_collection"] = None
        elif kind == "cancel_at":
            with self._operation(sub):
                self._end(sub, at, reason="cancellation_requested")
        elif kind == "trial_will_end":
            sub["_trial_will_end_sent"] = True
            self.emit("customer.subscription.trial_will_end", sub)
        elif kind == "trial_end":
            self._trial_ended(sub, at)
        elif kind == "renew":
            self._renew(sub, at)

    def _trial_ended(self, sub: StripeObject, at: int) -> None:
        behavior = sub["trial_settings"]["end_behavior"]["missing_payment_method"]
        with self._operation(sub):
            if self._default_pm(sub) is None and sub["collection_method"] == "charge_automatically":
                if behavior == "pause":
                    sub["status"] = "paused"
                    sub["status_details"] = {
                        "paused": {
                            "subscription": {"type": "trial_end_without_payment_method"},
                            "transitioned_at": at,
                            "type": "subscription",
                        }
                    }
                    return
                if behavior == "cancel":
                    self._end(sub, at, reason=None)
                    return
            invoice = self._start_paid_period(
                sub, at, "subscription_cycle", "allow_incomplete", True, collect=False
            )
        # Like Stripe: the subscription turns active (and says so) before the first invoice is collected.
        with self._operation(sub):
            self._collect(sub, invoice, "allow_incomplete", True)

    def _renew(self, sub: StripeObject, at: int) -> None:
        """A period boundary: cancel if scheduled, else move every item's period on and bill the new
        period in advance (licensed items), the old one in arrears (metered usage), plus pending items."""
        with self._operation(sub):
            if sub["cancel_at_period_end"]:
                # Like Stripe: the last period's metered usage (billed in arrears) and the pending prorations
                # are collected on a final invoice as the subscription ends.
                self._final_invoice(sub, at)
                self._end(sub, at, reason="cancellation_requested")
                return
            period = self._period(sub)
            interval, count = self._interval(sub)
            new_end = next_boundary(sub["billing_cycle_anchor"], interval, count, at)
            lines = self._cycle_lines(sub, at=at, new_end=new_end)
            sub.pop("_arrears", None)  # billed on this renewal
            for item in self.items_of(sub):
                item["current_period_start"] = at
                item["current_period_end"] = new_end
            self._sync_items(sub)
            invoice = self._cycle_invoice(sub, lines, period=period, created=at)
            sub["latest_invoice"] = invoice["id"]
            pause = sub["pause_collection"]
            if pause is not None:
                invoice["auto_advance"] = False
                if pause["behavior"] in ("mark_uncollectible", "void"):
                    self.invoices.invoice_finalize(invoice["id"], auto_advance=False)
                    if invoice["status"] == "open":
                        if pause["behavior"] == "void":
                            self.invoices.invoice_void(invoice["id"])
                        else:
                            self.invoices.invoice_mark_uncollectible(invoice["id"])
                return
            if sub["status"] == "unpaid":
                # Unpaid subscriptions keep generating invoices, but Stripe no longer attempts payment.
                self.invoices.invoice_finalize(invoice["id"], auto_advance=False)
                return
            invoice["_attempt_at"] = at
        # The period moves on (customer.subscription.updated) before the new invoice is collected.
        with self._operation(sub):
            self.invoices.invoice_finalize(invoice["id"])
            if invoice["status"] == "open" and sub["collection_method"] == "charge_automatically":
                self.invoices.invoice_attempt(invoice["id"])
