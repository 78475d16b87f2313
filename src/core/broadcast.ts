/**
 * Broadcast along a tree derived from the member list, a different tree for every message,
 * with acknowledgements and retransmission on each of its links.
 *
 * - **Ring.** Every member places the members it holds alive on a ring, ordered by a hash
 *   of their ids. Every member that holds the same member list holds the same ring; a
 *   member joining or leaving moves no other member on it.
 * - **A tree per message.** Message `seq` of member `origin` starts the ring at a point
 *   hashed from `(origin, seq)`: the other members, in ring order from that point, form a
 *   row. The origin splits the row into 3 consecutive parts for an even `seq` (2 for an odd
 *   one) and sends the message to the first member of each part; a member that receives it
 *   finds its own part by the same splits, computed from its own member list, and splits
 *   the rest of its part in 2 likewise. Each member sends each message to at most 2 (its
 *   origin 3) members: with N members the last one is `1 + ⌊log2(N/3)⌋` hops away. As the
 *   starting point moves from message to message, so do the members inside the tree: a
 *   burst's relaying is spread over all members, and an origin alternates between 2 and 3
 *   children (a lone message takes an even number: 3 children, one hop less).
 * - **Acknowledgement and retransmission.** A member acknowledges every copy it receives
 *   to its sender with an `ihave`, `ackDelayMs` later and batched (at once for a duplicate:
 *   its sender is retransmitting). A sender retransmits an unacknowledged copy after a
 *   retransmission timeout estimated from the round trips it measured (Jacobson's; Karn's
 *   rule: retransmitted copies are not measured), doubling it each time, at most
 *   {@linkcode MAX_ATTEMPTS} times; after {@linkcode TAKEOVER_ATTEMPTS} it also sends to the
 *   members the silent one would have sent to, and a member removed from the ring is
 *   replaced by those the tree now names. A lost copy costs a timeout, a dead relay
 *   about two; whatever still misses, anti-entropy repairs.
 * - **Congestion control.** A member silent since a copy was sent to it (no `ihave` at
 *   all) is either gone or slower than the timeout (an overloaded event loop, a full
 *   receive buffer). When nobody else answered either since that copy went (or the
 *   retransmissions come due late: this member's own timers are late), it is likely the
 *   slow case: of its due copies only the oldest is sent again, as a probe, and the others
 *   wait for the probe's answer; their acknowledgements, when they come, are round trips
 *   measured (Karn's rule ignores only copies sent twice: without the wait, when every copy
 *   times out, no round trip is measured and the timeout never grows), and the member's
 *   factor doubles (up to 4; its retransmissions wait that many timeouts) and halves with
 *   every acknowledgement from it. A silent member's children are taken over when others
 *   answered meanwhile (a crash, a partition), or after {@linkcode TAKEOVER_ROUNDS} silent
 *   rounds when nobody did. Without this, a round trip longer than the timeout turned every
 *   copy into several (retransmissions, their echoes, the takeovers of members that were
 *   only slow), and they added to the overload that delayed the acknowledgements.
 *
 * The state machine is pure: it takes `now` and returns what to send, to member ids.
 *
 * @module
 */

import { hashString } from "./hash.ts";
import type { IHaveMessage, TreeMessage } from "./messages.ts";
import type { Entry } from "./store.ts";

/** Tuning of {@linkcode TreeBroadcast}. */
export interface TreeConfig {
  /** How long acknowledgements wait, to be batched, in ms. */
  readonly ackDelayMs: number;
  /** Retransmission timeout before any round trip was measured, in ms. */
  readonly retransmitMs: number;
  /** How long a message is kept to retransmit it, and its id to detect duplicates, in ms. */
  readonly cacheMs: number;
  /** Bytes (roughly) of messages kept to retransmit at most. */
  readonly cacheBytes: number;
}

/** Defaults of {@linkcode TreeConfig}. */
export const DEFAULT_TREE_CONFIG: Readonly<TreeConfig> = Object.freeze({
  ackDelayMs: 15,
  retransmitMs: 100,
  cacheMs: 30_000,
  cacheBytes: 8 * 1024 * 1024,
});

