"""Creating a subscription (``POST /v1/subscriptions``, Checkout in subscription mode): validation, the
trial, the subscription and its items, and the first invoice collected per ``payment_behavior``."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.errors import InvalidRequestError, ParameterInvalid
from stripe_emulator.core.store import StripeObject
from stripe_emulator.coupons.models import CouponsBackend, DiscountSpec
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.subscriptions.invoices.collection import payment_error
from stripe_emulator.subscriptions.models.base import PAYMENT_BEHAVIORS
from stripe_emulator.subscriptions.models.items import SubscriptionItems
from stripe_emulator.subscriptions.periods import DAY, next_boundary
from stripe_emulator.tax import check_taxable, subscription_automatic_tax


class SubscriptionCreate(SubscriptionItems):
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
        automatic_tax: bool = False,
        discounts: list[dict[str, str | None]] | None = None,
    ) -> StripeObject:
        """Create a subscription and its first invoice (finalized; paid with the default payment method, or
        $0 during a trial) and return the subscription with ``latest_invoice`` set. ``items`` is
        ``[{"price": id, "quantity": n, "metadata": {...}}]``; ``discounts``: ``[{coupon} | {promotion_code}]``,
        redeemed on the subscription (its first invoice and, per the coupon's duration, later ones). Used by ``POST /v1/subscriptions`` and by
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
            self._check_metered_quantity(price, spec, f"items[{i}][quantity]")
            if any(price["id"] == p["id"] for p, _ in prices):
                raise InvalidRequestError(
                    "Cannot add multiple subscription items with the same price.", param=f"items[{i}][price]"
                )
            prices.append((price, f"items[{i}][price]"))
        self._check_compatible(prices)
        if automatic_tax:
            check_taxable(self.account, customer_id=customer, prices=prices)
        currency = prices[0][0]["currency"]
        if cust["currency"] not in (None, currency):
            raise InvalidRequestError(
                f"You cannot combine currencies on a single customer. This customer has an active "
                f"subscription, subscription schedule, discount, quote, or invoice item with currency "
                f"{cust['currency']}.",
                param="currency",
            )
        specs = self.account.backend(CouponsBackend).discount_specs(
            discounts or [], param="discounts", customer=customer, currency=currency
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
                    specs,
                    automatic_tax=automatic_tax,
                )
        return self._create(
            cust, items, prices, pm, trial_until, metadata, payment_behavior, off_session, trial_settings,
            cancel_at_period_end, collection_method, days_until_due, description, now, specs,
            automatic_tax=automatic_tax,
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
        specs: list[DiscountSpec] | None = None,
        *,
        automatic_tax: bool = False,
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
            "automatic_tax": subscription_automatic_tax(automatic_tax),
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
            "presentment_details": None,
            "schedule": None,
            "start_date": now,
            "status": "incomplete",
            "status_details": None,
            # The customer's clock: a subscription lives on its customer's test clock.
            "test_clock": cust.get("test_clock"),
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
        coupons = self.account.backend(CouponsBackend)
        sub["discounts"] = [
            coupons.discount_create(spec, customer=cust["id"], subscription=sub_id)["id"]
            for spec in specs or []
        ]
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
                # The customer's pending invoice items in this currency go onto the first invoice.
                pending_items=self.invoices.pending_items(sub["id"]),
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
