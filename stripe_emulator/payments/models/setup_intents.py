"""Setup intents: save a card for later without charging it. Create, update, confirm (the card decides:
success, a failed verification, or 3-D Secure), the customer's answer to a 3-D Secure challenge, cancel and
list. On success the card is attached to the intent's customer and counts as set up for off-session use.

A SetupIntent moves ``requires_payment_method`` → ``requires_confirmation`` → (``requires_action``) →
``succeeded`` | back to ``requires_payment_method`` with ``last_setup_error`` | ``canceled``. Other services
(Checkout's setup mode) follow outcomes through :attr:`SetupIntents.setup_status_listeners`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from stripe_emulator.core import ids
from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.params import in_range
from stripe_emulator.core.render import render
from stripe_emulator.core.store import StripeObject
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.payments import cards
from stripe_emulator.payments.cards import Decline
from stripe_emulator.payments.models.payment_intents import PaymentDeclined, PaymentIntents

if TYPE_CHECKING:
    from stripe_emulator.core.account import Account

SETUP_OPEN_STATUSES = ("requires_payment_method", "requires_confirmation", "requires_action")
SetupListener = Callable[["Account", StripeObject, str], None]


class SetupIntents(PaymentIntents):
    # ``listener(account, setup_intent, previous_status)`` after every status change and its events.
    setup_status_listeners: ClassVar[list[SetupListener]] = []

    def setup_intent_require(self, seti_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("setup_intent", seti_id, param=param)

    def setup_intent_create(
        self,
        *,
        customer: str | None = None,
        payment_method: str | None = None,
        usage: str = "off_session",
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        allowed_payment_method_types: list[str] | None = None,
        confirm: bool = False,
        return_url: str | None = None,
        checkout_session: str | None = None,
    ) -> StripeObject:
        """A new intent (``requires_payment_method``, or ``requires_confirmation`` with a payment method),
        confirmed at once with ``confirm``. Validated before anything is stored."""
        if customer is not None:
            self.account.backend(CustomersBackend).customer_require(customer, param="customer")
        if return_url is not None and not confirm:
            raise InvalidRequestError(
                "You can only pass `return_url` when `confirm` is true.", param="return_url"
            )
        if confirm and payment_method is None:
            raise InvalidRequestError(
                "You cannot confirm this SetupIntent because it's missing a payment method. Update the "
                "SetupIntent with a payment method and then confirm it again.",
                code="setup_intent_unexpected_state",
                param="payment_method",
            )
        pm = self.payment_method_resolve(payment_method) if payment_method is not None else None
        if pm is not None:
            self._check_pm_customer(pm, customer)
        seti_id = ids.id_for("setup_intent")
        automatic = None if allowed_payment_method_types else {"allow_redirects": "always", "enabled": True}
        seti: StripeObject = {
            "id": seti_id,
            "object": "setup_intent",
            "allowed_payment_method_types": allowed_payment_method_types,
            "application": None,
            "attach_to_self": False,
            "automatic_payment_methods": automatic,
            "cancellation_reason": None,
            "client_secret": f"{seti_id}_secret_{ids.random_token(32)}",
            "created": self.now(),
            "customer": customer,
            "customer_account": None,
            "description": description,
            "excluded_payment_method_types": None,
            "flow_directions": None,
            "last_setup_error": None,
            "latest_attempt": None,
            "livemode": False,
            "managed_payments": {"enabled": False},
            "mandate": None,
            "metadata": metadata or {},
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": pm["id"] if pm is not None else None,
            "payment_method_configuration_details": None,
            "payment_method_options": {
                "card": {"mandate_options": None, "network": None, "request_three_d_secure": "automatic"}
            },
            "payment_method_types": ["card"],
            "single_use_mandate": None,
            "status": "requires_confirmation" if pm is not None else "requires_payment_method",
            "usage": usage,
            "_return_url": return_url,
            "_checkout_session": checkout_session,
        }
        self.store.insert(seti)
        self.emit("setup_intent.created", seti)
        if confirm:
            self.setup_intent_confirm_internal(seti_id)
        return seti

    def setup_intent_update(self, seti_id: str, changes: dict[str, Any]) -> StripeObject:
        """Validated field values (metadata already merged). Metadata and description change in any status;
        the rest only while the intent is open, and a new payment method makes it ``requires_confirmation``.
        No event, as with Stripe."""
        seti = self.setup_intent_require(seti_id)
        if seti["status"] not in SETUP_OPEN_STATUSES:
            for key in sorted(changes.keys() - {"metadata", "description"}):
                raise InvalidRequestError(
                    f"You cannot update {key} on a SetupIntent with status {seti['status']}.",
                    code="setup_intent_unexpected_state",
                    param=key,
                )
        changes = self._intent_changes_resolved(changes, seti["customer"])
        previous = seti["status"]
        seti.update(changes)
        if "allowed_payment_method_types" in changes:
            allowed = changes["allowed_payment_method_types"]
            seti["automatic_payment_methods"] = (
                None if allowed else {"allow_redirects": "always", "enabled": True}
            )
        if "payment_method" in changes:
            seti["status"] = "requires_confirmation" if seti["payment_method"] else "requires_payment_method"
            seti["next_action"] = None
        if seti["status"] != previous:
            self._notify_setup(seti, previous)
        return seti

    def setup_intent_confirm_internal(
        self,
        seti_id: str,
        *,
        payment_method: str | None = None,
        return_url: str | None = None,
        allowed_payment_method_types: list[str] | None = None,
    ) -> StripeObject:
        """Confirm: never raises for a failed verification (see ``last_setup_error`` and
        :meth:`setup_intent_decline_error`); raises for what Stripe refuses outright.
        ``allowed_payment_method_types`` (validated; ``None`` when not given) replaces the intent's and turns
        ``automatic_payment_methods`` off, as an update would."""
        seti = self.setup_intent_require(seti_id)
        if seti["status"] not in SETUP_OPEN_STATUSES:
            raise InvalidRequestError(
                f"This SetupIntent's status is {seti['status']}, but it must be one of "
                "requires_payment_method, requires_confirmation, or requires_action to be confirmed.",
                code="setup_intent_unexpected_state",
            )
        pm_id = payment_method or seti["payment_method"]
        if pm_id is None:
            raise InvalidRequestError(
                "You cannot confirm this SetupIntent because it's missing a payment method. Update the "
                "SetupIntent with a payment method and then confirm it again.",
                code="setup_intent_unexpected_state",
                param="payment_method",
            )
        pm = self.payment_method_resolve(pm_id)
        self._check_pm_customer(pm, seti["customer"])
        card = cards.lookup(pm["_number"])
        seti["payment_method"] = pm["id"]
        if allowed_payment_method_types is not None:
            seti.update(
                allowed_payment_method_types=allowed_payment_method_types, automatic_payment_methods=None
            )
        if return_url is not None:
            seti["_return_url"] = return_url
        if card.decline is not None and not card.attach_ok:
            self._setup_failed(seti, pm, card.decline, card_error=True)
            return seti
        if card.three_d_secure is not None:
            # Both 3-D Secure test cards ask for authentication when they are set up.
            previous = seti["status"]
            seti.update(status="requires_action", last_setup_error=None, next_action=self._setup_action(seti))
            self.emit("setup_intent.requires_action", seti)
            self._notify_setup(seti, previous)
            return seti
        self._setup_succeeded(seti, pm)
        return seti

    def setup_intent_authenticate(self, seti_id: str, *, succeed: bool = True) -> StripeObject:
        """The customer completes (or fails) the 3-D Secure challenge of a ``requires_action`` intent."""
        seti = self.setup_intent_require(seti_id)
        if seti["status"] != "requires_action":
            raise InvalidRequestError(
                f"This SetupIntent's status is {seti['status']}; only a SetupIntent that requires_action "
                "can be authenticated.",
                code="setup_intent_unexpected_state",
            )
        pm = self.payment_method_require(seti["payment_method"], param="payment_method")
        if succeed:
            self._setup_succeeded(seti, pm)
        else:
            self._setup_failed(seti, pm, cards.AUTHENTICATION_FAILED, card_error=False)
        return seti

    def setup_intent_cancel(
        self, seti_id: str, *, cancellation_reason: str | None = None, by_checkout: bool = False
    ) -> StripeObject:
        """``by_checkout``: the session's own expiry; the API may not cancel a Checkout Session's intent."""
        seti = self.setup_intent_require(seti_id)
        if seti.get("_checkout_session") is not None and not by_checkout:
            raise InvalidRequestError(
                "You can't cancel the SetupIntent for a Checkout Session. Expire the Checkout Session "
                "instead.",
                code="setup_intent_unexpected_state",
            )
        if seti["status"] not in SETUP_OPEN_STATUSES:
            raise InvalidRequestError(
                f"You cannot cancel this SetupIntent because it has a status of {seti['status']}. Only a "
                "SetupIntent with one of the following statuses may be canceled: "
                + ", ".join(SETUP_OPEN_STATUSES)
                + ".",
                code="setup_intent_unexpected_state",
            )
        previous = seti["status"]
        seti.update(status="canceled", cancellation_reason=cancellation_reason, next_action=None)
        self.emit("setup_intent.canceled", seti)
        self._notify_setup(seti, previous)
        return seti

    def setup_intent_list(
        self,
        *,
        customer: str | None = None,
        payment_method: str | None = None,
        created: dict[str, int] | None = None,
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "setup_intent",
            lambda seti: (
                (customer is None or seti["customer"] == customer)
                and (payment_method is None or seti["payment_method"] == payment_method)
                and in_range(seti["created"], created)
            ),
        )

    def setup_intent_decline_error(self, seti: StripeObject) -> PaymentDeclined | None:
        """The 402 a confirming call answers with when ``seti``'s card (or its 3-D Secure challenge) has just
        failed, else ``None``."""
        error = seti["last_setup_error"]
        if seti["status"] != "requires_payment_method" or error is None:
            return None
        extra: dict[str, Any] = {"setup_intent": render(self.account, seti)}
        if error.get("payment_method") is not None:
            extra["payment_method"] = error["payment_method"]
        return PaymentDeclined(error, extra)

    # -- outcomes ------------------------------------------------------------------------------------------

    def _setup_succeeded(self, seti: StripeObject, pm: StripeObject) -> None:
        previous = seti["status"]
        if seti["customer"] is not None and pm["customer"] is None:
            pm["customer"] = seti["customer"]
            self.emit("payment_method.attached", pm)
        pm["_setup"] = True
        seti.update(status="succeeded", last_setup_error=None, next_action=None)
        self.emit("setup_intent.succeeded", seti)
        self._notify_setup(seti, previous)

    def _setup_failed(
        self, seti: StripeObject, pm: StripeObject, decline: Decline, *, card_error: bool
    ) -> None:
        previous = seti["status"]
        code = decline.code if card_error else "setup_intent_authentication_failure"
        error: dict[str, Any] = {
            "type": "card_error" if card_error else "invalid_request_error",
            "code": code,
            "doc_url": f"https://stripe.com/docs/error-codes/{code}",
            "message": decline.message,
            "payment_method": render(self.account, pm),
        }
        if card_error:
            error["decline_code"] = decline.decline_code
        seti.update(
            status="requires_payment_method", payment_method=None, next_action=None, last_setup_error=error
        )
        self.emit("setup_intent.setup_failed", seti)
        self._notify_setup(seti, previous)

    def _setup_action(self, seti: StripeObject) -> dict[str, Any]:
        challenge = self.account.emulator.url_for(f"/_emulator/setup_intents/{seti['id']}/authenticate")
        if seti.get("_return_url"):
            return {
                "type": "redirect_to_url",
                "redirect_to_url": {"return_url": seti["_return_url"], "url": challenge},
            }
        return {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": challenge},
        }

    def _notify_setup(self, seti: StripeObject, previous: str) -> None:
        for listener in type(self).setup_status_listeners:
            listener(self.account, seti, previous)
