/**
 * `GossipKV`: the store users hold. It owns the timers, the transport and the promises;
 * everything it decides is delegated to the pure {@linkcode Engine}, which it feeds with
 * the time, random numbers and received datagrams, and whose output it sends.
 *
 * @module
 */

import {
  type Change,
  DEFAULT_CONFIG,
  Engine,
  type EngineConfig,
  type EngineCounters,
  MEMBER_KEY_PREFIX,
  type MemberChange,
} from "./core/engine.ts";
import type { MemberStatus } from "./core/messages.ts";
import type { Random } from "./core/random.ts";
import { rootHex } from "./core/sync.ts";
import { type Json, toJson } from "./json.ts";
import type { Clock, Scheduler } from "./time.ts";
import { systemClock, systemScheduler } from "./time.ts";
import type { Storage } from "./storage/types.ts";
import type { Transport } from "./transport/types.ts";
import { assertValue, decodeCbor, encodeCbor } from "./wire/cbor.ts";
import { type DropReason, MAX_KEY_LENGTH } from "./wire/codec.ts";
import { checkSealed, type KeyInput, Keyring, ReplayGuard, SEAL_OVERHEAD } from "./wire/crypto.ts";
import { type Received, Wire } from "./wire/wire.ts";
import { decodeExchange, encodeExchange } from "./wire/exchange.ts";

export type { Change, MemberChange } from "./core/engine.ts";
export type { MemberStatus } from "./core/messages.ts";

/** Options of {@linkcode GossipKV.start}. */
export interface GossipKVOptions {
  /** How this member sends and receives datagrams. */
  transport: Transport;
  /** Unique id of this member in the cluster. Default: a random one. */
  id?: string;
  /** Addresses of members to join through. Default: none (a new cluster). */
  seeds?: readonly string[];
  /** Cluster name; datagrams of other clusters are refused. Default `"default"`. */
  cluster?: string;
  /** Anti-entropy period, in ms. Default 500. */
  gossipIntervalMs?: number;
  /** SWIM probe period, in ms. Default 1,000. */
  probeIntervalMs?: number;
  /** Peers each rumor is pushed to. Default 3. */
  fanout?: number;
  /** Largest datagram, in bytes; the same on every member. Default 1,400. */
  mtu?: number;
  /** Tombstones are collected this long after a delete, in ms. Default 1 hour. */
  tombstoneGraceMs?: number;
  /** Dead and left members are forgotten this long after, in ms. Default 1 hour. */
  forgetAfterMs?: number;
  /** Remote stamps further ahead of our clock are refused, in ms. Default 60 s. */
  maxDriftMs?: number;
  /** Largest value accepted by {@linkcode GossipKV.set}, CBOR-encoded, in bytes. Default 4 MiB. */
  maxValueBytes?: number;
  /**
   * Cluster keys (base64 text of 32 bytes, or the bytes), the primary first: every datagram
   * is then sealed with AES-256-GCM, and unsealed or unauthenticated ones are refused. Keys
   * rotate at runtime with {@linkcode GossipKV.setKeys}. Default: none (plaintext).
   */
  keys?: readonly KeyInput[];
  /**
   * With `keys`: sealed datagrams stamped further than this from our clock (either way) are
   * refused as replays, in ms. Must exceed the clock skew between members. Default 60 s.
   */
  replayWindowMs?: number;
  /** Further engine tuning (suspicion, retransmission, ...). */
  tuning?: Partial<EngineConfig>;
  /** Extra fields for this member's entry under `sys.members` (for example its runtime). */
  meta?: Readonly<Record<string, string | number | boolean>>;
  /** Source of time. Default: the system clock. */
  clock?: Clock;
  /** Source of timers. Default: the runtime's `setTimeout`. */
  scheduler?: Scheduler;
  /** Source of randomness. Default: `Math.random`. */
  random?: Random;
  /** Closes the member (with a graceful leave) when aborted. */
  signal?: AbortSignal;
  /** Called with errors that have no caller to go to (a throwing subscriber, a failed send). */
  onError?: (error: unknown) => void;
  /**
   * Keeps this member's state across restarts: loaded before it joins, every entry it
   * applies appended, and `set()` and `delete()` resolve once the write is durable. For
   * example `fileStorage({ dir })` from `@gossip-kv/gossip-kv/storage/file`; give the
   * member a stable `id` too. Damage repaired on load is reported to `onError`. Default:
   * none (memory only).
   */
  storage?: Storage;
}

