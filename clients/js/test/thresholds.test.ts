/** A customer's own thresholds, auto-recharges and account cap through the client against the demo: created once,
 * listed, deleted; an auto-recharge's price must be a one-time price; an account cap has no feature and no units. */

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

test("an account cap is set without a feature, answered on every metered feature and removed", async () => {
  const customer = `js-account-cap-${RUN}`;
  const cap = await tollgate.entitlements.spendCaps.set({
    customer,
    cap: { amount: 30000, currency: "USD", at_cap: "alert" },
    reason: "trial account",
  });
  assert.deepEqual([cap.feature, cap.cap], [null, { amount: 30000, currency: "usd", at_cap: "alert" }]);
  await assert.rejects(
    tollgate.entitlements.spendCaps.set({ customer, cap: { units: 5, currency: "usd" } }),
    (error: unknown) => error instanceof InvalidRequestError && error.code === "parameter_conflict",
  );
  const page = await tollgate.entitlements.spendCaps.list({ customer });
  assert.deepEqual(page.data.map((row) => [row.id, row.feature]), [[cap.id, null]]);
  const deleted = await tollgate.entitlements.spendCaps.delete(cap.id);
  assert.deepEqual([deleted.deleted, deleted.feature], [true, null]);
  assert.deepEqual((await tollgate.entitlements.spendCaps.list({ customer })).data, []);
});
