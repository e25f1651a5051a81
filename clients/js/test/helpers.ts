/**
 * What the tests share: the live demo they run against (`.ci/js-check` starts it and sets the environment), the
 * customer's side of a payment on the Stripe emulator, an open invoice made at it, a webhook receiver and a
 * fault-injecting proxy.
 */

import { randomBytes } from "node:crypto";
import { type IncomingHttpHeaders, type IncomingMessage, type Server, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";

import { type Invoice, Tollgate, type TollgateOptions } from "../src/index.js";

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the tests through .ci/js-check (or set it to a running demo's).`);
  }
  return value;
}

export const demo = {
  get apiKey(): string {
    return required("TOLLGATE_API_KEY");
  },
  get url(): string {
    return required("TOLLGATE_URL");
  },
  get emulatorUrl(): string {
    return required("TOLLGATE_EMULATOR_URL");
  },
  get platformKey(): string {
    return required("TOLLGATE_PLATFORM_KEY");
  },
};

/** The demo project's redirect hosts include the docs' example app. */
export const OK_URL = "https://app.example.com/ok";
export const CANCEL_URL = "https://app.example.com/cancel";

/** A suffix that keeps this run's customers apart from an earlier run's on the same demo. */
export const RUN = `${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;

export function client(options: Partial<TollgateOptions> = {}): Tollgate {
  return new Tollgate({ apiKey: demo.apiKey, baseUrl: demo.url, timeoutMs: 20_000, ...options });
}

/** A Stripe API call to the emulator with a secret key (what a Stripe account's owner did before Tollgate),
 * its parameters form-encoded as Stripe takes them. */
export async function stripeCall(
  secretKey: string,
  route: string,
  params: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const response = await fetch(`${demo.emulatorUrl}/v1/${route}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${secretKey}` },
    body: new URLSearchParams(params),
  });
  const body = (await response.json()) as Record<string, unknown>;
  if (response.status !== 200) {
    throw new Error(`the emulator answered ${response.status} to ${route}: ${JSON.stringify(body)}`);
  }
  return body;
}

/** The customer pays on the emulator's hosted Checkout page (its control, as the page's form does). */
export async function payCheckout(stripeSessionId: string, card = "4242424242424242"): Promise<void> {
  const response = await fetch(
    `${demo.emulatorUrl}/_emulator/checkout/sessions/${encodeURIComponent(stripeSessionId)}/complete`,
    { method: "POST", body: new URLSearchParams({ card }) },
  );
  if (response.status !== 200) {
    throw new Error(`the emulator answered ${response.status}: ${await response.text()}`);
  }
}

/** `probe()` again until it returns something other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The demo project's Stripe account: the platform's key of `config/settings/local.py` (`make demo`). */
export const STRIPE_KEY = process.env.TOLLGATE_STRIPE_SECRET_KEY ?? "sk_test_tollgate_local_demo";

/** A Stripe object as the emulator answers it to the demo account's owner (`route` as `invoices/in_…`). */
export async function stripeGet(route: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${demo.emulatorUrl}/v1/${route}`, {
    headers: { Authorization: `Bearer ${STRIPE_KEY}` },
  });
  if (response.status !== 200) {
    throw new Error(`the emulator answered ${response.status} to ${route}: ${await response.text()}`);
  }
  return (await response.json()) as Record<string, unknown>;
}

/** `customer` subscribes to pro-monthly (paid at Checkout), then its account's owner makes it a one-off invoice of
 * 15.00 at Stripe, sent (send_invoice), so it stays open until paid; answered once Tollgate has mirrored it. */