/** A member as this member sees it. */
export interface MemberInfo {
  /** The member's id. */
  readonly id: string;
  /** The address it is reached at. */
  readonly address: string;
  /** Its liveness as this member sees it. */
  readonly status: MemberStatus;
  /** Its incarnation number (raised by the member to refute suspicions). */
  readonly incarnation: number;
  /** When a datagram last came from it, in ms since the epoch; `null` if never (or itself). */
  readonly lastHeard: number | null;
}

/** The whole state of a member, as plain JSON: `{ sys: { members }, usr }`. */
export interface Snapshot {
  /** The store's own state: every member known, with address, port, protocol and status. */
  readonly sys: { readonly members: Record<string, Record<string, Json>> };
  /** The user's data, converted to JSON (see `toJson`). */
  readonly usr: Record<string, Json>;
}

/** Anti-entropy state, for inspection. */
export interface SyncStatus {
  /** Merkle root of everything held (both sections, tombstones included), 16 hex digits. */
  readonly root: string;
  /** Keys holding a value, in the usr section. */
  readonly keys: number;
  /** Tombstones held (deletes not yet collected). */
  readonly tombstones: number;
  /** The last anti-entropy exchange with each peer; times in ms since the epoch, or null. */
  readonly peers: readonly {
    readonly id: string;
    readonly lastStarted: number | null;
    readonly lastInSync: number | null;
    readonly lastRepair: number | null;
    readonly entriesReceived: number;
    readonly entriesSent: number;
  }[];
}

