/** Lists page by `starting_after` (a page, and every item of every page with `for await`), and errors arrive as
 * their classes with the envelope's exact code, param and the request id. */

import assert from "node:assert/strict";
import { before, test } from "node:test";

import {
  AuthenticationError,
  ConflictError,
  InvalidRequestError,
  NotFoundError,
  Tollgate,
  TollgateError,
} from "../src/index.js";
import { CANCEL_URL, OK_URL, RUN, client, demo } from "./helpers.js";

const customer = `js-pager-${RUN}`;
const AMOUNTS = [1000, 1001, 1002, 1003, 1004];
const pageRequests: string[] = [];
const counting: typeof fetch = (input, init) => {
  if ((init?.method ?? "GET") === "GET") {
    pageRequests.push(String(input));
  }
  return fetch(input, init);
};
const tollgate = client({ fetch: counting });

before(async () => {
  for (const [index, amount] of AMOUNTS.entries()) {
    await tollgate.payments.create({
      customer,
      amount,
      currency: "usd",
      description: `Order ${index}`,
      reference: `order-${RUN}-${index}`,
      flow: "checkout",
      success_url: OK_URL,
      cancel_url: CANCEL_URL,
    });
  }
});

test("a page, the next ones, and every item of every page with for await", async () => {
  pageRequests.length = 0;
  const first = await tollgate.payments.list({ customer, limit: 2 });
  assert.deepEqual([first.data.map((p) => p.amount), first.hasMore], [[1004, 1003], true]);
  assert.equal(first.raw.object, "list");
  const second = await first.nextPage();
  assert.deepEqual([second?.data.map((p) => p.amount), second?.hasMore], [[1002, 1001], true]);
  const last = await second?.nextPage();
  assert.deepEqual([last?.data.map((p) => p.amount), last?.hasMore], [[1000], false]);
  assert.equal(await last?.nextPage(), null);
  assert.equal(pageRequests.length, 3);
  assert.match(pageRequests[1] ?? "", new RegExp(`starting_after=${first.data[1]?.id}`));

  pageRequests.length = 0;
  const amounts: number[] = [];
  for await (const payment of tollgate.payments.list({ customer, limit: 2 })) {
    assert.equal(payment.customer, customer);
    amounts.push(payment.amount);
  }
  assert.deepEqual(amounts, [1004, 1003, 1002, 1001, 1000]);
  assert.equal(pageRequests.length, 3); // one request per page, same filters and limit
  assert.ok(pageRequests.every((url) => url.includes(`customer=${customer}`) && url.includes("limit=2")));

  const references = (await tollgate.payments.list({ customer, limit: 100 }).toArray()).map((p) => p.reference);
  assert.deepEqual(references, [4, 3, 2, 1, 0].map((index) => `order-${RUN}-${index}`));
  const filtered = await tollgate.payments.list({ customer, reference: `order-${RUN}-2` });
  assert.deepEqual([filtered.data.map((p) => p.amount), filtered.hasMore], [[1002], false]);
});

test("an error is its class with the envelope's code, param and request id", async () => {
  const error = await tollgate.checkout
    .subscription({ customer, price: "pro-monthly", success_url: "https://evil.example.net/ok", cancel_url: CANCEL_URL })
    .then(
      () => assert.fail("a redirect off the allowed hosts was accepted"),
      (exc: unknown) => exc,
    );
  assert.ok(error instanceof InvalidRequestError);
  assert.ok(error instanceof TollgateError);
  assert.deepEqual(
    [error.status, error.type, error.code, error.param, error.message],
    [
      400,
      "invalid_request_error",
      "redirect_not_allowed",
      "success_url",
      "success_url host 'evil.example.net' is not in the project's allowed_redirect_hosts.",
    ],
  );
  assert.match(error.requestId ?? "", /^req_\w+$/);
  assert.equal(error.name, "InvalidRequestError");

  await assert.rejects(tollgate.payments.retrieve("pay_missing"), (exc: unknown) => {
    assert.ok(exc instanceof NotFoundError);
    assert.deepEqual([exc.status, exc.type, exc.code], [404, "not_found", "resource_missing"]);
    return true;
  });

  // The same reference with another body is a conflict; so is an idempotency key reused for another body.
  await assert.rejects(
    tollgate.payments.create({
      customer,
      amount: 999,
      currency: "usd",
      description: "Order 0",
      reference: `order-${RUN}-0`,
      flow: "checkout",
      success_url: OK_URL,
      cancel_url: CANCEL_URL,
    }),
    (exc: unknown) => exc instanceof ConflictError && exc.status === 409 && exc.code === "reference_conflict",
  );
  const key = `reused-${RUN}`;
  await tollgate.customers.create({ external_id: `${customer}-b` }, { idempotencyKey: key });
  await assert.rejects(
    tollgate.customers.create({ external_id: `${customer}-c` }, { idempotencyKey: key }),
    (exc: unknown) => exc instanceof ConflictError && exc.code === "idempotency_key_reused",
  );
  await assert.rejects(tollgate.customers.retrieve(`${customer}-c`), NotFoundError);

  const stranger = new Tollgate({ apiKey: "tg_sk_not_a_key", baseUrl: demo.url });
  await assert.rejects(stranger.project.retrieve(), (exc: unknown) => {
    assert.ok(exc instanceof AuthenticationError);
    assert.deepEqual([exc.status, exc.code], [401, "invalid_api_key"]);
    return true;
  });
});
