"""Stripe reads of one account for a reconciliation run: listing pages and single objects, each read paced under
the account's read rate limit (`stripe_gateway.read_limit`), and Stripe's clock as of the read.
"""

from collections.abc import Iterator
from typing import Any

from stripe_gateway.gateway import StripeGateway
from stripe_gateway.read_limit import stripe_read_wait


class _Reader:
    """Stripe reads of one account, paced under its read rate limit."""

    def __init__(self, account: str, gateway: StripeGateway) -> None:
        self.account = account
        self.gateway = gateway

    def pace(self) -> None:
        stripe_read_wait(self.account)

    def each(self, resource: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self.pace()  # the first page; the SDK pages on, each page one more read
        for count, item in enumerate(self.gateway.list_all(resource, {"limit": 100, **params}), start=1):
            if count % 100 == 0:
                self.pace()
            yield item

    def checkout_session(self, session_id: str) -> dict[str, Any]:
        self.pace()
        return self.gateway.checkout_session_retrieve(session_id)

    def payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        self.pace()
        return self.gateway.payment_intent_retrieve(payment_intent_id)

    def invoice_payments(self, **query: str) -> list[dict[str, Any]]:
        self.pace()
        return self.gateway.invoice_payments_list(**query)

    def stripe_now(self) -> int:
        """Stripe's time for the account's objects that are on no test clock."""
        self.pace()
        return self.gateway.clock()

    def test_clocks_now(self) -> dict[str, int]:
        """Each of the account's test clocks with its time (test mode)."""
        self.pace()
        return self.gateway.test_clocks_now()
