/**
 * Editing a draft invoice's lines through the client. Without a server (a fake `fetch`): the URL, method, body and
 * Idempotency-Key of `addLine`, `updateLine` and `removeLine`. On the live demo: a subscriber's draft invoice made
 * at the Stripe emulator (not finalized), mirrored, given an invoice item and a credit line, one changed and one
 * removed (the invoice's total and lines exact each time, and at Stripe too); the same add again with its
 * idempotency key is the first answer; what cannot be done is refused with its code.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { ConflictError, InvalidRequestError, type Invoice, NotFoundError, Tollgate } from "../src/index.js";
import { CANCEL_URL, OK_URL, RUN, STRIPE_KEY, client, eventually, payCheckout, stripeCall, stripeGet } from "./helpers.js";

interface Call {
  method: string;
  url: string;
  body: string | null;
  idempotencyKey: string | null;
}

/** A client whose `fetch` records each request and answers the same invoice. */
function offline(): { tollgate: Tollgate; calls: Call[] } {
  const calls: Call[] = [];
  const fetchImpl: typeof fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    calls.push({
      method: init?.method ?? "GET",
      url: String(input),
      body: typeof init?.body === "string" ? init.body : null,
      idempotencyKey: headers.get("idempotency-key"),
    });
    return new Response(JSON.stringify({ id: "inv_1", object: "invoice", status: "draft", lines: [] }), {
      status: 200,
      headers: { "Content-Type": "application/json" },
    });
  };
  return { tollgate: new Tollgate({ apiKey: "tg_sk_test", baseUrl: "http://tollgate.test", fetch: fetchImpl }), calls };
}

test("addLine, updateLine and removeLine: their requests", async () => {
  const { tollgate, calls } = offline();

  const added = await tollgate.invoices.addLine(
    "inv_1",
    { amount: -500, description: "Loyalty credit", reason: "agreed" },
    { idempotencyKey: "line-1" },
  );
  await tollgate.invoices.addLine("inv/1", { amount: 2500, description: "Onboarding" });
  await tollgate.invoices.updateLine("inv_1", "il_1", { amount: 3000 }, { idempotencyKey: "line-2" });
  await tollgate.invoices.updateLine("inv_1", "il/2", { description: "Onboarding (2 h)", reason: "typo" });
  await tollgate.invoices.removeLine("inv_1", "il_1", { reason: "added by mistake" }, { idempotencyKey: "line-3" });
  await tollgate.invoices.removeLine("inv_1", "il_2");

  assert.equal(added.id, "inv_1");
  assert.deepEqual(
    calls.map((c) => [c.method, c.url, c.body]),
    [
      ["POST", "http://tollgate.test/api/v1/invoices/inv_1/lines", '{"amount":-500,"description":"Loyalty credit","reason":"agreed"}'],
      ["POST", "http://tollgate.test/api/v1/invoices/inv%2F1/lines", '{"amount":2500,"description":"Onboarding"}'],
      ["POST", "http://tollgate.test/api/v1/invoices/inv_1/lines/il_1", '{"amount":3000}'],
      ["POST", "http://tollgate.test/api/v1/invoices/inv_1/lines/il%2F2", '{"description":"Onboarding (2 h)","reason":"typo"}'],
      ["DELETE", "http://tollgate.test/api/v1/invoices/inv_1/lines/il_1", '{"reason":"added by mistake"}'],
      ["DELETE", "http://tollgate.test/api/v1/invoices/inv_1/lines/il_2", null],
    ],
  );
  const keys = calls.map((c) => c.idempotencyKey);
  assert.deepEqual([keys[0], keys[2], keys[4]], ["line-1", "line-2", "line-3"]);
  for (const generated of [keys[1], keys[3], keys[5]]) {
    assert.match(generated ?? "", /^[0-9a-f-]{36}$/); // every write carries a key, a new one by default
  }
});

/** `customer` subscribes to pro-monthly (paid at Checkout), then its account's owner makes it an invoice at Stripe,
 * left a draft (send_invoice, not finalized); answered once Tollgate has mirrored it. */
async function draftInvoice(tollgate: Tollgate, customer: string): Promise<{ draft: Invoice; stripeInvoice: string }> {
  const session = await tollgate.checkout.subscription({
    customer,
    price: "pro-monthly",
    success_url: OK_URL,
    cancel_url: CANCEL_URL,
  });
  assert.ok(session.stripe_session_id);
  await payCheckout(session.stripe_session_id);
  await eventually(async () => {
    const current = await tollgate.payments.status(session.payment);
    return current.status === "succeeded" ? current : undefined;
  }, "the payment to succeed");
  const stripeCustomer = (await tollgate.customers.retrieve(customer)).stripe_customer_id ?? "";
  assert.match(stripeCustomer, /^cus_/);
  const made = await stripeCall(STRIPE_KEY, "invoices", {
    customer: stripeCustomer,
    collection_method: "send_invoice",
    days_until_due: "30",
  });
  const stripeInvoice = made.id as string;
  const draft = await eventually(async () => {
    const listed = await tollgate.invoices.list({ customer, status: "draft" });
    return listed.data.find((i) => i.stripe_invoice_id === stripeInvoice);
  }, "the draft invoice to be mirrored");
  return { draft, stripeInvoice };
}

