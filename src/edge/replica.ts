// The edge replica: a copy of the map kept in sync with a member's HTTP API, without a timer
// between requests. The routes it serves are in _routes.ts; the exchange it speaks is in
// src/wire/exchange.ts; the descent itself is src/core/sync.ts, as between members.
import { HybridClock } from "../core/hlc.ts";
import { MAX_LEVEL } from "../core/merkle.ts";
import type { Message } from "../core/messages.ts";
import { type Entry, Store, type StoredEntry } from "../core/store.ts";
import { syncReply, syncRoot } from "../core/sync.ts";
import { readBody } from "../http/_shared.ts";
import { decodeExchange, encodeExchange, EXCHANGE_TYPE } from "../wire/exchange.ts";

/** Options of {@linkcode edgeReplica}. */
export interface EdgeReplicaOptions {
  /** Base URLs of the members' HTTP APIs to sync with (`https://gossip-1.example.com`). */
  upstream: string | readonly string[];
  /** Bearer token of the upstream members' HTTP API; the replica's write routes require it too. */
  token: string;
  /** A read is never served from state older than this, in ms, without a sync first. Default 1,000. */
  maxStalenessMs?: number;
  /** Cluster name of the upstream members. Default `"default"`. */
  cluster?: string;
  /** Writer id of this replica's writes. Default: `edge-` and a random suffix. */
  id?: string;
  /** How long one request to an upstream may take, in ms. Default 5,000. */
  timeoutMs?: number;
  /** An upstream that failed is skipped for this long, in ms. Default 30,000. */
  downForMs?: number;
  /** Largest request body, to the replica and to an upstream, in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Largest answer accepted from an upstream, in bytes. Default 64 MiB. */
  maxResponseBytes?: number;
  /** Tombstones are collected this long after a delete, in ms, as on members. Default 1 hour. */
  tombstoneGraceMs?: number;
  /** Stamps further ahead of this replica's clock are refused, in ms. Default 60 s. */
  maxDriftMs?: number;
  /**
   * The fetch function that reaches the upstreams. Default: the runtime's `fetch`, looked
   * up at each request (so a Worker may pass a service binding's `fetch` instead).
   */
  fetch?: (request: Request) => Promise<Response>;
}

/** What one sync did. */
export interface EdgeSyncResult {
  /** The upstream it synced with. */
  readonly upstream: string;
  /** HTTP requests made (1 when already in sync). */
  readonly roundTrips: number;
  /** Request bytes sent (bodies only). */
  readonly bytesSent: number;
  /** Response bytes received (bodies only). */
  readonly bytesReceived: number;
  /** Versions received and merged. */
  readonly entriesReceived: number;
  /** Versions sent (this replica's writes, and what the upstream lacked). */
  readonly entriesSent: number;
  /** When the sync started, in ms since the epoch: the copy is at least this fresh. */
  readonly startedAt: number;
}

/** Counters of an {@linkcode EdgeReplica}. */
export interface EdgeReplicaStats {
  /** Syncs that completed. */
  readonly syncs: number;
  /** Syncs in which no upstream answered. */
  readonly syncFailures: number;
  /** HTTP requests to upstreams, answered or not. */
  readonly roundTrips: number;
  /** Request bytes sent to upstreams. */
  readonly bytesSent: number;
  /** Response bytes received from upstreams. */
  readonly bytesReceived: number;
  /** Remote versions refused for a stamp too far in the future. */
  readonly refusedClockSkew: number;
  /** Writes applied here that no upstream has acknowledged yet. */
  readonly pendingWrites: number;
  /** The last sync that completed, or `null`. */
  readonly lastSync: EdgeSyncResult | null;
  /** Each upstream, with the time until which it is skipped and its last error. */
  readonly upstreams: readonly {
    readonly url: string;
    readonly downUntil: number | null;
    readonly lastError: string | null;
  }[];
}

/** The context a runtime passes to a fetch handler; only `waitUntil` is used. */
export interface ExecutionContextLike {
  /** Keeps the isolate alive until `promise` settles, after the response is sent. */
  waitUntil(promise: Promise<unknown>): void;
}

interface Upstream {
  readonly url: string;
  readonly endpoint: string;
  downUntil: number;
  lastError: string | null;
}

