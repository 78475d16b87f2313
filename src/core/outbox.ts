/**
 * The one outbox the engine's parts share: messages queued per address, the recipient's
 * id when known, and the membership updates piggybacked on every batch when it is taken.
 *
 * @module
 */

import { BroadcastQueue } from "./membership.ts";
import type { MemberMessage, Message, MessageType } from "./messages.ts";

/** Messages for one address. */
export interface Outgoing {
  /** The address to send to. */
  readonly to: string;
  /** The messages, piggybacked membership updates last. */
  readonly messages: readonly Message[];
  /** The id of the member at `to`, when a message of the batch was queued with it. */
  readonly toId?: string;
}

/** What {@linkcode Outbox.take} returns when nothing is queued (most takes). */
const NOTHING: readonly Outgoing[] = Object.freeze([]);
/** Addresses whose position `Outbox.#slots` keeps after their batch is taken, at most. */
const MAX_SLOTS = 4_096;
/** What the position of a batch handed out holds (see `Outbox.#lists`). */
const NO_MESSAGES: Message[] = [];

/** Messages waiting to be sent, grouped by address, and updates waiting to piggyback. */
export class Outbox {
  readonly #self: string;
  readonly #maxPiggyback: number;
  readonly #sent: Record<MessageType, number>;
  /**
   * The batches queued, the first `#queued` positions of `#to`, `#lists` and `#toIds`:
   * arrays kept from take to take (an array made empty gives its room up), read by index at
   * a take, where iterating a map of lists made an array per entry. `#slots` holds the
   * position of an address while it is queued, and after (a stale position is told by
   * `#to`), so that a take empties no map: clearing one makes a new table.
   */
  readonly #slots = new Map<string, number>();
  readonly #to: string[] = [];
  readonly #lists: Message[][] = [];
  /** The id of the member at each address queued, when a message came with it. */
  readonly #toIds: (string | undefined)[] = [];
  #queued = 0;
  readonly #broadcasts = new BroadcastQueue();

  /**
   * An empty outbox for the member at `self` (messages to it are dropped), piggybacking at
   * most `maxPiggyback` updates per batch and counting what it hands out in `sent`.
   */
  constructor(self: string, maxPiggyback: number, sent: Record<MessageType, number>) {
    this.#self = self;
    this.#maxPiggyback = maxPiggyback;
    this.#sent = sent;
  }

  /** The position of the batch queued for `to`, or -1. */
  #slot(to: string): number {
    const i = this.#slots.get(to);
    return i !== undefined && i < this.#queued && this.#to[i] === to ? i : -1;
  }

  /** Queues a message; `toId`, when known, lets the piggyback put news about it first. */
  send(to: string, message: Message, toId?: string): void {
    if (to === this.#self) return;
    const i = this.#slot(to);
    if (i >= 0) {
      this.#lists[i]!.push(message);
      if (toId !== undefined) this.#toIds[i] = toId;
      return;
    }
    const n = this.#queued++;
    this.#slots.set(to, n);
    this.#to[n] = to;
    // Most batches hold one message: a list of one made as such (a push onto an empty array
    // makes room for 17).
    this.#lists[n] = [message];
    this.#toIds[n] = toId;
  }

  /** Queues a membership update to piggyback on the next `times` batches. */
  broadcast(update: MemberMessage, times: number): void {
    this.#broadcasts.push(update, times);
  }

  /** Takes the messages queued for `to` alone: no piggybacked updates, not counted. */
  takeFor(to: string): Message[] {
    const i = this.#slot(to);
    if (i < 0) return [];
    const list = this.#lists[i]!;
    // The batches after it move up one, keeping their order (a client's request is rare).
    const n = --this.#queued;
    for (let j = i; j < n; j++) {
      this.#to[j] = this.#to[j + 1]!;
      this.#lists[j] = this.#lists[j + 1]!;
      this.#toIds[j] = this.#toIds[j + 1];
      this.#slots.set(this.#to[j]!, j);
    }
    this.#lists[n] = NO_MESSAGES;
    this.#slots.delete(to);
    return list;
  }

  /** Takes every queued batch, with piggybacked updates unless `piggyback` is false. */
  take(piggyback: boolean): readonly Outgoing[] {
    const n = this.#queued;
    if (n === 0) return NOTHING;
    const addresses = this.#to, lists = this.#lists, ids = this.#toIds;
    const outgoing = new Array<Outgoing>(n);
    const sent = this.#sent;
    for (let b = 0; b < n; b++) {
      const to = addresses[b]!, messages = lists[b]!, toId = ids[b];
      lists[b] = NO_MESSAGES; // handed out: not kept alive here
      if (piggyback && this.#broadcasts.size > 0) {
        messages.push(...this.#broadcasts.take(this.#maxPiggyback, toId));
      }
      for (let i = 0; i < messages.length; i++) sent[messages[i]!.type]++;
      outgoing[b] = toId === undefined ? { to, messages } : { to, messages, toId };
    }
    this.#queued = 0;
    // Addresses of members long gone, at most a few thousand.
    if (this.#slots.size > MAX_SLOTS) this.#slots.clear();
    return outgoing;
  }
}
