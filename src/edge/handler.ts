// edgeReplica(): the fetch handler over a ReplicaCore. It answers the inspector's read and
// write routes with the same JSON shapes and problem bodies, from the local copy, syncing
// first when the copy is older than maxStalenessMs. No Hono: the edge bundle stays small.
import { MEMBER_KEY_PREFIX } from "../core/engine.ts";
import { rootHex } from "../core/sync.ts";
import { type Json, toJson } from "../json.ts";
import { sameToken } from "../http/_auth.ts";
import { problem, readBody } from "../http/_shared.ts";
import { assertValue, encodeCbor } from "../wire/cbor.ts";
import { MAX_KEY_LENGTH } from "../wire/codec.ts";
import {
  type EdgeReplicaOptions,
  type EdgeReplicaStats,
  type EdgeSyncResult,
  type ExecutionContextLike,
  ReplicaCore,
} from "./replica.ts";

/** Header of every read answer: how old the copy it came from is, in ms. */
export const AGE_HEADER = "x-gossip-kv-age-ms";
/** Header of a read answered from a stale copy: why the sync before it failed. */
export const SYNC_ERROR_HEADER = "x-gossip-kv-sync-error";

/** An edge replica: a fetch handler, and what it did. */
export interface EdgeReplica {
  /** The writer id of this replica's writes. */
  readonly id: string;
  /**
   * Answers one request: `GET /healthz`, `GET /state`, `GET /usr`, and `GET`, `PUT`,
   * `DELETE /usr/:key`. Pass it to the runtime as the fetch handler; `ctx.waitUntil`, when
   * given, carries the syncs that outlive a response.
   */
  fetch(request: Request, env?: unknown, ctx?: ExecutionContextLike): Promise<Response>;
  /** Syncs with an upstream now (joining a sync in flight). Rejects when none answers. */
  sync(): Promise<EdgeSyncResult>;
  /** Counters: syncs, round trips, bytes, pending writes, upstreams skipped. */
  stats(): EdgeReplicaStats;
}

const MAX_LIST = 10_000;
const JSON_HEADERS = { "content-type": "application/json" };

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

function keyOf(pathname: string): string | Response {
  const raw = pathname.slice("/usr/".length);
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    return problem(400, `The key ${JSON.stringify(raw)} is not valid percent-encoding`);
  }
  if (key === "") return problem(400, "The key must be a non-empty string");
  if (key.length > MAX_KEY_LENGTH) {
    return problem(400, `Key is longer than ${MAX_KEY_LENGTH} characters`);
  }
  return key;
}

function guard(request: Request, token: string): Response | undefined {
  const m = /^Bearer +(\S+) *$/i.exec(request.headers.get("authorization") ?? "");
  if (!m) {
    return problem(401, "This route needs an Authorization: Bearer <token> header", {
      "www-authenticate": 'Bearer realm="gossip-kv"',
    });
  }
  if (!sameToken(m[1]!, token)) {
    return problem(401, "The bearer token is not valid for this replica", {
      "www-authenticate": 'Bearer realm="gossip-kv", error="invalid_token"',
    });
  }
  return undefined;
}

function notAllowed(path: string, methods: string): Response {
  return problem(405, `${path} accepts ${methods} only`, { allow: methods.replace(/ and /, ", ") });
}

function snapshot(
  core: ReplicaCore,
): { sys: { members: Record<string, Json> }; usr: Record<string, Json> } {
  const members: Record<string, Json> = {};
  for (const e of core.store.versions("sys")) {
    if (e.deleted || !e.key.startsWith(MEMBER_KEY_PREFIX)) continue;
    members[e.key.slice(MEMBER_KEY_PREFIX.length)] = toJson(e.value);
  }
  const usr: Record<string, Json> = {};
  for (const e of core.store.versions("usr")) if (!e.deleted) usr[e.key] = toJson(e.value);
  return { sys: { members }, usr };
}

function memberCount(core: ReplicaCore): number {
  let n = 0;
  for (const e of core.store.versions("sys")) {
    if (!e.deleted && e.key.startsWith(MEMBER_KEY_PREFIX)) n++;
  }
  return n;
}

/**
 * An edge replica of a Gossip KV cluster: a fetch handler for workerd (Cloudflare Workers),
 * Deno Deploy (`deno serve`), `Bun.serve` or any server that takes one. It serves the
 * inspector's read and write routes from its own copy, and keeps that copy in sync with an
 * upstream member's HTTP API (`POST /edge/sync`, served by `createInspector`) by the same
 * Merkle descent members use: one small request when in sync. It needs no timer between
 * requests: a read of a copy older than `maxStalenessMs` syncs first, a write is pushed
 * upstream before it is acknowledged (`204`; `202` when no upstream has it yet), and the
 * syncs that may outlive a response go to `ctx.waitUntil`. It is a client of the cluster,
 * never a member: nothing probes it or declares it dead.
 *
 * `GET /healthz` adds a `replica` field to the inspector's answer: the
 * {@linkcode EdgeReplicaStats} (syncs, round trips, bytes, upstreams skipped).
 *
 * Creating a replica touches nothing of the runtime (no timer, no random number, no
 * request), so it may be created at module scope.
 *
 * @example A Worker (workerd) or a Deno Deploy app
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
 */
export function edgeReplica(options: EdgeReplicaOptions): EdgeReplica {
  return replicaHandler(new ReplicaCore(options));
}

