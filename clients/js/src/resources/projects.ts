/** The caller's project (project key), all projects (platform key), and metrics. */

import type { PagePromise } from "../pagination.js";
import type { Transport } from "../transport.js";
import type {
  AdoptionRun,
  ApiKey,
  DefaultPaymentFlow,
  Project,
  ProjectStatus,
  RevenueInterval,
  RevenueMetrics,
  RevenueRecognition,
  SubscriptionMetrics,
} from "../types.js";
import { type ListParams, Resource, type WriteOptions, path } from "./base.js";

/** Rotating the project's keys: create a new one, deploy it, revoke the old one. */
export class OwnApiKeys extends Resource {
  /** The answer's `api_key` is the secret, shown this once. */
  create(params: { name?: string } = {}, options?: WriteOptions): Promise<ApiKey> {
    return this._post("/project/api_keys", params, options);
  }

  list(params: ListParams = {}): PagePromise<ApiKey> {
    return this._list("/project/api_keys", params);
  }

  revoke(keyId: string, options?: WriteOptions): Promise<void> {
    return this._delete(path("/project/api_keys/{}", keyId), undefined, options);
  }
}

export class CurrentProject extends Resource {
  readonly apiKeys: OwnApiKeys;

  constructor(transport: Transport) {
    super(transport);
    this.apiKeys = new OwnApiKeys(transport);
  }

  /** The caller's project and its settings (never its secrets). */
  retrieve(): Promise<Project> {
    return this._get("/project");
  }
}

export class ProjectApiKeys extends Resource {
  create(project: string, params: { name?: string } = {}, options?: WriteOptions): Promise<ApiKey> {
    return this._post(path("/projects/{}/api_keys", project), params, options);
  }

  list(project: string, params: ListParams = {}): PagePromise<ApiKey> {
    return this._list(path("/projects/{}/api_keys", project), params);
  }

  revoke(project: string, keyId: string, options?: WriteOptions): Promise<void> {
    return this._delete(path("/projects/{}/api_keys/{}", project, keyId), undefined, options);
  }
}

/** Where a Stripe customer's external id is: a metadata key, or the customer's own `email` or `id`. */
export type AdoptionCustomerKey = { metadata: string } | { field: "email" | "id" };

/** `sync_catalog`'s shape: features to create, the Stripe products mapped, and the metered feature each Stripe
 * billing meter counts. Products (and meters) it does not name are reported, never guessed. */
export interface AdoptionMapping {
  features?: { key: string; name: string; type: string; unit?: string }[];
  products?: { stripe_product: string; key: string; features?: Record<string, unknown> }[];
  meters?: Record<string, string>;
}

export interface AdoptionCreateParams {
  customer_key: AdoptionCustomerKey;
  mapping: AdoptionMapping;
  /** Read and report only; change nothing (locally or at Stripe). */
  dry_run?: boolean;
}

/** Adopting a project's existing Stripe account: its customers, catalog, subscriptions and invoices mirrored into
 * the project (nothing is written to Stripe). A run is queued and answered `pending`; read it back until its
 * `status` is `completed` or `failed`, then its `report`. */
export class ProjectAdoptions extends Resource {
  /** `ConflictError` (`adoption_running`) while another adoption of the project runs. */
  create(project: string, params: AdoptionCreateParams, options?: WriteOptions): Promise<AdoptionRun> {
    return this._post(path("/projects/{}/adoptions", project), params, options);
  }

  /** The run with its adoption point and, once it ended, its report. */
  retrieve(project: string, runId: string): Promise<AdoptionRun> {
    return this._get(path("/projects/{}/adoptions/{}", project, runId));
  }
}

export interface ProjectSettings {
  name?: string;
  default_currency?: string;
  allowed_redirect_hosts?: string[];
  payment_ttl_seconds?: number;
  default_flow?: DefaultPaymentFlow;
  default_product?: string;
  /** What a subscription change does, per direction (`now_prorate` by default). */
  proration_upgrade?: ProrationRule;
  proration_downgrade?: ProrationRule;
  proration_interval_change?: ProrationRule;
  /** The margin, in basis points of what a customer was billed, below which the project hears
   * `customer.margin_low` (2000 = 20 %; −1,000,000 to 10,000); `null` stops the alerts. */
  margin_alert_below_bps?: number | null;
}

export type ProrationRule = "now_prorate" | "now_no_proration" | "period_end";

export interface ProjectCreateParams extends ProjectSettings {
  slug: string;
  name: string;
  stripe_secret_key?: string;
  stripe_publishable_key?: string;
  stripe_webhook_secret?: string;
}

/** Operators' automation, with a platform key: a project key gets `PermissionDeniedError`. */
export class Projects extends Resource {
  readonly apiKeys: ProjectApiKeys;
  readonly adoptions: ProjectAdoptions;

  constructor(transport: Transport) {
    super(transport);
    this.apiKeys = new ProjectApiKeys(transport);
    this.adoptions = new ProjectAdoptions(transport);
  }

  /** The answer's `api_key` is the project's first secret key, shown this once. */
  create(params: ProjectCreateParams, options?: WriteOptions): Promise<Project> {
    return this._post("/projects", params, options);
  }

  /** `project`: its id or slug. */
  retrieve(project: string): Promise<Project> {
    return this._get(path("/projects/{}", project));
  }

  update(project: string, params: ProjectSettings & { status?: ProjectStatus }, options?: WriteOptions): Promise<Project> {
    return this._patch(path("/projects/{}", project), params, options);
  }

  list(params: ListParams = {}): PagePromise<Project> {
    return this._list("/projects", params);
  }
}

export interface RevenueRecognitionParams {
  /** The last month of the report, `YYYY-MM` (UTC). Default: this month. */
  month?: string;
  /** How many months, ending with `month`: 1–24, default 1. */
  months?: number;
}

export class Metrics extends Resource {
  /** Subscription counts by status and by product. */
  subscriptions(): Promise<SubscriptionMetrics> {
    return this._get("/metrics/subscriptions");
  }

  /** Revenue, refunds and net per period and currency, and MRR. */
  revenue(params: { from?: string; to?: string; interval?: RevenueInterval } = {}): Promise<RevenueMetrics> {
    return this._get("/metrics/revenue", params);
  }

  /**
   * Revenue billed, given back and recognised per month, currency and product, with the deferred revenue and the
   * prepaid credits' liability (`deferred`, `credits`), oldest month first: `months` months (1–24, default 1)
   * ending with `month` (`YYYY-MM`, UTC; default this month).
   */
  revenueRecognition(params: RevenueRecognitionParams = {}): Promise<RevenueRecognition> {
    return this._get("/metrics/revenue_recognition", params);
  }
}
