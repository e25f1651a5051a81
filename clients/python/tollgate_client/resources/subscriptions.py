"""Subscriptions (Stripe's, mirrored) and their invoices."""

from __future__ import annotations

from tollgate_client.pagination import Page
from tollgate_client.resources._base import Resource, compact, path
from tollgate_client.types import Invoice, Subscription


class Subscriptions(Resource):
    def retrieve(self, subscription_id: str) -> Subscription:
        return self._get(Subscription, path("/subscriptions/{}", subscription_id))

    def list(
        self,
        *,
        customer: str | None = None,
        status: str | None = None,
        product: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> Page[Subscription]:
        params = {
            "customer": customer,
            "status": status,
            "product": product,
            "limit": limit,
            "starting_after": starting_after,
        }
        return self._list(Subscription, "/subscriptions", params)

    def update(
        self,
        subscription_id: str,
        *,
        price: str | None = None,
        quantity: int | None = None,
        proration_behavior: str | None = None,
        payment_behavior: str | None = None,
        idempotency_key: str | None = None,
    ) -> Subscription:
        """Change plan or quantity. `proration_behavior`: `create_prorations` | `none` | `always_invoice`.

        Upgrades default to `payment_behavior="pending_if_incomplete"` (a failed payment changes nothing);
        with `error_if_incomplete` a declined card raises `CardError`.
        """
        body = compact(
            price=price,
            quantity=quantity,
            proration_behavior=proration_behavior,
            payment_behavior=payment_behavior,
        )
        url = path("/subscriptions/{}", subscription_id)
        return self._patch(Subscription, url, body, idempotency_key=idempotency_key)

    def cancel(
        self, subscription_id: str, *, at_period_end: bool | None = None, idempotency_key: str | None = None
    ) -> Subscription:
        url = path("/subscriptions/{}/cancel", subscription_id)
        return self._post(
            Subscription, url, compact(at_period_end=at_period_end), idempotency_key=idempotency_key
        )

    def resume(self, subscription_id: str, *, idempotency_key: str | None = None) -> Subscription:
        """Undoes a scheduled cancellation, or resumes a paused subscription."""
        url = path("/subscriptions/{}/resume", subscription_id)
        return self._post(Subscription, url, idempotency_key=idempotency_key)


class Invoices(Resource):
    def retrieve(self, invoice_id: str) -> Invoice:
        return self._get(Invoice, path("/invoices/{}", invoice_id))

    def list(
        self,
        *,
        customer: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> Page[Invoice]:
        params = {"customer": customer, "status": status, "limit": limit, "starting_after": starting_after}
        return self._list(Invoice, "/invoices", params)
