/** A customer's entities through the client against the demo: seats added (once per id, never past the plan's),
 * listed, renamed and removed; a metered feature whose plan gives each seat its own limit (`per_entity`) answers
 * checks and consumes naming a seat against that limit as well as the account's. The demo's Free plan is given two
 * features of this run's own for the test, and its own features back after it. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ConflictError, InvalidRequestError, Page } from "../src/index.js";
import { RUN, client } from "./helpers.js";

const tollgate = client();
const seats = `js-seats-${RUN}`;
const summaries = `js-summaries-${RUN}`;
const credits = `js-credits-${RUN}`;
let freeFeatures: Record<string, unknown> = {};

before(async () => {
  await tollgate.features.create({ key: seats, name: "JS seats", type: "allocation" });
  await tollgate.features.create({ key: summaries, name: "JS summaries", type: "metered" });
  await tollgate.features.create({ key: credits, name: "JS credits", type: "credits" });
  freeFeatures = (await tollgate.products.retrieve("free")).features;
  // 10 summaries a month for the account, 4 for each of its 2 seats; credits each seat may hold, forfeited with it.
  const perSeat = { limit: 10, per_entity: { feature: seats, limit: 4 } };
  const ownCredits = { limit: 0, per_entity: { feature: seats, on_remove: "forfeit" } };
  await tollgate.products.update("free", {
    features: { ...freeFeatures, [seats]: 2, [summaries]: perSeat, [credits]: ownCredits },
  });
});

after(async () => {
  await tollgate.products.update("free", { features: freeFeatures });
});

test("entities are added once, never past the plan's seats, listed, renamed and removed", async () => {
  const customer = `js-entities-${RUN}`;
  const ana = await tollgate.entitlements.entities.add({ customer, feature: seats, entity: "ana", name: "Ana" });
  assert.deepEqual(
    [ana.object, ana.customer, ana.feature, ana.entity, ana.name, ana.removed_at],
    ["entity", customer, seats, "ana", "Ana", null],
  );
  assert.match(ana.id, /^ent_/);
  const again = await tollgate.entitlements.entities.add({ customer, feature: seats, entity: "ana", name: "Other" });
  assert.deepEqual([again.id, again.name], [ana.id, "Ana"]);
  const bo = await tollgate.entitlements.entities.add({ customer, feature: seats, entity: "bo" });
  assert.equal(bo.name, "");
  await assert.rejects(
    tollgate.entitlements.entities.add({ customer, feature: seats, entity: "cy" }),
    (error: unknown) => error instanceof ConflictError && error.code === "allocation_exhausted",
  );
  await assert.rejects(
    tollgate.entitlements.entities.add({ customer, feature: summaries, entity: "cy" }),
    (error: unknown) => error instanceof InvalidRequestError && error.code === "feature_not_allocation",
  );
  const inUse = await tollgate.entitlements.check({ customer, feature: seats });
  assert.deepEqual([inUse.used, inUse.remaining], [2, 0]);

  const page = await tollgate.entitlements.entities.list({ customer });
  assert.ok(page instanceof Page);
  assert.deepEqual(
    [page.data.map((row) => [row.id, row.entity, row.name]), page.hasMore],
    [[[ana.id, "ana", "Ana"], [bo.id, "bo", ""]], false],
  );
  // Each says its use this period of every feature that gives it its own limit.
  assert.deepEqual(page.data[0]?.usage, [{ feature: summaries, limit: 4, used: 0, remaining: 4, windows: [] }]);
  const renamed = await tollgate.entitlements.entities.rename(bo.id, { name: "Bo" });
  assert.deepEqual([renamed.id, renamed.entity, renamed.name], [bo.id, "bo", "Bo"]);

  const removed = await tollgate.entitlements.entities.remove(ana.id, { reason: "left the team" });
  assert.equal(removed.id, ana.id);
  assert.notEqual(removed.removed_at, null);
  const removedAgain = await tollgate.entitlements.entities.remove(ana.id);
  assert.equal(removedAgain.removed_at, removed.removed_at);
  await assert.rejects(
    tollgate.entitlements.entities.rename(ana.id, { name: "Ana P." }),
    (error: unknown) => error instanceof InvalidRequestError && error.code === "entity_removed",
  );
  const left = await tollgate.entitlements.entities.list({ customer }).toArray();
  assert.deepEqual(left.map((row) => [row.entity, row.name]), [["bo", "Bo"]]);
  assert.equal((await tollgate.entitlements.check({ customer, feature: seats })).used, 1);
});

test("a check or consume naming an entity is held to its own limit as well as the account's", async () => {
  const customer = `js-entity-use-${RUN}`;
  for (const entity of ["ana", "bo"]) {
    await tollgate.entitlements.entities.add({ customer, feature: seats, entity });
  }
  const first = await tollgate.entitlements.consume({ id: `sum-${RUN}-1`, customer, feature: summaries, quantity: 3, entity: "ana" });
  assert.deepEqual([first.allowed, first.used, first.remaining, first.binding], [true, 3, 7, null]);
  assert.deepEqual(first.entity, { id: "ana", feature: seats, limit: 4, used: 3, remaining: 1, windows: [], binding: null, balance: null });
  const refused = await tollgate.entitlements.consume({ id: `sum-${RUN}-2`, customer, feature: summaries, quantity: 2, entity: "ana" });
  assert.deepEqual([refused.allowed, refused.binding, refused.used, refused.remaining], [false, "entity", 3, 7]);
  assert.deepEqual([refused.entity?.used, refused.entity?.remaining], [3, 1]);
  assert.ok((refused.retry_after ?? 0) > 0);

  const replay = await tollgate.entitlements.consume({ id: `sum-${RUN}-1`, customer, feature: summaries, quantity: 3, entity: "ana" });
  assert.deepEqual([replay.duplicate, replay.used, replay.entity?.used], [true, 3, 3]);
  const asked = await tollgate.entitlements.check({ customer, feature: summaries, quantity: 4, entity: "bo" });
  assert.deepEqual([asked.allowed, asked.entity?.used, asked.entity?.remaining], [true, 0, 4]);
  const over = await tollgate.entitlements.check({ customer, feature: summaries, quantity: 2, entity: "ana" });
  assert.deepEqual([over.allowed, over.binding, over.entity?.remaining], [false, "entity", 1]);
  const account = await tollgate.entitlements.check({ customer, feature: summaries, quantity: 7 });
  assert.deepEqual([account.allowed, account.remaining, "entity" in account], [true, 7, false]);

  await assert.rejects(
    tollgate.entitlements.consume({ id: `sum-${RUN}-3`, customer, feature: summaries, entity: "nobody" }),
    (error: unknown) => error instanceof InvalidRequestError && error.code === "unknown_entity" && error.param === "entity",
  );
  await assert.rejects(
    tollgate.entitlements.check({ customer, feature: summaries, entity: "nobody" }),
    (error: unknown) => error instanceof InvalidRequestError && error.code === "unknown_entity",
  );
  await assert.rejects(
    tollgate.entitlements.consume({ id: `calls-${RUN}-1`, customer, feature: "api_calls", entity: "ana" }),
    (error: unknown) => error instanceof InvalidRequestError && error.code === "entity_not_counted",
  );
  assert.equal((await tollgate.entitlements.check({ customer, feature: summaries })).used, 3);
  const recorded = await tollgate.usage.record({ id: `sum-${RUN}-4`, customer, feature: summaries, quantity: 1, entity: "bo" });
  assert.deepEqual(recorded.properties, { entity: "bo" });
  assert.equal((await tollgate.entitlements.check({ customer, feature: summaries, entity: "bo" })).entity?.used, 1);
});

test("a hold naming an entity takes its units on the entity's limit as well as the account's", async () => {
  const customer = `js-entity-hold-${RUN}`;
  await tollgate.entitlements.entities.add({ customer, feature: seats, entity: "ana" });
  const held = await tollgate.entitlements.holds.create({
    id: `hold-${RUN}-1`, customer, feature: summaries, quantity: 3, entity: "ana",
  });
  assert.equal(held.allowed, true);
  assert.deepEqual(held.entitlement.entity, { id: "ana", feature: seats, limit: 4, used: 3, remaining: 1, windows: [], binding: null, balance: null });
  const refused = await tollgate.entitlements.holds.create({
    id: `hold-${RUN}-2`, customer, feature: summaries, quantity: 2, entity: "ana",
  });
  assert.deepEqual([refused.allowed, refused.hold, refused.entitlement.binding], [false, null, "entity"]);
  await tollgate.entitlements.holds.release(`hold-${RUN}-1`);
  const after = await tollgate.entitlements.check({ customer, feature: summaries, quantity: 4, entity: "ana" });
  assert.deepEqual([after.allowed, after.held, after.entity?.used, after.entity?.remaining], [true, 0, 0, 4]);
});

test("a seat's own credits are granted to it, spent first by its uses and forfeited with it", async () => {
  const customer = `js-entity-credits-${RUN}`;
  const ana = await tollgate.entitlements.entities.add({ customer, feature: seats, entity: "ana" });
  await tollgate.entitlements.entities.add({ customer, feature: seats, entity: "bo" });
  const given = await tollgate.entitlements.grants.create({
    customer, feature: credits, value: 30, entity: "ana", reason: "ana's budget",
  });
  assert.equal(given.entity, "ana");
  await tollgate.entitlements.grants.create({ customer, feature: credits, value: 5, reason: "pool" });
  const spent = await tollgate.entitlements.consume({ id: `cr-${RUN}-1`, customer, feature: credits, quantity: 32, entity: "ana" });
  assert.deepEqual([spent.allowed, spent.balance], [true, 3]);
  assert.deepEqual(spent.entity, { id: "ana", feature: seats, limit: null, used: null, remaining: null, windows: [], binding: null, balance: 0 });
  const bo = await tollgate.entitlements.check({ customer, feature: credits, quantity: 4, entity: "bo" });
  assert.deepEqual([bo.allowed, bo.balance, bo.entity?.balance], [false, 3, 0]);
  await tollgate.entitlements.grants.create({ customer, feature: credits, value: 7, entity: "ana", reason: "more" });
  await tollgate.entitlements.entities.remove(ana.id, { reason: "left" });
  const own = await tollgate.credits.retrieve({ customer, feature: credits, entity: "ana" });
  assert.deepEqual([own.balance, own.ledger[0]?.type, own.ledger[0]?.amount], [0, "forfeited", -7]);
  assert.equal((await tollgate.credits.retrieve({ customer, feature: credits })).balance, 3);
});
