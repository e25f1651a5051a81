/** Re-rating a draft through the client against the demo: a customer subscribed (a Checkout paid on the Stripe
 * emulator) to a product of this run's own; a draft that reprices its price and lowers a limit is saved with what
 * it changes, then re-rated — the subscriber is listed with the entitlements the draft takes or lowers (no period of
 * theirs has closed yet: nothing invoiced to re-rate), and nothing is published. */

import assert from "node:assert/strict";
import { before, test } from "node:test";

import { NotFoundError, type Rerating } from "../src/index.js";
import { CANCEL_URL, OK_URL, RUN, client, eventually, payCheckout } from "./helpers.js";

const tollgate = client();
const calls = `js-rerate-calls-${RUN}`;
const exportKey = `js-rerate-export-${RUN}`;
const product = `js-rerated-${RUN}`;
const price = `js-rerated-monthly-${RUN}`;
const customer = `js-rerater-${RUN}`;

before(async () => {
  await tollgate.features.create({ key: calls, name: "JS rerate calls", type: "metered" });
  await tollgate.features.create({ key: exportKey, name: "JS rerate export", type: "boolean" });
  await tollgate.products.create({ key: product, name: "JS rerated", features: { [calls]: 100, [exportKey]: true } });
  await tollgate.prices.create({
    key: price,
    product,
    currency: "usd",
    unit_amount: 2000,
    type: "recurring",
    interval: "month",
  });
  const session = await tollgate.checkout.subscription({ customer, price, success_url: OK_URL, cancel_url: CANCEL_URL });
  assert.ok(session.stripe_session_id, "the session has its Stripe session");
  await payCheckout(session.stripe_session_id);
  await eventually(async () => {
    const page = await tollgate.subscriptions.list({ customer });
    return page.data.length === 1 && page.data[0]?.status === "active" ? page.data[0] : undefined;
  }, "the subscription to be mirrored");
});

test("a draft that reprices is re-rated against its subscribers and nothing is published", async () => {
  await assert.rejects(tollgate.products.draftRerating(product), NotFoundError);
  const saved = await tollgate.products.draftSave(product, {
    features: { [calls]: 50 },
    prices: { [price]: { unit_amount: 2500 } },
  });
  assert.deepEqual(saved.prices, { [price]: { unit_amount: 2500 } });
  assert.deepEqual(
    saved.price_changes.map((c) => [c.price, c.before, c.after]),
    [[price, { unit_amount: 2000 }, { unit_amount: 2500 }]],
  );

  const rerating: Rerating = await tollgate.products.draftRerating(product, { periods: 2 });

  assert.deepEqual(
    [rerating.object, rerating.product, rerating.based_on, rerating.version, rerating.periods, rerating.has_more],
    ["rerating", product, 1, 2, 2, false],
  );
  assert.equal(rerating.subscribers.length, 1);
  const [row] = rerating.subscribers;
  assert.ok(row);
  assert.deepEqual(
    [row.customer, row.version, row.currency, row.quantity, row.periods, row.today, row.draft, row.difference],
    [customer, 1, "usd", 1, [], 0, 0, 0],
  );
  assert.deepEqual(
    row.entitlements.map((c) => [c.feature, c.change, c.before, c.after, c.used, c.below_use]),
    [
      [calls, "lowered", 100, 50, null, false],
      [exportKey, "lost", true, null, null, false],
    ].sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)),
  );
  assert.deepEqual(
    rerating.cohorts.map((c) => [c.version, c.currency, c.subscriptions, c.unchanged, c.losing_features]),
    [[1, "usd", 1, 1, 1]],
  );
  assert.equal((await tollgate.prices.retrieve(price)).unit_amount, 2000);
  assert.equal((await tollgate.products.retrieve(product)).version, 1);
  await tollgate.products.draftDiscard(product);
});
