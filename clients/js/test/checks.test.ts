/** The check's rule for `quantity: 0` through the client against the demo: "would nothing more fit?" — for a
 * `credits` feature `balance >= quantity`, so 0 fits a balance of 0 and 1 does not (docs/integration.md,
 * "Reading"; the server and the Python local evaluator hold the same rule). */

import assert from "node:assert/strict";
import { test } from "node:test";

import { RUN, client } from "./helpers.js";

const tollgate = client();

test("zero credits fit a balance of zero, one does not", async () => {
  const feature = `js-credits-${RUN}`;
  await tollgate.features.create({ key: feature, name: "JS credits", type: "credits" });
  const customer = `js-checks-${RUN}`;
  const none = await tollgate.entitlements.check({ customer, feature, quantity: 0 });
  assert.deepEqual([none.allowed, none.enabled, none.balance], [true, false, 0]);
  const one = await tollgate.entitlements.check({ customer, feature, quantity: 1 });
  assert.deepEqual([one.allowed, one.enabled, one.balance], [false, false, 0]);
});
