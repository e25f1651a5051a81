/** Outbound events: the endpoints Tollgate delivers them to, and the events themselves. */

import type { PagePromise } from "../pagination.js";
import type { Event, EventType, WebhookEndpoint } from "../types.js";
import { type ListParams, Resource, type WriteOptions, path } from "./base.js";

export interface WebhookEndpointParams {
  url?: string;
  /** `["*"]` (the default on create) or event types. */
  events?: Array<EventType | "*">;
  description?: string;
  enabled?: boolean;
}

export class WebhookEndpoints extends Resource {
  /** The answer carries the signing `secret`, shown this once: store it for `constructEvent`. */
  create(params: WebhookEndpointParams & { url: string }, options?: WriteOptions): Promise<WebhookEndpoint> {
    return this._post("/webhook_endpoints", { events: ["*"], ...params }, options);
  }

  retrieve(endpointId: string): Promise<WebhookEndpoint> {
    return this._get(path("/webhook_endpoints/{}", endpointId));
  }

  update(endpointId: string, params: WebhookEndpointParams, options?: WriteOptions): Promise<WebhookEndpoint> {
    return this._patch(path("/webhook_endpoints/{}", endpointId), params, options);
  }

  delete(endpointId: string, options?: WriteOptions): Promise<void> {
    return this._delete(path("/webhook_endpoints/{}", endpointId), undefined, options);
  }

  list(params: ListParams = {}): PagePromise<WebhookEndpoint> {
    return this._list("/webhook_endpoints", params);
  }

  /**
   * A new signing secret (in the answer). For `overlap_seconds` deliveries are signed with both, so receivers
   * can switch without losing any: pass both secrets to `constructEvent` meanwhile.
   */
  rollSecret(
    endpointId: string,
    params: { overlap_seconds?: number } = {},
    options?: WriteOptions,
  ): Promise<WebhookEndpoint> {
    return this._post(path("/webhook_endpoints/{}/roll_secret", endpointId), params, options);
  }
}

export class Events extends Resource {
  /** The event with its `deliveries`. */
  retrieve(eventId: string): Promise<Event> {
    return this._get(path("/events/{}", eventId));
  }

  list(params: ListParams & { type?: EventType } = {}): PagePromise<Event> {
    return this._list("/events", params);
  }

  /** Queues the event again for every endpoint that subscribes to it. */
  redeliver(eventId: string, options?: WriteOptions): Promise<Event> {
    return this._post(path("/events/{}/redeliver", eventId), {}, options);
  }
}
