/**
 * Adopting an existing Stripe account through the client's platform namespace, on the live demo: a new project
 * on a Stripe account of its own that was in use before Tollgate (a product, a price, a customer with the
 * tenant's user id and a subscription), a dry run that changes nothing, then the run, read back until done, and
 * the adopted subscription as the project's key sees it; a project key and a bad mapping are refused.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { InvalidRequestError, PermissionDeniedError, Tollgate } from "../src/index.js";
import type { AdoptionRun } from "../src/index.js";
import { RUN, client, demo, eventually, stripeCall } from "./helpers.js";

const platform = new Tollgate({ apiKey: demo.platformKey, baseUrl: demo.url, timeoutMs: 60_000 });

async function finished(project: string, run: AdoptionRun): Promise<AdoptionRun> {
  return eventually(async () => {
    const read = await platform.projects.adoptions.retrieve(project, run.id);
    return read.status === "completed" || read.status === "failed" ? read : undefined;
  }, `adoption ${run.id}`, 120_000);
}

test("a Stripe account in use before Tollgate is adopted into a new project", async () => {
  const stripeKey = `sk_test_jsadopt_${RUN.replace(/-/g, "_")}`;
  const slug = `js-adopt-${RUN}`;
  const created = await platform.projects.create({ slug, name: "Adopted", stripe_secret_key: stripeKey });
  const product = (await stripeCall(stripeKey, "products", { name: "Pro" })).id as string;
  const price = (
    await stripeCall(stripeKey, "prices", {
      product,
      currency: "usd",
      unit_amount: "2900",
      "recurring[interval]": "month",
    })
  ).id as string;
  const customer = (await stripeCall(stripeKey, "customers", { "metadata[user_id]": "user-1" })).id as string;
  const subscription = (
    await stripeCall(stripeKey, "subscriptions", {
      customer,
      "items[0][price]": price,
      default_payment_method: "pm_card_visa",
    })
  ).id as string;
  const mapping = {
    features: [{ key: "projects", name: "Projects", type: "allocation" }],
    products: [{ stripe_product: product, key: "pro", features: { projects: 10 } }],
  };
  const tenant = new Tollgate({ apiKey: created.api_key as string, baseUrl: demo.url, timeoutMs: 20_000 });

  const dry = await platform.projects.adoptions.create(slug, {
    customer_key: { metadata: "user_id" },
    mapping,
    dry_run: true,
  });
  assert.deepEqual([dry.object, dry.project, dry.dry_run], ["adoption_run", created.id, true]);
  const dryDone = await finished(slug, dry);
  assert.equal(dryDone.status, "completed", dryDone.error);
  const dryReport = dryDone.report as { counts: Record<string, Record<string, number>>; changes: string[] };
  assert.deepEqual(dryReport.counts.subscriptions, { created: 1 });
  assert.deepEqual(dryReport.counts.customers, { created: 1 });
  assert.ok(dryReport.changes.includes(`create product pro from ${product}`), dryReport.changes.join("\n"));
  assert.deepEqual((await tenant.subscriptions.list()).data, []);

  const run = await platform.projects.adoptions.create(created.id, {
    customer_key: { metadata: "user_id" },
    mapping,
  });
  const done = await finished(created.id, run);
  assert.deepEqual([done.status, done.dry_run, done.error], ["completed", false, ""]);
  const report = done.report as { counts: Record<string, Record<string, number>>; stripe_reads: number };
  assert.deepEqual(report.counts.subscriptions, { created: 1 });
  assert.equal(done.stripe_reads, report.stripe_reads);
  assert.ok(done.adoption_point.newest_event.startsWith("evt_"), done.adoption_point.newest_event);
  const adopted = (await tenant.subscriptions.list({ customer: "user-1" })).data;
  assert.deepEqual(
    adopted.map((s) => [s.stripe_subscription_id, s.status, s.customer]),
    [[subscription, "active", "user-1"]],
  );

  await assert.rejects(
    platform.projects.adoptions.create(slug, { customer_key: { metadata: "" }, mapping }),
    InvalidRequestError,
  );
  await assert.rejects(
    client().projects.adoptions.create(slug, { customer_key: { field: "email" }, mapping: {} }),
    PermissionDeniedError,
  );
});
