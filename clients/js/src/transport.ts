/**
 * HTTP for the client: authentication, idempotency keys, retries with backoff, errors.
 *
 * A mutating request (POST, PATCH, DELETE) carries one `Idempotency-Key` for the whole logical call: every retry
 * sends the same key, so Tollgate replays the first answer instead of acting twice. What is retried (the same
 * rules as the Python client's `_transport.py`):
 *
 * - no answer at all (connection refused or reset, timeout): the request may or may not have been applied, and
 *   the key makes finding out safe;
 * - 429, and 5xx (Tollgate does not store those answers under the key, so the retry really runs again);
 * - 409 `idempotency_key_in_use` (the first attempt is still running; its answer comes with the next try).
 *
 * Waits grow exponentially with jitter (0.5 s, 1 s, 2 s … up to 8 s). A `Retry-After` from the server is waited
 * out in full, unless it asks for more than a minute: then the error is thrown at once for the caller to decide.
 */

import { randomUUID } from "node:crypto";

import {
  APIConnectionError,
  APIError,
  APITimeoutError,
  ConflictError,
  TollgateError,
  errorFromResponse,
  parseRetryAfter,
} from "./errors.js";
import { VERSION } from "./version.js";

export const MUTATING_METHODS: ReadonlySet<string> = new Set(["POST", "PATCH", "PUT", "DELETE"]);
export const API_PREFIX = "/api/v1";
export const INITIAL_RETRY_DELAY = 0.5;
export const MAX_RETRY_DELAY = 8.0;
export const MAX_RETRY_AFTER = 60.0;

export type Fetch = typeof fetch;
export type QueryParams = Record<string, string | number | boolean | null | undefined>;

export interface RequestOptions {
  /** The query string; a parameter that is null or undefined is not sent. */
  params?: QueryParams;
  /** The JSON body (a field that is undefined is not sent). */
  body?: unknown;
  /** Mutating methods only: yours, or a new UUID for this call (the same on every retry). */
  idempotencyKey?: string;
}

export interface TransportOptions {
  apiKey: string;
  baseUrl: string;
  timeoutMs: number;
  maxRetries: number;
  defaultHeaders?: Record<string, string>;
  fetch?: Fetch;
  /** Waits between attempts (tests replace it). */
  sleep?: (ms: number) => Promise<void>;
}

