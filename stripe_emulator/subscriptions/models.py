"""Subscriptions and subscription items: creation, updates with prorations, pending updates, cancellation,
pause/resume, and everything time does to them (renewals, trial ends, dunning, expiry), driven by the
advance hook :func:`run_billing`.

Statuses follow Stripe: ``incomplete`` (first payment failed or needs action) → ``active`` when paid, or
``incomplete_expired`` after 23 h; ``trialing`` → ``active`` at trial end (or ``paused``/``canceled`` per
``trial_settings`` when there is no payment method); a failed renewal → ``past_due`` → Smart Retries →
``canceled`` / ``unpaid`` / left ``past_due`` (per account setting, see :mod:`.settings`).

Billing periods live on the items (``current_period_start``/``current_period_end``); all items of a
subscription share one interval and one period. Events are emitted once per operation: a whole create,
update or renewal changes the subscription under :meth:`SubscriptionsBackend._operation`, and one
``customer.subscription.created|updated|deleted`` (plus ``paused``/``resumed``) carries the end state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.account import Account, BaseBackend
from stripe_emulator.core.context import current_request
from stripe_emulator.core.errors import CardError, InvalidRequestError, ParameterInvalid
from stripe_emulator.core.store import Store, StripeObject, clone
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.products.models import ProductsBackend
from stripe_emulator.subscriptions.invoices import InvoicesBackend
from stripe_emulator.subscriptions.invoices.base import payments_backend
from stripe_emulator.subscriptions.invoices.collection import payment_error
from stripe_emulator.subscriptions.periods import DAY, next_boundary, prorate
from stripe_emulator.subscriptions.settings import billing_settings

PAYMENT_BEHAVIORS = ("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete")
PRORATION_BEHAVIORS = ("always_invoice", "create_prorations", "none")
LIVE_STATUSES = ("active", "past_due", "trialing", "unpaid", "paused", "incomplete")
ENDED_STATUSES = ("canceled", "incomplete_expired")
PENDING_UPDATE_HOURS = 23
TRIAL_WILL_END_NOTICE = 3 * DAY


def money(amount: int | Decimal, currency: str) -> str:
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency, "")
    value = f"{Decimal(amount) / 100:,.2f}"
    return f"{symbol}{value}" if symbol else f"{value} {currency.upper()}"


def day_label(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%d %b %Y")


def line_amount(price: StripeObject, quantity: int | Decimal) -> int:
    unit = Decimal(str(price["unit_amount_decimal"]))
    return int((unit * Decimal(quantity)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def plan_of(price: StripeObject) -> StripeObject:
    recurring = price["recurring"] or {}
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": False,
        "metadata": dict(price["metadata"]),
        "meter": recurring.get("meter"),
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": price["tiers_mode"],
        "transform_usage": price["transform_quantity"],
        "trial_period_days": recurring.get("trial_period_days"),
        "usage_type": recurring.get("usage_type", "licensed"),
    }


def is_metered(price: StripeObject) -> bool:
    return bool(price["recurring"] and price["recurring"].get("usage_type") == "metered")


class SubscriptionsBackend(BaseBackend):
    @property
    def invoices(self) -> InvoicesBackend:
        return self.account.backend(InvoicesBackend)

    # -- helpers -------------------------------------------------------------------------------------------

    def subscription_require(self, sub_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("subscription", sub_id, param=param)

    def item_require(self, item_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("subscription_item", item_id, param=param)

    def items_of(self, sub: StripeObject) -> list[StripeObject]:
        return [
            i
            for i in self.store.iter_type("subscription_item")
            if i.get("subscription") == sub["id"] and not i.get("deleted")
        ]

    def _sync_items(self, sub: StripeObject) -> None:
        """Refresh the embedded ``items`` list (and each item's embedded price/plan) from the store."""
        data = []
        for item in self.items_of(sub):
            price = self.store.get("price", item["price"]["id"])
            if price is not None:
                item["price"] = clone(price)
                item["plan"] = plan_of(price)
            data.append(clone(item))
        sub["items"] = {
            "object": "list",
            "data": data,
            "has_more": False,
            "total_count": len(data),
            "url": f"/v1/subscription_items?subscription={sub['id']}",
        }

    def _period(self, sub: StripeObject) -> tuple[int, int]:
        items = self.items_of(sub)
        return min(i["current_period_start"] for i in items), min(i["current_period_end"] for i in items)

    def _interval(self, sub: StripeObject) -> tuple[str, int]:
        recurring = self.items_of(sub)[0]["price"]["recurring"]
        return recurring["interval"], int(recurring["interval_count"])

    def _price(self, price_id: str, param: str) -> StripeObject:
        price = self.account.backend(ProductsBackend).price_require(price_id, param=param)
        if price["type"] != "recurring":
            raise InvalidRequestError(
                "The price specified is set to `type=one_time` but this field only accepts prices with "
                "`type=recurring`.",
                param=param,
            )
        if not price["active"]:
            raise InvalidRequestError(
                "The price specified is inactive. This field only accepts active prices.", param=param
            )
        return price

    def _product_name(self, price: StripeObject) -> str:
        product = self.store.get("product", price["product"])
        return str(product["name"]) if product else str(price["product"])

    def _check_compatible(self, prices: list[tuple[StripeObject, str]]) -> None:
        first = prices[0][0]
        for price, param in prices[1:]:
            if price["currency"] != first["currency"]:
                raise InvalidRequestError(
                    "Currency and interval fields must match across all plans on this subscription. Found "
                    "mismatch in currency field.",
                    param=param,
                )
            a, b = price["recurring"], first["recurring"]
            if (a["interval"], a["interval_count"]) != (b["interval"], b["interval_count"]):
                raise InvalidRequestError(
                    "Currency and interval fields must match across all plans on this subscription. Found "
                    "mismatch in interval field.",
                    param=param,
                )

    def _payment_method(self, pm_id: str | None, customer_id: str, param: str) -> str | None:
        """Validate a payment method for ``customer`` (``pm_card_…`` test tokens are materialized and
        attached, as Stripe does)."""
        if pm_id is None:
            return None
        payments = payments_backend(self.account)
        pm = payments.payment_method_resolve(pm_id, param=param)
        if pm.get("customer") is None:
            pm = payments.payment_method_attach(pm["id"], customer_id)
        elif pm["customer"] != customer_id:
            raise InvalidRequestError(
                f"The customer does not have a payment method with the ID {pm_id}. The payment method must "
                "be attached to the customer.",
                param=param,
            )
        return str(pm["id"])

    def _default_pm(self, sub: StripeObject) -> str | None:
        if sub["default_payment_method"]:
            return str(sub["default_payment_method"])
        customer = self.store.get("customer", sub["customer"])
        if customer is None or customer.get("deleted"):
            return None
        pm = customer["invoice_settings"].get("default_payment_method")
        return str(pm) if pm else None

    # -- events --------------------------------------------------------------------------------------------

    @contextmanager
    def _operation(self, sub: StripeObject, *, created: bool = False) -> Iterator[None]:
        """Group every change to ``sub`` made inside into one event (nested operations defer to the
        outermost): ``created``, ``deleted`` when it ended, otherwise ``updated`` with
        ``previous_attributes`` (plus ``paused``/``resumed`` on those transitions)."""
        if sub.get("_quiet"):
            yield
            return
        before = clone(sub)
        sub["_quiet"] = True
        try:
            yield
        finally:
            sub.pop("_quiet", None)
        self._sync_items(sub)
        if created:
            self.emit("customer.subscription.created", sub)
            return
        if sub["status"] == "canceled" and before["status"] != "canceled":
            self.emit("customer.subscription.deleted", sub)
            return
        self.emit_update("customer.subscription.updated", sub, before)
        if sub["status"] == "paused" and before["status"] != "paused":
            self.emit("customer.subscription.paused", sub)
        elif before["status"] == "paused" and sub["status"] != "paused":
            self.emit("customer.subscription.resumed", sub)

    @contextmanager
    def _all_or_nothing(self) -> Iterator[None]:
        """Undo every change (objects, events, queued deliveries) if the block raises — for
        ``error_if_incomplete``, where a failed payment means the request never happened."""
        snapshot = json.loads(json.dumps(self.store.dump()))
        request = current_request()
        outbox = len(request.outbox) if request is not None else 0
        try:
            yield
        except CardError:
            self.account.store = Store.load(snapshot)
            if request is not None:
                del request.outbox[outbox:]
            raise

    # -- create --------------------------------------------------------------------------------------------

    def subscription_create_internal(
        self,
        *,
        customer: str,
        items: list[dict[str, Any]],
        default_payment_method: str | None,
        trial_period_days: int | None = None,
        metadata: dict[str, str] | None = None,
        payment_behavior: str = "allow_incomplete",
        off_session: bool = True,
        trial_end: int | str | None = None,
        trial_from_plan: bool = False,
        trial_settings: dict[str, Any] | None = None,
        cancel_at_period_end: bool = False,
        collection_method: str = "charge_automatically",
        days_until_due: int | None = None,
        description: str | None = None,
    ) -> StripeObject:
        """Create a subscription and its first invoice (finalized; paid with the default payment method, or
        $0 during a trial) and return the subscription with ``latest_invoice`` set. ``items`` is
        ``[{"price": id, "quantity": n, "metadata": {...}}]``. Used by ``POST /v1/subscriptions`` and by
        Checkout (subscription mode)."""
        cust = self.account.backend(CustomersBackend).customer_require(customer, param="customer")
        if not items:
            raise InvalidRequestError(
                "Missing required param: items.", code="parameter_missing", param="items"
            )
        if payment_behavior not in PAYMENT_BEHAVIORS:
            raise ParameterInvalid(f"Invalid payment_behavior: {payment_behavior}", param="payment_behavior")
        prices: list[tuple[StripeObject, str]] = []
        for i, spec in enumerate(items):
            price = self._price(str(spec.get("price")), f"items[{i}][price]")
            if any(price["id"] == p["id"] for p, _ in prices):
                raise InvalidRequestError(
                    "Cannot add multiple subscription items with the same price.", param=f"items[{i}][price]"
                )
            prices.append((price, f"items[{i}][price]"))
        self._check_compatible(prices)
        currency = prices[0][0]["currency"]
        if cust["currency"] not in (None, currency):
            raise InvalidRequestError(
                f"You cannot combine currencies on a single customer. This customer has an active "
                f"subscription, subscription schedule, discount, quote, or invoice item with currency "
                f"{cust['currency']}.",
                param="currency",
            )
        now = self.now()
        trial_until = self._trial_end(trial_end, trial_period_days, trial_from_plan, prices, now)
        pm = self._payment_method(default_payment_method, customer, "default_payment_method")
        if payment_behavior == "error_if_incomplete":
            with self._all_or_nothing():
                return self._create(
                    cust,
                    items,
                    prices,
                    pm,
                    trial_until,
                    metadata,
                    payment_behavior,
                    off_session,
                    trial_settings,
                    cancel_at_period_end,
                    collection_method,
                    days_until_due,
                    description,
                    now,
                )
        return self._create(
            cust, items, prices, pm, trial_until, metadata, payment_behavior, off_session, trial_settings,
            cancel_at_period_end, collection_method, days_until_due, description, now,
        )  # fmt: skip

    def _trial_end(
        self,
        trial_end: int | str | None,
        trial_period_days: int | None,
        trial_from_plan: bool,
        prices: list[tuple[StripeObject, str]],
        now: int,
    ) -> int | None:
        if trial_end == "now":
            return None
        if isinstance(trial_end, int):
            if trial_end <= now:
                raise InvalidRequestError(
                    "Invalid timestamp: must be an integer Unix timestamp in the future.", param="trial_end"
                )
            return trial_end
        if trial_period_days:
            return now + trial_period_days * DAY
        if trial_from_plan:
            days = prices[0][0]["recurring"].get("trial_period_days")
            return now + int(days) * DAY if days else None
        return None

    def _create(
        self,
        cust: StripeObject,
        items: list[dict[str, Any]],
        prices: list[tuple[StripeObject, str]],
        pm: str | None,
        trial_until: int | None,
        metadata: dict[str, str] | None,
        payment_behavior: str,
        off_session: bool,
        trial_settings: dict[str, Any] | None,
        cancel_at_period_end: bool,
        collection_method: str,
        days_until_due: int | None,
        description: str | None,
        now: int,
    ) -> StripeObject:
        currency = prices[0][0]["currency"]
        if cust["currency"] is None:
            cust["currency"] = currency
        interval = prices[0][0]["recurring"]
        anchor = trial_until or now
        period_end = trial_until or next_boundary(
            anchor, interval["interval"], int(interval["interval_count"]), now
        )
        sub_id = ids.id_for("subscription")
        sub: StripeObject = {
            "id": sub_id,
            "object": "subscription",
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": anchor,
            "billing_cycle_anchor_config": None,
            "billing_mode": {"flexible": None, "type": "classic"},
            "billing_schedules": [],
            "billing_thresholds": None,
            "cancel_at": period_end if cancel_at_period_end else None,
            "cancel_at_period_end": cancel_at_period_end,
            "canceled_at": now if cancel_at_period_end else None,
            "cancellation_details": {
                "comment": None,
                "feedback": None,
                "reason": "cancellation_requested" if cancel_at_period_end else None,
            },
            "collection_method": collection_method,
            "created": now,
            "currency": currency,
            "customer": cust["id"],
            "customer_account": None,
            "days_until_due": days_until_due if collection_method == "send_invoice" else None,
            "default_payment_method": pm,
            "default_source": None,
            "default_tax_rates": [],
            "description": description,
            "discounts": [],
            "ended_at": None,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": {},
            "latest_invoice": None,
            "livemode": False,
            "managed_payments": None,
            "metadata": metadata or {},
            "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {
                "payment_method_options": None,
                "payment_method_types": None,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "schedule": None,
            "start_date": now,
            "status": "incomplete",
            "test_clock": None,
            "transfer_data": None,
            "trial_end": trial_until,
            "trial_settings": {
                "end_behavior": {
                    "missing_payment_method": (trial_settings or {}).get(
                        "missing_payment_method", "create_invoice"
                    )
                }
            },
            "trial_start": now if trial_until else None,
            "_quiet": True,
        }
        self.store.insert(sub)
        for spec, (price, _) in zip(items, prices, strict=True):
            self._new_item(sub, price, spec.get("quantity"), spec.get("metadata"), now, period_end)
        self._sync_items(sub)
        sub.pop("_quiet")
        with self._operation(sub, created=True):
            lines = [
                self._item_line(sub, item, now, period_end, trial=bool(trial_until))
                for item in self.items_of(sub)
            ]
            invoice = self.invoices.invoice_create(
                customer_id=cust["id"],
                currency=currency,
                billing_reason="subscription_create",
                subscription=sub,
                lines=[line for line in lines if line is not None],
                collection_method=collection_method,
                days_until_due=days_until_due,
            )
            sub["latest_invoice"] = invoice["id"]
            sub["status"] = "trialing" if trial_until else "incomplete"
            self.invoices.invoice_finalize(invoice["id"])
            if invoice["status"] == "paid":
                sub["status"] = "trialing" if trial_until else "active"
            elif collection_method == "send_invoice":
                sub["status"] = "active"
            elif payment_behavior == "default_incomplete":
                self.invoices.payment_intent_for(invoice, pm)
            else:
                outcome = self.invoices.invoice_attempt(
                    invoice["id"], payment_method=pm, off_session=off_session
                )
                if outcome != "paid" and payment_behavior == "error_if_incomplete":
                    pi = self.store.get("payment_intent", invoice["_payment_intent"] or "")
                    raise payment_error(pi, outcome)
        return sub

    def _new_item(
        self,
        sub: StripeObject,
        price: StripeObject,
        quantity: int | None,
        metadata: dict[str, str] | None,
        period_start: int,
        period_end: int,
    ) -> StripeObject:
        item: StripeObject = {
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
        self.store.insert(item)
        return item

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
            description = f"{quantity} × {name} (at {money(Decimal(price['unit_amount_decimal']), price['currency'])} / {per})"
            amount = line_amount(price, quantity)
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

        usage = self.account.backend(MetersBackend).meter_usage(meter_id, sub["customer"], start, end)
        quantity = int(usage.to_integral_value(rounding=ROUND_HALF_UP))
        name = self._product_name(price)
        unit = money(Decimal(price["unit_amount_decimal"]), price["currency"])
        return {
            "amount": line_amount(price, usage),
            "description": f"{quantity} × {name} (at {unit} / unit, usage {day_label(start)} – {day_label(end)})",
            "price": price,
            "quantity": quantity,
            "period_start": start,
            "period_end": end,
            "subscription_item": item["id"],
        }

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

    # -- update --------------------------------------------------------------------------------------------

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
    ) -> StripeObject:
        """Apply an update. ``items``: ``[{"id"?, "price"?, "quantity"?, "deleted"?, "metadata"?}]``;
        ``changes``: plain fields already validated (``metadata`` merged, ``cancel_at_period_end``,
        ``pause_collection``, ``description``, ``cancel_at``)."""
        sub = self.subscription_require(sub_id)
        changes = dict(changes or {})
        ended = sub["status"] in ENDED_STATUSES
        if ended and (
            set(changes) - {"metadata"} or items or trial_end is not None or default_payment_method
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
        if payment_behavior == "error_if_incomplete":
            with self._all_or_nothing():
                return self._update(sub, plan, proration_behavior, proration_date, payment_behavior, changes, trial_end, pm, off_session, default_payment_method is not None)  # fmt: skip
        return self._update(sub, plan, proration_behavior, proration_date, payment_behavior, changes, trial_end, pm, off_session, default_payment_method is not None)  # fmt: skip

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
            if plan is not None:
                invoice_now = self._apply_plan(
                    sub, plan, proration_behavior, proration_date, payment_behavior, now
                )
            if trial_end == "now" and sub["status"] == "trialing":
                self.emit("customer.subscription.trial_will_end", sub)
                self._start_paid_period(sub, now, "subscription_update", payment_behavior, off_session)
            elif invoice_now:
                self._invoice_prorations(sub, invoice_now, plan, payment_behavior, off_session, now)
        return sub

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

    def _swap_items(self, sub: StripeObject, plan: list[dict[str, Any]], start: int, end: int) -> None:
        keep = {e["item"]["id"] for e in plan if e["item"] is not None}
        for item in self.items_of(sub):
            if item["id"] not in keep:
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
                continue
            item["price"] = clone(entry["price"])
            item["plan"] = plan_of(entry["price"])
            item["quantity"] = entry["quantity"]
            if entry["metadata"] is not None:
                item["metadata"] = entry["metadata"]
        self._sync_items(sub)

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

    def _collect(
        self, sub: StripeObject, invoice: StripeObject, payment_behavior: str, off_session: bool
    ) -> None:
        """Finalize and (for ``charge_automatically``) attempt an invoice created by a request."""
        self.invoices.invoice_finalize(invoice["id"])
        if invoice["status"] != "open" or sub["collection_method"] != "charge_automatically":
            return
        if payment_behavior == "default_incomplete":
            self.invoices.payment_intent_for(invoice, self._default_pm(sub))
            if sub["status"] in ("active", "trialing"):
                sub["status"] = "past_due"
            return
        outcome = self.invoices.invoice_attempt(invoice["id"], off_session=off_session)
        if outcome != "paid" and payment_behavior == "error_if_incomplete":
            pi = self.store.get("payment_intent", invoice["_payment_intent"] or "")
            raise payment_error(pi, outcome)

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

    # -- invoice outcomes (called by InvoicesBackend) ------------------------------------------------------

    def on_invoice_paid(self, invoice: StripeObject) -> None:
        sub = self.store.get("subscription", invoice["subscription"])
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
        sub = self.store.get("subscription", invoice["subscription"])
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

    def _final_invoice(self, sub: StripeObject, now: int) -> None:
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
            collection_method=sub["collection_method"],
        )
        sub["latest_invoice"] = invoice["id"]
        self.invoices.invoice_finalize(invoice["id"])
        if invoice["status"] == "open" and sub["collection_method"] == "charge_automatically":
            self.invoices.invoice_attempt(invoice["id"])

    def _end(self, sub: StripeObject, at: int, *, reason: str | None) -> None:
        sub["status"] = "canceled"
        sub["ended_at"] = at
        sub["canceled_at"] = sub["canceled_at"] if sub["cancel_at_period_end"] else at
        sub["cancel_at"] = sub["cancel_at"] if sub["cancel_at_period_end"] else None
        if reason is not None:
            sub["cancellation_details"]["reason"] = reason
        sub["pending_update"] = None
        sub.pop("_pending_plan", None)
        sub.pop("_pending_invoice", None)
        # Stripe stops automatic collection of the subscription's open invoices.
        for invoice in self.invoices.invoice_list(subscription=sub["id"], status="open"):
            invoice["next_payment_attempt"] = None
            invoice["auto_advance"] = False

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

    # -- time ----------------------------------------------------------------------------------------------

    def due_tasks(self, now: int) -> list[tuple[int, int, str, StripeObject]]:
        """Every time-driven step due by ``now``: ``(when, priority, kind, object)``."""
        tasks: list[tuple[int, int, str, StripeObject]] = []
        expiry = int(billing_settings(self.account)["incomplete_expiry_hours"] * 3600)
        for sub in self.store.iter_type("subscription"):
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
                self._end(sub, at, reason="cancellation_requested")
                return
            start, end = self._period(sub)
            interval, count = self._interval(sub)
            new_end = next_boundary(sub["billing_cycle_anchor"], interval, count, at)
            items = self.items_of(sub)
            lines: list[dict[str, Any]] = []
            for item in items:
                line = (
                    self._usage_line(sub, item, start, end)
                    if is_metered(item["price"])
                    else self._item_line(sub, item, at, new_end)
                )
                if line is not None:
                    lines.append(line)
            for item in items:
                item["current_period_start"] = at
                item["current_period_end"] = new_end
            self._sync_items(sub)
            invoice = self.invoices.invoice_create(
                customer_id=sub["customer"],
                currency=sub["currency"],
                billing_reason="subscription_cycle",
                subscription=sub,
                lines=lines,
                pending_items=self.invoices.pending_items(sub["id"]),
                period_start=start,
                period_end=end,
                created=at,
                collection_method=sub["collection_method"],
                days_until_due=sub["days_until_due"],
            )
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


def run_billing(account: Account, previous_now: int, now: int) -> None:
    """The advance hook: every renewal, trial end, retry and expiry due by ``now``, one at a time in time
    order (so a jump over several periods bills each one, and a retry lands between the renewals around
    it)."""
    subs = account.backend(SubscriptionsBackend)
    invoices = account.backend(InvoicesBackend)
    for _ in range(100_000):
        tasks: list[tuple[int, int, int, str, StripeObject]] = [
            (when, prio, obj["_seq"], kind, obj) for when, prio, kind, obj in subs.due_tasks(now)
        ]
        tasks += [(when, 7, inv["_seq"], "retry", inv) for when, inv in invoices.due_retries(now)]
        if not tasks:
            return
        when, _, _, kind, obj = min(tasks, key=lambda t: t[:3])
        if kind == "retry":
            invoices.retry(obj, when)
        else:
            subs.run_task(kind, obj, when)
