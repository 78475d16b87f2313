/**
 * An edge replica in a Cloudflare Durable Object: one copy, kept in the object's durable
 * storage, shared by every isolate that routes to the object, and synced in the background by
 * the object's alarm as well as on requests. Declare the class in the Worker's config and
 * route requests to it; the object answers the same routes as `edgeReplica()`.
 *
 * @example A Worker that routes every request to one replica object
 * ```ts ignore
 * import { edgeReplicaObject } from "@gossip-kv/gossip-kv/edge/durable";
 *
 * export const GossipReplica = edgeReplicaObject((env: { UPSTREAM: string; TOKEN: string }) => ({
 *   upstream: env.UPSTREAM.split(","),
 *   token: env.TOKEN,
 *   maxStalenessMs: 1000,
 *   syncIntervalMs: 5000,
 * }));
 * export default {
 *   fetch(request: Request, env: { REPLICA: DurableObjectNamespace }) {
 *     return env.REPLICA.get(env.REPLICA.idFromName("main")).fetch(request);
 *   },
 * };
 * ```
 *
 * @module
 */

import type { Entry, StoredEntry } from "../core/store.ts";
import { type EdgeReplica, replicaHandler } from "./handler.ts";
import { type EdgeReplicaOptions, ReplicaCore } from "./replica.ts";

export type { EdgeReplicaOptions } from "./replica.ts";

/** Options of the replica in {@linkcode edgeReplicaObject}. */
export interface ReplicaObjectOptions extends EdgeReplicaOptions {
  /** Period of the background sync run by the object's alarm, in ms. Default 5,000. */
  syncIntervalMs?: number;
}

/** The part of a Durable Object's storage the replica uses. */
export interface DurableStorageLike {
  /** The stored values whose keys start with `prefix`. */
  list(options: { prefix: string }): Promise<Map<string, unknown>>;
  /** Stores several values at once. */
  put(entries: Record<string, unknown>): Promise<void>;
  /** Deletes several keys at once. */
  delete(keys: string[]): Promise<number>;
  /** When the alarm is set for, in ms since the epoch, or `null`. */
  getAlarm(): Promise<number | null>;
  /** Sets the alarm. */
  setAlarm(scheduledTime: number): Promise<void>;
}

/** The part of a Durable Object's state the replica uses. */
export interface DurableStateLike {
  /** The object's durable storage. */
  readonly storage: DurableStorageLike;
  /** Holds other events until `callback` settles (the load at start). */
  blockConcurrencyWhile<T>(callback: () => Promise<T>): Promise<T>;
}

/** A Durable Object class holding a replica. */
export interface ReplicaObjectClass {
  /** Constructs the object, as the runtime does. */
  new (state: DurableStateLike, env: unknown): {
    /** Answers a request routed to the object. */
    fetch(request: Request): Promise<Response>;
    /** The background sync, called by the runtime when the alarm fires. */
    alarm(): Promise<void>;
  };
}

/** Storage keys: "v:" then the section's initial, ":" and the key's 64-bit hash in hex. */
const PREFIX = "v:";
/** Storage key of when the stored copy was last known to match an upstream. */
const SYNCED_AT = "synced-at";
/** Writes per `put()` call at most (a Durable Object's batch limit is 128 keys). */
const BATCH = 128;

function storageKey(e: StoredEntry): string {
  // The key itself may be 4,096 characters; a storage key is at most 2 KiB. Two keys with
  // one 64-bit hash would share a slot: the next sync would fetch the lost one again.
  const hex = (n: number) => (n >>> 0).toString(16).padStart(8, "0");
  return `${PREFIX}${e.section[0]}:${hex(e.ka)}${hex(e.kb)}`;
}

function plain(e: StoredEntry): Entry {
  const { section, key, value, wall, logical, writer, deleted } = e;
  return deleted
    ? { section, key, value: undefined, wall, logical, writer, deleted }
    : { section, key, value, wall, logical, writer, deleted };
}

