"""Payments (the universal endpoint: checkout or intent flow, any purchase) and the billing portal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tollgate_client.pagination import Page
from tollgate_client.params import LineItem
from tollgate_client.resources._base import Resource, compact, path
from tollgate_client.types import Payment, PaymentStatusSummary, PortalEligibility, PortalSession


class Payments(Resource):
    def create(
        self,
        *,
        customer: str,
        price: str | None = None,
        quantity: int | None = None,
        items: Sequence[LineItem] | None = None,
        amount: int | None = None,
        currency: str | None = None,
        description: str | None = None,
        type: str | None = None,
        flow: str | None = None,
        reference: str | None = None,
        success_url: str | None = None,
        cancel_url: str | None = None,
        trial_days: int | None = None,
        metadata: dict[str, Any] | None = None,
        automatic_tax: bool | None = None,
        promotion_code: str | None = None,
        allow_promotion_codes: bool | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """One price, several `items`, or an `amount` + `currency` (+ `description`).

        `flow="checkout"` answers a `checkout_url`; `flow="intent"` a `client_secret` and `publishable_key`.
        `reference` is your own order id: the same reference again returns the same payment, whatever its
        status; with a different body it is a `ConflictError` (`reference_conflict`). A `promotion_code` (or
        `allow_promotion_codes=True`, the field on Stripe's page) needs the checkout flow: `amount` is then the
        discounted total and `amount_discount` what the code took off. `allow_promotion_codes` also needs the
        project's own Stripe account (`promotion_codes_need_own_account` on the platform's shared one).
        """
        body = compact(
            customer=customer,
            price=price,
            quantity=quantity,
            items=list(items) if items is not None else None,
            amount=amount,
            currency=currency,
            description=description,
            type=type,
            flow=flow,
            reference=reference,
            success_url=success_url,
            cancel_url=cancel_url,
            trial_days=trial_days,
            metadata=metadata,
            automatic_tax=automatic_tax,
            promotion_code=promotion_code,
            allow_promotion_codes=allow_promotion_codes,
        )
        return self._post(Payment, "/payments", body, idempotency_key=idempotency_key)

    def retrieve(self, payment_id: str) -> Payment:
        return self._get(Payment, path("/payments/{}", payment_id))

    def status(self, payment_id: str) -> PaymentStatusSummary:
        """The light read for pollers: Tollgate's record (`status`, `amount_refunded`), kept current by Stripe's
        events, without a call to Stripe (`retrieve` pulls an open payment's state from Stripe first)."""
        return self._get(PaymentStatusSummary, path("/payments/{}/status", payment_id))

    def list(
        self,
        *,
        customer: str | None = None,
        status: str | None = None,
        reference: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> Page[Payment]:
        params = {
            "customer": customer,
            "status": status,
            "reference": reference,
            "limit": limit,
            "starting_after": starting_after,
        }
        return self._list(Payment, "/payments", params)

    def refund(
        self,
        payment_id: str,
        *,
        amount: int | None = None,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Refunds all that is left, or `amount` of it."""
        url = path("/payments/{}/refund", payment_id)
        return self._post(
            Payment, url, compact(amount=amount, reason=reason), idempotency_key=idempotency_key
        )

    def cancel(self, payment_id: str, *, idempotency_key: str | None = None) -> Payment:
        """Expires a pending payment now (at Stripe first)."""
        return self._post(Payment, path("/payments/{}/cancel", payment_id), idempotency_key=idempotency_key)


class Portal(Resource):
    def create(self, *, customer: str, return_url: str, idempotency_key: str | None = None) -> PortalSession:
        """A billing-portal session: send the customer to its `url`."""
        body = {"customer": customer, "return_url": return_url}
        return self._post(PortalSession, "/portal", body, idempotency_key=idempotency_key)

    def eligibility(self, *, customer: str) -> PortalEligibility:
        """Whether the customer has anything to manage in the portal (and if not, why)."""
        return self._get(PortalEligibility, "/portal/eligibility", {"customer": customer})
