/** Hosted checkout (a subscription, one item, a cart) and carts. */

import type { Transport } from "../transport.js";
import type { Cart, CheckoutSession } from "../types.js";
import { Resource, type WriteOptions, path } from "./base.js";

/** A line of a purchase: a price (key or id) and its quantity (a metered price takes none). */
export interface LineItem {
  price: string;
  quantity?: number;
}

/** What every checkout takes. `success_url` and `cancel_url` must be on the project's allowed redirect hosts. */
interface CheckoutCommon {
  customer: string;
  success_url: string;
  cancel_url: string;
  metadata?: Record<string, unknown>;
  /** Stripe Tax: Checkout collects the billing address; every price needs a `tax_behavior`. */
  automatic_tax?: boolean;
  /** Redeemed now (an unknown, expired or used-up code is `promotion_code_invalid`). */
  promotion_code?: string;
  /**
   * Shows the code field on Stripe's page (not with `promotion_code`). Needs the project's own Stripe account:
   * on the platform's shared one it is `promotion_codes_need_own_account` (pass `promotion_code` instead).
   */
  allow_promotion_codes?: boolean;
}

export interface CheckoutSubscriptionParams extends CheckoutCommon {
  /** One recurring price (× `quantity`)… */
  price?: string;
  /** …or several of one currency and interval on one subscription. */
  items?: LineItem[];
  quantity?: number;
  trial_days?: number;
}

export interface CheckoutItemParams extends CheckoutCommon {
  /** A one-time price. */
  price: string;
  quantity?: number;
}

export interface CheckoutCartParams extends CheckoutCommon {
  /** A cart by id… */
  cart?: string;
  /** …or its lines given here. */
  items?: LineItem[];
}

/** Each method answers a `CheckoutSession`: redirect the customer's browser to its `url`. */
export class Checkout extends Resource {
  subscription(params: CheckoutSubscriptionParams, options?: WriteOptions): Promise<CheckoutSession> {
    return this._post("/checkout/subscription", params, options);
  }

  item(params: CheckoutItemParams, options?: WriteOptions): Promise<CheckoutSession> {
    return this._post("/checkout/item", params, options);
  }

  cart(params: CheckoutCartParams, options?: WriteOptions): Promise<CheckoutSession> {
    return this._post("/checkout/cart", params, options);
  }

  retrieve(sessionId: string): Promise<CheckoutSession> {
    return this._get(path("/checkout/{}", sessionId));
  }
}

/** The lines of a cart; each call answers the whole cart. */
export class CartItems extends Resource {
  add(cartId: string, params: LineItem, options?: WriteOptions): Promise<Cart> {
    return this._post(path("/carts/{}/items", cartId), params, options);
  }

  update(cartId: string, itemId: string, params: { quantity: number }, options?: WriteOptions): Promise<Cart> {
    return this._patch(path("/carts/{}/items/{}", cartId, itemId), params, options);
  }

  delete(cartId: string, itemId: string, options?: WriteOptions): Promise<void> {
    return this._delete(path("/carts/{}/items/{}", cartId, itemId), undefined, options);
  }
}

/** A basket of one-time prices in one currency, checked out with `checkout.cart({ cart })`. */
export class Carts extends Resource {
  readonly items: CartItems;

  constructor(transport: Transport) {
    super(transport);
    this.items = new CartItems(transport);
  }

  create(params: { customer: string }, options?: WriteOptions): Promise<Cart> {
    return this._post("/carts", params, options);
  }

  retrieve(cartId: string): Promise<Cart> {
    return this._get(path("/carts/{}", cartId));
  }

  delete(cartId: string, options?: WriteOptions): Promise<void> {
    return this._delete(path("/carts/{}", cartId), undefined, options);
  }
}
