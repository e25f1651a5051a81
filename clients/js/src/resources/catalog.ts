/** The catalog: features, products (what each gives every feature), prices, and the public plans. */

import type { PagePromise } from "../pagination.js";
import type {
  Feature,
  FeatureType,
  Price,
  PriceInterval,
  PriceTaxBehavior,
  PriceType,
  PriceUsageType,
  Product,
  PublicPlan,
} from "../types.js";
import { type ListParams, Resource, type WriteOptions, path } from "./base.js";

/** How a metered feature's usage events' `dimensions` become units (rates and markups as decimal strings). */
export type UsageFormula =
  | { type: "cost"; markup?: string | number; unit_micros?: number }
  | {
      type: "rates";
      rates?: Record<string, string | number> | null;
      models?: Record<string, Record<string, string | number>> | null;
    };

export class Features extends Resource {
  create(
    params: { key: string; name: string; type: FeatureType; unit?: string; usage_formula?: UsageFormula | null },
    options?: WriteOptions,
  ): Promise<Feature> {
    return this._post("/features", params, options);
  }

  retrieve(feature: string): Promise<Feature> {
    return this._get(path("/features/{}", feature));
  }

  /** A new `usage_formula` applies to usage events recorded from then on. */
  update(
    feature: string,
    params: { name?: string; unit?: string; usage_formula?: UsageFormula | null },
    options?: WriteOptions,
  ): Promise<Feature> {
    return this._patch(path("/features/{}", feature), params, options);
  }

  list(params: ListParams & { type?: FeatureType } = {}): PagePromise<Feature> {
    return this._list("/features", params);
  }
}

export interface ProductParams {
  name?: string;
  description?: string;
  active?: boolean;
  /** `{"<feature key>": true | limit | null (unlimited) | {"per_unit": n} | {"limit" or "per_unit": n, "overage": "allowed"} | JSON value}`; replaces the whole map. */
  features?: Record<string, unknown>;
  /** Listed (while active) by the pricing page's `plans.list`. */
  public?: boolean;
  /** The plan's account cap for customers without their own, `{amount, currency, at_cap?}`; null removes it. */
  account_cap?: { amount: number; currency: string; at_cap?: "block" | "alert" } | null;
}

export class Products extends Resource {
  create(params: ProductParams & { key: string; name: string }, options?: WriteOptions): Promise<Product> {
    return this._post("/products", params, options);
  }

  /** `product`: its key or id. */
  retrieve(product: string): Promise<Product> {
    return this._get(path("/products/{}", product));
  }

  update(product: string, params: ProductParams, options?: WriteOptions): Promise<Product> {
    return this._patch(path("/products/{}", product), params, options);
  }

  list(params: ListParams & { active?: boolean } = {}): PagePromise<Product> {
    return this._list("/products", params);
  }
}

export interface PriceCreateParams {
  key: string;
  product: string;
  currency: string;
  /** Minor units. */
  unit_amount: number;
  type: PriceType;
  /** Recurring prices. */
  interval?: PriceInterval;
  interval_count?: number;
  trial_days?: number;
  usage_type?: PriceUsageType;
  /** The metered feature a metered price bills. */
  meter?: string;
  tax_behavior?: PriceTaxBehavior;
  active?: boolean;
}

export interface PriceUpdateParams {
  /** A new `unit_amount`, `currency` or `tax_behavior` creates a new Stripe price for new checkouts. */
  unit_amount?: number;
  currency?: string;
  tax_behavior?: PriceTaxBehavior;
  trial_days?: number;
  active?: boolean;
}

export class Prices extends Resource {
  create(params: PriceCreateParams, options?: WriteOptions): Promise<Price> {
    return this._post("/prices", params, options);
  }

  /** `price`: its key or id. */
  retrieve(price: string): Promise<Price> {
    return this._get(path("/prices/{}", price));
  }

  update(price: string, params: PriceUpdateParams, options?: WriteOptions): Promise<Price> {
    return this._patch(path("/prices/{}", price), params, options);
  }

  list(
    params: ListParams & { active?: boolean; product?: string; type?: PriceType } = {},
  ): PagePromise<Price> {
    return this._list("/prices", params);
  }
}

export class Plans extends Resource {
  /**
   * What a pricing page shows: the project's (by slug) active products marked `public`, with their active
   * prices and feature values. The endpoint needs no key (the client's is ignored).
   */
  list(params: { project: string }): PagePromise<PublicPlan> {
    return this._list(path("/public/{}/plans", params.project));
  }
}
