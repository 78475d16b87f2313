/**
 * Broadcast along a tree: epidemic broadcast trees (Plumtree, Leitão, Pereira and
 * Rodrigues, SRDS 2007) over an overlay derived from the member list.
 *
 * - **Overlay.** Every member places the members it holds alive in `rings` rings, each
 *   ordered by a different hash of the member ids, and takes as neighbours its predecessor
 *   and successor in each ring. Every member that holds the same member list derives the
 *   same graph: symmetric (a neighbour's neighbour list includes us), of degree at most
 *   2 × `rings` whoever joined through whom, connected (each ring alone is), and with a
 *   diameter close to that of a random regular graph (about log N / log(2·rings − 1)).
 *   It is repaired as members come and go: only the ring neighbours of a member change.
 * - **Eager push along a tree.** A message goes at once to the *eager* neighbours, and each
 *   member forwards it on first receipt to its own eager neighbours but the sender. A member
 *   that receives a message twice tells the second sender to `prune` (that link turns *lazy*),
 *   so the eager links shrink to a spanning tree: each member receives each message about
 *   once. Each origin has its own tree (prunes and grafts name it), so that concurrent writers
 *   do not prune each other's links; an origin's tree starts as a copy of the shared one,
 *   which every origin's prunes and grafts shape, and where every neighbour starts eager.
 * - **Lazy announcements.** To its lazy neighbours a member sends, `lazyDelayMs` later and
 *   batched, only the ids it received (`ihave`); to its eager ones the same, `safetyDelayMs`
 *   later, in case its copy was lost. A member that hears of a message it does not get
 *   within `graftTimeoutMs`, or sees a gap in an origin's numbering, asks a member that has
 *   it (`graft`), which also turns that link eager again: a lost message, a departed member
 *   or a new member repair the tree where it broke.
 *
 * The state machine is pure: it takes `now` and returns what to send, to member ids.
 *
 * @module
 */

import { hashString } from "./hash.ts";
import type { GraftMessage, IHaveMessage, PruneMessage, TreeMessage } from "./messages.ts";
import type { Entry } from "./store.ts";

/** Tuning of {@linkcode TreeBroadcast}. */
export interface TreeConfig {
  /** Rings of the overlay: each member has at most twice as many neighbours. Default 4. */
  readonly rings: number;
  /** How long announcements wait, to travel after the eager copies and batched, in ms. */
  readonly lazyDelayMs: number;
  /**
   * How long announcements to eager neighbours wait, in ms: a safety net for copies lost on
   * the tree, where gaps in an origin's numbering do not show them (its last message).
   */
  readonly safetyDelayMs: number;
  /** How long a member waits for an announced message before grafting, in ms. */
  readonly graftTimeoutMs: number;
  /** How long a message is kept to answer grafts, and its id to detect duplicates, in ms. */
  readonly cacheMs: number;
  /** Bytes (roughly) of messages kept to answer grafts at most. */
  readonly cacheBytes: number;
}

/** Defaults of {@linkcode TreeConfig}. */
export const DEFAULT_TREE_CONFIG: Readonly<TreeConfig> = Object.freeze({
  rings: 4,
  lazyDelayMs: 50,
  safetyDelayMs: 250,
  graftTimeoutMs: 10,
  cacheMs: 30_000,
  cacheBytes: 8 * 1024 * 1024,
});

/** Graft attempts for one missing message (rotating over its announcers) before giving up. */
const MAX_GRAFTS = 40;
/** Attempts made at twice the graft timeout; the later ones wait ten times as long. */
const QUICK_GRAFTS = 8;
/** Skipped messages of one origin asked for at most, when a later one arrives. */
const MAX_GAP = 256;
/** Sequence numbers in one `ihave` or `graft` at most (the codec's bound). */
const MAX_SEQS = 4096;

/** A tree protocol message for the member with id `to`. */
export interface TreeSend {
  readonly to: string;
  readonly message: TreeMessage | IHaveMessage | GraftMessage | PruneMessage;
}

