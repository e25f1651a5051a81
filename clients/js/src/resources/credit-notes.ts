/** Credit notes of invoices: issued and voided at Stripe, mirrored by Tollgate. */

import type { PagePromise } from "../pagination.js";
import type { CreditNote, CreditNoteReason } from "../types.js";
import { type ListParams, Resource, type WriteOptions, path } from "./base.js";

/** One invoice line credited, by its index in the invoice's `lines`: by `quantity` or by `amount`, not both. */
export interface CreditNoteLineParams {
  invoice_line: number;
  quantity?: number;
  /** Minor units. */
  amount?: number;
}

/** What a credit note credits (`amount` or `lines`, minor units) and where what it gives back goes. */
export interface CreditNoteCreateParams {
  amount?: number;
  lines?: CreditNoteLineParams[];
  /** Given back to the card that paid. */
  refund_amount?: number;
  /** Credited to the customer's Stripe balance (their next invoices). */
  credit_amount?: number;
  /** Given back outside Stripe. */
  out_of_band_amount?: number;
  reason?: CreditNoteReason;
  /** Shown on the credit note. */
  memo?: string;
}

export class CreditNotes extends Resource {
  /**
   * Credits an open or paid invoice at Stripe. What it credits first lowers what the invoice still owes; the
   * rest must be given back exactly as `refund_amount` + `credit_amount` + `out_of_band_amount`. A draft, void or
   * uncollectible invoice is a `ConflictError` (`invoice_not_creditable`); amounts Stripe refuses are an
   * `InvalidRequestError` with its reason. Retried under one `idempotencyKey`, it is one credit note at Stripe.
   */
  create(invoiceId: string, params: CreditNoteCreateParams, options?: WriteOptions): Promise<CreditNote> {
    return this._post(path("/invoices/{}/credit_notes", invoiceId), params, options);
  }

  list(params: ListParams & { invoice?: string; customer?: string } = {}): PagePromise<CreditNote> {
    return this._list("/credit_notes", params);
  }

  retrieve(creditNoteId: string): Promise<CreditNote> {
    return this._get(path("/credit_notes/{}", creditNoteId));
  }

  /**
   * Voids an issued credit note at Stripe (final): the invoice owes again what it took off, a balance credit is
   * taken back. A void one, one that refunded money, or one whose invoice is no longer open is a `ConflictError`
   * (`credit_note_not_voidable`). `reason` is audited.
   */
  void(creditNoteId: string, params: { reason?: string } = {}, options?: WriteOptions): Promise<CreditNote> {
    return this._post(path("/credit_notes/{}/void", creditNoteId), params, options);
  }
}
