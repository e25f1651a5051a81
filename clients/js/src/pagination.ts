/** One page of a list endpoint, and the async iteration that follows `starting_after` through all of them; a
 * stream's page, which follows the cursor its answer gives (`next`) instead. */

/** A list answer: `{"object": "list", "data": [...], "has_more": bool}`. */
export interface ListObject<T> {
  object: "list";
  data: T[];
  has_more: boolean;
}

/**
 * A page of a list. `data` is this page's items; iterating the page with `for await` goes on through the
 * following pages (same filters and `limit`), one request each, as the loop needs them.
 */
export class Page<T extends object> implements AsyncIterable<T> {
  readonly data: T[];
  readonly hasMore: boolean;
  readonly raw: ListObject<T>;
  protected readonly fetchAfter: (startingAfter: string) => Promise<Page<T>>;

  constructor(raw: ListObject<T>, fetchAfter: (startingAfter: string) => Promise<Page<T>>) {
    this.raw = raw;
    this.data = raw.data;
    this.hasMore = Boolean(raw.has_more);
    this.fetchAfter = fetchAfter;
  }

  /** The page after this one, or null when this is the last. */
  async nextPage(): Promise<Page<T> | null> {
    const last = this.data[this.data.length - 1];
    if (!this.hasMore || last === undefined) {
      return null;
    }
    return this.fetchAfter(String((last as { id?: unknown }).id));
  }

  /** Every item from this page on, fetching the next page when the loop reaches the end of one. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let page: Page<T> | null = this;
    while (page !== null) {
      yield* page.data;
      page = await page.nextPage();
    }
  }

  /** Every item from this page on, in an array (all pages are fetched: mind long lists). */
  async toArray(): Promise<T[]> {
    const items: T[] = [];
    for await (const item of this) {
      items.push(item);
    }
    return items;
  }
}

/** A stream's answer: a list, and the cursor where it ends. */
export interface StreamListObject<T> extends ListObject<T> {
  next: string | null;
}

/**
 * A page of a stream (`journal.entries.list`): oldest first, each page after the opaque cursor the previous one
 * answered. `next` is where this page ends: pass it as `after`, now for the next page (`nextPage()` and `for
 * await` do), or later for what was added since — keep it when `hasMore` is false. Null only while the stream has
 * served nothing.
 */
export class StreamPage<T extends object> extends Page<T> {
  readonly next: string | null;
  declare readonly raw: StreamListObject<T>;

  constructor(raw: StreamListObject<T>, fetchAfter: (after: string) => Promise<StreamPage<T>>) {
    super(raw, fetchAfter);
    this.next = raw.next ?? null;
  }

  override async nextPage(): Promise<StreamPage<T> | null> {
    if (!this.hasMore || this.next === null) {
      return null;
    }
    return (await this.fetchAfter(this.next)) as StreamPage<T>;
  }
}

/**
 * What a list method returns: `await` it for the first `Page` (a `StreamPage` for a stream), or iterate it
 * directly with `for await` for every item of every page. The first request is made when it is first awaited or
 * iterated.
 */
export class PagePromise<T extends object, P extends Page<T> = Page<T>> implements PromiseLike<P>, AsyncIterable<T> {
  private promise: Promise<P> | null = null;
  private readonly load: () => Promise<P>;

  constructor(load: () => Promise<P>) {
    this.load = load;
  }

  private page(): Promise<P> {
    this.promise ??= this.load();
    return this.promise;
  }

  then<R1 = P, R2 = never>(
    onFulfilled?: ((page: P) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.page().then(onFulfilled, onRejected);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    yield* await this.page();
  }

  /** Every item of every page, in an array. */
  async toArray(): Promise<T[]> {
    return (await this.page()).toArray();
  }
}
