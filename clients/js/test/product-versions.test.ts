/** Product versions through the client against the demo: a change to a product's features publishes its next
 * version, listed with what each changed; a draft saved (once under its idempotency key), read, then published as
 * version 3 (a retry answers the product); a draft made stale by a version published since is refused with
 * `draft_stale`; a discarded draft is gone (`no_draft`). The product and its features are this run's own. */

import assert from "node:assert/strict";
import { before, test } from "node:test";

import { ConflictError, NotFoundError, Page, type VersionChange } from "../src/index.js";
import { RUN, client } from "./helpers.js";

const tollgate = client();
const calls = `js-calls-${RUN}`;
const exportKey = `js-export-${RUN}`;
const credits = `js-ai-credits-${RUN}`;

const V1 = { [calls]: 100, [exportKey]: true };
const V2 = { [calls]: 1000, [exportKey]: true, [credits]: 500 };
const V3 = { [calls]: 300, [credits]: 200 };
/** What V3 changes of V2, sorted by feature key as the server sorts them. */
const V2_TO_V3 = [
  { feature: credits, before: 500, after: 200 },
  { feature: calls, before: 1000, after: 300 },
  { feature: exportKey, before: true, after: null },
].sort((a, b) => (a.feature < b.feature ? -1 : 1));

function changes(list: VersionChange[]): { feature: string; before: unknown; after: unknown }[] {
  return list.map(({ feature, before, after }) => ({ feature, before, after }));
}

/** A product of this run's own, at version 2 (`V2`), made at version 1 (`V1`). */
async function versioned(name: string): Promise<string> {
  const key = `js-${name}-${RUN}`;
  const made = await tollgate.products.create({ key, name: `JS ${name}`, features: V1 });
  assert.deepEqual([made.version, made.features], [1, V1]);
  const updated = await tollgate.products.update(key, { features: V2 });
  assert.deepEqual([updated.version, updated.features], [2, V2]);
  return key;
}

before(async () => {
  await tollgate.features.create({ key: calls, name: "JS calls", type: "metered" });
  await tollgate.features.create({ key: exportKey, name: "JS export", type: "boolean" });
  await tollgate.features.create({ key: credits, name: "JS AI credits", type: "credits" });
});

test("versions are listed with what each changed", async () => {
  const product = await versioned("listed");

  const page = await tollgate.products.versions(product);

  assert.ok(page instanceof Page);
  assert.equal(page.hasMore, false);
  assert.deepEqual(
    page.data.map((v) => [v.object, v.number, v.latest, v.features, v.note]),
    [
      ["product_version", 1, false, V1, null],
      ["product_version", 2, true, V2, null],
    ],
  );
  assert.deepEqual(page.data[0]?.changes, []);
  assert.deepEqual(
    changes(page.data[1]?.changes ?? []),
    [
      { feature: credits, before: null, after: 500 },
      { feature: calls, before: 100, after: 1000 },
    ].sort((a, b) => (a.feature < b.feature ? -1 : 1)),
  );
});

test("a draft is saved, read and published as version 3", async () => {
  const product = await versioned("drafted");
  const productId = (await tollgate.products.retrieve(product)).id;
  await assert.rejects(
    tollgate.products.draft(product),
    (error: unknown) => error instanceof NotFoundError && error.code === "no_draft",
  );

  const idempotencyKey = `js-draft-${RUN}`;
  const saved = await tollgate.products.draftSave(product, { features: V3, note: "cheaper tier" }, { idempotencyKey });
  const again = await tollgate.products.draftSave(product, { features: V3, note: "cheaper tier" }, { idempotencyKey });

  assert.deepEqual(again, saved); // the first answer, replayed
  assert.deepEqual(
    [saved.object, saved.product, saved.based_on, saved.version, saved.stale, saved.note, saved.features],
    ["product_draft", productId, 2, 3, false, "cheaper tier", V3],
  );
  assert.deepEqual(changes(saved.changes), V2_TO_V3);
  const read = await tollgate.products.draft(product);
  assert.deepEqual([read.based_on, read.version, read.stale, read.features], [2, 3, false, V3]);
  assert.deepEqual(changes(read.changes), V2_TO_V3);
  const unchanged = await tollgate.products.retrieve(product);
  assert.deepEqual([unchanged.version, unchanged.features], [2, V2]);

  const published = await tollgate.products.draftPublish(product, { version: 3 });

  assert.deepEqual([published.id, published.version, published.features], [productId, 3, V3]);
  const retried = await tollgate.products.draftPublish(product, { version: 3 }); // went through already
  assert.deepEqual([retried.version, retried.features], [3, V3]);
  const versions = (await tollgate.products.versions(product)).data;
  assert.deepEqual(
    versions.map((v) => [v.number, v.latest]),
    [
      [1, false],
      [2, false],
      [3, true],
    ],
  );
  assert.deepEqual([versions[2]?.note, versions[2]?.features], ["cheaper tier", V3]);
  assert.deepEqual(changes(versions[2]?.changes ?? []), V2_TO_V3);
});

test("a stale draft is refused and a discarded one is gone", async () => {
  const product = await versioned("stale");
  await tollgate.products.draftSave(product, { features: V3 });
  assert.equal((await tollgate.products.draft(product)).note, null);
  // Version 3 published directly, after the draft was made on version 2.
  assert.equal((await tollgate.products.update(product, { features: { [calls]: 10 } })).version, 3);
  const stale = await tollgate.products.draft(product);
  assert.deepEqual([stale.based_on, stale.version, stale.stale], [2, 3, true]);

  await assert.rejects(
    tollgate.products.draftPublish(product),
    (error: unknown) => error instanceof ConflictError && error.status === 409 && error.code === "draft_stale",
  );
  const current = await tollgate.products.retrieve(product);
  assert.deepEqual([current.version, current.features], [3, { [calls]: 10 }]);

  assert.equal(await tollgate.products.draftDiscard(product), undefined);

  await assert.rejects(
    tollgate.products.draft(product),
    (error: unknown) => error instanceof NotFoundError && error.status === 404 && error.code === "no_draft",
  );
  await assert.rejects(
    tollgate.products.draftDiscard(product),
    (error: unknown) => error instanceof NotFoundError && error.code === "no_draft",
  );
  assert.equal((await tollgate.products.retrieve(product)).version, 3);
});

test("the account cap is versioned and drafted", async () => {
  const product = await versioned("capped");
  const cap = { amount: 40000, currency: "usd", at_cap: "alert" as const };
  const capped = await tollgate.products.update(product, { account_cap: cap });
  assert.deepEqual([capped.version, capped.account_cap], [3, cap]);
  const drafted = await tollgate.products.draftSave(product, { account_cap: null, note: "no cap" });
  assert.deepEqual([drafted.version, drafted.account_cap, drafted.features], [4, null, V2]);
  const kept = await tollgate.products.draftSave(product, { features: V3 }); // left out: the latest version's cap
  assert.deepEqual(kept.account_cap, cap);
  const published = await tollgate.products.draftPublish(product, { version: 4 });
  assert.deepEqual([published.version, published.features, published.account_cap], [4, V3, cap]);

  const versions = (await tollgate.products.versions(product)).data;
  assert.deepEqual(
    versions.map((v) => [v.number, v.account_cap, v.note]),
    [
      [1, null, null],
      [2, null, null],
      [3, cap, "account cap changed"],
      [4, cap, null],
    ],
  );
});