interface RingSlot {
  readonly key: number;
  readonly id: string;
}

function before(a: RingSlot, b: RingSlot): boolean {
  return a.key < b.key || (a.key === b.key && a.id < b.id);
}

/** The ring slot of `id` in ring `r`: its position is a hash of the id, seeded by `r`. */
function slot(id: string, r: number): RingSlot {
  return { key: hashString(id, 0x5bd1e995 ^ Math.imul(r + 1, 0x9e3779b1)), id };
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

/**
 * The overlay of one member: the members it holds alive, placed on `rings` hash rings;
 * its neighbours are its predecessor and successor on each. Updates are O(N) memory moves
 * (a splice), reads O(rings · log N).
 *
 * @example
 * ```ts
 * import { Overlay } from "./broadcast.ts";
 * const o = new Overlay("a", 3);
 * for (const id of ["b", "c", "d", "e", "f", "g", "h", "i"]) o.set(id, true);
 * console.log(o.neighbors().length <= 6); // true
 * ```
 */
export class Overlay {
  readonly self: string;
  readonly #rings: RingSlot[][];
  readonly #members = new Set<string>();
  #neighbors: string[] | undefined;
  #version = 0;

  constructor(self: string, rings: number) {
    if (!Number.isInteger(rings) || rings < 1) {
      throw new RangeError("rings must be a positive integer");
    }
    this.self = self;
    this.#rings = Array.from({ length: rings }, () => []);
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

  /** Whether `id` is placed on the rings. */
  has(id: string): boolean {
    return this.#members.has(id);
  }

  /** Places (`present`) or removes member `id`; whether anything changed. Self stays. */
  set(id: string, present: boolean): boolean {
    if (id === this.self && !present) return false;
    if (this.#members.has(id) === present) return false;
    if (present) this.#members.add(id);
    else this.#members.delete(id);
    this.#rings.forEach((ring, r) => {
      const s = slot(id, r);
      const i = lowerBound(ring, s);
      if (present) ring.splice(i, 0, s);
      else if (ring[i]?.id === id) ring.splice(i, 1);
    });
    this.#neighbors = undefined;
    this.#version++;
    return true;
  }

  /** The neighbours of this member: predecessor and successor on every ring, deduplicated. */
  neighbors(): readonly string[] {
    if (this.#neighbors) return this.#neighbors;
    const out = new Set<string>();
    this.#rings.forEach((ring, r) => {
      const n = ring.length;
      if (n < 2) return;
      const i = lowerBound(ring, slot(this.self, r));
      out.add(ring[(i + n - 1) % n]!.id);
      out.add(ring[(i + 1) % n]!.id);
    });
    out.delete(this.self);
    return this.#neighbors = [...out];
  }
}

/** Announcements waiting to be sent, batched per peer and origin, due `delay` after the first. */
class AnnounceQueue {
  #queue = new Map<string, Map<string, { hop: number; seqs: Set<number> }>>();
  due = Infinity;

  constructor(readonly delay: number) {}

  add(to: string, m: TreeMessage, now: number): void {
    let byOrigin = this.#queue.get(to);
    if (!byOrigin) this.#queue.set(to, byOrigin = new Map());
    const pending = byOrigin.get(m.origin);
    if (pending) {
      pending.seqs.add(m.seq);
      pending.hop = Math.min(pending.hop, m.hop);
    } else byOrigin.set(m.origin, { hop: m.hop, seqs: new Set([m.seq]) });
    if (this.due === Infinity) this.due = now + this.delay;
  }

  /** `to` has message `seq` of `origin`: no need to announce it there. */
  drop(to: string, origin: string, seq: number): void {
    this.#queue.get(to)?.get(origin)?.seqs.delete(seq);
  }