function lines(invoice: Invoice): Array<[string, number, string | null | undefined]> {
  return invoice.lines.map((line) => [line.description, line.amount, line.type]);
}

function lineId(invoice: Invoice, description: string): string {
  const id = invoice.lines.find((line) => line.description === description)?.id;
  assert.match(id ?? "", /^il_/);
  return id ?? "";
}

test("a draft invoice's lines added, changed and removed, at Stripe too", async () => {
  const tollgate = client();
  const { draft, stripeInvoice } = await draftInvoice(tollgate, `js-invoice-lines-${RUN}`);
  assert.deepEqual([draft.status, draft.total, draft.lines], ["draft", 0, []]);

  const added = await tollgate.invoices.addLine(
    draft.id,
    { amount: 2500, description: "Onboarding session", reason: "agreed on the call" },
    { idempotencyKey: `add-line-${RUN}` },
  );
  assert.deepEqual([added.id, added.status, added.total, added.currency], [draft.id, "draft", 2500, "usd"]);
  assert.deepEqual(lines(added), [["Onboarding session", 2500, "invoice_item"]]);
  const again = await tollgate.invoices.addLine(
    draft.id,
    { amount: 2500, description: "Onboarding session", reason: "agreed on the call" },
    { idempotencyKey: `add-line-${RUN}` },
  );
  assert.deepEqual(again, added); // the first answer, replayed: one line, not two

  const credited = await tollgate.invoices.addLine(draft.id, { amount: -500, description: "Loyalty credit" });
  assert.equal(credited.total, 2000);
  assert.deepEqual(lines(credited).sort(), [
    ["Loyalty credit", -500, "invoice_item"],
    ["Onboarding session", 2500, "invoice_item"],
  ]);

  const changed = await tollgate.invoices.updateLine(draft.id, lineId(credited, "Onboarding session"), {
    amount: 3000,
    reason: "two hours",
  });
  assert.equal(changed.total, 2500);
  assert.deepEqual(lines(changed).sort(), [
    ["Loyalty credit", -500, "invoice_item"],
    ["Onboarding session", 3000, "invoice_item"],
  ]);
  const renamed = await tollgate.invoices.updateLine(draft.id, lineId(changed, "Onboarding session"), {
    description: "Onboarding (2 h)",
  });
  assert.equal(renamed.total, 2500);

  const removed = await tollgate.invoices.removeLine(draft.id, lineId(renamed, "Loyalty credit"), {
    reason: "not this month",
  });
  assert.deepEqual([removed.status, removed.total], ["draft", 3000]);
  assert.deepEqual(lines(removed), [["Onboarding (2 h)", 3000, "invoice_item"]]);
  assert.equal((await stripeGet(`invoices/${encodeURIComponent(stripeInvoice)}`)).total, 3000);
  assert.deepEqual(await tollgate.invoices.retrieve(draft.id), removed);

  // What cannot be done: no amount, an unknown line, and any edit once the invoice is finalized at Stripe.
  await assert.rejects(
    tollgate.invoices.addLine(draft.id, { amount: 0, description: "Nothing" }),
    (error: unknown) => error instanceof InvalidRequestError && error.status === 400,
  );
  await assert.rejects(
    tollgate.invoices.updateLine(draft.id, "il_missing", { amount: 100 }),
    (error: unknown) => error instanceof NotFoundError && error.status === 404 && error.code === "invoice_line_not_found",
  );
  await stripeCall(STRIPE_KEY, `invoices/${stripeInvoice}/finalize`);
  await assert.rejects(
    tollgate.invoices.addLine(draft.id, { amount: 100, description: "Late" }),
    (error: unknown) => error instanceof ConflictError && error.status === 409 && error.code === "invoice_not_draft",
  );
  await assert.rejects(
    tollgate.invoices.removeLine(draft.id, lineId(removed, "Onboarding (2 h)")),
    (error: unknown) => error instanceof ConflictError && error.status === 409 && error.code === "invoice_not_draft",
  );
  assert.equal((await stripeGet(`invoices/${encodeURIComponent(stripeInvoice)}`)).total, 3000);
});
