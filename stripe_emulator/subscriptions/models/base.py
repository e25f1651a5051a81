"""The shared base of :class:`~stripe_emulator.subscriptions.models.SubscriptionsBackend`: constants,
price and money helpers, the lookups and validation every operation uses, the grouping of a whole operation
into one event (:meth:`SubscriptionsBase._operation`), and the two steps many operations end with:
collecting an invoice and ending the subscription."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.context import current_request
from stripe_emulator.core.errors import CardError, InvalidRequestError
from stripe_emulator.core.store import Store, StripeObject, clone
from stripe_emulator.products.models import ProductsBackend
from stripe_emulator.subscriptions.invoices import InvoicesBackend
from stripe_emulator.subscriptions.invoices.base import payments_backend
from stripe_emulator.subscriptions.invoices.collection import payment_error
from stripe_emulator.subscriptions.periods import DAY

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


def unit_label(price: StripeObject) -> str:
    """How an invoice line describes a price's rate: "at $5.00", or its tiers mode for a tiered price."""
    if price["billing_scheme"] == "tiered":
        return f"{price['tiers_mode']} tiers"
    return f"at {money(Decimal(price['unit_amount_decimal']), price['currency'])}"


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


class SubscriptionsBase(BaseBackend):
    @property
    def invoices(self) -> InvoicesBackend:
        return self.account.backend(InvoicesBackend)

    def line_amount(self, price: StripeObject, quantity: int | Decimal) -> int:
        """What an invoice line charges for ``quantity`` of ``price`` (per unit or tiered, as Stripe)."""
        return self.account.backend(ProductsBackend).price_amount(price, quantity)

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
        if sub["status"] != "paused":
            sub["status_details"] = None  # it only says when and why the subscription was paused
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

    def _undo_point(self) -> Callable[[], None]:
        """What puts the account back as it is now: its objects, events and the request's queued deliveries."""
        snapshot = json.loads(json.dumps(self.store.dump()))
        request = current_request()
        outbox = len(request.outbox) if request is not None else 0

        def undo() -> None:
            self.account.store = Store.load(snapshot)
            if request is not None:
                del request.outbox[outbox:]

        return undo

    @contextmanager
    def _all_or_nothing(self) -> Iterator[None]:
        """Undo every change (objects, events, queued deliveries) if the block raises — for
        ``error_if_incomplete``, where a failed payment means the request never happened."""
        undo = self._undo_point()
        try:
            yield
        except CardError:
            undo()
            raise

    # -- collect / end -------------------------------------------------------------------------------------

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
        schedule = self.store.get("subscription_schedule", sub.get("schedule") or "")
        if schedule is not None and schedule["status"] in ("not_started", "active"):
            # Canceling a subscription a schedule drives cancels the schedule (it has nothing left to drive).
            schedule.update(status="canceled", canceled_at=at, current_phase=None)
            self.emit("subscription_schedule.canceled", schedule)
        # Stripe stops automatic collection of the subscription's open invoices.
        for invoice in self.invoices.invoice_list(subscription=sub["id"], status="open"):
            invoice["next_payment_attempt"] = None
            invoice["auto_advance"] = False
