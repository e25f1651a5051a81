/** What your customers were billed for their usage against what it cost you: the margins report. */

import { APIError } from "../errors.js";
import { type ListObject, Page, PagePromise } from "../pagination.js";
import type { Margin } from "../types.js";
import { Resource } from "./base.js";

/** What a margins report may group its rows by, besides the month and the currency. */
export type MarginGroup = "customer" | "feature" | "model";

export interface MarginListParams {
  /** The window's start (inclusive): an ISO 8601 date or time, or a `Date`. Default: the first day of the month
   * (UTC) of the window's last instant (`to: "2026-03-01"` alone: February); with neither, the month so far. */
  from?: string | Date;
  /** The window's end (exclusive), after `from`. Default: now. */
  to?: string | Date;
  /** Default all three; `[]` for none (one row per month and currency). A comma-separated string is sent as is. */
  group_by?: MarginGroup[] | string;
  /** Only this customer's usage (your id; unknown → `NotFoundError`). */
  customer?: string;
  /** How many rows, the least profitable first: 1–1000, default 100. */
  limit?: number;
}

/**
 * The report's first `limit` rows, least profitable first. `hasMore` says rows were left out; no page follows them
 * (a report has no cursor): ask again with a larger `limit`, fewer groups or a narrower window.
 */
export class MarginPage extends Page<Margin> {
  override async nextPage(): Promise<null> {
    return null;
  }
}

export class Margins extends Resource {
  /**
   * Per month (UTC) and currency, and per customer, feature and model as `group_by` names them, the usage recorded
   * in [`from`, `to`): what it cost you (`cost_micros`, by your cost table), what the customer was billed for it
   * (`billed_micros`: the metered price's overage plus the credits it burned at what they were paid) and the margin,
   * in micro-units of `currency` (1 USD = 1,000,000).
   */
  list(params: MarginListParams = {}): PagePromise<Margin> {
    const groups = Array.isArray(params.group_by) ? params.group_by.join(",") : params.group_by;
    const query = {
      from: params.from instanceof Date ? params.from.toISOString() : params.from,
      to: params.to instanceof Date ? params.to.toISOString() : params.to,
      group_by: groups,
      customer: params.customer,
      limit: params.limit,
    };
    return new PagePromise(async () => {
      const answer = await this.transport.request<unknown>("GET", "/margins", { params: query });
      const list = answer as ListObject<Margin> | null;
      if (typeof list !== "object" || list === null || !Array.isArray(list.data)) {
        throw new APIError("Expected a list object from GET /margins.");
      }
      return new MarginPage(list, () => Promise.reject(new APIError("A margins report has no next page.")));
    });
  }
}
