/**
 * Tollgate's embeddable pricing table: `<tollgate-pricing>` and `<tollgate-paywall>`, one dependency-free ES module.
 *
 *   <script type="module" src="https://billing.example.com/static/tollgate/pricing.js"></script>
 *   <tollgate-pricing project="acme" checkout-endpoint="/billing/checkout"></tollgate-pricing>
 *
 * It reads the project's public plans (`GET {api-base}/api/v1/public/{project}/plans`, no key, no cookies) and
 * renders each plan's flat recurring price for the chosen currency and billing interval, with its features. A
 * plan's "Choose" button POSTs `{price, customer?}` to the tenant's own `checkout-endpoint` (same origin by default,
 * with the page's cookies); that backend creates the checkout with its secret key (`POST
 * /api/v1/checkout/subscription`) and answers `{url}`, which the browser then follows. No key ever reaches the page.
 *
 * `<tollgate-paywall feature="sso">` is the same table limited to the plans that grant one feature.
 * Documented in docs/integration.md, "Pricing table you can embed".
 */

// Stripe's minor units (https://docs.stripe.com/currencies#minor-units), as core/money.py counts them.
const ZERO_DECIMAL = new Set([
  "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
]);
const THREE_DECIMAL = new Set(["bhd", "jod", "kwd", "omr", "tnd"]);

/** How many decimal places a currency's minor unit has: 0 (JPY), 3 (KWD) or 2 (USD and any other). */
export function minorUnitExponent(currency) {
  const code = String(currency).toLowerCase();
  if (ZERO_DECIMAL.has(code)) return 0;
  if (THREE_DECIMAL.has(code)) return 3;
  return 2;
}

/** `amount` minor units of `currency` as the locale writes money: formatAmount(4900, "usd", "en-US") → "$49.00". */
export function formatAmount(amount, currency, locale) {
  const exponent = minorUnitExponent(currency);
  // Intl's own digits for a currency are ISO 4217's, which differ from Stripe's for a few (HUF, ISK, UGX…).
  const format = new Intl.NumberFormat(locale, {
    style: "currency",
    currency: String(currency).toUpperCase(),
    minimumFractionDigits: exponent,
    maximumFractionDigits: exponent,
  });
  // Exact for any safe integer: the decimal string is built from integers, never from a float's fraction.
  const digits = String(Math.abs(Math.trunc(amount))).padStart(exponent + 1, "0");
  const sign = amount < 0 ? "-" : "";
  const decimal = exponent ? `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}` : digits;
  return format.format(`${sign}${decimal}`);
}

const INTERVAL_NAMES = { day: ["Daily", "day", "days"], week: ["Weekly", "week", "weeks"],
  month: ["Monthly", "month", "months"], year: ["Yearly", "year", "years"] };

function intervalLabel(interval, count) {
  const names = INTERVAL_NAMES[interval] || [interval, interval, interval];
  return count === 1 ? names[0] : `Every ${count} ${names[2]}`;
}

function periodText(interval, count) {
  const names = INTERVAL_NAMES[interval] || [interval, interval, interval];
  return count === 1 ? `per ${names[1]}` : `every ${count} ${names[2]}`;
}

/** The price a plan's card shows: its cheapest flat, licensed recurring price (tiered and metered ones are not). */
function isHeadline(price) {
  return price.type === "recurring" && price.usage_type === "licensed" && price.billing_scheme === "per_unit"
    && Number.isInteger(price.unit_amount);
}

const intervalKey = (price) => `${price.interval}:${price.interval_count}`;

function humanKey(key) {
  return String(key).replace(/[_-]+/g, " ");
}

