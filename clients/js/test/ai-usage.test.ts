/** AI usage priced by model and token through the client against the demo: the demo's cost table (version 1) and
 * its `assistant` feature, whose formula is the call's cost × 1.5 in units of 0.001 USD (docs/integration.md,
 * "Pricing AI usage"); a feature of the test's own with per-dimension rates; a refused event records nothing. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { TollgateError } from "../src/index.js";
import { RUN, client } from "./helpers.js";

const tollgate = client();

test("a usage event's model and tokens become the feature's units and its cost", async () => {
  const tables = await tollgate.costTables.list();
  const first = tables.data.find((table) => table.version === 1);
  assert.ok(first);
  assert.deepEqual(first.models["gpt-4o"]?.["input_tokens"], { micros: 2_500_000, per: 1_000_000 });
  assert.equal((await tollgate.costTables.retrieve(first.id)).currency, "usd");
  const customer = `js-ai-${RUN}`;
  const call = await tollgate.usage.record({
    id: `call-${RUN}`,
    customer,
    feature: "assistant",
    model: "gpt-4o",
    dimensions: { input_tokens: 1200, output_tokens: 300 },
  });
  assert.deepEqual(
    [call.quantity, call.model, call.dimensions, call.cost],
    [9, "gpt-4o", { input_tokens: 1200, output_tokens: 300 }, { micros: 6000, currency: "usd", cost_table: 1 }],
  );
  const check = await tollgate.entitlements.check({ customer, feature: "assistant" });
  assert.equal(check.used, 9);
  const asked = await tollgate.entitlements.check({
    customer,
    feature: "assistant",
    model: "gpt-4o",
    dimensions: { input_tokens: 1200, output_tokens: 300 },
  });
  assert.deepEqual([asked.allowed, asked.quantity, asked.used], [true, 9, 9]);
});

test("per-dimension rates, and a dimension they don't price refused", async () => {
  const feature = `js-tokens-${RUN}`;
  const made = await tollgate.features.create({
    key: feature,
    name: "JS tokens",
    type: "metered",
    usage_formula: { type: "rates", rates: { input_tokens: "0.001", output_tokens: "0.004" } },
  });
  assert.deepEqual(made.usage_formula, {
    type: "rates",
    rates: { input_tokens: "0.001", output_tokens: "0.004" },
    models: {},
  });
  const customer = `js-rates-${RUN}`;
  const event = await tollgate.usage.record({
    id: `rates-${RUN}`,
    customer,
    feature,
    dimensions: { input_tokens: 1200, output_tokens: 300 },
  });
  assert.deepEqual([event.quantity, event.cost], [3, null]);
  await assert.rejects(
    tollgate.usage.record({ id: `rates-bad-${RUN}`, customer, feature, dimensions: { images: 1 } }),
    (error: unknown) =>
      error instanceof TollgateError && error.code === "unknown_dimension" && error.param === "dimensions.images",
  );
  const summary = await tollgate.usage.summary({ customer, feature });
  assert.equal(summary.quantity, 3);
});

test("a model call held by its estimate and confirmed by what it used, beyond the hold", async () => {
  const customer = `js-hold-${RUN}`;
  const placed = await tollgate.entitlements.holds.create({
    id: `hold-${RUN}`,
    customer,
    feature: "assistant",
    model: "gpt-4o",
    dimensions: { input_tokens: 1200, output_tokens: 800 },
  });
  // 1,200 × 2.5 + 800 × 10 = 11,000 µ$ × 1.5 = 16.5 → 17 units held
  assert.deepEqual(
    [placed.allowed, placed.hold?.quantity, placed.hold?.estimate?.units, placed.hold?.estimate?.cost?.micros],
    [true, 17, 17, 11000],
  );
  const done = await tollgate.entitlements.holds.confirm(`hold-${RUN}`, {
    model: "gpt-4o",
    dimensions: { input_tokens: 1180, output_tokens: 2400 },
  });
  // 2,950 + 24,000 = 26,950 µ$ × 1.5 → 41 units: the 17 held, and 24 recorded beyond the hold
  assert.deepEqual(
    [done.hold?.status, done.hold?.confirmed, done.hold?.overrun, done.hold?.actual?.cost?.micros],
    ["confirmed", 17, 24, 26950],
  );
  const check = await tollgate.entitlements.check({ customer, feature: "assistant" });
  assert.deepEqual([check.used, check.held], [41, 0]);
});