/**
 * A Durable Object class that holds one edge replica: its copy is kept in the object's
 * storage (loaded when the object starts, written after each request and sync), and its
 * alarm syncs every `syncIntervalMs` whether requests come or not. `configure` turns the
 * Worker's `env` into the replica's options.
 *
 * @example
 * ```ts ignore
 * import { edgeReplicaObject } from "@gossip-kv/gossip-kv/edge/durable";
 * export const GossipReplica = edgeReplicaObject((env: { TOKEN: string }) => ({
 *   upstream: ["https://gossip-1.example.com"],
 *   token: env.TOKEN,
 * }));
 * ```
 */
export function edgeReplicaObject<Env>(
  configure: (env: Env) => ReplicaObjectOptions,
): ReplicaObjectClass {
  if (typeof configure !== "function") {
    throw new TypeError("edgeReplicaObject() needs a function from env to options");
  }
  return class GossipReplicaObject {
    readonly #storage: DurableStorageLike;
    readonly #core: ReplicaCore;
    readonly #replica: EdgeReplica;
    readonly #intervalMs: number;
    readonly #ready: Promise<void>;
    #syncedAt: number | null = null;

    constructor(state: DurableStateLike, env: unknown) {
      const options = configure(env as Env);
      const interval = options.syncIntervalMs ?? 5000;
      if (typeof interval !== "number" || !(interval > 0) || !Number.isFinite(interval)) {
        throw new RangeError(`syncIntervalMs must be a positive number, got ${String(interval)}`);
      }
      this.#intervalMs = interval;
      this.#storage = state.storage;
      this.#core = new ReplicaCore(options, true);
      this.#replica = replicaHandler(this.#core);
      this.#ready = state.blockConcurrencyWhile(async () => {
        const stored = await this.#storage.list({ prefix: PREFIX });
        const meta = await this.#storage.list({ prefix: SYNCED_AT });
        const at = meta.get(SYNCED_AT);
        this.#core.load(stored.values() as Iterable<Entry>, typeof at === "number" ? at : null);
        this.#syncedAt = this.#core.syncedAt;
        if ((await this.#storage.getAlarm()) === null) {
          await this.#storage.setAlarm(Date.now() + this.#intervalMs);
        }
      });
    }

    async fetch(request: Request): Promise<Response> {
      await this.#ready;
      const response = await this.#replica.fetch(request);
      await this.#persist();
      return response;
    }

    async alarm(): Promise<void> {
      await this.#ready;
      try {
        await this.#core.sync();
      } catch {
        // No upstream answered: the next alarm tries again; stats() keeps the error.
      }
      await this.#persist();
      await this.#storage.setAlarm(Date.now() + this.#intervalMs);
    }

    async #persist(): Promise<void> {
      const { applied, collected } = this.#core.takeChanges();
      const latest = new Map<string, StoredEntry>();
      for (const e of applied) latest.set(storageKey(e), e);
      const gone = collected.map(storageKey).filter((k) => !latest.has(k));
      const puts = [...latest].filter(([, e]) => this.#core.store.get(e.section, e.key) === e);
      for (let i = 0; i < puts.length; i += BATCH) {
        const batch: Record<string, unknown> = {};
        for (const [k, e] of puts.slice(i, i + BATCH)) batch[k] = plain(e);
        try {
          await this.#storage.put(batch);
        } catch (error) {
          // A value over the storage's size limit: the copy holds it, and a restarted object
          // fetches it again from an upstream with its first sync.
          console.error("gossip-kv edge replica: storage put failed:", error);
        }
      }
      for (let i = 0; i < gone.length; i += BATCH) {
        await this.#storage.delete(gone.slice(i, i + BATCH));
      }
      const at = this.#core.syncedAt;
      if (at !== this.#syncedAt && at !== null) {
        await this.#storage.put({ [SYNCED_AT]: at });
        this.#syncedAt = at;
      }
    }
  };
}
