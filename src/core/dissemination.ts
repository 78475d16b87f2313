/**
 * Dissemination: how a write reaches every member quickly. Owns the scheme behind the
 * {@linkcode Dissemination} interface and the default scheme, rumor mongering.
 *
 * The interface, for another scheme to replace the default:
 * - The engine builds the scheme once, with a {@linkcode DisseminationFactory} given as
 *   `EngineOptions.dissemination`, passing the shared {@linkcode DisseminationContext}
 *   (membership, store, outbox, counters, random, config, `mergeRemote`) and the
 *   {@linkcode LargeValueCooldown} the scheme must note large values in when it sends them.
 * - `publish(entries, now)`: at each `Engine.flush`, the local writes since the last flush
 *   that are still current (one version per key), to be spread.
 * - `receive(message, sender, from, now)`: each dissemination message of an envelope
 *   (`rumor`, `tree`, `ihave`, `graft`, `prune`), in order with the envelope's other
 *   messages. Merge entries with `ctx.mergeRemote` (it applies every rule: clock drift,
 *   `sys` ownership, the graveyard). A scheme ignores the types it does not speak.
 * - `memberChanged(id)` (optional): member `id` appeared, changed status, had its `sys`
 *   record change, or was forgotten.
 * - `recordFields` (optional): fields the engine adds to this member's `sys` record, to tell
 *   the others which scheme it speaks.
 * - `endEnvelope(sender, now)`: after the last message of that envelope; a scheme that
 *   batches what it learned from one envelope forwards it here.
 * - `tick(now)` / `nextWakeAt()`: optional periodic work and when it is next due (after
 *   SWIM's probe and suspicions, before the anti-entropy round, in `Engine.tick`).
 * - `queued(toId, messages)` and `departed(toId, messages, at)` (optional): messages for
 *   member `toId` that the engine handed out wait in the transport's send queue, and left
 *   at `at`; a scheme that times their acknowledgements starts the timers then.
 * - `settling(now)` (optional): the writes this member recently broadcast or received
 *   that may still be on their way to other members: how many entries, and until when.
 *   Anti-entropy waits for them (a little: see `anti_entropy.ts`) rather than descend the
 *   Merkle tree for roots that differ only by writes still travelling.
 * Whatever a scheme misses, anti-entropy repairs; a scheme only decides how fast writes
 * spread and at what cost.
 *
 * @module
 */

import type { EngineContext } from "./context.ts";
import { isLarge, type LargeValueCooldown } from "./large_values.ts";
import type {
  GraftMessage,
  IHaveMessage,
  Message,
  PruneMessage,
  RelayMessage,
  RumorMessage,
  TreeMessage,
} from "./messages.ts";
import { sample } from "./random.ts";
import type { StoredEntry } from "./store.ts";

/** What a dissemination scheme gets from the engine. */
export interface DisseminationContext extends EngineContext {
  /** Where large values sent to a peer are noted (and not sent again while in flight). */
  readonly largeValues: LargeValueCooldown;
}

/** The messages the engine hands to the dissemination scheme. */
export type DisseminationMessage =
  | RumorMessage
  | TreeMessage
  | IHaveMessage
  | RelayMessage
  | GraftMessage
  | PruneMessage;

/** A dissemination scheme: see this module's documentation for the contract. */
export interface Dissemination {
  /** Fields added to this member's `sys` record. */
  readonly recordFields?: Readonly<Record<string, unknown>>;
  /** Member `id` appeared, changed status or record, or was forgotten. */
  memberChanged?(id: string): void;
  /** Spreads the local writes made since the last flush (the versions still current). */
  publish(entries: readonly StoredEntry[], now: number): void;
  /** Handles one message received from member `sender` at address `from`. */
  receive(message: DisseminationMessage, sender: string, from: string, now: number): void;
  /** Called after the last message of an envelope from `sender`. */
  endEnvelope(sender: string, now: number): void;
  /** Periodic work due at `now`, if the scheme has any. */
  tick?(now: number): void;
  /** When {@linkcode Dissemination.tick} next has work to do. */
  nextWakeAt?(): number;
  /** Messages for member `toId` wait in a send queue (see the module). */
  queued?(toId: string, messages: readonly Message[]): void;
  /** Messages for member `toId` that were queued left at `at` (see the module). */
  departed?(toId: string, messages: readonly Message[], at: number): void;
  /** Writes recently sent or received here that may still be travelling (see the module). */
  settling?(now: number): Settling;
}

/** Writes that may still be travelling: see {@linkcode Dissemination.settling}. */
export interface Settling {
  /** Entries broadcast or received lately (0: none may still be travelling). */
  readonly entries: number;
  /** Until when the last of them may still be travelling, in ms. */
  readonly until: number;
}

/** Builds a dissemination scheme for an engine. */
export type DisseminationFactory = (ctx: DisseminationContext) => Dissemination;

/**
 * Rumor mongering, the default scheme: a write is pushed at once to `fanout` random live
 * peers; a member that learns something new forwards it at once to `fanout` others, up to
 * a hop limit that grows with log N. Large values are pushed by their writer only.
 */
export class RumorMongering implements Dissemination {
  readonly #ctx: DisseminationContext;
  /** Entries of the current envelope's rumors that were new here. */
  #fresh: StoredEntry[] = [];
  /** The largest hop count among the current envelope's rumors (-1: none). */
  #hop = -1;

  /** The scheme, on the engine's shared state. */
  constructor(ctx: DisseminationContext) {
    this.#ctx = ctx;
  }

  publish(entries: readonly StoredEntry[], now: number): void {
    const { config, membership, outbox, random } = this.#ctx;
    const large = entries.filter(isLarge);
    for (const peer of sample(random, membership.live(), config.fanout)) {
      outbox.send(peer.address, { type: "rumor", hop: 0, entries }, peer.id);
      this.#ctx.largeValues.withoutInFlight(peer.address, large, now); // notes them as in flight
    }
  }

  receive(message: DisseminationMessage, _sender: string, from: string, now: number): void {
    if (message.type !== "rumor") return;
    const { counters, store } = this.#ctx;
    for (const e of message.entries) {
      if (this.#ctx.mergeRemote(e, from, now) === "applied") {
        this.#fresh.push(store.get(e.section, e.key)!);
        counters.rumorEntriesNew++;
      } else {
        counters.rumorEntriesDuplicate++;
      }
    }
    this.#hop = Math.max(this.#hop, message.hop);
  }

  endEnvelope(sender: string, _now: number): void {
    const fresh = this.#fresh, hop = this.#hop;
    this.#fresh = [];
    this.#hop = -1;
    // Large values are not forwarded: `fanout` copies per member of a megabyte would swamp
    // the network. The writer's own push starts them; anti-entropy, one copy per member,
    // does the rest.
    const forward = fresh.filter((e) => !isLarge(e));
    if (forward.length === 0 || hop + 1 > this.#hopLimit()) return;
    const { config, membership, outbox, random } = this.#ctx;
    // One extra pick stands in for the sender, should it be drawn: no O(N) copy per rumor.
    const peers = sample(random, membership.live(), config.fanout + 1)
      .filter((p) => p.id !== sender).slice(0, config.fanout);
    for (const peer of peers) {
      outbox.send(peer.address, { type: "rumor", hop: hop + 1, entries: forward }, peer.id);
    }
    if (peers.length) this.#ctx.counters.rumorsForwarded++;
  }

  #hopLimit(): number {
    const n = this.#ctx.membership.size;
    return 2 * Math.ceil(Math.log(Math.max(2, n)) / Math.log(this.#ctx.config.fanout + 1)) + 2;
  }
}
