/**
 * The default dissemination scheme: the tree broadcast of `broadcast.ts` among the members
 * whose `sys` record says they speak it (`tree: 1`), and rumor mongering, as in release
 * 0.1.0, towards the live members that do not. A cluster upgraded one member at a time
 * keeps converging: old members spread rumors among themselves as before, and a new member
 * that learns something from a rumor broadcasts it along the tree.
 *
 * @module
 */

import { TreeBroadcast, type TreeSend } from "./broadcast.ts";
import type {
  Dissemination,
  DisseminationContext,
  DisseminationMessage,
  Settling,
} from "./dissemination.ts";
import type { Message } from "./messages.ts";
import { approxSize, isLarge } from "./large_values.ts";
import { MEMBER_KEY_PREFIX } from "./records.ts";
import { sample } from "./random.ts";
import { Ring } from "./ring.ts";
import type { Entry, StoredEntry } from "./store.ts";

/**
 * The value of the `tree` field of a member's `sys` record when it takes part in the tree
 * broadcast. Members without it get rumors instead.
 */
export const TREE_PROTOCOL = 1;

/** Retransmission timeouts a write may still be travelling after it was last seen fresh. */
const SETTLE_RTOS = 2;

/**
 * Entries (roughly, in bytes) per tree message: one datagram each under the default MTU
 * (1,400 bytes). The estimate counts a small entry ~7 bytes more than its encoding, and the
 * envelope, the message's own fields and sealing take under 100 bytes. Each datagram costs
 * its sender and receiver CPU of its own (a send, a receive, an acknowledgement): at 1,000,
 * a burst of 1,000 small writes to 64 members over UDP took ~4,000 datagrams, at 1,250
 * ~3,200, and its last member had them sooner.
 */
const TREE_CHUNK_BYTES = 1250;

/** The tree broadcast, with rumors for the members that do not speak it. */
export class TreeDissemination implements Dissemination {
  readonly recordFields: Readonly<Record<string, unknown>> = Object.freeze({
    tree: TREE_PROTOCOL,
  });
  readonly #ctx: DisseminationContext;
  readonly #tree: TreeBroadcast;
  /** Live members that do not speak the tree: they get rumors. */
  readonly #legacy = new Set<string>();
  /** Entries of the current envelope's rumors that were new here, and their largest hop. */
  #fresh: StoredEntry[] = [];
  #hop = -1;
  #nextResyncAt: number;
  /** Writes broadcast from here or first received here lately: [when, entries], in order. */
  readonly #recent = new RecentWrites();

