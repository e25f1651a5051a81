"""Changing a subscription's items: validating the requested items into a plan, Stripe's proration lines
(credit for unused time, charge for remaining time), prorations as pending invoice items or invoiced at once,
and pending updates (``payment_behavior=pending_if_incomplete``) applied when paid or dropped when they
expire."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.products.models import is_metered
from stripe_emulator.subscriptions.models.base import (
    PENDING_UPDATE_HOURS,
    day_label,
    plan_of,
)
from stripe_emulator.subscriptions.models.items import SubscriptionItems
from stripe_emulator.subscriptions.periods import add_interval, prorate


class SubscriptionProrations(SubscriptionItems):
    # -- plan ----------------------------------------------------------------------------------------------

    def _plan_items(self, sub: StripeObject, specs: list[dict[str, Any]], param: str) -> list[dict[str, Any]]:
        """Validate item specs into a plan: the final list of ``{"item": existing|None, "price", "quantity",
        "metadata"}`` (deleted items left out)."""
        current = {i["id"]: i for i in self.items_of(sub)}
        touched: dict[str, dict[str, Any]] = {}
        added: list[dict[str, Any]] = []
        for n, spec in enumerate(specs):
            p = f"{param}[{n}]"
            item_id = spec.get("id")
            if item_id is not None:
                if item_id not in current:
                    raise InvalidRequestError(
                        f"The subscription item {item_id} does not belong to this subscription.",
                        param=f"{p}[id]",
                    )
                touched[item_id] = {**spec, "_param": p}
            else:
                if spec.get("deleted"):
                    raise InvalidRequestError("Missing required param: id.", param=f"{p}[id]")
                if spec.get("price") is None:
                    raise InvalidRequestError(
                        "Missing required param: price.", code="parameter_missing", param=f"{p}[price]"
                    )
                added.append({**spec, "_param": p})
        plan: list[dict[str, Any]] = []
        for item in current.values():
            change = touched.get(item["id"])
            if change is None:
                plan.append(
                    {"item": item, "price": item["price"], "quantity": item["quantity"], "metadata": None}
                )
                continue
            spec = change
            if spec.get("deleted"):
                continue
            price = (
                self._price(spec["price"], f"{spec['_param']}[price]") if spec.get("price") else item["price"]
            )
            self._check_metered_quantity(price, spec)
            quantity = spec.get("quantity")
            if quantity is None:
                # Stripe: "When changing a subscription item's price, `quantity` is set to 1 unless a
                # `quantity` parameter is provided" (a caller that means to keep it sends it).
                quantity = item["quantity"] if price["id"] == item["price"]["id"] else 1
            plan.append(
                {"item": item, "price": price, "quantity": quantity, "metadata": spec.get("metadata")}
            )
        for spec in added:
            price = self._price(spec["price"], f"{spec['_param']}[price]")
            self._check_metered_quantity(price, spec)
            quantity = spec.get("quantity")
            plan.append(
                {
                    "item": None,
                    "price": price,
                    "quantity": 1 if quantity is None else quantity,
                    "metadata": spec.get("metadata"),
                }
            )
        if not plan:
            raise InvalidRequestError(
                "A subscription must have at least one active plan. To cancel a subscription, please use the "
                "cancel API endpoint on /v1/subscriptions.",
                param=param,
            )
        for entry in plan:
            if is_metered(entry["price"]):
                entry["quantity"] = None  # an item moving to a metered price drops its quantity
        prices = [(e["price"], param) for e in plan]
        ids_ = [e["price"]["id"] for e in plan]
        if len(ids_) != len(set(ids_)):
            raise InvalidRequestError(
                "Cannot add multiple subscription items with the same price.", param=param
            )
        self._check_compatible(prices)
        old = self.items_of(sub)[0]["price"]
        new = plan[0]["price"]
        if new["currency"] != old["currency"]:
            raise InvalidRequestError("The currency of a subscription cannot be changed.", param=param)
        # A new interval for every item is allowed (the period restarts, see `_interval_invoice`); a mix of
        # intervals among the items was refused by `_check_compatible` above.
        return plan

    def _changes_interval(self, sub: StripeObject, plan: list[dict[str, Any]]) -> bool:
        """Whether ``plan`` bills at another interval (or interval count) than the subscription does now."""
        recurring = plan[0]["price"]["recurring"]
        return (recurring["interval"], int(recurring["interval_count"])) != self._interval(sub)

    def _pending_entries(
        self, sub: StripeObject, plan: list[dict[str, Any]], start: int, end: int
    ) -> list[dict[str, Any]]:
        return [
            {
                "item": e["item"]["id"] if e["item"] else None,
                "price": e["price"]["id"],
                "quantity": e["quantity"],
                "metadata": e["metadata"],
                # An item the update adds is shown in `pending_update` under the id it will get.
                "new_item": None
                if e["item"]
                else self._item_object(sub, e["price"], e["quantity"], e["metadata"], start, end),
            }
            for e in plan
        ]

    def _apply_plan(
        self,
        sub: StripeObject,
        plan: list[dict[str, Any]],
        proration_behavior: str,
        proration_date: int | None,
        payment_behavior: str,
        now: int,
    ) -> list[dict[str, Any]]:
        """Swap items for ``plan``; returns the proration specs still to invoice now (``always_invoice``).
        With ``create_prorations`` they become pending invoice items for the next invoice."""
        start, end = self._period(sub)
        at = proration_date if proration_date is not None else now
        specs: list[dict[str, Any]] = []
        if proration_behavior != "none" and sub["status"] != "trialing":
            specs = self._prorations(sub, plan, start, end, at)
        deferred = proration_behavior == "always_invoice" and payment_behavior == "pending_if_incomplete"
        if deferred and specs:
            sub["_pending_plan"] = self._pending_entries(sub, plan, start, end)
            return specs
        self._swap_items(sub, plan, start, end, at=now)
        if proration_behavior == "create_prorations":
            for spec in specs:
                self._pending_item(sub, spec)
            return []
        return specs if proration_behavior == "always_invoice" else []

    def _interval_invoice(
        self,
        sub: StripeObject,
        plan: list[dict[str, Any]],
        proration_behavior: str,
        proration_date: int | None,
        payment_behavior: str,
        now: int,
    ) -> StripeObject:
        """A change to another billing interval, as Stripe makes it: the billing cycle anchor resets to now,
        every item's period becomes [now, now + the new interval), and a ``subscription_update`` invoice is
        drafted at once with the new period in full, the unused time on the old prices as proration credits
        (none with ``proration_behavior=none``) and the metered usage of the cut-short period in arrears —
        whatever the proration behavior. With ``pending_if_incomplete`` nothing moves until it is paid (the
        plan and the new period wait in ``pending_update``). Returns the draft (the caller collects it)."""
        start, end = self._period(sub)
        at = proration_date if proration_date is not None else now
        recurring = plan[0]["price"]["recurring"]
        new_end = add_interval(now, recurring["interval"], int(recurring["interval_count"]))
        credits = (
            [] if proration_behavior == "none" else self._prorations(sub, plan, start, end, at, charges=False)
        )
        usage = [
            line
            for item in self.items_of(sub)
            if is_metered(item["price"])
            for line in [self._usage_line(sub, clone(item), start, now)]
            if line is not None
        ]
        if payment_behavior == "pending_if_incomplete":
            sub["_pending_plan"] = self._pending_entries(sub, plan, now, new_end)
            sub["_pending_period"] = [now, new_end]
            billed = [
                {"id": e["item"] or e["new_item"]["id"], "price": price, "quantity": e["quantity"]}
                for e, price in zip(sub["_pending_plan"], (p["price"] for p in plan), strict=True)
            ]
        else:
            self._swap_items(sub, plan, now, new_end)
            self._restart_period(sub, now, new_end)
            billed = [{"id": e["item"]["id"], "price": e["price"], "quantity": e["quantity"]} for e in plan]
        charges = [
            line for item in billed for line in [self._item_line(sub, item, now, new_end)] if line is not None
        ]
        for spec in credits:
            self._pending_item(sub, spec)
        return self.invoices.invoice_create(
            customer_id=sub["customer"],
            currency=sub["currency"],
            billing_reason="subscription_update",
            subscription=sub,
            lines=usage + charges,
            pending_items=self.invoices.pending_items(sub["id"]),
            period_start=now,
            period_end=now,
            collection_method=sub["collection_method"],
            days_until_due=sub["days_until_due"],
        )

    def _restart_period(self, sub: StripeObject, start: int, end: int) -> None:
        """The billing cycle anchor reset to ``start``: every item's period is [start, end)."""
        sub["billing_cycle_anchor"] = start
        for item in self.items_of(sub):
            item["current_period_start"] = start
            item["current_period_end"] = end
        if sub["cancel_at_period_end"]:
            sub["cancel_at"] = end
        self._sync_items(sub)

    # -- prorations ----------------------------------------------------------------------------------------

    def _prorations(
        self,
        sub: StripeObject,
        plan: list[dict[str, Any]],
        start: int,
        end: int,
        at: int,
        *,
        charges: bool = True,
    ) -> list[dict[str, Any]]:
        """Stripe's proration lines: credit for unused time on each changed or removed item, charge for the
        remaining time on each changed or added item (unless ``charges`` is false: an interval change bills
        the new period in full instead), both prorated by the second over the period."""
        remaining, length = max(0, end - at), end - start
        old = {i["id"]: i for i in self.items_of(sub)}
        kept = {e["item"]["id"]: e for e in plan if e["item"] is not None}
        specs: list[dict[str, Any]] = []
        label = day_label(at)

        def spec(price: StripeObject, quantity: int, item_id: str | None, credit: bool) -> dict[str, Any]:
            full = self.line_amount(price, quantity)
            name = self._product_name(price)
            amount = prorate(-full if credit else full, remaining, length)
            prefix = "Unused time on" if credit else "Remaining time on"
            return {
                "amount": amount,
                "description": f"{prefix} {quantity} × {name} after {label}",
                "price": price,
                "quantity": quantity,
                "period_start": at,
                "period_end": end,
                "subscription_item": item_id,
            }

        for item_id, item in old.items():
            if is_metered(item["price"]):
                continue
            entry = kept.get(item_id)
            if (
                entry is not None
                and entry["price"]["id"] == item["price"]["id"]
                and entry["quantity"] == item["quantity"]
            ):
                continue
            specs.append(spec(item["price"], int(item["quantity"] or 0), item_id, credit=True))
        for entry in plan if charges else []:
            if is_metered(entry["price"]):
                continue
            item = entry["item"]
            if (
                item is not None
                and entry["price"]["id"] == item["price"]["id"]
                and entry["quantity"] == item["quantity"]
            ):
                continue
            specs.append(
                spec(entry["price"], int(entry["quantity"] or 0), item["id"] if item else None, credit=False)
            )
        return [s for s in specs if s["amount"] != 0]

    def _pending_item(self, sub: StripeObject, spec: dict[str, Any]) -> StripeObject:
        return self.invoices.invoiceitem_create(
            customer_id=sub["customer"],
            subscription=sub,
            subscription_item=spec["subscription_item"],
            price=spec["price"],
            amount=spec["amount"],
            quantity=spec["quantity"],
            description=spec["description"],
            period_start=spec["period_start"],
            period_end=spec["period_end"],
            proration=True,
        )

    def _invoice_prorations(
        self,
        sub: StripeObject,
        specs: list[dict[str, Any]],
        plan: list[dict[str, Any]] | None,
        payment_behavior: str,
        off_session: bool,
        now: int,
    ) -> None:
        """``always_invoice``: the prorations (and other pending items) invoiced and collected now."""
        invoice = self._proration_invoice(sub, specs, plan, now)
        self._collect_update(sub, invoice, payment_behavior, off_session, now)

    def _collect_update(
        self, sub: StripeObject, invoice: StripeObject, payment_behavior: str, off_session: bool, now: int
    ) -> None:
        """The invoice of an update collected now; with a pending plan it is the pending update's invoice."""
        sub["latest_invoice"] = invoice["id"]
        if "_pending_plan" in sub:
            period = sub.get("_pending_period")
            sub["_pending_invoice"] = invoice["id"]
            sub["pending_update"] = {
                # The anchor the update sets once paid (an interval change restarts the period).
                "billing_cycle_anchor": period[0] if period else None,
                "expires_at": now + PENDING_UPDATE_HOURS * 3600,
                "subscription_items": [self._pending_item_object(e) for e in sub["_pending_plan"]],
                "trial_end": None,
                "trial_from_plan": None,
            }
            if period:
                for item in sub["pending_update"]["subscription_items"]:
                    item["current_period_start"], item["current_period_end"] = period
        self._collect(sub, invoice, payment_behavior, off_session)

    def _proration_invoice(
        self, sub: StripeObject, specs: list[dict[str, Any]], plan: list[dict[str, Any]] | None, now: int
    ) -> StripeObject:
        """The draft ``subscription_update`` invoice of an ``always_invoice`` change (also what
        ``invoices/create_preview`` shows for one)."""
        for spec in specs:
            if spec["subscription_item"] is None and plan is not None:
                spec["subscription_item"] = next(
                    (
                        e["item"]["id"]
                        for e in plan
                        if isinstance(e["item"], dict) and e["price"]["id"] == spec["price"]["id"]
                    ),
                    None,
                )
            self._pending_item(sub, spec)
        invoice = self.invoices.invoice_create(
            customer_id=sub["customer"],
            currency=sub["currency"],
            billing_reason="subscription_update",
            subscription=sub,
            pending_items=self.invoices.pending_items(sub["id"]),
            period_start=now,
            period_end=now,
            collection_method=sub["collection_method"],
            days_until_due=sub["days_until_due"],
        )
        return invoice

    # -- pending updates -----------------------------------------------------------------------------------

    def _pending_item_object(self, entry: dict[str, Any]) -> StripeObject:
        """A full subscription item as it will be once the pending update applies (Stripe renders these in
        ``pending_update.subscription_items``, not partial dicts)."""
        if entry["new_item"] is not None:
            return clone(entry["new_item"])
        item = clone(self.store.require("subscription_item", entry["item"], param=None))
        price = self.store.require("price", entry["price"], param=None)
        item["price"] = clone(price)
        item["plan"] = plan_of(price)
        item["quantity"] = entry["quantity"]
        if entry["metadata"] is not None:
            item["metadata"] = entry["metadata"]
        return item

    def _apply_pending(self, sub: StripeObject) -> None:
        entries = sub.pop("_pending_plan")
        plan = []
        for e in entries:
            if e["new_item"] is not None:
                # Added once paid: created then, and a metered one bills the usage from then on.
                added = self.store.insert({**clone(e["new_item"]), "created": self.now()})
                if is_metered(added["price"]):
                    added["_usage_from"] = added["created"]
            item_id = e["item"] or (e["new_item"] or {}).get("id")
            plan.append(
                {
                    "item": self.store.get("subscription_item", item_id) if item_id else None,
                    "price": self.store.require("price", e["price"], param=None),
                    "quantity": e["quantity"],
                    "metadata": e["metadata"],
                }
            )
        period = sub.pop("_pending_period", None)
        start, end = period or self._period(sub)
        self._swap_items(sub, plan, start, end)
        if period:
            self._restart_period(sub, start, end)
        sub["pending_update"] = None
        sub.pop("_pending_invoice", None)

    def _drop_pending(self, sub: StripeObject) -> None:
        sub.pop("_pending_plan", None)
        sub.pop("_pending_period", None)
        invoice_id = sub.pop("_pending_invoice", None)
        sub["pending_update"] = None
        if invoice_id:
            invoice = self.store.get("invoice", invoice_id)
            if invoice is not None and invoice["status"] == "open":
                self.invoices.invoice_void(invoice_id)