/** A feature's value as a person reads it, or null to leave it out (see docs/integration.md for every form). */
export function featureText(feature, locale) {
  const number = (n) => new Intl.NumberFormat(locale).format(n);
  const value = feature.value;
  const name = feature.name;
  if (feature.type === "boolean") return name;
  if (feature.type === "static") {
    if (value === null || value === undefined || value === false) return null;
    if (typeof value !== "object") return `${name}: ${value}`;
    const parts = Object.entries(value).map(([key, part]) =>
      typeof part === "string" ? part : `${humanKey(key)} ${typeof part === "number" ? number(part) : JSON.stringify(part)}`);
    return `${name}: ${parts.join(", ")}`;
  }
  // metered, credits, allocation: a count, null (unlimited), {per_unit}, {limit|per_unit, credits, overage, rollover}
  if (value === null) return `${name}: Unlimited`;
  if (typeof value === "number") return `${name}: ${number(value)}`;
  if (value && typeof value === "object") {
    let text;
    if ("per_unit" in value) text = `${number(value.per_unit)} per unit bought`;
    else text = value.limit === null ? "Unlimited" : number(value.limit);
    if (value.credits && typeof value.credits === "object") {
      const cost = Number.isInteger(value.credits.cost) ? value.credits.cost : 1;
      text += `, then ${number(cost)} credit${cost === 1 ? "" : "s"} each`;
    }
    if (value.overage === "allowed") text += ", then billed per use";
    if (value.windows && typeof value.windows === "object") {
      const windows = Object.entries(value.windows).map(([window, limit]) => `${number(limit)} a ${window}`);
      if (windows.length) text += `, at most ${windows.join(", ")}`;
    }
    if (value.per_entity && typeof value.per_entity === "object" && Number.isInteger(value.per_entity.limit)) {
      text += `, ${number(value.per_entity.limit)} for each of your ${humanKey(value.per_entity.feature)}`;
      const own = value.per_entity.windows && typeof value.per_entity.windows === "object"
        ? Object.entries(value.per_entity.windows).map(([window, limit]) => `${number(limit)} a ${window}`) : [];
      if (own.length) text += ` (at most ${own.join(", ")})`;
    }
    if (value.per_entity && typeof value.per_entity === "object" && typeof value.per_entity.on_remove === "string") {
      const end = value.per_entity.on_remove === "forfeit" ? "forfeited" : "returned to you";
      const seats = humanKey(value.per_entity.feature);
      text += Number.isInteger(value.per_entity.credits)
        ? `; ${number(value.per_entity.credits)} for each of your ${seats}, its own (${end} when removed)`
        : `; each of your ${seats} may hold its own (${end} when removed)`;
    }
    if (Number.isInteger(value.rollover) && value.rollover > 0) text += `, up to ${number(value.rollover)} roll over`;
    return `${name}: ${text}`;
  }
  return null;
}

/** A plan's account cap (`{amount, currency, at_cap}`) as its card says it, `period` being the price's ("per
 * month"): accountCapText({amount: 50000, currency: "usd", at_cap: "block"}, "per month", "en-US") → "Usage
 * billed up to $500.00 per month"; null without one. */
export function accountCapText(cap, period, locale) {
  if (!cap || !Number.isInteger(cap.amount) || !cap.currency) return null;
  const amount = formatAmount(cap.amount, cap.currency, locale);
  return cap.at_cap === "alert" ? `An alert at ${amount} of usage ${period}` : `Usage billed up to ${amount} ${period}`;
}

/** Whether a plan's value of a feature lets its customers use the feature at all (the paywall's filter). */
export function grants(feature) {
  const value = feature.value;
  if (feature.type === "boolean") return value === true;
  if (feature.type === "static") return value !== null && value !== undefined && value !== false;
  if (value === null) return true; // unlimited
  if (typeof value === "number") return value > 0;
  if (value && typeof value === "object") {
    const amount = "per_unit" in value ? value.per_unit : value.limit;
    return amount === null || amount > 0 || value.overage === "allowed";
  }
  return false;
}

