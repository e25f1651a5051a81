"""Updating a subscription (``POST /v1/subscriptions/{id}``): plain fields, scheduled cancellation, moving
or ending the trial, and item changes (validated and prorated by :mod:`.proration`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.store import StripeObject
from stripe_emulator.coupons.models import CouponsBackend
from stripe_emulator.subscriptions.models.base import ENDED_STATUSES
from stripe_emulator.subscriptions.models.proration import SubscriptionProrations


class SubscriptionUpdates(SubscriptionProrations):
    def subscription_update(
        self,
        sub_id: str,
        *,
        items: list[dict[str, Any]] | None = None,
        proration_behavior: str = "create_prorations",
        proration_date: int | None = None,
        payment_behavior: str = "allow_incomplete",
        changes: dict[str, Any] | None = None,
        trial_end: int | str | None = None,
        default_payment_method: str | None = None,
        off_session: bool = True,
        item_param: str = "items",
        discounts: list[dict[str, str | None]] | None = None,
    ) -> StripeObject:
        """Apply an update. ``items``: ``[{"id"?, "price"?, "quantity"?, "deleted"?, "metadata"?}]``;
        ``changes``: plain fields already validated (``metadata`` merged, ``cancel_at_period_end``,
        ``pause_collection``, ``description``, ``cancel_at``); ``discounts`` (``[{coupon} |
        {promotion_code}]``, ``[]`` clears) replace the subscription's discounts."""
        sub = self.subscription_require(sub_id)
        changes = dict(changes or {})
        redeem = self._discounts_check(sub, discounts) if discounts is not None else None
        ended = sub["status"] in ENDED_STATUSES
        if ended and (
            set(changes) - {"metadata"}
            or items
            or trial_end is not None
            or default_payment_method
            or discounts is not None
        ):
            raise InvalidRequestError(
                "A canceled subscription can only update its cancellation_details and metadata.",
                param=None,
            )
        if sub["status"] == "incomplete" and (items or trial_end is not None):
            raise InvalidRequestError(
                "A subscription in `incomplete` status can only have metadata and default_source updated.",
                param=None,
            )
        plan = self._plan_items(sub, items or [], item_param) if items else None
        pm = self._payment_method(default_payment_method, sub["customer"], "default_payment_method")

        def update() -> StripeObject:
            # New discounts are redeemed only once everything is checked (a refused update redeems nothing).
            if redeem is not None:
                changes["discounts"] = redeem()
            return self._update(sub, plan, proration_behavior, proration_date, payment_behavior, changes, trial_end, pm, off_session, default_payment_method is not None)  # fmt: skip

        if payment_behavior == "error_if_incomplete":
            with self._all_or_nothing():
                return update()
        return update()

    def _update(
        self,
        sub: StripeObject,
        plan: list[dict[str, Any]] | None,
        proration_behavior: str,
        proration_date: int | None,
        payment_behavior: str,
        changes: dict[str, Any],
        trial_end: int | str | None,
        pm: str | None,
        off_session: bool,
        pm_sent: bool,
    ) -> StripeObject:
        now = self.now()
        with self._operation(sub):
            if pm_sent:
                sub["default_payment_method"] = pm
            if "metadata" in changes:
                sub["metadata"] = changes.pop("metadata")
            if "cancel_at_period_end" in changes:
                self._schedule_cancel(sub, bool(changes.pop("cancel_at_period_end")), now)
            if "cancel_at" in changes:
                cancel_at = changes.pop("cancel_at")
                sub["cancel_at"] = cancel_at
                sub["cancel_at_period_end"] = False
                sub["canceled_at"] = now if cancel_at else None
            if "cancellation_details" in changes:
                sub["cancellation_details"].update(changes.pop("cancellation_details"))
            sub.update(changes)
            if isinstance(trial_end, int) and sub["status"] == "trialing":
                self._move_trial(sub, trial_end, now)
            invoice_now: list[dict[str, Any]] = []
            if plan is not None and sub["status"] != "trialing" and self._changes_interval(sub, plan):
                # Another interval restarts the period and invoices it now, whatever the proration behavior.
                invoice = self._interval_invoice(
                    sub, plan, proration_behavior, proration_date, payment_behavior, now
                )
                self._collect_update(sub, invoice, payment_behavior, off_session, now)
            elif plan is not None:
                invoice_now = self._apply_plan(
                    sub, plan, proration_behavior, proration_date, payment_behavior, now
                )
            if trial_end == "now" and sub["status"] == "trialing":
                self.emit("customer.subscription.trial_will_end", sub)
                self._start_paid_period(sub, now, "subscription_update", payment_behavior, off_session)
            elif invoice_now:
                self._invoice_prorations(sub, invoice_now, plan, payment_behavior, off_session, now)
        return sub

    def _discounts_check(
        self, sub: StripeObject, entries: list[dict[str, str | None]]
    ) -> Callable[[], list[str]]:
        """Validates ``discounts`` for the subscription and returns what redeems them: the discount ids the
        subscription will hold. A discount it already has from the same coupon and promotion code is kept (not
        redeemed again); new ones are validated now, each named by its place in the request."""
        coupons = self.account.backend(CouponsBackend)
        current = [self.store.get("discount", d) for d in sub.get("discounts") or []]
        keep: dict[int, str] = {}
        fresh: list[tuple[int, dict[str, str | None]]] = []
        for n, entry in enumerate(entries):
            same = next(
                (
                    d
                    for d in current
                    if d is not None
                    and (
                        (entry.get("promotion_code") and d["promotion_code"] == entry["promotion_code"])
                        or (
                            entry.get("coupon")
                            and not d["promotion_code"]
                            and d["source"]["coupon"] == entry["coupon"]
                        )
                    )
                ),
                None,
            )
            if same is not None:
                keep[n] = same["id"]
            else:
                fresh.append((n, entry))
        specs = coupons.discount_specs(
            [entry for _, entry in fresh],
            param="discounts",
            customer=sub["customer"],
            currency=sub["currency"],
            indexes=[n for n, _ in fresh],
        )

        def redeem() -> list[str]:
            created = {
                n: coupons.discount_create(spec, customer=sub["customer"], subscription=sub["id"])["id"]
                for (n, _), spec in zip(fresh, specs, strict=True)
            }
            return [keep.get(n) or created[n] for n in range(len(entries))]

        return redeem

    def _schedule_cancel(self, sub: StripeObject, flag: bool, now: int) -> None:
        sub["cancel_at_period_end"] = flag
        if flag:
            sub["cancel_at"] = self._period(sub)[1]
            sub["canceled_at"] = now
            sub["cancellation_details"]["reason"] = "cancellation_requested"
        else:
            sub["cancel_at"] = None
            sub["canceled_at"] = None
            sub["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}

    def _move_trial(self, sub: StripeObject, trial_end: int, now: int) -> None:
        if trial_end <= now:
            raise InvalidRequestError(
                "Invalid timestamp: must be an integer Unix timestamp in the future.", param="trial_end"
            )
        sub["trial_end"] = trial_end
        sub["billing_cycle_anchor"] = trial_end
        sub.pop("_trial_will_end_sent", None)
        for item in self.items_of(sub):
            item["current_period_end"] = trial_end
        if sub["cancel_at_period_end"]:
            sub["cancel_at"] = trial_end
