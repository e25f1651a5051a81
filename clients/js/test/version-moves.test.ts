/** Moving subscribers between product versions through the client against the demo: a customer subscribed (a
 * Checkout paid on the Stripe emulator) on version 1 of a product, version 2 published by changing its features; a
 * preview says what the move would change and moves nothing, the move puts the subscription's item on version 2
 * (once: a second run moves nobody), and a version never published is refused with `unknown_version`. The product,
 * its price and features are this run's own. */

import assert from "node:assert/strict";
import { before, test } from "node:test";

import { InvalidRequestError, type VersionChange, type VersionMoves } from "../src/index.js";
import { CANCEL_URL, OK_URL, RUN, client, eventually, payCheckout } from "./helpers.js";

const tollgate = client();
const calls = `js-move-calls-${RUN}`;
const exportKey = `js-move-export-${RUN}`;
const credits = `js-move-credits-${RUN}`;
const product = `js-moved-${RUN}`;
const price = `js-moved-monthly-${RUN}`;
const customer = `js-mover-${RUN}`;

const V1 = { [calls]: 100, [exportKey]: true };
const V2 = { [calls]: 300, [credits]: 200 };
/** What V2 changes of V1, sorted by feature key as the server sorts them. */
const V1_TO_V2 = [
  { feature: credits, before: null, after: 200 },
  { feature: calls, before: 100, after: 300 },
  { feature: exportKey, before: true, after: null },
].sort((a, b) => (a.feature < b.feature ? -1 : 1));

function changes(list: VersionChange[]): { feature: string; before: unknown; after: unknown }[] {
  return list.map(({ feature, before, after }) => ({ feature, before, after }));
}

function moves(answer: VersionMoves): unknown[] {
  return answer.moves.map((m) => [m.subscription, m.customer, m.from_version, m.to_version, changes(m.changes), m.moved]);
}

async function itemVersions(subscription: string): Promise<number[]> {
  return (await tollgate.subscriptions.retrieve(subscription)).items.map((item) => item.version);
}

let subscription = "";

/** `product` made at version 1 (`V1`), `customer` subscribed to it through Checkout, then version 2 (`V2`). */
before(async () => {
  await tollgate.features.create({ key: calls, name: "JS move calls", type: "metered" });
  await tollgate.features.create({ key: exportKey, name: "JS move export", type: "boolean" });
  await tollgate.features.create({ key: credits, name: "JS move credits", type: "credits" });
  assert.equal((await tollgate.products.create({ key: product, name: "JS moved", features: V1 })).version, 1);
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
  const subscribed = await eventually(async () => {
    const page = await tollgate.subscriptions.list({ customer });
    return page.data.length === 1 && page.data[0]?.status === "active" ? page.data[0] : undefined;
  }, "the subscription to be mirrored");
  subscription = subscribed.id;
  assert.deepEqual(await itemVersions(subscription), [1]);
  const updated = await tollgate.products.update(product, { features: V2 });
  assert.deepEqual([updated.version, updated.features], [2, V2]);
});

test("a version never published is refused", async () => {
  await assert.rejects(
    tollgate.subscriptions.versionMoves({ product, to_version: 7 }),
    (error: unknown) =>
      error instanceof InvalidRequestError && error.status === 400 && error.code === "unknown_version",
  );
  assert.deepEqual(await itemVersions(subscription), [1]);
});

test("a subscriber is previewed, then moved once", async () => {
  const preview = await tollgate.subscriptions.versionMoves({ product, to_version: 2, preview: true });

  assert.deepEqual(
    [preview.object, preview.product, preview.to_version, preview.preview, preview.moved],
    ["version_moves", product, 2, true, 0],
  );
  assert.deepEqual(moves(preview), [[subscription, customer, 1, 2, V1_TO_V2, false]]);
  // Version 2 changed features only: it froze the Stripe price the subscription is on, so nothing moves at Stripe.
  assert.deepEqual(
    preview.moves.map((m) => [m.prices, m.proration, m.invoice]),
    [[[], null, null]],
  );
  assert.deepEqual(await itemVersions(subscription), [1]);

  const idempotencyKey = `js-move-${RUN}`;
  const params = { product, to_version: 2, from_versions: [1], reason: "new tier" };
  const moved = await tollgate.subscriptions.versionMoves(params, { idempotencyKey });

  assert.deepEqual([moved.preview, moved.moved], [false, 1]);
  assert.deepEqual(moves(moved), [[subscription, customer, 1, 2, V1_TO_V2, true]]);
  assert.deepEqual(await itemVersions(subscription), [2]);
  const replayed = await tollgate.subscriptions.versionMoves(params, { idempotencyKey });
  assert.deepEqual(replayed, moved); // the first answer, replayed

  const again = await tollgate.subscriptions.versionMoves({ product, to_version: 2, subscriptions: [subscription] });

  assert.deepEqual([again.moved, again.moves], [0, []]);
  assert.deepEqual(await itemVersions(subscription), [2]);
});
