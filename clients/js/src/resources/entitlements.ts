/** Usage, entitlements (checks, atomic consumption, grants and revocations) and credit balances. */

import type { PagePromise } from "../pagination.js";
import type { Transport } from "../transport.js";
import type {
  AutoRecharge,
  CreditBalance,
  CustomerEntitlements,
  EntitlementCheck,
  Entity,
  Grant,
  HoldAnswer,
  HoldUsage,
  Revocation,
  SpendCap,
  UsageBatchResult,
  UsageCorrection,
  UsageEvent,
  UsageSummary,
  UsageThreshold,
} from "../types.js";
import { Resource, type WriteOptions, path } from "./base.js";

export interface UsageEventParams {
  /** Yours: the same id again is counted once. */
  id: string;
  customer: string;
  feature: string;
  /** Required unless the event gives `dimensions` (never with them). */
  quantity?: number;
  /** Defaults to now; a late event counts in its period until the project's grace window has passed. */
  timestamp?: string | Date;
  properties?: Record<string, unknown>;
  /** The model the call used (a feature with a usage formula). */
  model?: string;
  /** Instead of `quantity`: what the call used, by dimension; the feature's formula makes the quantity of them. */
  dimensions?: Record<string, number>;
  /**
   * One of the customer's entities (your id), on a metered feature with a limit per entity: the use counts on the
   * entity's as well as the account's (stored as `properties.entity`).
   */
  entity?: string;
  /** A backfill: may be stamped in any closed period (counted there); never sent to Stripe's meter. */
  no_billing_side_effects?: boolean;
}

export interface ConsumeParams {
  /** Your idempotency id for the usage: the same id again records nothing (`duplicate: true`). */
  id: string;
  customer: string;
  feature: string;
  /** Default 1. */
  quantity?: number;
}

export class Usage extends Resource {
  /** Records usage of a `metered` feature (what happened: never refused for being over the limit). */
  record(params: UsageEventParams, options?: WriteOptions): Promise<UsageEvent> {
    return this._post("/usage", params, options);
  }

  /** Up to 1000 events, all or none (`param` names an invalid one: `events[3].quantity`). */
  recordBatch(params: { events: UsageEventParams[] }, options?: WriteOptions): Promise<UsageBatchResult> {
    return this._post("/usage/batch", params, options);
  }

  /** The current period's usage of a `metered` feature, as counted and as reported to Stripe's meter. */
  summary(params: { customer: string; feature: string }): Promise<UsageSummary> {
    return this._get("/usage", params);
  }

  /**
   * Voids (`action: "void"`) or amends (`action: "amend"`, to `quantity`) the recorded usage event `event` (your
   * id), with a `reason` for the audit log. `id` is yours: the same id again answers the correction it made.
   * Stripe's meter follows in the background (`stripe_meter.status` `pending`, then `adjusted`); `usage_invoiced`
   * (409) when Stripe invoiced its period or received it more than 24 hours ago, unless `invoiced: "credit"`: then
   * the customer's next invoice is adjusted instead (`invoice_adjustment`).
   */
  correct(
    params: {
      id: string;
      event: string;
      action: "void" | "amend";
      reason: string;
      quantity?: number;
      invoiced?: "refuse" | "credit";
    },
    options?: WriteOptions,
  ): Promise<UsageCorrection> {
    return this._post("/usage/corrections", params, options);
  }

  /** A usage correction by your id. */
  correction(id: string): Promise<UsageCorrection> {
    return this._get(path("/usage/corrections/{}", id));
  }
}

export class Grants extends Resource {
  /**
   * On a `metered` or `allocation` feature `value` adds units to the limit (null: unlimited); on a `credits` one
   * it grants that many credits (required), spent before lots of a higher `priority`, and, naming an `entity` of
   * the customer's, that entity's own (spent only by uses naming it, before the account's); on a `boolean` or
   * `static` one it sets the value.
   */
  create(
    params: {
      customer: string;
      feature: string;
      reason: string;
      value?: unknown;
      expires_at?: string | Date;
      priority?: number;
      entity?: string;
    },
    options?: WriteOptions,
  ): Promise<Grant> {
    return this._post("/entitlements/grants", params, options);
  }

