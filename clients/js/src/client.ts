/** `Tollgate`: the client, with one namespace per section of the API. */

import { AgentKeys } from "./resources/agents.js";
import { Features, Plans, Prices, Products } from "./resources/catalog.js";
import { CostTables } from "./resources/costs.js";
import { CreditNotes } from "./resources/credit-notes.js";
import { Carts, Checkout } from "./resources/checkout.js";
import { Customers } from "./resources/customers.js";
import { Coupons, PromotionCodes } from "./resources/discounts.js";
import { Credits, Entitlements, Usage } from "./resources/entitlements.js";
import { Events, WebhookEndpoints } from "./resources/events.js";
import { Journal } from "./resources/journal.js";
import { Margins } from "./resources/margins.js";
import { Payments, Portal } from "./resources/payments.js";
import { CurrentProject, Metrics, Projects } from "./resources/projects.js";
import { Invoices, Subscriptions } from "./resources/subscriptions.js";
import { type Fetch, type RequestOptions, Transport } from "./transport.js";

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_RETRIES = 2;

export interface TollgateOptions {
  /** A project key (`tg_sk_…`), or a platform key for `projects`. */
  apiKey: string;
  /** Where Tollgate is served, with or without `/api/v1`. */
  baseUrl: string;
  /** How many times a failed attempt is retried (network errors, 429, 5xx, 409 `idempotency_key_in_use`),
   * always with the same `Idempotency-Key`. Default 2. */
  maxRetries?: number;
  /** Per attempt, in milliseconds. Default 30 000. */
  timeoutMs?: number;
  /** Sent with every request. */
  defaultHeaders?: Record<string, string>;
  /** Your own `fetch` (a proxy agent, instrumentation); the global one by default. */
  fetch?: Fetch;
}

/**
 * A client for one API key.
 *
 * ```ts
 * const tollgate = new Tollgate({ apiKey: process.env.TOLLGATE_API_KEY!, baseUrl: "https://tollgate.example.com" });
 * const session = await tollgate.checkout.subscription({ customer: "user-42", price: "pro-monthly", ... });
 * ```
 *
 * Holds no connection of its own (Node's global `fetch` pools them): create one per process and share it.
 */
export class Tollgate {
  readonly customers: Customers;
  readonly checkout: Checkout;
  readonly carts: Carts;
  readonly payments: Payments;
  readonly portal: Portal;
  readonly subscriptions: Subscriptions;
  readonly invoices: Invoices;
  readonly creditNotes: CreditNotes;
  readonly usage: Usage;
  readonly entitlements: Entitlements;
  readonly credits: Credits;
  readonly webhookEndpoints: WebhookEndpoints;
  readonly events: Events;
  readonly features: Features;
  readonly products: Products;
  readonly prices: Prices;
  readonly plans: Plans;
  readonly costTables: CostTables;
  readonly coupons: Coupons;
  readonly promotionCodes: PromotionCodes;
  readonly project: CurrentProject;
  readonly metrics: Metrics;
  readonly margins: Margins;
  readonly journal: Journal;
  readonly agentKeys: AgentKeys;
  readonly projects: Projects;
  private readonly transport: Transport;

  constructor(options: TollgateOptions | Transport) {
    const transport =
      options instanceof Transport
        ? options
        : new Transport({
            apiKey: options.apiKey,
            baseUrl: options.baseUrl,
            timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
            maxRetries: options.maxRetries ?? DEFAULT_MAX_RETRIES,
            defaultHeaders: options.defaultHeaders,
            fetch: options.fetch,
          });
    this.transport = transport;
    this.customers = new Customers(transport);
    this.checkout = new Checkout(transport);
    this.carts = new Carts(transport);
    this.payments = new Payments(transport);
    this.portal = new Portal(transport);
    this.subscriptions = new Subscriptions(transport);
    this.invoices = new Invoices(transport);
    this.creditNotes = new CreditNotes(transport);
    this.usage = new Usage(transport);
    this.entitlements = new Entitlements(transport);
    this.credits = new Credits(transport);
    this.webhookEndpoints = new WebhookEndpoints(transport);
    this.events = new Events(transport);
    this.features = new Features(transport);
    this.products = new Products(transport);
    this.prices = new Prices(transport);
    this.plans = new Plans(transport);
    this.costTables = new CostTables(transport);
    this.coupons = new Coupons(transport);
    this.promotionCodes = new PromotionCodes(transport);
    this.project = new CurrentProject(transport);
    this.metrics = new Metrics(transport);
    this.margins = new Margins(transport);
    this.journal = new Journal(transport);
    this.agentKeys = new AgentKeys(transport);
    this.projects = new Projects(transport);
  }

  get baseUrl(): string {
    return this.transport.baseUrl;
  }

  get timeoutMs(): number {
    return this.transport.timeoutMs;
  }

  get maxRetries(): number {
    return this.transport.maxRetries;
  }

  /** A client with other settings, for one call or a few: `tollgate.withOptions({ maxRetries: 0 }).payments.create(…)`. */
  withOptions(options: { timeoutMs?: number; maxRetries?: number }): Tollgate {
    return new Tollgate(this.transport.copy(options));
  }

  /**
   * Any endpoint, with the client's authentication, idempotency, retries and errors, for what the namespaces do
   * not cover yet: `tollgate.request("GET", "/payments", { params: { limit: 5 } })`. `path` is relative to
   * `/api/v1`; the decoded JSON is returned as it is (null for 204).
   */
  request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    return this.transport.request<T>(method, path, options);
  }

  toString(): string {
    return `Tollgate(${this.baseUrl}, key ${this.transport.apiKey.slice(0, 12)}…)`;
  }
}
