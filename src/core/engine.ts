/**
 * The gossip engine: a pure, synchronous state machine. It takes the time, random
 * numbers and received envelopes as inputs and produces messages to send, data changes
 * and membership changes as outputs. Given the same inputs, it produces the same outputs.
 *
 * Three mechanisms, each covering the others' weakness (DESIGN.md §3):
 * 1. Rumors: a write is pushed at once to `fanout` random live peers; a member that
 *    learns something new forwards it at once, up to a hop limit that grows with log N.
 * 2. Anti-entropy: every `gossipIntervalMs`, a Merkle comparison with one random live
 *    peer repairs whatever rumors missed (see `sync.ts`).
 * 3. SWIM membership: probes, indirect probes, suspicion with a timeout growing with
 *    log N, incarnation numbers to refute, graceful leave; updates piggyback on the rest.
 *
 * @module
 */

import { TreeBroadcast, type TreeSend } from "./broadcast.ts";
import { HybridClock } from "./hlc.ts";
import { BroadcastQueue, Membership, type MemberState } from "./membership.ts";
import type { Envelope, MemberMessage, MemberStatus, Message } from "./messages.ts";
import { type Random, sample, shuffle } from "./random.ts";
import {
  type Entry,
  keyHash,
  type Section,
  Store,
  type StoredEntry,
  tombstoneAfter,
} from "./store.ts";
import { syncReply, syncRoot } from "./sync.ts";

/** Prefix of the `sys` keys that describe members: `members/<id>`. */
export const MEMBER_KEY_PREFIX = "members/";

/** Tuning of the engine. Every field has a default. */
export interface EngineConfig {
  /** Peers a rumor is pushed to by each member that forwards it. Default 3. */
  fanout: number;
  /**
   * Period of anti-entropy rounds, in ms. Default 500: in sync a round is one ~30-byte
   * datagram, and it bounds how long a member missed by a rumor waits.
   */
  gossipIntervalMs: number;
  /** Period of SWIM probes, in ms. Default 1,000. */
  probeIntervalMs: number;
  /** Wait for a direct ack before asking others to probe, in ms. Default half the probe period. */
  probeTimeoutMs: number;
  /** Members asked to probe indirectly. Default 3. */
  indirectChecks: number;
  /**
   * Suspicion timeout, at least mult × max(1, log10 N) × probe period. Default 5. It starts
   * `suspicionMaxMult` times longer and shrinks as other members confirm the suspicion
   * (Lifeguard), so a lone false suspicion has time to be refuted.
   */
  suspicionMult: number;
  /** How much longer an unconfirmed suspicion lasts than a fully confirmed one. Default 6. */
  suspicionMaxMult: number;
  /** Piggyback transmissions of an update = mult × ceil(log10(N + 1)). Default 4. */
  retransmitMult: number;
  /** Tombstones are collected this long after the delete, in ms. Default 1 hour. */
  tombstoneGraceMs: number;
  /** Dead and left members are forgotten this long after, in ms. Default 1 hour. */
  forgetAfterMs: number;
  /** Remote stamps further ahead of our clock than this are refused, in ms. Default 60 s. */
  maxDriftMs: number;
  /** Membership updates piggybacked on one outgoing batch at most. Default 16. */
  maxPiggyback: number;
  /** How often a member pings a random dead member, to heal partitions. Default 5 s. */
  reconnectIntervalMs: number;
  /**
   * A value over 8 KiB sent to a peer (rumor or anti-entropy) is not sent to it again for
   * this long, in ms, while the peer reassembles its fragments. Default 10 s (the wire's
   * fragment timeout).
   */
  largeEntryCooldownMs: number;
  /**
   * Tree broadcast: announcements of received writes wait this long before they go to the
   * neighbours that are not on the tree, in ms (batched, and after the eager copies). Default 30.
   */
  lazyDelayMs: number;
  /** Tree broadcast: wait for an announced write before asking for it, in ms. Default 20. */
  graftTimeoutMs: number;
}

/** The defaults of {@linkcode EngineConfig}. */
export const DEFAULT_CONFIG: Readonly<EngineConfig> = Object.freeze({
  fanout: 3,
  gossipIntervalMs: 500,
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 5,
  suspicionMaxMult: 6,
  retransmitMult: 4,
  tombstoneGraceMs: 3_600_000,
  forgetAfterMs: 3_600_000,
  maxDriftMs: 60_000,
  maxPiggyback: 16,
  reconnectIntervalMs: 5_000,
  largeEntryCooldownMs: 10_000,
  lazyDelayMs: 50,
  graftTimeoutMs: 10,
});

/**
 * The value of the `tree` field of a member's `sys` record when it takes part in the tree
 * broadcast (`broadcast.ts`). Members without it (release 0.1.0) get rumors instead.
 */
export const TREE_PROTOCOL = 1;

/** Entries (roughly, in bytes) per tree message: one datagram each, under any sane MTU. */
const TREE_CHUNK_BYTES = 1000;

/** A change to the user's data, local or remote. */
export interface Change {
  /** The key that changed. */
  readonly key: string;
  /** The new value; `undefined` when deleted. */
  readonly value: unknown;
  /** Whether the change is a delete. */
  readonly deleted: boolean;
  /** `"local"` for this member's own writes, `"remote"` for writes learned from others. */
  readonly origin: "local" | "remote";
  /** Id of the member that wrote it. */
  readonly writer: string;
  /** Wall-clock part of the write's hybrid logical clock stamp, in ms since the epoch. */
  readonly wall: number;
  /** Counter part of the write's stamp. */
  readonly logical: number;
}

