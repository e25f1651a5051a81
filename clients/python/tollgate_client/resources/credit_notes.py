"""Credit notes of invoices: issued and voided at Stripe, mirrored by Tollgate."""

from __future__ import annotations

from collections.abc import Sequence

from tollgate_client.pagination import Page
from tollgate_client.params import CreditNoteLineItem
from tollgate_client.resources._base import Resource, compact, path
from tollgate_client.types import CreditNote


class CreditNotes(Resource):
    def create(
        self,
        invoice_id: str,
        *,
        amount: int | None = None,
        lines: Sequence[CreditNoteLineItem] | None = None,
        refund_amount: int | None = None,
        credit_amount: int | None = None,
        out_of_band_amount: int | None = None,
        reason: str | None = None,
        memo: str | None = None,
        idempotency_key: str | None = None,
    ) -> CreditNote:
        """Credits an open or paid invoice at Stripe, of an `amount` or of invoice `lines` (minor units). What it
        credits first lowers what the invoice still owes; the rest must be given back exactly as `refund_amount`
        (to the card) + `credit_amount` (the customer's Stripe balance) + `out_of_band_amount` (outside Stripe).
        `reason`: `duplicate`, `fraudulent`, `order_change` or `product_unsatisfactory`; `memo` is shown on the
        credit note. A draft, void or uncollectible invoice is a `ConflictError` (`invoice_not_creditable`);
        amounts Stripe refuses are an `InvalidRequestError` with its reason. Retried under one
        `idempotency_key`, it is one credit note at Stripe."""
        body = compact(
            amount=amount,
            lines=[dict(line) for line in lines] if lines is not None else None,
            refund_amount=refund_amount,
            credit_amount=credit_amount,
            out_of_band_amount=out_of_band_amount,
            reason=reason,
            memo=memo,
        )
        url = path("/invoices/{}/credit_notes", invoice_id)
        return self._post(CreditNote, url, body, idempotency_key=idempotency_key)

    def list(
        self,
        *,
        invoice: str | None = None,
        customer: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> Page[CreditNote]:
        params = {"invoice": invoice, "customer": customer, "limit": limit, "starting_after": starting_after}
        return self._list(CreditNote, "/credit_notes", params)

    def retrieve(self, credit_note_id: str) -> CreditNote:
        return self._get(CreditNote, path("/credit_notes/{}", credit_note_id))

    def void(
        self, credit_note_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> CreditNote:
        """Voids an issued credit note at Stripe (final): the invoice owes again what it took off, a balance
        credit is taken back. A void one, one that refunded money, or one whose invoice is no longer open is a
        `ConflictError` (`credit_note_not_voidable`). `reason` is audited."""
        url = path("/credit_notes/{}/void", credit_note_id)
        return self._post(CreditNote, url, compact(reason=reason), idempotency_key=idempotency_key)
