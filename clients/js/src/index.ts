export { Tollgate, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_MS, type TollgateOptions } from "./client.js";
export * from "./errors.js";
export { Page, PagePromise, StreamPage, type ListObject, type StreamListObject } from "./pagination.js";
export { Transport, type RequestOptions, type RawResponse, type TransportOptions } from "./transport.js";
export type { ListParams, WriteOptions } from "./resources/base.js";
export type * from "./resources/catalog.js";
export type * from "./resources/checkout.js";
export type * from "./resources/costs.js";
export type * from "./resources/credit-notes.js";
export type * from "./resources/customers.js";
export type * from "./resources/discounts.js";
export type * from "./resources/entitlements.js";
export type * from "./resources/events.js";
export type * from "./resources/journal.js";
export type * from "./resources/margins.js";
export type * from "./resources/agents.js";
export type * from "./resources/payments.js";
export type * from "./resources/projects.js";
export type * from "./resources/subscriptions.js";
export type * from "./types.js";
export {
  DEFAULT_TOLERANCE,
  SignatureVerificationError,
  constructEvent,
  verifySignature,
  type VerifyOptions,
} from "./webhooks.js";
export { VERSION } from "./version.js";
