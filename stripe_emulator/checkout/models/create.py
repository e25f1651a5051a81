"""``POST /v1/checkout/sessions``: every parameter validated before anything is stored, line items resolved
(``price`` or inline ``price_data``), then the session with its items, discount and taxes."""

from __future__ import annotations

from typing import Any

from stripe_emulator.checkout.models.base import (
    DEFAULT_LIFETIME,
    MAX_RECURRING_LINE_ITEMS,
    MIN_LIFETIME,
    invoice_creation,
)
from stripe_emulator.checkout.models.discounts import CheckoutDiscounts
from stripe_emulator.core import ids
from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.coupons.models import CouponsBackend
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.products.models import ProductsBackend, is_metered
from stripe_emulator.tax import (
    automatic_tax_field,
    customer_location,
    require_tax_behavior,
    session_taxes_apply,
)


class CheckoutCreate(CheckoutDiscounts):
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
        currency: str | None = None,
        setup_intent_data: dict[str, Any] | None = None,
        allowed_payment_method_types: list[str] | None = None,
    ) -> StripeObject:
        """``discounts``: ``[{coupon} | {promotion_code}]`` (one at most, as Stripe allows), or
        ``allow_promotion_codes`` for a code field on the hosted page. ``line_items``: ``{"price": id}`` or ``{"price_data": {currency, unit_amount, product |
        product_data, recurring}}``, each with ``quantity``. Everything is validated before anything is
        stored. Setup mode (``currency``, ``setup_intent_data``) has no line items and saves a card.
        ``allowed_payment_method_types`` (checked by the caller to name ``card``) is kept as given; the
        read-only ``payment_method_types`` shows what remains of it, i.e. ``["card"]``."""
        now = self.now()
        if customer is not None and customer_email is not None:
            raise InvalidRequestError(
                "You may only specify one of these parameters: customer, customer_email.",
                param="customer_email",
            )
        if customer is not None:
            self.account.backend(CustomersBackend).customer_require(customer, param="customer")
        if customer_creation is not None and mode == "subscription":
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
        if setup_intent_data and mode != "setup":
            raise InvalidRequestError(
                f"You can not pass `setup_intent_data` in `{mode}` mode.", param="setup_intent_data"
            )
        if mode == "setup":
            _check_setup_mode(
                line_items=line_items,
                currency=currency,
                allowed_payment_method_types=allowed_payment_method_types,
                automatic_tax=automatic_tax,
                discounts=bool(discounts or allow_promotion_codes),
            )
        elif currency is not None:
            raise InvalidRequestError(
                f"You can not pass `currency` in `{mode}` mode: the prices decide it.", param="currency"
            )
        if expires_at is None:
            expires_at = now + DEFAULT_LIFETIME
        elif not now + MIN_LIFETIME <= expires_at <= now + DEFAULT_LIFETIME:
            raise InvalidRequestError(
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session "
                "creation.",
                param="expires_at",
            )
        if not line_items and mode != "setup":
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
        currency = prices[0]["currency"] if prices else currency
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
        total: int | None = sum(item["amount_total"] for item in items) if mode != "setup" else None
        if mode in ("payment", "setup") and customer_creation is None and customer is None:
            customer_creation = "if_required"
        session: StripeObject = {
            "id": session_id,
            "object": "checkout.session",
            "adaptive_pricing": {"enabled": False},
            "after_expiration": None,
            "allow_promotion_codes": allow_promotion_codes,
            "allowed_payment_method_types": allowed_payment_method_types,
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
            "excluded_payment_method_types": None,
            "expires_at": expires_at,
            "integration_identifier": None,
            "invoice": None,
            "invoice_creation": invoice_creation() if mode == "payment" else None,
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
            "payment_status": "no_payment_required" if mode == "setup" else "unpaid",
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
            "total_details": (
                None if mode == "setup" else {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
            ),
            "ui_mode": "hosted_page",
            "url": self.account.emulator.url_for(f"/checkout/pay/{session_id}"),
            "wallet_options": None,
            "_subscription_data": subscription_data or {},
            "_payment_intent_data": payment_intent_data or {},
            "_setup_intent_data": setup_intent_data or {},
            "_customer_update": customer_update or {},
        }
        if mode != "setup":
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


def _check_setup_mode(
    *,
    line_items: list[dict[str, Any]],
    currency: str | None,
    allowed_payment_method_types: list[str] | None,
    automatic_tax: bool,
    discounts: bool,
) -> None:
    """Setup mode saves a card and charges nothing: no line items, taxes or discounts; a ``currency`` is
    required unless ``allowed_payment_method_types`` is set (this API version has no
    ``payment_method_types``). The session's ``currency`` is then null, unless one is given."""
    if line_items:
        raise InvalidRequestError("You can not pass `line_items` in `setup` mode.", param="line_items")
    if currency is None and allowed_payment_method_types is None:
        raise InvalidRequestError(
            "`currency` is required in `setup` mode when `allowed_payment_method_types` is not set.",
            code="parameter_missing",
            param="currency",
        )
    if automatic_tax:
        raise InvalidRequestError(
            "You can not pass `automatic_tax` in `setup` mode.", param="automatic_tax[enabled]"
        )
    if discounts:
        raise InvalidRequestError("You can not pass `discounts` in `setup` mode.", param="discounts")
