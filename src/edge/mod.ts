/**
 * An edge replica of a Gossip KV cluster, for runtimes where a member cannot live: a fetch
 * handler (workerd / Cloudflare Workers, Deno Deploy, `deno serve`, `Bun.serve`) that serves
 * the inspector's read and write routes from its own copy of the map, and keeps the copy in
 * sync with the members' HTTP APIs by Merkle anti-entropy, request by request, with no
 * timer in between.
 *
 * Consistency: a client of one replica reads its own writes; another member's write is
 * visible within `maxStalenessMs` plus one sync. Nothing this module reaches imports
 * `node:*` or touches a runtime global at module load.
 *
 * @example A Worker
 * ```ts ignore
 * import { edgeReplica } from "@gossip-kv/gossip-kv/edge";
 *
 * const replica = edgeReplica({
 *   upstream: ["https://gossip-1.example.com", "https://gossip-2.example.com"],
 *   token: "the members' --http-token",
 *   maxStalenessMs: 1000,
 * });
 * export default { fetch: replica.fetch };
 * ```
 *
 * @module
 */

export { AGE_HEADER, edgeReplica, SYNC_ERROR_HEADER } from "./handler.ts";
export type { EdgeReplica } from "./handler.ts";
export type {
  EdgeReplicaOptions,
  EdgeReplicaStats,
  EdgeSyncResult,
  ExecutionContextLike,
} from "./replica.ts";
