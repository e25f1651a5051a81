"""The shared base of :class:`~stripe_emulator.checkout.models.CheckoutBackend`: constants, the success
redirect, reading sessions and their line items (expired first when ``expires_at`` has passed), and expiry."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.params import in_range
from stripe_emulator.core.store import StripeObject
from stripe_emulator.payments.models import PaymentsBackend

DEFAULT_LIFETIME = 24 * 3600
MAX_RECURRING_LINE_ITEMS = 20  # per Checkout Session in `subscription` mode (and 20 one-time ones)
MIN_LIFETIME = 30 * 60
DEFAULT_EMAIL = "customer@example.com"
TEMPLATE = "{CHECKOUT_SESSION_ID}"


def success_redirect(session: StripeObject) -> str | None:
    url = session["success_url"]
    return url.replace(TEMPLATE, session["id"]) if url else None


class CheckoutBase(BaseBackend):
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
        seti = self.store.get("setup_intent", session["setup_intent"]) if session["setup_intent"] else None
        if seti is not None and seti["status"] in (
            "requires_payment_method",
            "requires_confirmation",
            "requires_action",
        ):
            payments.setup_intent_cancel(seti["id"], cancellation_reason="abandoned", by_checkout=True)
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


def invoice_creation() -> dict[str, Any]:
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
