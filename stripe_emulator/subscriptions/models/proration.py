"""Changing a subscription's items: validating the requested items into a plan, Stripe's proration lines
(credit for unused time, charge for remaining time), prorations as pending invoice items or invoiced at once,
and pending updates (``payment_behavior=pending_if_incomplete``) applied when paid or dropped when they
expire."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.store import StripeObject
from stripe_emulator.subscriptions.models.base import PENDING_UPDATE_HOURS, day_label, is_metered, line_amount
from stripe_emulator.subscriptions.models.items import SubscriptionItems
from stripe_emulator.subscriptions.periods import prorate


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
            quantity = spec.get("quantity")
            if quantity is None:
                quantity = item["quantity"] if price["id"] == item["price"]["id"] else 1
            plan.append(
                {"item": item, "price": price, "quantity": quantity, "metadata": spec.get("metadata")}
            )
        for spec in added:
            price = self._price(spec["price"], f"{spec['_param']}[price]")
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
                entry["quantity"] = None
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
        if (new["recurring"]["interval"], new["recurring"]["interval_count"]) != (
            old["recurring"]["interval"],
            old["recurring"]["interval_count"],
        ):
            raise InvalidRequestError(
                "Changing the billing interval of a subscription is not emulated; cancel and create a new "
                "subscription instead.",
                param=param,
            )
        return plan

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
            sub["_pending_plan"] = [
                {
                    "item": e["item"]["id"] if e["item"] else None,
                    "price": e["price"]["id"],
                    "quantity": e["quantity"],
                    "metadata": e["metadata"],
                }
                for e in plan
            ]
            return specs
        self._swap_items(sub, plan, start, end)
        if proration_behavior == "create_prorations":
            for spec in specs:
                self._pending_item(sub, spec)
            return []
        return specs if proration_behavior == "always_invoice" else []

    # -- prorations ----------------------------------------------------------------------------------------

    def _prorations(
        self, sub: StripeObject, plan: list[dict[str, Any]], start: int, end: int, at: int
    ) -> list[dict[str, Any]]:
        """Stripe's proration lines: credit for unused time on each changed or removed item, charge for the
        remaining time on each changed or added item, both prorated by the second over the period."""
        remaining, length = max(0, end - at), end - start
        old = {i["id"]: i for i in self.items_of(sub)}
        kept = {e["item"]["id"]: e for e in plan if e["item"] is not None}
        specs: list[dict[str, Any]] = []
        label = day_label(at)

        def spec(price: StripeObject, quantity: int, item_id: str | None, credit: bool) -> dict[str, Any]:
            full = line_amount(price, quantity)
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
        for entry in plan:
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
        sub["latest_invoice"] = invoice["id"]
        pending = "_pending_plan" in sub
        if pending:
            sub["_pending_invoice"] = invoice["id"]
            sub["pending_update"] = {
                "billing_cycle_anchor": None,
                "expires_at": now + PENDING_UPDATE_HOURS * 3600,
                "subscription_items": [
                    {"id": e["item"], "price": e["price"], "quantity": e["quantity"]}
                    for e in sub["_pending_plan"]
                ],
                "trial_end": None,
                "trial_from_plan": None,
            }
        self._collect(sub, invoice, payment_behavior, off_session)

    # -- pending updates -----------------------------------------------------------------------------------

    def _apply_pending(self, sub: StripeObject) -> None:
        entries = sub.pop("_pending_plan")
        plan = []
        for e in entries:
            plan.append(
                {
                    "item": self.store.get("subscription_item", e["item"]) if e["item"] else None,
                    "price": self.store.require("price", e["price"], param=None),
                    "quantity": e["quantity"],
                    "metadata": e["metadata"],
                }
            )
        start, end = self._period(sub)
        self._swap_items(sub, plan, start, end)
        sub["pending_update"] = None
        sub.pop("_pending_invoice", None)

    def _drop_pending(self, sub: StripeObject) -> None:
        sub.pop("_pending_plan", None)
        invoice_id = sub.pop("_pending_invoice", None)
        sub["pending_update"] = None
        if invoice_id:
            invoice = self.store.get("invoice", invoice_id)
            if invoice is not None and invoice["status"] == "open":
                self.invoices.invoice_void(invoice_id)
