/**
 * A tenant's journey through the client, on the live demo: a customer, a subscription checkout paid on the
 * Stripe emulator, the settled payment and subscription, the entitlements they give (a consume repeated with
 * its idempotency key has one effect), and the signed events the tenant's endpoint received, verified with
 * `constructEvent` — during a secret roll too.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { type Event, SignatureVerificationError, constructEvent } from "../src/index.js";
import { CANCEL_URL, OK_URL, RUN, Receiver, client, eventually, payCheckout } from "./helpers.js";

const tollgate = client();
const receiver = new Receiver();
before(() => receiver.start());
after(() => receiver.stop());

function signature(delivery: { headers: Record<string, unknown> }): string {
  return String(delivery.headers["tollgate-signature"]);
}

test("from checkout to a paid subscription, its entitlements and its verified events", async () => {
  const customer = `js-ada-${RUN}`;
  const endpoint = await tollgate.webhookEndpoints.create({
    url: receiver.url,
    events: ["payment.succeeded", "entitlements.updated"],
    description: "js-check journey",
  });
  assert.ok(endpoint.secret?.startsWith("whsec_"), endpoint.secret ?? "no secret");

  const created = await tollgate.customers.create({ external_id: customer, email: "ada@example.com", name: "Ada" });
  assert.deepEqual(
    [created.object, created.external_id, created.email, created.name, created.currency],
    ["customer", customer, "ada@example.com", "Ada", null],
  );
  assert.equal((await tollgate.portal.eligibility({ customer })).eligible, false);
  const before = await tollgate.entitlements.check({ customer, feature: "sso" });
  assert.deepEqual([before.allowed, before.type], [false, "boolean"]); // the Free tier: no SSO

  const session = await tollgate.checkout.subscription({
    customer,
    price: "pro-monthly",
    success_url: OK_URL,
    cancel_url: CANCEL_URL,
  });
  assert.deepEqual([session.object, session.mode, session.status], ["checkout_session", "subscription", "open"]);
  assert.ok(session.stripe_session_id, "the session has its Stripe session");
  await payCheckout(session.stripe_session_id);

  const status = await eventually(async () => {
    const current = await tollgate.payments.status(session.payment);
    return current.status === "succeeded" ? current : undefined;
  }, "the payment to succeed");
  assert.deepEqual([status.id, status.amount_refunded], [session.payment, 0]);
  const payment = await tollgate.payments.retrieve(session.payment);
  assert.deepEqual(
    [payment.status, payment.amount, payment.currency, payment.type, payment.customer, payment.source],
    ["succeeded", 4900, "usd", "subscription", customer, "checkout"],
  );
  // The checkout's own event (checkout.session.completed) may come in after the payment's.
  await eventually(async () => {
    const current = await tollgate.checkout.retrieve(session.id);
    return current.status === "complete" ? current : undefined;
  }, "the checkout to complete");
  const subscriptions = await tollgate.subscriptions.list({ customer });
  assert.deepEqual(
    subscriptions.data.map((s) => [s.status, s.product, s.price, s.quantity, s.cancel_at_period_end]),
    [["active", "professional", "pro-monthly", 1, false]],
  );
  assert.equal(subscriptions.hasMore, false);
  const invoices = await tollgate.invoices.list({ customer });
  assert.deepEqual(
    invoices.data.map((i) => [i.status, i.total, i.amount_paid, i.currency]),
    [["paid", 4900, 4900, "usd"]],
  );
  // An invoice line's period is ISO 8601 like every other time (it was Unix seconds): the subscription's period.
  const subscribed = subscriptions.data[0];
  assert.deepEqual(
    invoices.data.map((i) => i.lines.map((line) => [line.period_start, line.period_end])),
    [[[subscribed?.current_period_start, subscribed?.current_period_end]]],
  );
  assert.match(String(invoices.data[0]?.lines[0]?.period_start), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal((await tollgate.customers.retrieve(customer)).currency, "usd");

  // What the plan gives: SSO, and 500,000 API calls a month.
  const sso = await tollgate.entitlements.check({ customer, feature: "sso" });
  assert.deepEqual([sso.allowed, sso.enabled, sso.value], [true, true, true]);
  const calls = await tollgate.entitlements.check({ customer, feature: "api_calls" });
  assert.deepEqual([calls.allowed, calls.limit, calls.used, calls.remaining], [true, 500000, 0, 500000]);

  // A consume sent twice with one idempotency key (a retry after a lost answer) counts once: the second answer
  // is the first one replayed. The same usage id under another key is a duplicate, recorded nothing.
  const consume = { id: `export-${RUN}`, customer, feature: "api_calls", quantity: 5 };
  const first = await tollgate.entitlements.consume(consume, { idempotencyKey: `consume-${RUN}` });
  const again = await tollgate.entitlements.consume(consume, { idempotencyKey: `consume-${RUN}` });
  assert.deepEqual([first.allowed, first.used, first.remaining], [true, 5, 499995]);
  assert.deepEqual(again, first);
  const duplicate = await tollgate.entitlements.consume(consume);
  assert.deepEqual([duplicate.allowed, duplicate.duplicate, duplicate.used], [true, true, 5]);
  const usage = await tollgate.entitlements.check({ customer, feature: "api_calls" });
  assert.deepEqual([usage.used, usage.remaining], [5, 499995]);
  const listed = await tollgate.entitlements.list({ customer });
  const apiCalls = listed.entitlements.find((e) => e.feature === "api_calls");
  assert.deepEqual([apiCalls?.limit, apiCalls?.used, apiCalls?.sources.map((s) => s.type)], [500000, 5, ["subscription", "default_product"]]);

  // The signed deliveries the endpoint received, verified with its secret.
  const paid = await eventually(async () => {
    const events = receiver.received.map((d) => constructEvent(d.body, signature(d), endpoint.secret ?? ""));
    return events.find((e) => e.type === "payment.succeeded" && (e.data["object"] as { id: string }).id === payment.id);
  }, "the payment.succeeded delivery");
  assert.deepEqual(paid.previous_attributes, { status: "pending" });
  assert.equal((paid.data["object"] as { amount: number }).amount, 4900);
  const entitled = receiver.received
    .map((d) => constructEvent(d.body, signature(d), endpoint.secret ?? ""))
    .filter((e) => e.type === "entitlements.updated" && (e.data["object"] as { customer: string }).customer === customer);
  assert.equal(entitled.length, 1);
  const fromApi = await tollgate.events.retrieve(paid.id);
  assert.deepEqual([fromApi.type, fromApi.sequence], ["payment.succeeded", paid.sequence]);

  // A body changed in transit, another secret, or an old delivery: refused.
  const delivery = receiver.received[0]!;
  const tampered = Buffer.from(delivery.body.toString("utf8").replace('"usd"', '"eur"'));
  assert.throws(() => constructEvent(tampered, signature(delivery), endpoint.secret ?? ""), SignatureVerificationError);
  assert.throws(() => constructEvent(delivery.body, signature(delivery), "whsec_other"), {
    name: "SignatureVerificationError",
    message: "No signature matches the secret.",
  });
  assert.throws(() => constructEvent(delivery.body, signature(delivery), endpoint.secret ?? "", { now: Date.now() / 1000 + 301 }), {
    message: "The delivery is older than the tolerance (or the clocks differ).",
  });

  // A secret roll: while both are valid, every delivery carries both signatures, and either secret verifies it.
  const rolled = await tollgate.webhookEndpoints.rollSecret(endpoint.id, { overlap_seconds: 3600 });
  assert.ok(rolled.secret && rolled.secret !== endpoint.secret);
  const count = receiver.received.length;
  await tollgate.events.redeliver(paid.id);
  const redelivered = await eventually(
    async () => receiver.received.slice(count).find((d) => d.headers["tollgate-event-id"] === paid.id),
    "the redelivery",
  );
  assert.equal(signature(redelivered).match(/v1=/g)?.length, 2);
  const withOld: Event = constructEvent(redelivered.body, signature(redelivered), endpoint.secret ?? "");
  const withNew: Event = constructEvent(redelivered.body, signature(redelivered), [rolled.secret ?? ""]);
  assert.deepEqual([withOld.id, withNew.id, withNew.sequence], [paid.id, paid.id, paid.sequence]);

  await tollgate.webhookEndpoints.delete(endpoint.id);
});
