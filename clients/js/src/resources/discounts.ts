/** Discounts: coupons (what is taken off) and the promotion codes customers type to redeem them. */

import type { PagePromise } from "../pagination.js";
import type { Coupon, CouponDuration, PromotionCode } from "../types.js";
import { type ListParams, Resource, type WriteOptions, path } from "./base.js";

export interface CouponCreateParams {
  key: string;
  duration: CouponDuration;
  /** 0 < p ≤ 100, two decimals (a string keeps it exact)… */
  percent_off?: string | number;
  /** …or an amount in minor units, with its `currency`. */
  amount_off?: number;
  currency?: string;
  name?: string;
  /** With `duration: "repeating"`. */
  duration_in_months?: number;
  max_redemptions?: number;
  redeem_by?: string | Date;
  /** Keys of the products it discounts (every product when left out). */
  applies_to?: string[];
}

export class Coupons extends Resource {
  create(params: CouponCreateParams, options?: WriteOptions): Promise<Coupon> {
    const body = { ...params, percent_off: params.percent_off === undefined ? undefined : String(params.percent_off) };
    return this._post("/coupons", body, options);
  }

  /** By key or id. */
  retrieve(coupon: string): Promise<Coupon> {
    return this._get(path("/coupons/{}", coupon));
  }

  list(params: ListParams = {}): PagePromise<Coupon> {
    return this._list("/coupons", params);
  }

  /** Deletes it here and at Stripe: it can no longer be redeemed; discounts already given stay. */
  delete(coupon: string, options?: WriteOptions): Promise<Coupon> {
    return this._deleteReturning(path("/coupons/{}", coupon), undefined, options);
  }
}

export interface PromotionCodeCreateParams {
  code: string;
  /** The coupon's key or id. */
  coupon: string;
  max_redemptions?: number;
  expires_at?: string | Date;
  first_time_transaction?: boolean;
  active?: boolean;
}

export class PromotionCodes extends Resource {
  create(params: PromotionCodeCreateParams, options?: WriteOptions): Promise<PromotionCode> {
    return this._post("/promotion_codes", params, options);
  }

  list(params: ListParams & { coupon?: string; active?: boolean } = {}): PagePromise<PromotionCode> {
    return this._list("/promotion_codes", params);
  }

  /** Turns the code on or off (an inactive code is refused: `promotion_code_invalid`). */
  update(promotionCodeId: string, params: { active: boolean }, options?: WriteOptions): Promise<PromotionCode> {
    return this._patch(path("/promotion_codes/{}", promotionCodeId), params, options);
  }
}