  /** The scheme, on the engine's shared state. */
  constructor(ctx: DisseminationContext, now: number) {
    this.#ctx = ctx;
    this.#tree = new TreeBroadcast(
      ctx.id,
      {
        ackDelayMs: ctx.config.ackDelayMs,
        retransmitMs: ctx.config.retransmitMs,
      },
      now,
      (v) => approxSize(v),
    );
    this.#nextResyncAt = now + ctx.config.gossipIntervalMs;
  }

  /** The tree broadcast (its counters: duplicates, acknowledgements, retransmissions). */
  get tree(): TreeBroadcast {
    return this.#tree;
  }

  memberChanged(id: string): void {
    if (id === this.#ctx.id) return;
    const { membership, store } = this.#ctx;
    const m = membership.get(id);
    const live = m !== undefined && (m.status === "alive" || m.status === "suspect");
    const record = store.get("sys", MEMBER_KEY_PREFIX + id);
    const version = record && !record.deleted
      ? (record.value as { tree?: unknown } | undefined)?.tree
      : undefined;
    const speaks = live && typeof version === "number" && version >= TREE_PROTOCOL;
    this.#tree.overlay.set(id, speaks);
    if (live && !speaks) this.#legacy.add(id);
    else this.#legacy.delete(id);
  }

  publish(entries: readonly StoredEntry[], now: number): void {
    const { config, membership, outbox, largeValues } = this.#ctx;
    const large = entries.filter(isLarge);
    const small = large.length ? entries.filter((e) => !isLarge(e)) : entries;
    if (large.length) {
      // Large values go to `fanout` peers only; anti-entropy carries one copy to the rest.
      for (const peer of sample(this.#ctx.random, membership.live(), config.fanout)) {
        outbox.send(peer.address, { type: "rumor", hop: 0, entries: large }, peer.id);
        largeValues.withoutInFlight(peer.address, large, now); // notes them as in flight
      }
    }
    if (small.length) {
      this.#recent.push(now, small.length);
      this.#broadcast(small, now);
      this.#rumor(small, 0, undefined);
    }
  }

  receive(m: DisseminationMessage, sender: string, from: string, now: number): void {
    const { counters, store } = this.#ctx;
    switch (m.type) {
      case "rumor":
        for (const e of m.entries) {
          if (this.#ctx.mergeRemote(e, from, now) === "applied") {
            this.#fresh.push(store.get(e.section, e.key)!);
            counters.rumorEntriesNew++;
          } else counters.rumorEntriesDuplicate++;
        }
        this.#hop = Math.max(this.#hop, m.hop);
        break;
      case "tree": {
        const r = this.#tree.receiveTree(sender, m, now);
        this.#send(r.sends);
        if (!r.fresh) break;
        this.#recent.push(now, m.entries.length);
        // The message is kept (to forward and retransmit it) as long as the store keeps
        // what it applied: it keeps the stored versions instead of equal decoded copies
        // (the same fields, so the same bytes on the wire; half the memory per write).
        const entries = m.entries as Entry[];
        for (let i = 0; i < entries.length; i++) {
          const e = entries[i]!;
          if (this.#ctx.mergeRemote(e, from, now) !== "applied") {
            counters.rumorEntriesDuplicate++;
            continue;
          }
          counters.rumorEntriesNew++;
          // Stored by that merge, unless the engine merged another version since (its own
          // record, rewritten): then the fields differ, and the received copy stays.
          const stored = store.lastStored;
          if (stored && sameVersion(stored, e)) entries[i] = stored;
        }
        break;
      }
      case "ihave":
        this.#tree.receiveIHave(sender, m, now);
        break;
      case "relay":
        this.#send(this.#tree.receiveRelay(sender, m, now));
        break;
        // `graft` and `prune` (types 24 and 25) are not sent by this release: ignored.
    }
  }

  endEnvelope(sender: string, now: number): void {
    const fresh = this.#fresh, hop = this.#hop;
    this.#hop = -1;
    // Most envelopes bring no rumor: no new array for them.
    if (fresh.length === 0) return;
    this.#fresh = [];
    // Large values are not forwarded (see `RumorMongering`).
    const forward = fresh.filter((e) => !isLarge(e));
    if (forward.length === 0) return;
    this.#recent.push(now, forward.length);
    // The rumor came from a member that does not speak the tree (or did not know yet that
    // we do): the tree carries what is new to its members, and the rumor goes on among
    // the members that do not speak it.
    this.#broadcast(forward, now);
    if (hop + 1 <= this.#hopLimit() && this.#rumor(forward, hop + 1, sender)) {
      this.#ctx.counters.rumorsForwarded++;
    }
  }

  tick(now: number): void {
    if (now >= this.#nextResyncAt) {
      // Every status change is reported, but re-place everyone now and then all the same:
      // O(N) per anti-entropy period.
      this.#nextResyncAt = now + this.#ctx.config.gossipIntervalMs;
      for (const m of this.#ctx.membership.all()) this.memberChanged(m.id);
    }
    this.#send(this.#tree.tick(now));
  }

  nextWakeAt(): number {
    return Math.min(this.#nextResyncAt, this.#tree.nextWakeAt());
  }

  /**
   * A write broadcast from here, or first received here, reaches the rest of its tree
   * within a few round trips, or a retransmission timeout or two when copies are lost: for
   * {@linkcode SETTLE_RTOS} timeouts after it was seen here, it may still be travelling.
   */
  settling(now: number): Settling {
    const horizon = SETTLE_RTOS * this.#tree.rto;
    this.#recent.dropBefore(now - horizon);
    return { entries: this.#recent.entries, until: this.#recent.lastAt + horizon };
  }

  /** Broadcasts entries along the tree, in messages of one datagram each. */
  #broadcast(entries: readonly StoredEntry[], now: number): void {
    // One entry is one message (most writes): no chunks to make. The message keeps the
    // caller's array, which nothing changes after.
    if (entries.length === 1) {
      this.#send(this.#tree.originate(entries, now, true));
      return;
    }
    const chunks: StoredEntry[][] = [];
    let chunk: StoredEntry[] = [];
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const size = e.key.length + e.writer.length + 24 + (e.deleted ? 0 : approxSize(e.value));
      if (chunk.length && bytes + size > TREE_CHUNK_BYTES) {
        chunks.push(chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(e);
      bytes += size;
    }
    if (chunk.length) chunks.push(chunk);
    const lone = chunks.length === 1;
    for (let i = 0; i < chunks.length; i++) this.#send(this.#tree.originate(chunks[i]!, now, lone));
  }

  #send(sends: readonly TreeSend[]): void {
    // By index: most calls send nothing or one copy, and an iterator costs more than that.
    const { membership, outbox } = this.#ctx;
    for (let i = 0; i < sends.length; i++) {
      const send = sends[i]!;
      const m = membership.get(send.to);
      if (m) outbox.send(m.address, send.message, m.id);
    }
  }

  /** Tree messages for member `toId` wait in a send queue (see `broadcast.ts`). */
  queued(toId: string, messages: readonly Message[]): void {
    for (const m of messages) if (m.type === "tree") this.#tree.queued(toId, m);
  }

  /** Tree messages for member `toId` that were queued left at `at` (see `broadcast.ts`). */
  departed(toId: string, messages: readonly Message[], at: number): void {
    for (const m of messages) if (m.type === "tree") this.#tree.departed(toId, m, at);
  }

  /** Pushes a rumor to `fanout` random live members that do not speak the tree. */
  #rumor(entries: readonly StoredEntry[], hop: number, except: string | undefined): boolean {
    if (this.#legacy.size === 0) return false;
    const { config, membership, outbox, random } = this.#ctx;
    const ids = sample(random, [...this.#legacy], config.fanout + 1)
      .filter((id) => id !== except).slice(0, config.fanout);
    let sent = false;
    for (const id of ids) {
      const m = membership.get(id);
      if (!m) continue;
      outbox.send(m.address, { type: "rumor", hop, entries }, m.id);
      sent = true;
    }
    return sent;
  }

  #hopLimit(): number {
    const n = this.#ctx.membership.size;
    return 2 * Math.ceil(Math.log(Math.max(2, n)) / Math.log(this.#ctx.config.fanout + 1)) + 2;
  }
}

/** Whether two entries are the same version, value included. */
function sameVersion(a: Entry, b: Entry): boolean {
  return a.wall === b.wall && a.logical === b.logical && a.writer === b.writer &&
    a.deleted === b.deleted && a.value === b.value && a.key === b.key && a.section === b.section;
}

/** The fields of a slot of {@linkcode RecentWrites}. */
const AT = 0, COUNT = 1;

/** Counts of entries by time, oldest first; writes at the same ms share one slot. */
class RecentWrites {
  /** Per slot: when, and how many entries (see {@linkcode Ring}). */
  readonly #slots = new Ring(2);
  /** Entries in the slots kept. */
  entries = 0;
  /**
   * When the newest slot was noted (-Infinity: none): a field of its own, read at every
   * push, where the ring's column is a few objects away (each cold, one member among many).
   */
  lastAt = -Infinity;

  push(at: number, n: number): void {
    const slots = this.#slots;
    if (this.lastAt === at) slots.numbers[COUNT]![slots.index(slots.end - 1)]! += n;
    else {
      const i = slots.push();
      slots.numbers[AT]![i] = at;
      slots.numbers[COUNT]![i] = n;
      this.lastAt = at;
    }
    this.entries += n;
  }

  dropBefore(t: number): void {
    const slots = this.#slots;
    while (slots.size > 0 && slots.numbers[AT]![slots.index(slots.start)]! < t) {
      this.entries -= slots.numbers[COUNT]![slots.index(slots.start)]!;
      slots.shift();
    }
    if (slots.size === 0) this.lastAt = -Infinity;
  }
}
