/**
 * `GossipKV`: the store users hold. It owns the timers, the transport and the promises;
 * everything it decides is delegated to the pure {@linkcode Engine}, which it feeds with
 * the time, random numbers and received datagrams, and whose output it sends.
 *
 * @module
 */

import { Listeners } from "./_listeners.ts";
import { Traffic } from "./_traffic.ts";
import { isConfigKey } from "./core/config.ts";
import {
  type Change,
  changeOf,
  DEFAULT_CONFIG,
  Engine,
  type EngineConfig,
  type MemberChange,
} from "./core/engine.ts";
import type { Envelope, Message } from "./core/messages.ts";
import type { Random } from "./core/random.ts";
import { type Json, toJson } from "./json.ts";
import type { Clock, Scheduler } from "./time.ts";
import { systemClock, systemScheduler } from "./time.ts";
import type { Storage } from "./storage/types.ts";
import type { Transport } from "./transport/types.ts";
import type {
  GossipKVOptions,
  GossipKVStats,
  ListOptions,
  MemberInfo,
  Snapshot,
  SyncStatus,
} from "./types.ts";
import { assertValue, decodeCbor, encodeCbor } from "./wire/cbor.ts";
import { MAX_KEY_LENGTH } from "./wire/codec.ts";
import { type KeyInput, Keyring } from "./wire/crypto.ts";
import { SealingPipeline } from "./wire/sealing.ts";
import { type Received, Wire } from "./wire/wire.ts";
import type { GossipKVWarning } from "./warnings.ts";
import { JoinWatch } from "./_join_watch.ts";
import { decodeExchange, encodeExchange } from "./wire/exchange.ts";

export type { Change, MemberChange } from "./core/engine.ts";
export type { MemberStatus } from "./core/messages.ts";
export type {
  GossipKVOptions,
  GossipKVStats,
  ListOptions,
  MemberInfo,
  Snapshot,
  SyncStatus,
} from "./types.ts";
export type { GossipKVWarning, Refusal, WarnedRefusal } from "./warnings.ts";

/** Datagrams queued for sending at most; more are dropped (and counted) until some leave. */
export const MAX_PENDING_SENDS = 8192;
/** Received datagrams waiting to be decrypted at most; more are dropped as `overloaded`. */
export { MAX_PENDING_OPENS } from "./wire/sealing.ts";

/** The default value of every engine option, for documentation and tools. */
export const DEFAULTS: Readonly<EngineConfig> = DEFAULT_CONFIG;

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length === 0) {
    throw new TypeError(
      `Key must be a non-empty string, got ${key === "" ? "an empty string" : typeof key}`,
    );
  }
  if (key.length > MAX_KEY_LENGTH) {
    throw new TypeError(`Key is longer than ${MAX_KEY_LENGTH} characters`);
  }
}

function listPrefix(options: ListOptions): string {
  const prefix = options?.prefix ?? "";
  if (typeof prefix !== "string") throw new TypeError("prefix must be a string");
  return prefix;
}

function randomId(random: Random): string {
  let s = "";
  for (let i = 0; i < 8; i++) s += Math.floor(random() * 16).toString(16);
  return `member-${s}`;
}

/**
 * A member of a Gossip KV cluster: a key-value map that every member shares.
 *
 * @example A two-member cluster in one process
 * ```ts
 * import { GossipKV, MemoryNetwork } from "@gossip-kv/gossip-kv";
 *
 * const net = new MemoryNetwork({ latencyMs: 1 });
 * const a = await GossipKV.start({ id: "a", transport: net.transport("a"), gossipIntervalMs: 50 });
 * const b = await GossipKV.start({ id: "b", transport: net.transport("b"), seeds: ["a"] });
 * await a.set("greeting", "hello");
 * await new Promise((resolve) => setTimeout(resolve, 100));
 * console.log(b.get("greeting")); // "hello"
 * await Promise.all([a.close(), b.close()]);
 * ```
 */
