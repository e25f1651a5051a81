/** Customers: your users, known by your own id (`external_id`). */

import type { PagePromise } from "../pagination.js";
import type { Customer, CustomerErasure, CustomerExport } from "../types.js";
import { type ListParams, Resource, type WriteOptions, path } from "./base.js";

export interface CustomerCreateParams {
  external_id: string;
  email?: string;
  name?: string;
  metadata?: Record<string, unknown>;
}

export class Customers extends Resource {
  /** Creates the customer, or updates the one with this `external_id` (an upsert). */
  create(params: CustomerCreateParams, options?: WriteOptions): Promise<Customer> {
    return this._post("/customers", params, options);
  }

  retrieve(externalId: string): Promise<Customer> {
    return this._get(path("/customers/{}", externalId));
  }

  list(params: ListParams & { email?: string } = {}): PagePromise<Customer> {
    return this._list("/customers", params);
  }

  /** Every row Tollgate keeps keyed to the customer, in one document grouped by kind (the read is audited). */
  export(externalId: string): Promise<CustomerExport> {
    return this._get(path("/customers/{}/export", externalId));
  }

  /**
   * Erases the person for good (their data here and their Stripe customer), keeping the money records.
   * Refused (409 `customer_has_live_subscriptions`) while a subscription is live; afterwards the customer is
   * not found (404).
   */
  erase(externalId: string, params: { reason: string }, options?: WriteOptions): Promise<CustomerErasure> {
    return this._post(path("/customers/{}/erase", externalId), params, options);
  }
}
