/**
 * Retries through a fault-injecting proxy in front of the demo: each POST carries one Idempotency-Key for all its
 * attempts, so a retry after a lost answer has one effect (the demo replays the first answer), and the rules of
 * what is retried and how long is waited are the Python client's.
 */

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import {
  APIConnectionError,
  InvalidRequestError,
  type PaymentCreateParams,
  ProviderError,
  RateLimitError,
} from "../src/index.js";
import { CANCEL_URL, FaultProxy, OK_URL, RUN, client, demo } from "./helpers.js";

let proxy: FaultProxy;
before(async () => {
  proxy = await new FaultProxy(demo.url).start();
});
after(() => proxy.stop());
beforeEach(() => {
  proxy.requests.length = 0;
});

function order(customer: string, amount: number): PaymentCreateParams {
  return { customer, amount, currency: "usd", description: "Retried", flow: "checkout", success_url: OK_URL, cancel_url: CANCEL_URL };
}

function posts() {
  return proxy.requests.filter((r) => r.method === "POST");
}

test("the answer of the first POST is lost: the retry with the same key has one effect", async () => {
  const customer = `js-retry-lost-${RUN}`;
  const tollgate = client({ baseUrl: proxy.url, maxRetries: 2 });
  proxy.plan("POST", { kind: "drop-answer" });

  const payment = await tollgate.payments.create(order(customer, 2500));

  const [first, retry] = posts();
  assert.equal(posts().length, 2);
  assert.match(first?.idempotencyKey ?? "", /^[0-9a-f-]{36}$/);
  assert.equal(retry?.idempotencyKey, first?.idempotencyKey);
  assert.deepEqual([first?.status, first?.replayed, first?.fault?.kind], [201, false, "drop-answer"]);
  assert.deepEqual([retry?.status, retry?.replayed, retry?.fault], [201, true, null]);
  const listed = await client().payments.list({ customer });
  assert.deepEqual(
    listed.data.map((p) => [p.id, p.amount, p.currency, p.status, p.type]),
    [[payment.id, 2500, "usd", "pending", "one_time"]],
  );
});

test("without retries the caller retries with its own key: still one payment", async () => {
  const customer = `js-retry-own-${RUN}`;
  const once = client({ baseUrl: proxy.url, maxRetries: 0 });
  proxy.plan("POST", { kind: "drop-answer" });
  const key = `order-${RUN}-own`;

  await assert.rejects(once.payments.create(order(customer, 3100), { idempotencyKey: key }), APIConnectionError);
  const payment = await once.payments.create(order(customer, 3100), { idempotencyKey: key });

  assert.deepEqual(
    posts().map((r) => [r.idempotencyKey, r.status, r.replayed]),
    [
      [key, 201, false],
      [key, 201, true],
    ],
  );
  const listed = await client().payments.list({ customer });
  assert.deepEqual(listed.data.map((p) => [p.id, p.amount]), [[payment.id, 3100]]);
});

test("503 and 429 are retried (Retry-After waited out), with the same key", async () => {
  const customer = `js-retry-5xx-${RUN}`;
  const tollgate = client({ baseUrl: proxy.url, maxRetries: 2 });
  proxy.plan(
    "POST",
    { kind: "answer", status: 503 },
    { kind: "answer", status: 429, headers: { "Retry-After": "1" } },
  );
  const started = Date.now();

  const payment = await tollgate.payments.create(order(customer, 4200));

  assert.ok(Date.now() - started >= 1000, "the Retry-After second was waited out");
  assert.deepEqual(
    posts().map((r) => [r.status, r.replayed, r.fault?.kind ?? null]),
    [
      [0, false, "answer"],
      [0, false, "answer"],
      [201, false, null],
    ],
  );
  assert.equal(new Set(posts().map((r) => r.idempotencyKey)).size, 1);
  const listed = await client().payments.list({ customer });
  assert.deepEqual(listed.data.map((p) => [p.id, p.amount]), [[payment.id, 4200]]);
});

test("what is not retried: a 400, a Retry-After over a minute, and attempts past maxRetries", async () => {
  const tollgate = client({ baseUrl: proxy.url, maxRetries: 1 });
  proxy.plan("POST", { kind: "answer", status: 400 });
  await assert.rejects(tollgate.customers.create({ external_id: `js-400-${RUN}` }), InvalidRequestError);
  assert.equal(posts().length, 1);

  proxy.requests.length = 0;
  proxy.plan("POST", { kind: "answer", status: 429, headers: { "Retry-After": "120" } });
  await assert.rejects(tollgate.customers.create({ external_id: `js-429-${RUN}` }), (exc: unknown) => {
    assert.ok(exc instanceof RateLimitError);
    assert.deepEqual([exc.status, exc.retryAfter], [429, 120]);
    return true;
  });
  assert.equal(posts().length, 1);

  proxy.requests.length = 0;
  proxy.plan("POST", { kind: "answer", status: 502 }, { kind: "answer", status: 503 });
  await assert.rejects(tollgate.customers.create({ external_id: `js-502-${RUN}` }), (exc: unknown) => {
    assert.ok(exc instanceof ProviderError);
    assert.equal(exc.status, 503);
    return true;
  });
  assert.equal(posts().length, 2);
  await assert.rejects(client().customers.retrieve(`js-502-${RUN}`), { name: "NotFoundError" });
});