/** Traffic and protocol counters, for metrics. */
export interface GossipKVStats {
  /** Protocol counters of the engine. */
  readonly engine: Readonly<EngineCounters>;
  /** Datagrams received, refused ones included. */
  readonly datagramsIn: number;
  /** Datagrams sent. */
  readonly datagramsOut: number;
  /** Bytes received, refused datagrams included. */
  readonly bytesIn: number;
  /** Bytes sent. */
  readonly bytesOut: number;
  /** Bytes out by message type: each datagram's bytes shared among its messages' types. */
  readonly bytesOutByType: Readonly<Record<string, number>>;
  /** Bytes in by message type, shared the same way. */
  readonly bytesInByType: Readonly<Record<string, number>>;
  /** Datagrams the transport failed to send. */
  readonly sendErrors: number;
  /**
   * Datagrams dropped before sending because {@linkcode MAX_PENDING_SENDS} sends were still
   * queued (an overloaded member sheds load like a full socket buffer; anti-entropy repairs).
   */
  readonly sendsDropped: number;
  /** Datagrams refused, by reason. */
  readonly dropped: Readonly<Partial<Record<DropReason, number>>>;
  /** Age, in ms, of the newest remote write when it arrived here (last one seen). */
  readonly lastConvergenceLagMs: number | null;
}

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
  readonly #listeners = new Set<(change: Change) => void>();
  readonly #memberListeners = new Set<(change: MemberChange) => void>();
  #timer: unknown;
  #timerAt = Infinity;
  #flushScheduled = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #storage: Storage | undefined;
  #storageClosed = false;
  readonly #pendingSends = new Set<Promise<void>>();
  /** With a keyring: received datagrams still being opened. */
  #opening = 0;
  #keyring: Keyring | undefined;
  #keysApplied: Promise<void> = Promise.resolve();
  readonly #replay: ReplayGuard;
  /** With a keyring: received datagrams, delivered in arrival order once opened. */
  #inbound: Promise<void> = Promise.resolve();
  /** With a keyring: datagrams to send, handed to the transport in order once sealed. */
  #outbound: Promise<void> = Promise.resolve();
  readonly #stats = {
    datagramsIn: 0,
    datagramsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    sendErrors: 0,
    sendsDropped: 0,
    bytesOutByType: {} as Record<string, number>,
    bytesInByType: {} as Record<string, number>,
    lastConvergenceLagMs: null as number | null,
  };

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
    this.#keyring = keyring;
    this.#replay = new ReplayGuard(
      options.replayWindowMs === undefined ? {} : { windowMs: options.replayWindowMs },
    );
    this.id = options.id ?? randomId(random);
    this.address = transport.address;
    const cluster = options.cluster ?? "default";
    if (typeof cluster !== "string" || cluster.length > 256) {
      throw new TypeError("Cluster name must be a string of at most 256 characters");
    }
    if (options.seeds !== undefined && !Array.isArray(options.seeds)) {
      throw new TypeError("options.seeds must be an array of addresses");
    }
    this.#wire = new Wire({
      cluster,
      sender: this.id,
      ...(options.mtu !== undefined && { mtu: options.mtu }),
      maxMessageBytes: Math.max(8 * 1024 * 1024, this.#maxValueBytes * 2),
    });
    const tuning: Partial<EngineConfig> = { ...options.tuning };
    for (
      const k of [
        "gossipIntervalMs",
        "probeIntervalMs",
        "fanout",
        "tombstoneGraceMs",
        "forgetAfterMs",
        "maxDriftMs",
      ] as const
    ) {
      if (options[k] !== undefined) tuning[k] = options[k];
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
   * seeds. Resolves once it is listening; replication proceeds in the background.
   */
  static async start(options: GossipKVOptions): Promise<GossipKV> {
    if (!options || typeof options !== "object") {
      throw new TypeError("GossipKV.start() needs an options object");
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
    kv.#engine.start(kv.#clock.now());
    kv.#pump();
    kv.#schedule();
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) await kv.close();
      else signal.addEventListener("abort", () => void kv.close(), { once: true });
    }
    return kv;
  }

  // ------------------------------------------------------------------ data

  /** The value of `key`, or `undefined` if absent or deleted. */
  get(key: string): unknown {
    const e = this.#engine.store.get("usr", key);
    return e && !e.deleted ? e.value : undefined;
  }

  /** Whether `key` holds a value. */
  has(key: string): boolean {
    const e = this.#engine.store.get("usr", key);
    return e !== undefined && !e.deleted;
  }

  /** Every key holding a value. */
  keys(): string[] {
    const out: string[] = [];
    for (const e of this.#engine.store.versions("usr")) if (!e.deleted) out.push(e.key);
    return out;
  }

  /** Every `[key, value]` pair. */
  entries(): [string, unknown][] {
    const out: [string, unknown][] = [];
    for (const e of this.#engine.store.versions("usr")) if (!e.deleted) out.push([e.key, e.value]);
    return out;
  }

  /** Number of keys holding a value. */
  get size(): number {
    return this.#engine.store.liveCount("usr");
  }

  /** The writer id and stamp of the current version of `key`, tombstones included. */
  version(
    key: string,
  ): { writer: string; wall: number; logical: number; deleted: boolean } | undefined {
    const e = this.#engine.store.get("usr", key);
    return e && { writer: e.writer, wall: e.wall, logical: e.logical, deleted: e.deleted };
  }

  /**
   * Sets `key` to `value`: applied here at once, then gossiped. The value is copied;
   * JSON types, `Uint8Array`, `Date` and `Map` are accepted. Throws a `TypeError` for a bad
   * key or a value that cannot be replicated, a `RangeError` for a value over
   * `maxValueBytes`; nothing is applied then. With a `storage`, resolves once the write
   * is durable, and rejects if the storage failed (the write is applied and gossiped all
   * the same, but not durable here).
   */
  set(key: string, value: unknown): Promise<void> {
    this.#checkOpen();
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
   * With a `storage`, resolves once the tombstone is durable, as `set()` does.
   */
  delete(key: string): Promise<void> {
    this.#checkOpen();
    checkKey(key);
    this.#engine.write("usr", key, undefined, true, this.#clock.now());
    this.#afterWrite();
    return this.#durable();
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
    // Key import is async: calls take effect in the order they were made.
    const creating = Keyring.create(keys);
    creating.catch(() => {}); // the caller gets the rejection through `applied`
    const applied = this.#keysApplied.then(() => creating).then((keyring) => {
      this.#keyring = keyring;
    });
    this.#keysApplied = applied.catch(() => {});
    return applied;
  }

  /** Replaces the seed addresses, for example after re-resolving a DNS name. */
  setSeeds(seeds: readonly string[]): void {
    if (!Array.isArray(seeds) || seeds.some((s) => typeof s !== "string")) {
      throw new TypeError("Seeds must be an array of address strings");
    }
    this.#engine.setSeeds(seeds);
  }

  /** Calls `listener` with every change to the data, local or remote. Returns an unsubscribe. */
  subscribe(listener: (change: Change) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Calls `listener` when a member appears or changes status. Returns an unsubscribe. */
  subscribeMembers(listener: (change: MemberChange) => void): () => void {
    this.#memberListeners.add(listener);
    return () => void this.#memberListeners.delete(listener);
  }

  // ------------------------------------------------------------------ inspection

  /** The whole state as plain JSON, as the seed document shows it: `{ sys, usr }`. */
  snapshot(): Snapshot {
    const members: Record<string, Record<string, Json>> = {};
    for (const m of this.#engine.membership.all()) {
      const record = this.#engine.store.get("sys", MEMBER_KEY_PREFIX + m.id);
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
    for (const e of this.#engine.store.versions("usr")) {
      if (!e.deleted) usr[e.key] = toJson(e.value);
    }
    return { sys: { members }, usr };
  }

  /** Every member known, this one included. */
  members(): MemberInfo[] {
    const self = this.#engine.membership.self;
    return [...this.#engine.membership.all()].map((m) => ({
      id: m.id,
      address: m.address,
      status: m.status,
      incarnation: m.incarnation,
      lastHeard: m === self || m.lastHeard === 0 ? null : m.lastHeard,
    }));
  }

  /** The Merkle root, counts, and the last anti-entropy exchange with each peer. */
  syncStatus(): SyncStatus {
    const store = this.#engine.store;
    const orNull = (t: number) => (t === 0 ? null : t);
    return {
      root: rootHex(store),
      keys: store.liveCount("usr"),
      tombstones: store.tombstoneCount,
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
    const s = this.#stats;
    return {
      engine: structuredClone(this.#engine.counters),
      datagramsIn: s.datagramsIn,
      datagramsOut: s.datagramsOut,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      bytesOutByType: { ...s.bytesOutByType },
      bytesInByType: { ...s.bytesInByType },
      sendErrors: s.sendErrors,
      sendsDropped: s.sendsDropped,
      dropped: Object.fromEntries(this.#wire.drops),
      lastConvergenceLagMs: s.lastConvergenceLagMs,
    };
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
  close(options: { leave?: boolean } = {}): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      if (options.leave !== false) {
        this.#engine.leave(this.#clock.now());
        this.#pump();
      }
      this.#closed = true;
      this.#scheduler.clearTimeout(this.#timer);
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

  #checkOpen(): void {
    if (this.#closed || this.#closing) throw new Error(`Member ${this.id} is closed`);
  }

  #afterWrite(): void {
    this.#pump();
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Writes made in one turn travel together in one rumor.
    this.#scheduler.setTimeout(() => {
      this.#flushScheduled = false;
      if (this.#closed) return;
      this.#engine.flush(this.#clock.now());
      this.#pump();
    }, 0);
  }

  #receive(data: Uint8Array, from: string): void {
    if (this.#closed) return;
    this.#stats.datagramsIn++;
    this.#stats.bytesIn += data.length;
    const keyring = this.#keyring;
    if (keyring === undefined) {
      const now = this.#clock.now();
      this.#accept(this.#wire.decode(data, from, now), data.length, from, now);
      return;
    }
    const refused = checkSealed(data, this.#wire.mtu);
    if (refused) {
      this.#wire.drop(refused.reason, refused.detail);
      return;
    }
    if (this.#opening >= MAX_PENDING_OPENS) {
      // More arrives than this member can decrypt: shed it now, like a full socket buffer,
      // rather than queue it until it is too old to be accepted anyway.
      this.#wire.drop("overloaded", `${this.#opening} datagrams still being decrypted`);
      return;
    }
    // WebCrypto is async and may finish out of order: open at once, deliver in arrival
    // order. `open` never rejects; the catch guards the delivery itself.
    this.#opening++;
    const opening = keyring.open(data, this.#wire.cluster);
    opening.catch(() => {}); // handled below, maybe after this turn: not "unhandled"
    this.#inbound = this.#inbound.then(() => opening).then((opened) => {
      this.#opening--;
      if (this.#closed) return;
      const now = this.#clock.now();
      const refused = opened.status === "dropped"
        ? opened
        : this.#replay.check(opened.nonce, opened.timestamp, now);
      if (refused) this.#wire.drop(refused.reason, refused.detail);
      else if (opened.status === "opened") {
        this.#accept(this.#wire.decode(opened.datagram, from, now), data.length, from, now);
      }
    }).catch((error) => this.#onError(error));
  }

  /** Hands a decoded datagram of `bytes` bytes (as received) to the engine. */
  #accept(r: Received, bytes: number, from: string, now: number): void {
    if (r.status !== "envelope") return;
    const share = bytes / r.envelope.messages.length;
    for (const m of r.envelope.messages) {
      this.#stats.bytesInByType[m.type] = (this.#stats.bytesInByType[m.type] ?? 0) + share;
    }
    try {
      this.#engine.receive(from, r.envelope, now);
    } catch (error) {
      // The engine validates what it is given; reaching here is a bug, but never a crash.
      this.#onError(error);
    }
    this.#pump();
  }

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
      () => this.#onTimer(),
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
    const overhead = this.#keyring ? SEAL_OVERHEAD : 0;
    for (const { to, messages } of out.outgoing) {
      let datagrams: Uint8Array[];
      try {
        datagrams = this.#wire.encode(messages, overhead);
      } catch (error) {
        this.#onError(error);
        continue;
      }
      let total = 0;
      for (const d of datagrams) {
        if (this.#pendingSends.size >= MAX_PENDING_SENDS) {
          this.#stats.sendsDropped++;
          continue;
        }
        this.#stats.datagramsOut++;
        this.#stats.bytesOut += d.length + overhead;
        total += d.length + overhead;
        this.#sendDatagram(to, d);
      }
      for (const m of messages) {
        this.#stats.bytesOutByType[m.type] = (this.#stats.bytesOutByType[m.type] ?? 0) +
          total / messages.length;
      }
    }
    for (const change of out.changes) {
      if (change.origin === "remote") {
        this.#stats.lastConvergenceLagMs = Math.max(0, now - change.wall);
      }
      for (const listener of this.#listeners) {
        try {
          listener(change);
        } catch (error) {
          this.#onError(error);
        }
      }
    }
    for (const change of out.memberChanges) {
      for (const listener of this.#memberListeners) {
        try {
          listener(change);
        } catch (error) {
          this.#onError(error);
        }
      }
    }
    this.#schedule();
  }

  #sendDatagram(to: string, data: Uint8Array): void {
    const keyring = this.#keyring;
    if (keyring === undefined) {
      this.#track(() => this.#transport.send(to, data));
      return;
    }
    // Seal at once (in parallel), hand to the transport in order.
    const sealing = keyring.seal(data, this.#wire.cluster, this.#clock.now());
    sealing.catch(() => {}); // handled below, maybe after this turn: not "unhandled"
    const handed = this.#outbound.then(() => sealing).then((sealed) => ({
      sent: this.#transport.send(to, sealed),
    }));
    this.#outbound = handed.then(() => {}, () => {});
    this.#track(() => handed.then(({ sent }) => sent));
  }

  /** Runs a send, counting a throw or a rejection as a send error. */
  #track(send: () => void | Promise<void>): void {
    try {
      const p = send();
      if (p && typeof (p as Promise<void>).then === "function") {
        const settle = () => void this.#pendingSends.delete(tracked);
        const tracked: Promise<void> = (p as Promise<void>).then(settle, () => {
          settle();
          this.#stats.sendErrors++;
        });
        this.#pendingSends.add(tracked);
      }
    } catch {
      this.#stats.sendErrors++;
    }
  }
}

/** Datagrams queued for sending at most; more are dropped (and counted) until some leave. */
export const MAX_PENDING_SENDS = 8192;
/** Received datagrams waiting to be decrypted at most; more are dropped as `overloaded`. */
export const MAX_PENDING_OPENS = 4096;

/** The default value of every engine option, for documentation and tools. */
export const DEFAULTS: Readonly<EngineConfig> = DEFAULT_CONFIG;
