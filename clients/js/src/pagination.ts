/** One page of a list endpoint, and the async iteration that follows `starting_after` through all of them. */

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
  private readonly fetchAfter: (startingAfter: string) => Promise<Page<T>>;

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

/**
 * What a list method returns: `await` it for the first `Page`, or iterate it directly with `for await` for
 * every item of every page. The first request is made when it is first awaited or iterated.
 */
export class PagePromise<T extends object> implements PromiseLike<Page<T>>, AsyncIterable<T> {
  private promise: Promise<Page<T>> | null = null;
  private readonly load: () => Promise<Page<T>>;

  constructor(load: () => Promise<Page<T>>) {
    this.load = load;
  }

  private page(): Promise<Page<T>> {
    this.promise ??= this.load();
    return this.promise;
  }

  then<R1 = Page<T>, R2 = never>(
    onFulfilled?: ((page: Page<T>) => R1 | PromiseLike<R1>) | null,
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
