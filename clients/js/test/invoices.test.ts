/**
 * Correcting an invoice through the client, on the live demo: a subscriber's one-off invoice made open at the
 * Stripe emulator (send_invoice), mirrored, marked uncollectible, then voided (at Stripe too; the same void
 * again with its idempotency key is the first answer), and what can no longer be done refused with its code.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { ConflictError } from "../src/index.js";
import { RUN, client, openInvoice, stripeGet } from "./helpers.js";

const tollgate = client();

async function statusAtStripe(stripeInvoiceId: string): Promise<unknown> {
  return (await stripeGet(`invoices/${encodeURIComponent(stripeInvoiceId)}`)).status;
}

test("an open invoice marked uncollectible, then voided once, at Stripe too", async () => {
  const customer = `js-invoices-${RUN}`;
  // A one-off invoice of 15.00 at Stripe: send_invoice, so it stays open until paid.
  const { open, stripeInvoice } = await openInvoice(tollgate, customer);
  assert.deepEqual([open.status, open.total, open.amount_remaining, open.currency], ["open", 1500, 1500, "usd"]);
  assert.equal((await tollgate.invoices.retrieve(open.id)).status, "open");

  const marked = await tollgate.invoices.markUncollectible(open.id, { reason: "customer went away" });
  assert.deepEqual([marked.id, marked.status, marked.amount_remaining], [open.id, "uncollectible", 1500]);
  assert.equal(await statusAtStripe(stripeInvoice), "uncollectible");
  await assert.rejects(
    tollgate.invoices.markUncollectible(open.id),
    (error: unknown) => error instanceof ConflictError && error.status === 409 && error.code === "invoice_not_open",
  );

  const voided = await tollgate.invoices.void(open.id, { reason: "billed by mistake" }, { idempotencyKey: `void-${RUN}` });
  assert.deepEqual([voided.id, voided.status, voided.total], [open.id, "void", 1500]);
  const again = await tollgate.invoices.void(open.id, { reason: "billed by mistake" }, { idempotencyKey: `void-${RUN}` });
  assert.deepEqual(again, voided); // the first answer, replayed
  assert.equal(await statusAtStripe(stripeInvoice), "void");
  assert.equal((await tollgate.invoices.retrieve(open.id)).status, "void");

  // A new void is refused: a void invoice is final.
  await assert.rejects(
    tollgate.invoices.void(open.id),
    (error: unknown) => error instanceof ConflictError && error.status === 409 && error.code === "invoice_not_voidable",
  );
});