  /** The announcements due at `now`, as `ihave` messages. */
  take(now: number, counters: TreeCounters): TreeSend[] {
    if (now < this.due) return [];
    const queue = this.#queue;
    this.#queue = new Map();
    this.due = Infinity;
    const sends: TreeSend[] = [];
    for (const [to, byOrigin] of queue) {
      for (const [origin, { hop, seqs: set }] of byOrigin) {
        const seqs = [...set].sort((a, b) => a - b);
        for (let i = 0; i < seqs.length; i += MAX_SEQS) {
          const part = seqs.slice(i, i + MAX_SEQS);
          counters.announced += part.length;
          sends.push({ to, message: { type: "ihave", origin, hop, seqs: part } });
        }
      }
    }
    return sends;
  }
}

interface Links {
  readonly eager: Set<string>;
  readonly lazy: Set<string>;
  /** When a message of the origin last came through (for forgetting quiet origins). */
  used: number;
}

interface Missing {
  readonly origin: string;
  readonly seq: number;
  readonly announcers: string[];
  deadline: number;
  attempts: number;
}

interface Cached {
  readonly message: TreeMessage;
  readonly at: number;
  readonly size: number;
}

/** Counters of {@linkcode TreeBroadcast}, all growing from 0. */
export interface TreeCounters {
  /** Tree messages received for the first time. */
  received: number;
  /** Tree messages received again (each answered by a prune, sent with the next batch). */
  duplicates: number;
  /** Grafts sent (one per missing message per attempt). */
  grafts: number;
  /** Tree messages resent in answer to a graft. */
  graftsAnswered: number;
  /** Prunes sent. */
  prunes: number;
  /** Message ids announced lazily. */
  announced: number;
}

function idOf(origin: string, seq: number): string {
  return `${seq} ${origin}`;
}

function approxEntryBytes(e: Entry, valueBytes: (v: unknown) => number): number {
  return e.key.length + e.writer.length + 24 + (e.deleted ? 0 : valueBytes(e.value));
}

