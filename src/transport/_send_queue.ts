/**
 * Send pacing for the UDP adapters: {@linkcode SendQueue}.
 *
 * @module
 */

import { denoGlobal } from "../_runtime.ts";

/**
 * Datagrams a transport sends in one event-loop turn before it lets the others run. At 32,
 * Deno's `node:dgram` already loses datagrams of a burst on loopback (measured: 2,000
 * datagrams of 1,400 bytes, 1,828 to 1,992 arrived); at 16, none were lost.
 */
export const SEND_BURST = 16;
/** Queued datagrams up to this size (pings, acks, membership) go before larger ones. */
const SMALL_DATAGRAM = 512;

declare function setImmediate(callback: () => void): unknown;
declare function clearImmediate(handle: unknown): void;

/**
 * How a queue waits for the next turn of the event loop. Node and Bun poll for I/O before
 * every `setImmediate` callback, within microseconds, while `setTimeout(0)` waits 1 ms at
 * least and longer in a busy loop (at 16 datagrams a turn, a few thousand a second at
 * most). Deno's `setImmediate` is as quick but lets its I/O be polled only every few dozen
 * turns (measured: a receiver in the same process found up to 91 datagrams waiting, and a
 * burst of 2,000 overflowed its socket buffer), so Deno keeps `setTimeout(0)`.
 */
const immediate = denoGlobal() === undefined && typeof globalThis.setImmediate === "function" &&
  typeof globalThis.clearImmediate === "function";
const nextTurn = (f: () => void): unknown => immediate ? setImmediate(f) : setTimeout(f, 0);
const cancelTurn = (handle: unknown): void =>
  immediate ? clearImmediate(handle) : clearTimeout(handle as ReturnType<typeof setTimeout>);

interface Queued {
  readonly to: string;
  readonly data: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Sends at most {@linkcode SEND_BURST} datagrams per event-loop turn and queues the rest.
 * Why: a 1 MiB value is ~760 fragments sent in one synchronous burst, and a receiving
 * socket buffers only ~200 KiB (Linux `net.core.rmem_default`); beyond that the kernel
 * drops datagrams silently, and one lost fragment loses the whole value. Yielding lets
 * receivers (often in this same process, in tests) drain their buffers between bursts.
 * Small datagrams overtake queued large ones, so probes are not delayed behind a value.
 */
export class SendQueue {
  readonly #send: (to: string, data: Uint8Array) => Promise<void>;
  readonly #small: Queued[] = [];
  readonly #queue: Queued[] = [];
  #sent = 0;
  #timer: unknown;
  #closed = false;

  constructor(send: (to: string, data: Uint8Array) => Promise<void>) {
    this.#send = send;
  }

  /** Sends now if this turn's burst allows, else later; rejects if the transport closes. */
  send(to: string, data: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("Transport is closed"));
    this.#arm();
    if (this.#small.length === 0 && this.#queue.length === 0 && this.#sent < SEND_BURST) {
      this.#sent++;
      return this.#send(to, data);
    }
    const lane = data.length <= SMALL_DATAGRAM ? this.#small : this.#queue;
    return new Promise((resolve, reject) => lane.push({ to, data, resolve, reject }));
  }

  /** Rejects what is still queued and stops. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) cancelTurn(this.#timer);
    for (const q of [...this.#small.splice(0), ...this.#queue.splice(0)]) {
      q.reject(new Error("Transport is closed"));
    }
  }

  #arm(): void {
    this.#timer ??= nextTurn(() => this.#turn());
  }

  #turn(): void {
    this.#timer = undefined;
    this.#sent = 0;
    while (this.#sent < SEND_BURST) {
      const q = this.#small.shift() ?? this.#queue.shift();
      if (q === undefined) break;
      this.#sent++;
      this.#send(q.to, q.data).then(q.resolve, q.reject);
    }
    if (this.#sent > 0) this.#arm();
  }
}
