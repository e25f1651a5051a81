/** The project's double-entry journal, read as a stream for a bookkeeping system. */

import type { PagePromise, StreamPage } from "../pagination.js";
import type { Transport } from "../transport.js";
import type { JournalEntry, JournalEntryKind } from "../types.js";
import { Resource } from "./base.js";

export interface JournalEntryListParams {
  /** The `next` of a previous page: the entries posted after it. Without it, from the first entry. */
  after?: string;
  /** 1–500, default 100. */
  limit?: number;
  /** Only one movement's entries. */
  kind?: JournalEntryKind;
  /** Only entries effective at or after this instant: an ISO 8601 date (its midnight UTC) or time, or a `Date`. */
  effective_from?: string | Date;
  /** Only entries effective before this instant. */
  effective_to?: string | Date;
}

export class JournalEntries extends Resource {
  /**
   * Journal entries, oldest posting first, each with its `lines` (debit or credit in minor units, with the
   * account's code and name). The stream trails by a minute, so an entry committed late is never skipped: keep the
   * last page's `next` and ask again later for what follows (`for await` reads every page there is now).
   */
  list(params: JournalEntryListParams = {}): PagePromise<JournalEntry, StreamPage<JournalEntry>> {
    return this._stream("/journal/entries", {
      after: params.after,
      limit: params.limit,
      kind: params.kind,
      effective_from: moment(params.effective_from),
      effective_to: moment(params.effective_to),
    });
  }
}

/** `journal.entries`: the double-entry journal of the project's money (every movement mirrored from Stripe). */
export class Journal {
  readonly entries: JournalEntries;

  constructor(transport: Transport) {
    this.entries = new JournalEntries(transport);
  }
}

function moment(value: string | Date | undefined): string | undefined {
  return value instanceof Date ? value.toISOString() : value;
}