  /** Ends the grant now; answers it as it ended (`deleted: true`). `reason` goes to the audit log. */
  delete(grantId: string, params: { reason?: string } = {}, options?: WriteOptions): Promise<Grant> {
    return this._deleteReturning(path("/entitlements/grants/{}", grantId), params, options);
  }
}

export class Revocations extends Resource {
  /** Takes the feature away whatever the customer bought or was granted, until `expires_at` (or for good). */
  create(
    params: { customer: string; feature: string; reason: string; expires_at?: string | Date },
    options?: WriteOptions,
  ): Promise<Revocation> {
    return this._post("/entitlements/revocations", params, options);
  }

  delete(revocationId: string, params: { reason?: string } = {}, options?: WriteOptions): Promise<Revocation> {
    return this._deleteReturning(path("/entitlements/revocations/{}", revocationId), params, options);
  }
}

export interface HoldParams {
  /** Your id for the hold (no `/`): the same id again answers the stored hold (`duplicate: true`). */
  id: string;
  customer: string;
  feature: string;
  /** Units to hold; required unless the hold gives a model call's `dimensions`. */
  quantity?: number;
  /** A model call's hold (a feature with a usage formula): the model it will use, with `dimensions`. */
  model?: string;
  /**
   * Instead of `quantity`: the call's estimated dimensions (`{ input_tokens: 1200, output_tokens: 800 }`); the
   * hold holds the units they come to now (`hold.estimate`).
   */
  dimensions?: Record<string, number>;
  /** Seconds until it expires and its units go back (default 600, at most 86400). */
  expires_in?: number;
  /**
   * One of the customer's entities (your id), on a metered feature with a limit per entity: the hold takes its
   * units on the entity's limit as well as the account's, and gives back to both.
   */
  entity?: string;
}

export class Holds extends Resource {
  /**
   * Sets units of a `metered`, `credits` or `allocation` feature aside under its limit. Refused → `allowed:
   * false`, `hold: null`, nothing recorded.
   */
  create(params: HoldParams, options?: WriteOptions): Promise<HoldAnswer> {
    return this._post("/entitlements/holds", params, options);
  }

  /** The hold and its feature's check now. */
  retrieve(holdId: string): Promise<HoldAnswer> {
    return this._get(path("/entitlements/holds/{}", holdId));
  }

  /**
   * Turns `quantity` held units (default: all) into usage; the rest go back. A model call's confirm gives what it
   * used, `model` and `dimensions`, instead: their units become usage (`hold.actual`), at most the hold's, and
   * units beyond it are recorded as usage too (`hold.overrun`).
   */
  confirm(
    holdId: string,
    params: { quantity?: number; model?: string; dimensions?: Record<string, number> } = {},
    options?: WriteOptions,
  ): Promise<HoldAnswer> {
    return this._post(path("/entitlements/holds/{}/confirm", holdId), params, options);
  }

  /** Gives every held unit back. */
  release(holdId: string, options?: WriteOptions): Promise<HoldAnswer> {
    return this._post(path("/entitlements/holds/{}/release", holdId), {}, options);
  }

  /**
   * Records uses made from the hold (a lease), idempotent by each event's id; all or nothing (an id already used
   * for another customer, feature or quantity: `ConflictError` `idempotency_id_reused`). A model call's use gives
   * `model` and `dimensions` instead of `quantity` (priced when reported, stored with its cost).
   */
  reportUsage(
    holdId: string,
    params: { events: { id: string; quantity?: number; model?: string; dimensions?: Record<string, number> }[] },
    options?: WriteOptions,
  ): Promise<HoldUsage> {
    return this._post(path("/entitlements/holds/{}/usage", holdId), params, options);
  }
}

/**
 * A customer's own thresholds: usage of a `metered` feature (`usage.threshold_reached`, once per period) or the
 * balance of a `credits` feature (`credits.threshold_reached`, once per funding).
 */
export class Thresholds extends Resource {
  /**
   * At `percent` of the limit or at `quantity` units used (one of the two) on a `metered` feature, or at a balance
   * of `quantity` credits or `percent` of the credits granted on a `credits` feature; the same again is the one
   * stored.
   */
  create(
    params: { customer: string; feature: string; percent?: number; quantity?: number },
    options?: WriteOptions,
  ): Promise<UsageThreshold> {
    return this._post("/entitlements/thresholds", params, options);
  }