/**
 * The tree broadcast of one member (see the module). Member ids in, member ids out: the
 * caller maps them to addresses, feeds in the overlay's members, and applies the entries
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
    grafts: 0,
    graftsAnswered: 0,
    prunes: 0,
    announced: 0,
  };
  /** The links of the tree every new origin starts from (Plumtree's shared tree). */
  readonly #shared: Links = { eager: new Set(), lazy: new Set(), used: 0 };
  #nextSweep = 0;
  /** Each origin's own tree: pruned and grafted by its messages only. */
  readonly #byOrigin = new Map<string, Links>();
  #known = new Set<string>();
  #overlayVersion = -1;
  #seq = 0;
  /** Message ids seen → when first seen (insertion order is time order). */
  readonly #seen = new Map<string, number>();
  readonly #cache = new Map<string, Cached>();
  #cacheBytes = 0;
  readonly #missing = new Map<string, Missing>();
  #missingDue = Infinity;
  /** Announcements to lazy neighbours (`lazyDelayMs`). */
  readonly #lazyQueue: AnnounceQueue;
  /** The same to eager neighbours, later (`safetyDelayMs`): a safety net for lost copies. */
  readonly #safetyQueue: AnnounceQueue;
  /** Highest sequence number received from each origin, to notice a message skipped. */
  readonly #highest = new Map<string, number>();
  readonly #prunedAt = new Map<string, number>();
  /** Prunes waiting to be sent: neighbour → origins. */
  readonly #prunes = new Map<string, Set<string>>();
  #pruneDue = Infinity;
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
    this.overlay = new Overlay(self, c.rings);
    this.#valueBytes = valueBytes;
    this.#lazyQueue = new AnnounceQueue(c.lazyDelayMs);
    this.#safetyQueue = new AnnounceQueue(c.safetyDelayMs);
    // 2,048 numbers per second of the clock, wrapping every 2^20 s (12 days): under 2^31,
    // so a number takes 5 bytes on the wire, not 9.
    this.#seq = (Math.floor(Math.max(0, now) / 1000) % 2 ** 20) * 2048 - 1;
  }

  /** Neighbours this member pushes to eagerly. */
  get eager(): ReadonlySet<string> {
    this.#refresh();
    return this.#shared.eager;
  }

  /** Neighbours this member only announces to. */
  get lazy(): ReadonlySet<string> {
    this.#refresh();
    return this.#shared.lazy;
  }

  /**
   * Broadcasts `entries` from this member as one message: sent now to the eager neighbours,
   * announced later to the lazy ones. Sequence numbers grow by one from 2,048 × the clock's
   * seconds at construction (a member restarted a second or more later does not reuse the
   * ids of its previous run unless that run sent over 2,048 messages a second on average;
   * a reused id costs a late delivery by anti-entropy, no loss), so a receiver notices a
   * message it skipped.
   */
  originate(entries: readonly Entry[], now: number): TreeSend[] {
    this.#refresh();
    this.#seq++;
    const message: TreeMessage = {
      type: "tree",
      origin: this.overlay.self,
      seq: this.#seq,
      hop: 0,
      entries,
    };
    this.#remember(idOf(message.origin, message.seq), message, now);
    return this.#push(message, undefined, now);
  }

  /**
   * A tree message from member `from`. When it is new here (`fresh`), the caller applies its
   * entries; the sends forward it. When it is a duplicate, the sends prune the link.
   */
  receiveTree(from: string, m: TreeMessage, now: number): { fresh: boolean; sends: TreeSend[] } {
    this.#refresh();
    const id = idOf(m.origin, m.seq);
    if (this.#seen.has(id) || m.origin === this.overlay.self) {
      this.counters.duplicates++;
      this.#lazyQueue.drop(from, m.origin, m.seq); // it has it
      this.#safetyQueue.drop(from, m.origin, m.seq);
      this.#toLazy(m.origin, from);
      // Prunes wait for the next batch of announcements (one datagram per neighbour): the
      // copies already in flight would come all the same.
      const key = `${m.origin} ${from}`;
      const last = this.#prunedAt.get(key);
      if (last === undefined || now - last >= 2 * this.config.lazyDelayMs) {
        this.#prunedAt.set(key, now);
        let origins = this.#prunes.get(from);
        if (!origins) this.#prunes.set(from, origins = new Set());
        origins.add(m.origin);
        if (this.#pruneDue === Infinity) this.#pruneDue = now + this.config.lazyDelayMs;
      }
      return { fresh: false, sends: [] };
    }
    this.counters.received++;
    this.#missing.delete(id);
    this.#remember(id, m, now);
    const highest = this.#highest.get(m.origin);
    if (highest === undefined || m.seq > highest) {
      this.#highest.set(m.origin, m.seq);
      // Messages of one origin are numbered in a row: ask the sender for those skipped.
      if (highest !== undefined) {
        for (let seq = Math.max(highest + 1, m.seq - MAX_GAP); seq < m.seq; seq++) {
          this.#expect(m.origin, seq, from, now);
        }
      }
    }
    this.#toEager(m.origin, from);
    return { fresh: true, sends: this.#push({ ...m, hop: Math.min(255, m.hop + 1) }, from, now) };
  }

  /** An announcement from `from`: messages not seen here are grafted if they do not come. */
  receiveIHave(from: string, m: IHaveMessage, now: number): void {
    this.#refresh();
    for (const seq of m.seqs) {
      this.#lazyQueue.drop(from, m.origin, seq); // it has it: no need to announce it there
      this.#safetyQueue.drop(from, m.origin, seq);
      this.#expect(m.origin, seq, from, now);
    }
    // Messages of one origin are numbered in a row: those between the highest received
    // here and the first announced exist too (the announcer has them, or will graft them).
    const highest = this.#highest.get(m.origin);
    const first = m.seqs[0]!;
    if (highest !== undefined && first > highest + 1) {
      for (let seq = Math.max(highest + 1, first - MAX_GAP); seq < first; seq++) {
        this.#expect(m.origin, seq, from, now);
      }
    }
  }

  /** Message `seq` of `origin` exists and `from` has it: graft it if it does not come. */
  #expect(origin: string, seq: number, from: string, now: number): void {
    const id = idOf(origin, seq);
    if (this.#seen.has(id) || origin === this.overlay.self) return;
    const missing = this.#missing.get(id);
    if (missing) {
      if (!missing.announcers.includes(from)) missing.announcers.push(from);
      return;
    }
    const deadline = now + this.config.graftTimeoutMs;
    this.#missing.set(id, { origin, seq, announcers: [from], deadline, attempts: 0 });
    this.#missingDue = Math.min(this.#missingDue, deadline);
  }

  /** A graft from `from`: push to it eagerly again, and resend what it asks for that we hold. */
  receiveGraft(from: string, m: GraftMessage, _now: number): TreeSend[] {
    this.#refresh();
    this.#toEager(m.origin, from);
    const sends: TreeSend[] = [];
    for (const seq of m.seqs) {
      const cached = this.#cache.get(idOf(m.origin, seq));
      if (!cached) continue;
      this.counters.graftsAnswered++;
      const message = { ...cached.message, hop: Math.min(255, cached.message.hop + 1) };
      sends.push({ to: from, message });
    }
    return sends;
  }

  /** A prune from `from`: only announce `origin`'s messages to it from now on. */
  receivePrune(from: string, origin: string): void {
    this.#refresh();
    this.#toLazy(origin, from);
  }

  /** The links of `origin`'s tree; a new origin starts from the shared tree. */
  #links(origin: string): Links {
    let links = this.#byOrigin.get(origin);
    if (!links) {
      links = { eager: new Set(this.#shared.eager), lazy: new Set(this.#shared.lazy), used: 0 };
      this.#byOrigin.set(origin, links);
    }
    return links;
  }

  /** Puts the link to `id` on `origin`'s tree, and on the shared one. */
  #toEager(origin: string, id: string): void {
    if (!this.#known.has(id)) return;
    for (const links of [this.#links(origin), this.#shared]) {
      links.eager.add(id);
      links.lazy.delete(id);
    }
  }

  /** Takes the link to `id` off `origin`'s tree, and off the shared one. */
  #toLazy(origin: string, id: string): void {
    for (const links of [this.#links(origin), this.#shared]) {
      if (links.eager.delete(id) && this.#known.has(id)) links.lazy.add(id);
    }
  }

  /** Due work: grafts for messages announced but not received, and batched announcements. */
  tick(now: number): TreeSend[] {
    this.#refresh();
    const sends: TreeSend[] = [];
    if (now >= this.#missingDue) {
      const grafts = new Map<string, Map<string, number[]>>();
      let due = Infinity;
      for (const [id, m] of this.#missing) {
        if (m.deadline > now) {
          due = Math.min(due, m.deadline);
          continue;
        }
        if (m.attempts >= MAX_GRAFTS) {
          this.#missing.delete(id); // anti-entropy will bring it
          continue;
        }
        const to = m.announcers[m.attempts % m.announcers.length]!;
        m.attempts++;
        // A graft takes a round trip: wait longer than the first time before the next, and
        // longer still after a few (a lossy stretch; anti-entropy may bring it meanwhile).
        m.deadline = now + (m.attempts <= QUICK_GRAFTS ? 2 : 10) * this.config.graftTimeoutMs;
        due = Math.min(due, m.deadline);
        let byOrigin = grafts.get(to);
        if (!byOrigin) grafts.set(to, byOrigin = new Map());
        let seqs = byOrigin.get(m.origin);
        if (!seqs) byOrigin.set(m.origin, seqs = []);
        seqs.push(m.seq);
      }
      this.#missingDue = due;
      for (const [to, byOrigin] of grafts) {
        for (const [origin, seqs] of byOrigin) {
          this.#toEager(origin, to);
          seqs.sort((a, b) => a - b);
          for (let i = 0; i < seqs.length; i += MAX_SEQS) {
            this.counters.grafts += Math.min(MAX_SEQS, seqs.length - i);
            sends.push({
              to,
              message: { type: "graft", origin, seqs: seqs.slice(i, i + MAX_SEQS) },
            });
          }
        }
      }
    }
    if (now >= this.#nextSweep) {
      // Once a second: forget prune timestamps past their timeout, and the trees of origins
      // quiet for `cacheMs` (their next message starts from the shared tree again).
      this.#nextSweep = now + 1000;
      for (const [key, at] of this.#prunedAt) {
        if (now - at >= 2 * this.config.lazyDelayMs) this.#prunedAt.delete(key);
      }
      for (const [origin, links] of this.#byOrigin) {
        if (now - links.used >= this.config.cacheMs) this.#byOrigin.delete(origin);
      }
    }
    if (now >= this.#pruneDue || now >= this.#lazyQueue.due) {
      for (const [to, origins] of this.#prunes) {
        for (const origin of origins) {
          this.counters.prunes++;
          sends.push({ to, message: { type: "prune", origin } });
        }
      }
      this.#prunes.clear();
      this.#pruneDue = Infinity;
    }
    sends.push(...this.#lazyQueue.take(now, this.counters));
    sends.push(...this.#safetyQueue.take(now, this.counters));
    this.#expire(now);
    return sends;
  }

  /** When {@linkcode TreeBroadcast.tick} next has work to do (Infinity: nothing pending). */
  nextWakeAt(): number {
    return Math.min(this.#missingDue, this.#lazyQueue.due, this.#safetyQueue.due, this.#pruneDue);
  }

  /** Messages announced to this member and not received yet. */
  get missing(): number {
    return this.#missing.size;
  }

  /** Takes neighbour changes from the overlay: new neighbours start eager. */
  #refresh(): void {
    if (this.#overlayVersion === this.overlay.version) return;
    this.#overlayVersion = this.overlay.version;
    const now = new Set(this.overlay.neighbors());
    for (const id of now) {
      if (this.#known.has(id)) continue;
      // A new neighbour starts eager on the shared tree (the next new origin's message
      // reaches it at once, and the first duplicate prunes the link if the tree does not
      // need it) and lazy on the trees of origins already heard (it grafts what it needs).
      this.#shared.eager.add(id);
      for (const links of this.#byOrigin.values()) links.lazy.add(id);
    }
    for (const id of this.#known) {
      if (now.has(id)) continue;
      for (const links of [this.#shared, ...this.#byOrigin.values()]) {
        links.eager.delete(id);
        links.lazy.delete(id);
      }
    }
    this.#known = now;
  }

  /** Sends `m` to the eager neighbours but `from`, and queues its id for the lazy ones. */
  #push(m: TreeMessage, from: string | undefined, now: number): TreeSend[] {
    const sends: TreeSend[] = [];
    const links = this.#links(m.origin);
    links.used = now;
    for (const to of links.eager) {
      if (to === from) continue;
      sends.push({ to, message: m });
      // Datagrams get lost: announce it there too, later, in case this copy was.
      this.#safetyQueue.add(to, m, now);
    }
    for (const to of links.lazy) if (to !== from) this.#lazyQueue.add(to, m, now);
    return sends;
  }

  #remember(id: string, m: TreeMessage, now: number): void {
    this.#seen.set(id, now);
    let size = 32;
    for (const e of m.entries) size += approxEntryBytes(e, this.#valueBytes);
    this.#cache.set(id, { message: m, at: now, size });
    this.#cacheBytes += size;
    this.#expire(now);
  }

  /** Forgets cached messages past `cacheMs` or the byte budget, and ids past `cacheMs`. */
  #expire(now: number): void {
    const horizon = now - this.config.cacheMs;
    for (const [id, c] of this.#cache) {
      if (c.at > horizon && this.#cacheBytes <= this.config.cacheBytes) break;
      this.#cache.delete(id);
      this.#cacheBytes -= c.size;
    }
    for (const [id, at] of this.#seen) {
      if (at > horizon) break;
      this.#seen.delete(id);
    }
  }
}