/** Children of a relay in every tree. */
export const RELAY_FANOUT = 2;
/** Sends of one copy at most (the first and the retransmissions). */
export const MAX_ATTEMPTS = 8;
/** Retransmissions one timeout apart; the later ones wait twice as long each time. */
const STEADY_ATTEMPTS = 3;
/** Retransmissions after which a sender also sends to the silent member's children. */
export const TAKEOVER_ATTEMPTS = 1;
/** Retransmission rounds a member stays silent through before its children are taken over. */
export const TAKEOVER_ROUNDS = 3;
/** The largest factor a silent member's retransmission timeout is multiplied by. */
const MAX_BACKOFF = 4;
/** Copies waiting for an acknowledgement at most (beyond, they are sent once). */
const MAX_PENDING = 20_000;
/** Sequence numbers in one `ihave` at most (the codec's bound). */
const MAX_SEQS = 4096;
/**
 * A message that follows another of its origin within this many ms is part of a burst: its
 * acknowledgement waits {@linkcode BURST_ACK_MS} only (a burst batches itself), and its
 * sender expects it that much sooner.
 */
const BURST_WINDOW_MS = 100;
const BURST_ACK_MS = 2;
/** Delay between the two copies of a retransmission, in ms. */
const ECHO_MS = 1;
/**
 * Retransmissions come due a timeout late, several at once: this member is overloaded (its
 * timers run late), and its copies are likely late, not lost. They then back off at once, go
 * once (no echo, no takeover), and at most this many per tick (the rest wait a timeout):
 * retransmitting adds to an overload.
 */
const CONGESTED = 32;
/** Bounds of the retransmission timeout, in ms: the lower one covers a busy event loop. */
const MIN_RTO = 20;
const MIN_RTO_MARGIN = 2;
const MAX_RTO = 2_000;

/** Children of the origin of message `seq`: 3 for an even number, 2 for an odd one. */
export function originFanout(seq: number): number {
  return seq % 2 === 0 ? 3 : 2;
}

/** A tree protocol message for the member with id `to`. */
export interface TreeSend {
  readonly to: string;
  readonly message: TreeMessage | IHaveMessage;
}

interface RingSlot {
  readonly key: number;
  readonly id: string;
}

const RING_SEED = 0x5bd1e995;

function before(a: RingSlot, b: RingSlot): boolean {
  return a.key < b.key || (a.key === b.key && a.id < b.id);
}

function slot(id: string): RingSlot {
  return { key: hashString(id, RING_SEED) >>> 0, id };
}

