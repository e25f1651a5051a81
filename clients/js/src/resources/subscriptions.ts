/** Subscriptions (Stripe's, mirrored) and their invoices. */

import type { PagePromise } from "../pagination.js";
import type {
  Invoice,
  InvoiceStatus,
  Subscription,
  SubscriptionPreview,
  SubscriptionStatus,
  VersionMoves,
} from "../types.js";
import { type ListParams, Resource, type WriteOptions, path } from "./base.js";
import type { LineItem } from "./checkout.js";

export type ProrationBehavior = "create_prorations" | "none" | "always_invoice";

export interface SubscriptionCreateParams {
  customer: string;
  price?: string;
  items?: LineItem[];
  quantity?: number;
  trial_days?: number;
  proration_behavior?: ProrationBehavior;
  promotion_code?: string;
  automatic_tax?: boolean;
}

/** A change: a new price or quantity, or the full list of `items` wanted (kept, replaced, added, removed). */
export interface SubscriptionUpdateParams {
  price?: string;
  items?: LineItem[];
  /** A quantity not given is kept, never reset. */
  quantity?: number;
  proration_behavior?: ProrationBehavior;
  /** Upgrades default to `pending_if_incomplete` (a failed payment changes nothing). */
  payment_behavior?: string;
  automatic_tax?: boolean;
  promotion_code?: string;
}

/** A line added to a draft invoice (a Stripe invoice item). */
export interface InvoiceLineAddParams {
  /** Minor units, non-zero; negative is a credit line. */
  amount: number;
  /** 1–500 characters. */
  description: string;
  /** Audited. */
  reason?: string;
}

/** A change of a draft invoice's line: `amount` or `description`, at least one. */
export interface InvoiceLineUpdateParams {
  /** Minor units, non-zero; negative is a credit line. */
  amount?: number;
  description?: string;
  /** Audited. */
  reason?: string;
}

/** Which subscribers of a product to move to which of its published versions (or, with `preview`, not yet). */
export interface VersionMovesParams {
  /** The product's key or id. */
  product: string;
  /** A published version of the product. */
  to_version: number;
  /** `now` (the default), or `period_end`: at the end of each subscription's current period. */
  when?: "now" | "period_end";
  /** Only the subscriptions on these versions (default: every one not on `to_version`). */
  from_versions?: number[];
  /** Only these subscriptions (`subs_…` ids, at most 1000). */
  subscriptions?: string[];
  /** Only the subscriptions holding one of these prices of the product (keys): a plan, say the monthly one. */
  prices?: string[];
  /** Say what each move would change, and move nothing. */
  preview?: boolean;
  /** Audited. */
  reason?: string;
}

export interface SubscriptionListParams extends ListParams {
  customer?: string;
  status?: SubscriptionStatus;
  product?: string;
}

export class Subscriptions extends Resource {
  retrieve(subscriptionId: string): Promise<Subscription> {
    return this._get(path("/subscriptions/{}", subscriptionId));
  }

  list(params: SubscriptionListParams = {}): PagePromise<Subscription> {
    return this._list("/subscriptions", params);
  }

  /**
   * Subscribes server-side on the customer's saved default card (no Checkout). A declined card throws
   * `CardError` and nothing is created; no saved card is `no_payment_method`; a product the customer already
   * subscribes to is a `ConflictError` (`already_subscribed`).
   */
  create(params: SubscriptionCreateParams, options?: WriteOptions): Promise<Subscription> {
    return this._post("/subscriptions", params, options);
  }

  update(subscriptionId: string, params: SubscriptionUpdateParams, options?: WriteOptions): Promise<Subscription> {
    return this._patch(path("/subscriptions/{}", subscriptionId), params, options);
  }

  /** What `update` with the same parameters would invoice now: nothing is changed, redeemed or charged. */
  preview(
    subscriptionId: string,
    params: SubscriptionUpdateParams,
    options?: WriteOptions,
  ): Promise<SubscriptionPreview> {
    return this._post(path("/subscriptions/{}/preview", subscriptionId), params, options);
  }

