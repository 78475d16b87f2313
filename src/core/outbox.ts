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

/** Messages waiting to be sent, grouped by address, and updates waiting to piggyback. */
export class Outbox {
  readonly #self: string;
  readonly #maxPiggyback: number;
  readonly #sent: Record<MessageType, number>;
  readonly #messages = new Map<string, Message[]>();
  readonly #ids = new Map<string, string>();
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

  /** Queues a message; `toId`, when known, lets the piggyback put news about it first. */
  send(to: string, message: Message, toId?: string): void {
    if (to === this.#self) return;
    let list = this.#messages.get(to);
    if (!list) this.#messages.set(to, list = []);
    list.push(message);
    if (toId !== undefined) this.#ids.set(to, toId);
  }

  /** Queues a membership update to piggyback on the next `times` batches. */
  broadcast(update: MemberMessage, times: number): void {
    this.#broadcasts.push(update, times);
  }

  /** Takes the messages queued for `to` alone: no piggybacked updates, not counted. */
  takeFor(to: string): Message[] {
    const list = this.#messages.get(to) ?? [];
    this.#messages.delete(to);
    this.#ids.delete(to);
    return list;
  }

  /** Takes every queued batch, with piggybacked updates unless `piggyback` is false. */
  take(piggyback: boolean): readonly Outgoing[] {
    if (this.#messages.size === 0) return NOTHING;
    const outgoing: Outgoing[] = [];
    const sent = this.#sent;
    for (const [to, messages] of this.#messages) {
      const toId = this.#ids.get(to);
      if (piggyback && this.#broadcasts.size > 0) {
        messages.push(...this.#broadcasts.take(this.#maxPiggyback, toId));
      }
      for (let i = 0; i < messages.length; i++) sent[messages[i]!.type]++;
      outgoing.push(toId === undefined ? { to, messages } : { to, messages, toId });
    }
    this.#messages.clear();
    if (this.#ids.size) this.#ids.clear();
    return outgoing;
  }
}
