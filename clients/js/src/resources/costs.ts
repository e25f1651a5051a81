/** What your own product costs you: the project's cost table, versioned (AI usage priced by model and token). */

import type { PagePromise } from "../pagination.js";
import type { CostTable } from "../types.js";
import { Resource, type WriteOptions, path } from "./base.js";

/** A dimension's cost: `micros` micro-units of the currency per `per` units (default 1), or micros per one unit. */
export type CostRate = { micros: number; per?: number } | number;

/**
 * Versions are never changed: a new price is a new version, applying from its `starts_at` (never before now) until
 * the next one starts. A feature's usage formula of type `cost` prices usage events by the version in force at
 * each event's time.
 */
export class CostTables extends Resource {
  /** The next version; `starts_at` defaults to now (before now: `starts_in_past`; not after the latest's: `starts_before_latest`). */
  create(
    params: { currency: string; models: Record<string, Record<string, CostRate>>; starts_at?: string | Date },
    options?: WriteOptions,
  ): Promise<CostTable> {
    return this._post("/cost_tables", params, options);
  }

  /** Every version, newest first, on one page (`current` on the one in force). */
  list(): PagePromise<CostTable> {
    return this._list("/cost_tables", {});
  }

  retrieve(tableId: string): Promise<CostTable> {
    return this._get(path("/cost_tables/{}", tableId));
  }
}
