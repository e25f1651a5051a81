"""The shared base of :class:`~stripe_emulator.payments.models.PaymentsBackend`: the lookups every part of
payments uses, and the PaymentIntent status listeners through which other services learn of outcomes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.errors import ResourceMissing
from stripe_emulator.core.store import StripeObject

if TYPE_CHECKING:
    from stripe_emulator.core.account import Account

StatusListener = Callable[["Account", StripeObject, str], None]


class PaymentsBase(BaseBackend):
    status_listeners: ClassVar[list[StatusListener]] = []
    # Run after every ``status_listeners`` entry: Checkout completes a session only once the invoice a
    # payment belongs to has reacted, so ``checkout.session.completed`` comes last.
    late_status_listeners: ClassVar[list[StatusListener]] = []

    # -- lookups -------------------------------------------------------------------------------------------

    def payment_method_require(self, pm_id: str, *, param: str | None = "id") -> StripeObject:
        pm = self.store.get("payment_method", pm_id)
        if pm is None:
            raise ResourceMissing("PaymentMethod", pm_id, param=param)
        return pm

    def payment_intent_require(self, pi_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("payment_intent", pi_id, param=param)

    def charge_require(self, charge_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("charge", charge_id, param=param)

    # -- status listeners ----------------------------------------------------------------------------------

    def _notify(self, pi: StripeObject, previous: str) -> None:
        for listener in [*type(self).status_listeners, *type(self).late_status_listeners]:
            listener(self.account, pi, previous)
