"""What billing's handlers are told of one Stripe event. The inbox's stored event answers it (its rows stay the
inbox's): billing reads no table above it."""

from typing import Any, Protocol

from projects.models import Project


class StripeEventIn(Protocol):
    @property
    def account(self) -> str:
        """`platform`, or the id of the project whose own Stripe account sent the event."""

    @property
    def project(self) -> Project | None: ...

    @property
    def type(self) -> str: ...

    @property
    def stripe_created(self) -> int:
        """Stripe's `created` (Unix seconds): orders the events of one object."""

    @property
    def data_object(self) -> dict[str, Any]: ...

    def told_payment_intent(self, invoice_id: str) -> str:
        """The PaymentIntent that an `invoice_payment.*` event of the invoice, stored already, names; or ""."""
        ...