/** A member appeared or changed status. */
export interface MemberChange {
  /** The member's id. */
  readonly id: string;
  /** The address it is reached at. */
  readonly address: string;
  /** Its status now. */
  readonly status: MemberStatus;
  /** Its incarnation number now (raised by the member to refute suspicions). */
  readonly incarnation: number;
  /** The status before, or `undefined` for a member just learned of. */
  readonly previous: MemberStatus | undefined;
}

/** Messages for one address. */
export interface Outgoing {
  readonly to: string;
  readonly messages: readonly Message[];
}

/** Everything the engine produced since the last {@linkcode Engine.takeOutput}. */
export interface EngineOutput {
  readonly outgoing: Outgoing[];
  readonly changes: Change[];
  readonly memberChanges: MemberChange[];
  /** Versions applied to the store (local writes and remote merges), for a storage log. */
  readonly applied: StoredEntry[];
  /** Tombstones collected after the grace period, for a storage log to forget. */
  readonly collected: StoredEntry[];
}

/** The last anti-entropy exchange with one peer. */
export interface SyncState {
  /** When we last opened a round with the peer, in ms (0 if never). */
  lastStarted: number;
  /** When the peer last compared roots with us and found them equal (0 if never). */
  lastInSync: number;
  /** When a round with the peer last moved entries (0 if never). */
  lastRepair: number;
  /** Entries received from the peer by anti-entropy. */
  entriesReceived: number;
  /** Entries sent to the peer by anti-entropy. */
  entriesSent: number;
}

/** Counters for metrics. All grow from 0. */
export interface EngineCounters {
  /** Messages received, by type. */
  messagesIn: Record<MessageType, number>;
  /** Messages sent, by type (piggybacked membership updates included). */
  messagesOut: Record<MessageType, number>;
  /** Rumors this member forwarded after learning something new from them. */
  rumorsForwarded: number;
  /** Entries received in rumors or tree messages that were new here. */
  rumorEntriesNew: number;
  /** Entries received in rumors or tree messages that were already known (or older). */
  rumorEntriesDuplicate: number;
  /** Anti-entropy rounds this member opened. */
  syncRounds: number;
  /** Anti-entropy roots received that were equal to ours (rounds that cost one datagram). */
  syncInSync: number;
  /** Entries received through anti-entropy. */
  syncEntriesReceived: number;
  /** Entries sent through anti-entropy. */
  syncEntriesSent: number;
  /** Remote entries refused because their stamp was too far in the future. */
  refusedClockSkew: number;
  /** Remote entries refused because they were older than the tombstone grace period. */
  refusedExpired: number;
  /** Remote entries refused for breaking a rule of the `sys` section. */
  refusedInvalid: number;
  /** Tombstones removed after the grace period. */
  tombstonesCollected: number;
  /** SWIM probes sent. */
  probes: number;
  /** Probes that got no ack, direct or indirect, within the probe period. */
  probesFailed: number;
  /** Members this member started suspecting. */
  suspicions: number;
  /** Suspicions of this member that it refuted. */
  refutations: number;
}

/** The type of every protocol message, as counted in {@linkcode EngineCounters}. */
export type MessageType =
  | "ping"
  | "ack"
  | "ping-req"
  | "member"
  | "rumor"
  | "tree"
  | "ihave"
  | "graft"
  | "prune"
  | "entries"
  | "sync-root"
  | "sync-branch"
  | "sync-leaf"
  | "sync-want";

function messageCounts(): Record<MessageType, number> {
  return {
    ping: 0,
    ack: 0,
    "ping-req": 0,
    member: 0,
    rumor: 0,
    tree: 0,
    ihave: 0,
    graft: 0,
    prune: 0,
    entries: 0,
    "sync-root": 0,
    "sync-branch": 0,
    "sync-leaf": 0,
    "sync-want": 0,
  };
}

interface Probe {
  readonly seq: number;
  readonly target: MemberState;
  readonly sentAt: number;
  indirect: boolean;
  acked: boolean;
}

interface Relay {
  readonly requester: string;
  readonly seq: number;
  readonly expires: number;
}

/** The graveyard remembers collected tombstones for this many grace periods. */
const GRAVEYARD_GRACES = 10;
/** Collected tombstones remembered at most, both sections together (about 50 B each). */
const GRAVEYARD_MAX = 1_000_000;

/** Values above this many bytes (roughly) count as large: see `largeEntryCooldownMs`. */
const LARGE_ENTRY_BYTES = 8 * 1024;

/** A cheap estimate of a value's encoded size, exact enough to tell large from small. */
export function approxSize(value: unknown, limit: number = LARGE_ENTRY_BYTES + 1): number {
  if (typeof value === "string") return value.length;
  if (value instanceof Uint8Array) return value.length;
  if (typeof value !== "object" || value === null) return 9;
  let size = 1;
  const stack: unknown[] = [value];
  while (stack.length && size <= limit) {
    const v = stack.pop();
    if (typeof v === "string") size += v.length + 1;
    else if (v instanceof Uint8Array) size += v.length + 1;
    else if (v instanceof Map) { for (const [k, x] of v) stack.push(k, x); }
    else if (Array.isArray(v)) stack.push(...v);
    else if (typeof v === "object" && v !== null && !(v instanceof Date)) {
      for (const [k, x] of Object.entries(v)) stack.push(k, x);
    } else size += 9;
  }
  return size;
}

