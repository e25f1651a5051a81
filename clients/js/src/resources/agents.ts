/** Agent keys: narrower keys for an agent on the MCP server (`/mcp`), scoped to a set of tools. */

import type { PagePromise } from "../pagination.js";
import type { AgentKey } from "../types.js";
import { type ListParams, Resource, type WriteOptions, path } from "./base.js";

export interface AgentKeyCreateParams {
  name?: string;
  /** The tools the key may call; without them, the read-only tools. */
  tools?: string[];
  /** Whether the key may confirm money moves (`move_confirm`). */
  can_confirm?: boolean;
}

export class AgentKeys extends Resource {
  /** The answer's `agent_key` (`tg_ak_…`) is the secret, shown this once; it calls tools on `/mcp` and nothing of
   * the REST API. */
  create(params: AgentKeyCreateParams = {}, options?: WriteOptions): Promise<AgentKey> {
    return this._post("/agent_keys", params, options);
  }

  list(params: ListParams = {}): PagePromise<AgentKey> {
    return this._list("/agent_keys", params);
  }

  /** The key's next tool call is refused; revoking it again changes nothing. */
  revoke(keyId: string, params: { reason?: string } = {}, options?: WriteOptions): Promise<AgentKey> {
    return this._deleteReturning(path("/agent_keys/{}", keyId), params, options);
  }
}
