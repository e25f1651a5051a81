/** `verifySignature` / `constructEvent` on signatures made here as Tollgate makes them (events/signing.py); the
 * journey verifies real deliveries of the demo. */

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";

import { SignatureVerificationError, constructEvent, verifySignature } from "../src/webhooks.js";

const body = JSON.stringify({ id: "evt_1", object: "event", type: "payment.succeeded", sequence: 7, data: { object: { id: "pay_1" } } });
const now = 1_790_000_000;

function sign(secret: string, timestamp = now, payload = body): string {
  return createHmac("sha256", secret).update(`${timestamp}.${payload}`).digest("hex");
}

test("a delivery signed with the secret gives its event; bytes and strings alike", () => {
  const header = `t=${now},v1=${sign("whsec_a")}`;
  const event = constructEvent(Buffer.from(body), header, "whsec_a", { now });
  assert.deepEqual([event.id, event.type, event.sequence, event.data], ["evt_1", "payment.succeeded", 7, { object: { id: "pay_1" } }]);
  assert.equal(constructEvent(body, header, "whsec_a", { now: now + 300 }).id, "evt_1");
});

test("during a secret roll: two signatures, either secret verifies, and a list of secrets too", () => {
  const header = `t=${now},v1=${sign("whsec_new")},v1=${sign("whsec_old")}`;
  for (const secret of ["whsec_old", "whsec_new", ["whsec_other", "whsec_old"]]) {
    verifySignature(body, header, secret, { now });
  }
  assert.throws(() => verifySignature(body, header, ["whsec_other"], { now }), {
    name: "SignatureVerificationError",
    message: "No signature matches the secret.",
  });
});

test("refused: another body, an old or future timestamp, a malformed header", () => {
  const header = `t=${now},v1=${sign("whsec_a")}`;
  assert.throws(() => verifySignature(body.replace("pay_1", "pay_2"), header, "whsec_a", { now }), SignatureVerificationError);
  for (const at of [now + 301, now - 301]) {
    assert.throws(() => verifySignature(body, header, "whsec_a", { now: at }), {
      message: "The delivery is older than the tolerance (or the clocks differ).",
    });
  }
  verifySignature(body, header, "whsec_a", { now: now + 86_400, tolerance: 0 }); // 0: no age check
  const malformed: Array<[string | undefined, string]> = [
    [undefined, "Malformed Tollgate-Signature header."],
    ["", "Malformed Tollgate-Signature header."],
    [`v1=${sign("whsec_a")}`, "Malformed Tollgate-Signature header."],
    [`t=${now}`, "Malformed Tollgate-Signature header."],
    [`t=${now},v1=`, "Malformed Tollgate-Signature header."],
    [`t=soon,v1=${sign("whsec_a")}`, "Malformed Tollgate-Signature timestamp."],
  ];
  for (const [bad, message] of malformed) {
    assert.throws(() => verifySignature(body, bad, "whsec_a", { now }), { name: "SignatureVerificationError", message });
  }
  assert.throws(() => verifySignature(body, `t=${now},v1=${sign("whsec_a").slice(1)}`, "whsec_a", { now }), SignatureVerificationError);
});
