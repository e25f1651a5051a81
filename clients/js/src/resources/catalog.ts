/** The catalog: features, products (what each gives every feature), prices, and the public plans. */

import type { PagePromise } from "../pagination.js";
import type {
  Feature,
  FeatureType,
  Price,
  PriceInterval,
  PriceTaxBehavior,
  PriceTier,
  PriceType,
  PriceUsageType,
  Product,
  ProductDraft,
  ProductVersion,
  PublicPlan,
  Rerating,
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

  /**
   * Every published version of the product, oldest first, with what each changed of the one before (`changes`);
   * the latest (`latest`, the product's `version`) is what new subscribers get. One page.
   */
  versions(product: string): PagePromise<ProductVersion> {
    return this._list(path("/products/{}/versions", product));
  }

  /** The product's next version as drafted (`NotFoundError` `no_draft` without one). */
  draft(product: string): Promise<ProductDraft> {
    return this._get(path("/products/{}/draft", product));
  }

  /**
   * Drafts the product's next version: `features` is the whole map (as `update` takes it; left out: the latest
   * version's), `prices` new terms for some of its prices by price key (`{ unit_amount: n }` or `{ tiers: [...] }`),
   * `account_cap` the version's account cap (null: none; left out: the latest version's), `note` why (shown with
   * the published version). Replaces an earlier draft; nothing changes for any customer until `draftPublish`.
   */
  draftSave(
    product: string,
    params: {
      features?: Record<string, unknown>;
      prices?: Record<string, { unit_amount: number } | { tiers: PriceTier[] }>;
      account_cap?: ProductParams["account_cap"];
      note?: string;
    },
    options?: WriteOptions,
  ): Promise<ProductDraft> {
    return this._put(path("/products/{}/draft", product), params, options);
  }

  /**
   * What the draft would have billed the product's subscribers over each one's last `periods` closed periods
   * (default 3), against what Stripe invoiced them, with the entitlements it would take away or lower below their
   * use; `version`: one cohort; `limit`: subscribers listed (default 100). Reads only.
   */
  draftRerating(
    product: string,
    params: { periods?: number; version?: number; limit?: number } = {},
  ): Promise<Rerating> {
    return this._get(path("/products/{}/draft/rerating", product), params);
  }

  /** Throws the draft away (`NotFoundError` `no_draft` without one). */
  draftDiscard(product: string, options?: WriteOptions): Promise<void> {
    return this._delete(path("/products/{}/draft", product), undefined, options);
  }

  /**
   * Makes the draft the product's latest version (existing subscribers keep theirs). `version`: the draft's
   * `version`, so a retry after the publish went through answers the product. `ConflictError` `draft_stale` when a
   * version was published since the draft was made (save it again).
   */
  draftPublish(product: string, params: { version?: number } = {}, options?: WriteOptions): Promise<Product> {
    return this._post(path("/products/{}/draft/publish", product), params, options);
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