/** Index of the first slot not before `s` (binary search). */
function lowerBound(ring: readonly RingSlot[], s: RingSlot): number {
  let lo = 0, hi = ring.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(ring[mid]!, s)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A 32-bit finaliser (MurmurHash3's): spreads the bits of `h`. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Start and end (exclusive) of part `g` of `k` of the row positions `[lo, hi)`. */
function part(lo: number, hi: number, k: number, g: number): [number, number] {
  const len = hi - lo;
  return [lo + Math.floor((g * len) / k), lo + Math.floor(((g + 1) * len) / k)];
}

/**
 * The ring of one member: the members it holds alive, ordered by a hash of their ids, and
 * the tree every message takes over it. Updates are O(N) memory moves (a splice), a
 * member's children in a tree O(log N).
 *
 * @example
 * ```ts
 * import { Overlay } from "./broadcast.ts";
 * const o = new Overlay("a");
 * for (const id of ["b", "c", "d", "e", "f", "g", "h", "i"]) o.set(id, true);
 * console.log(o.children("a", 2).length); // 3
 * ```
 */
export class Overlay {
  readonly self: string;
  readonly #ring: RingSlot[] = [];
  readonly #members = new Set<string>();
  #version = 0;

  constructor(self: string) {
    this.self = self;
    this.set(self, true);
  }

  /** Grows by one whenever the member set changes. */
  get version(): number {
    return this.#version;
  }

  /** Members placed, self included. */
  get size(): number {
    return this.#members.size;
  }

  /** Whether `id` is placed on the ring. */
  has(id: string): boolean {
    return this.#members.has(id);
  }

  /** Places (`present`) or removes member `id`; whether anything changed. Self stays. */
  set(id: string, present: boolean): boolean {
    if (id === this.self && !present) return false;
    if (this.#members.has(id) === present) return false;
    if (present) this.#members.add(id);
    else this.#members.delete(id);
    const s = slot(id);
    const i = lowerBound(this.#ring, s);
    if (present) this.#ring.splice(i, 0, s);
    else if (this.#ring[i]?.id === id) this.#ring.splice(i, 1);
    this.#version++;
    return true;
  }

  /**
   * The members that `of` (this member by default) sends message `seq` of `origin` to, in
   * this member's view: empty for a leaf of that tree, or for a member not on the ring.
   */
  children(origin: string, seq: number, of: string = this.self): string[] {
    const ring = this.#ring;
    const n = ring.length;
    if (n < 2 || !this.#members.has(of)) return [];
    const start = lowerBound(ring, { key: mix(hashString(origin, RING_SEED) + seq), id: "" }) %
      n;
    const rotated = (r: number) => (r - start + n) % n;
    // The origin is not in the row (it may be missing from this view: then nothing is left out).
    const o = this.#members.has(origin) ? rotated(lowerBound(ring, slot(origin))) : n;
    const size = o < n ? n - 1 : n;
    const idAt = (i: number) => ring[(start + i + (i >= o ? 1 : 0)) % n]!.id;
    const heads = (lo: number, hi: number, k: number) => {
      const out: string[] = [];
      for (let g = 0; g < k; g++) {
        const [s, e] = part(lo, hi, k, g);
        if (e > s) out.push(idAt(s));
      }
      return out;
    };
    if (of === origin) return heads(0, size, originFanout(seq));
    const p = rotated(lowerBound(ring, slot(of)));
    const i = p > o ? p - 1 : p;
    let lo = 0, hi = size, k = originFanout(seq);
    for (;;) {
      let g = Math.min(k - 1, Math.floor(((i - lo) * k) / (hi - lo)));
      let [s, e] = part(lo, hi, k, g);
      while (i < s) [s, e] = part(lo, hi, k, --g);
      while (i >= e) [s, e] = part(lo, hi, k, ++g);
      if (i === s) return heads(s + 1, e, RELAY_FANOUT);
      lo = s + 1;
      hi = e;
      k = RELAY_FANOUT;
    }
  }
}

interface Pending {
  readonly to: string;
  readonly id: string;
  readonly message: TreeMessage;
  readonly sentAt: number;
  /** When it was last sent (the first time or again). */
  lastSentAt: number;
  deadline: number;
  attempts: number;
  /** When the second copy of a retransmission goes (Infinity: none due). */
  echoAt: number;
  /** Rounds it waited for the answer to another copy's probe (see the module). */
  held: number;
  /** Whether the children of `to` were sent it already. */
  takenOver?: boolean;
}

/** What a sender knows of one member it sends copies to. */
interface Peer {
  /** When it last acknowledged anything here. */
  heardAt: number;
  /** Factor of its retransmission timeout: doubled by a silent round, halved by a sample. */
  backoff: number;
  /** Retransmission rounds it has been silent through in a row (probes unanswered). */
  silentRounds: number;
  /** Until when its last probe awaits an answer (its due copies wait till then). */
  probeUntil: number;
}

interface Cached {
  readonly id: string;
  readonly message: TreeMessage;
  readonly at: number;
  readonly size: number;
  /**
   * Members this member sent it to: a few, in an array of exactly that length (kept as
   * long as the message; a `Set`, or an array grown by `push`, took ~150 bytes).
   */
  sentTo: readonly string[];
  /** Whether it came close after another of its origin (see BURST_WINDOW_MS). */
  burst: boolean;
}

/** Counters of {@linkcode TreeBroadcast}, all growing from 0. */
export interface TreeCounters {
  /** Tree messages received for the first time. */
  received: number;
  /** Tree messages received again (a retransmission whose acknowledgement was lost). */
  duplicates: number;
  /** Message ids acknowledged. */
  acked: number;
  /** Copies sent again for want of an acknowledgement. */
  retransmitted: number;
  /** Copies sent to the children of a member that did not acknowledge. */
  takenOver: number;
  /** Due retransmissions held back: their member was silent and one copy went as a probe. */
  heldBack: number;
}

function idOf(origin: string, seq: number): string {
  return `${seq} ${origin}`;
}

function approxEntryBytes(e: Entry, valueBytes: (v: unknown) => number): number {
  return e.key.length + e.writer.length + 24 + (e.deleted ? 0 : valueBytes(e.value));
}

/**
 * The tree broadcast of one member (see the module). Member ids in, member ids out: the
 * caller maps them to addresses, feeds in the ring's members, and applies the entries
 * of the messages that {@linkcode TreeBroadcast.receiveTree} calls fresh.
 *
 * @example
 * ```ts
 * import { TreeBroadcast } from "./broadcast.ts";
 * const a = new TreeBroadcast("a", {}, 0);
 * a.overlay.set("b", true);
 * const sends = a.originate([], 0);
 * console.log(sends[0]?.to); // "b"
 * ```
 */
export class TreeBroadcast {
  readonly config: Readonly<TreeConfig>;
  readonly overlay: Overlay;
  readonly counters: TreeCounters = {
    received: 0,
    duplicates: 0,
    acked: 0,
    retransmitted: 0,
    takenOver: 0,
    heldBack: 0,
  };
  #seq: number;
  /**
   * Message ids seen are kept `cacheMs` after they were first seen: those of `#cache`, and
   * those it dropped sooner for its byte budget, here (one table less to fill per message).
   */
  readonly #seenOnly = new Set<string>();
  readonly #cache = new Map<string, Cached>();
  #cacheBytes = 0;
  /**
   * Messages as they were first seen, oldest first: their ids are forgotten from
   * `#seenHead` on, `#cache` drops them from `#cacheHead` on. (Iterating a `Map` from its
   * oldest entry instead skips every entry deleted since the Map last grew: O(deleted) per
   * call.)
   */
  #order: Cached[] = [];
  #seenHead = 0;
  #cacheHead = 0;
  /** Copies waiting for an acknowledgement, by `to` and message id. */
  readonly #pending = new Map<string, Pending>();
  #pendingDue = Infinity;
  /** Acknowledgements to send: member → origin → sequence numbers. */
  #acks = new Map<string, Map<string, number[]>>();
  #ackDue = Infinity;
  /** Smoothed round trip and its variation (ms), once measured. */
  #srtt: number | undefined;
  #rttvar = 0;
  /** The same for the copies of bursts (acknowledged after BURST_ACK_MS). */
  #burstSrtt: number | undefined;
  #burstRttvar = 0;
  /** The shortest round trip measured lately: the network's, without an ack's wait. */
  #minRtt = Infinity;
  /** When a message of each origin was last sent or received here. */
  readonly #lastOf = new Map<string, number>();
  /** The members copies went to lately (see {@linkcode Peer}). */
  readonly #peers = new Map<string, Peer>();
  /** When any member last acknowledged anything here. */
  #heardAt = -Infinity;
  readonly #valueBytes: (v: unknown) => number;

  constructor(
    self: string,
    config: Partial<TreeConfig>,
    now: number,
    valueBytes: (v: unknown) => number = (v) => typeof v === "string" ? v.length : 16,
  ) {
    const c = { ...DEFAULT_TREE_CONFIG };
    for (const [k, v] of Object.entries(config)) {
      if (k in c && v !== undefined) (c as Record<string, unknown>)[k] = v;
    }
    for (const [k, v] of Object.entries(c)) {
      if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) {
        throw new RangeError(`${k} must be a positive number, got ${String(v)}`);
      }
    }
    this.config = Object.freeze(c);
    this.overlay = new Overlay(self);
    this.#valueBytes = valueBytes;
    // 2,048 numbers per second of the clock, wrapping every 2^20 s (12 days): under 2^31,
    // so a number takes 5 bytes on the wire, not 9.
    this.#seq = (Math.floor(Math.max(0, now) / 1000) % 2 ** 20) * 2048 - 1;
  }

  /** The retransmission timeout now, in ms. */
  get rto(): number {
    if (this.#srtt === undefined) return this.config.retransmitMs;
    // An acknowledgement waits up to `ackDelayMs` to be batched: never expect it sooner
    // than the network's round trip plus that wait.
    const rto = Math.max(this.#srtt + 2 * this.#rttvar, this.#minRtt + this.config.ackDelayMs);
    return Math.min(MAX_RTO, Math.max(MIN_RTO, rto + MIN_RTO_MARGIN));
  }

  /** The retransmission timeout of a message of a burst, acknowledged sooner, in ms. */
  get burstRto(): number {
    if (this.#burstSrtt === undefined) {
      return Number.isFinite(this.#minRtt)
        ? Math.min(
          this.rto,
          Math.max(MIN_RTO, this.#minRtt + BURST_ACK_MS + Math.max(MIN_RTO_MARGIN, this.#minRtt)),
        )
        : this.rto;
    }
    const rto = this.#burstSrtt + Math.max(4 * this.#burstRttvar, MIN_RTO_MARGIN);
    return Math.min(
      MAX_RTO,
      Math.max(MIN_RTO, rto, this.#minRtt + BURST_ACK_MS + MIN_RTO_MARGIN),
    );
  }

  /** Whether a message of `origin` at `now` follows another closely (and notes it). */
  #inBurst(origin: string, now: number): boolean {
    const last = this.#lastOf.get(origin);
    this.#lastOf.set(origin, now);
    return last !== undefined && now - last <= BURST_WINDOW_MS;
  }

  /** Copies sent and not acknowledged yet. */
  get unacknowledged(): number {
    return this.#pending.size;
  }

  /**
   * Broadcasts `entries` from this member as one message, sent now to its children in the
   * message's tree. A `lone` message (the only one of its batch) takes the next even
   * sequence number, whose tree gives the origin 3 children; the messages of a batch take
   * numbers in a row (2 and 3 children in turn). Numbers start at 2,048 × the clock's
   * seconds at construction: a member restarted a second or more later does not reuse the
   * ids of its previous run unless that run sent over 2,048 messages a second on average
   * (a reused id costs a late delivery by anti-entropy, no loss).
   */
  originate(entries: readonly Entry[], now: number, lone = true): TreeSend[] {
    this.#seq++;
    if (lone && this.#seq % 2 !== 0) this.#seq++;
    const message: TreeMessage = {
      type: "tree",
      origin: this.overlay.self,
      seq: this.#seq,
      hop: 0,
      entries,
    };
    const id = idOf(message.origin, message.seq);
    const cached = this.#remember(id, message, now);
    cached.burst = this.#inBurst(message.origin, now);
    return this.#sendAll(cached, id, this.overlay.children(message.origin, message.seq), now);
  }

  /**
   * A tree message from member `from`. When it is new here (`fresh`), the caller applies its
   * entries; the sends forward it to this member's children in its tree.
   */
  receiveTree(from: string, m: TreeMessage, now: number): { fresh: boolean; sends: TreeSend[] } {
    const id = idOf(m.origin, m.seq);
    const burst = this.#inBurst(m.origin, now);
    this.#ack(from, m, now, burst ? BURST_ACK_MS : this.config.ackDelayMs);
    if (this.#seen(id) || m.origin === this.overlay.self) {
      this.counters.duplicates++;
      this.#ackDue = now; // its sender is retransmitting: acknowledge at once
      return { fresh: false, sends: [] };
    }
    this.counters.received++;
    const forward = { ...m, hop: Math.min(255, m.hop + 1) };
    const cached = this.#remember(id, forward, now);
    cached.burst = burst;
    cached.sentTo = [from];
    const children = this.overlay.children(m.origin, m.seq);
    return { fresh: true, sends: this.#sendAll(cached, id, children, now) };
  }

  /** An acknowledgement from `from`: its copies of those messages need no retransmission. */
  receiveIHave(from: string, m: IHaveMessage, now: number): void {
    const peer = this.#peers.get(from);
    this.#heardAt = now;
    if (peer) {
      // Heard: alive. Its answer may be late, not a loss: the backoff comes down by half.
      peer.heardAt = now;
      peer.silentRounds = 0;
      peer.backoff = Math.max(1, peer.backoff / 2);
    }
    for (const seq of m.seqs) {
      const key = `${from}\n${idOf(m.origin, seq)}`;
      const p = this.#pending.get(key);
      if (!p) continue;
      this.#pending.delete(key);
      if (p.attempts === 0) this.#measure(now - p.sentAt, this.#cache.get(p.id)?.burst === true);
    }
  }

  /** The retransmission timeout of copies to `to` now (its backoff included), in ms. */
  rtoOf(to: string, burst = false): number {
    const base = burst ? this.burstRto : this.rto;
    return Math.min(MAX_RTO, base * (this.#peers.get(to)?.backoff ?? 1));
  }

  #peer(id: string): Peer {
    let peer = this.#peers.get(id);
    if (!peer) {
      this.#peers.set(
        id,
        peer = {
          heardAt: -Infinity,
          backoff: 1,
          silentRounds: 0,
          probeUntil: -Infinity,
        },
      );
    }
    return peer;
  }

  /** Due work: retransmissions and batched acknowledgements. */
  tick(now: number): TreeSend[] {
    const sends: TreeSend[] = [];
    if (now >= this.#pendingDue) {
      let due = Infinity;
      const retry: Pending[] = [];
      for (const p of this.#pending.values()) {
        if (p.deadline <= now || p.echoAt <= now) retry.push(p);
        else due = Math.min(due, p.deadline, p.echoAt);
      }
      this.#pendingDue = due;
      // Random loss leaves some copies unacknowledged; an overload delays this member's own
      // timers too: the retransmissions come due long after their time.
      let first = Infinity;
      for (const p of retry) first = Math.min(first, p.deadline);
      const congested = retry.length > CONGESTED / 4 && now - first > this.rto;
      // A member silent since a copy went to it gets one copy again this tick, a probe; its
      // other due copies wait for the probe's answer (see the module: congestion control).
      let sent = 0;
      for (const p of retry) {
        if (p.echoAt <= now) {
          sends.push(...this.#retry(p, now, congested));
          continue;
        }
        const peer = this.#peer(p.to);
        const silent = peer.heardAt < p.lastSentAt && this.overlay.has(p.to);
        const probe = silent && peer.probeUntil <= now;
        const alone = congested || this.#heardAt < p.lastSentAt;
        if (silent && !probe && alone) {
          // A probe is under way: wait for its answer (a round counts as an attempt).
          this.counters.heldBack++;
          if (p.attempts + ++p.held >= MAX_ATTEMPTS) {
            this.#pending.delete(`${p.to}\n${p.id}`); // anti-entropy will bring it
            continue;
          }
          p.deadline = peer.probeUntil;
          p.echoAt = Infinity;
          this.#pendingDue = Math.min(this.#pendingDue, p.deadline);
          if (this.#gone(p, peer)) sends.push(...this.#takeOver(p, now));
          continue;
        }
        if (congested && sent >= CONGESTED) {
          // Later: retransmitting adds to an overload.
          p.deadline = now + this.rtoOf(p.to);
          p.echoAt = Infinity;
          this.#pendingDue = Math.min(this.#pendingDue, p.deadline);
          continue;
        }
        if (probe) peer.silentRounds++;
        sent++;
        sends.push(...this.#retry(p, now, congested));
        if (probe) {
          peer.probeUntil = p.deadline;
          // Nobody answered either: late, not lost. Its next timeout doubles (Karn's backoff).
          if (alone) peer.backoff = Math.min(MAX_BACKOFF, peer.backoff * 2);
        }
      }
    }
    if (now >= this.#ackDue) {
      const acks = this.#acks;
      this.#acks = new Map();
      this.#ackDue = Infinity;
      for (const [to, byOrigin] of acks) {
        for (const [origin, list] of byOrigin) {
          const seqs = list.length === 1 ? list : [...new Set(list)].sort((a, b) => a - b);
          for (let i = 0; i < seqs.length; i += MAX_SEQS) {
            const part = seqs.length <= MAX_SEQS ? seqs : seqs.slice(i, i + MAX_SEQS);
            this.counters.acked += part.length;
            sends.push({ to, message: { type: "ihave", origin, hop: 0, seqs: part } });
          }
        }
      }
    }
    this.#expire(now);
    return sends;
  }

  /** When {@linkcode TreeBroadcast.tick} next has work to do (Infinity: nothing pending). */
  nextWakeAt(): number {
    return Math.min(this.#pendingDue, this.#ackDue);
  }

  #ack(to: string, m: TreeMessage, now: number, delay: number): void {
    if (to === this.overlay.self) return;
    let byOrigin = this.#acks.get(to);
    if (!byOrigin) this.#acks.set(to, byOrigin = new Map());
    const seqs = byOrigin.get(m.origin);
    if (seqs) seqs.push(m.seq);
    else byOrigin.set(m.origin, [m.seq]);
    this.#ackDue = Math.min(this.#ackDue, now + delay);
  }

  /** Jacobson's estimator (RFC 6298), one for lone messages, one for bursts: a sample, in ms. */
  #measure(sample: number, burst: boolean): void {
    // The minimum follows a longer round trip slowly (a route that changed).
    this.#minRtt = sample < this.#minRtt ? sample : this.#minRtt + (sample - this.#minRtt) / 64;
    if (burst) {
      if (this.#burstSrtt === undefined) {
        this.#burstSrtt = sample;
        this.#burstRttvar = sample / 4;
      } else {
        this.#burstRttvar = 0.75 * this.#burstRttvar + 0.25 * Math.abs(this.#burstSrtt - sample);
        this.#burstSrtt = 0.875 * this.#burstSrtt + 0.125 * sample;
      }
    } else if (this.#srtt === undefined) {
      this.#srtt = sample;
      this.#rttvar = sample / 4;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - sample);
      this.#srtt = 0.875 * this.#srtt + 0.125 * sample;
    }
  }

  /** Sends the cached message to each of `to` not sent to yet, awaiting acknowledgements. */
  #sendAll(cached: Cached, id: string, to: readonly string[], now: number): TreeSend[] {
    const sends: TreeSend[] = [];
    const self = this.overlay.self;
    let deadline = NaN;
    for (const t of to) {
      if (t === self || t === cached.message.origin || cached.sentTo.includes(t)) continue;
      cached.sentTo = cached.sentTo.concat(t);
      sends.push({ to: t, message: cached.message });
      if (this.#pending.size >= MAX_PENDING) continue;
      if (Number.isNaN(deadline)) deadline = now + (cached.burst ? this.burstRto : this.rto);
      this.#peer(t);
      this.#pending.set(`${t}\n${id}`, {
        to: t,
        id,
        message: cached.message,
        sentAt: now,
        lastSentAt: now,
        deadline,
        attempts: 0,
        held: 0,
        echoAt: Infinity,
      });
      this.#pendingDue = Math.min(this.#pendingDue, deadline);
    }
    return sends;
  }

  /** A copy not acknowledged in time: send it again, or to whom the tree now names. */
  #retry(p: Pending, now: number, congested: boolean): TreeSend[] {
    if (p.echoAt <= now) {
      p.echoAt = Infinity;
      this.#pendingDue = Math.min(this.#pendingDue, p.deadline);
      return [{ to: p.to, message: p.message }];
    }
    const key = `${p.to}\n${p.id}`;
    const { origin, seq } = p.message;
    const cached = this.#cache.get(p.id);
    if (!this.overlay.has(p.to)) {
      // Gone from the ring: the tree over the members left names who gets it instead.
      this.#pending.delete(key);
      return cached ? this.#sendAll(cached, p.id, this.overlay.children(origin, seq), now) : [];
    }
    if (p.attempts + 1 >= MAX_ATTEMPTS) {
      this.#pending.delete(key); // anti-entropy will bring it
      return [];
    }
    p.attempts++;
    p.lastSentAt = now;
    // Losses are mostly random: a few tries one timeout apart; then back off, in case the
    // link or the member is overloaded, not lossy (the retransmissions would add to it).
    const rto = cached?.burst ? this.burstRto : this.rto;
    const steady = congested ? 0 : STEADY_ATTEMPTS;
    const backoff = Math.max(this.#peer(p.to).backoff, 2 ** Math.max(0, p.attempts - steady));
    p.deadline = now + Math.min(MAX_RTO, rto * backoff);
    this.#pendingDue = Math.min(this.#pendingDue, p.deadline);
    this.counters.retransmitted++;
    const peer = this.#peer(p.to);
    // Its children are taken over once it has been silent long enough to be gone, not
    // merely slow (a takeover costs up to 2 copies, each awaiting an acknowledgement).
    const takeover = p.attempts >= TAKEOVER_ATTEMPTS && this.#gone(p, peer);
    const sends: TreeSend[] = [{ to: p.to, message: p.message }];
    // Sent twice, ECHO_MS apart (two datagrams): a link that lost a copy is likely lossy,
    // and each further loss would cost another timeout.
    if (!congested) {
      p.echoAt = now + ECHO_MS;
      this.#pendingDue = Math.min(this.#pendingDue, p.echoAt);
    }
    if (takeover) sends.push(...this.#takeOver(p, now));
    return sends;
  }

  /**
   * Whether the member of `p` seems gone, not slow: silent since `p` was sent, through a
   * round while others answered since (a partition, a crash), or through
   * {@linkcode TAKEOVER_ROUNDS} rounds (when nobody answers, this member is the slow one).
   */
  #gone(p: Pending, peer: Peer): boolean {
    if (peer.heardAt >= p.sentAt || peer.silentRounds === 0) return false;
    return peer.silentRounds >= TAKEOVER_ROUNDS || this.#heardAt > p.sentAt;
  }

  /** Sends `p`'s message to the children of its silent member (once). */
  #takeOver(p: Pending, now: number): TreeSend[] {
    const cached = this.#cache.get(p.id);
    if (p.takenOver || !cached) return [];
    // Silent for rounds: it may be gone. Its children should not wait for SWIM to say so.
    p.takenOver = true;
    const { origin, seq } = p.message;
    const sends = this.#sendAll(cached, p.id, this.overlay.children(origin, seq, p.to), now);
    this.counters.takenOver += sends.length;
    return sends;
  }

  /** Whether message `id` was seen within `cacheMs`. */
  #seen(id: string): boolean {
    return this.#cache.has(id) || this.#seenOnly.has(id);
  }

  #remember(id: string, m: TreeMessage, now: number): Cached {
    let size = 32;
    for (const e of m.entries) size += approxEntryBytes(e, this.#valueBytes);
    const cached: Cached = { id, message: m, at: now, size, sentTo: [], burst: false };
    this.#cache.set(id, cached);
    this.#order.push(cached);
    this.#cacheBytes += size;
    this.#expire(now);
    return cached;
  }

  /** Forgets cached messages past `cacheMs` or the byte budget, and ids past `cacheMs`. */
  #expire(now: number): void {
    const horizon = now - this.config.cacheMs;
    const order = this.#order;
    while (this.#seenHead < order.length) {
      const c = order[this.#seenHead]!;
      if (c.at > horizon) break;
      this.#seenOnly.delete(c.id);
      this.#seenHead++;
    }
    while (this.#cacheHead < order.length) {
      const c = order[this.#cacheHead]!;
      if (c.at > horizon && this.#cacheBytes <= this.config.cacheBytes) break;
      if (this.#cache.get(c.id) === c) {
        this.#cache.delete(c.id);
        this.#cacheBytes -= c.size;
        // Dropped before its id is forgotten (the byte budget): its id stays seen.
        if (this.#cacheHead >= this.#seenHead) this.#seenOnly.add(c.id);
      }
      this.#cacheHead++;
    }
    const head = Math.min(this.#cacheHead, this.#seenHead);
    if (head > 1024 && head * 2 > order.length) {
      this.#order = order.slice(head);
      this.#cacheHead -= head;
      this.#seenHead -= head;
    }
    if (this.#peers.size > 2 * this.overlay.size + 16) {
      for (const id of this.#peers.keys()) if (!this.overlay.has(id)) this.#peers.delete(id);
    }
    if (this.#lastOf.size > 2 * this.overlay.size + 16) {
      // Origins that left: forget those quiet for longer than a burst's window.
      for (const [origin, at] of this.#lastOf) {
        if (now - at > BURST_WINDOW_MS) this.#lastOf.delete(origin);
      }
    }
  }
}