  /** The customer's thresholds, oldest first, on one page (at most 20 per feature). */
  list(params: { customer: string }): PagePromise<UsageThreshold> {
    return this._list("/entitlements/thresholds", params);
  }

  /** Deletes the threshold (what it announced stays announced); answers it with `deleted: true`. */
  delete(thresholdId: string, options?: WriteOptions): Promise<UsageThreshold> {
    return this._deleteReturning(path("/entitlements/thresholds/{}", thresholdId), {}, options);
  }
}

/**
 * A customer's own spend cap on a metered feature's overage, in place of their plan's, and their account cap across
 * their metered features (audited).
 */
export class SpendCaps extends Resource {
  /**
   * Sets (creates or replaces) the cap: on `feature`, `{units: n}` past the limit or `{amount: m}` the metered price
   * bills for the period; without a feature, the account cap `{amount: m, currency: "usd"}`, the most the
   * customer's metered prices in that currency bill together. Either with `at_cap: "block"` (the default) or
   * `"alert"`. Below what the customer used this period: `cap_below_usage`.
   */
  set(
    params: {
      customer: string;
      feature?: string | null;
      cap: { units?: number; amount?: number; currency?: string; at_cap?: "block" | "alert" };
      reason?: string;
    },
    options?: WriteOptions,
  ): Promise<SpendCap> {
    return this._post("/entitlements/spend_caps", params, options);
  }

  /** The customer's own caps, oldest first, on one page (one per feature, and the account cap). */
  list(params: { customer: string }): PagePromise<SpendCap> {
    return this._list("/entitlements/spend_caps", params);
  }

  /** Removes the cap (their plan's applies again); answers it with `deleted: true`. */
  delete(capId: string, options?: WriteOptions): Promise<SpendCap> {
    return this._deleteReturning(path("/entitlements/spend_caps/{}", capId), {}, options);
  }
}

/**
 * A customer's entities — their seats, workspaces, projects, by your own ids — each counted by an allocation
 * feature; a metered feature whose plan gives each entity its own limit a period (`per_entity`) takes `entity` in
 * `check` and `consume`. Every change is audited.
 */
export class Entities extends Resource {
  /**
   * Adds the customer's entity `entity` (your id for it), taking one unit of the allocation `feature` that counts
   * it. The same id again, of the same feature, answers the entity as it is (nothing taken twice). Every unit the
   * plan gives in use: `ConflictError` `allocation_exhausted`; `InvalidRequestError` `feature_not_allocation`, or
   * `entity_exists` (the id names an entity of another feature). Nothing changes on an error.
   */
  add(
    params: { customer: string; feature: string; entity: string; name?: string },
    options?: WriteOptions,
  ): Promise<Entity> {
    return this._post("/entitlements/entities", params, options);
  }

  /** The customer's live entities, oldest first, on one page. */
  list(params: { customer: string }): PagePromise<Entity> {
    return this._list("/entitlements/entities", params);
  }

  /** Renames the entity (`entityId`: Tollgate's id, `ent_…`); its id, its use and its unit stay. */
  rename(entityId: string, params: { name: string }, options?: WriteOptions): Promise<Entity> {
    return this._patch(path("/entitlements/entities/{}", entityId), params, options);
  }

  /**
   * Removes the entity (`entityId`: Tollgate's id, `ent_…`) and gives its unit back; uses naming it are refused
   * from now on (`unknown_entity`), its use this period stays counted. Removing it again changes nothing. `reason`
   * goes to the audit log. Answers it with `removed_at` set.
   */
  remove(entityId: string, params: { reason?: string } = {}, options?: WriteOptions): Promise<Entity> {
    return this._deleteReturning(path("/entitlements/entities/{}", entityId), params, options);
  }
}

/**
 * Auto-recharges of a credits balance: when a consume or hold leaves it at or below `below`, `quantity` of a
 * one-time `price` is charged to the customer's saved card; the credits are granted once the payment succeeded
 * (`credits.recharged`), never twice.
 */
export class AutoRecharges extends Resource {
  /** Creates or replaces the customer's auto-recharge of `feature`; a `failed` one is armed again. */
  create(
    params: {
      customer: string;
      feature: string;
      below: number;
      price: string;
      quantity?: number;
      payment_method?: string;
    },
    options?: WriteOptions,
  ): Promise<AutoRecharge> {
    return this._post("/entitlements/auto_recharges", params, options);
  }