export async function openInvoice(
  tollgate: Tollgate,
  customer: string,
): Promise<{ open: Invoice; stripeInvoice: string }> {
  const session = await tollgate.checkout.subscription({
    customer,
    price: "pro-monthly",
    success_url: OK_URL,
    cancel_url: CANCEL_URL,
  });
  if (!session.stripe_session_id) {
    throw new Error("the session has no Stripe session");
  }
  await payCheckout(session.stripe_session_id);
  await eventually(async () => {
    const current = await tollgate.payments.status(session.payment);
    return current.status === "succeeded" ? current : undefined;
  }, "the payment to succeed");
  const stripeCustomer = (await tollgate.customers.retrieve(customer)).stripe_customer_id ?? "";
  if (!stripeCustomer.startsWith("cus_")) {
    throw new Error(`the customer has no Stripe customer: ${stripeCustomer}`);
  }
  const draft = await stripeCall(STRIPE_KEY, "invoices", {
    customer: stripeCustomer,
    collection_method: "send_invoice",
    days_until_due: "30",
  });
  const stripeInvoice = draft.id as string;
  await stripeCall(STRIPE_KEY, "invoiceitems", {
    customer: stripeCustomer,
    invoice: stripeInvoice,
    amount: "1500",
    currency: "usd",
  });
  await stripeCall(STRIPE_KEY, `invoices/${stripeInvoice}/finalize`);
  const open = await eventually(async () => {
    const listed = await tollgate.invoices.list({ customer, status: "open" });
    return listed.data.find((i) => i.stripe_invoice_id === stripeInvoice);
  }, "the open invoice to be mirrored");
  return { open, stripeInvoice };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

function readBody(message: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    message.on("data", (chunk: Buffer) => chunks.push(chunk));
    message.on("end", () => resolve(Buffer.concat(chunks)));
    message.on("error", reject);
  });
}

export interface Delivery {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** The tenant's webhook endpoint: a real HTTP server on a loopback port that keeps every delivery's raw bytes. */
export class Receiver {
  readonly received: Delivery[] = [];
  url = "";
  private readonly server = createServer(async (req, res) => {
    this.received.push({ headers: req.headers, body: await readBody(req) });
    res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
  });

  async start(): Promise<this> {
    this.url = `${await listen(this.server)}/tollgate/webhooks`;
    return this;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export interface ProxiedRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  /** What the demo answered (before any fault). */
  status: number;
  replayed: boolean;
  fault: Fault | null;
}

/** What the proxy does to one request: drop the demo's answer (the request was applied, the client hears
 * nothing), or answer a status itself without passing the request on. */
export type Fault = { kind: "drop-answer" } | { kind: "answer"; status: number; headers?: Record<string, string> };

/**
 * A proxy in front of the demo that misbehaves on purpose: each request takes the next fault planned for its
 * method (`plan("POST", …)`), and every request is recorded with what the demo answered.
 */
export class FaultProxy {
  readonly requests: ProxiedRequest[] = [];
  url = "";
  private readonly faults = new Map<string, Fault[]>();
  private readonly upstream: URL;
  private readonly server: Server;

  constructor(upstream: string) {
    this.upstream = new URL(upstream);
    this.server = createServer(async (req, res) => {
      const method = req.method ?? "GET";
      const fault = this.faults.get(method)?.shift() ?? null;
      const body = await readBody(req);
      const key = req.headers["idempotency-key"];
      const record: ProxiedRequest = {
        method,
        path: req.url ?? "",
        idempotencyKey: Array.isArray(key) ? key[0] : key,
        status: 0,
        replayed: false,
        fault,
      };
      this.requests.push(record);
      if (fault?.kind === "answer") {
        res.writeHead(fault.status, { "Content-Type": "application/json", ...fault.headers });
        res.end(JSON.stringify({ error: { type: "api_error", code: "injected", message: "injected", param: null } }));
        return;
      }
      const upstreamRequest = request(
        {
          hostname: this.upstream.hostname,
          port: this.upstream.port,
          method,
          path: req.url,
          headers: { ...req.headers, host: this.upstream.host },
        },
        async (answer) => {
          const answerBody = await readBody(answer);
          record.status = answer.statusCode ?? 0;
          record.replayed = answer.headers["idempotent-replayed"] === "true";
          if (fault?.kind === "drop-answer") {
            req.socket.destroy(); // Tollgate acted; the client hears nothing
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          res.end(answerBody);
        },
      );
      upstreamRequest.on("error", () => req.socket.destroy());
      upstreamRequest.end(body);
    });
  }

  plan(method: string, ...faults: Fault[]): void {
    this.faults.set(method, [...(this.faults.get(method) ?? []), ...faults]);
  }

  async start(): Promise<this> {
    this.url = await listen(this.server);
    return this;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
