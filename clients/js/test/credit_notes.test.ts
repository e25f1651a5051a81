/**
 * Credit notes through the client, on the live demo: a subscriber's one-off invoice made open at the Stripe
 * emulator (send_invoice), credited (what it owes lowered; the same create again with its idempotency key is the
 * first answer), listed and retrieved, then the credit note voided (at Stripe too), and a second void refused.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { ConflictError, type CreditNote } from "../src/index.js";
import { RUN, client, openInvoice, stripeGet } from "./helpers.js";

const tollgate = client();

async function creditNoteAtStripe(stripeCreditNoteId: string): Promise<Record<string, unknown>> {
  return stripeGet(`credit_notes/${encodeURIComponent(stripeCreditNoteId)}`);
}

test("an open invoice credited once, then the credit note voided, at Stripe too", async () => {
  const customer = `js-credit-notes-${RUN}`;
  // A one-off invoice of 15.00 at Stripe: send_invoice, so it stays open until paid.
  const { open, stripeInvoice } = await openInvoice(tollgate, customer);

  const note: CreditNote = await tollgate.creditNotes.create(
    open.id,
    { amount: 500, reason: "order_change", memo: "one seat less" },
    { idempotencyKey: `cn-${RUN}` },
  );
  assert.deepEqual(
    [note.invoice, note.customer, note.status, note.type, note.amount, note.pre_payment_amount],
    [open.id, customer, "issued", "pre_payment", 500, 500],
  );
  const again = await tollgate.creditNotes.create(
    open.id,
    { amount: 500, reason: "order_change", memo: "one seat less" },
    { idempotencyKey: `cn-${RUN}` },
  );
  assert.deepEqual(again, note); // the first answer, replayed
  assert.deepEqual(await tollgate.creditNotes.retrieve(note.id), note);
  const listed = await tollgate.creditNotes.list({ invoice: open.id });
  assert.deepEqual(
    listed.data.map((n) => n.id),
    [note.id],
  );
  const atStripe = await creditNoteAtStripe(note.stripe_credit_note_id);
  assert.deepEqual([atStripe.status, atStripe.amount], ["issued", 500]);

  const voided = await tollgate.creditNotes.void(note.id, { reason: "credited by mistake" });
  assert.deepEqual([voided.id, voided.status], [note.id, "void"]);
  assert.equal((await creditNoteAtStripe(note.stripe_credit_note_id)).status, "void");
  await assert.rejects(
    tollgate.creditNotes.void(note.id),
    (error: unknown) =>
      error instanceof ConflictError && error.status === 409 && error.code === "credit_note_not_voidable",
  );
});