  cancel(subscriptionId: string, params: { at_period_end?: boolean } = {}, options?: WriteOptions): Promise<Subscription> {
    return this._post(path("/subscriptions/{}/cancel", subscriptionId), params, options);
  }

  /** Undoes a scheduled cancellation, or resumes a paused subscription. */
  resume(subscriptionId: string, options?: WriteOptions): Promise<Subscription> {
    return this._post(path("/subscriptions/{}/resume", subscriptionId), {}, options);
  }

  /**
   * Moves the live subscriptions of `product` (those on `from_versions`, or the `subscriptions` named; by default
   * every one not on it) to its published version `to_version` now: their entitlements are the version's from then
   * on, their plan credits from their next paid period. A version that froze other Stripe prices (a draft that
   * repriced) moves the items to them at Stripe first, now or at the period's end by the project's proration rule
   * (`moves[].prices`, `.proration`; a preview's `.invoice`). One already on `to_version` is
   * not moved again, so a retry moves only what is left (`moved` counts this request's). `preview: true` answers
   * what each move would change (`moves[].changes`) and moves nothing. A version never published is an
   * `InvalidRequestError` (`unknown_version`).
   */
  versionMoves(params: VersionMovesParams, options?: WriteOptions): Promise<VersionMoves> {
    return this._post("/subscriptions/version_moves", params, options);
  }
}

export class Invoices extends Resource {
  retrieve(invoiceId: string): Promise<Invoice> {
    return this._get(path("/invoices/{}", invoiceId));
  }

  list(params: ListParams & { customer?: string; status?: InvoiceStatus } = {}): PagePromise<Invoice> {
    return this._list("/invoices", params);
  }

  /**
   * Voids an open or uncollectible invoice at Stripe: it is no longer owed (final). Any other status is a
   * `ConflictError` (`invoice_not_voidable`: a paid invoice is refunded instead). `reason` is audited.
   */
  void(invoiceId: string, params: { reason?: string } = {}, options?: WriteOptions): Promise<Invoice> {
    return this._post(path("/invoices/{}/void", invoiceId), params, options);
  }

  /**
   * Marks an open invoice uncollectible at Stripe (a bad debt: Stripe stops collecting it; it can still be paid
   * or voided). Any other status is a `ConflictError` (`invoice_not_open`). `reason` is audited.
   */
  markUncollectible(invoiceId: string, params: { reason?: string } = {}, options?: WriteOptions): Promise<Invoice> {
    return this._post(path("/invoices/{}/mark_uncollectible", invoiceId), params, options);
  }

  /**
   * Adds a line (a Stripe invoice item) of `amount` (minor units, non-zero; negative is a credit line) to a draft
   * invoice at Stripe. Any other status is a `ConflictError` (`invoice_not_draft`). `reason` is audited.
   */
  addLine(invoiceId: string, params: InvoiceLineAddParams, options?: WriteOptions): Promise<Invoice> {
    return this._post(path("/invoices/{}/lines", invoiceId), params, options);
  }

  /**
   * Changes the `amount` or `description` (at least one) of a draft invoice's line that came from an invoice item,
   * at Stripe. A subscription's line follows its subscription: a `ConflictError` (`invoice_line_not_editable`); an
   * unknown line is a `NotFoundError` (`invoice_line_not_found`), an invoice that is not a draft a `ConflictError`
   * (`invoice_not_draft`). `reason` is audited.
   */
  updateLine(
    invoiceId: string,
    lineId: string,
    params: InvoiceLineUpdateParams,
    options?: WriteOptions,
  ): Promise<Invoice> {
    return this._post(path("/invoices/{}/lines/{}", invoiceId, lineId), params, options);
  }

  /**
   * Removes a draft invoice's line that came from an invoice item, at Stripe; answers the invoice without it. The
   * same conflicts as `updateLine`. `reason` is audited.
   */
  removeLine(invoiceId: string, lineId: string, params: { reason?: string } = {}, options?: WriteOptions): Promise<Invoice> {
    return this._deleteReturning(path("/invoices/{}/lines/{}", invoiceId, lineId), params, options);
  }
}