/** Whether an entry's value is large: see `largeEntryCooldownMs`. */
function isLarge(e: Entry): boolean {
  return !e.deleted && approxSize(e.value) > LARGE_ENTRY_BYTES;
}

/** The `sys` rule: only member `x` writes `members/x`. */
function validSys(e: Entry): boolean {
  return e.section !== "sys" || e.key === MEMBER_KEY_PREFIX + e.writer;
}

/** Splits `host:port` (or `[v6]:port`) into its parts; port 0 when there is none. */
export function splitAddress(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(address);
  return m ? { host: m[1]!, port: Number(m[2]) } : { host: address, port: 0 };
}

/** Options of {@linkcode Engine}: identity, seeds and tuning. */
export interface EngineOptions extends Partial<EngineConfig> {
  /** This member's id, unique in the cluster. */
  readonly id: string;
  /** The address other members reach this one at. */
  readonly address: string;
  /** Addresses to contact to join. */
  readonly seeds?: readonly string[];
  /** Extra fields of this member's `sys` record (runtime, version, ...). */
  readonly meta?: Readonly<Record<string, unknown>>;
}

/** The gossip state machine of one member. */
export class Engine {
  readonly id: string;
  readonly address: string;
  readonly config: Readonly<EngineConfig>;
  readonly store: Store = new Store();
  readonly clock: HybridClock;
  readonly membership: Membership;
  readonly counters: EngineCounters;
  readonly syncStates: Map<string, SyncState> = new Map();
  readonly startedAt: number;
  readonly #random: Random;
  readonly #meta: Readonly<Record<string, unknown>>;
  readonly #broadcasts = new BroadcastQueue();
  readonly #tree: TreeBroadcast;
  /** Live members that do not take part in the tree (release 0.1.0): they get rumors. */
  readonly #legacy = new Set<string>();
  #seeds: readonly string[];
  readonly #outbox = new Map<string, Message[]>();
  readonly #outboxIds = new Map<string, string>();
  #changes: Change[] = [];
  #memberChanges: MemberChange[] = [];
  #applied: StoredEntry[] = [];
  #collected: StoredEntry[] = [];
  #pendingRumor: StoredEntry[] = [];
  #seq = 0;
  #probe: Probe | undefined;
  #probeOrder: MemberState[] = [];
  readonly #relays = new Map<number, Relay>();
  /** Key hashes of collected tombstones, by section, with their wall time (see #buried). */
  readonly #graveyard: Record<Section, Map<number, number>> = { sys: new Map(), usr: new Map() };
  /** Versions at or before this wall time are refused: the graveyard forgot what it held. */
  #graveyardFloor = 0;
  /** Large entries recently sent, by destination: entry hash → until when not to resend. */
  readonly #largeSent = new Map<string, Map<string, number>>();
  #nextProbeAt: number;
  #nextGossipAt: number;
  #nextMaintenanceAt: number;
  #nextReconnectAt: number;
  #left = false;

