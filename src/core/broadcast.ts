/**
 * Broadcast along a tree derived from the member list, a different tree for every message,
 * with acknowledgements and retransmission on each of its links.
 *
 * - **Ring.** Every member places the members it holds alive on a ring, ordered by a hash
 *   of their ids. Every member that holds the same member list holds the same ring; a
 *   member joining or leaving moves no other member on it.
 * - **A tree per message.** Message `seq` of member `origin` starts the ring at a point
 *   hashed from `(origin, seq)`: the other members, in ring order from that point, form a
 *   row. A lone message (the only one its origin sent in a turn) takes a number divisible
 *   by 4, the messages of a batch the other numbers ({@linkcode batched}): every member
 *   tells them apart by the number alone. The origin splits the row into 3 consecutive
 *   parts for a lone message (2 for one of a batch) and sends the message to the first
 *   member of each part; a member that receives it finds its own part by the same splits,
 *   computed from its own member list, and splits the rest of its part in 2 (3 for a
 *   batch's message) likewise. A lone message's origin sends it to 3 members, its relays to
 *   2 at most: `1 + ⌊log2(N/3)⌋` hops to the last member; a batch's origin to 2, its relays
 *   to 3: about `1 + log3(N/2)` hops. As the starting point moves from message to message,
 *   so do the members inside the tree: a burst's relaying is spread over all members.
 * - **Acknowledgement and retransmission.** A member acknowledges every copy it receives
 *   to its sender with an `ihave`, batched: `ackDelayMs` later for a lone message, 2 ms
 *   for a batch's, at once for a duplicate or a late copy (below: its sender is
 *   retransmitting); a lone message's twice for a while after such a copy (a loss seen:
 *   {@linkcode LOSS_MEMORY_MS}), since a lost acknowledgement costs two copies, and the
 *   answer to such a copy {@linkcode LOSSY_ACK_COPIES} times. The `ihave`'s `hop` is the
 *   wait it was meant to have, so the sender measures the network's own round trip
 *   (Jacobson's estimator; Karn's rule: retransmitted copies are not measured) and adds the
 *   wait a copy's acknowledgement will have. It retransmits an unacknowledged copy after
 *   that timeout, twice ({@linkcode ECHO_MS} apart: a link that lost a copy is likely
 *   lossy), backing off after {@linkcode STEADY_ATTEMPTS}, at most {@linkcode MAX_ATTEMPTS}
 *   times; after {@linkcode TAKEOVER_ATTEMPTS} it also takes over the members the silent
 *   one would have sent to, and a member removed from the ring is replaced by those the
 *   tree now names.
 * - **A takeover handed on.** The members taken over for a batch's message are handed to
 *   members known to have it (the one it came from, those that acknowledged it; never the
 *   origin), the one with the fewest copies of it to send first, by a `relay` each, about 30
 *   bytes instead of a copy: they send their copies (and retransmit them), so a burst's
 *   writer does not send its silent children's whole parts again. A lone message's, and
 *   with nobody known to have it, go from here (a relay's copy comes a hop later).
 * - **Late copies.** A copy sent again for a loss carries `hop` + 2 (a timeout is about
 *   two hops); a member whose copy's `hop` is at least its own depth in the message's tree
 *   knows it is late, and sends it on twice to each child ({@linkcode ECHO_MS} apart), and
 *   so does the subtree below: the members already behind by a timeout are the last ones,
 *   and a second loss on their way would cost another. The rest of the tree sends once.
 *   A lost copy so costs one timeout, rarely two; a dead relay about two; whatever still
 *   misses, anti-entropy repairs.
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
 *   only slow), and they added to the overload that delayed the acknowledgements. A member
 *   that answers some copies, late (its round trip grew), and loses others is dropping for
 *   want of room (a full receive buffer): its retransmitted copies in flight are bounded by
 *   a window of its own (`WINDOW`), cut when a retransmission to it is lost again, and they
 *   go once, unmarked. Without this, each drop at an overloaded member brought it two
 *   copies more, and its subtree two of every late copy.
 *
 * The state machine is pure: it takes `now` and returns what to send, to member ids.
 *
 * @module
 */

import { hashString } from "./hash.ts";
import { Ring } from "./ring.ts";
import type { IHaveMessage, RelayMessage, TreeMessage } from "./messages.ts";
import type { Entry } from "./store.ts";

