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
 * Bytes by message type, in a typed array: adding a fraction of a datagram to a record's
 * number field for every message allocated a number each time (and its keyed access by a
 * variable name was slow).
 */
class BytesByType {
  readonly #index = new Map<string, number>();
  readonly #types: string[] = [];
  #bytes = new Float64Array(32);

  /** Shares a datagram's `bytes` among its messages' types. */
  addShares(messages: readonly { readonly type: MessageType }[], bytes: number): void {
    const share = bytes / messages.length;
    for (let m = 0; m < messages.length; m++) {
      const type = messages[m]!.type;
      let i = this.#index.get(type);
      if (i === undefined) {
        i = this.#types.length;
        this.#types.push(type);
        this.#index.set(type, i);
        if (i >= this.#bytes.length) {
          const grown = new Float64Array(2 * this.#bytes.length);
          grown.set(this.#bytes);
          this.#bytes = grown;
        }
      }
      this.#bytes[i]! += share;
    }
  }

  /** The types seen so far and their bytes. */
  toRecord(): Record<string, number> {
    const out: Record<string, number> = {};
    this.#types.forEach((type, i) => out[type] = this.#bytes[i]!);
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
