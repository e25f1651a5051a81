/** What every resource namespace shares: a transport, and typed helpers around it. */

import { APIError } from "../errors.js";
import { type ListObject, Page, PagePromise, type StreamListObject, StreamPage } from "../pagination.js";
import type { QueryParams, Transport } from "../transport.js";

/** Options of a mutating call. */
export interface WriteOptions {
  /** Yours (to make the call safe to repeat across process restarts), or a new UUID for this call. Every retry
   * of the call sends the same key. */
  idempotencyKey?: string;
}

/** The paging parameters of every list. */
export interface ListParams {
  /** 1–100, default 20. */
  limit?: number;
  /** The id of the last item of the previous page (the pages follow it themselves). */
  starting_after?: string;
}

/** `path("/payments/{}/refund", "pay_1")`: ids are quoted whole, so `a/b` or `ada@example.com` stays one segment. */
export function path(template: string, ...ids: string[]): string {
  let index = 0;
  return template.replace(/\{\}/g, () => encodeURIComponent(String(ids[index++])));
}

export abstract class Resource {
  protected readonly transport: Transport;

  constructor(transport: Transport) {
    this.transport = transport;
  }

  protected _get<T>(url: string, params?: object): Promise<T> {
    return this.object<T>("GET", url, { params: params as QueryParams | undefined });
  }

  protected _post<T>(url: string, body: object = {}, options: WriteOptions = {}): Promise<T> {
    return this.object<T>("POST", url, { body, idempotencyKey: options.idempotencyKey });
  }

  protected _patch<T>(url: string, body: object, options: WriteOptions = {}): Promise<T> {
    return this.object<T>("PATCH", url, { body, idempotencyKey: options.idempotencyKey });
  }

  protected _put<T>(url: string, body: object, options: WriteOptions = {}): Promise<T> {
    return this.object<T>("PUT", url, { body, idempotencyKey: options.idempotencyKey });
  }

  /** A DELETE that answers nothing (204). */
  protected async _delete(url: string, body?: object, options: WriteOptions = {}): Promise<void> {
    await this.transport.request("DELETE", url, { body: nonEmpty(body), idempotencyKey: options.idempotencyKey });
  }

  /** A DELETE that answers the object as it ends (a grant or revocation, `deleted: true`). */
  protected _deleteReturning<T>(url: string, body?: object, options: WriteOptions = {}): Promise<T> {
    return this.object<T>("DELETE", url, { body: nonEmpty(body), idempotencyKey: options.idempotencyKey });
  }

  protected _list<T extends object>(url: string, params: object = {}): PagePromise<T> {
    return new PagePromise(() => this.page<T>(url, params as QueryParams));
  }

  /** A stream: oldest first, each page after the cursor the previous one answered (`next`). */
  protected _stream<T extends object>(url: string, params: object = {}): PagePromise<T, StreamPage<T>> {
    return new PagePromise(() => this.streamPage<T>(url, params as QueryParams));
  }

  private async streamPage<T extends object>(url: string, params: QueryParams): Promise<StreamPage<T>> {
    const answer = await this.transport.request<unknown>("GET", url, { params });
    if (!isRecord(answer) || !Array.isArray(answer["data"])) {
      throw new APIError(`Expected a list object from GET ${url}.`);
    }
    return new StreamPage(answer as unknown as StreamListObject<T>, (after) =>
      this.streamPage<T>(url, { ...params, after }),
    );
  }

  private async page<T extends object>(url: string, params: QueryParams): Promise<Page<T>> {
    const answer = await this.transport.request<unknown>("GET", url, { params });
    if (!isRecord(answer) || !Array.isArray(answer["data"])) {
      throw new APIError(`Expected a list object from GET ${url}.`);
    }
    return new Page(answer as unknown as ListObject<T>, (startingAfter) =>
      this.page<T>(url, { ...params, starting_after: startingAfter }),
    );
  }

  private async object<T>(
    method: string,
    url: string,
    options: Parameters<Transport["request"]>[2],
  ): Promise<T> {
    const answer = await this.transport.request<unknown>(method, url, options);
    if (!isRecord(answer)) {
      throw new APIError(`Expected a JSON object from ${method} ${url}, got ${answer === null ? "nothing" : typeof answer}.`);
    }
    return answer as T;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function nonEmpty(body: object | undefined): object | undefined {
  if (body === undefined) {
    return undefined;
  }
  return Object.values(body).some((value) => value !== undefined) ? body : undefined;
}
