/** The journal's stream through the client against the demo: an amount paid on the emulator's Checkout posts one
 * entry, cash at Stripe against deferred revenue, which the stream does not serve while it is younger than a minute
 * (an entry committed late is never skipped) and serves once older, after the cursor a reader kept from before;
 * pages of two give the same entries in the same order as pages of five hundred, none twice; refusals arrive as the
 * client's errors. The demo's project is shared with the other tests, so its entries are found by their source. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { InvalidRequestError, type JournalEntry, type StreamPage } from "../src/index.js";
import { CANCEL_URL, OK_URL, RUN, client, eventually, payCheckout } from "./helpers.js";

const tollgate = client();
const SETTLE_MS = 60_000;

/** Every entry the stream serves now after `after` (from the first without it), page by page, and the cursor of
 * the last page, to come back with. */
async function readOn(after: string | null, limit = 500): Promise<{ entries: JournalEntry[]; next: string | null }> {
  const entries: JournalEntry[] = [];
  let page: StreamPage<JournalEntry> | null = await tollgate.journal.entries.list({ after: after ?? undefined, limit });
  for (;;) {
    entries.push(...page.data);
    assert.ok(page.data.length <= limit);
    const following: StreamPage<JournalEntry> | null = await page.nextPage();
    if (following === null) {
      return { entries, next: page.next };
    }
    page = following;
  }
}

test("a payment's entry is served once it is a minute old, after the cursor kept from before", async () => {
  const payment = await tollgate.payments.create({
    customer: `js-journal-${RUN}`,
    amount: 1234,
    currency: "usd",
    description: "Bookkeeping",
    flow: "checkout",
    success_url: OK_URL,
    cancel_url: CANCEL_URL,
  });
  assert.ok(payment.stripe_checkout_session_id, "the payment has its Stripe Checkout session");
  await payCheckout(payment.stripe_checkout_session_id);
  await eventually(async () => {
    const current = await tollgate.payments.status(payment.id);
    return current.status === "succeeded" ? current : undefined;
  }, "the payment to succeed");

  // Just posted: not served yet. A reader caught up now keeps its cursor.
  const now = await readOn(null);
  assert.equal(now.entries.filter((e) => e.source === payment.id).length, 0);
  assert.ok(now.next !== null || now.entries.length === 0);

  let cursor = now.next;
  let served: JournalEntry | undefined;
  let servedAt = 0;
  const deadline = Date.now() + SETTLE_MS + 60_000;
  while (served === undefined) {
    assert.ok(Date.now() < deadline, "the payment's entry was not served within two minutes");
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const more = await readOn(cursor);
    servedAt = Date.now();
    served = more.entries.find((e) => e.source === payment.id);
    assert.ok(more.next !== null || more.entries.length === 0);
    cursor = more.next ?? cursor;
  }

  // Served only once a minute old (the demo and the test share a clock).
  assert.ok(servedAt - Date.parse(served.posted_at) >= SETTLE_MS, `served at ${servedAt}, posted ${served.posted_at}`);
  assert.match(served.id, /^je_/);
  assert.deepEqual(
    { ...served, id: "", posted_at: "", effective_at: "" },
    {
      id: "",
      object: "journal_entry",
      kind: "payment",
      source: payment.id,
      revision: 1,
      currency: "usd",
      effective_at: "",
      posted_at: "",
      lines: [
        { account: "stripe_balance", code: "1010", name: "Cash at Stripe", debit: 1234, credit: 0 },
        { account: "deferred_revenue", code: "2100", name: "Deferred revenue", debit: 0, credit: 1234 },
      ],
    },
  );
  for (const entry of (await readOn(null)).entries) {
    assert.equal(
      entry.lines.reduce((sum, line) => sum + line.debit - line.credit, 0),
      0,
      `${entry.id} does not balance`,
    );
  }
});

test("pages of two give the entries of one page, in the same order, none twice", async () => {
  const whole = (await tollgate.journal.entries.list({ limit: 500 })).data.map((e) => e.id);
  const paged: string[] = [];
  for await (const entry of tollgate.journal.entries.list({ limit: 2 })) {
    paged.push(entry.id);
  }
  // An entry may have settled between the two reads: it can only come after what the first read served.
  assert.deepEqual(paged.slice(0, whole.length), whole);
  assert.equal(new Set(paged).size, paged.length);
  const first = await tollgate.journal.entries.list({ limit: 2 });
  if (first.hasMore) {
    assert.equal(first.data.length, 2);
    const second = await tollgate.journal.entries.list({ limit: 2, after: first.next ?? undefined });
    assert.deepEqual(
      second.data.map((e) => e.id),
      paged.slice(2, 2 + second.data.length),
    );
  }
  const caughtUp = await tollgate.journal.entries.list({ effective_to: new Date(Date.UTC(2001, 0, 1)) });
  assert.deepEqual([caughtUp.data, caughtUp.hasMore, caughtUp.next], [[], false, null]);
});

test("a cursor that is not one the stream gave, and a bad limit, are refused", async () => {
  await assert.rejects(
    async () => await tollgate.journal.entries.list({ after: "je_not_a_cursor" }),
    (error: unknown) =>
      error instanceof InvalidRequestError && error.code === "invalid_cursor" && error.param === "after",
  );
  await assert.rejects(
    async () => await tollgate.journal.entries.list({ limit: 501 }),
    (error: unknown) =>
      error instanceof InvalidRequestError && error.code === "invalid_limit" && error.param === "limit",
  );
});