  constructor(options: EngineOptions, now: number, random: Random) {
    if (typeof options.id !== "string" || options.id.length === 0 || options.id.length > 256) {
      throw new TypeError("Member id must be a string of 1 to 256 characters");
    }
    const config = { ...DEFAULT_CONFIG };
    for (const [k, v] of Object.entries(options)) {
      if (k in config && v !== undefined) (config as Record<string, unknown>)[k] = v;
    }
    if (options.probeIntervalMs !== undefined && options.probeTimeoutMs === undefined) {
      config.probeTimeoutMs = config.probeIntervalMs / 2;
    }
    for (const [k, v] of Object.entries(config)) {
      if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) {
        throw new RangeError(`${k} must be a positive number, got ${String(v)}`);
      }
    }
    if (!Number.isInteger(config.fanout)) throw new RangeError("fanout must be a positive integer");
    this.config = Object.freeze(config);
    this.id = options.id;
    this.address = options.address;
    this.#random = random;
    this.#meta = options.meta ?? {};
    this.#seeds = [...(options.seeds ?? [])];
    this.clock = new HybridClock({ maxDriftMs: config.maxDriftMs });
    this.membership = new Membership(this.id, this.address, now);
    this.#tree = new TreeBroadcast(
      this.id,
      {
        lazyDelayMs: config.lazyDelayMs,
        graftTimeoutMs: config.graftTimeoutMs,
      },
      now,
      (v) => approxSize(v),
    );
    this.counters = {
      messagesIn: messageCounts(),
      messagesOut: messageCounts(),
      rumorsForwarded: 0,
      rumorEntriesNew: 0,
      rumorEntriesDuplicate: 0,
      syncRounds: 0,
      syncInSync: 0,
      syncEntriesReceived: 0,
      syncEntriesSent: 0,
      refusedClockSkew: 0,
      refusedExpired: 0,
      refusedInvalid: 0,
      tombstonesCollected: 0,
      probes: 0,
      probesFailed: 0,
      suspicions: 0,
      refutations: 0,
    };
    this.startedAt = now;
    // Spread the first rounds of a cluster started at once.
    this.#nextProbeAt = now + Math.floor(random() * config.probeIntervalMs);
    this.#nextGossipAt = now + Math.floor(random() * config.gossipIntervalMs);
    this.#nextMaintenanceAt = now + config.gossipIntervalMs;
    this.#nextReconnectAt = now + config.reconnectIntervalMs;
  }

  // ------------------------------------------------------------------ inputs

  /** Announces this member: writes its `sys` record and contacts the seeds. */
  start(now: number): void {
    this.#writeRecord(now);
    // No member is known yet to push the record to: it travels by anti-entropy from the
    // seeds, and is not left pending to ride along with this member's first write.
    this.#pendingRumor = [];
    this.#joinSeeds();
  }

  /**
   * Loads persisted versions (before {@linkcode Engine.start}): merges them without
   * announcing them as changes or rumors, moves the clock past every loaded stamp (so that
   * new writes win over old ones even if the wall clock went back), and learns the members
   * their `sys` records name. Anti-entropy then fills in what the member missed. Returns
   * how many versions were applied (older duplicates and invalid `sys` entries are not).
   */
  load(entries: Iterable<Entry>, now: number): number {
    let applied = 0;
    for (const e of entries) {
      if (!validSys(e)) continue;
      // Our own entries: trust their stamps whatever the drift bound (observing a stamp at
      // its own wall time always passes).
      this.clock.observe(e, e.wall);
      const r = this.store.merge(e);
      if (r.outcome !== "applied") continue;
      applied++;
      if (e.section === "sys") this.#onRecord(r.stored!, now);
    }
    this.#memberChanges = [];
    return applied;
  }

  /** Replaces the seed addresses (for seeds re-resolved from DNS). */
  setSeeds(seeds: readonly string[]): void {
    this.#seeds = [...seeds];
  }

  /** The seed addresses. */
  get seeds(): readonly string[] {
    return this.#seeds;
  }

  /**
   * Writes a value (already validated by the caller) or, with `deleted`, a tombstone.
   * Applied at once; pushed as a rumor at the next {@linkcode Engine.flush}.
   */
  write(section: Section, key: string, value: unknown, deleted: boolean, now: number): StoredEntry {
    const stamp = this.clock.tick(now);
    const entry: Entry = {
      section,
      key,
      value: deleted ? undefined : value,
      ...stamp,
      writer: this.id,
      deleted,
    };
    const { stored } = this.store.merge(entry);
    this.#applied.push(stored!);
    this.#emitChange(stored!, "local");
    this.#pendingRumor.push(stored!);
    return stored!;
  }

  /** Pushes the writes made since the last flush, as one rumor, to `fanout` peers. */
  flush(now: number): void {
    if (this.#pendingRumor.length === 0) return;
    // Only the versions still current: a key written twice is pushed once.
    const entries = this.#pendingRumor.filter((e) => this.store.get(e.section, e.key) === e);
    this.#pendingRumor = [];
    if (entries.length === 0) return;
    const large = entries.filter(isLarge);
    const small = large.length ? entries.filter((e) => !isLarge(e)) : entries;
    if (large.length) {
      // Large values go to `fanout` peers only; anti-entropy carries one copy to the rest.
      for (const peer of sample(this.#random, this.membership.live(), this.config.fanout)) {
        this.#send(peer.address, { type: "rumor", hop: 0, entries: large }, peer.id);
        this.#withoutLargeInFlight(peer.address, large, now); // notes them as in flight
      }
    }
    if (small.length) {
      this.#broadcastTree(small, now);
      this.#rumorToLegacy(small, 0, undefined);
    }
  }

  /** Handles one envelope received from transport address `from`. */
  receive(from: string, envelope: Envelope, now: number): void {
    if (this.#left) return;
    const sender = envelope.sender;
    if (sender === this.id) return; // our own datagram, looped back
    this.#heardFrom(sender, from, now);
    const fresh: StoredEntry[] = [];
    let rumorHop = -1;
    for (const m of envelope.messages) {
      this.counters.messagesIn[m.type]++;
      switch (m.type) {
        case "ping":
          if (m.target === this.id) this.#send(from, { type: "ack", seq: m.seq });
          break;
        case "ack":
          this.#onAck(m.seq, now);
          break;
        case "ping-req": {
          const seq = this.#nextSeq();
          this.#relays.set(seq, {
            requester: from,
            seq: m.seq,
            expires: now + this.config.probeIntervalMs,
          });
          this.#send(m.address, { type: "ping", seq, target: m.target });
          break;
        }
        case "member":
          this.#onMember(m, sender, from, now);
          break;
        case "tree": {
          const r = this.#tree.receiveTree(sender, m, now);
          this.#sendTree(r.sends);
          if (!r.fresh) break;
          for (const e of m.entries) {
            if (this.#mergeRemote(e, from, now) === "applied") this.counters.rumorEntriesNew++;
            else this.counters.rumorEntriesDuplicate++;
          }
          break;
        }
        case "ihave":
          this.#tree.receiveIHave(sender, m, now);
          break;
        case "graft":
          this.#sendTree(this.#tree.receiveGraft(sender, m, now));
          break;
        case "prune":
          this.#tree.receivePrune(sender);
          break;
        case "rumor":
          for (const e of m.entries) {
            const outcome = this.#mergeRemote(e, from, now);
            if (outcome === "applied") {
              fresh.push(this.store.get(e.section, e.key)!);
              this.counters.rumorEntriesNew++;
            } else {
              this.counters.rumorEntriesDuplicate++;
            }
          }
          rumorHop = Math.max(rumorHop, m.hop);
          break;
        case "entries": {
          this.counters.syncEntriesReceived += m.entries.length;
          const state = this.#syncState(sender);
          state.entriesReceived += m.entries.length;
          state.lastRepair = now;
          for (const e of m.entries) this.#mergeRemote(e, from, now);
          break;
        }
        case "sync-root":
        case "sync-branch":
        case "sync-leaf":
        case "sync-want": {
          const replies = syncReply(this.store, m);
          if (m.type === "sync-root" && replies.length === 0) {
            this.counters.syncInSync++;
            this.#syncState(sender).lastInSync = now;
          }
          for (let r of replies) {
            if (r.type === "entries") {
              // syncReply answers with the store's own (hashed) entries.
              const stored = r.entries as readonly StoredEntry[];
              const entries = this.#withoutLargeInFlight(from, stored, now);
              if (entries.length === 0) continue;
              r = { type: "entries", entries };
              this.counters.syncEntriesSent += entries.length;
              const state = this.#syncState(sender);
              state.entriesSent += entries.length;
              state.lastRepair = now;
            }
            this.#send(from, r);
          }
          break;
        }
      }
    }
    // Large values are not forwarded: `fanout` copies per member of a megabyte would swamp
    // the network. The writer's own push starts them; anti-entropy, one copy per member,
    // does the rest.
    const forward = fresh.filter((e) => !isLarge(e));
    if (forward.length) {
      // A rumor comes from a member of release 0.1.0 (or from a member that did not know yet
      // that we speak the tree): the tree carries what is new to its members, and the
      // rumor goes on among the members that do not speak the tree.
      this.#broadcastTree(forward, now);
      if (rumorHop + 1 <= this.#rumorHopLimit()) {
        if (this.#rumorToLegacy(forward, rumorHop + 1, sender)) this.counters.rumorsForwarded++;
      }
    }
  }

  /** Runs whatever periodic work is due at `now`. */
  tick(now: number): void {
    if (this.#left) return;
    this.#tickProbe(now);
    this.#tickSuspicions(now);
    if (now >= this.#nextGossipAt) {
      this.#nextGossipAt = now + this.config.gossipIntervalMs;
      const live = this.membership.live();
      // Alone (a lost join, or every peer gone): knock on the seeds again, every round.
      if (live.length === 0) this.#joinSeeds();
      if (live.length) {
        const peer = live[Math.floor(this.#random() * live.length)]!;
        this.counters.syncRounds++;
        this.#syncState(peer.id).lastStarted = now;
        this.#send(peer.address, syncRoot(this.store), peer.id);
      }
    }
    if (now >= this.#nextMaintenanceAt) {
      this.#nextMaintenanceAt = now + this.config.gossipIntervalMs;
      this.#maintain(now);
    }
    this.#sendTree(this.#tree.tick(now));
    if (now >= this.#nextReconnectAt) {
      this.#nextReconnectAt = now + this.config.reconnectIntervalMs;
      const dead = this.membership.dead();
      if (dead.length) {
        const m = dead[Math.floor(this.#random() * dead.length)]!;
        this.#send(m.address, { type: "ping", seq: this.#nextSeq(), target: m.id }, m.id);
      }
    }
  }

  /** When {@linkcode Engine.tick} next has work to do. */
  nextWakeAt(): number {
    let t = Math.min(
      this.#nextProbeAt,
      this.#nextGossipAt,
      this.#nextMaintenanceAt,
      this.#nextReconnectAt,
      this.#tree.nextWakeAt(),
    );
    const p = this.#probe;
    if (p && !p.acked) {
      t = Math.min(
        t,
        p.indirect ? p.sentAt + this.config.probeIntervalMs : p.sentAt + this.config.probeTimeoutMs,
      );
    }
    for (const m of this.membership.suspects()) {
      if (m.suspectDeadline) t = Math.min(t, m.suspectDeadline);
    }
    return t;
  }

  /**
   * Leaves the cluster gracefully: tells `fanout` × 2 live peers (and queues the news for
   * the rest) that this member left. After this the engine ignores every input.
   */
  leave(_now: number): void {
    if (this.#left) return;
    this.membership.self.status = "left";
    const update = this.membership.update(this.membership.self);
    for (const peer of sample(this.#random, this.membership.live(), this.config.fanout * 2)) {
      this.#send(peer.address, update, peer.id);
    }
    this.#left = true;
  }

  /** Whether {@linkcode Engine.leave} was called. */
  get left(): boolean {
    return this.#left;
  }

  /** Takes the messages, data changes and member changes produced so far. */
  takeOutput(): EngineOutput {
    const outgoing: Outgoing[] = [];
    for (const [to, messages] of this.#outbox) {
      const piggyback = this.#left
        ? []
        : this.#broadcasts.take(this.config.maxPiggyback, this.#outboxIds.get(to));
      const all = [...messages, ...piggyback];
      for (const m of all) this.counters.messagesOut[m.type]++;
      outgoing.push({ to, messages: all });
    }
    this.#outbox.clear();
    this.#outboxIds.clear();
    const out = {
      outgoing,
      changes: this.#changes,
      memberChanges: this.#memberChanges,
      applied: this.#applied,
      collected: this.#collected,
    };
    this.#changes = [];
    this.#memberChanges = [];
    this.#applied = [];
    this.#collected = [];
    return out;
  }

  /** Whether a member has outlived the tombstone grace period (see {@linkcode Engine.receive}). */
  settled(now: number): boolean {
    return now - this.startedAt >= this.config.tombstoneGraceMs;
  }

  // ------------------------------------------------------------------ internals

  #nextSeq(): number {
    return this.#seq = (this.#seq + 1) % 0x1_0000_0000;
  }

  /**
   * Puts member `id` on the tree's overlay when it is alive (or suspect) and its record
   * says it speaks the tree; a live member that does not is a rumor peer instead.
   */
  #place(id: string): void {
    if (id === this.id) return;
    const m = this.membership.get(id);
    const live = m !== undefined && (m.status === "alive" || m.status === "suspect");
    const record = this.store.get("sys", MEMBER_KEY_PREFIX + id);
    const version = record && !record.deleted
      ? (record.value as { tree?: unknown } | undefined)?.tree
      : undefined;
    const tree = live && typeof version === "number" && version >= TREE_PROTOCOL;
    this.#tree.overlay.set(id, tree);
    if (live && !tree) this.#legacy.add(id);
    else this.#legacy.delete(id);
  }

  /** Broadcasts entries along the tree, in messages of one datagram each. */
  #broadcastTree(entries: readonly StoredEntry[], now: number): void {
    let chunk: StoredEntry[] = [];
    let bytes = 0;
    for (const e of entries) {
      const size = e.key.length + e.writer.length + 24 + (e.deleted ? 0 : approxSize(e.value));
      if (chunk.length && bytes + size > TREE_CHUNK_BYTES) {
        this.#sendTree(this.#tree.originate(chunk, now));
        chunk = [];
        bytes = 0;
      }
      chunk.push(e);
      bytes += size;
    }
    if (chunk.length) this.#sendTree(this.#tree.originate(chunk, now));
  }

  #sendTree(sends: readonly TreeSend[]): void {
    for (const { to, message } of sends) {
      const m = this.membership.get(to);
      if (m) this.#send(m.address, message, m.id);
    }
  }

  /** Pushes a rumor to `fanout` random live members that do not speak the tree. */
  #rumorToLegacy(
    entries: readonly StoredEntry[],
    hop: number,
    except: string | undefined,
  ): boolean {
    if (this.#legacy.size === 0) return false;
    const ids = sample(this.#random, [...this.#legacy], this.config.fanout + 1)
      .filter((id) => id !== except).slice(0, this.config.fanout);
    let sent = false;
    for (const id of ids) {
      const m = this.membership.get(id);
      if (!m) continue;
      this.#send(m.address, { type: "rumor", hop, entries }, m.id);
      sent = true;
    }
    return sent;
  }

  /** Queues a message; `toId`, when known, lets the piggyback put news about it first. */
  #send(to: string, message: Message, toId?: string): void {
    if (to === this.address) return;
    let list = this.#outbox.get(to);
    if (!list) this.#outbox.set(to, list = []);
    list.push(message);
    if (toId !== undefined) this.#outboxIds.set(to, toId);
  }

  #syncState(peer: string): SyncState {
    let s = this.syncStates.get(peer);
    if (!s) {
      this.syncStates.set(
        peer,
        s = { lastStarted: 0, lastInSync: 0, lastRepair: 0, entriesReceived: 0, entriesSent: 0 },
      );
    }
    return s;
  }

  #rumorHopLimit(): number {
    const n = this.membership.size;
    return 2 * Math.ceil(Math.log(Math.max(2, n)) / Math.log(this.config.fanout + 1)) + 2;
  }

  #transmitLimit(): number {
    return this.config.retransmitMult * Math.ceil(Math.log10(this.membership.size + 1));
  }

  #broadcast(update: MemberMessage): void {
    this.#broadcasts.push(update, this.#transmitLimit());
  }

  #emitChange(e: StoredEntry, origin: "local" | "remote"): void {
    if (e.section !== "usr") return;
    this.#changes.push({
      key: e.key,
      value: e.value,
      deleted: e.deleted,
      origin,
      writer: e.writer,
      wall: e.wall,
      logical: e.logical,
    });
  }

  #emitMember(m: MemberState, previous: MemberStatus | undefined): void {
    this.#place(m.id);
    this.#memberChanges.push({
      id: m.id,
      address: m.address,
      status: m.status,
      incarnation: m.incarnation,
      previous,
    });
  }

  #writeRecord(now: number): void {
    const { host, port } = splitAddress(this.address);
    this.write(
      "sys",
      MEMBER_KEY_PREFIX + this.id,
      { ...this.#meta, address: this.address, host, port, protocol: "v1", tree: TREE_PROTOCOL },
      false,
      now,
    );
  }

  #joinSeeds(): void {
    const hello = this.membership.update(this.membership.self);
    for (const seed of this.#seeds) {
      if (seed === this.address) continue;
      this.#send(seed, hello);
      this.#send(seed, syncRoot(this.store));
    }
  }

  /** Bookkeeping for every envelope: the sender is alive, and learns if we think otherwise. */
  #heardFrom(sender: string, from: string, now: number): void {
    const m = this.membership.get(sender);
    if (!m) {
      const added = this.membership.apply(
        { type: "member", id: sender, address: from, incarnation: 0, status: "alive" },
        now,
      )!;
      added.lastHeard = now;
      this.#emitMember(added, undefined);
      // Introduce ourselves to a newcomer.
      this.#send(from, this.membership.update(this.membership.self));
      return;
    }
    m.lastHeard = now;
    if (m.status !== "alive") {
      // It is talking, so it is up: tell it what we believe, so that it refutes.
      this.#send(from, this.membership.update(m));
    }
  }

  #onMember(u: MemberMessage, sender: string, from: string, now: number): void {
    if (u.id === this.id) {
      if (this.membership.refute(u)) {
        this.counters.refutations++;
        const alive = this.membership.update(this.membership.self);
        this.#broadcast(alive);
        this.#send(from, alive);
        for (const peer of sample(this.#random, this.membership.live(), this.config.fanout)) {
          this.#send(peer.address, alive, peer.id);
        }
      } else if (u.status !== "alive" && !this.#left) {
        // Stale news of our death (we already refuted it): set the sender straight.
        this.#send(from, this.membership.update(this.membership.self));
      }
      return;
    }
    const before = this.membership.get(u.id);
    const previous = before?.status;
    const changed = this.membership.apply(u, now);
    if (!changed) {
      if (
        u.status === "suspect" && before?.status === "suspect" &&
        before.incarnation === u.incarnation
      ) {
        this.#confirmSuspicion(before, u.by ?? sender, now);
      }
      return;
    }
    this.#broadcast(u);
    if (changed.status === "suspect") this.#confirmSuspicion(changed, u.by ?? sender, now);
    if (previous !== changed.status) this.#emitMember(changed, previous);
    if (!before) this.#send(changed.address, this.membership.update(this.membership.self));
  }

  /** Starts (or confirms) a suspicion of `m` by member `by`, and sets its deadline. */
  #confirmSuspicion(m: MemberState, by: string, now: number): void {
    m.suspicion ??= { start: now, by: new Set() };
    m.suspicion.by.add(by);
    const n = this.membership.size;
    const min = this.config.suspicionMult * Math.max(1, Math.log10(n)) *
      this.config.probeIntervalMs;
    const max = this.config.suspicionMaxMult * min;
    const expected = Math.min(3, n - 2);
    const confirmations = m.suspicion.by.size - 1;
    const timeout = expected < 1
      ? min
      : Math.max(min, max - (max - min) * Math.log(confirmations + 1) / Math.log(expected + 1));
    m.suspectDeadline = m.suspicion.start + timeout;
  }

  /** Our probe of `m` failed: suspect it, or confirm a suspicion we heard of. */
  #suspect(m: MemberState, now: number): void {
    if (m.status !== "alive" && m.status !== "suspect") return;
    if (m.status === "suspect" && m.suspicion?.by.has(this.id)) return;
    this.counters.suspicions++;
    const u: MemberMessage = {
      type: "member",
      id: m.id,
      address: m.address,
      incarnation: m.incarnation,
      status: "suspect",
      by: this.id,
    };
    if (m.status === "alive") {
      this.membership.apply(u, now);
      this.#emitMember(m, "alive");
    }
    // An independent confirmation shortens everyone's timeout (Lifeguard): spread it.
    this.#confirmSuspicion(m, this.id, now);
    this.#broadcast(u);
    // Tell the suspect first: it is the one that can refute.
    this.#send(m.address, u, m.id);
  }

  #tickSuspicions(now: number): void {
    for (const m of [...this.membership.suspects()]) {
      if (m.suspectDeadline && now >= m.suspectDeadline) {
        const u: MemberMessage = {
          type: "member",
          id: m.id,
          address: m.address,
          incarnation: m.incarnation,
          status: "dead",
        };
        this.membership.apply(u, now);
        this.#emitMember(m, "suspect");
        this.#broadcast(u);
      }
    }
  }

  #tickProbe(now: number): void {
    const p = this.#probe;
    if (p && !p.acked) {
      if (!p.indirect && now >= p.sentAt + this.config.probeTimeoutMs) {
        p.indirect = true;
        const helpers = sample(
          this.#random,
          this.membership.live().filter((m) => m !== p.target && m.status === "alive"),
          this.config.indirectChecks,
        );
        for (const h of helpers) {
          this.#send(h.address, {
            type: "ping-req",
            seq: p.seq,
            target: p.target.id,
            address: p.target.address,
          }, h.id);
        }
        // A second direct ping: with loss, the first may simply have been dropped.
        this.#send(
          p.target.address,
          { type: "ping", seq: p.seq, target: p.target.id },
          p.target.id,
        );
      }
      if (now >= p.sentAt + this.config.probeIntervalMs) {
        this.#probe = undefined;
        this.counters.probesFailed++;
        if (this.membership.get(p.target.id) === p.target) this.#suspect(p.target, now);
      }
    }
    if (now < this.#nextProbeAt) return;
    this.#nextProbeAt = now + this.config.probeIntervalMs;
    if (this.#probe) return;
    const target = this.#nextProbeTarget();
    if (!target) return;
    const seq = this.#nextSeq();
    this.#probe = { seq, target, sentAt: now, indirect: false, acked: false };
    this.counters.probes++;
    this.#send(target.address, { type: "ping", seq, target: target.id }, target.id);
  }

  /** Round-robin over a shuffled list of live members (SWIM's bounded detection time). */
  #nextProbeTarget(): MemberState | undefined {
    for (;;) {
      if (this.#probeOrder.length === 0) {
        this.#probeOrder = shuffle(this.#random, [...this.membership.live()]);
        if (this.#probeOrder.length === 0) return undefined;
      }
      const m = this.#probeOrder.pop()!;
      if (this.membership.get(m.id) === m && (m.status === "alive" || m.status === "suspect")) {
        return m;
      }
    }
  }

  #onAck(seq: number, now: number): void {
    const p = this.#probe;
    if (p && p.seq === seq) {
      p.acked = true;
      this.#probe = undefined;
      p.target.lastHeard = now;
      return;
    }
    const relay = this.#relays.get(seq);
    if (relay) {
      this.#relays.delete(seq);
      this.#send(relay.requester, { type: "ack", seq: relay.seq });
    }
  }

  /** Merges one remote entry under the store's rules. */
  #mergeRemote(e: Entry, from: string, now: number): "applied" | "duplicate" | "stale" | "refused" {
    if (!this.clock.observe(e, now)) {
      this.counters.refusedClockSkew++;
      return "refused";
    }
    if (!validSys(e)) {
      this.counters.refusedInvalid++;
      return "refused";
    }
    const current = this.store.get(e.section, e.key);
    if (!current && this.#buried(e, now)) {
      // A version older than a tombstone we collected: the key was deleted, and this copy
      // comes from a member that was away longer than the grace period. Refuse it, and tell
      // the sender to delete it too, so that it cannot resurrect the key anywhere.
      this.counters.refusedExpired++;
      if (!e.deleted) {
        this.#send(from, {
          type: "entries",
          entries: [tombstoneAfter(e)],
        });
      }
      return "refused";
    }
    const r = this.store.merge(e);
    if (r.outcome !== "applied") return r.outcome;
    const stored = r.stored!;
    this.#applied.push(stored);
    this.#emitChange(stored, "remote");
    if (stored.section === "sys") this.#onRecord(stored, now);
    return "applied";
  }

  /** A member's `sys` record changed: discover the member, or rewrite our own record. */
  #onRecord(e: StoredEntry, now: number): void {
    const id = e.key.slice(MEMBER_KEY_PREFIX.length);
    if (id === this.id) {
      if (e.deleted && !this.#left) this.#writeRecord(now);
      return;
    }
    this.#place(id);
    if (e.deleted) return;
    const address = (e.value as { address?: unknown } | undefined)?.address;
    if (typeof address !== "string" || address.length === 0) return;
    const known = this.membership.get(id);
    if (known) {
      known.address = address;
      return;
    }
    const m = this.membership.apply({
      type: "member",
      id,
      address,
      incarnation: 0,
      status: "alive",
    }, now)!;
    this.#emitMember(m, undefined);
  }

  /**
   * Drops from `entries` the large ones sent to `to` less than `largeEntryCooldownMs` ago,
   * and notes the rest as sent. A large value travels as hundreds of fragments; while the
   * peer is still reassembling it, its Merkle tree still differs, and without this every
   * anti-entropy round would send the whole value again.
   */
  #withoutLargeInFlight(to: string, entries: readonly StoredEntry[], now: number): StoredEntry[] {
    let recent = this.#largeSent.get(to);
    const out: StoredEntry[] = [];
    for (const e of entries) {
      if (isLarge(e)) {
        const id = `${e.ea}:${e.eb}`;
        const until = recent?.get(id);
        if (until !== undefined && until > now) continue;
        if (!recent) this.#largeSent.set(to, recent = new Map());
        recent.set(id, now + this.config.largeEntryCooldownMs);
      }
      out.push(e);
    }
    return out;
  }

  /**
   * Whether `e`, unknown here, may be a version a collected tombstone superseded. Only a
   * settled member (up for the grace period) judges, and only entries older than the grace
   * period: younger ones cannot be behind a collected tombstone. Within the graveyard's
   * memory it knows which keys it collected tombstones for, and when: a late but legitimate
   * write (a member that lagged, a long partition) is accepted. Beyond that memory (older
   * than `GRAVEYARD_GRACES` grace periods, or evicted for room) it refuses.
   */
  #buried(e: Entry, now: number): boolean {
    if (!this.settled(now) || e.wall >= now - this.config.tombstoneGraceMs) return false;
    if (
      e.wall <=
        Math.max(this.#graveyardFloor, now - GRAVEYARD_GRACES * this.config.tombstoneGraceMs)
    ) {
      return true;
    }
    const deletedAt = this.#graveyard[e.section].get(keyHash(e.section, e.key));
    return deletedAt !== undefined && deletedAt >= e.wall;
  }

  /** Remembers collected tombstones (key hash → wall time), within bounds. */
  #bury(collected: readonly StoredEntry[], now: number): void {
    for (const t of collected) {
      const graves = this.#graveyard[t.section];
      graves.delete(t.ka); // re-insert: the maps stay in order of collection
      graves.set(t.ka, t.wall);
    }
    const horizon = now - GRAVEYARD_GRACES * this.config.tombstoneGraceMs;
    for (const section of ["sys", "usr"] as const) {
      const graves = this.#graveyard[section];
      for (const [ka, wall] of graves) {
        if (wall > horizon && graves.size <= GRAVEYARD_MAX / 2) break;
        graves.delete(ka);
        if (wall > horizon) this.#graveyardFloor = Math.max(this.#graveyardFloor, wall);
      }
    }
  }

  #maintain(now: number): void {
    for (const m of this.membership.all()) this.#place(m.id);
    for (const [to, recent] of this.#largeSent) {
      for (const [id, until] of recent) if (until <= now) recent.delete(id);
      if (recent.size === 0) this.#largeSent.delete(to);
    }
    const before = this.#collected.length;
    this.counters.tombstonesCollected += this.store.collectTombstones(
      now - this.config.tombstoneGraceMs,
      this.#collected,
    );
    this.#bury(this.#collected.slice(before), now);
    for (const [seq, r] of this.#relays) if (r.expires <= now) this.#relays.delete(seq);
    for (const m of [...this.membership.all()]) {
      if (
        (m.status === "dead" || m.status === "left") && now - m.since >= this.config.forgetAfterMs
      ) {
        this.membership.forget(m.id);
        this.#place(m.id);
        this.syncStates.delete(m.id);
        // Every member forgets the same way, so the tombstone is the same everywhere.
        const record = this.store.get("sys", MEMBER_KEY_PREFIX + m.id);
        if (record && !record.deleted) {
          const { stored } = this.store.merge(tombstoneAfter(record));
          if (stored) this.#applied.push(stored);
        }
      }
    }
  }
}