const STYLE = `
:host {
  --_accent: var(--tollgate-accent, #3b4cca);
  --_on-accent: var(--tollgate-on-accent, #ffffff);
  --_text: var(--tollgate-text, #1f2933);
  --_muted: var(--tollgate-muted, #52606d);
  --_background: var(--tollgate-card-background, #ffffff);
  --_border: var(--tollgate-card-border, #cbd2d9);
  --_radius: var(--tollgate-radius, 12px);
  --_gap: var(--tollgate-gap, 20px);
  --_focus: var(--tollgate-focus, var(--_accent));
  --_error: var(--tollgate-error, #a61b1b);
  display: block;
  font-family: var(--tollgate-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  color: var(--_text);
  line-height: 1.5;
}
:host([hidden]) { display: none; }
* { box-sizing: border-box; }
.sr-only {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
.lead { margin: 0 0 16px; color: var(--_muted); }
.toggle {
  display: inline-flex; gap: 4px; padding: 4px; margin: 0 0 var(--_gap);
  border: 1px solid var(--_border); border-radius: 999px; background: var(--_background);
}
.toggle button {
  font: inherit; font-weight: 600; padding: 6px 16px; border: 2px solid transparent; border-radius: 999px;
  background: transparent; color: var(--_text); cursor: pointer;
}
.toggle button[aria-checked="true"] { background: var(--_accent); color: var(--_on-accent); }
.toggle button[aria-checked="true"]::before { content: "✓ " / ""; } /* shown, not announced: the radio says it */
.plans {
  display: grid; gap: var(--_gap); grid-template-columns: repeat(auto-fit, minmax(min(100%, 240px), 1fr));
  list-style: none; margin: 0; padding: 0;
}
.plan {
  display: flex; flex-direction: column; gap: 12px; padding: 24px; background: var(--_background);
  border: 1px solid var(--_border); border-radius: var(--_radius);
}
.plan.highlighted { border: 2px solid var(--_accent); }
.badge {
  align-self: flex-start; font-size: 0.8em; font-weight: 700; text-transform: uppercase; letter-spacing: 0.04em;
  padding: 2px 10px; border-radius: 999px; background: var(--_accent); color: var(--_on-accent);
}
.name { margin: 0; font-size: 1.25em; }
.description { margin: 0; color: var(--_muted); }
.price { margin: 0; }
.amount { font-size: 2em; font-weight: 700; letter-spacing: -0.01em; }
.period, .trial { color: var(--_muted); }
.trial { margin: 0; font-size: 0.9em; }
.features { list-style: none; margin: 0; padding: 0; display: grid; gap: 6px; flex: 1; align-content: start; }
.features li { display: flex; gap: 8px; align-items: baseline; }
.features .mark { flex: none; width: 1.1em; font-weight: 700; color: var(--_accent); }
.features li.excluded { color: var(--_muted); }
.features li.excluded .mark { color: var(--_muted); }
.features li.excluded .text { text-decoration: line-through; }
.choose {
  font: inherit; font-weight: 700; padding: 10px 16px; border-radius: calc(var(--_radius) / 1.5); cursor: pointer;
  border: 2px solid var(--_accent); background: var(--_background); color: var(--_accent);
}
.highlighted .choose, .choose:hover { background: var(--_accent); color: var(--_on-accent); }
.choose[aria-disabled="true"] { cursor: progress; opacity: 0.7; }
button:focus-visible, .retry:focus-visible { outline: 3px solid var(--_focus); outline-offset: 3px; }
.status:empty { display: none; }
.status { margin: 0 0 var(--_gap); color: var(--_muted); }
.alert:empty { display: none; }
.alert {
  margin: 0 0 var(--_gap); padding: 12px 16px; border: 2px solid var(--_error); border-radius: var(--_radius);
  color: var(--_error); background: var(--_background); font-weight: 600;
}
.alert::before { content: "⚠ "; }
.retry {
  font: inherit; margin-left: 12px; padding: 4px 12px; border-radius: 6px; cursor: pointer;
  border: 2px solid currentColor; background: transparent; color: inherit;
}
@media (prefers-reduced-motion: no-preference) {
  .choose, .toggle button { transition: background-color 150ms ease, color 150ms ease; }
}
@media (forced-colors: active) {
  .toggle button[aria-checked="true"], .plan.highlighted { outline: 2px solid CanvasText; }
}
`;

