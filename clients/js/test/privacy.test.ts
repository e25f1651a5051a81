/**
 * A privacy request through the client, on the live demo: a customer's data exported in one document, then
 * erased (its answer replayed under the same key), refused while a subscription is live, and the customer not
 * found afterwards.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { ConflictError, InvalidRequestError, NotFoundError } from "../src/index.js";
import { CANCEL_URL, OK_URL, RUN, client, eventually, payCheckout } from "./helpers.js";

const tollgate = client();

test("export then erase a customer", async () => {
  const customer = `js-privacy-${RUN}`;
  const email = `js.privacy-${RUN}@example.org`;
  await tollgate.customers.create({ external_id: customer, email, name: "Jay Esprivacy" });

  const document = await tollgate.customers.export(customer);
  assert.deepEqual(
    [document.object, document.customer.email, document.customer.name],
    ["customer_export", email, "Jay Esprivacy"],
  );
  assert.deepEqual(document.payments, []);

  await assert.rejects(tollgate.customers.erase(customer, { reason: "" }), InvalidRequestError);
  const options = { idempotencyKey: `erase-${RUN}` };
  const erased = await tollgate.customers.erase(customer, { reason: "dsr js" }, options);
  assert.equal(erased.object, "customer_erasure");
  assert.ok(erased.customer.startsWith("erased_"), erased.customer);
  const replayed = await tollgate.customers.erase(customer, { reason: "dsr js" }, options);
  assert.deepEqual(replayed, erased);
  await assert.rejects(tollgate.customers.retrieve(customer), NotFoundError);
  await assert.rejects(tollgate.customers.export(customer), NotFoundError);
});

test("erase is refused while a subscription is live", async () => {
  const customer = `js-privacy-sub-${RUN}`;
  const session = await tollgate.checkout.subscription({
    customer,
    price: "pro-monthly",
    success_url: OK_URL,
    cancel_url: CANCEL_URL,
  });
  await payCheckout(session.stripe_session_id ?? "");
  await eventually(async () => {
    const current = await tollgate.payments.status(session.payment);
    return current.status === "succeeded" ? current : undefined;
  }, "the payment to succeed");
  await assert.rejects(tollgate.customers.erase(customer, { reason: "dsr js" }), (error: unknown) => {
    assert.ok(error instanceof ConflictError);
    assert.equal(error.code, "customer_has_live_subscriptions");
    return true;
  });
  assert.equal((await tollgate.customers.retrieve(customer)).external_id, customer);
});
