/**
 * Credit notes through the client, on the live demo: a subscriber's one-off invoice made open at the Stripe
 * emulator (send_invoice), credited (what it owes lowered; the same create again with its idempotency key is the
 * first answer), listed and retrieved, then the credit note voided (at Stripe too), and a second void refused.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { ConflictError, type CreditNote, type Invoice } from "../src/index.js";
import { CANCEL_URL, OK_URL, RUN, client, demo, eventually, payCheckout, stripeCall } from "./helpers.js";

const tollgate = client();
/** The demo project's Stripe account: the platform's key of `config/settings/local.py` (`make demo`). */
const STRIPE_KEY = process.env.TOLLGATE_STRIPE_SECRET_KEY ?? "sk_test_tollgate_local_demo";

async function creditNoteAtStripe(stripeCreditNoteId: string): Promise<{ status: unknown; amount: unknown }> {
  const response = await fetch(`${demo.emulatorUrl}/v1/credit_notes/${encodeURIComponent(stripeCreditNoteId)}`, {
    headers: { Authorization: `Bearer ${STRIPE_KEY}` },
  });
  assert.equal(response.status, 200);
  return (await response.json()) as { status: unknown; amount: unknown };
}

test("an open invoice credited once, then the credit note voided, at Stripe too", async () => {
  const customer = `js-credit-notes-${RUN}`;
  const session = await tollgate.checkout.subscription({
    customer,
    price: "pro-monthly",
    success_url: OK_URL,
    cancel_url: CANCEL_URL,
  });
  assert.ok(session.stripe_session_id, "the session has its Stripe session");
  await payCheckout(session.stripe_session_id);
  await eventually(async () => {
    const current = await tollgate.payments.status(session.payment);
    return current.status === "succeeded" ? current : undefined;
  }, "the payment to succeed");
  const stripeCustomer = (await tollgate.customers.retrieve(customer)).stripe_customer_id;
  assert.match(stripeCustomer ?? "", /^cus_/);

  // A one-off invoice of 15.00 at Stripe: send_invoice, so it stays open until paid.
  const draft = await stripeCall(STRIPE_KEY, "invoices", {
    customer: stripeCustomer ?? "",
    collection_method: "send_invoice",
    days_until_due: "30",
  });
  const stripeInvoice = draft.id as string;
  await stripeCall(STRIPE_KEY, "invoiceitems", {
    customer: stripeCustomer ?? "",
    invoice: stripeInvoice,
    amount: "1500",
    currency: "usd",
  });
  await stripeCall(STRIPE_KEY, `invoices/${stripeInvoice}/finalize`);
  const open: Invoice = await eventually(async () => {
    const listed = await tollgate.invoices.list({ customer, status: "open" });
    return listed.data.find((i) => i.stripe_invoice_id === stripeInvoice);
  }, "the open invoice to be mirrored");

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
