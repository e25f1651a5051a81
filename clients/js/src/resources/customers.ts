/** Customers: your users, known by your own id (`external_id`). */

import type { PagePromise } from "../pagination.js";
import type { Customer } from "../types.js";
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
}
