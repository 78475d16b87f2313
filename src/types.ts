/**
 * The public option and result types of `GossipKV`.
 *
 * @module
 */

import type { EngineConfig, EngineCounters } from "./core/engine.ts";
import type { MemberStatus } from "./core/messages.ts";
import type { Random } from "./core/random.ts";
import type { Json } from "./json.ts";
import type { Clock, Scheduler } from "./time.ts";
import type { Storage } from "./storage/types.ts";
import type { Transport } from "./transport/types.ts";
import type { DropReason } from "./wire/codec.ts";
import type { KeyInput } from "./wire/crypto.ts";
import type { GossipKVWarning } from "./warnings.ts";

/** Options of `GossipKV.start`. */
export interface GossipKVOptions extends
  Partial<
    Pick<
      EngineConfig,
      // The engine options taken directly; every other one goes in `tuning`.
      | "gossipIntervalMs"
      | "probeIntervalMs"
      | "fanout"
      | "tombstoneGraceMs"
      | "forgetAfterMs"
      | "maxDriftMs"
    >
  > {
  /** How this member sends and receives datagrams. */
  transport: Transport;
  /** Unique id of this member in the cluster. Default: a random one. */
  id?: string;
  /** Addresses of members to join through. Default: none (a new cluster). */
  seeds?: readonly string[];
  /** Cluster name; datagrams of other clusters are refused. Default `"default"`. */
  cluster?: string;
  /** Largest datagram, in bytes; the same on every member. Default 1,400. */
  mtu?: number;
  /** Largest value accepted by `GossipKV.set`, CBOR-encoded, in bytes. Default 4 MiB. */
  maxValueBytes?: number;
  /**
   * Cluster keys (base64 text of 32 bytes, or the bytes), the primary first: every datagram
   * is then sealed with AES-256-GCM, and unsealed or unauthenticated ones are refused. Keys
   * rotate at runtime with `GossipKV.setKeys`. Default: none (plaintext).
   */
  keys?: readonly KeyInput[];
  /**
   * Refuse plaintext outright: `start()` rejects unless `keys` are given (a member with keys
   * already drops every plaintext datagram, and `setKeys` never goes back to none). Like
   * Consul's `encrypt_verify_incoming`. Default `false`.
   */
  requireEncryption?: boolean;
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
   * Called with what needs an operator's attention: datagrams refused because their sender
   * is configured differently (a key mismatch, plaintext in an encrypted cluster, another
   * cluster name, another protocol version), at most once a minute per sender and reason;
   * and, while seeds are configured and none has answered, "not joined" after 3 s, then
   * with backoff (6 s, 12 s, ... up to every 5 min). Default: `console.warn`.
   */
  onWarning?: ((warning: GossipKVWarning) => void) | undefined;
  /**
   * Keeps this member's state across restarts: loaded before it joins, every entry it
   * applies appended, and `set()` and `delete()` resolve once the write is durable. For
   * example `fileStorage({ dir })` from `@gossip-kv/gossip-kv/storage/file`; give the
   * member a stable `id` too. Damage repaired on load is reported to `onError`. Default:
   * none (memory only).
   */
  storage?: Storage;
}

/** Options of `GossipKV.keys` and `GossipKV.entries`. */
export interface ListOptions {
  /** Only keys that start with this. Default `""`: every key. */
  prefix?: string | undefined;
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
   * Datagrams dropped before sending because `MAX_PENDING_SENDS` sends were still
   * queued (an overloaded member sheds load like a full socket buffer; anti-entropy repairs).
   */
  readonly sendsDropped: number;
  /** Datagrams refused, by reason. */
  readonly dropped: Readonly<Partial<Record<DropReason, number>>>;
  /** Age, in ms, of the newest remote write when it arrived here (last one seen). */
  readonly lastConvergenceLagMs: number | null;
}
