"""The customer's completion of the hosted page: the billing address, the email, paying (payment mode: a
PaymentIntent confirmed with the test card; subscription mode: the subscription, whose first invoice is paid
on-session; setup mode: a SetupIntent confirmed with the card, which it attaches to the customer), 3-D
Secure, and the session's ``complete`` state with its ``checkout.session.completed``."""

from __future__ import annotations

from typing import Any

from stripe_emulator.checkout.models.base import DEFAULT_EMAIL
from stripe_emulator.checkout.models.discounts import CheckoutDiscounts
from stripe_emulator.core.errors import CardError, InvalidRequestError
from stripe_emulator.core.store import StripeObject
from stripe_emulator.coupons.models import CouponsBackend
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.payments import cards
from stripe_emulator.payments.models import PaymentsBackend
from stripe_emulator.tax import session_taxes_apply, tax_location


class CheckoutCompletion(CheckoutDiscounts):
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
        elif session["mode"] == "setup":
            self._set_up(session, card, email)
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

    def checkout_session_tax_from(self, session_id: str, address: dict[str, Any] | None) -> StripeObject:
        """The billing country typed on the hosted page, before paying: with automatic tax the session is
        taxed for it, as Stripe's page recomputes its totals when the address changes, so the page can show
        the amounts before they are charged. Nothing else is saved (the customer's address only on
        payment)."""
        session = self.checkout_session_require(session_id)
        country = tax_location(address)
        if session["status"] == "open" and session["automatic_tax"]["enabled"] and country is not None:
            session["_tax_country"] = country
            session_taxes_apply(self.account, session, self.line_items_of(session_id))
        return session

    def checkout_session_authenticate(self, session_id: str, *, succeed: bool) -> StripeObject:
        """Answer the 3-D Secure challenge pending on the session's payment (or card setup)."""
        session = self.checkout_session_require(session_id)
        pending = self.pending_payment_intent(session)
        if pending is None:
            raise InvalidRequestError("This Checkout Session has no payment waiting for authentication.")
        payments = self.account.backend(PaymentsBackend)
        if session["mode"] == "setup":
            seti = payments.setup_intent_authenticate(pending, succeed=succeed)
            declined = payments.setup_intent_decline_error(seti)
        else:
            pi = payments.payment_intent_authenticate(pending, succeed=succeed)
            declined = payments.payment_intent_decline_error(pi)
        if declined is not None:
            raise declined
        return session

    def pending_payment_intent(self, session: StripeObject) -> str | None:
        """The PaymentIntent (setup mode: SetupIntent) waiting for 3-D Secure on an open session, if any."""
        if session["status"] != "open":
            return None
        if session["mode"] == "setup":
            seti = (
                self.store.get("setup_intent", session["setup_intent"]) if session["setup_intent"] else None
            )
            return seti["id"] if seti is not None and seti["status"] == "requires_action" else None
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

    def _set_up(self, session: StripeObject, card: cards.TestCard, email: str) -> None:
        """Setup mode: the session's SetupIntent (made on the first try, reused after a decline) is confirmed
        with the card; its success completes the session (see ``on_setup_intent_status``)."""
        payments = self.account.backend(PaymentsBackend)
        customer = session["customer"]
        if customer is None and session["customer_creation"] == "always":
            customer = self._ensure_customer(session, email)
        seti = self.store.get("setup_intent", session["setup_intent"]) if session["setup_intent"] else None
        if seti is None:
            intent_data = session["_setup_intent_data"]
            seti = payments.setup_intent_create(
                customer=customer,
                description=intent_data.get("description"),
                metadata=dict(intent_data.get("metadata") or {}),
                checkout_session=session["id"],
            )
            session["setup_intent"] = seti["id"]
        pm = payments.payment_method_create_from_card(card.number, billing_details={"email": email})
        seti = payments.setup_intent_confirm_internal(seti["id"], payment_method=pm["id"])
        declined = payments.setup_intent_decline_error(seti)
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
        elif session["mode"] == "subscription":
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