  /** Its status (`armed`, `charging`, `failed`), its latest payment and why it failed, if it did. */
  retrieve(rechargeId: string): Promise<AutoRecharge> {
    return this._get(path("/entitlements/auto_recharges/{}", rechargeId));
  }

  /** The customer's auto-recharges, oldest first, on one page (one per feature). */
  list(params: { customer: string }): PagePromise<AutoRecharge> {
    return this._list("/entitlements/auto_recharges", params);
  }

  /** No charge starts after it (one under way still settles); answers it with `deleted: true`. */
  delete(rechargeId: string, options?: WriteOptions): Promise<AutoRecharge> {
    return this._deleteReturning(path("/entitlements/auto_recharges/{}", rechargeId), {}, options);
  }
}

export class Entitlements extends Resource {
  readonly grants: Grants;
  readonly revocations: Revocations;
  readonly holds: Holds;
  readonly thresholds: Thresholds;
  readonly autoRecharges: AutoRecharges;
  readonly spendCaps: SpendCaps;
  readonly entities: Entities;

  constructor(transport: Transport) {
    super(transport);
    this.grants = new Grants(transport);
    this.revocations = new Revocations(transport);
    this.holds = new Holds(transport);
    this.thresholds = new Thresholds(transport);
    this.autoRecharges = new AutoRecharges(transport);
    this.spendCaps = new SpendCaps(transport);
    this.entities = new Entities(transport);
  }

  /**
   * May the customer use `quantity` (default 1) of the feature now? Records nothing. A customer Tollgate has
   * never seen gets the project's default product's answer. `as_of` (a past instant): could they then —
   * recomputed from what Tollgate had recorded by then (the catalog is today's). `entity` (one of the customer's
   * `entities`, your id for it) on a metered feature whose plan gives each entity its own limit: the use must fit
   * that limit too; the answer carries the entity's use (`entity`) and, refused by it, `binding: "entity"`.
   */
  check(params: {
    customer: string;
    feature: string;
    quantity?: number;
    as_of?: string | Date;
    entity?: string;
    /** A model call (a feature with a usage formula): its model, with `dimensions`. */
    model?: string;
    /** Instead of `quantity`: the call's dimensions; the check is for their units, answered in `quantity`. */
    dimensions?: Record<string, number>;
  }): Promise<EntitlementCheck> {
    const { dimensions, ...rest } = params;
    const query: Record<string, unknown> = { ...asOfQuery(rest) };
    for (const [name, value] of Object.entries(dimensions ?? {})) query[`dimensions[${name}]`] = value;
    return this._get("/entitlements/check", query);
  }

  /** Everything the customer is entitled to, with usage, limits and balances (`as_of`: as it was then). */
  list(params: { customer: string; as_of?: string | Date }): Promise<CustomerEntitlements> {
    return this._get("/entitlements", asOfQuery(params));
  }

  /**
   * Checks and records the usage atomically. Not allowed → `allowed: false` and nothing is recorded (an answer,
   * not an error). `entity`: as in `check` — the use must fit the entity's own limit as well as the account's,
   * and counts for both.
   */
  consume(params: ConsumeParams & { entity?: string }, options?: WriteOptions): Promise<EntitlementCheck> {
    return this._post("/entitlements/consume", { quantity: 1, ...params }, options);
  }

  /** Gives back units of an `allocation` feature (a seat freed); `reason` goes to the audit log. */
  release(params: ConsumeParams & { reason?: string }, options?: WriteOptions): Promise<EntitlementCheck> {
    return this._post("/entitlements/release", { quantity: 1, ...params }, options);
  }
}

export class Credits extends Resource {
  /**
   * The customer's balance of a `credits` feature, with its lots and ledger (newest first): the account's, or
   * (`entity`) that entity's own.
   */
  retrieve(params: { customer: string; feature: string; entity?: string }): Promise<CreditBalance> {
    return this._get("/credits", params);
  }
}

/** The query with `as_of` in ISO 8601 (a `Date` in a query string would be sent as its `toString()`). */
function asOfQuery<T extends { as_of?: string | Date }>(params: T): object {
  return params.as_of instanceof Date ? { ...params, as_of: params.as_of.toISOString() } : params;
}
