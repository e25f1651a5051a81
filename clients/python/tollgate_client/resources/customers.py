"""Customers: your users, known by your own id (`external_id`)."""

from __future__ import annotations

from typing import Any

from tollgate_client.pagination import Page
from tollgate_client.resources._base import Resource, compact, path
from tollgate_client.types import Customer, CustomerErasure, CustomerExport


class Customers(Resource):
    def create(
        self,
        *,
        external_id: str,
        email: str | None = None,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Customer:
        """Creates the customer, or updates the one with this `external_id` (an upsert)."""
        body = compact(external_id=external_id, email=email, name=name, metadata=metadata)
        return self._post(Customer, "/customers", body, idempotency_key=idempotency_key)

    def retrieve(self, external_id: str) -> Customer:
        return self._get(Customer, path("/customers/{}", external_id))

    def list(
        self, *, email: str | None = None, limit: int | None = None, starting_after: str | None = None
    ) -> Page[Customer]:
        params = {"email": email, "limit": limit, "starting_after": starting_after}
        return self._list(Customer, "/customers", params)

    def export(self, external_id: str) -> CustomerExport:
        """Every row Tollgate keeps keyed to the customer, in one document grouped by kind (a privacy request's
        access copy; the read is audited)."""
        return self._get(CustomerExport, path("/customers/{}/export", external_id))

    def erase(self, external_id: str, *, reason: str, idempotency_key: str | None = None) -> CustomerErasure:
        """Erases the person for good (their data here and their Stripe customer), keeping the money records.
        Refused (`ConflictError`, code `customer_has_live_subscriptions`) while a subscription is live. Afterwards
        the customer is not found (404)."""
        return self._post(
            CustomerErasure,
            path("/customers/{}/erase", external_id),
            {"reason": reason},
            idempotency_key=idempotency_key,
        )
