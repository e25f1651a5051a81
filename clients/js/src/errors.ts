/**
 * The errors the client throws: one class per kind of error in Tollgate's envelope, plus network errors.
 *
 * Every API error carries the envelope `{"error": {"type", "code", "message", "param"}}` and the response's
 * `X-Request-Id`. Branch on the class (`instanceof`) or on `code`, never on `message`.
 */

export interface ErrorDetails {
  status?: number | null;
  type?: string | null;
  code?: string | null;
  param?: string | null;
  requestId?: string | null;
  body?: Record<string, unknown>;
  headers?: Record<string, string>;
  cause?: unknown;
}

/** Base of every error the client throws. `status` is null when no HTTP answer arrived. */
export class TollgateError extends Error {
  readonly status: number | null;
  readonly type: string | null;
  readonly code: string | null;
  readonly param: string | null;
  /** The response's `X-Request-Id`: quote it to your operator. */
  readonly requestId: string | null;
  /** The decoded error body (`{"error": {…}}`), empty when there was none. */
  readonly body: Record<string, unknown>;
  /** The response's headers, names in lower case. */
  readonly headers: Record<string, string>;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.status = details.status ?? null;
    this.type = details.type ?? null;
    this.code = details.code ?? null;
    this.param = details.param ?? null;
    this.requestId = details.requestId ?? null;
    this.body = details.body ?? {};
    this.headers = details.headers ?? {};
  }

  override toString(): string {
    const details = (
      [
        ["status", this.status],
        ["code", this.code],
        ["param", this.param],
        ["request_id", this.requestId],
      ] as const
    )
      .filter(([, value]) => value !== null)
      .map(([name, value]) => `${name} ${value}`);
    const text = details.length ? `${this.message} (${details.join(", ")})` : this.message;
    return `${this.name}: ${text}`;
  }
}

/** No answer from Tollgate: DNS, connection refused or reset, TLS failure. Safe to retry with the same key. */
export class APIConnectionError extends TollgateError {}

/**
 * Tollgate did not answer within `timeoutMs`. The request may or may not have been applied: retry with the same
 * idempotency key to find out without acting twice.
 */
export class APITimeoutError extends APIConnectionError {}

/** Tollgate answered with an error status. `status` is always set. */
export class APIStatusError extends TollgateError {
  declare readonly status: number;
}

/** 400 (invalid or malformed request; `param` names the field), 405, 413 (body too large), 415. */
export class InvalidRequestError extends APIStatusError {}

/** 401: missing, unknown or revoked API key. */
export class AuthenticationError extends APIStatusError {}

/** 402: the card was declined; `declineCode` says why (e.g. `insufficient_funds`). */
export class CardError extends APIStatusError {
  get declineCode(): string | null {
    const value = envelope(this.body)["decline_code"];
    return value === undefined || value === null ? null : String(value);
  }
}

/** 403: a key of the wrong kind (platform vs project), or a suspended project. */
export class PermissionDeniedError extends APIStatusError {}

/** 404: no such object — objects of other projects included. */
export class NotFoundError extends APIStatusError {}

/**
 * 409: the request conflicts with current state; `code` says which (`already_subscribed`, `currency_mismatch`,
 * `reference_conflict`, `idempotency_key_reused`, …).
 */
export class ConflictError extends APIStatusError {}

/** 429: too many requests for this key. `retryAfter` is the server's `Retry-After`, in seconds. */
export class RateLimitError extends APIStatusError {
  get retryAfter(): number | null {
    return parseRetryAfter(this.headers["retry-after"]);
  }
}

/** 502/503: Stripe failed or is unreachable. Retry with the same idempotency key. */
export class ProviderError extends APIStatusError {}

/** 500 and any other unexpected status: a fault on Tollgate's side. */
export class APIError extends APIStatusError {}

const BY_STATUS: Record<number, new (message: string, details: ErrorDetails) => APIStatusError> = {
  400: InvalidRequestError,
  401: AuthenticationError,
  402: CardError,
  403: PermissionDeniedError,
  404: NotFoundError,
  405: InvalidRequestError,
  409: ConflictError,
  413: InvalidRequestError,
  415: InvalidRequestError,
  429: RateLimitError,
  502: ProviderError,
  503: ProviderError,
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function envelope(body: Record<string, unknown>): Record<string, unknown> {
  const error = body["error"];
  return isRecord(error) ? error : {};
}

function optionalString(value: unknown): string | null {
  return value === undefined || value === null ? null : String(value);
}

/** `Retry-After` in seconds, from either of its forms (delta-seconds or an HTTP date). */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | null {
  if (!value) {
    return null;
  }
  const trimmed = value.trim();
  const seconds = trimmed === "" ? Number.NaN : Number(trimmed);
  if (!Number.isNaN(seconds)) {
    return Math.max(0, seconds);
  }
  const when = Date.parse(trimmed);
  if (Number.isNaN(when)) {
    return null;
  }
  return Math.max(0, (when - now) / 1000);
}

/**
 * The error for an error answer. A body that is not the envelope (a proxy's HTML page) still gives the right
 * class, by status, with the start of the body as the message.
 */
export function errorFromResponse(status: number, headers: Headers, content: Uint8Array): APIStatusError {
  const text = new TextDecoder().decode(content);
  let parsed: unknown = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = {};
  }
  const body = isRecord(parsed) ? parsed : {};
  const error = envelope(body);
  const message = optionalString(error["message"]) || text.slice(0, 200).trim() || `HTTP ${status}`;
  const headerMap: Record<string, string> = {};
  headers.forEach((value, key) => {
    headerMap[key.toLowerCase()] = value;
  });
  const cls = BY_STATUS[status] ?? APIError;
  return new cls(message, {
    status,
    type: optionalString(error["type"]),
    code: optionalString(error["code"]),
    param: optionalString(error["param"]),
    requestId: headers.get("x-request-id"),
    body,
    headers: headerMap,
  });
}
