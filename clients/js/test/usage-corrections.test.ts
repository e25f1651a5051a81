/** Correcting usage through the client against the demo: an event amended, then voided, each once per correction
 * id; the period's usage follows; voiding it again is refused (docs/integration.md, "Correcting usage"). */

import assert from "node:assert/strict";
import { test } from "node:test";

import { TollgateError } from "../src/index.js";
import { RUN, client } from "./helpers.js";

const tollgate = client();

test("an event amended then voided, once per correction id", async () => {
  const customer = `js-fix-${RUN}`;
  await tollgate.usage.record({ id: `fix-e1-${RUN}`, customer, feature: "api_calls", quantity: 40 });
  await tollgate.usage.record({ id: `fix-e2-${RUN}`, customer, feature: "api_calls", quantity: 3 });
  const amended = await tollgate.usage.correct({
    id: `fix-1-${RUN}`,
    event: `fix-e1-${RUN}`,
    action: "amend",
    quantity: 4,
    reason: "a retry loop sent 40 for 4",
  });
  assert.deepEqual(
    [amended.object, amended.event, amended.action, amended.quantity_before, amended.quantity_after],
    ["usage_correction", `fix-e1-${RUN}`, "amend", 40, 4],
  );
  const again = await tollgate.usage.correct({
    id: `fix-1-${RUN}`,
    event: `fix-e1-${RUN}`,
    action: "amend",
    quantity: 4,
    reason: "a retry loop sent 40 for 4",
  });
  assert.deepEqual(again, await tollgate.usage.correction(`fix-1-${RUN}`));
  assert.equal(again.quantity_before, 40);
  const voided = await tollgate.usage.correct({
    id: `fix-2-${RUN}`,
    event: `fix-e2-${RUN}`,
    action: "void",
    reason: "test traffic",
  });
  assert.deepEqual([voided.quantity_before, voided.quantity_after], [3, 0]);
  assert.equal((await tollgate.usage.summary({ customer, feature: "api_calls" })).quantity, 4);
  await assert.rejects(
    tollgate.usage.correct({ id: `fix-3-${RUN}`, event: `fix-e2-${RUN}`, action: "void", reason: "again" }),
    (error: unknown) => error instanceof TollgateError && error.code === "usage_event_voided",
  );
});