/** The fetch handler over a {@linkcode ReplicaCore} (see {@linkcode edgeReplica}). */
export function replicaHandler(core: ReplicaCore): EdgeReplica {
  /** Syncs if the copy is too old; returns the headers a read answer carries. */
  async function fresh(
    ctx: ExecutionContextLike | undefined,
  ): Promise<Record<string, string> | Response> {
    const synced = core.syncedAt;
    const age = synced === null ? Infinity : Date.now() - synced;
    if (age > core.maxStalenessMs) {
      try {
        const r = await core.sync();
        return { [AGE_HEADER]: String(Math.max(0, Date.now() - r.startedAt)) };
      } catch (error) {
        const detail = (error as Error).message;
        if (core.syncedAt === null) {
          return problem(503, `This replica holds no state yet and could not sync: ${detail}`, {
            "retry-after": "1",
          });
        }
        return {
          [AGE_HEADER]: String(Date.now() - core.syncedAt),
          [SYNC_ERROR_HEADER]: detail.replace(/[\r\n]+/g, " ").slice(0, 500),
        };
      }
    }
    // Fresh enough: refresh ahead, after the answer, where the runtime lets work outlive it.
    if ((age > core.maxStalenessMs / 2 || core.hasPending) && ctx) {
      ctx.waitUntil(core.sync().catch(() => {}));
    }
    return { [AGE_HEADER]: String(age) };
  }

  async function write(
    request: Request,
    key: string,
    deleted: boolean,
  ): Promise<Response> {
    let value: unknown;
    if (!deleted) {
      const body = await readBody(request, core.maxBodyBytes);
      if (!body) {
        return problem(413, `The body exceeds the limit of ${core.maxBodyBytes} bytes`, {
          connection: "close",
        });
      }
      try {
        value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
      } catch (error) {
        return problem(400, `The body is not valid JSON: ${(error as Error).message}`);
      }
      try {
        assertValue(value);
      } catch (error) {
        return problem(400, (error as Error).message);
      }
      // The entry and its envelope must fit in one request to an upstream.
      const size = encodeCbor(value).length + key.length * 3;
      if (size > core.maxBodyBytes - 512) {
        return problem(413, `Value of ${size} bytes does not fit in one request to an upstream`);
      }
    }
    const seq = core.write(key, value, deleted);
    try {
      await core.sync(seq);
      return new Response(null, { status: 204 });
    } catch (error) {
      // Applied here, and pushed with the next sync: say so rather than fail.
      return json({
        type: "about:blank",
        title: "Accepted",
        status: 202,
        detail: `Applied at replica ${core.id}, but no upstream has it yet; it is pushed with ` +
          `the next sync. ${(error as Error).message}`,
      }, 202);
    }
  }

  async function route(request: Request, ctx: ExecutionContextLike | undefined): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname;
    const method = request.method;
    const read = method === "GET" || method === "HEAD";
    if (path === "/healthz" || path === "/state" || path === "/usr") {
      if (!read) return notAllowed(path, "GET");
      const headers = await fresh(ctx);
      if (headers instanceof Response) return headers;
      if (path === "/healthz") {
        return json(
          {
            ok: true,
            id: core.id,
            members: memberCount(core),
            keys: core.store.liveCount("usr"),
            replica: core.stats(),
          },
          200,
          headers,
        );
      }
      if (path === "/state") {
        const etag = `"${rootHex(core.store)}"`;
        const match = request.headers.get("if-none-match");
        if (match && (match === "*" || match.split(/\s*,\s*/).includes(etag))) {
          return new Response(null, { status: 304, headers: { ...headers, etag } });
        }
        return json(snapshot(core), 200, { ...headers, etag, "cache-control": "no-cache" });
      }
      const prefix = url.searchParams.get("prefix") ?? "";
      const max = Math.min(MAX_LIST, Number(url.searchParams.get("limit") ?? 1000));
      if (!Number.isInteger(max) || max < 0) {
        return problem(400, `limit must be an integer from 0 to ${MAX_LIST}`);
      }
      const keys: string[] = [];
      for (const e of core.store.versions("usr")) {
        if (!e.deleted && e.key.startsWith(prefix)) keys.push(e.key);
      }
      keys.sort();
      const entries = keys.slice(0, max).map((key) => {
        const v = core.store.get("usr", key)!;
        return { key, value: toJson(v.value), writer: v.writer, wall: v.wall };
      });
      return json({ entries, truncated: keys.length > max }, 200, headers);
    }
    if (path.startsWith("/usr/")) {
      if (method === "PUT" || method === "DELETE") {
        const refused = guard(request, core.token);
        if (refused) return refused;
        const key = keyOf(path);
        if (typeof key !== "string") return key;
        return await write(request, key, method === "DELETE");
      }
      if (!read) return notAllowed("/usr/*", "GET, PUT and DELETE");
      const key = keyOf(path);
      if (typeof key !== "string") return key;
      const headers = await fresh(ctx);
      if (headers instanceof Response) return headers;
      const e = core.store.get("usr", key);
      if (!e || e.deleted) {
        const r = problem(404, `No key ${JSON.stringify(key)} (absent or deleted)`);
        for (const [k, v] of Object.entries(headers)) r.headers.set(k, v);
        return r;
      }
      return json(toJson(e.value), 200, headers);
    }
    return problem(404, `No route ${method} ${path}`);
  }

  return {
    get id() {
      return core.id;
    },
    fetch: async (request, _env, ctx) => {
      let response: Response;
      try {
        response = await route(request, ctx);
      } catch (error) {
        console.error("gossip-kv edge replica:", error);
        response = problem(500, "The request failed inside the replica");
      }
      response.headers.set("x-content-type-options", "nosniff");
      return response;
    },
    sync: () => core.sync(),
    stats: () => core.stats(),
  };
}