export class GossipKV {
  /** This member's id. */
  readonly id: string;
  /** The address other members reach this one at. */
  readonly address: string;
  readonly #engine: Engine;
  readonly #wire: Wire;
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #scheduler: Scheduler;
  readonly #maxValueBytes: number;
  readonly #onError: (error: unknown) => void;
  readonly #listeners: Listeners<Change>;
  readonly #memberListeners: Listeners<MemberChange>;
  readonly #join: JoinWatch;
  #timer: unknown;
  #timerAt = Infinity;
  #flushScheduled = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #storage: Storage | undefined;
  #storageClosed = false;
  readonly #pendingSends = new Set<Promise<void>>();
  readonly #sealing: SealingPipeline;
  readonly #traffic = new Traffic();

  private constructor(options: GossipKVOptions, keyring: Keyring | undefined) {
    const transport = options.transport;
    if (
      !transport || typeof transport.send !== "function" || typeof transport.listen !== "function"
    ) {
      throw new TypeError(
        "options.transport must be a Transport (for example MemoryNetwork.transport())",
      );
    }
    const random = options.random ?? Math.random;
    this.#clock = options.clock ?? systemClock;
    this.#scheduler = options.scheduler ?? systemScheduler;
    this.#transport = transport;
    this.#onError = options.onError ?? ((error) => console.error("gossip-kv:", error));
    this.#maxValueBytes = options.maxValueBytes ?? 4 * 1024 * 1024;
    this.#storage = options.storage;
    this.#listeners = new Listeners(this.#onError);
    this.#memberListeners = new Listeners(this.#onError);
    this.id = options.id ?? randomId(random);
    this.address = transport.address;
    const cluster = options.cluster ?? "default";
    if (typeof cluster !== "string" || cluster.length > 256) {
      throw new TypeError("Cluster name must be a string of at most 256 characters");
    }
    if (options.seeds !== undefined && !Array.isArray(options.seeds)) {
      throw new TypeError("options.seeds must be an array of addresses");
    }
    const onWarning = options.onWarning ??
      ((warning: GossipKVWarning) => console.warn(`gossip-kv: ${warning.message}`));
    this.#join = new JoinWatch({
      id: this.id,
      cluster,
      clock: this.#clock,
      scheduler: this.#scheduler,
      seeds: () => this.#engine.seeds.filter((s) => s !== this.address),
      warn: (warning) => {
        try {
          onWarning(warning);
        } catch (error) {
          this.#onError(error);
        }
      },
    });
    this.#wire = new Wire({
      cluster,
      sender: this.id,
      ...(options.mtu !== undefined && { mtu: options.mtu }),
      maxMessageBytes: Math.max(8 * 1024 * 1024, this.#maxValueBytes * 2),
    });
    this.#sealing = new SealingPipeline({
      wire: this.#wire,
      keyring,
      ...(options.replayWindowMs !== undefined && { replayWindowMs: options.replayWindowMs }),
      now: () => this.#clock.now(),
      onError: this.#onError,
    });
    // Engine options given directly override the same ones in `tuning`.
    const tuning: Partial<EngineConfig> = { ...options.tuning };
    for (const [k, v] of Object.entries(options)) {
      if (isConfigKey(k) && v !== undefined) (tuning as Record<string, unknown>)[k] = v;
    }
    this.#engine = new Engine(
      {
        ...tuning,
        id: this.id,
        address: this.address,
        seeds: options.seeds ?? [],
        meta: options.meta ?? {},
      },
      this.#clock.now(),
      random,
    );
  }

  /**
   * Starts a member: listens on the transport, announces itself and joins through the
   * seeds. Resolves once it is listening; replication proceeds in the background, and
   * {@linkcode GossipKV.joined} tells when a member has answered. Rejects (never throws)
   * with a `TypeError` or `RangeError` for bad options.
   */
  static async start(options: GossipKVOptions): Promise<GossipKV> {
    if (!options || typeof options !== "object") {
      throw new TypeError("GossipKV.start() needs an options object");
    }
    const { requireEncryption } = options;
    if (requireEncryption !== undefined && typeof requireEncryption !== "boolean") {
      throw new TypeError(`requireEncryption must be a boolean, got ${String(requireEncryption)}`);
    }
    if (requireEncryption && options.keys === undefined) {
      throw new TypeError(
        "requireEncryption is set but no keys are given: pass keys (generateKey() makes one), " +
          "or leave requireEncryption unset to gossip in plaintext",
      );
    }
    const keyring = options.keys === undefined ? undefined : await Keyring.create(options.keys);
    const kv = new GossipKV(options, keyring);
    const storage = kv.#storage;
    if (storage) await kv.#restore(storage);
    try {
      await kv.#transport.listen((data, from) => kv.#receive(data, from));
    } catch (error) {
      await storage?.close().catch(() => {});
      throw error;
    }
    const now = kv.#clock.now();
    kv.#engine.start(now);
    kv.#pump();
    kv.#schedule();
    kv.#join.start(now);
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) await kv.close();
      else signal.addEventListener("abort", () => void kv.close(), { once: true });
    }
    return kv;
  }

  // ------------------------------------------------------------------ data

  /**
   * The value of `key`, or `undefined` if absent or deleted. `T` names the type the caller
   * expects (as Deno KV's `get<T>()`): it is not checked at runtime.
   *
   * @example
   * ```ts
   * import { GossipKV, MemoryNetwork } from "@gossip-kv/gossip-kv";
   *
   * const kv = await GossipKV.start({ id: "a", transport: new MemoryNetwork().transport("a") });
   * await kv.set("user/1", { name: "Ada" });
   * const user = kv.get<{ name: string }>("user/1");
   * console.log(user?.name); // "Ada"
   * await kv.close();
   * ```
   */
  get<T = unknown>(key: string): T | undefined {
    const e = this.#engine.entry("usr", key);
    return e && !e.deleted ? e.value as T : undefined;
  }

  /** Whether `key` holds a value. */
  has(key: string): boolean {
    const e = this.#engine.entry("usr", key);
    return e !== undefined && !e.deleted;
  }

  /**
   * Every key holding a value, in no particular order; with `prefix`, only the keys that
   * start with it (keys are often paths: `{ prefix: "users/" }`).
   *
   * @example
   * ```ts
   * import { GossipKV, MemoryNetwork } from "@gossip-kv/gossip-kv";
   *
   * const kv = await GossipKV.start({ id: "a", transport: new MemoryNetwork().transport("a") });
   * await Promise.all([kv.set("users/1", "Ada"), kv.set("users/2", "Alan"), kv.set("jobs/1", 1)]);
   * console.log(kv.keys({ prefix: "users/" }).sort()); // ["users/1", "users/2"]
   * await kv.close();
   * ```
   */
  keys(options: ListOptions = {}): string[] {
    const prefix = listPrefix(options);
    const out: string[] = [];
    for (const e of this.#engine.versions("usr")) {
      if (!e.deleted && e.key.startsWith(prefix)) out.push(e.key);
    }
    return out;
  }

  /**
   * Every `[key, value]` pair, in no particular order; with `prefix`, only those whose key
   * starts with it. `T` names the type of the values, as in {@linkcode GossipKV.get}.
   */
  entries<T = unknown>(options: ListOptions = {}): [string, T][] {
    const prefix = listPrefix(options);
    const out: [string, T][] = [];
    for (const e of this.#engine.versions("usr")) {
      if (!e.deleted && e.key.startsWith(prefix)) out.push([e.key, e.value as T]);
    }
    return out;
  }

  /** Number of keys holding a value. */
  get size(): number {
    return this.#engine.liveCount("usr");
  }

  /** The writer id and stamp of the current version of `key`, tombstones included. */
  version(
    key: string,
  ): { writer: string; wall: number; logical: number; deleted: boolean } | undefined {
    const e = this.#engine.entry("usr", key);
    return e && { writer: e.writer, wall: e.wall, logical: e.logical, deleted: e.deleted };
  }

  /**
   * Sets `key` to `value`: applied here at once (before the promise settles), then
   * gossiped. The value is copied; JSON types, `Uint8Array`, `Date` and `Map` are accepted.
   * Rejects (never throws) with a `TypeError` for a bad key or a value that cannot be
   * replicated, a `RangeError` for a value over `maxValueBytes`, an `Error` on a closed
   * member or while the storage is failing (`storageFailure`); nothing is applied then.
   * With a `storage`, resolves once the write is durable, and rejects if the storage
   * failed while writing it (that write is applied and gossiped all the same, but not
   * durable here).
   */
  set(key: string, value: unknown): Promise<void> {
    try {
      return this.#set(key, value);
    } catch (error) {
      // A bad argument rejects, never throws. (Not an `async` function: that added a promise
      // and a microtask per write, ~140 bytes held per write until the caller yields.)
      return Promise.reject(error);
    }
  }

  #set(key: string, value: unknown): Promise<void> {
    this.#checkOpen();
    this.#checkStorage();
    checkKey(key);
    assertValue(value);
    let copy = value;
    if (
      typeof value === "object" && value !== null ||
      typeof value === "string" && value.length > 1024
    ) {
      const bytes = encodeCbor(value);
      if (bytes.length > this.#maxValueBytes) {
        throw new RangeError(
          `Value of ${bytes.length} bytes exceeds maxValueBytes (${this.#maxValueBytes})`,
        );
      }
      copy = typeof value === "object" ? decodeCbor(bytes) : value;
    }
    this.#engine.write("usr", key, copy, false, this.#clock.now());
    this.#afterWrite();
    return this.#durable();
  }

  /**
   * Deletes `key` (writes a tombstone, so the delete wins over older writes elsewhere).
   * With a `storage`, resolves once the tombstone is durable, as `set()` does. Rejects
   * (never throws) with a `TypeError` for a bad key, an `Error` on a closed member or while
   * the storage is failing.
   */
  delete(key: string): Promise<void> {
    try {
      this.#checkOpen();
      this.#checkStorage();
      checkKey(key);
      this.#engine.write("usr", key, undefined, true, this.#clock.now());
      this.#afterWrite();
      return this.#durable();
    } catch (error) {
      return Promise.reject(error); // rejects, never throws (as `set`)
    }
  }

  // ------------------------------------------------------------------ cluster

  /**
   * Replaces the cluster keys, the primary first; resolves once they are in use. Throws a
   * `TypeError` (no key, or not base64) or a `RangeError` (not 32 bytes), and then changes
   * nothing. On a member started without keys, this turns encryption on.
   *
   * Rotation without downtime, each step done on every member before the next:
   * 1. install the new key: `setKeys([oldKey, newKey])` (still sealing with the old one);
   * 2. make it primary: `setKeys([newKey, oldKey])`;
   * 3. remove the old one: `setKeys([newKey])`.
   *
   * @example
   * ```ts
   * import { GossipKV, generateKey, MemoryNetwork } from "@gossip-kv/gossip-kv";
   * const [oldKey, newKey] = [generateKey(), generateKey()];
   * const net = new MemoryNetwork();
   * const kv = await GossipKV.start({ transport: net.transport("a"), keys: [oldKey] });
   * await kv.setKeys([oldKey, newKey]); // step 1, on every member
   * await kv.setKeys([newKey, oldKey]); // step 2, on every member
   * await kv.setKeys([newKey]); // step 3
   * await kv.close();
   * ```
   */
  setKeys(keys: readonly KeyInput[]): Promise<void> {
    return this.#sealing.setKeys(keys);
  }

  /** Replaces the seed addresses, for example after re-resolving a DNS name. */
  setSeeds(seeds: readonly string[]): void {
    if (!Array.isArray(seeds) || seeds.some((s) => typeof s !== "string")) {
      throw new TypeError("Seeds must be an array of address strings");
    }
    this.#engine.setSeeds(seeds);
    this.#join.watch();
  }

  /**
   * Resolves once this member has joined: a member of its cluster has answered (or it was
   * started without seeds, the first of a new cluster). Rejects after `timeoutMs` (default
   * 10 s; `Infinity` waits as long as it takes) with an error that says why: no seed
   * answered, or the datagrams that were refused meanwhile (a key mismatch, plaintext,
   * another cluster name, another protocol version). Rejects at once if the member closes.
   *
   * @example Wait for the cluster before serving
   * ```ts
   * import { GossipKV, MemoryNetwork } from "@gossip-kv/gossip-kv";
   *
   * const net = new MemoryNetwork();
   * const a = await GossipKV.start({ id: "a", transport: net.transport("a") });
   * const b = await GossipKV.start({ id: "b", transport: net.transport("b"), seeds: ["a"] });
   * await b.joined(5_000); // rejects after 5 s, saying why, if "a" never answers
   * await Promise.all([a.close(), b.close()]);
   * ```
   */
  joined(timeoutMs = 10_000): Promise<void> {
    if (typeof timeoutMs !== "number" || !(timeoutMs >= 0)) {
      return Promise.reject(
        new RangeError(`timeoutMs must be a number of ms from 0 to Infinity, got ${timeoutMs}`),
      );
    }
    if (this.#closed || this.#closing) {
      return Promise.reject(new Error(`Member ${this.id} is closed`));
    }
    return this.#join.wait(timeoutMs);
  }

  /** Calls `listener` with every change to the data, local or remote. Returns an unsubscribe. */
  subscribe(listener: (change: Change) => void): () => void {
    return this.#listeners.add(listener);
  }

  /** Calls `listener` when a member appears or changes status. Returns an unsubscribe. */
  subscribeMembers(listener: (change: MemberChange) => void): () => void {
    return this.#memberListeners.add(listener);
  }

  // ------------------------------------------------------------------ inspection

  /** The whole state as plain JSON, `{ sys, usr }`: each member's record, and the user's data. */
  snapshot(): Snapshot {
    const members: Record<string, Record<string, Json>> = {};
    for (const m of this.#engine.members()) {
      const record = this.#engine.memberRecord(m.id);
      const fields = record && !record.deleted ? toJson(record.value) : {};
      members[m.id] = {
        ...(fields && typeof fields === "object" && !Array.isArray(fields) ? fields : {}),
        address: m.address,
        protocol: "v1",
        status: m.status,
        incarnation: m.incarnation,
      };
      if (typeof members[m.id]!.port !== "number") members[m.id]!.port = 0;
    }
    const usr: Record<string, Json> = {};
    for (const e of this.#engine.versions("usr")) {
      if (!e.deleted) usr[e.key] = toJson(e.value);
    }
    return { sys: { members }, usr };
  }

  /** Every member known, this one included. */
  members(): MemberInfo[] {
    const self = this.#engine.id;
    return [...this.#engine.members()].map((m) => ({
      id: m.id,
      address: m.address,
      status: m.status,
      incarnation: m.incarnation,
      lastHeard: m.id === self || m.lastHeard === 0 ? null : m.lastHeard,
    }));
  }

  /** The Merkle root, counts, and the last anti-entropy exchange with each peer. */
  syncStatus(): SyncStatus {
    const engine = this.#engine;
    const orNull = (t: number) => (t === 0 ? null : t);
    return {
      root: engine.rootHex(),
      keys: engine.liveCount("usr"),
      tombstones: engine.tombstoneCount,
      peers: [...this.#engine.syncStates].map(([id, s]) => ({
        id,
        lastStarted: orNull(s.lastStarted),
        lastInSync: orNull(s.lastInSync),
        lastRepair: orNull(s.lastRepair),
        entriesReceived: s.entriesReceived,
        entriesSent: s.entriesSent,
      })),
    };
  }

  /**
   * Answers one request of an edge replica (`@gossip-kv/gossip-kv/edge`): `body` is what
   * the replica posts to `POST /edge/sync`. Merges the entries it brings (and pushes the
   * new ones on as a rumor), and returns the anti-entropy replies, or `null` when there is
   * nothing to say. The replica is a client, never a member: it is not probed, not listed,
   * and never declared dead. With a storage, resolves once what was merged is durable.
   * Throws a `TypeError` for a body that is not an exchange of this member's cluster.
   */
  async serveReplica(body: Uint8Array, maxBytes: number = 1024 * 1024): Promise<Uint8Array | null> {
    this.#checkOpen();
    const envelope = decodeExchange(body, this.#wire.cluster, maxBytes);
    const replies = this.#engine.serveClient(envelope.messages, this.#clock.now());
    this.#pump();
    await this.#durable();
    if (replies.length === 0) return null;
    return encodeExchange(this.#wire.cluster, this.id, replies, 2 ** 31)[0]!;
  }

  /** Counters of traffic, protocol events and refusals. */
  stats(): GossipKVStats {
    const traffic = this.#traffic.snapshot();
    return {
      engine: structuredClone(this.#engine.counters),
      datagramsIn: traffic.datagramsIn,
      datagramsOut: traffic.datagramsOut,
      bytesIn: traffic.bytesIn,
      bytesOut: traffic.bytesOut,
      bytesOutByType: traffic.bytesOutByType,
      bytesInByType: traffic.bytesInByType,
      sendErrors: traffic.sendErrors,
      sendsDropped: traffic.sendsDropped,
      dropped: Object.fromEntries(this.#wire.drops),
      lastConvergenceLagMs: traffic.lastConvergenceLagMs,
    };
  }

  /**
   * Why the member's storage cannot make writes durable now (a full disk, say), or `null`.
   * Meanwhile `set()` and `delete()` reject and apply nothing; the storage may recover.
   */
  get storageFailure(): Error | null {
    return this.#storage?.failure ?? null;
  }

  /** Whether the member is closed (or closing). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Leaves the cluster gracefully (the others see status `"left"`) and releases the
   * transport, then flushes and closes the storage, if any. With `{ leave: false }`,
   * stops without telling anyone, as a crash would: the others then detect it as dead.
   */
  close(options: { leave?: boolean | undefined } = {}): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      if (options?.leave !== false) {
        this.#engine.leave(this.#clock.now());
        this.#pump();
      }
      this.#closed = true;
      this.#sealing.close();
      this.#scheduler.clearTimeout(this.#timer);
      this.#join.close();
      await Promise.allSettled([...this.#pendingSends]);
      await this.#transport.close();
      if (this.#storage) {
        this.#storageClosed = true;
        try {
          await this.#storage.close();
        } catch (error) {
          this.#onError(error);
        }
      }
    })();
    return this.#closing;
  }

  // ------------------------------------------------------------------ internals

  /** Loads the persisted state into the engine, before the member joins. */
  async #restore(storage: Storage): Promise<void> {
    const { entries, damage } = await storage.load();
    if (damage) {
      this.#onError(new Error(`Storage repaired on load: ${damage.message}`, { cause: damage }));
    }
    this.#engine.load(entries, this.#clock.now());
  }

  /** With a storage: resolves once every write so far is durable. */
  #durable(): Promise<void> {
    return this.#storage ? this.#storage.sync() : Promise.resolve();
  }

  /** A failing storage refuses writes before they are applied (see `storageFailure`). */
  #checkStorage(): void {
    const failure = this.#storage?.failure;
    if (failure) {
      throw new Error(`Write refused: storage is failing (${failure.message})`, { cause: failure });
    }
  }

  #checkOpen(): void {
    if (this.#closed || this.#closing) throw new Error(`Member ${this.id} is closed`);
  }

  #afterWrite(): void {
    this.#pump();
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Writes made in one turn travel together in one rumor, sent as soon as the turn ends.
    const flush = () => {
      this.#flushScheduled = false;
      if (this.#closed) return;
      this.#engine.flush(this.#clock.now());
      this.#pump();
    };
    if (this.#scheduler.soon) this.#scheduler.soon(flush);
    else this.#scheduler.setTimeout(flush, 0);
  }

  #receive(data: Uint8Array, from: string): void {
    if (this.#closed) return;
    this.#traffic.received(data.length);
    if (this.#sealing.overhead === 0) {
      // Plaintext: nothing to open, and so no callbacks to make for it (two per datagram).
      const now = this.#clock.now();
      this.#accept(this.#wire.receive(data, from, now), data.length, from, now);
      return;
    }
    this.#sealing.open(
      data,
      (datagram, now) =>
        this.#accept(this.#wire.receive(datagram, from, now), data.length, from, now),
      (reason, detail) => this.#join.refused(reason, detail, from),
    );
  }

  /** Hands a decoded datagram of `bytes` bytes (as received) to the engine. */
  #accept(r: Envelope | Received, bytes: number, from: string, now: number): void {
    let envelope: Envelope;
    if ("messages" in r) envelope = r;
    else if (r.status === "envelope") envelope = r.envelope;
    else {
      if (r.status === "dropped") this.#join.refused(r.reason, r.detail, from);
      return;
    }
    if (envelope.sender !== this.id) this.#join.markJoined();
    this.#traffic.receivedMessages(envelope.messages, bytes);
    try {
      this.#engine.receive(from, envelope, now);
    } catch (error) {
      // The engine validates what it is given; reaching here is a bug, but never a crash.
      this.#onError(error);
    }
    this.#pump();
  }

  /** {@linkcode GossipKV.#onTimer} as a callback, made once (timers are set per datagram). */
  readonly #onTimerBound = () => this.#onTimer();

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#closed) return;
    this.#engine.tick(this.#clock.now());
    this.#pump();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed) return;
    const at = this.#engine.nextWakeAt();
    if (at >= this.#timerAt) return;
    if (this.#timer !== undefined) this.#scheduler.clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = this.#scheduler.setTimeout(
      this.#onTimerBound,
      Math.max(1, at - this.#clock.now()),
    );
  }

  /** Sends what the engine produced and tells listeners. */
  #pump(): void {
    const out = this.#engine.takeOutput();
    const storage = this.#storage;
    if (storage && !this.#storageClosed && (out.applied.length || out.collected.length)) {
      try {
        if (out.applied.length) storage.append(out.applied);
        if (out.collected.length) storage.forget(out.collected);
      } catch (error) {
        this.#onError(error);
      }
    }
    const now = this.#clock.now();
    const overhead = this.#sealing.overhead;
    // A message alone for several peers (a broadcast forwarded to the children of this
    // member) is packed once, and its datagrams sealed once: the same bytes go to each. The
    // outbox puts such a message in consecutive batches (one per address, in the order sent
    // to), so the last one packed is all there is to remember: no map per pump.
    let lastAlone: Message | undefined, lastDatagrams: Uint8Array[] | undefined;
    const outgoing = out.outgoing;
    for (let b = 0; b < outgoing.length; b++) {
      const batch = outgoing[b]!;
      const { to, messages } = batch;
      const alone = messages.length === 1 ? messages[0] : undefined;
      let datagrams: Uint8Array[];
      if (alone !== undefined && alone === lastAlone) datagrams = lastDatagrams!;
      else {
        try {
          datagrams = this.#wire.encode(messages, overhead);
        } catch (error) {
          this.#onError(error);
          continue;
        }
        if (alone !== undefined) {
          lastAlone = alone;
          lastDatagrams = datagrams;
        }
      }
      let total = 0;
      let last: Promise<void> | undefined;
      for (let i = 0; i < datagrams.length; i++) {
        if (this.#pendingSends.size >= MAX_PENDING_SENDS) {
          this.#traffic.sendDropped();
          continue;
        }
        const d = datagrams[i]!;
        this.#traffic.sent(d.length + overhead);
        total += d.length + overhead;
        last = this.#send(to, d);
      }
      this.#traffic.sentMessages(messages, total);
      // Copies that wait for an answer (tree messages) time out from when they left, not
      // from now: a transport's send queue may hold them for a while.
      if (last && messages.some((m) => m.type === "tree")) {
        this.#engine.queued(batch);
        void last.then(() => {
          if (this.#closed) return;
          this.#engine.departed(batch, this.#clock.now());
          this.#schedule();
        });
      }
    }
    // A Change object per version applied only while a listener is subscribed (checked
    // before each: a listener may subscribe or unsubscribe another); the lag from the versions.
    const { changed, localChanged } = out;
    for (let i = 0, l = 0; i < changed.length; i++) {
      const e = changed[i]!;
      const local = l < localChanged.length && localChanged[l] === i;
      if (local) l++;
      else this.#traffic.convergenceLag(now - e.wall);
      if (this.#listeners.size > 0) this.#listeners.emit(changeOf(e, local ? "local" : "remote"));
    }
    const { memberChanges } = out;
    for (let i = 0; i < memberChanges.length; i++) this.#memberListeners.emit(memberChanges[i]!);
    this.#schedule();
  }

  /**
   * Sends `datagram` to `to`, sealed when the member has keys, counting a throw or a
   * rejection as a send error; for a send that returns a promise, a promise that settles
   * (never rejects) when it does.
   */
  #send(to: string, datagram: Uint8Array): Promise<void> | undefined {
    let p: void | Promise<void>;
    try {
      // Plaintext: nothing to seal, and so no callbacks to make for it (two per datagram).
      p = this.#sealing.overhead === 0
        ? this.#transport.send(to, datagram)
        : this.#sealing.seal(datagram, (sealed) => this.#transport.send(to, sealed));
    } catch {
      this.#traffic.sendError();
      return undefined;
    }
    if (!p || typeof (p as Promise<void>).then !== "function") return undefined;
    const settle = () => void this.#pendingSends.delete(tracked);
    const tracked: Promise<void> = (p as Promise<void>).then(settle, () => {
      settle();
      this.#traffic.sendError();
    });
    this.#pendingSends.add(tracked);
    return tracked;
  }
}
