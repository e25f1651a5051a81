"""Subscription items and what they bill: listing subscriptions and items, creating and swapping item rows,
the invoice lines for a period (licensed items in advance, metered usage in arrears), starting a paid period
(trial end, resume) and the final invoice of a cancellation."""

from __future__ import annotations

from decimal import ROUND_HALF_UP
from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.products.models import is_metered
from stripe_emulator.subscriptions.models.base import (
    ENDED_STATUSES,
    SubscriptionsBase,
    day_label,
    plan_of,
    unit_label,
)
from stripe_emulator.subscriptions.periods import next_boundary


class SubscriptionItems(SubscriptionsBase):
    # -- list / retrieve -----------------------------------------------------------------------------------

    def subscription_list(
        self,
        *,
        customer: str | None = None,
        price: str | None = None,
        status: str | None = None,
        collection_method: str | None = None,
    ) -> list[StripeObject]:
        def keep(sub: StripeObject) -> bool:
            if status is None and sub["status"] in ENDED_STATUSES:
                return False  # Stripe lists ended subscriptions only with status=canceled/ended/all
            if status == "ended" and sub["status"] not in ENDED_STATUSES:
                return False
            if status not in (None, "all", "ended") and sub["status"] != status:
                return False
            if price is not None and not any(i["price"]["id"] == price for i in sub["items"]["data"]):
                return False
            return (customer is None or sub["customer"] == customer) and (
                collection_method is None or sub["collection_method"] == collection_method
            )

        return self.store.newest_first("subscription", keep)

    def item_list(self, subscription_id: str) -> list[StripeObject]:
        self.subscription_require(subscription_id, param="subscription")
        return self.store.newest_first(
            "subscription_item", lambda i: i.get("subscription") == subscription_id
        )

    # -- items ---------------------------------------------------------------------------------------------

    @staticmethod
    def _check_metered_quantity(price: StripeObject, spec: dict[str, Any], param: str | None = None) -> None:
        """Stripe refuses a quantity for a metered price (usage, not a count of units, is billed) rather than
        dropping it."""
        if is_metered(price) and spec.get("quantity") is not None:
            raise InvalidRequestError(
                "You cannot set the quantity for metered plans.",
                param=param or f"{spec['_param']}[quantity]",
            )

    def _new_item(
        self,
        sub: StripeObject,
        price: StripeObject,
        quantity: int | None,
        metadata: dict[str, str] | None,
        period_start: int,
        period_end: int,
    ) -> StripeObject:
        item = self._item_object(sub, price, quantity, metadata, period_start, period_end)
        self.store.insert(item)
        return item

    def _item_object(
        self,
        sub: StripeObject,
        price: StripeObject,
        quantity: int | None,
        metadata: dict[str, str] | None,
        period_start: int,
        period_end: int,
    ) -> StripeObject:
        """A subscription item as Stripe renders it, not yet stored (a pending update shows items to come)."""
        return {
            "id": ids.id_for("subscription_item"),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": self.now(),
            "current_period_end": period_end,
            "current_period_start": period_start,
            "discounts": [],
            "metadata": metadata or {},
            "plan": plan_of(price),
            "price": clone(price),
            "quantity": None if is_metered(price) else (1 if quantity is None else quantity),
            "subscription": sub["id"],
            "tax_rates": [],
        }

    def _swap_items(
        self, sub: StripeObject, plan: list[dict[str, Any]], start: int, end: int, at: int | None = None
    ) -> None:
        """The subscription's items become `plan`'s, at `at` (now when not given). Like Stripe (`billing_mode`
        classic, "Update prices mid-cycle" in its usage-based billing guide), a metered price that takes effect
        within the period bills only the usage from then on (`_usage_from`): the usage before it, under the price it
        replaced or on an item removed, is billed by nobody. One that takes effect at the period's end (a
        schedule's next phase) leaves the ending period's usage billed in arrears at the price it ran under
        (`_arrears`, read by the renewal)."""
        at = self.now() if at is None else at
        ending: list[StripeObject] = []
        keep = {e["item"]["id"] for e in plan if e["item"] is not None}
        for item in self.items_of(sub):
            if item["id"] not in keep:
                if is_metered(item["price"]):
                    ending.append(dict(item))
                self.store.replace(
                    {
                        "id": item["id"],
                        "object": "subscription_item",
                        "deleted": True,
                        "_subscription": sub["id"],
                    }
                )
        for entry in plan:
            item = entry["item"]
            if item is None:
                item = self._new_item(sub, entry["price"], entry["quantity"], entry["metadata"], start, end)
                entry["item"] = item
                if is_metered(item["price"]):
                    item["_usage_from"] = at
                continue
            if item["price"]["id"] != entry["price"]["id"]:
                if is_metered(item["price"]):
                    ending.append(dict(item))
                if is_metered(entry["price"]):
                    item["_usage_from"] = at
            item["price"] = clone(entry["price"])
            item["plan"] = plan_of(entry["price"])
            item["quantity"] = entry["quantity"]
            if entry["metadata"] is not None:
                item["metadata"] = entry["metadata"]
        if at >= end:
            sub.setdefault("_arrears", []).extend(ending)
        self._sync_items(sub)

    def _item_line(
        self, sub: StripeObject, item: StripeObject, start: int, end: int, *, trial: bool = False
    ) -> dict[str, Any] | None:
        """The line billing a licensed item for [start, end) in advance (metered items bill in arrears)."""
        price = item["price"]
        if is_metered(price):
            return None
        quantity = int(item["quantity"] or 0)
        name = self._product_name(price)
        recurring = price["recurring"]
        per = (
            recurring["interval"]
            if recurring["interval_count"] == 1
            else f"every {recurring['interval_count']} {recurring['interval']}s"
        )
        if trial:
            description, amount = f"Trial period for {name}", 0
        else:
            description = f"{quantity} × {name} ({unit_label(price)} / {per})"
            amount = self.line_amount(price, quantity)
        return {
            "amount": amount,
            "description": description,
            "price": price,
            "quantity": quantity,
            "period_start": start,
            "period_end": end,
            "subscription_item": item["id"],
        }

    def _usage_line(
        self, sub: StripeObject, item: StripeObject, start: int, end: int
    ) -> dict[str, Any] | None:
        price = item["price"]
        meter_id = price["recurring"].get("meter")
        if not meter_id:
            return None
        from stripe_emulator.meters.models import MetersBackend

        start = max(start, item.get("_usage_from", start))  # the usage since its price took effect
        if start >= end:
            return None  # its price took effect as the period ended: nothing of that period is its to bill
        usage = self.account.backend(MetersBackend).meter_usage(meter_id, sub["customer"], start, end)
        quantity = int(usage.to_integral_value(rounding=ROUND_HALF_UP))
        name = self._product_name(price)
        return {
            "amount": self.line_amount(price, usage),
            "description": f"{quantity} × {name} ({unit_label(price)} / unit, usage {day_label(start)} – {day_label(end)})",
            "price": price,
            "quantity": quantity,
            "period_start": start,
            "period_end": end,
            "subscription_item": item["id"],
        }

    def _cycle_lines(self, sub: StripeObject, *, at: int, new_end: int) -> list[dict[str, Any]]:
        """The lines of a period boundary at `at`: licensed items for the period to `new_end` in advance, the
        metered usage of the period ending in arrears (a renewal, and a preview of the next one), metered items
        replaced at the period's end included (`_arrears`)."""
        start, end = self._period(sub)
        lines: list[dict[str, Any]] = []
        for item in [*sub.get("_arrears", []), *self.items_of(sub)]:
            line = (
                self._usage_line(sub, item, start, end)
                if is_metered(item["price"])
                else self._item_line(sub, item, at, new_end)
            )
            if line is not None:
                lines.append(line)
        return lines

    def _cycle_invoice(
        self, sub: StripeObject, lines: list[dict[str, Any]], *, period: tuple[int, int], created: int
    ) -> StripeObject:
        """The draft `subscription_cycle` invoice of those lines and the subscription's pending invoice items,
        for the period that ends (`period`, read before the items move on)."""
        return self.invoices.invoice_create(
            customer_id=sub["customer"],
            currency=sub["currency"],
            billing_reason="subscription_cycle",
            subscription=sub,
            lines=lines,
            pending_items=self.invoices.pending_items(sub["id"]),
            period_start=period[0],
            period_end=period[1],
            created=created,
            collection_method=sub["collection_method"],
            days_until_due=sub["days_until_due"],
        )

    # -- periods -------------------------------------------------------------------------------------------

    def _start_paid_period(
        self,
        sub: StripeObject,
        at: int,
        billing_reason: str,
        payment_behavior: str,
        off_session: bool,
        *,
        resume: bool = False,
        collect: bool = True,
    ) -> StripeObject:
        """End a trial (or a pause) at ``at``: a new period from ``at`` billed in advance, collected now
        (or by the caller, when ``collect`` is false)."""
        interval, count = self._interval(sub)
        if sub["status"] == "trialing" or not resume:
            sub["billing_cycle_anchor"] = at
        if sub["trial_end"] is not None and sub["trial_end"] > at:
            sub["trial_end"] = at
        end = next_boundary(sub["billing_cycle_anchor"], interval, count, at)
        for item in self.items_of(sub):
            item["current_period_start"] = at
            item["current_period_end"] = end
        if sub["cancel_at_period_end"]:
            sub["cancel_at"] = end
        self._sync_items(sub)
        lines = [
            line for item in self.items_of(sub) for line in [self._item_line(sub, item, at, end)] if line
        ]
        invoice = self.invoices.invoice_create(
            customer_id=sub["customer"],
            currency=sub["currency"],
            billing_reason=billing_reason,
            subscription=sub,
            lines=lines,
            pending_items=self.invoices.pending_items(sub["id"]),
            period_start=at,
            period_end=at,
            created=at,
            collection_method=sub["collection_method"],
            days_until_due=sub["days_until_due"],
        )
        sub["latest_invoice"] = invoice["id"]
        sub["status"] = "active"
        invoice["_attempt_at"] = at
        if collect:
            self._collect(sub, invoice, payment_behavior, off_session)
        return invoice

    def _final_invoice(self, sub: StripeObject, now: int) -> None:
        """The invoice of a subscription as it ends at ``now`` (canceled with ``invoice_now``, or at its period's
        end): the metered usage of [period start, now), billed in arrears, and the pending invoice items; none
        when there is neither. Finalized and, charged automatically, attempted at once."""
        start, _ = self._period(sub)
        lines = [
            line
            for item in self.items_of(sub)
            if is_metered(item["price"])
            for line in [self._usage_line(sub, item, start, now)]
            if line is not None
        ]
        pending = self.invoices.pending_items(sub["id"])
        if not lines and not pending:
            return
        invoice = self.invoices.invoice_create(
            customer_id=sub["customer"],
            currency=sub["currency"],
            billing_reason="subscription_cycle",
            subscription=sub,
            lines=lines,
            pending_items=pending,
            period_start=start,
            period_end=now,
            created=now,
            collection_method=sub["collection_method"],
        )
        sub["latest_invoice"] = invoice["id"]
        self.invoices.invoice_finalize(invoice["id"])
        if invoice["status"] == "open" and sub["collection_method"] == "charge_automatically":
            self.invoices.invoice_attempt(invoice["id"])