/** A successful answer: its status, headers and exact bytes (a signature check needs them). */
export interface RawResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class Transport {
  readonly apiKey: string;
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly defaultHeaders: Record<string, string>;
  private readonly fetchImpl: Fetch;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: TransportOptions) {
    if (!options.apiKey) {
      throw new TypeError("apiKey is required (a project key `tg_sk_…`, or a platform key).");
    }
    if (!Number.isInteger(options.maxRetries) || options.maxRetries < 0) {
      throw new TypeError("maxRetries must be an integer, 0 or more.");
    }
    if (!(options.timeoutMs > 0)) {
      throw new TypeError("timeoutMs must be more than 0.");
    }
    this.apiKey = options.apiKey;
    this.baseUrl = apiRoot(options.baseUrl);
    this.timeoutMs = options.timeoutMs;
    this.maxRetries = options.maxRetries;
    this.defaultHeaders = { ...(options.defaultHeaders ?? {}) };
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.sleep = options.sleep ?? defaultSleep;
  }

  /** The same settings but these. */
  copy(changes: { timeoutMs?: number; maxRetries?: number }): Transport {
    return new Transport({
      apiKey: this.apiKey,
      baseUrl: this.baseUrl,
      timeoutMs: changes.timeoutMs ?? this.timeoutMs,
      maxRetries: changes.maxRetries ?? this.maxRetries,
      defaultHeaders: this.defaultHeaders,
      fetch: this.fetchImpl,
      sleep: this.sleep,
    });
  }

  /** Sends the request (retrying as the module's comment says) and resolves to the decoded JSON answer, or null
   * for an empty one (204). */
  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    return decode(await this.send(method, path, options)) as T;
  }

  /** `request`, resolving to the successful response itself. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<RawResponse> {
    const verb = method.toUpperCase();
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.apiKey}`,
      Accept: "application/json",
      "User-Agent": `tollgate-client-js/${VERSION} (Node ${process.version})`,
      ...this.defaultHeaders,
    };
    if (MUTATING_METHODS.has(verb)) {
      headers["Idempotency-Key"] = options.idempotencyKey || randomUUID();
    }
    let content: string | undefined;
    if (options.body !== undefined && options.body !== null) {
      content = JSON.stringify(options.body);
      headers["Content-Type"] = "application/json";
    }
    const url = this.baseUrl + path + queryString(options.params);
    for (let attempt = 0; ; attempt++) {
      let error: TollgateError;
      // A timer of our own (AbortSignal.timeout's does not keep the process alive), over the body's reading too.
      const controller = new AbortController();
      const timer = setTimeout(
        () => controller.abort(new DOMException("The attempt timed out.", "TimeoutError")),
        this.timeoutMs,
      );
      try {
        const response = await this.fetchImpl(url, {
          method: verb,
          headers,
          body: content,
          redirect: "manual",
          signal: controller.signal,
        });
        // The body is read inside the try: a connection dropped half-way through the answer is no answer.
        const body = new Uint8Array(await response.arrayBuffer());
        if (response.status < 400) {
          return { status: response.status, headers: response.headers, body };
        }
        error = errorFromResponse(response.status, response.headers, body);
      } catch (exc) {
        if (isTimeout(exc)) {
          error = new APITimeoutError(`Tollgate did not answer ${verb} ${path} in time.`, { cause: exc });
        } else {
          error = new APIConnectionError(`Could not reach Tollgate for ${verb} ${path}: ${describe(exc)}.`, {
            cause: exc,
          });
        }
      } finally {
        clearTimeout(timer);
      }
      const delay = this.retryDelay(error, attempt);
      if (delay === null) {
        throw error;
      }
      await this.sleep(delay * 1000);
    }
  }

  /** Seconds to wait before retrying, or null when the error is final. */
  retryDelay(error: TollgateError, attempt: number, random: () => number = Math.random): number | null {
    if (attempt >= this.maxRetries || !retryable(error)) {
      return null;
    }
    const backoff = Math.min(MAX_RETRY_DELAY, INITIAL_RETRY_DELAY * 2 ** attempt);
    let delay = backoff / 2 + random() * (backoff / 2); // jitter
    const retryAfter = parseRetryAfter(error.headers["retry-after"]);
    if (retryAfter !== null) {
      if (retryAfter > MAX_RETRY_AFTER) {
        return null;
      }
      delay = Math.max(delay, retryAfter);
    }
    return delay;
  }
}

export function retryable(error: TollgateError): boolean {
  if (error instanceof APIConnectionError) {
    return true;
  }
  if (error instanceof ConflictError) {
    return error.code === "idempotency_key_in_use";
  }
  return error.status !== null && (error.status === 429 || error.status >= 500);
}

/** `https://tollgate.example.com` (or the same with `/api/v1`) → `https://tollgate.example.com/api/v1`. */
export function apiRoot(baseUrl: string): string {
  const root = baseUrl.replace(/\/+$/, "");
  if (!root.startsWith("http://") && !root.startsWith("https://")) {
    throw new TypeError(`baseUrl must be an http(s) URL, not ${JSON.stringify(baseUrl)}.`);
  }
  return root.endsWith(API_PREFIX) ? root : root + API_PREFIX;
}

export function queryString(params: QueryParams | undefined): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value === null || value === undefined) {
      continue;
    }
    query.append(key, String(value));
  }
  const text = query.toString();
  return text ? `?${text}` : "";
}

function isTimeout(exc: unknown): boolean {
  return exc instanceof DOMException && (exc.name === "TimeoutError" || exc.name === "AbortError");
}

function describe(exc: unknown): string {
  if (exc instanceof Error) {
    const cause = (exc as { cause?: unknown }).cause;
    return cause instanceof Error ? `${exc.message} (${cause.message})` : exc.message;
  }
  return String(exc);
}

function decode(response: RawResponse): unknown {
  if (response.status === 204 || response.body.length === 0) {
    return null;
  }
  try {
    return JSON.parse(new TextDecoder().decode(response.body));
  } catch {
    throw new APIError(`Tollgate answered ${response.status} with a body that is not JSON.`, {
      status: response.status,
      requestId: response.headers.get("x-request-id"),
    });
  }
}
