/** Holds through the client against the demo: units set aside under the limit, usage reported against the hold
 * once per event id, a confirm that keeps at least what was reported, and the exact error of an ended hold. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { ConflictError, InvalidRequestError } from "../src/index.js";
import { RUN, client } from "./helpers.js";

const tollgate = client();
const customer = `js-holds-${RUN}`;

test("a hold counts against the limit, its reported usage once, and its confirm keeps what was used", async () => {
  // The demo's Free plan gives every user 1,000 API calls a month.
  const placed = await tollgate.entitlements.holds.create({ id: `job-${RUN}`, customer, feature: "api_calls", quantity: 400 });
  assert.equal(placed.allowed, true);
  assert.deepEqual(
    [placed.hold?.status, placed.hold?.quantity, placed.hold?.consumed, placed.hold?.confirmed],
    ["active", 400, 0, null],
  );
  assert.deepEqual([placed.entitlement.used, placed.entitlement.held, placed.entitlement.remaining], [0, 400, 600]);

  const refused = await tollgate.entitlements.holds.create({ id: `big-${RUN}`, customer, feature: "api_calls", quantity: 601 });
  assert.deepEqual([refused.allowed, refused.hold], [false, null]);

  const events = [
    { id: `call-${RUN}-1`, quantity: 30 },
    { id: `call-${RUN}-2`, quantity: 20 },
  ];
  const reported = await tollgate.entitlements.holds.reportUsage(`job-${RUN}`, { events });
  assert.deepEqual([reported.accepted, reported.duplicates, reported.hold.consumed], [2, 0, 50]);
  const again = await tollgate.entitlements.holds.reportUsage(`job-${RUN}`, { events });
  assert.deepEqual([again.accepted, again.duplicates, again.hold.consumed], [0, 2, 50]);

  await assert.rejects(
    tollgate.entitlements.holds.confirm(`job-${RUN}`, { quantity: 10 }),
    (error: unknown) => error instanceof InvalidRequestError && error.code === "confirm_below_reported",
  );
  const confirmed = await tollgate.entitlements.holds.confirm(`job-${RUN}`, { quantity: 80 });
  assert.deepEqual([confirmed.hold?.status, confirmed.hold?.confirmed], ["confirmed", 80]);
  assert.deepEqual([confirmed.entitlement.used, confirmed.entitlement.held, confirmed.entitlement.remaining], [80, 0, 920]);

  await assert.rejects(
    tollgate.entitlements.holds.release(`job-${RUN}`),
    (error: unknown) => error instanceof ConflictError && error.code === "hold_confirmed",
  );
  const read = await tollgate.entitlements.holds.retrieve(`job-${RUN}`);
  assert.equal(read.hold?.confirmed, 80);
});

test("a check as of a past instant answers what was recorded by then, and a future one is refused", async () => {
  const user = `js-as-of-${RUN}`;
  await tollgate.entitlements.consume({ id: `as-of-${RUN}-1`, customer: user, feature: "api_calls", quantity: 7 });
  const before = new Date();
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await tollgate.entitlements.consume({ id: `as-of-${RUN}-2`, customer: user, feature: "api_calls", quantity: 5 });
  const then = await tollgate.entitlements.check({ customer: user, feature: "api_calls", as_of: before });
  const now = await tollgate.entitlements.check({ customer: user, feature: "api_calls" });
  assert.deepEqual([then.used, then.remaining, now.used, now.remaining], [7, 993, 12, 988]);
  const listed = await tollgate.entitlements.list({ customer: user, as_of: before.toISOString() });
  assert.equal(listed.entitlements.find((row) => row.feature === "api_calls")?.used, 7);
  await assert.rejects(
    tollgate.entitlements.check({ customer: user, feature: "api_calls", as_of: new Date(Date.now() + 3_600_000) }),
    (error: unknown) => error instanceof InvalidRequestError && error.param === "as_of",
  );
});
