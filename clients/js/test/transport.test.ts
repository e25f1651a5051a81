/** The transport's rules without a server (a fake `fetch`): headers, keys, what is retried and how long it waits. */

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  APIConnectionError,
  APITimeoutError,
  ConflictError,
  ProviderError,
  RateLimitError,
  Tollgate,
  Transport,
  errorFromResponse,
  parseRetryAfter,
  VERSION,
} from "../src/index.js";

interface Call {
  url: string;
  init: RequestInit;
}

function fake(...answers: Array<Response | Error>): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    fetch: async (input, init) => {
      calls.push({ url: String(input), init: init ?? {} });
      const next = answers.shift();
      if (next === undefined) {
        throw new Error("no more answers");
      }
      if (next instanceof Error) {
        throw next;
      }
      return next;
    },
  };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

function transport(fetchImpl: typeof fetch, sleeps: number[] = [], maxRetries = 2): Transport {
  return new Transport({
    apiKey: "tg_sk_test",
    baseUrl: "http://tollgate.test/",
    timeoutMs: 1000,
    maxRetries,
    fetch: fetchImpl,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  });
}

const inUse = { error: { type: "conflict", code: "idempotency_key_in_use", message: "Still running.", param: null } };

test("a POST carries one Idempotency-Key for all its attempts; a GET none", async () => {
  const server = fake(new TypeError("fetch failed"), json(409, inUse), json(201, { id: "cus_1" }), json(200, { id: "cus_1" }));
  const sleeps: number[] = [];
  const tollgate = new Tollgate(transport(server.fetch, sleeps));

  const created = await tollgate.customers.create({ external_id: "user-1", email: undefined });
  const fetched = await tollgate.customers.retrieve("a/b c");

  assert.deepEqual([created.id, fetched.id], ["cus_1", "cus_1"]);
  const keys = server.calls.map((c) => new Headers(c.init.headers).get("idempotency-key"));
  assert.match(keys[0] ?? "", /^[0-9a-f-]{36}$/);
  assert.deepEqual(keys, [keys[0], keys[0], keys[0], null]);
  assert.deepEqual(
    server.calls.map((c) => [c.init.method, c.url]),
    [
      ["POST", "http://tollgate.test/api/v1/customers"],
      ["POST", "http://tollgate.test/api/v1/customers"],
      ["POST", "http://tollgate.test/api/v1/customers"],
      ["GET", "http://tollgate.test/api/v1/customers/a%2Fb%20c"],
    ],
  );
  assert.equal(server.calls[0]?.init.body, '{"external_id":"user-1"}');
  const headers = new Headers(server.calls[0]?.init.headers);
  assert.equal(headers.get("authorization"), "Bearer tg_sk_test");
  // The client's own version (src/version.ts, which tests/docs/test_changes_note.py holds to the release's).
  const version = VERSION.replaceAll(".", "\\.");
  assert.match(headers.get("user-agent") ?? "", new RegExp(`^tollgate-client-js/${version} \\(Node v\\d+`));
  assert.equal(sleeps.length, 2);
  assert.ok(sleeps[0]! >= 250 && sleeps[0]! <= 500, `first wait ${sleeps[0]}`);
  assert.ok(sleeps[1]! >= 500 && sleeps[1]! <= 1000, `second wait ${sleeps[1]}`);
});

test("the caller's key is sent as given; list queries leave out what is undefined", async () => {
  const server = fake(json(200, { id: "pay_1" }), json(200, { object: "list", data: [], has_more: false }));
  const tollgate = new Tollgate(transport(server.fetch));
  await tollgate.payments.refund("pay_1", { amount: 100 }, { idempotencyKey: "refund-order-42" });
  await tollgate.payments.list({ customer: "user 1", status: undefined, limit: 5 });
  assert.equal(new Headers(server.calls[0]?.init.headers).get("idempotency-key"), "refund-order-42");
  assert.equal(server.calls[1]?.url, "http://tollgate.test/api/v1/payments?customer=user+1&limit=5");
});