function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function moduleOrigin() {
  try {
    return new URL(import.meta.url).origin;
  } catch {
    return window.location.origin;
  }
}

export class TollgatePricing extends HTMLElement {
  static observedAttributes = [
    "project", "api-base", "checkout-endpoint", "checkout-credentials", "currency", "interval", "customer",
    "highlight", "highlight-label", "locale", "heading-level", "feature",
  ];

  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    /** Extra headers for the checkout request, e.g. `{"X-CSRFToken": token}` (a property, not an attribute). */
    this.checkoutHeaders = this.checkoutHeaders || {}; // kept when set before the element was defined
    /** `(feature, product) => string | null` to word (or hide, with null) a feature; defaults to `featureText`. */
    this.featureText = this.featureText || null;
    this._plans = null;
    this._interval = null;
    this._loading = 0;
    this._busy = false;
    this._refocus = false;
    const style = h("style", {}, STYLE);
    this._lead = h("p", { class: "lead", part: "lead", hidden: true });
    this._status = h("p", { class: "status", part: "status", role: "status", "aria-live": "polite" });
    this._alert = h("div", { class: "alert", part: "error", role: "alert" });
    this._body = h("div", { part: "body" });
    this.shadowRoot.append(style, this._lead, this._status, this._alert, this._body);
  }

  connectedCallback() {
    if (!this._plans && !this._loading) this._load(false);
  }

  attributeChangedCallback(name, old, value) {
    if (old === value || !this.isConnected) return;
    if (name === "project" || name === "api-base") this._load(false);
    else if (this._plans) this._render();
  }

  get locale() {
    return this.getAttribute("locale") || document.documentElement.lang || navigator.language || "en-US";
  }

  get apiBase() {
    return (this.getAttribute("api-base") || moduleOrigin()).replace(/\/+$/, "");
  }

  /** The plans as last fetched (the public endpoint's `data`), or null. */
  get plans() {
    return this._plans;
  }

  /** Fetches the plans again, past the browser's cache, and renders them (what "Try again" does). */
  reload() {
    return this._load(true);
  }

  /** Fetches the plans and renders them; the loading and error states are announced. The endpoint lets browsers
   * cache its answer for a minute: a first load takes it from there, a reload asks Tollgate again. */
  async _load(revalidate) {
    const project = this.getAttribute("project");
    const attempt = ++this._loading;
    this._plans = null;
    this._body.replaceChildren();
    this._alert.replaceChildren();
    this._body.setAttribute("aria-busy", "true");
    this._say("Loading plans…");
    let failure = null;
    let plans = null;
    if (!project) {
      failure = { status: null, message: "No project is set (the project attribute)." };
    } else {
      const url = `${this.apiBase}/api/v1/public/${encodeURIComponent(project)}/plans`;
      try {
        const response = await fetch(url, {
          credentials: "omit", headers: { Accept: "application/json" }, cache: revalidate ? "no-cache" : "default",
        });
        const body = await response.json().catch(() => null);
        if (response.ok && body && Array.isArray(body.data)) plans = body.data;
        else failure = { status: response.status, message: (body && body.error && body.error.message) || `HTTP ${response.status}` };
      } catch (error) {
        failure = { status: null, message: String(error && error.message ? error.message : error) };
      }
    }
    if (attempt !== this._loading) return; // a newer reload runs
    this._loading = 0;
    this._body.removeAttribute("aria-busy");
    if (failure) {
      this._say("");
      this._fail("plans", failure, "The plans could not be loaded.", true);
      if (this._refocus) {
        this._refocus = false;
        this._alert.querySelector(".retry").focus();
      }
      return;
    }
    this._plans = plans;
    this._render();
    this._say("");
    if (this._refocus) {
      this._refocus = false;
      const first = this._body.querySelector('[role="radio"][tabindex="0"], .choose');
      if (first) first.focus();
    }
    this.dispatchEvent(new CustomEvent("tollgate:plans-loaded", { bubbles: true, composed: true, detail: { plans } }));
  }

  _say(text) {
    this._status.textContent = text;
  }

  _fail(stage, failure, text, retry) {
    this._alert.replaceChildren(text);
    if (retry) {
      const button = h("button", { type: "button", class: "retry", part: "retry" }, "Try again");
      button.addEventListener("click", () => {
        this._refocus = true; // the button goes away with the alert: focus what replaces it
        this.reload();
      });
      this._alert.append(button);
    }
    this.dispatchEvent(new CustomEvent("tollgate:error", {
      bubbles: true, composed: true, detail: { stage, status: failure.status, message: failure.message },
    }));
  }

  /** The products to show with their headline prices in the chosen currency, and the intervals offered. */
  _offer() {
    let products = this._plans;
    const feature = this.getAttribute("feature");
    if (feature) {
      products = products.filter((product) => product.features.some((f) => f.key === feature && grants(f)));
    }
    const headline = products.flatMap((product) => product.prices.filter(isHeadline));
    const currency = (this.getAttribute("currency") || (headline[0] && headline[0].currency) || "").toLowerCase();
    const inCurrency = headline.filter((price) => price.currency === currency);
    const intervals = [];
    const order = { day: 0, week: 1, month: 2, year: 3 };
    for (const price of inCurrency) {
      if (!intervals.some((known) => known.key === intervalKey(price))) {
        intervals.push({ key: intervalKey(price), interval: price.interval, count: price.interval_count });
      }
    }
    intervals.sort((a, b) => (order[a.interval] ?? 9) - (order[b.interval] ?? 9) || a.count - b.count);
    const wanted = this._interval || this.getAttribute("interval") || "month";
    const chosen = intervals.find((i) => i.key === wanted || (i.count === 1 && i.interval === wanted))
      || intervals[0] || null;
    const rows = [];
    for (const product of products) {
      const price = product.prices.find((p) => isHeadline(p) && p.currency === currency && chosen && intervalKey(p) === chosen.key);
      if (price) rows.push({ product, price });
    }
    return { currency, intervals, chosen, rows };
  }

  _render() {
    const { intervals, chosen, rows } = this._offer();
    const feature = this.getAttribute("feature");
    this._renderLead(feature);
    const children = [];
    if (intervals.length > 1) children.push(this._toggle(intervals, chosen));
    if (!rows.length) {
      children.push(h("p", { class: "empty", part: "empty" }, "No plans are available."));
    } else {
      const list = h("ul", { class: "plans", part: "plans", "aria-label": "Plans" });
      for (const row of rows) list.append(this._card(row.product, row.price));
      children.push(list);
    }
    const focused = this.shadowRoot.activeElement;
    const refocus = focused && focused.dataset ? focused.dataset.focusKey : null;
    this._body.replaceChildren(...children);
    if (refocus) {
      const again = this._body.querySelector(`[data-focus-key="${CSS.escape(refocus)}"]`);
      if (again) again.focus();
    }
  }

  _renderLead() {
    this._lead.hidden = true;
  }

  _toggle(intervals, chosen) {
    const label = h("span", { id: "interval-label", class: "sr-only" }, "Billing interval");
    const group = h("div", { class: "toggle", part: "interval-toggle", role: "radiogroup", "aria-labelledby": "interval-label" });
    const buttons = intervals.map((interval) => {
      const checked = interval.key === chosen.key;
      const button = h("button", {
        type: "button", role: "radio", part: checked ? "interval interval-checked" : "interval",
        "aria-checked": String(checked), tabindex: checked ? "0" : "-1",
        "data-interval": interval.count === 1 ? interval.interval : interval.key, "data-focus-key": `interval:${interval.key}`,
      }, intervalLabel(interval.interval, interval.count));
      button.addEventListener("click", () => this._choose(interval.key));
      return button;
    });
    group.addEventListener("keydown", (event) => {
      const keys = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, Home: "first", End: "last" };
      if (!(event.key in keys)) return;
      event.preventDefault();
      const at = intervals.findIndex((i) => i.key === chosen.key);
      const step = keys[event.key];
      const next = step === "first" ? 0 : step === "last" ? intervals.length - 1
        : (at + step + intervals.length) % intervals.length;
      this._choose(intervals[next].key);
    });
    group.append(...buttons);
    return h("div", { class: "toggle-row" }, label, group);
  }

  _choose(key) {
    this._interval = key;
    this._render();
    const again = this._body.querySelector(`[data-focus-key="${CSS.escape(`interval:${key}`)}"]`);
    if (again) again.focus();
    this.dispatchEvent(new CustomEvent("tollgate:interval-change", { bubbles: true, composed: true, detail: { interval: key } }));
  }

  _card(product, price) {
    const level = Math.min(6, Math.max(2, Number(this.getAttribute("heading-level")) || 3));
    const highlighted = this.getAttribute("highlight") === product.key;
    const amount = formatAmount(price.unit_amount, price.currency, this.locale);
    const period = periodText(price.interval, price.interval_count);
    const card = h("li", {
      class: highlighted ? "plan highlighted" : "plan", part: highlighted ? "plan plan-highlighted" : "plan",
      "data-product": product.key, "data-price": price.key,
    });
    if (highlighted) card.append(h("span", { class: "badge", part: "badge" }, this.getAttribute("highlight-label") || "Recommended"));
    card.append(h(`h${level}`, { class: "name", part: "name" }, product.name));
    if (product.description) card.append(h("p", { class: "description", part: "description" }, product.description));
    card.append(h("p", { class: "price", part: "price" },
      h("span", { class: "amount", part: "amount" }, amount), " ", h("span", { class: "period", part: "period" }, period)));
    if (price.trial_days) {
      card.append(h("p", { class: "trial", part: "trial" }, `${price.trial_days}-day free trial`));
    }
    const features = h("ul", { class: "features", part: "features", "aria-label": `${product.name} includes` });
    for (const feature of product.features) {
      const text = this.featureText ? this.featureText(feature, product) : featureText(feature, this.locale);
      if (!text) continue;
      const excluded = feature.type === "boolean" && feature.value !== true;
      features.append(h("li", {
        class: excluded ? "excluded" : null, part: excluded ? "feature feature-excluded" : "feature",
        "data-feature": feature.key,
      },
      h("span", { class: "mark", "aria-hidden": "true" }, excluded ? "✕" : "✓"),
      h("span", { class: "text" }, excluded ? h("span", { class: "sr-only" }, "Not included: ") : null, text)));
    }
    const capText = accountCapText(product.account_cap, period, this.locale);
    if (capText) {
      features.append(h("li", { part: "feature", "data-feature": "account_cap" },
        h("span", { class: "mark", "aria-hidden": "true" }, "✓"), h("span", { class: "text" }, capText)));
    }
    card.append(features);
    const button = h("button", {
      type: "button", class: "choose", part: "choose", "data-focus-key": `choose:${price.key}`,
      "aria-label": `Choose ${product.name}, ${amount} ${period}`,
    }, `Choose ${product.name}`);
    button.addEventListener("click", () => this._checkout(product, price, button));
    card.append(button);
    return card;
  }

  async _checkout(product, price, button) {
    if (this._busy) return;
    const detail = {
      price: price.key, product: product.key, currency: price.currency, interval: price.interval,
      interval_count: price.interval_count, customer: this.getAttribute("customer") || null,
    };
    const start = new CustomEvent("tollgate:checkout-start", { bubbles: true, composed: true, cancelable: true, detail });
    if (!this.dispatchEvent(start)) return; // the app starts the checkout itself
    const endpoint = this.getAttribute("checkout-endpoint");
    this._alert.replaceChildren();
    if (!endpoint) {
      this._fail("checkout", { status: null, message: "No checkout-endpoint attribute." }, "The checkout could not be started.", false);
      return;
    }
    this._busy = true;
    button.setAttribute("aria-disabled", "true");
    this._say(`Starting the checkout for ${product.name}…`);
    const body = { price: price.key };
    if (detail.customer) body.customer = detail.customer;
    let failure = null;
    try {
      const headers = { "Content-Type": "application/json", Accept: "application/json", ...(this.checkoutHeaders || {}) };
      const response = await fetch(endpoint, {
        method: "POST", headers, body: JSON.stringify(body),
        credentials: this.getAttribute("checkout-credentials") || "same-origin",
      });
      const answer = await response.json().catch(() => null);
      const url = answer && typeof answer.url === "string" ? answer.url : "";
      if (response.ok && /^https?:\/\//i.test(url)) {
        this._say(`Opening the checkout for ${product.name}…`);
        window.location.assign(url);
        return; // stays busy: the page is leaving
      }
      failure = {
        status: response.status,
        message: (answer && (answer.error && answer.error.message || answer.message)) || (response.ok ? "The answer has no checkout url." : `HTTP ${response.status}`),
      };
    } catch (error) {
      failure = { status: null, message: String(error && error.message ? error.message : error) };
    }
    this._busy = false;
    button.removeAttribute("aria-disabled");
    this._say("");
    this._fail("checkout", failure, `The checkout for ${product.name} could not be started. Please try again.`, false);
  }
}

