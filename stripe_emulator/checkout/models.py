"""Checkout Sessions: creation and validation, the customer's completion of the hosted page (with a test
card), 3-D Secure, and expiry (explicit, by ``expires_at`` through an advance hook, and lazily on reads).

Payment mode confirms a PaymentIntent with the card; subscription mode creates the subscription through
the subscriptions service, whose first invoice is paid on-session. A session completes when its payment
succeeds — at once, or later when a 3-D Secure challenge is passed — which this module learns through
``PaymentsBackend.late_status_listeners`` (after the invoices have reacted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stripe_emulator.core import ids
from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.errors import CardError, InvalidRequestError
from stripe_emulator.core.params import in_range
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.coupons.discounts import DiscountLine, discount_amounts
from stripe_emulator.coupons.models import CouponsBackend, DiscountSpec
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.payments import cards
from stripe_emulator.payments.models import PaymentsBackend
from stripe_emulator.products.models import ProductsBackend, is_metered
from stripe_emulator.tax import (
    automatic_tax_field,
    customer_location,
    require_tax_behavior,
    session_taxes_apply,
    tax_location,
)

if TYPE_CHECKING:
    from stripe_emulator.core.account import Account

DEFAULT_LIFETIME = 24 * 3600
MAX_RECURRING_LINE_ITEMS = 20  # per Checkout Session in `subscription` mode (and 20 one-time ones)
MIN_LIFETIME = 30 * 60
DEFAULT_EMAIL = "customer@example.com"
TEMPLATE = "{CHECKOUT_SESSION_ID}"


def success_redirect(session: StripeObject) -> str | None:
    url = session["success_url"]
    return url.replace(TEMPLATE, session["id"]) if url else None


class CheckoutBackend(BaseBackend):
    def checkout_session_create(
        self,
        *,
        mode: str,
        line_items: list[dict[str, Any]],
        customer: str | None = None,
        customer_email: str | None = None,
        customer_creation: str | None = None,
        client_reference_id: str | None = None,
        metadata: dict[str, str] | None = None,
        success_url: str | None = None,
        cancel_url: str | None = None,
        expires_at: int | None = None,
        subscription_data: dict[str, Any] | None = None,
        payment_intent_data: dict[str, Any] | None = None,
        locale: str | None = None,
        automatic_tax: bool = False,
        billing_address_collection: str | None = None,
        customer_update: dict[str, str] | None = None,
        discounts: list[dict[str, str | None]] | None = None,
        allow_promotion_codes: bool | None = None,
    ) -> StripeObject:
        """``discounts``: ``[{coupon} | {promotion_code}]`` (one at most, as Stripe allows), or
        ``allow_promotion_codes`` for a code field on the hosted page. ``line_items``: ``{"price": id}`` or ``{"price_data": {currency, unit_amount, product |
        product_data, recurring}}``, each with ``quantity``. Everything is validated before anything is
        stored."""
        now = self.now()
        if customer is not None and customer_email is not None:
            raise InvalidRequestError(
                "You may only specify one of these parameters: customer, customer_email.",
                param="customer_email",
            )
        if customer is not None:
            self.account.backend(CustomersBackend).customer_require(customer, param="customer")
        if customer_creation is not None and mode != "payment":
            raise InvalidRequestError(
                "`customer_creation` can only be used in `payment` and `setup` mode.",
                param="customer_creation",
            )
        if customer_creation is not None and customer is not None:
            raise InvalidRequestError(
                "You may only specify one of these parameters: customer, customer_creation.",
                param="customer_creation",
            )
        if subscription_data and mode != "subscription":
            raise InvalidRequestError(
                "You can not pass `subscription_data` in `payment` mode.", param="subscription_data"
            )
        if payment_intent_data and mode != "payment":
            raise InvalidRequestError(
                f"You can not pass `payment_intent_data` in `{mode}` mode.", param="payment_intent_data"
            )
        if expires_at is None:
            expires_at = now + DEFAULT_LIFETIME
        elif not now + MIN_LIFETIME <= expires_at <= now + DEFAULT_LIFETIME:
            raise InvalidRequestError(
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session "
                "creation.",
                param="expires_at",
            )
        if not line_items:
            raise InvalidRequestError(
                f"`line_items` is required in `{mode}` mode.", code="parameter_missing", param="line_items"
            )
        resolved = [self._resolve_item(i, item) for i, item in enumerate(line_items)]
        currencies = {price["currency"] for price, _ in resolved if price is not None} | {
            item["price_data"]["currency"] for item in line_items if item.get("price_data")
        }
        if len(currencies) > 1:
            raise InvalidRequestError(
                "All line items must use the same currency.", param="line_items[1][price]"
            )
        recurring = [self._is_recurring(price, item) for (price, item) in resolved]
        if mode == "payment" and any(recurring):
            index = recurring.index(True)
            raise InvalidRequestError(
                "You specified `payment` mode but passed a recurring price. Either switch to `subscription` "
                "mode or use only one-time prices.",
                param=f"line_items[{index}]",
            )
        if mode == "subscription" and not all(recurring):
            if not any(recurring):
                raise InvalidRequestError(
                    "You must provide at least one recurring price in `subscription` mode when using prices.",
                    param="line_items",
                )
            raise InvalidRequestError(
                "The emulator supports only recurring prices in `subscription` mode.",
                param=f"line_items[{recurring.index(False)}]",
            )
        for index, (price, item) in enumerate(resolved):
            metered = price is not None and is_metered(price)
            if metered and item.get("quantity") is not None:
                raise InvalidRequestError(
                    "Quantity should not be specified where usage_type is `metered`. Remove quantity from "
                    f"`line_items[{index}]`.",
                    param=f"line_items[{index}][quantity]",
                )
            if not metered and item.get("quantity") is None:
                raise InvalidRequestError(
                    f"Quantity is required. Add `quantity` to `line_items[{index}]`.",
                    code="parameter_missing",
                    param=f"line_items[{index}][quantity]",
                )
        if mode == "subscription" and sum(recurring) > MAX_RECURRING_LINE_ITEMS:
            raise InvalidRequestError(
                f"You can only have up to {MAX_RECURRING_LINE_ITEMS} line items with recurring prices in "
                "`subscription` mode.",
                param="line_items",
            )
        intervals = {self._interval(price, item) for price, item in resolved} - {None}
        if len(intervals) > 1:
            raise InvalidRequestError(
                "Checkout does not support multiple prices with different billing intervals.",
                param="line_items",
            )
        if automatic_tax:
            self._check_automatic_tax(resolved, customer, customer_update or {})
        if discounts and allow_promotion_codes:
            raise InvalidRequestError(
                "You may only specify one of these parameters: allow_promotion_codes, discounts.",
                param="discounts",
            )
        if discounts and len(discounts) > 1:
            raise InvalidRequestError(
                "You may only specify one discount on a Checkout Session.", param="discounts"
            )
        specs = self.account.backend(CouponsBackend).discount_specs(
            discounts or [], param="discounts", customer=customer, currency=next(iter(currencies), None)
        )
        # -- valid: create inline prices, then the session ---------------------------------------------------
        prices = [self._materialize(price, item, active=mode == "subscription") for price, item in resolved]
        session_id = ids.id_for("checkout.session") + ids.random_token(34)
        currency = prices[0]["currency"] if prices else None
        items: list[StripeObject] = []
        for price, item in zip(prices, line_items, strict=True):
            product = self.store.get("product", price["product"])
            # A metered price is billed in arrears from its meter: nothing is due for it now.
            subtotal = (
                0
                if is_metered(price)
                else self.account.backend(ProductsBackend).price_amount(price, item["quantity"])
            )
            items.append(
                {
                    "id": ids.new_id("li"),
                    "object": "item",
                    "adjustable_quantity": None,
                    "amount_discount": 0,
                    "amount_subtotal": subtotal,
                    "amount_tax": 0,
                    "amount_total": subtotal,
                    "currency": price["currency"],
                    "description": product["name"] if product else None,
                    "metadata": {},
                    "price": clone(price),
                    "quantity": item["quantity"],
                    "_session": session_id,
                }
            )
        # Inserted last-first so that the store's newest-first listing gives the customer's order back,
        # and list cursors work on line items like on any other list.
        for item in reversed(items):
            self.store.insert(item)
        total = sum(item["amount_total"] for item in items)
        if mode == "payment" and customer_creation is None and customer is None:
            customer_creation = "if_required"
        session: StripeObject = {
            "id": session_id,
            "object": "checkout.session",
            "adaptive_pricing": {"enabled": False},
            "after_expiration": None,
            "allow_promotion_codes": allow_promotion_codes,
            "amount_subtotal": total,
            "amount_total": total,
            "automatic_tax": automatic_tax_field(enabled=automatic_tax, status="requires_location_inputs"),
            "billing_address_collection": billing_address_collection,
            "cancel_url": cancel_url,
            "client_reference_id": client_reference_id,
            "client_secret": None,
            "collected_information": None,
            "consent": None,
            "consent_collection": None,
            "created": now,
            "currency": currency,
            "currency_conversion": None,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": customer,
            "customer_account": None,
            "customer_creation": customer_creation,
            "customer_details": None,
            "customer_email": customer_email,
            "discounts": [],
            "expires_at": expires_at,
            "integration_identifier": None,
            "invoice": None,
            "invoice_creation": _invoice_creation() if mode == "payment" else None,
            "livemode": False,
            "locale": locale,
            "managed_payments": {"enabled": False},
            "metadata": metadata or {},
            "mode": mode,
            "origin_context": None,
            "payment_intent": None,
            "payment_link": None,
            "payment_method_collection": "always" if mode == "subscription" else None,
            "payment_method_configuration_details": None,
            "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "permissions": None,
            "phone_number_collection": {"enabled": False},
            "recovered_from": None,
            "saved_payment_method_options": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_options": [],
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": success_url,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted_page",
            "url": self.account.emulator.url_for(f"/checkout/pay/{session_id}"),
            "wallet_options": None,
            "_subscription_data": subscription_data or {},
            "_payment_intent_data": payment_intent_data or {},
            "_customer_update": customer_update or {},
        }
        self._apply_discounts(session, items, discounts or [], specs)
        session_taxes_apply(self.account, session, items)  # on the amounts after discounts
        self.store.insert(session)
        return session

    def _check_automatic_tax(
        self,
        resolved: list[tuple[StripeObject | None, dict[str, Any]]],
        customer: str | None,
        customer_update: dict[str, str],
    ) -> None:
        """Automatic tax: every price has a tax behavior, and an existing customer either has an address or
        lets Checkout save the one it collects (``customer_update[address]=auto``)."""
        for i, (price, item) in enumerate(resolved):
            if price is not None:
                require_tax_behavior(price, param=f"line_items[{i}][price]")
            elif item["price_data"].get("tax_behavior") not in ("inclusive", "exclusive"):
                raise InvalidRequestError(
                    "Automatic tax needs `tax_behavior` (`inclusive` or `exclusive`) on every price.",
                    param=f"line_items[{i}][price_data][tax_behavior]",
                )
        if (
            customer is not None
            and customer_location(self.account, customer) is None
            and customer_update.get("address") != "auto"
            and customer_update.get("shipping") != "auto"
        ):
            raise InvalidRequestError(
                "Automatic tax calculation in Checkout requires a valid address on the Customer. Add a valid "
                "address to the Customer or set either `customer_update[address]` or "
                "`customer_update[shipping]` to 'auto' to save the address entered in Checkout to the Customer.",
                param="customer_update[address]",
            )

    # -- discounts -------------------------------------------------------------------------------------------

    def _apply_discounts(
        self,
        session: StripeObject,
        items: list[StripeObject],
        entries: list[dict[str, str | None]],
        specs: list[DiscountSpec],
    ) -> None:
        """Each line item's ``amount_discount`` (by :func:`discount_amounts`, before tax), the session's
        ``amount_total``, ``total_details.amount_discount`` and ``discounts`` as sent."""
        lines = [DiscountLine(amount=i["amount_subtotal"], product=i["price"]["product"]) for i in items]
        amounts = discount_amounts(lines, [s.coupon for s in specs], currency=session["currency"] or "")
        for index, item in enumerate(items):
            item["amount_discount"] = sum(per_coupon[index] for per_coupon in amounts)
            item["amount_total"] = item["amount_subtotal"] - item["amount_discount"]
        discount = sum(i["amount_discount"] for i in items)
        session["amount_total"] = session["amount_subtotal"] - discount
        session["total_details"]["amount_discount"] = discount
        session["discounts"] = [
            {"coupon": e.get("coupon"), "promotion_code": e.get("promotion_code")} for e in entries
        ]
        session["_discount_entries"] = [dict(e) for e in entries]

    def checkout_session_apply_promotion_code(self, session_id: str, code: str) -> StripeObject:
        """The customer types a promotion code on the hosted page (sessions with
        ``allow_promotion_codes``)."""
        session = self.checkout_session_require(session_id)
        if session["status"] != "open":
            raise InvalidRequestError(
                f"This Checkout Session is no longer active (status {session['status']})."
            )
        if not session["allow_promotion_codes"]:
            raise InvalidRequestError(
                "This Checkout Session does not accept promotion codes.", param="promotion_code"
            )
        coupons = self.account.backend(CouponsBackend)
        found = coupons.promotion_code_list(code=code)
        promo = next((p for p in found if p["active"]), found[0] if found else None)
        if promo is None:
            raise InvalidRequestError("This code is invalid.", param="promotion_code")
        entries: list[dict[str, str | None]] = [{"coupon": None, "promotion_code": promo["id"]}]
        items = self.line_items_of(session_id)
        specs = coupons.discount_specs(
            entries,
            param="discounts",
            customer=session["customer"],
            currency=session["currency"],
            amount=session["amount_subtotal"],
        )
        self._apply_discounts(session, items, entries, specs)
        session_taxes_apply(self.account, session, items)  # taxed again, on the discounted amounts
        return session

    def _redeem(self, session: StripeObject, customer: str | None) -> None:
        """Payment mode: the session's discount is redeemed when it completes (subscription mode redeems
        it on the subscription it creates)."""
        coupons = self.account.backend(CouponsBackend)
        for entry in session.get("_discount_entries") or []:
            promo = self.store.get("promotion_code", entry.get("promotion_code") or "")
            coupon_id = promo["promotion"]["coupon"] if promo else entry.get("coupon")
            coupon = self.store.get("coupon", coupon_id or "")
            if coupon is not None:
                spec = DiscountSpec(coupon=coupon, promotion_code=promo)
                coupons.discount_create(spec, customer=customer, checkout_session=session["id"])

    def _resolve_item(self, index: int, item: dict[str, Any]) -> tuple[StripeObject | None, dict[str, Any]]:
        products = self.account.backend(ProductsBackend)
        if item.get("price") is not None:
            price = products.price_require(item["price"], param=f"line_items[{index}][price]")
            if not price["active"]:
                raise InvalidRequestError(
                    f"The price specified ({price['id']}) is inactive. This field only accepts active prices.",
                    param=f"line_items[{index}][price]",
                )
            return price, item
        data = item.get("price_data")
        if data is None:
            raise InvalidRequestError(
                "You must specify either `price` or `price_data` in `line_items`.",
                code="parameter_missing",
                param=f"line_items[{index}][price]",
            )
        if data.get("product") is not None:
            products.product_require(data["product"], param=f"line_items[{index}][price_data][product]")
        return None, item

    @staticmethod
    def _is_recurring(price: StripeObject | None, item: dict[str, Any]) -> bool:
        if price is not None:
            return price["recurring"] is not None
        return item["price_data"].get("recurring") is not None

    @staticmethod
    def _interval(price: StripeObject | None, item: dict[str, Any]) -> tuple[str, int] | None:
        recurring = price["recurring"] if price is not None else item["price_data"].get("recurring")
        if recurring is None:
            return None
        return recurring["interval"], recurring.get("interval_count") or 1

    def _materialize(self, price: StripeObject | None, item: dict[str, Any], *, active: bool) -> StripeObject:
        """The price of a line item; ``price_data`` becomes an inline price. Stripe leaves inline prices
        inactive; in subscription mode they are created active because the subscriptions service (rightly,
        for ``POST /v1/subscriptions``) only accepts active prices."""
        if price is not None:
            return price
        data = item["price_data"]
        return self.account.backend(ProductsBackend).price_create(
            currency=data["currency"],
            product_id=data.get("product"),
            product_data=data.get("product_data"),
            unit_amount=data.get("unit_amount"),
            unit_amount_decimal=data.get("unit_amount_decimal"),
            recurring=data.get("recurring"),
            tax_behavior=data.get("tax_behavior"),
            active=active,
        )

    # -- reads -----------------------------------------------------------------------------------------------

    def checkout_session_require(self, session_id: str, *, param: str | None = "id") -> StripeObject:
        """The session, expired first if its ``expires_at`` has passed (lazy expiry)."""
        session = self.store.require("checkout.session", session_id, param=param)
        if session["status"] == "open" and session["expires_at"] <= self.now():
            self.checkout_session_expire(session_id)
        return session

    def checkout_session_line_items(self, session_id: str) -> list[StripeObject]:
        self.checkout_session_require(session_id)
        return self.line_items_of(session_id)

    def line_items_of(self, session_id: str) -> list[StripeObject]:
        """The session's ``item`` objects in the order they were given (no expiry check: for rendering)."""
        return self.store.newest_first("item", lambda item: item.get("_session") == session_id)

    def checkout_session_list(
        self,
        *,
        customer: str | None = None,
        payment_intent: str | None = None,
        subscription: str | None = None,
        status: str | None = None,
        customer_email: str | None = None,
        created: dict[str, int] | None = None,
    ) -> list[StripeObject]:
        self.expire_due(self.now())

        def keep(session: StripeObject) -> bool:
            details = session["customer_details"] or {}
            return (
                (customer is None or session["customer"] == customer)
                and (payment_intent is None or session["payment_intent"] == payment_intent)
                and (subscription is None or session["subscription"] == subscription)
                and (status is None or session["status"] == status)
                and (customer_email is None or details.get("email") == customer_email)
                and in_range(session["created"], created)
            )

        return self.store.newest_first("checkout.session", keep)

    # -- expiry ----------------------------------------------------------------------------------------------

    def checkout_session_expire(self, session_id: str) -> StripeObject:
        session = self.store.require("checkout.session", session_id)
        if session["status"] != "open":
            raise InvalidRequestError(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session '
                f'has a status of "{session["status"]}".'
            )
        payments = self.account.backend(PaymentsBackend)
        if session["payment_intent"] is not None:
            pi = self.store.get("payment_intent", session["payment_intent"])
            if pi is not None and pi["status"] in (
                "requires_payment_method",
                "requires_confirmation",
                "requires_action",
            ):
                payments.payment_intent_cancel(pi["id"], cancellation_reason="abandoned")
        session.update(status="expired", url=None)
        self.emit("checkout.session.expired", session)
        return session

    def expire_due(self, now: int) -> None:
        for session in self.store.iter_type("checkout.session"):
            if (
                session["status"] == "open"
                and session["expires_at"] <= now
                and self.account.on_current_clock(session["customer"])
            ):
                self.checkout_session_expire(session["id"])

    # -- completion ------------------------------------------------------------------------------------------

    def checkout_session_complete(
        self,
        session_id: str,
        *,
        card_number: str = "4242424242424242",
        email: str | None = None,
        address: dict[str, Any] | None = None,
    ) -> StripeObject:
        """The customer pays on the hosted page. Returns the session: ``complete``, or still ``open`` when
        a 3-D Secure challenge is pending (``payment_intent`` then ``requires_action``). Raises
        :class:`CardError` (402) when the card is declined; the session stays open for another try."""
        session = self.checkout_session_require(session_id)
        if session["status"] != "open":
            raise InvalidRequestError(
                f"This Checkout Session is no longer active (status {session['status']})."
            )
        card = cards.lookup(card_number)
        if session.get("_discount_entries") and session["status"] == "open":
            # The discount must still be redeemable when the customer pays (a code may have run out since).
            self.account.backend(CouponsBackend).discount_specs(
                session["_discount_entries"],
                param="discounts",
                customer=session["customer"],
                currency=session["currency"],
            )
        self._collect_address(session, address)
        # An existing customer's email is shown and cannot be changed on Stripe's page; otherwise the customer
        # types one (prefilled from ``customer_email``).
        email = self._customer_email(session) or email or session["customer_email"] or DEFAULT_EMAIL
        session["_email"] = email
        if session["customer"] is not None and not self._customer_email(session):
            # Stripe: "If the Customer does not have a valid email, Checkout will set the email entered during
            # the session on the Customer" — before paying, so the first invoice is addressed to it too.
            # (Customers Checkout creates are created with it.)
            self.account.backend(CustomersBackend).customer_update(session["customer"], {"email": email})
        if session["mode"] == "payment":
            self._pay(session, card, email)
        else:
            self._subscribe(session, card, email)
        return session

    def _collect_address(self, session: StripeObject, address: dict[str, Any] | None) -> None:
        """The billing address the page collects (required with automatic tax or
        ``billing_address_collection=required``; an existing customer's address is prefilled): it taxes the
        session, and goes onto the customer when ``customer_update[address]=auto`` or when Checkout creates
        the customer."""
        customer = self.store.get("customer", session["customer"]) if session["customer"] else None
        if address is None and customer is not None and tax_location(customer.get("address")):
            address = dict(customer["address"])
        needed = session["automatic_tax"]["enabled"] or session["billing_address_collection"] == "required"
        if address is None and needed:
            raise InvalidRequestError("Enter a billing address: its country is required.", param="address")
        if address is None:
            return
        session["_address"] = address
        session["_tax_country"] = tax_location(address)
        auto = session["_customer_update"].get("address") == "auto"
        if customer is not None and auto and customer.get("address") != address:
            self.account.backend(CustomersBackend).customer_update(customer["id"], {"address": address})
        session_taxes_apply(self.account, session, self.line_items_of(session["id"]))

    def checkout_session_authenticate(self, session_id: str, *, succeed: bool) -> StripeObject:
        """Answer the 3-D Secure challenge pending on the session's payment."""
        session = self.checkout_session_require(session_id)
        pi_id = self.pending_payment_intent(session)
        if pi_id is None:
            raise InvalidRequestError("This Checkout Session has no payment waiting for authentication.")
        payments = self.account.backend(PaymentsBackend)
        pi = payments.payment_intent_authenticate(pi_id, succeed=succeed)
        declined = payments.payment_intent_decline_error(pi)
        if declined is not None:
            raise declined
        return session

    def pending_payment_intent(self, session: StripeObject) -> str | None:
        """The PaymentIntent waiting for 3-D Secure on an open session, if any."""
        if session["status"] != "open":
            return None
        pi_id = session["payment_intent"] or session.get("_pending_payment_intent")
        pi = self.store.get("payment_intent", pi_id) if pi_id else None
        return pi["id"] if pi is not None and pi["status"] == "requires_action" else None

    def _customer_email(self, session: StripeObject) -> str | None:
        """The email of the session's existing customer, if it has one."""
        if session["customer"] is None:
            return None
        customer = self.store.get("customer", session["customer"])
        return (customer.get("email") or None) if customer else None

    def customer_email_of(self, session: StripeObject) -> str | None:
        """What the hosted page shows, read-only, in its email field (see :meth:`_customer_email`)."""
        return self._customer_email(session)

    def _ensure_customer(self, session: StripeObject, email: str) -> str:
        if session["customer"] is not None:
            return str(session["customer"])
        created = session.get("_created_customer")
        if created is None:
            created = self.account.backend(CustomersBackend).customer_create(
                email=email, address=session.get("_address")
            )["id"]
            session["_created_customer"] = created
        return str(created)

    def _pay(self, session: StripeObject, card: cards.TestCard, email: str) -> None:
        payments = self.account.backend(PaymentsBackend)
        intent_data = session["_payment_intent_data"]
        needs_customer = session["customer_creation"] == "always" or intent_data.get("setup_future_usage")
        customer = session["customer"]
        if customer is None and needs_customer:
            customer = self._ensure_customer(session, email)
        pi = (
            self.store.get("payment_intent", session["payment_intent"]) if session["payment_intent"] else None
        )
        if pi is None or pi["status"] not in (
            "requires_payment_method",
            "requires_confirmation",
            "requires_action",
        ):
            pi = payments.payment_intent_create(
                amount=session["amount_total"],
                currency=session["currency"],
                customer=customer,
                metadata=dict(intent_data.get("metadata") or {}),
                description=intent_data.get("description"),
                setup_future_usage=intent_data.get("setup_future_usage"),
                receipt_email=intent_data.get("receipt_email"),
            )
            pi["_checkout_session"] = session["id"]
            session["payment_intent"] = pi["id"]
        pm = payments.payment_method_create_from_card(card.number, billing_details={"email": email})
        pi = payments.payment_intent_confirm_internal(pi["id"], payment_method=pm["id"])
        declined = payments.payment_intent_decline_error(pi)
        if declined is not None:
            raise declined

    def _subscribe(self, session: StripeObject, card: cards.TestCard, email: str) -> None:
        from stripe_emulator.subscriptions.models import (
            SubscriptionsBackend,
        )  # another service, built alongside

        payments = self.account.backend(PaymentsBackend)
        sub_data = session["_subscription_data"]
        trial = sub_data.get("trial_period_days")
        if card.decline is not None and (not card.attach_ok or not trial):
            # Checkout shows the decline and lets the customer try another card: nothing is created.
            decline = card.decline
            raise CardError(decline.message, code=decline.code, decline_code=decline.decline_code)
        customer = self._ensure_customer(session, email)
        pm = payments.payment_method_create_from_card(card.number, billing_details={"email": email})
        payments.payment_method_attach(pm["id"], customer)
        self.account.backend(CustomersBackend).customer_update(
            customer, {"invoice_settings": {"default_payment_method": pm["id"]}}
        )
        pending = session.get("_pending_payment_intent")
        pending_pi = self.store.get("payment_intent", pending) if pending else None
        if pending_pi is not None and pending_pi["status"] == "requires_payment_method":
            # A retry after a failed 3-D Secure challenge: pay the same first invoice with the new card.
            pi = payments.payment_intent_confirm_internal(pending_pi["id"], payment_method=pm["id"])
            declined = payments.payment_intent_decline_error(pi)
            if declined is not None:
                raise declined
            return
        items = [
            {"price": item["price"]["id"], "quantity": item["quantity"]}
            for item in self.store.newest_first("item", lambda i: i.get("_session") == session["id"])
        ]
        subscription = self.account.backend(SubscriptionsBackend).subscription_create_internal(
            customer=customer,
            items=items,
            default_payment_method=pm["id"],
            trial_period_days=trial,
            metadata=dict(sub_data.get("metadata") or {}),
            payment_behavior="allow_incomplete",
            off_session=False,
            automatic_tax=session["automatic_tax"]["enabled"],
            discounts=session.get("_discount_entries") or None,
        )
        # Checkout sets the card up for the subscription's later off-session renewals.
        pm["_setup"] = True
        session["_pending_subscription"] = subscription["id"]
        session["_pending_invoice"] = subscription.get("latest_invoice")
        first = self._invoice_payment_intent(subscription.get("latest_invoice"))
        if first is None or first["status"] == "succeeded":
            self._complete(session, paid=first is not None or not trial)
            return
        session["_pending_payment_intent"] = first["id"]
        if first["status"] == "requires_payment_method":
            declined = payments.payment_intent_decline_error(first)
            if declined is not None:
                raise declined

    def _invoice_payment_intent(self, invoice_id: str | None) -> StripeObject | None:
        if invoice_id is None:
            return None
        for pi in reversed(list(self.store.iter_type("payment_intent"))):
            if pi.get("_invoice") == invoice_id:
                return pi
        return None

    def _complete(self, session: StripeObject, *, paid: bool) -> None:
        if session["status"] != "open":
            return
        email = session.get("_email") or DEFAULT_EMAIL
        customer = session["customer"] or session.get("_created_customer")
        if session["mode"] == "payment":
            pi = self.store.get("payment_intent", session["payment_intent"] or "")
            customer = session["customer"] or (pi["customer"] if pi else None)
            self._redeem(session, customer)
        else:
            session["subscription"] = session.get("_pending_subscription")
            session["invoice"] = session.get("_pending_invoice")
        session.update(
            status="complete",
            payment_status="paid" if paid else "no_payment_required",
            customer=customer,
            customer_details={
                "address": dict(session.get("_address") or {})
                or dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state")),
                "business_name": None,
                "email": email,
                "individual_name": None,
                "name": None,
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            },
            url=None,
        )
        self.emit("checkout.session.completed", session)