test("backoff doubles from 0.5 s up to 8 s with jitter; Retry-After is waited out unless over a minute", () => {
  const t = transport(fake().fetch, [], 10);
  const error = (status: number, headers: Record<string, string> = {}) =>
    errorFromResponse(status, new Headers(headers), new Uint8Array());
  const low = () => 0;
  const high = () => 1;
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map((attempt) => t.retryDelay(error(500), attempt, low)),
    [0.25, 0.5, 1, 2, 4, 4],
  );
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map((attempt) => t.retryDelay(error(503), attempt, high)),
    [0.5, 1, 2, 4, 8, 8],
  );
  assert.equal(t.retryDelay(error(429, { "Retry-After": "3" }), 0, high), 3);
  assert.equal(t.retryDelay(error(429, { "Retry-After": "60" }), 0, high), 60);
  assert.equal(t.retryDelay(error(429, { "Retry-After": "61" }), 0, high), null);
  assert.equal(t.retryDelay(error(400), 0), null);
  assert.equal(t.retryDelay(error(404), 0), null);
  assert.equal(t.retryDelay(error(409), 0), null);
  assert.equal(t.retryDelay(new ConflictError("x", { status: 409, code: "idempotency_key_in_use" }), 0, low), 0.25);
  assert.equal(t.retryDelay(new APIConnectionError("x"), 9, low), 4);
  assert.equal(t.retryDelay(new APIConnectionError("x"), 10, low), null); // maxRetries reached
  assert.equal(parseRetryAfter("Wed, 25 Nov 2026 10:00:30 GMT", Date.parse("2026-11-25T10:00:00Z")), 30);
  assert.equal(parseRetryAfter("soon"), null);
});

test("a timeout is an APITimeoutError after the retries; an HTML error page still gives its class", async () => {
  const never: typeof fetch = (_input, init) =>
    new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)));
  const slow = new Transport({ apiKey: "k", baseUrl: "http://tollgate.test", timeoutMs: 20, maxRetries: 1, fetch: never, sleep: async () => {} });
  await assert.rejects(slow.request("GET", "/project"), (exc: unknown) => {
    assert.ok(exc instanceof APITimeoutError);
    assert.ok(exc instanceof APIConnectionError);
    assert.deepEqual([exc.status, exc.message], [null, "Tollgate did not answer GET /project in time."]);
    return true;
  });

  const html = new Response("<html><body>Bad gateway</body></html>", { status: 502, headers: { "X-Request-Id": "req_1" } });
  const proxy = transport(fake(html).fetch, [], 0);
  await assert.rejects(proxy.request("GET", "/project"), (exc: unknown) => {
    assert.ok(exc instanceof ProviderError);
    assert.deepEqual([exc.status, exc.code, exc.requestId, exc.message], [502, null, "req_1", "<html><body>Bad gateway</body></html>"]);
    return true;
  });
  const limited = errorFromResponse(429, new Headers({ "Retry-After": "7" }), new TextEncoder().encode("{}"));
  assert.ok(limited instanceof RateLimitError);
  assert.equal(limited.retryAfter, 7);
});

test("options are checked; the base URL works with or without /api/v1", () => {
  const make = (baseUrl: string) => new Tollgate({ apiKey: "k", baseUrl }).baseUrl;
  assert.equal(make("https://t.example.com"), "https://t.example.com/api/v1");
  assert.equal(make("https://t.example.com/api/v1/"), "https://t.example.com/api/v1");
  assert.throws(() => make("t.example.com"), TypeError);
  assert.throws(() => new Tollgate({ apiKey: "", baseUrl: "http://t" }), /apiKey is required/);
  assert.throws(() => new Tollgate({ apiKey: "k", baseUrl: "http://t", maxRetries: -1 }), /maxRetries/);
  const tollgate = new Tollgate({ apiKey: "k", baseUrl: "http://t" });
  assert.deepEqual([tollgate.maxRetries, tollgate.timeoutMs], [2, 30000]);
  const once = tollgate.withOptions({ maxRetries: 0, timeoutMs: 5000 });
  assert.deepEqual([once.maxRetries, once.timeoutMs, once.baseUrl], [0, 5000, "http://t/api/v1"]);
});
