/**
 * Verify and parse a Tollgate webhook delivery (Node).
 *
 * ```ts
 * const event = constructEvent(rawBody, req.headers["tollgate-signature"], secret);
 * ```
 *
 * `Tollgate-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` — during a secret roll two `v1` values are
 * sent, one per valid secret; pass either secret (or an array of both). Deliveries older than `tolerance`
 * seconds are refused, so a captured delivery cannot be replayed later. The same rules as the Python client's
 * `webhooks.py`.
 */

import { createHmac, timingSafeEqual } from "node:crypto";

import type { Event } from "./types.js";

export const DEFAULT_TOLERANCE = 300;

/** The delivery is not from Tollgate with this secret, or is too old. */
export class SignatureVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignatureVerificationError";
  }
}

export interface VerifyOptions {
  /** Seconds a delivery stays acceptable (default 300); 0 turns the check off. */
  tolerance?: number;
  /** The current time in Unix seconds (tests). */
  now?: number;
}

type Payload = string | Uint8Array;
type Header = string | string[] | null | undefined;

function parseHeader(header: string): { timestamp: number; signatures: string[] } {
  let timestamp: number | null = null;
  const signatures: string[] = [];
  for (const part of header.split(",")) {
    const trimmed = part.trim();
    const cut = trimmed.indexOf("=");
    const key = cut === -1 ? trimmed : trimmed.slice(0, cut);
    const value = cut === -1 ? "" : trimmed.slice(cut + 1);
    if (key === "t") {
      if (!/^\s*[+-]?\d+\s*$/.test(value)) {
        throw new SignatureVerificationError("Malformed Tollgate-Signature timestamp.");
      }
      timestamp = Number.parseInt(value, 10);
    } else if (key === "v1" && value) {
      signatures.push(value);
    }
  }
  if (timestamp === null || signatures.length === 0) {
    throw new SignatureVerificationError("Malformed Tollgate-Signature header.");
  }
  return { timestamp, signatures };
}

function bytes(payload: Payload): Buffer {
  return typeof payload === "string" ? Buffer.from(payload, "utf8") : Buffer.from(payload);
}

function equal(expected: string, given: string): boolean {
  const a = Buffer.from(expected, "utf8");
  const b = Buffer.from(given, "utf8");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Throws `SignatureVerificationError` unless one `v1` of the header is the body's signature with one of the
 * secrets, made within `tolerance` seconds. */
export function verifySignature(
  payload: Payload,
  header: Header,
  secret: string | readonly string[],
  options: VerifyOptions = {},
): void {
  const text = Array.isArray(header) ? header.join(",") : (header ?? "");
  const { timestamp, signatures } = parseHeader(text);
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  const now = options.now ?? Date.now() / 1000;
  if (tolerance && Math.abs(now - timestamp) > tolerance) {
    throw new SignatureVerificationError("The delivery is older than the tolerance (or the clocks differ).");
  }
  const body = bytes(payload);
  const secrets = typeof secret === "string" ? [secret] : [...secret];
  for (const candidate of secrets) {
    const expected = createHmac("sha256", candidate).update(`${timestamp}.`).update(body).digest("hex");
    if (signatures.some((given) => equal(expected, given))) {
      return;
    }
  }
  throw new SignatureVerificationError("No signature matches the secret.");
}

/**
 * Verifies the delivery and returns the event it carries (`event.type`, `event.data.object`, …). Pass the raw
 * body (a Buffer or the exact string received), not re-serialized JSON.
 */
export function constructEvent(
  payload: Payload,
  header: Header,
  secret: string | readonly string[],
  options: VerifyOptions = {},
): Event {
  verifySignature(payload, header, secret, options);
  return JSON.parse(bytes(payload).toString("utf8")) as Event;
}