def _invoice_creation() -> dict[str, Any]:
    return {
        "enabled": False,
        "invoice_data": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": None,
            "metadata": {},
            "rendering_options": None,
        },
    }


def on_payment_intent_status(account: Account, payment_intent: StripeObject, previous_status: str) -> None:
    """Registered on ``PaymentsBackend.late_status_listeners``: a session completes when its payment succeeds,
    including after a 3-D Secure challenge passed later."""
    if payment_intent["status"] != "succeeded":
        return
    backend = account.backend(CheckoutBackend)
    session_id = payment_intent.get("_checkout_session")
    if session_id is not None:
        session = account.store.get("checkout.session", session_id)
        if session is not None:
            backend._complete(session, paid=True)
        return
    if payment_intent.get("_invoice") is None:
        return
    for session in account.store.iter_type("checkout.session"):
        if session["status"] == "open" and session.get("_pending_payment_intent") == payment_intent["id"]:
            backend._complete(session, paid=True)


def expire_sessions(account: Account, previous_now: int, now: int) -> None:
    """Advance hook: open sessions whose ``expires_at`` has passed expire."""
    account.backend(CheckoutBackend).expire_due(now)


if on_payment_intent_status not in PaymentsBackend.late_status_listeners:
    PaymentsBackend.late_status_listeners.append(on_payment_intent_status)