/** "40 seconds", "59 minutes", "3 hours", "2 days": how long until a limit frees up (`retry_after`). */
export function waitText(seconds) {
  const s = Math.max(1, Math.ceil(Number(seconds)));
  const [count, unit] = s < 90 ? [s, "second"] : s < 5400 ? [Math.round(s / 60), "minute"]
    : s < 129600 ? [Math.round(s / 3600), "hour"] : [Math.round(s / 86400), "day"];
  return `${count} ${unit}${count === 1 ? "" : "s"}`;
}

/** The paywall's line for a refused check: what refused it (`binding`: the period, a usage window, the feature's
 * spending cap or the account's, or the limit of the seat or workspace the check named, whose own `entityBinding`
 * is its period or one of its windows) and when it frees up (`retry-after`). */
export function bindingText(name, binding, retryAfter, entityBinding) {
  const when = retryAfter === null || retryAfter === undefined || retryAfter === ""
    ? "" : ` It frees up in ${waitText(retryAfter)}.`;
  const what = binding === "period" ? `You have used this period's ${name}.`
    : binding === "cap" ? `You have reached the spending cap on ${name}.`
      : binding === "account_cap" ? `You have reached your account's spending cap.`
        : binding === "entity" ? (entityBinding && entityBinding !== "period"
          ? `You have used your share of the ${name} you may use in one ${entityBinding}.`
          : `You have used your share of this period's ${name}.`)
          : `You have reached the ${name} you may use in one ${binding}.`;
  return `${what}${when} These plans give more.`;
}

/** The plans that grant one feature (`feature="sso"`), under a line that says why they are shown: a refused
 * check's `binding` and `retry_after` (and, naming an entity, its `entity.binding`), given as the `binding`,
 * `retry-after` and `entity-binding` attributes, say what refused it and when it frees up. */
export class TollgatePaywall extends TollgatePricing {
  static observedAttributes = [
    ...TollgatePricing.observedAttributes, "message", "binding", "retry-after", "entity-binding",
  ];

  _renderLead() {
    const key = this.getAttribute("feature");
    if (!key) return super._renderLead();
    const found = this._plans.flatMap((product) => product.features).find((f) => f.key === key);
    const name = found ? found.name : key;
    const binding = this.getAttribute("binding");
    this._lead.textContent = this.getAttribute("message")
      || (binding ? bindingText(name, binding, this.getAttribute("retry-after"), this.getAttribute("entity-binding"))
        : `${name} is available on these plans.`);
    this._lead.hidden = false;
  }
}

if (!customElements.get("tollgate-pricing")) customElements.define("tollgate-pricing", TollgatePricing);
if (!customElements.get("tollgate-paywall")) customElements.define("tollgate-paywall", TollgatePaywall);
