/** The margins report through the client against the demo: calls of the demo's `assistant` feature (the call's cost
 * × 1.5, docs/integration.md "Pricing AI usage") priced by its cost table, reported per customer, feature and model,
 * least profitable first, grouped and cut to the first rows as asked; the API's refusals as the client's errors. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { InvalidRequestError, NotFoundError } from "../src/index.js";
import { RUN, client } from "./helpers.js";

const tollgate = client();

test("a customer's margins per model, grouped and cut to the first rows", async () => {
  const customer = `js-margins-${RUN}`;
  const calls = [
    { model: "gpt-4o", dimensions: { input_tokens: 1200, output_tokens: 300 } }, // 6,000 µ$
    { model: "gpt-4o-mini", dimensions: { input_tokens: 10000, output_tokens: 2000 } }, // 1,500 + 1,200 µ$
  ];
  for (const [index, call] of calls.entries()) {
    await tollgate.usage.record({ id: `margin-${index}-${RUN}`, customer, feature: "assistant", ...call });
  }
  const page = await tollgate.margins.list({ customer });
  const month = new Date().toISOString().slice(0, 7);
  assert.deepEqual(page.data[0], {
    object: "margin",
    period: month,
    currency: "usd",
    customer,
    feature: "assistant",
    model: "gpt-4o",
    calls: 1,
    units: 9,
    cost_micros: 6000,
    billed_micros: 0,
    overage_micros: 0,
    credits_micros: 0,
    credits_burned: 0,
    margin_micros: -6000,
    margin_bps: null,
  });
  assert.deepEqual(
    page.data.map((row) => [row.model, row.cost_micros]),
    [
      ["gpt-4o", 6000],
      ["gpt-4o-mini", 2700],
    ],
  );
  assert.equal(page.hasMore, false);

  const totals = await tollgate.margins.list({ customer, group_by: [] });
  assert.deepEqual(
    totals.data.map((row) => [row.customer, row.model, row.calls, row.cost_micros]),
    [[null, null, 2, 8700]],
  );
  const since = new Date(Date.now() - 3_600_000);
  const first = await tollgate.margins.list({ customer, group_by: ["model"], from: since, limit: 1 });
  assert.deepEqual([first.data.map((row) => row.model), first.hasMore], [["gpt-4o"], true]);
  assert.equal(await first.nextPage(), null);
  const all = [];
  for await (const row of tollgate.margins.list({ customer, group_by: "model", limit: 1 })) {
    all.push(row.model);
  }
  assert.deepEqual(all, ["gpt-4o"]); // one page: no request for another
});

test("an unknown customer and bad parameters are refused", async () => {
  await assert.rejects(async () => await tollgate.margins.list({ customer: `nobody-${RUN}` }), NotFoundError);
  await assert.rejects(
    async () => await tollgate.margins.list({ from: "2026-03-02", to: "2026-03-01" }),
    (error: unknown) =>
      error instanceof InvalidRequestError && error.code === "invalid_range" && error.param === "to",
  );
  await assert.rejects(
    async () => await tollgate.margins.list({ group_by: ["plan" as "model"] }),
    (error: unknown) => error instanceof InvalidRequestError && error.param === "group_by",
  );
});
