/**
 * A member's traffic counters: datagrams and bytes each way (bytes also by message type),
 * send errors, sends shed under load, and the convergence lag of the last remote write.
 *
 * @module
 */

import type { MessageType } from "./core/messages.ts";
import type { GossipKVStats } from "./types.ts";

/** What {@linkcode Traffic.snapshot} reports: the traffic fields of the member's stats. */
export type TrafficCounts = Omit<GossipKVStats, "engine" | "dropped">;

/**
 * The slot of a message type in {@linkcode BytesByType}'s table: a switch over the known
 * types, the commonest first (a `Map` lookup per message was a fiftieth of a write's CPU);
 * -1 for any other, kept by a map.
 */
function slotOf(type: string): number {
  switch (type) {
    case "tree":
      return 0;
    case "ihave":
      return 1;
    case "ping":
      return 2;
    case "ack":
      return 3;
    case "member":
      return 4;
    case "entries":
      return 5;
    case "sync-root":
      return 6;
    case "sync-nodes":
      return 7;
    case "sync-stamps":
      return 8;
    case "graft":
      return 9;
    case "prune":
      return 10;
    case "relay":
      return 11;
    case "rumor":
      return 12;
    case "ping-req":
      return 13;
    case "sync-branch":
      return 14;
    case "sync-leaf":
      return 15;
    case "sync-want":
      return 16;
    case "sync-pull":
      return 17;
  }
  return -1;
}

/** Slots of the types {@linkcode slotOf} knows. */
const KNOWN_SLOTS = 18;

/**
 * Bytes by message type, in a typed array: adding a fraction of a datagram to a record's
 * number field for every message allocated a number each time (and its keyed access by a
 * variable name was slow). Types are reported in the order first seen.
 */
class BytesByType {
  /** Slots of types {@linkcode slotOf} does not know, from {@linkcode KNOWN_SLOTS} on. */
  readonly #other = new Map<string, number>();
  /** The types seen, in the order first seen, and their slots. */
  readonly #types: string[] = [];
  readonly #slots: number[] = [];
  #bytes = new Float64Array(32);
  /** Whether each slot has been seen. */
  #seen = new Uint8Array(32);

  /** Shares a datagram's `bytes` among its messages' types. */
  addShares(messages: readonly { readonly type: MessageType }[], bytes: number): void {
    const share = bytes / messages.length;
    for (let m = 0; m < messages.length; m++) {
      const type = messages[m]!.type;
      let i = slotOf(type);
      if (i < 0) i = this.#otherSlot(type);
      if (this.#seen[i] === 0) {
        this.#seen[i] = 1;
        this.#types.push(type);
        this.#slots.push(i);
      }
      this.#bytes[i]! += share;
    }
  }

  /** The slot of a type {@linkcode slotOf} does not know, made on first sight. */
  #otherSlot(type: string): number {
    let i = this.#other.get(type);
    if (i !== undefined) return i;
    i = KNOWN_SLOTS + this.#other.size;
    this.#other.set(type, i);
    if (i >= this.#bytes.length) {
      const bytes = new Float64Array(2 * this.#bytes.length);
      bytes.set(this.#bytes);
      this.#bytes = bytes;
      const seen = new Uint8Array(2 * this.#seen.length);
      seen.set(this.#seen);
      this.#seen = seen;
    }
    return i;
  }

  /** The types seen so far and their bytes. */
  toRecord(): Record<string, number> {
    const out: Record<string, number> = {};
    this.#types.forEach((type, i) => out[type] = this.#bytes[this.#slots[i]!]!);
    return out;
  }
}

/** Traffic counters of one member. All grow from 0. */
export class Traffic {
  #datagramsIn = 0;
  #datagramsOut = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #sendErrors = 0;
  #sendsDropped = 0;
  readonly #bytesOutByType = new BytesByType();
  readonly #bytesInByType = new BytesByType();
  #lastConvergenceLagMs: number | null = null;

  /** A datagram of `bytes` bytes arrived (refused ones included). */
  received(bytes: number): void {
    this.#datagramsIn++;
    this.#bytesIn += bytes;
  }

  /** The messages of a datagram of `bytes` bytes (as received) were accepted. */
  receivedMessages(messages: readonly { readonly type: MessageType }[], bytes: number): void {
    this.#bytesInByType.addShares(messages, bytes);
  }

  /** A datagram of `bytes` bytes was handed to the transport. */
  sent(bytes: number): void {
    this.#datagramsOut++;
    this.#bytesOut += bytes;
  }

  /** `messages` left in datagrams of `bytes` bytes in all. */
  sentMessages(messages: readonly { readonly type: MessageType }[], bytes: number): void {
    this.#bytesOutByType.addShares(messages, bytes);
  }

  /** The transport failed to send a datagram. */
  sendError(): void {
    this.#sendErrors++;
  }

  /** A datagram was shed before sending: too many sends were queued. */
  sendDropped(): void {
    this.#sendsDropped++;
  }

  /** A remote write arrived `lagMs` after it was made. */
  convergenceLag(lagMs: number): void {
    this.#lastConvergenceLagMs = Math.max(0, lagMs);
  }

  /** The counters now (the by-type records copied). */
  snapshot(): TrafficCounts {
    return {
      datagramsIn: this.#datagramsIn,
      datagramsOut: this.#datagramsOut,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      bytesOutByType: this.#bytesOutByType.toRecord(),
      bytesInByType: this.#bytesInByType.toRecord(),
      sendErrors: this.#sendErrors,
      sendsDropped: this.#sendsDropped,
      lastConvergenceLagMs: this.#lastConvergenceLagMs,
    };
  }
}