/** Descent rounds at most: one per tree level, the leaves, the wanted entries, and slack. */
const MAX_ROUNDS = 2 * (MAX_LEVEL + 3);

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a non-negative number, got ${String(value)}`);
  }
  return value;
}

function upstreamOf(raw: unknown): Upstream {
  if (typeof raw !== "string") throw new TypeError("Each upstream must be a URL string");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`Upstream ${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`Upstream ${JSON.stringify(raw)} is not an http: or https: URL`);
  }
  const base = url.href.replace(/\/+$/, "");
  return { url: base, endpoint: `${base}/edge/sync`, downUntil: 0, lastError: null };
}

function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The replica's state and its sync with the upstreams; {@linkcode edgeReplica} wraps it
 * with the HTTP routes. Every method works from a request: nothing runs between requests.
 */
export class ReplicaCore {
  readonly token: string;
  readonly maxStalenessMs: number;
  readonly maxBodyBytes: number;
  readonly store: Store = new Store();
  readonly #cluster: string;
  #id: string | undefined;
  readonly #upstreams: Upstream[];
  readonly #timeoutMs: number;
  readonly #downForMs: number;
  readonly #maxResponseBytes: number;
  readonly #graceMs: number;
  readonly #clock: HybridClock;
  readonly #fetch: ((request: Request) => Promise<Response>) | undefined;
  /** Versions applied (and tombstones collected) since the last {@linkcode ReplicaCore.takeChanges}. */
  #applied: StoredEntry[] = [];
  #collected: StoredEntry[] = [];
  /** Writes made here and not yet acknowledged by an upstream, by key. */
  readonly #pending = new Map<string, StoredEntry>();
  #writeSeq = 0;
  #inflight: { covers: number; promise: Promise<EdgeSyncResult> } | undefined;
  #lastSync: EdgeSyncResult | null = null;
  #loadedSyncedAt: number | null = null;
  #next = 0;
  readonly #stats = {
    syncs: 0,
    syncFailures: 0,
    roundTrips: 0,
    bytesSent: 0,
    bytesReceived: 0,
    refusedClockSkew: 0,
  };

  /** Whether applied and collected versions are kept for {@linkcode ReplicaCore.takeChanges}. */
  readonly #track: boolean;

  /** With `track`, what changes is kept until taken (for durable storage). */
  constructor(options: EdgeReplicaOptions, track = false) {
    this.#track = track;
    if (!options || typeof options !== "object") {
      throw new TypeError("edgeReplica() needs an options object");
    }
    const list = typeof options.upstream === "string" ? [options.upstream] : options.upstream;
    if (!Array.isArray(list) || list.length === 0) {
      throw new TypeError("upstream must be a URL or a non-empty array of URLs");
    }
    this.#upstreams = list.map(upstreamOf);
    const token = options.token;
    if (typeof token !== "string" || token === "" || /\s/.test(token)) {
      throw new TypeError("token must be a non-empty string without spaces");
    }
    this.token = token;
    const cluster = options.cluster ?? "default";
    if (typeof cluster !== "string" || cluster.length > 256) {
      throw new TypeError("Cluster name must be a string of at most 256 characters");
    }
    this.#cluster = cluster;
    if (options.id !== undefined) {
      if (typeof options.id !== "string" || options.id.length === 0 || options.id.length > 256) {
        throw new TypeError("id must be a string of 1 to 256 characters");
      }
      this.#id = options.id;
    }
    this.maxStalenessMs = positive("maxStalenessMs", options.maxStalenessMs, 1000);
    this.#timeoutMs = positive("timeoutMs", options.timeoutMs, 5000);
    this.#downForMs = positive("downForMs", options.downForMs, 30_000);
    this.maxBodyBytes = positive("maxBodyBytes", options.maxBodyBytes, 1024 * 1024);
    this.#maxResponseBytes = positive("maxResponseBytes", options.maxResponseBytes, 64 << 20);
    this.#graceMs = positive("tombstoneGraceMs", options.tombstoneGraceMs, 3_600_000);
    this.#clock = new HybridClock({
      maxDriftMs: positive("maxDriftMs", options.maxDriftMs, 60_000),
    });
    if (options.fetch !== undefined && typeof options.fetch !== "function") {
      throw new TypeError("fetch must be a function");
    }
    this.#fetch = options.fetch;
  }

  /** The writer id (chosen on first use: some runtimes refuse randomness at module load). */
  get id(): string {
    return this.#id ??= `edge-${randomSuffix()}`;
  }

  /** When the copy was last known to match an upstream, or `null` before the first sync. */
  get syncedAt(): number | null {
    return this.#lastSync?.startedAt ?? this.#loadedSyncedAt;
  }

  /** Applies a local write (validated by the caller): read-your-writes from here on. */
  write(key: string, value: unknown, deleted: boolean): number {
    const stamp = this.#clock.tick(Date.now());
    const entry: Entry = {
      section: "usr",
      key,
      value: deleted ? undefined : value,
      ...stamp,
      writer: this.id,
      deleted,
    };
    const { stored } = this.store.merge(entry);
    this.#pending.set(key, stored!);
    if (this.#track) this.#applied.push(stored!);
    return ++this.#writeSeq;
  }

  /**
   * Loads versions kept by durable storage (before the first request): merges them, and
   * moves the clock past their stamps. They are not reported by `takeChanges`. `syncedAt`
   * is when the stored copy was last known to match an upstream.
   */
  load(entries: Iterable<Entry>, syncedAt: number | null): void {
    for (const e of entries) {
      this.#clock.observe(e, e.wall);
      this.store.merge(e);
    }
    this.#loadedSyncedAt = syncedAt;
  }

  /** The versions applied and the tombstones collected since the last call. */
  takeChanges(): { applied: StoredEntry[]; collected: StoredEntry[] } {
    const out = { applied: this.#applied, collected: this.#collected };
    this.#applied = [];
    this.#collected = [];
    return out;
  }

  /**
   * A sync that starts after write number `seq` was applied (so it pushes that write), or
   * any sync (joining one in flight) with `seq` 0.
   */
  async sync(seq = 0): Promise<EdgeSyncResult> {
    for (;;) {
      const current = this.#inflight;
      if (current && current.covers >= seq) return await current.promise;
      if (current) {
        await current.promise.catch(() => {});
        continue;
      }
      const promise = this.#run().finally(() => {
        if (this.#inflight?.promise === promise) this.#inflight = undefined;
      });
      this.#inflight = { covers: this.#writeSeq, promise };
      return await promise;
    }
  }

  /** Whether writes made here still wait for an upstream. */
  get hasPending(): boolean {
    return this.#pending.size > 0;
  }

  stats(): EdgeReplicaStats {
    return {
      ...this.#stats,
      pendingWrites: this.#pending.size,
      lastSync: this.#lastSync,
      upstreams: this.#upstreams.map((u) => ({
        url: u.url,
        downUntil: u.downUntil > Date.now() ? u.downUntil : null,
        lastError: u.lastError,
      })),
    };
  }

  async #run(): Promise<EdgeSyncResult> {
    const now = Date.now();
    this.store.collectTombstones(now - this.#graceMs, this.#track ? this.#collected : undefined);
    // Healthy upstreams first, starting after the one used last; the skipped ones last.
    const n = this.#upstreams.length;
    const order = Array.from({ length: n }, (_, i) => this.#upstreams[(this.#next + i) % n]!);
    const up = order.filter((u) => u.downUntil <= now);
    const tried = up.length ? up : order;
    const errors: string[] = [];
    for (const u of tried) {
      try {
        const result = await this.#syncWith(u, now);
        u.downUntil = 0;
        u.lastError = null;
        this.#next = this.#upstreams.indexOf(u);
        this.#lastSync = result;
        this.#stats.syncs++;
        return result;
      } catch (error) {
        const message = (error as Error).message;
        u.lastError = message;
        u.downUntil = Date.now() + this.#downForMs;
        errors.push(message);
      }
    }
    this.#next = (this.#next + 1) % n;
    this.#stats.syncFailures++;
    throw new Error(`No upstream answered: ${errors.join("; ")}`);
  }

  async #syncWith(u: Upstream, startedAt: number): Promise<EdgeSyncResult> {
    const pushed = [...this.#pending.values()];
    let outgoing: Message[] = [syncRoot(this.store)];
    if (pushed.length) outgoing.unshift({ type: "entries", entries: pushed });
    let roundTrips = 0, bytesSent = 0, bytesReceived = 0, entriesReceived = 0, entriesSent = 0;
    while (outgoing.length) {
      if (roundTrips >= MAX_ROUNDS) {
        throw new Error(`${u.url}: the descent did not end after ${roundTrips} requests`);
      }
      for (const m of outgoing) if (m.type === "entries") entriesSent += m.entries.length;
      const bodies = encodeExchange(this.#cluster, this.id, outgoing, this.maxBodyBytes);
      const replies: Message[] = [];
      for (const body of bodies) {
        roundTrips++;
        bytesSent += body.length;
        const answer = await this.#post(u, body);
        bytesReceived += answer.bytes;
        replies.push(...answer.messages);
      }
      outgoing = [];
      const now = Date.now();
      for (const m of replies) {
        if (m.type === "entries") {
          entriesReceived += m.entries.length;
          for (const e of m.entries) {
            if (!this.#clock.observe(e, now)) {
              this.#stats.refusedClockSkew++;
              continue;
            }
            const r = this.store.merge(e);
            if (r.stored && this.#track) this.#applied.push(r.stored);
          }
        } else if (m.type.startsWith("sync-")) {
          outgoing.push(...syncReply(this.store, m));
        }
      }
    }
    // The upstream has every pushed write now, unless a newer one replaced it meanwhile.
    for (const e of pushed) if (this.#pending.get(e.key) === e) this.#pending.delete(e.key);
    return {
      upstream: u.url,
      roundTrips,
      bytesSent,
      bytesReceived,
      entriesReceived,
      entriesSent,
      startedAt,
    };
  }

  async #post(u: Upstream, body: Uint8Array): Promise<{ messages: Message[]; bytes: number }> {
    const fetcher = this.#fetch ?? ((r: Request) => fetch(r));
    this.#stats.roundTrips++;
    this.#stats.bytesSent += body.length;
    let response: Response;
    try {
      response = await fetcher(
        new Request(u.endpoint, {
          method: "POST",
          headers: { authorization: `Bearer ${this.token}`, "content-type": EXCHANGE_TYPE },
          body: body as Uint8Array<ArrayBuffer>,
          signal: AbortSignal.timeout(this.#timeoutMs),
        }),
      );
    } catch (error) {
      const e = error as Error;
      const why = e?.name === "TimeoutError" || e?.name === "AbortError"
        ? `no answer within ${this.#timeoutMs} ms`
        : e?.message ?? String(error);
      throw new Error(`${u.url}: ${why}`);
    }
    if (response.status === 204) {
      await response.body?.cancel().catch(() => {});
      return { messages: [], bytes: 0 };
    }
    if (response.status !== 200) {
      const text = await response.text().catch(() => "");
      let detail = text.slice(0, 200);
      try {
        detail = String(JSON.parse(text).detail ?? detail);
      } catch { /* not a problem body */ }
      throw new Error(`${u.url}: HTTP ${response.status}${detail ? `: ${detail}` : ""}`);
    }
    const type = response.headers.get("content-type") ?? "";
    if (!type.startsWith(EXCHANGE_TYPE)) {
      await response.body?.cancel().catch(() => {});
      throw new Error(`${u.url}: answered ${type || "no content type"}, not ${EXCHANGE_TYPE}`);
    }
    let bytes: Uint8Array | null;
    try {
      bytes = await readBody(response, this.#maxResponseBytes);
    } catch (error) {
      throw new Error(`${u.url}: the answer broke off: ${(error as Error).message}`);
    }
    if (!bytes) throw new Error(`${u.url}: the answer exceeds ${this.#maxResponseBytes} bytes`);
    this.#stats.bytesReceived += bytes.length;
    try {
      const envelope = decodeExchange(bytes, this.#cluster, this.#maxResponseBytes);
      return { messages: [...envelope.messages], bytes: bytes.length };
    } catch (error) {
      throw new Error(`${u.url}: ${(error as Error).message}`);
    }
  }
}