/** Tuning of {@linkcode TreeBroadcast}. */
export interface TreeConfig {
  /** How long acknowledgements wait, to be batched, in ms. */
  readonly ackDelayMs: number;
  /** Retransmission timeout before any round trip was measured, in ms. */
  readonly retransmitMs: number;
  /**
   * How long a message is kept at most to retransmit it (it goes as soon as every copy sent
   * is acknowledged), and its id to detect duplicates, in ms.
   */
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

/** Children of a relay in the tree of a lone message (see {@linkcode relayFanout}). */
export const RELAY_FANOUT = 2;
/** Sends of one copy at most (the first and the retransmissions). */
export const MAX_ATTEMPTS = 8;
/** Retransmissions one timeout apart; the later ones wait twice as long each time. */
export const STEADY_ATTEMPTS = 3;
/** Retransmissions after which a sender also sends to the silent member's children. */
export const TAKEOVER_ATTEMPTS = 2;
/** Retransmission rounds a member stays silent through before its children are taken over. */
export const TAKEOVER_ROUNDS = 3;
/** The largest factor a silent member's retransmission timeout is multiplied by. */
const MAX_BACKOFF = 4;
/** Copies waiting for an acknowledgement at most (beyond, they are sent once). */
const MAX_PENDING = 20_000;
/** Sequence numbers in one `ihave` at most (the codec's bound). */
const MAX_SEQS = 4096;
/**
 * The acknowledgement of a message of a batch (see {@linkcode batched}) waits this many ms
 * only (a burst batches itself), and its sender expects it that much sooner. Every member
 * tells a batch's message by its number alone, so sender and receiver agree. A longer wait
 * answers more copies per `ihave`, but every timeout grows by it. At 5 ms, 1,000 writes to 64
 * members over UDP in one Deno process took 3-7% fewer datagrams (medians 0-11% shorter, 4
 * runs of 5 bursts alternating), but in `bench/balance.ts` (MemoryNetwork, 10 ms latency,
 * bursts of 1,000, seeds 2-4) the last member got a burst 6-10% later with 10% loss, at every
 * N of 16, 64 and 256.
 */
const BURST_ACK_MS = 2;
/** Delay between the two copies of a retransmission (or of a late copy), in ms. */
export const ECHO_MS = 1;
/**
 * For this long after a member last received a copy late or twice (a loss on the way, or
 * its own acknowledgement lost), it acknowledges each lone message twice,
 * {@linkcode ECHO_MS} apart, in datagrams of their own (and a copy late or twice
 * {@linkcode LOSSY_ACK_COPIES} times): a lost acknowledgement costs its sender a timeout and
 * a retransmission (two copies of the message), a second acknowledgement a few bytes.
 * Without a loss seen, once.
 */
export const LOSS_MEMORY_MS = 10_000;
/**
 * Copies of the acknowledgements a member sends at once for a copy that came late or twice
 * (its sender is retransmitting: the path lost a copy or an acknowledgement just now),
 * {@linkcode ECHO_MS} apart, each in a datagram of its own. At 30% loss two copies are both
 * lost 9% of the time, four 0.8%; a member that got its copy on time, in a loss-free
 * moment, answers twice (under {@linkcode LOSS_MEMORY_MS}) as before. In `bench/balance.ts`
 * (single writes, N = 16, 64, 256, 10% and 30% loss, seeds 2-4, 20 bursts each), the bursts
 * whose busiest member sent more than ×3 the mean fell from 159 of 360 to 86 (with four
 * copies for every acknowledgement under loss memory: 88, and more at N = 16 with 10% loss,
 * 13 instead of 6, where a member's acknowledgements are much of the mean). The cost: a
 * member overloaded (dropping for want of room) gets the acknowledgements of its copies
 * sent again 4 times, and drops more of them: sent a third more than it takes, no more
 * copies; twice what it takes, about 10% more (`tests/broadcast_overload_test.ts`,
 * docs/reliability.md).
 */
export const LOSSY_ACK_COPIES = 4;
/**
 * Retransmissions come due a timeout late, several at once: this member is overloaded (its
 * timers run late), and its copies are likely late, not lost. They then back off at once, go
 * once (no echo, no takeover), and at most this many per tick (the rest wait a timeout):
 * retransmitting adds to an overload.
 */
const CONGESTED = 32;
/**
 * Retransmitted copies waiting for one member's acknowledgement at most, at first and after
 * it recovers, while it queues (see {@linkcode QUEUEING_MS}: its round trip grew). A
 * retransmission lost again while the member answered something since it went (an
 * overloaded member drops what arrives beyond what its receive buffer holds) halves its
 * window (to {@linkcode MIN_WINDOW} at least), once a timeout at most; every retransmission
 * it acknowledges widens it by one (to {@linkcode MAX_WINDOW} at most). Beyond the window,
 * due copies wait a timeout, for {@linkcode WINDOW_WAIT_MS} from their first send at most
 * (then anti-entropy brings them). And while it queues, its retransmissions go once, not
 * marked late (no echo here, no second copy down the subtree): extra copies to a member
 * that drops for want of room only displace others.
 */
const WINDOW = 64;
/** The smallest retransmission window of a member (see {@linkcode WINDOW}). */
const MIN_WINDOW = 8;
/** The largest retransmission window of a member (see {@linkcode WINDOW}). */
const MAX_WINDOW = 256;
/**
 * A member whose round trip (smoothed) is longer than twice its shortest one and this many
 * ms is queueing copies (a full receive buffer, a busy event loop): only then do its losses
 * cut its window (see {@linkcode WINDOW}) and its retransmissions go once, unmarked. A
 * random loss on a link whose round trip holds steady is repaired as before.
 */
const QUEUEING_MS = 4;
/** How slowly a member's shortest round trip follows longer ones (see `Peer.minRtt`), in ms. */
const MIN_RTT_FOLLOW_MS = 60_000;
/** How long a copy waits at most for room in its member's window, in ms. */
const WINDOW_WAIT_MS = 2_000;
/** Bounds of the retransmission timeout, in ms: the lower one covers a busy event loop. */
const MIN_RTO = 20;
const MIN_RTO_MARGIN = 2;
const MAX_RTO = 2_000;

/**
 * Whether message `seq` is one of a batch (several sent in one turn): a number not divisible
 * by 4. A lone message takes one divisible by 4.
 */
export function batched(seq: number): boolean {
  return seq % 4 !== 0;
}

/** Children of the origin of message `seq`: 3 for a lone message, 2 for one of a batch. */
export function originFanout(seq: number): number {
  return batched(seq) ? 2 : 3;
}

/**
 * Children of a relay in the tree of message `seq`: {@linkcode RELAY_FANOUT} (2) for a lone
 * message, 3 for one of a batch (a batch's messages spread the relaying over all members,
 * and a shallower tree has fewer links to lose a copy on the way to its last member).
 */
export function relayFanout(seq: number): number {
  return batched(seq) ? 3 : RELAY_FANOUT;
}

/** A tree protocol message for the member with id `to`. */
export interface TreeSend {
  readonly to: string;
  readonly message: TreeMessage | IHaveMessage | RelayMessage;
}

const RING_SEED = 0x5bd1e995;

/** Where member `id` sits on the ring. */
function ringKey(id: string): number {
  return hashString(id, RING_SEED) >>> 0;
}

/**
 * Index of the first member of the ring (`keys` ascending, ties by `ids`) not before (`key`,
 * `id`) (binary search).
 */
function lowerBoundAt(
  keys: readonly number[],
  ids: readonly string[],
  key: number,
  id: string,
): number {
  let lo = 0, hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const k = keys[mid]!;
    if (k < key || (k === key && ids[mid]! < id)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Start of part `g` of `k` of the `len` row positions from `lo` (part g ends where g + 1 starts). */
function cut(lo: number, len: number, k: number, g: number): number {
  return lo + Math.floor((g * len) / k);
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

/** The children of a leaf: one list for all, never written. */
const NO_CHILDREN: readonly string[] = Object.freeze([]);

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
  /**
   * The ring: its members' keys ascending (ties by id), and their ids, in two arrays (a
   * search reads a line or two of numbers, not an object per step).
   */
  readonly #keys: number[] = [];
  readonly #ids: string[] = [];
  /**
   * The members placed, and where each sits in `#keys` and `#ids` (rewritten from there on
   * at every change: a tree's positions were two binary searches per message).
   */
  readonly #at = new Map<string, number>();
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
    return this.#at.size;
  }

  /** Whether `id` is placed on the ring. */
  has(id: string): boolean {
    return this.#at.has(id);
  }

  /** Places (`present`) or removes member `id`; whether anything changed. Self stays. */
  set(id: string, present: boolean): boolean {
    if (id === this.self && !present) return false;
    if (this.#at.has(id) === present) return false;
    const key = ringKey(id);
    const i = lowerBoundAt(this.#keys, this.#ids, key, id);
    if (present) {
      this.#keys.splice(i, 0, key);
      this.#ids.splice(i, 0, id);
    } else {
      this.#at.delete(id);
      this.#keys.splice(i, 1);
      this.#ids.splice(i, 1);
    }
    for (let j = i; j < this.#ids.length; j++) this.#at.set(this.#ids[j]!, j);
    this.#version++;
    return true;
  }

  /**
   * The members that `of` (this member by default) sends message `seq` of `origin` to, in
   * this member's view: empty for a leaf of that tree, or for a member not on the ring.
   */
  children(origin: string, seq: number, of: string = this.self): readonly string[] {
    this.#depth = 0;
    const keys = this.#keys, ids = this.#ids;
    const n = keys.length;
    const ofAt = this.#at.get(of);
    if (n < 2 || ofAt === undefined) return NO_CHILDREN;
    // Positions in the row are ring positions from `start` on, the origin's left out.
    const placed = this.#at.get(origin);
    const originKey = placed !== undefined ? keys[placed]! : ringKey(origin);
    const start = lowerBoundAt(keys, ids, mix(originKey + seq), "") % n;
    // The origin is not in the row (it may be missing from this view: then nothing is left out).
    const o = placed !== undefined ? (placed - start + n) % n : n;
    const size = o < n ? n - 1 : n;
    if (of === origin) return this.#heads(start, o, 0, size, originFanout(seq));
    const p = (ofAt - start + n) % n;
    const i = p > o ? p - 1 : p;
    let lo = 0, hi = size, k = originFanout(seq), depth = 1;
    for (;;) {
      const len = hi - lo;
      let g = Math.min(k - 1, Math.floor(((i - lo) * k) / len));
      while (i < cut(lo, len, k, g)) g--;
      while (i >= cut(lo, len, k, g + 1)) g++;
      const s = cut(lo, len, k, g), e = cut(lo, len, k, g + 1);
      if (i === s) {
        this.#depth = depth;
        return this.#heads(start, o, s + 1, e, relayFanout(seq));
      }
      lo = s + 1;
      hi = e;
      k = relayFanout(seq);
      depth++;
    }
  }

  /**
   * The first member of each of the `k` parts of row positions `[lo, hi)`, in a row that
   * starts at ring position `start` and leaves out position `o` (the origin's).
   */
  #heads(start: number, o: number, lo: number, hi: number, k: number): readonly string[] {
    const ids = this.#ids;
    const n = ids.length;
    const len = hi - lo;
    // A leaf's (most members', for most messages) is one shared empty list: no array made;
    // the others' of their length (a list grown by `push` makes room for 17). Every part
    // holds a position when there are `k` or more, else one each as many as there are.
    const count = Math.min(k, len);
    if (count <= 0) return NO_CHILDREN;
    const out = new Array<string>(count);
    let i = 0;
    for (let g = 0; g < k; g++) {
      const s = cut(lo, len, k, g), e = cut(lo, len, k, g + 1);
      if (e > s) out[i++] = ids[(start + s + (s >= o ? 1 : 0)) % n]!;
    }
    return out;
  }

  #depth = 0;

  /**
   * Hops from the origin to the member of the last {@linkcode Overlay.children} call, in
   * that message's tree (as {@linkcode Overlay.depth} says, without computing it again).
   */
  get lastDepth(): number {
    return this.#depth;
  }

  /**
   * Hops from the origin of message `seq` of `origin` to `of` (this member by default) in
   * this member's view of its tree: 0 for the origin, and for a member not on the ring.
   */
  depth(origin: string, seq: number, of: string = this.self): number {
    this.#depth = 0;
    if (of !== origin) this.children(origin, seq, of);
    return this.#depth;
  }
}

/**
 * A copy sent and waiting for its acknowledgement. A class, not an object literal: V8 made a
 * literal of these 14 fields ~60 bytes larger (one per copy sent).
 */
class Pending {
  readonly to: string;
  /** The message kept here that this is a copy of (it holds its copies waiting). */
  readonly cached: Cached;
  /** The copy sent: once retransmitted for a loss, marked late (see {@linkcode late}). */
  message: TreeMessage;
  /** Whether `message` is marked late already. */
  late: boolean;
  sentAt: number;
  /** When it was last sent (the first time or again). */
  lastSentAt: number;
  deadline: number;
  /** Its timeout while it waits in a send queue (`deadline` is Infinity meanwhile). */
  timeout = 0;
  attempts = 0;
  /** When the second copy of a retransmission goes (Infinity: none due). */
  echoAt: number;
  /** Rounds it waited for the answer to another copy's probe (see the module). */
  held = 0;
  /** Whether the children of `to` were sent it already. */
  takenOver = false;
  /** Whether it waits in {@linkcode PendingCopies}, and the copies set there after and before it. */
  waiting = false;
  newer: Pending | undefined = undefined;
  older: Pending | undefined = undefined;

  /**
   * `message` (a copy of `cached`'s, marked `late`) sent to `to` at `now`, due by `deadline`,
   * its echo at `echoAt`.
   */
  constructor(
    to: string,
    cached: Cached,
    message: TreeMessage,
    late: boolean,
    now: number,
    deadline: number,
    echoAt: number,
  ) {
    this.to = to;
    this.cached = cached;
    this.message = message;
    this.late = late;
    this.sentAt = now;
    this.lastSentAt = now;
    this.deadline = deadline;
    this.echoAt = echoAt;
  }
}

/**
 * Values by message, named by its origin and number: per origin, its numbers in ascending
 * order and their values, in two arrays. A member numbers its messages in order, and most
 * arrive in order and leave (expire, are acknowledged) in order: a new number is appended
 * (no hashing: a `Map` per origin cost a cache miss per message, 5% of a relay's CPU in
 * bench/cpu_per_write.ts), a number above the last is answered at once, the others by a
 * binary search, and the values dropped from the front leave it. (A `Map` keyed by the
 * string `${seq} ${origin}` before took a new string per message received and per copy
 * acknowledged, which V8 flattens and hashes before each lookup.) A value dropped in the
 * middle leaves a gap until those before it go; an origin goes with its last value. Values
 * are never `undefined`.
 *
 * @example
 * ```ts
 * import { MessageTable } from "./broadcast.ts";
 * const t = new MessageTable<string>();
 * t.set("a", 4, "x");
 * t.delete("a", 4);
 * console.log(t.size, t.origins); // 0 0
 * ```
 */
export class MessageTable<T> {
  /**
   * Rows by origin, emptied rows too (see `delete`): a row per message made and dropped
   * again was most of the table's garbage (a row and two arrays grown to 17 each).
   */
  readonly #byOrigin = new Map<string, Row<T>>();
  #size = 0;
  /** Rows holding a value. */
  #origins = 0;

  /** Values held. */
  get size(): number {
    return this.#size;
  }

  /** Origins with a value held. */
  get origins(): number {
    return this.#origins;
  }

  /** Slots held for origin `origin` (its values and the gaps among them), for tests. */
  slots(origin: string): number {
    const row = this.#byOrigin.get(origin);
    return row ? row.seqs.length - row.head : 0;
  }

  /** The value of message `seq` of `origin`, if held. */
  get(origin: string, seq: number): T | undefined {
    const row = this.#byOrigin.get(origin);
    if (row === undefined) return undefined;
    const seqs = row.seqs, last = seqs.length - 1;
    if (seq > seqs[last]!) return undefined;
    const i = seq === seqs[last] ? last : find(row, seq);
    return seqs[i] === seq ? row.vals[i] : undefined;
  }

  /** Whether a value of message `seq` of `origin` is held. */
  has(origin: string, seq: number): boolean {
    return this.get(origin, seq) !== undefined;
  }

  /** Holds `value` for message `seq` of `origin`, in place of the one held if any. */
  set(origin: string, seq: number, value: T): void {
    const row = this.#byOrigin.get(origin);
    if (row === undefined) {
      this.#byOrigin.set(origin, { seqs: [seq], vals: [value], head: 0, size: 1 });
      this.#size++;
      this.#origins++;
      return;
    }
    const seqs = row.seqs;
    if (row.size === 0) this.#origins++;
    if (row.size === 0 || seq > seqs[seqs.length - 1]!) {
      seqs.push(seq);
      row.vals.push(value);
    } else {
      const i = find(row, seq);
      if (seqs[i] === seq) {
        if (row.vals[i] !== undefined) return void (row.vals[i] = value);
        row.vals[i] = value;
      } else if (i === row.head && i > 0) {
        // Before the first: in the free slot before it.
        row.head--;
        seqs[row.head] = seq;
        row.vals[row.head] = value;
      } else {
        seqs.splice(i, 0, seq);
        row.vals.splice(i, 0, value);
      }
    }
    row.size++;
    this.#size++;
  }

  /**
   * Holds `value` for message `seq` of `origin` if the value held is `held` (one look-up,
   * where `get` and `set` took two); whether it was.
   */
  replace(origin: string, seq: number, held: T, value: T): boolean {
    const row = this.#byOrigin.get(origin);
    if (row === undefined || seq > row.seqs[row.seqs.length - 1]!) return false;
    const i = find(row, seq);
    if (row.seqs[i] !== seq || row.vals[i] !== held) return false;
    row.vals[i] = value;
    return true;
  }

  /** Drops the value of message `seq` of `origin`; whether one was held. */
  delete(origin: string, seq: number): boolean {
    return this.deleteIf(origin, seq, always, undefined);
  }

  /**
   * Drops the value of message `seq` of `origin` if `when(value, arg)` holds (one look-up,
   * where `get` and `delete` took two); whether it did.
   */
  deleteIf<A>(origin: string, seq: number, when: (value: T, arg: A) => boolean, arg: A): boolean {
    const row = this.#byOrigin.get(origin);
    if (row === undefined || seq > row.seqs[row.seqs.length - 1]!) return false;
    const i = find(row, seq);
    const { seqs, vals } = row;
    const v = vals[i];
    if (seqs[i] !== seq || v === undefined || !when(v, arg)) return false;
    vals[i] = undefined;
    this.#size--;
    if (--row.size === 0) {
      // Kept, empty, with its arrays' room (an array made empty gives its room up): the
      // origin's next message, likely soon, reuses it. `seq` stays before the head, a free
      // slot, so that the row still reads as ascending.
      this.#origins--;
      seqs.length = 1;
      vals.length = 1;
      seqs[0] = seq;
      vals[0] = undefined;
      row.head = 1;
      // Emptied rows of origins gone (members that left), at most about as many as the rest.
      if (this.#byOrigin.size > 2 * this.#origins + 64) {
        for (const [o, r] of this.#byOrigin) if (r.size === 0) this.#byOrigin.delete(o);
      }
      return true;
    }
    while (vals[row.head] === undefined) row.head++;
    while (vals[vals.length - 1] === undefined) {
      seqs.pop();
      vals.pop();
    }
    if (row.head > 32 && row.head * 2 > seqs.length) {
      row.seqs = seqs.slice(row.head);
      row.vals = vals.slice(row.head);
      row.head = 0;
    }
    return true;
  }
}

/** Whether `a` is `b`. */
function same<T>(a: T, b: T): boolean {
  return a === b;
}

/** A condition that always holds (`MessageTable.delete`'s). */
function always(): boolean {
  return true;
}

/** One origin's numbers (ascending from `head` on) and values; `undefined`: a gap. */
interface Row<T> {
  seqs: number[];
  vals: (T | undefined)[];
  head: number;
  /** Values held (gaps left out). */
  size: number;
}

/**
 * Index of the first number of `row` not below `seq` (from its head on). Most numbers sought
 * are the first (the oldest: expiring, or acknowledged in order) or among the last few (a
 * message just acknowledged): those are looked at first, going back from the last by steps
 * that double, and a binary search finishes between. (A binary search from the start read a
 * cache line per step, most of them cold, in rows of hundreds.)
 */
function find<T>(row: Row<T>, seq: number): number {
  const seqs = row.seqs;
  let lo = row.head, hi = seqs.length;
  if (lo < hi && seqs[lo]! >= seq) return lo;
  lo++;
  for (let step = 1; hi - step >= lo; step *= 2) {
    if (seqs[hi - step]! < seq) {
      lo = hi - step + 1;
      break;
    }
    hi -= step;
  }
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (seqs[mid]! < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Copies waiting for an acknowledgement, in the order they were set; a message's are held by
 * the message kept (`Cached.copies`), found by member. A message has a few copies waiting at
 * most (its children, and theirs when they are taken over): a short array each. The message
 * kept is found by its id in `TreeBroadcast.#ids` (see `TreeBroadcast.#waiting`): where the
 * copies had a table of their own, a relayed message's were looked up there when it went, at
 * every acknowledgement and when the last went, and its id again to release the message. The
 * order is a list through the copies themselves (`newer`, `older`): a `Set` hashed and grew
 * its table for every copy (1-2% of the CPU per write).
 */
class PendingCopies {
  #oldest: Pending | undefined;
  #newest: Pending | undefined;
  #size = 0;
  /** Told when the last copy of a message waiting goes: the message. */
  readonly #onLast: (c: Cached) => void;

  constructor(onLast: (c: Cached) => void) {
    this.#onLast = onLast;
  }

  get size(): number {
    return this.#size;
  }

  /** The copy set first of those waiting (the next: its `newer`). */
  get oldest(): Pending | undefined {
    return this.#oldest;
  }

  /** The copy of message `c` sent to `to`, if it waits. */
  get(c: Cached | undefined, to: string): Pending | undefined {
    const list = c?.copies;
    const i = list ? copyTo(list, to) : -1;
    return i >= 0 ? list![i] : undefined;
  }

  /**
   * Adds `p`, in place of the copy of the same message to the same member if any. The first
   * copy of a message makes its list with room for `room` (the copies sent with it).
   */
  set(p: Pending, room = 1): void {
    const c = p.cached, list = c.copies;
    if (list === undefined) {
      // Made for `room` and cut to one: `push` then fills the room (V8 keeps a few slots
      // spare), where `[p]` grew to room for 17 (~160 bytes more) at the second copy.
      const copies = new Array<Pending>(room);
      copies[0] = p;
      copies.length = 1;
      c.copies = copies;
    } else {
      const i = copyTo(list, p.to);
      if (i >= 0) {
        this.#unlink(list[i]!);
        list[i] = p;
      } else list.push(p);
    }
    p.waiting = true;
    p.older = this.#newest;
    p.newer = undefined;
    if (this.#newest) this.#newest.newer = p;
    else this.#oldest = p;
    this.#newest = p;
    this.#size++;
  }

  delete(p: Pending): void {
    if (!p.waiting) return;
    const list = p.cached.copies!;
    this.#remove(p.cached, list, list.indexOf(p));
  }

  /** Removes the copy of message `c` sent to `to` and returns it, if it waits. */
  take(c: Cached | undefined, to: string): Pending | undefined {
    const list = c?.copies;
    const i = list ? copyTo(list, to) : -1;
    if (i < 0) return undefined;
    const p = list![i]!;
    this.#remove(c!, list!, i);
    return p;
  }

  /** Removes `list[i]`, a copy of message `c` (its `copies`). */
  #remove(c: Cached, list: Pending[], i: number): void {
    this.#unlink(list[i]!);
    if (list.length > 1) {
      // In place (`splice` makes an array of what it removes).
      for (let j = i + 1; j < list.length; j++) list[j - 1] = list[j]!;
      list.length--;
      return;
    }
    c.copies = undefined;
    this.#onLast(c);
  }

  /** Takes `p` out of the order of the copies waiting. */
  #unlink(p: Pending): void {
    p.waiting = false;
    if (p.older) p.older.newer = p.newer;
    else this.#oldest = p.newer;
    if (p.newer) p.newer.older = p.older;
    else this.#newest = p.older;
    p.newer = p.older = undefined;
    this.#size--;
  }
}

/** Index of the copy to `to` in `list`, or -1. */
function copyTo(list: readonly Pending[], to: string): number {
  for (let i = 0; i < list.length; i++) if (list[i]!.to === to) return i;
  return -1;
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
  /** Retransmitted copies it may have waiting at once (see {@linkcode WINDOW}). */
  window: number;
  /** When its window was last cut (once a timeout at most). */
  cutAt: number;
  /**
   * Retransmitted copies to it waiting, as the last tick counted them: counted in the tick
   * numbered `counted`, else none.
   */
  inFlight: number;
  counted: number;
  /**
   * Its own smoothed round trip, an acknowledgement's wait left out, and the shortest one
   * (following a longer one very slowly): see {@linkcode QUEUEING_MS}.
   */
  srtt: number;
  minRtt: number;
  /** When its round trip was last measured. */
  sampledAt: number;
}

/** Retransmitted copies to `peer` waiting, as tick number `scan` counted them. */
function inFlight(peer: Peer, scan: number): number {
  return peer.counted === scan ? peer.inFlight : 0;
}

/** Counts one more retransmitted copy to `peer` waiting, in tick number `scan`. */
function inFlightOne(peer: Peer, scan: number): void {
  peer.inFlight = inFlight(peer, scan) + 1;
  peer.counted = scan;
}

/** What {@linkcode TreeBroadcast.receiveTree} returns for a message seen before, and at a leaf. */
const SEEN: { fresh: boolean; sends: TreeSend[] } = Object.freeze({
  fresh: false,
  sends: Object.freeze([]) as unknown as TreeSend[],
});
const LEAF: { fresh: boolean; sends: TreeSend[] } = Object.freeze({
  fresh: true,
  sends: SEEN.sends,
});

/** Whether any of `children` is another member than `from`, `origin` and `self`. */
function sendsOn(children: readonly string[], from: string, origin: string, self: string): boolean {
  for (let i = 0; i < children.length; i++) {
    const t = children[i]!;
    if (t !== from && t !== origin && t !== self) return true;
  }
  return false;
}

/** Whether one of the first `n` of `sends` goes to `to`. */
function sentIn(sends: readonly TreeSend[], n: number, to: string): boolean {
  for (let i = 0; i < n; i++) if (sends[i]!.to === to) return true;
  return false;
}

/** Numbers of nobody's: one list for all, never written. */
const NO_SEQS: readonly number[] = Object.freeze([]);

/** Whether `seqs` ascends strictly (no number twice). */
function ascending(seqs: readonly number[]): boolean {
  for (let i = 1; i < seqs.length; i++) if (seqs[i - 1]! >= seqs[i]!) return false;
  return true;
}

/**
 * The acknowledgements waiting to go to one member: per origin, in the order first
 * acknowledged since the last were sent, the numbers and when the last of them arrived.
 * Kept from round to round with its arrays (a `Map` per member and an object per origin,
 * made every round, were ~15% of the bytes a relay allocated per write).
 */
class AckBatch {
  readonly to: string;
  /** Origins with numbers waiting: the first `count` of `origins`, `seqs` and `ats`. */
  count = 0;
  readonly origins: string[] = [];
  readonly seqs: number[][] = [];
  readonly ats: number[] = [];

  constructor(to: string) {
    this.to = to;
  }

  /** Notes number `seq` of `origin`, arrived at `at`. */
  add(origin: string, seq: number, at: number): void {
    let i = 0;
    while (i < this.count && this.origins[i] !== origin) i++;
    if (i < this.count) this.seqs[i]!.push(seq);
    else {
      this.origins[i] = origin;
      this.seqs[i] = [seq];
      this.count++;
    }
    this.ats[i] = at;
  }

  /** Empties it; the lists of numbers were handed on (to `ihave` messages). */
  clear(): void {
    for (let i = 0; i < this.count; i++) this.seqs[i] = NO_SEQS as number[];
    this.count = 0;
  }
}

/** The `sentTo` of a message sent to nobody yet (one array for all: it is replaced, not grown). */
const NO_IDS: readonly string[] = Object.freeze([]);

/** A message kept to send (onwards, again). A class: see {@linkcode Pending}. */
class Cached {
  readonly message: TreeMessage;
  readonly at: number;
  /** The slot of its id (see `TreeBroadcast.#ids`). */
  readonly slot: number;
  readonly size: number;
  /** The member it came from, if any (it has it). */
  from: string | undefined = undefined;
  /**
   * Members this member sent it to: a few, in an array of exactly that length (kept as
   * long as the message; a `Set`, or an array grown by `push`, took ~150 bytes): the list
   * of members to send it to itself when it went to every one (see `TreeBroadcast.#sendAll`).
   */
  sentTo: readonly string[] = NO_IDS;
  /** Whether it is one of a batch (see {@linkcode batched}). */
  burst = false;
  /** Whether it came late here (after a retransmission on its way): sent twice onwards. */
  late = false;
  /** Whether it is kept no longer (see `TreeBroadcast.#release`). */
  released = false;
  /**
   * Its copies waiting for an acknowledgement (see {@linkcode PendingCopies}), if any: while
   * they wait, its id holds it (released or not), not only its slot.
   */
  copies: Pending[] | undefined = undefined;

  constructor(message: TreeMessage, at: number, slot: number, size: number) {
    this.message = message;
    this.at = at;
    this.slot = slot;
    this.size = size;
  }

  /** Whether member `id` has it from here, or gave it here. */
  reached(id: string): boolean {
    return id === this.from || this.sentTo.includes(id);
  }
}

/** The fields of an id seen, in {@linkcode TreeBroadcast}'s ring of them: numbers, then strings. */
const SEQ = 0, AT = 1, ORIGIN = 0;

/** Whether `v`, an id's value in `TreeBroadcast.#ids`, was noted in slot `slot`. */
function notedAt(v: Cached | number, slot: number): boolean {
  return v === slot || (typeof v === "object" && v.slot === slot);
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
  /**
   * Due retransmissions held back: their member was silent and one copy went as a probe, or
   * it queues and its retransmission window was full (see `WINDOW`).
   */
  heldBack: number;
  /** Copies sent at another member's `relay` request (a takeover handed on). */
  relayed: number;
  /** `relay` requests refused (see {@linkcode TreeBroadcast.receiveRelay}). */
  relayRefused: number;
}

/** Hops a retransmitted copy counts as late by (a timeout is about two hops). */
const LATE_HOPS = 2;

/** `m` as sent again: its `hop` tells its receiver (and theirs) that it is late. */
function late(m: TreeMessage): TreeMessage {
  return { ...m, hop: Math.min(255, m.hop + LATE_HOPS) };
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
    relayed: 0,
    relayRefused: 0,
  };
  #seq: number;
  /**
   * The messages seen within `cacheMs`: the message itself while it is kept (to send it
   * again: see `#release`), else the slot of its id. A leaf of a lone message's tree (about
   * half the members) keeps its id alone from the start, and so does a member whose byte budget
   * dropped the message sooner.
   */
  readonly #ids = new MessageTable<Cached | number>();
  /**
   * The ids seen, oldest first, by slot: origin, number and arrival of each. (Iterating a
   * `Map` from its oldest entry instead skips every entry deleted since the Map last grew:
   * O(deleted) per call.)
   */
  readonly #seen = new Ring(2, 1);
  /** The messages kept, oldest first from `#keptHead` on, and their bytes. */
  #kept: Cached[] = [];
  #keptHead = 0;
  #cacheBytes = 0;
  /** Copies waiting for an acknowledgement, by message and `to`. */
  readonly #pending = new PendingCopies((c) => {
    if (!c.released) {
      if (!c.burst) this.#release(c);
      return;
    }
    // Released meanwhile (age, bytes): its id holds its slot from now on, or forgets it.
    const { origin, seq } = c.message;
    this.#ids.replace(origin, seq, c, c.slot);
    if (this.#orphans.size > 0) this.#orphans.deleteIf(origin, seq, same, c);
  });
  /**
   * Messages whose ids were forgotten (`cacheMs`) while copies of them still wait, by id (see
   * `#waiting`).
   */
  readonly #orphans = new MessageTable<Cached>();
  #pendingDue = Infinity;
  /** Acknowledgements to send, by member; kept from round to round (see {@linkcode AckBatch}). */
  readonly #ackBatches = new Map<string, AckBatch>();
  /** The batches with acknowledgements waiting, `[0, #ackingCount)`, in order of the first. */
  readonly #acking: AckBatch[] = [];
  #ackingCount = 0;
  #ackDue = Infinity;
  /**
   * Acknowledgements to send again at `#ackEchoDue` (see {@linkcode LOSS_MEMORY_MS}), each
   * with the copies of it left to send after that one.
   */
  #ackEchoes: { to: string; message: IHaveMessage; left: number }[] = [];
  #ackEchoDue = Infinity;
  /** When this member last received a copy late or twice (see {@linkcode LOSS_MEMORY_MS}). */
  #lossAt = -Infinity;
  /** Smoothed round trip of the network (an acknowledgement's wait left out), its variation. */
  #srtt: number | undefined;
  #rttvar = 0;
  /** The shortest round trip measured lately: the network's, without an ack's wait. */
  #minRtt = Infinity;
  /** The members copies went to lately (see {@linkcode Peer}). */
  readonly #peers = new Map<string, Peer>();
  /** When any member last acknowledged anything here. */
  #heardAt = -Infinity;
  /** Ticks that scanned the copies waiting (see `Peer.counted`). */
  #scans = 0;
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

  /**
   * The retransmission timeout of a copy whose acknowledgement waits up to `wait` ms to be
   * batched: the network's round trip (Jacobson's estimator, never below the shortest one
   * measured), that wait, and a margin.
   */
  #rtoFor(wait: number): number {
    if (this.#srtt === undefined) return this.config.retransmitMs;
    const rtt = Math.max(this.#srtt, this.#minRtt);
    const rto = rtt + wait + Math.max(4 * this.#rttvar, MIN_RTO_MARGIN);
    return Math.min(MAX_RTO, Math.max(MIN_RTO, rto));
  }

  /** The retransmission timeout of a lone message now, in ms. */
  get rto(): number {
    return this.#rtoFor(this.config.ackDelayMs);
  }

  /** The retransmission timeout of a message of a burst, acknowledged sooner, in ms. */
  get burstRto(): number {
    return this.#rtoFor(BURST_ACK_MS);
  }

  /** Bytes (roughly, as `cacheBytes` counts them) of the messages kept to send again. */
  get keptBytes(): number {
    return this.#cacheBytes;
  }

  /** Copies sent and not acknowledged yet. */
  get unacknowledged(): number {
    return this.#pending.size;
  }

  /**
   * Broadcasts `entries` from this member as one message, sent now to its children in the
   * message's tree. A `lone` message (the only one of its batch) takes the next number
   * divisible by 4, whose tree gives the origin 3 children; the messages of a batch take the
   * next numbers that are not (see {@linkcode batched}). Numbers start at 2,048 × the clock's
   * seconds at construction: a member restarted a second or more later does not reuse the
   * ids of its previous run unless that run used over 2,048 numbers a second on average
   * (512 lone messages, or 1,536 of batches; a reused id costs a late delivery by
   * anti-entropy, no loss).
   */
  originate(entries: readonly Entry[], now: number, lone = true): TreeSend[] {
    this.#seq++;
    if (lone) this.#seq += (4 - (this.#seq % 4)) % 4;
    else if (!batched(this.#seq)) this.#seq++;
    const message: TreeMessage = {
      type: "tree",
      origin: this.overlay.self,
      seq: this.#seq,
      hop: 0,
      entries,
    };
    const cached = this.#remember(message, now);
    cached.burst = batched(message.seq);
    return this.#sendAllKept(cached, this.overlay.children(message.origin, message.seq), now);
  }

  /**
   * A tree message from member `from`. When it is new here (`fresh`), the caller applies its
   * entries; the sends forward it to this member's children in its tree.
   */
  receiveTree(from: string, m: TreeMessage, now: number): { fresh: boolean; sends: TreeSend[] } {
    const burst = batched(m.seq);
    this.#ack(from, m, now, burst ? BURST_ACK_MS : this.config.ackDelayMs);
    if (this.#ids.has(m.origin, m.seq) || m.origin === this.overlay.self) {
      this.counters.duplicates++;
      this.#lossAt = now;
      this.#ackDue = now; // its sender is retransmitting: acknowledge at once
      return SEEN;
    }
    this.counters.received++;
    const children = this.overlay.children(m.origin, m.seq);
    const late = m.hop >= this.overlay.lastDepth;
    // A late copy was likely sent again: its sender waits for this answer, which goes at the
    // next tick. A timer fires 1 ms later at the soonest, so the copy's echo (ECHO_MS behind)
    // has usually arrived by then, and its acknowledgement shares this one's datagram.
    if (late) {
      this.#ackDue = now;
      this.#lossAt = now;
    }
    const self = this.overlay.self;
    if (!burst && !sendsOn(children, from, m.origin, self)) {
      // A leaf here: nothing to send on or retransmit, so only its id is kept. (Not for a
      // batch's message: a `relay` may ask this member for it, see `#release`.)
      this.#noteId(m.origin, m.seq, now, this.#seen.end);
      return LEAF;
    }
    const forward = { ...m, hop: Math.min(255, m.hop + 1) };
    const cached = this.#remember(forward, now);
    cached.burst = burst;
    cached.late = late;
    cached.from = from;
    return { fresh: true, sends: this.#sendAllKept(cached, children, now) };
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
      const p = this.#pending.take(this.#waiting(m.origin, seq), from);
      if (!p) continue;
      if (p.attempts > 0 && peer) peer.window = Math.min(MAX_WINDOW, peer.window + 1);
      if (p.attempts === 0) {
        this.#measure(now - p.sentAt, m.hop);
        if (peer) {
          const net = Math.max(0, now - p.sentAt - m.hop);
          peer.srtt = Number.isNaN(peer.srtt) ? net : 0.875 * peer.srtt + 0.125 * net;
          // The shortest follows a longer round trip over minutes (a route that changed),
          // by the time passed, not the samples taken: an overload does not become the norm.
          const follow = Math.min(1, (now - peer.sampledAt) / MIN_RTT_FOLLOW_MS);
          peer.minRtt = net < peer.minRtt ? net : peer.minRtt + (net - peer.minRtt) * follow;
          peer.sampledAt = now;
        }
      }
    }
  }

  /**
   * The copy of `m` for `to` waits in a send queue: its timeout starts only when it leaves
   * ({@linkcode TreeBroadcast.departed}), not to send it again while it has not gone once.
   */
  queued(to: string, m: TreeMessage): void {
    const p = this.#pending.get(this.#waiting(m.origin, m.seq), to);
    if (!p || p.message !== m || p.deadline === Infinity) return;
    p.timeout = p.deadline - p.lastSentAt;
    p.deadline = Infinity;
  }

  /** The queued copy of `m` for `to` left at `at`: its timeout and round trip start then. */
  departed(to: string, m: TreeMessage, at: number): void {
    const p = this.#pending.get(this.#waiting(m.origin, m.seq), to);
    if (!p || p.message !== m || p.deadline !== Infinity) return;
    p.deadline = at + p.timeout;
    if (p.attempts === 0) p.sentAt = at;
    p.lastSentAt = at;
    this.#pendingDue = Math.min(this.#pendingDue, p.deadline);
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
          window: WINDOW,
          cutAt: -Infinity,
          inFlight: 0,
          counted: -1,
          srtt: NaN,
          minRtt: Infinity,
          sampledAt: -Infinity,
        },
      );
    }
    return peer;
  }

  /** Due work: retransmissions and batched acknowledgements. */
  tick(now: number): TreeSend[] {
    let sends: TreeSend[] = [];
    if (now >= this.#pendingDue) {
      let due = Infinity;
      const retry: Pending[] = [];
      // Every peer's count starts at 0 in this tick (no pass over all of them to reset it).
      const scan = ++this.#scans;
      for (let p = this.#pending.oldest; p; p = p.newer) {
        if (p.deadline <= now || p.echoAt <= now) retry.push(p);
        else {
          due = Math.min(due, p.deadline, p.echoAt);
          if (p.attempts > 0) inFlightOne(this.#peer(p.to), scan);
        }
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
            this.#pending.delete(p); // anti-entropy will bring it
            continue;
          }
          p.deadline = peer.probeUntil;
          p.echoAt = Infinity;
          this.#pendingDue = Math.min(this.#pendingDue, p.deadline);
          if (this.#gone(p, peer)) sends.push(...this.#takeOver(p, now));
          continue;
        }
        if (!probe && this.#queueing(peer) && inFlight(peer, scan) >= peer.window) {
          // Its window is full: this copy waits a round (see WINDOW).
          this.counters.heldBack++;
          if (now - p.sentAt >= WINDOW_WAIT_MS) {
            this.#pending.delete(p); // anti-entropy will bring it
            continue;
          }
          p.deadline = now + this.rtoOf(p.to);
          p.echoAt = Infinity;
          this.#pendingDue = Math.min(this.#pendingDue, p.deadline);
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
        inFlightOne(peer, scan);
        sends.push(...this.#retry(p, now, congested));
        if (probe) {
          peer.probeUntil = p.deadline;
          // Nobody answered either: late, not lost. Its next timeout doubles (Karn's backoff).
          if (alone) peer.backoff = Math.min(MAX_BACKOFF, peer.backoff * 2);
        }
      }
    }
    if (now >= this.#ackEchoDue) {
      const echoes = this.#ackEchoes;
      this.#ackEchoes = [];
      this.#ackEchoDue = Infinity;
      for (const { to, message, left } of echoes) {
        sends.push({ to, message });
        if (left > 0) this.#ackAgain(to, message, left - 1, now);
      }
    }
    if (now >= this.#ackDue) {
      const due = this.#ackDue;
      const lossy = now - this.#lossAt < LOSS_MEMORY_MS;
      // Brought forward by a copy late or twice (it set both to its arrival): its sender is
      // retransmitting (LOSSY_ACK_COPIES); otherwise twice, if a loss was seen lately.
      const copies = due === this.#lossAt ? LOSSY_ACK_COPIES : 2;
      this.#ackDue = Infinity;
      // Most ticks send acknowledgements alone: in an array sized for them (cut to those
      // sent), not one grown by `push` from empty (room for 17, for one or two).
      let n = sends.length;
      if (n === 0) sends = new Array<TreeSend>(this.#ackSendsAtMost());
      for (let b = 0; b < this.#ackingCount; b++) {
        const batch = this.#acking[b]!;
        const to = batch.to;
        for (let j = 0; j < batch.count; j++) {
          const origin = batch.origins[j]!, list = batch.seqs[j]!, at = batch.ats[j]!;
          const seqs = ascending(list) ? list : [...new Set(list)].sort((a, b) => a - b);
          // `hop` says how long the last of them waited here on purpose (not how late this
          // member's timers ran: that is part of the round trip): its sender subtracts it
          // from the round trip, to learn the network's own.
          const hop = Math.min(255, Math.max(0, Math.floor(Math.min(now, due) - at)));
          for (let i = 0; i < seqs.length; i += MAX_SEQS) {
            const part = seqs.length <= MAX_SEQS ? seqs : seqs.slice(i, i + MAX_SEQS);
            this.counters.acked += part.length;
            sends[n++] = { to, message: { type: "ihave", origin, hop, seqs: part } };
            const lone = lossy ? part.filter((seq) => !batched(seq)) : NO_SEQS;
            if (lone.length > 0) {
              // A loss seen lately: the lone messages' go again, each time in a datagram of
              // their own (see LOSS_MEMORY_MS, LOSSY_ACK_COPIES).
              this.#ackAgain(
                to,
                { type: "ihave", origin, hop, seqs: lone },
                copies - 2,
                now,
              );
            }
          }
        }
        batch.clear();
      }
      this.#ackingCount = 0;
      sends.length = n;
    }
    this.#expire(now);
    return sends;
  }

  /**
   * The acknowledgement `m` to `to` goes again {@linkcode ECHO_MS} from `now`, in a datagram
   * of its own, its `hop` the longer wait; and `left` more times after that one.
   */
  #ackAgain(to: string, m: IHaveMessage, left: number, now: number): void {
    const message: IHaveMessage = { ...m, hop: Math.min(255, m.hop + ECHO_MS) };
    this.#ackEchoes.push({ to, message, left });
    this.#ackEchoDue = Math.min(this.#ackEchoDue, now + ECHO_MS);
  }

  /** The `ihave` messages the acknowledgements waiting take at most. */
  #ackSendsAtMost(): number {
    let n = 0;
    for (let b = 0; b < this.#ackingCount; b++) {
      const batch = this.#acking[b]!;
      for (let j = 0; j < batch.count; j++) n += Math.ceil(batch.seqs[j]!.length / MAX_SEQS);
    }
    return n;
  }

  /** When {@linkcode TreeBroadcast.tick} next has work to do (Infinity: nothing pending). */
  nextWakeAt(): number {
    return Math.min(this.#pendingDue, this.#ackDue, this.#ackEchoDue);
  }

  #ack(to: string, m: TreeMessage, now: number, delay: number): void {
    if (to === this.overlay.self) return;
    let batch = this.#ackBatches.get(to);
    if (!batch) this.#ackBatches.set(to, batch = new AckBatch(to));
    if (batch.count === 0) this.#acking[this.#ackingCount++] = batch;
    batch.add(m.origin, m.seq, now);
    this.#ackDue = Math.min(this.#ackDue, now + delay);
  }

  /**
   * Jacobson's estimator (RFC 6298) of the network's round trip: a round trip in ms, of which
   * the acknowledgement waited `wait` ms on purpose (its `hop`), to be batched.
   */
  #measure(sample: number, wait: number): void {
    const net = Math.max(0, sample - wait);
    // The minimum follows a longer round trip slowly (a route that changed).
    this.#minRtt = net < this.#minRtt ? net : this.#minRtt + (net - this.#minRtt) / 64;
    if (this.#srtt === undefined) {
      this.#srtt = net;
      this.#rttvar = net / 4;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - net);
      this.#srtt = 0.875 * this.#srtt + 0.125 * net;
    }
  }

  /**
   * Sends the cached message to each of `to` not sent to yet, awaiting acknowledgements;
   * marked late when `takeover` (these members should have had it from another by now).
   * A message late here, or marked so, goes twice, {@linkcode ECHO_MS} apart.
   */
  #sendAll(
    cached: Cached,
    to: readonly string[],
    now: number,
    takeover = false,
  ): TreeSend[] {
    // Sized for every member of `to` (a few), and cut to those sent to: an array grown by
    // `push` makes room for 17.
    const sends = new Array<TreeSend>(to.length);
    let n = 0;
    const self = this.overlay.self;
    const message = takeover ? late(cached.message) : cached.message;
    let deadline = NaN;
    for (let i = 0; i < to.length; i++) {
      const t = to[i]!;
      if (t === self || t === message.origin || cached.reached(t)) continue;
      if (sentIn(sends, n, t)) continue;
      sends[n++] = { to: t, message };
      if (this.#pending.size >= MAX_PENDING) continue;
      if (Number.isNaN(deadline)) deadline = now + (cached.burst ? this.burstRto : this.rto);
      this.#peer(t);
      const echoAt = cached.late && !takeover ? now + ECHO_MS : Infinity;
      this.#pending.set(
        new Pending(t, cached, message, takeover, now, deadline, echoAt),
        to.length,
      );
      this.#pendingDue = Math.min(this.#pendingDue, deadline, echoAt);
    }
    sends.length = n;
    if (n > 0 && n === to.length && cached.sentTo.length === 0) {
      // Sent to every one of `to` (a list nobody writes), and to nobody before: `to` is the list.
      cached.sentTo = to;
    } else if (n > 0) {
      // Those sent to join `sentTo` in one array of the new length, not one per member.
      const before = cached.sentTo;
      const sentTo = new Array<string>(before.length + n);
      for (let i = 0; i < before.length; i++) sentTo[i] = before[i]!;
      for (let i = 0; i < n; i++) sentTo[before.length + i] = sends[i]!.to;
      cached.sentTo = sentTo;
    }
    return sends;
  }

  /** {@linkcode TreeBroadcast.#sendAll} of a message just kept: released if no copy waits. */
  #sendAllKept(cached: Cached, to: readonly string[], now: number): TreeSend[] {
    const sends = this.#sendAll(cached, to, now);
    if (cached.copies === undefined) {
      if (!cached.burst) this.#release(cached);
    } else if (cached.released) {
      // Dropped at once (the byte budget): its id holds it again while its copies wait.
      const { origin, seq } = cached.message;
      this.#ids.replace(origin, seq, cached.slot, cached);
    }
    return sends;
  }

  /**
   * The last copy of a message waiting here was acknowledged (or given up), or the cache
   * dropped it (age, bytes): the message is no longer kept, only its id. It was kept to send it again, to take over
   * a silent child's children or to send it to whom the tree names in place of a member
   * gone, each for a copy still waiting: kept `cacheMs`, it was most of the memory a
   * write took here (and of the collector's work). A batch's message is kept its `cacheMs`
   * all the same (only age or the byte budget release it), at a leaf too: a member that
   * took over a silent child's children hands them to the members that acknowledged the
   * message, by a `relay` (`#takeOver`), and those need it to send.
   */
  #release(c: Cached): void {
    if (c.released) return;
    c.released = true;
    this.#cacheBytes -= c.size;
    const { origin, seq } = c.message;
    // Its id keeps it while copies of it wait (see `#waiting`); unless the id was noted
    // again since (a number reused by a restarted member).
    if (c.copies === undefined) this.#ids.replace(origin, seq, c, c.slot);
  }

  /** A copy not acknowledged in time: send it again, or to whom the tree now names. */
  #retry(p: Pending, now: number, congested: boolean): TreeSend[] {
    if (p.echoAt <= now) {
      p.echoAt = Infinity;
      this.#pendingDue = Math.min(this.#pendingDue, p.deadline);
      return [{ to: p.to, message: p.message }];
    }
    const { origin, seq } = p.message;
    const cached = this.#keptOf(p);
    if (!this.overlay.has(p.to)) {
      // Gone from the ring: the tree over the members left names who gets it instead (sent
      // before `p` goes: its message is kept while a copy waits).
      const sends = cached ? this.#sendAll(cached, this.overlay.children(origin, seq), now) : [];
      this.#pending.delete(p);
      return sends;
    }
    if (p.attempts + 1 >= MAX_ATTEMPTS) {
      this.#pending.delete(p); // anti-entropy will bring it
      return [];
    }
    // A loss, likely: others answered since this copy went, or its member was not found slow
    // lately (its timeout never backed off). Its receiver gets it late, and so does the
    // subtree below it: the copy says so, and they send it twice.
    const peer = this.#peer(p.to);
    const crowded = this.#queueing(peer);
    if (crowded && p.attempts > 0 && peer.heardAt > p.lastSentAt) {
      // A retransmission lost too, while the member answers others late: it drops for want
      // of room (see WINDOW).
      if (now - peer.cutAt > this.rtoOf(p.to)) {
        peer.window = Math.max(MIN_WINDOW, Math.floor(peer.window / 2));
        peer.cutAt = now;
      }
    }
    const lossy = this.#heardAt > p.lastSentAt || peer.backoff <= 1;
    if (!p.late && !congested && !crowded && lossy) {
      p.message = late(p.message);
      p.late = true;
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
    // Its children are taken over once it has been silent long enough to be gone, not
    // merely slow (a takeover costs up to 2 copies, each awaiting an acknowledgement).
    // A member silent through an earlier round too (other copies' probes) goes sooner.
    const due = p.attempts >= TAKEOVER_ATTEMPTS || peer.silentRounds > 1;
    const takeover = due && this.#gone(p, peer);
    const sends: TreeSend[] = [{ to: p.to, message: p.message }];
    // Sent twice, ECHO_MS apart (two datagrams): a link that lost a copy is likely lossy,
    // and each further loss would cost another timeout. Not with a takeover: the member
    // seems gone, and its children get the message anyway.
    if (!congested && !crowded && !(takeover && !p.takenOver)) {
      p.echoAt = now + ECHO_MS;
      this.#pendingDue = Math.min(this.#pendingDue, p.echoAt);
    }
    if (takeover) sends.push(...this.#takeOver(p, now));
    return sends;
  }

  /**
   * Whether `peer` answers later than the network's round trip allows: copies queue at it (a
   * full receive buffer, a busy event loop), and its losses are likely drops for want of room.
   */
  #queueing(peer: Peer): boolean {
    return peer.srtt > 2 * peer.minRtt + QUEUEING_MS;
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

  /**
   * Takes over the children of `p`'s silent member (once): for a batch's message, each is
   * handed by a `relay` to a member known to have it (`#holders`), the one with the fewest
   * copies of it to send; a lone message, or with none, is sent from here.
   */
  #takeOver(p: Pending, now: number): TreeSend[] {
    const { origin, seq } = p.message;
    const cached = this.#keptOf(p);
    if (p.takenOver || !cached) return [];
    // Silent for rounds: it may be gone. Its children should not wait for SWIM to say so.
    p.takenOver = true;
    const children = this.overlay.children(origin, seq, p.to);
    // A lone message's are few, and their time counts (a relay's copy comes a hop later); a
    // batch's come by the hundred from a burst's writer (its children time out together).
    const holders = cached.burst ? this.#holders(cached, p.to) : [];
    if (holders.length === 0) {
      const sends = this.#sendAll(cached, children, now, true);
      this.counters.takenOver += sends.length;
      return sends;
    }
    const sends: TreeSend[] = [];
    const self = this.overlay.self;
    // Each goes to the holder with the fewest copies of this message to send: its children
    // in the message's tree, and those handed to it here (a leaf of the tree sends none).
    const load = holders.map((h) => this.overlay.children(origin, seq, h).length);
    for (const to of children) {
      if (to === self || to === origin || cached.reached(to) || holders.includes(to)) {
        continue;
      }
      let best = 0;
      for (let i = 1; i < holders.length; i++) if (load[i]! < load[best]!) best = i;
      load[best]!++;
      sends.push({ to: holders[best]!, message: { type: "relay", origin, seq, to } });
    }
    this.counters.takenOver += sends.length;
    return sends;
  }

  /**
   * Members other than `silent` and the message's origin known to have the cached message:
   * the one it came from, and those this member sent it to that acknowledged it (no copy for
   * them waits).
   */
  #holders(cached: Cached, silent: string): string[] {
    const origin = cached.message.origin;
    const out: string[] = [];
    const { from, sentTo } = cached;
    for (const id of from === undefined ? sentTo : [from, ...sentTo]) {
      if (id === silent || id === origin || !this.overlay.has(id)) continue;
      if (this.#pending.get(cached, id) === undefined) out.push(id);
    }
    return out;
  }

  /**
   * A `relay` from `from`: send this member's copy of that message to its `to`, marked late,
   * awaiting `to`'s acknowledgement as any copy (the requester took over a silent member's
   * children and hands them on). Refused (counted) for a message no longer kept, a member
   * off the ring, this member, the requester, the origin, or a member sent it already.
   */
  receiveRelay(from: string, m: RelayMessage, now: number): TreeSend[] {
    const cached = this.#keptMessage(m.origin, m.seq);
    if (
      !cached || m.to === this.overlay.self || m.to === from || m.to === m.origin ||
      !this.overlay.has(m.to) || cached.reached(m.to)
    ) {
      this.counters.relayRefused++;
      return [];
    }
    const sends = this.#sendAll(cached, [m.to], now, true);
    this.counters.relayed += sends.length;
    return sends;
  }

  /** Message `seq` of `origin`, if it is kept. */
  #keptMessage(origin: string, seq: number): Cached | undefined {
    const v = this.#ids.get(origin, seq);
    return typeof v === "object" && !v.released ? v : undefined;
  }

