/** Revenue recognition through the client against the demo: an amount paid on the emulator's Checkout (no
 * product) and part of it refunded move this month's figures by exactly that much — earned the day it was paid,
 * given back the day it was refunded, nothing left deferred and no prepaid credits — and months with nothing are
 * answered empty, oldest first; the API's refusals arrive as the client's errors. The demo's project is shared
 * with the other tests, so this month is compared with itself before the payment. */

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  InvalidRequestError,
  type RevenueRecognition,
  type RevenueRecognitionBalance,
  type RevenueRecognitionCurrency,
} from "../src/index.js";
import { CANCEL_URL, OK_URL, RUN, client, eventually, payCheckout } from "./helpers.js";

const tollgate = client();

type Figures = {
  billed: number;
  refunds: number;
  recognised: number;
  deferred: RevenueRecognitionBalance;
  credits: RevenueRecognitionBalance;
};

const NONE: Figures = {
  billed: 0,
  refunds: 0,
  recognised: 0,
  deferred: { opening: 0, added: 0, recognised: 0, closing: 0 },
  credits: { opening: 0, added: 0, recognised: 0, closing: 0 },
};

function figures(row: Figures | undefined): Figures {
  if (row === undefined) {
    return NONE;
  }
  const { billed, refunds, recognised, deferred, credits } = row;
  return { billed, refunds, recognised, deferred: { ...deferred }, credits: { ...credits } };
}

function balanceMinus(after: RevenueRecognitionBalance, before: RevenueRecognitionBalance): RevenueRecognitionBalance {
  return {
    opening: after.opening - before.opening,
    added: after.added - before.added,
    recognised: after.recognised - before.recognised,
    closing: after.closing - before.closing,
  };
}

function minus(after: Figures, before: Figures): Figures {
  return {
    billed: after.billed - before.billed,
    refunds: after.refunds - before.refunds,
    recognised: after.recognised - before.recognised,
    deferred: balanceMinus(after.deferred, before.deferred),
    credits: balanceMinus(after.credits, before.credits),
  };
}

/** This month's usd figures, in all and for the lines of no product. */
function usd(report: RevenueRecognition, month: string): { total: Figures; noProduct: Figures } {
  assert.deepEqual(report.months.map((m) => m.month), [month]);
  const currencies: RevenueRecognitionCurrency[] = report.months[0]?.currencies ?? [];
  const currency = currencies.find((c) => c.currency === "usd");
  return {
    total: figures(currency),
    noProduct: figures(currency?.products.find((p) => p.product === null)),
  };
}

test("an amount paid and partly refunded: this month's figures move by exactly that much", async () => {
  const month = new Date().toISOString().slice(0, 7);
  const before = usd(await tollgate.metrics.revenueRecognition({ month }), month);

  const customer = `js-revenue-${RUN}`;
  const payment = await tollgate.payments.create({
    customer,
    amount: 2500,
    currency: "usd",
    description: "Consulting",
    flow: "checkout",
    success_url: OK_URL,
    cancel_url: CANCEL_URL,
  });
  assert.ok(payment.stripe_checkout_session_id, "the payment has its Stripe Checkout session");
  await payCheckout(payment.stripe_checkout_session_id);
  await eventually(async () => {
    const current = await tollgate.payments.status(payment.id);
    return current.status === "succeeded" ? current : undefined;
  }, "the payment to succeed");
  const refunded = await tollgate.payments.refund(payment.id, { amount: 500 });
  assert.equal(refunded.amount_refunded, 500);

  const report = await tollgate.metrics.revenueRecognition({ month, months: 1 });
  assert.equal(report.object, "revenue_recognition");
  const after = usd(report, month);
  const moved: Figures = {
    billed: 2500,
    refunds: 500,
    recognised: 2000,
    deferred: { opening: 0, added: 2000, recognised: 2000, closing: 0 },
    credits: { opening: 0, added: 0, recognised: 0, closing: 0 },
  };
  assert.deepEqual(minus(after.total, before.total), moved);
  assert.deepEqual(minus(after.noProduct, before.noProduct), moved);
  const noProduct = report.months[0]?.currencies
    .find((c) => c.currency === "usd")
    ?.products.find((p) => p.product === null);
  assert.equal(noProduct?.name, "");
});

test("months with nothing are answered empty, oldest first, across a year's end", async () => {
  const report = await tollgate.metrics.revenueRecognition({ month: "2001-02", months: 3 });
  assert.deepEqual(report, {
    object: "revenue_recognition",
    months: [
      { month: "2000-12", currencies: [] },
      { month: "2001-01", currencies: [] },
      { month: "2001-02", currencies: [] },
    ],
  });
});

test("a bad month or count is refused", async () => {
  await assert.rejects(
    async () => await tollgate.metrics.revenueRecognition({ month: "2026-13" }),
    (error: unknown) =>
      error instanceof InvalidRequestError && error.code === "invalid_parameter" && error.param === "month",
  );
  await assert.rejects(
    async () => await tollgate.metrics.revenueRecognition({ months: 25 }),
    (error: unknown) =>
      error instanceof InvalidRequestError && error.code === "invalid_parameter" && error.param === "months",
  );
});
