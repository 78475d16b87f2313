/**
 * Anti-entropy bookkeeping: when to open a round and with whom, the replies to a peer's
 * round (the descent itself is `sync.ts`), and the last exchange with each peer.
 *
 * A round that starts while a write is still travelling finds roots that differ only
 * because the broadcast has not reached one side yet, and would descend the tree for
 * nothing. The dissemination scheme says which writes this member recently sent or
 * received may still be travelling, and until when (`settling`); until then, by at most
 * {@linkcode SETTLE_FRACTION} of the gossip interval:
 * - a round that comes due waits (once; the round after it is not moved);
 * - a peer's root that differs from ours, with entry counts that differ by no more than
 *   those writes, is not descended at once: we send our own root
 *   to that peer when the wait is over, and the peer, which opened a round with us lately,
 *   answers it without waiting. Equal by then (the broadcast arrived), it costs one
 *   `sync-root` each way; still different, the descent runs as always.
 * Repair is so delayed by at most twice that fraction of the gossip interval.
 *
 * Idle, what a round costs is its datagram: a round due shortly after a SWIM probe goes in
 * the probe's ping (`probing`), and a member in sync for a while (quiet, see `QUIET_ROUNDS`)
 * skips the rounds that would go alone in between, never two in a row.
 *
 * @module
 */

import type { EngineContext } from "./context.ts";
import type { Settling } from "./dissemination.ts";
import type { LargeValueCooldown } from "./large_values.ts";
import type { MemberState } from "./membership.ts";
import type { EntriesMessage, Message } from "./messages.ts";
import type { StoredEntry } from "./store.ts";
import { MEMBER_KEY_PREFIX } from "./records.ts";
import { RETRY, speaksCompactSync, syncReply, syncRoot } from "./sync.ts";

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

/**
 * The longest wait, as a fraction of the gossip interval, of a round (or of the answer to a
 * peer's root) while a broadcast is still travelling.
 */
export const SETTLE_FRACTION = 0.25;

/**
 * A round due within this fraction of the gossip interval after a SWIM probe rides the
 * probe's ping (see {@linkcode AntiEntropy.probing}).
 */
export const RIDE_FRACTION = 0.25;

/**
 * A member whose root has not changed, and that has seen no root differ from its own, for
 * this many gossip intervals is quiet: of its rounds, it skips every other one that would
 * go in a datagram of its own (see {@linkcode AntiEntropy.tick}).
 */
export const QUIET_ROUNDS = 8;

/** No write travelling (the default of a scheme that does not say). */
export const NOTHING_SETTLING: Settling = Object.freeze({ entries: 0, until: -Infinity });

/** A message of the Merkle descent (everything `syncReply` answers but `entries`). */
export type SyncMessage = Extract<Message, { type: `sync-${string}` }>;

/** The anti-entropy part of the engine. */
export class AntiEntropy {
  /** The last exchange with each peer, by member id. */
  readonly states: Map<string, SyncState> = new Map();
  readonly #ctx: EngineContext;
  readonly #large: LargeValueCooldown;
  readonly #settling: (now: number) => Settling;
  #nextRoundAt: number;
  /** Whether the round due at `#nextRoundAt` already waited for a broadcast. */
  #waited = false;
  /** Peers whose differing root we answer with our own root later: id → when. */
  readonly #answerLater = new Map<string, number>();
  #answerDue = Infinity;
  /** When our root last changed, or a root compared with ours last differed. */
  #changedAt: number;
  /** Our root when last looked at (its two hash lanes). */
  #rootA = 0;
  #rootB = 0;
  /** Whether the last round that came due alone was skipped (see `QUIET_ROUNDS`). */
  #skipped = false;

  /**
   * Sets the first round at `firstProbeAt` (the first SWIM probe, drawn at random to spread
   * the rounds of a cluster started at once), less whole intervals, so that rounds fall on
   * probe rounds and ride their pings (see {@linkcode AntiEntropy.probing}). `settling`
   * tells which writes this member recently sent or received may still be travelling (see
   * the module; none, by default).
   */
  constructor(
    ctx: EngineContext,
    large: LargeValueCooldown,
    now: number,
    firstProbeAt: number,
    settling: (now: number) => Settling = () => NOTHING_SETTLING,
  ) {
    this.#ctx = ctx;
    this.#large = large;
    this.#settling = settling;
    const interval = ctx.config.gossipIntervalMs;
    this.#nextRoundAt = now + Math.max(0, firstProbeAt - now) % interval;
    this.#changedAt = now;
  }

