/** Agent keys through the client against the demo: a key made with the read-only tools by default, listed,
 * refused by the REST API, and revoked (again: nothing changes). */

import assert from "node:assert/strict";
import { test } from "node:test";

import { AuthenticationError } from "../src/index.js";
import { RUN, client } from "./helpers.js";

const tollgate = client();

test("an agent key: read-only by default, listed, never a REST key, revoked once", async () => {
  const created = await tollgate.agentKeys.create({ name: `js-agent-${RUN}` });
  assert.match(created.agent_key ?? "", /^tg_ak_/);
  assert.deepEqual(
    [...created.tools].sort(),
    ["customer_lookup", "entitlements_explain", "invoices_list", "margins_report", "subscriptions_list", "usage_summary"],
  );
  assert.equal(created.can_confirm, false);
  const listed = [];
  for await (const key of tollgate.agentKeys.list()) listed.push(key.id);
  assert.ok(listed.includes(created.id));

  const asAgent = client({ apiKey: created.agent_key ?? "", maxRetries: 0 });
  await assert.rejects(async () => {
    await asAgent.customers.list();
  }, AuthenticationError);

  const revoked = await tollgate.agentKeys.revoke(created.id, { reason: "js test" });
  assert.notEqual(revoked.revoked_at, null);
  const again = await tollgate.agentKeys.revoke(created.id);
  assert.equal(again.revoked_at, revoked.revoked_at);
});