  /** Message `seq` of `origin` with copies of it waiting, if any. */
  #waiting(origin: string, seq: number): Cached | undefined {
    const v = this.#ids.get(origin, seq);
    if (typeof v === "object" && v.copies !== undefined) return v;
    return this.#orphans.size > 0 ? this.#orphans.get(origin, seq) : undefined;
  }

  /**
   * The message kept of copy `p`'s id, if any: its own while kept (no look-up: the id of a
   * message kept is held with it, see `#expire`, and noted once), else whatever this id
   * holds now (a number reused by a restarted member).
   */
  #keptOf(p: Pending): Cached | undefined {
    if (!p.cached.released) return p.cached;
    return this.#keptMessage(p.message.origin, p.message.seq);
  }

  /** Keeps message `m` (first seen at `now`) and notes its id. */
  #remember(m: TreeMessage, now: number): Cached {
    let size = 32;
    const entries = m.entries;
    for (let i = 0; i < entries.length; i++) {
      size += approxEntryBytes(entries[i]!, this.#valueBytes);
    }
    const cached = new Cached(m, now, this.#seen.end, size);
    this.#kept.push(cached);
    this.#cacheBytes += size;
    this.#noteId(m.origin, m.seq, now, cached);
    return cached;
  }

  /** Notes the id of message `seq` of `origin`, first seen at `now`: `kept`, or its slot. */
  #noteId(origin: string, seq: number, now: number, kept: Cached | number): void {
    this.#ids.set(origin, seq, kept);
    const seen = this.#seen, i = seen.push();
    seen.strings[ORIGIN]![i] = origin;
    seen.numbers[SEQ]![i] = seq;
    seen.numbers[AT]![i] = now;
    this.#expire(now);
  }

  /**
   * Whether `v`, an id's value, was noted in slot `slot` (the id is forgotten): a message
   * whose copies still wait is then found among `#orphans` till the last goes.
   */
  readonly #forget = (v: Cached | number, slot: number): boolean => {
    if (!notedAt(v, slot)) return false;
    if (typeof v === "object" && v.copies !== undefined) {
      this.#orphans.set(v.message.origin, v.message.seq, v);
    }
    return true;
  };

  /** Forgets kept messages past `cacheMs` or the byte budget, and ids past `cacheMs`. */
  #expire(now: number): void {
    const horizon = now - this.config.cacheMs;
    const kept = this.#kept;
    while (this.#keptHead < kept.length) {
      const c = kept[this.#keptHead]!;
      if (!c.released) {
        if (c.at > horizon && this.#cacheBytes <= this.config.cacheBytes) break;
        // Dropped before its id is forgotten (the byte budget): its id stays seen.
        this.#release(c);
      }
      this.#keptHead++;
    }
    if (this.#keptHead > 1024 && this.#keptHead * 2 > kept.length) {
      this.#kept = kept.slice(this.#keptHead);
      this.#keptHead = 0;
    }
    const seen = this.#seen;
    while (seen.size > 0 && seen.numbers[AT]![seen.index(seen.start)]! <= horizon) {
      const slot = seen.start, i = seen.index(slot);
      const origin = seen.strings[ORIGIN]![i]!, seq = seen.numbers[SEQ]![i]!;
      // Unless the id was noted again since (a number reused by a restarted member).
      this.#ids.deleteIf(origin, seq, this.#forget, slot);
      seen.shift();
    }
    if (this.#peers.size > 2 * this.overlay.size + 16) {
      for (const id of this.#peers.keys()) if (!this.overlay.has(id)) this.#peers.delete(id);
    }
    if (this.#ackBatches.size > 2 * this.overlay.size + 16) {
      for (const [id, batch] of this.#ackBatches) {
        if (batch.count === 0 && !this.overlay.has(id)) this.#ackBatches.delete(id);
      }
    }
  }
}
