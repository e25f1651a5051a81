/** A customer's own thresholds and auto-recharges through the client against the demo: created once, listed,
 * deleted; an auto-recharge's price must be a one-time price. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { InvalidRequestError, Page } from "../src/index.js";
import { RUN, client } from "./helpers.js";

const tollgate = client();

test("a usage threshold is stored once, listed and deleted", async () => {
  const customer = `js-thresholds-${RUN}`;
  const created = await tollgate.entitlements.thresholds.create({ customer, feature: "api_calls", percent: 50 });
  assert.deepEqual([created.customer, created.feature, created.percent, created.quantity], [customer, "api_calls", 50, null]);
  const again = await tollgate.entitlements.thresholds.create({ customer, feature: "api_calls", percent: 50 });
  assert.equal(again.id, created.id);
  const page = await tollgate.entitlements.thresholds.list({ customer });
  assert.ok(page instanceof Page);
  assert.deepEqual([page.data.map((row) => row.id), page.hasMore, page.raw.object], [[created.id], false, "list"]);
  assert.equal(await page.nextPage(), null);
  const deleted = await tollgate.entitlements.thresholds.delete(created.id);
  assert.equal(deleted.deleted, true);
  assert.deepEqual((await tollgate.entitlements.thresholds.list({ customer })).data, []);
});

test("an auto-recharge needs a one-time price and none is stored otherwise", async () => {
  const customer = `js-recharge-${RUN}`;
  await assert.rejects(
    tollgate.entitlements.autoRecharges.create({ customer, feature: "ai_credits", below: 10, price: "starter-monthly" }),
    (error: unknown) => error instanceof InvalidRequestError && error.code === "price_not_one_time",
  );
  const page = await tollgate.entitlements.autoRecharges.list({ customer });
  assert.ok(page instanceof Page);
  assert.deepEqual([page.data, page.hasMore], [[], false]);
  assert.deepEqual(await tollgate.entitlements.autoRecharges.list({ customer }).toArray(), []);
});
