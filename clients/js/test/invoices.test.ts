/**
 * Correcting an invoice through the client, on the live demo: a subscriber's one-off invoice made open at the
 * Stripe emulator (send_invoice), mirrored, marked uncollectible, then voided (at Stripe too; the same void
 * again with its idempotency key is the first answer), and what can no longer be done refused with its code.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { ConflictError, type Invoice } from "../src/index.js";
import { CANCEL_URL, OK_URL, RUN, client, demo, eventually, payCheckout, stripeCall } from "./helpers.js";

const tollgate = client();
/** The demo project's Stripe account: the platform's key of `config/settings/local.py` (`make demo`). */
const STRIPE_KEY = process.env.TOLLGATE_STRIPE_SECRET_KEY ?? "sk_test_tollgate_local_demo";

async function statusAtStripe(stripeInvoiceId: string): Promise<unknown> {
  const response = await fetch(`${demo.emulatorUrl}/v1/invoices/${encodeURIComponent(stripeInvoiceId)}`, {
    headers: { Authorization: `Bearer ${STRIPE_KEY}` },
  });
  assert.equal(response.status, 200);
  return ((await response.json()) as { status: unknown }).status;
}

test("an open invoice marked uncollectible, then voided once, at Stripe too", async () => {
  const customer = `js-invoices-${RUN}`;
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
