/**
 * Anti-entropy bookkeeping: when to open a round and with whom, the replies to a peer's
 * round (the descent itself is `sync.ts`), and the last exchange with each peer.
 *
 * @module
 */

import type { EngineContext } from "./context.ts";
import type { LargeValueCooldown } from "./large_values.ts";
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

/** A message of the Merkle descent (everything `syncReply` answers but `entries`). */
export type SyncMessage = Extract<Message, { type: `sync-${string}` }>;

/** The anti-entropy part of the engine. */
export class AntiEntropy {
  /** The last exchange with each peer, by member id. */
  readonly states: Map<string, SyncState> = new Map();
  readonly #ctx: EngineContext;
  readonly #large: LargeValueCooldown;
  #nextRoundAt: number;

  /** Draws the first round time at random, to spread the rounds of a cluster started at once. */
  constructor(ctx: EngineContext, large: LargeValueCooldown, now: number) {
    this.#ctx = ctx;
    this.#large = large;
    this.#nextRoundAt = now + Math.floor(ctx.random() * ctx.config.gossipIntervalMs);
  }

  /**
   * Opens a round with one random live peer when due. Alone (a lost join, or every peer
   * gone), calls `alone` instead, every round.
   */
  tick(now: number, alone: () => void): void {
    if (now < this.#nextRoundAt) return;
    const { config, membership, random } = this.#ctx;
    this.#nextRoundAt = now + config.gossipIntervalMs;
    const live = membership.partners();
    if (live.length === 0) {
      alone();
      return;
    }
    const peer = live[Math.floor(random() * live.length)]!;
    this.#ctx.counters.syncRounds++;
    this.#state(peer.id).lastStarted = now;
    this.#ctx.outbox.send(peer.address, syncRoot(this.#ctx.store), peer.id);
  }

  /** When the next round is due. */
  nextWakeAt(): number {
    return this.#nextRoundAt;
  }

  /** Entries a peer sent in answer to a round: merged under the store's rules. */
  onEntries(m: EntriesMessage, sender: string, from: string, now: number): void {
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