  /** Whether this member is quiet at `now` (see {@linkcode QUIET_ROUNDS}). */
  #quiet(now: number): boolean {
    const root = this.#ctx.store.root();
    if (root.a !== this.#rootA || root.b !== this.#rootB) {
      this.#rootA = root.a;
      this.#rootB = root.b;
      this.#changedAt = now;
    }
    return now - this.#changedAt >= QUIET_ROUNDS * this.#ctx.config.gossipIntervalMs;
  }

  /**
   * A SWIM probe pings live member `peer` now. A round due within
   * {@linkcode RIDE_FRACTION} of an interval goes now, to `peer`, in the ping's datagram:
   * a root in a datagram that goes anyway costs its own 13 to 15 bytes, not a datagram's
   * header, cluster name and sender id besides. The next round is an interval later, so
   * with the default periods (a probe every two rounds) every other round rides a ping,
   * and a round that ran late falls back onto the probe's beat. A round is never later for
   * it: it can only come early, by at most that fraction.
   */
  probing(peer: MemberState, now: number): void {
    const { config, membership } = this.#ctx;
    if (this.#nextRoundAt - now > config.gossipIntervalMs * RIDE_FRACTION) return;
    if (peer.status !== "alive" && peer.status !== "suspect") return;
    // Only a partner: members reached through another are no use for anti-entropy.
    if (peer.relayed !== undefined && !membership.partners().includes(peer)) return;
    // A broadcast still travelling: the round waits for it, as a round due alone does.
    if (now < this.#waitUntil(now)) return;
    this.#quiet(now); // notes a change of our root, for the rounds that come due alone
    this.#waited = false;
    this.#skipped = false;
    this.#nextRoundAt = now + config.gossipIntervalMs;
    this.#open(peer.id, peer.address, now);
  }

  /**
   * Until when to wait for writes in flight, at most a fraction of the interval (`now`: no
   * wait), when they are at least `differ` entries.
   */
  #waitUntil(now: number, differ = 0): number {
    const s = this.#settling(now);
    if (s.entries === 0 || s.entries < differ) return now;
    return Math.min(s.until, now + this.#maxWait());
  }

  #maxWait(): number {
    return this.#ctx.config.gossipIntervalMs * SETTLE_FRACTION;
  }

  /**
   * Opens a round with one random live peer when due. Alone (a lost join, or every peer
   * gone), calls `alone` instead, every round. A quiet member (see {@linkcode QUIET_ROUNDS})
   * skips a round that comes due here, in a datagram of its own, unless it skipped the one
   * before: in sync, its rounds are those that ride its probes (see
   * {@linkcode AntiEntropy.probing}), and never more than two intervals apart.
   */
  tick(now: number, alone: () => void): void {
    if (now >= this.#answerDue) this.#answerRoots(now);
    if (now < this.#nextRoundAt) return;
    const { config, membership, random } = this.#ctx;
    const live = membership.partners();
    if (live.length === 0) {
      this.#nextRoundAt = now + config.gossipIntervalMs;
      alone();
      return;
    }
    if (!this.#waited) {
      const until = this.#waitUntil(now);
      if (now < until) {
        // A broadcast is still travelling: our root likely differs from the peer's by it.
        this.#waited = true;
        this.#nextRoundAt = until;
        return;
      }
    }
    this.#waited = false;
    this.#nextRoundAt = now + config.gossipIntervalMs;
    if (this.#quiet(now) && !this.#skipped) {
      this.#skipped = true;
      this.#ctx.counters.syncRoundsSkipped++;
      return;
    }
    this.#skipped = false;
    const peer = live[Math.floor(random() * live.length)]!;
    this.#open(peer.id, peer.address, now);
  }

  /** When the next round, or a root answered later, is due. */
  nextWakeAt(): number {
    return Math.min(this.#nextRoundAt, this.#answerDue);
  }

  #open(id: string, address: string, now: number): void {
    this.#ctx.counters.syncRounds++;
    this.#state(id).lastStarted = now;
    this.#ctx.outbox.send(address, syncRoot(this.#ctx.store), id);
  }

  /** Sends our root to the peers whose differing root waited for a broadcast. */
  #answerRoots(now: number): void {
    let due = Infinity;
    for (const [id, at] of this.#answerLater) {
      if (at > now) {
        due = Math.min(due, at);
        continue;
      }
      this.#answerLater.delete(id);
      const m = this.#ctx.membership.get(id);
      if (m && (m.status === "alive" || m.status === "suspect")) this.#open(id, m.address, now);
    }
    this.#answerDue = due;
  }

  /**
   * Whether to answer a peer's differing root later, with our own root: writes are still
   * travelling, at least as many entries as the two stores' counts differ by (a member
   * that lacks more was not just overtaken by a broadcast), and the peer is a live member
   * whose root does not answer one of ours (it waited already).
   */
  #waitsToAnswer(sender: string, count: number, now: number): boolean {
    const until = this.#waitUntil(now, Math.abs(count - this.#ctx.store.root().count));
    if (now >= until) return false;
    const m = this.#ctx.membership.get(sender);
    if (!m || (m.status !== "alive" && m.status !== "suspect")) return false;
    // A root that comes within two waits of ours may answer ours after a wait: answer it now.
    const started = this.states.get(sender)?.lastStarted ?? 0;
    if (started > 0 && now - started <= 2 * this.#maxWait()) return false;
    const at = Math.min(this.#answerLater.get(sender) ?? Infinity, until);
    this.#answerLater.set(sender, at);
    this.#answerDue = Math.min(this.#answerDue, at);
    return true;
  }

  /** Entries a peer sent in answer to a round: merged under the store's rules. */
  onEntries(m: EntriesMessage, sender: string, from: string, now: number): void {
    this.#changedAt = now;
    this.#ctx.counters.syncEntriesReceived += m.entries.length;
    const state = this.#state(sender);
    state.entriesReceived += m.entries.length;
    state.lastRepair = now;
    for (const e of m.entries) this.#ctx.mergeRemote(e, from, now);
  }

  /** A step of a peer's descent: answered from our tree as it is now. */
  onSync(m: SyncMessage, sender: string, from: string, now: number): void {
    const { counters, outbox } = this.#ctx;
    const replies = syncReply(
      this.#ctx.store,
      m,
      m.type === "sync-root" && this.#speaksCompact(sender)
        ? { salt: Math.floor(this.#ctx.random() * RETRY) }
        : undefined,
    );
    if (m.type === "sync-root" && replies.length === 0) {
      counters.syncInSync++;
      this.#state(sender).lastInSync = now;
    } else {
      // A root that differs from ours, or a step of a descent: a peer's store differs.
      this.#changedAt = now;
    }
    if (m.type === "sync-root" && replies.length > 0 && this.#waitsToAnswer(sender, m.count, now)) {
      return;
    }
    for (let r of replies) {
      if (r.type === "entries") {
        // syncReply answers with the store's own (hashed) entries.
        const stored = r.entries as readonly StoredEntry[];
        const entries = this.#large.withoutInFlight(from, stored, now);
        if (entries.length === 0) continue;
        r = { type: "entries", entries };
        counters.syncEntriesSent += entries.length;
        const state = this.#state(sender);
        state.entriesSent += entries.length;
        state.lastRepair = now;
      }
      outbox.send(from, r);
    }
  }

  /** Forgets a member's state (the member was forgotten). */
  forget(id: string): void {
    this.states.delete(id);
    this.#answerLater.delete(id);
  }

  /** Whether the peer's `sys` record says it speaks the compact descent. */
  #speaksCompact(id: string): boolean {
    const record = this.#ctx.store.get("sys", MEMBER_KEY_PREFIX + id);
    return record !== undefined && !record.deleted && speaksCompactSync(record.value);
  }

  #state(peer: string): SyncState {
    let s = this.states.get(peer);
    if (!s) {
      this.states.set(
        peer,
        s = { lastStarted: 0, lastInSync: 0, lastRepair: 0, entriesReceived: 0, entriesSent: 0 },
      );
    }
    return s;
  }
}
