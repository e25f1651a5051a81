/** Payments (the universal endpoint: checkout or intent flow, any purchase) and the billing portal. */

import type { PagePromise } from "../pagination.js";
import type {
  Payment,
  PaymentFlow,
  PaymentStatus,
  PaymentStatusSummary,
  PaymentType,
  PortalEligibility,
  PortalSession,
} from "../types.js";
import { type ListParams, Resource, type WriteOptions, path } from "./base.js";
import type { LineItem } from "./checkout.js";

export interface PaymentCreateParams {
  customer: string;
  /** One price (× `quantity`), several `items`, or an `amount` + `currency` (+ `description`). */
  price?: string;
  quantity?: number;
  items?: LineItem[];
  amount?: number;
  currency?: string;
  description?: string;
  /** Inferred from the prices when left out. */
  type?: PaymentType;
  /** `checkout` answers a `checkout_url`; `intent` a `client_secret` and `publishable_key`. */
  flow?: Exclude<PaymentFlow, "off_session">;
  /** Your own order id: the same reference again returns the same payment, whatever its status. */
  reference?: string;
  success_url?: string;
  cancel_url?: string;
  trial_days?: number;
  metadata?: Record<string, unknown>;
  automatic_tax?: boolean;
  promotion_code?: string;
  /** Checkout flow and the project's own Stripe account only (else `promotion_codes_need_own_account`). */
  allow_promotion_codes?: boolean;
}

export interface PaymentListParams extends ListParams {
  customer?: string;
  status?: PaymentStatus;
  reference?: string;
}

export class Payments extends Resource {
  create(params: PaymentCreateParams, options?: WriteOptions): Promise<Payment> {
    return this._post("/payments", params, options);
  }

  retrieve(paymentId: string): Promise<Payment> {
    return this._get(path("/payments/{}", paymentId));
  }

  /** The light read for pollers: Tollgate's record (`status`, `amount_refunded`), without a call to Stripe. */
  status(paymentId: string): Promise<PaymentStatusSummary> {
    return this._get(path("/payments/{}/status", paymentId));
  }

  list(params: PaymentListParams = {}): PagePromise<Payment> {
    return this._list("/payments", params);
  }

  /** Refunds all that is left, or `amount` of it. */
  refund(paymentId: string, params: { amount?: number; reason?: string } = {}, options?: WriteOptions): Promise<Payment> {
    return this._post(path("/payments/{}/refund", paymentId), params, options);
  }

  /** Expires a pending payment now (at Stripe first). */
  cancel(paymentId: string, options?: WriteOptions): Promise<Payment> {
    return this._post(path("/payments/{}/cancel", paymentId), {}, options);
  }
}

export class Portal extends Resource {
  /** A billing-portal session: send the customer to its `url`. */
  create(params: { customer: string; return_url: string }, options?: WriteOptions): Promise<PortalSession> {
    return this._post("/portal", params, options);
  }

  /** Whether the customer has anything to manage in the portal (and if not, why). */
  eligibility(params: { customer: string }): Promise<PortalEligibility> {
    return this._get("/portal/eligibility", params);
  }
}
