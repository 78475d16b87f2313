/**
 * Send pacing for the UDP adapters: {@linkcode SendQueue}.
 *
 * @module
 */

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

const hasImmediate = typeof globalThis.setImmediate === "function" &&
  typeof globalThis.clearImmediate === "function";

/** Options of {@linkcode SendQueue}. */
export interface SendQueueOptions {
  /**
   * Wait for a `setTimeout(0)` between bursts rather than `setImmediate`. Node and Bun poll
   * for I/O before every `setImmediate` callback, within microseconds, while `setTimeout(0)`
   * waits 1 ms at least and longer in a busy loop (at 16 datagrams a turn, a few thousand a
   * second at most). Deno's `setImmediate` is as quick but lets its I/O be polled only every
   * few dozen turns (measured: a receiver in the same process found up to 91 datagrams
   * waiting, and a burst of 2,000 overflowed it, with `Deno.listenDatagram` or `node:dgram`):
   * on Deno, bursts wait for timers. The timer-paced queues of a process send
   * {@linkcode PROCESS_BURST} datagrams a turn at most, together.
   */
  readonly timerTurns?: boolean;
  /** Datagrams sent per turn at most. Default {@linkcode SEND_BURST}. */
  readonly burst?: number;
}

/**
 * Datagrams that all the timer-paced queues of a process (Deno's) send in one turn together,
 * each still at most its own `burst`. Deno reads about 120 datagrams a turn across all the
 * sockets of a process (measured: 64 sockets, 20 datagrams each a turn), and a socket's
 * buffer holds 92 datagrams of 1,000 bytes (Linux's default 208 KiB, which Deno cannot
 * raise): 64 members in one process, each sending 16 a turn, sent up to 1,024 a turn, and
 * a burst of 1,000 writes to 64 members lost 4,000 to 49,000 datagrams in the kernel (each
 * loss a retransmission, adding to the load): 19,000 to 95,000 datagrams instead of 4,100
 * and 1.9 to 6.1 s. Shared 64 a turn: none lost, 4,600 to 5,200 datagrams, 0.5 to 0.6 s
 * (48 and 80: none lost either; 128: 7,000 to 22,000 lost). A process with one member sends
 * its 16 a turn as before.
 */
export const PROCESS_BURST = 64;

/**
 * The budget of {@linkcode PROCESS_BURST} datagrams a turn that the timer-paced queues of
 * this process share, serving them in turn (the queue that waited longest first).
 *
 * Small datagrams overtake large ones within a queue only, not across queues. Serving every
 * queue's small ones first in a turn was measured (1,000 writes to 64 members in one Deno
 * process, 3 runs of 5 bursts alternating): the round trips of the tree's acknowledgements
 * fell from 35-65 ms to 11-27 ms (medians of a burst), its retransmissions by half, but the
 * timeout derived from them also bounds how long anti-entropy waits for writes still
 * travelling, and those wait in the queues behind (large datagrams: 50-125 ms): anti-entropy
 * then sent 1,100 to 2,300 `entries` messages per 5 bursts instead of 120 to 340, and the
 * bursts took longer (medians 514-780 ms against 381-638 ms). So did a fairer share, 4
 * datagrams a queue a turn instead of 16 (medians 463-596 ms against 346-416 ms, 720 to 840
 * `entries` messages against 40 to 90), and either with anti-entropy's wait held at 300 ms at
 * least (medians 405-489 ms against 360-385 ms).
 */
class SharedTurns {
  readonly #burst: number;
  #sent = 0;
  /** Counts turns: a queue's own count of the turn is stale when this moved on. */
  turn = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #waiting = new Set<SendQueue>();

  constructor(burst: number) {
    this.#burst = burst;
  }

  /** Takes one datagram of this turn's budget, if any is left. */
  take(): boolean {
    if (this.#sent >= this.#burst) return false;
    this.#sent++;
    this.#arm();
    return true;
  }

  /** `queue` has datagrams waiting: it is served in a later turn. */
  wait(queue: SendQueue): void {
    this.#waiting.add(queue);
    this.#arm();
  }

  leave(queue: SendQueue): void {
    this.#waiting.delete(queue);
  }

  #arm(): void {
    this.#timer ??= setTimeout(() => this.#turn(), 0);
  }

  #turn(): void {
    this.#timer = undefined;
    this.turn++;
    this.#sent = 0;
    for (const queue of [...this.#waiting]) {
      if (this.#sent >= this.#burst) break;
      // Served queues go to the back (drain() adds them again if they still wait).
      this.#waiting.delete(queue);
      queue.drain();
    }
    if (this.#waiting.size > 0) this.#arm();
  }
}

/** The one budget of this process's timer-paced queues. */
let shared: SharedTurns | undefined;

interface Queued {
  readonly to: string;
  readonly data: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Sends at most {@linkcode SEND_BURST} datagrams (or the `burst` asked for) per event-loop turn
 * and queues the rest.
 * Why: a 1 MiB value is ~760 fragments sent in one synchronous burst, and a receiving
 * socket buffers only ~200 KiB (Linux `net.core.rmem_default`); beyond that the kernel
 * drops datagrams silently, and one lost fragment loses the whole value. Yielding lets
 * receivers (often in this same process, in tests) drain their buffers between bursts.
 * Small datagrams overtake queued large ones, so probes are not delayed behind a value.
 */
export class SendQueue {
  readonly #send: (to: string, data: Uint8Array) => void | Promise<unknown>;
  readonly #small: Queued[] = [];
  readonly #queue: Queued[] = [];
  #sent = 0;
  #timer: unknown;
  #closed = false;
  readonly #immediate: boolean;
  readonly #burst: number;
  readonly #shared: SharedTurns | undefined;
  #turnOf = -1;

  /**
   * A queue around `send`, which throws or rejects when a datagram cannot be sent. A
   * synchronous `send` costs no promise for a datagram sent at once.
   */
  constructor(
    send: (to: string, data: Uint8Array) => void | Promise<unknown>,
    options: SendQueueOptions = {},
  ) {
    this.#send = send;
    this.#immediate = hasImmediate && options.timerTurns !== true;
    this.#burst = options.burst ?? SEND_BURST;
    this.#shared = options.timerTurns === true
      ? (shared ??= new SharedTurns(PROCESS_BURST))
      : undefined;
  }

  /** Sends what this turn's budgets allow (called by the shared budget's turn). */
  drain(): void {
    const s = this.#shared!;
    this.#join(s);
    while (this.#sent < this.#burst && (this.#small.length || this.#queue.length) && s.take()) {
      const q = (this.#small.shift() ?? this.#queue.shift())!;
      this.#sent++;
      this.#dispatch(q);
    }
    if (this.#small.length || this.#queue.length) s.wait(this);
  }

  /** Starts this queue's count of the shared budget's turn, if the turn moved on. */
  #join(s: SharedTurns): void {
    if (this.#turnOf !== s.turn) {
      this.#turnOf = s.turn;
      this.#sent = 0;
    }
  }

  #dispatch(q: Queued): void {
    let sending: void | Promise<unknown>;
    try {
      sending = this.#send(q.to, q.data);
    } catch (error) {
      q.reject(error);
      return;
    }
    if (sending) sending.then(() => q.resolve(), q.reject);
    else q.resolve();
  }

  /**
   * Sends now if this turn's burst allows (returning what `send` returns, or throwing what
   * it throws), else later; a queued datagram's promise rejects if the transport closes.
   */
  send(to: string, data: Uint8Array): void | Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error("Transport is closed"));
    const s = this.#shared;
    if (s) this.#join(s);
    else this.#arm();
    const idle = this.#small.length === 0 && this.#queue.length === 0;
    if (idle && this.#sent < this.#burst && (s?.take() ?? true)) {
      this.#sent++;
      return this.#send(to, data);
    }
    s?.wait(this);
    const lane = data.length <= SMALL_DATAGRAM ? this.#small : this.#queue;
    return new Promise<void>((resolve, reject) => lane.push({ to, data, resolve, reject }));
  }

  /** Rejects what is still queued and stops. */
  close(): void {
    this.#closed = true;
    this.#shared?.leave(this);
    if (this.#timer !== undefined) {
      if (this.#immediate) clearImmediate(this.#timer);
      else clearTimeout(this.#timer as ReturnType<typeof setTimeout>);
    }
    for (const q of [...this.#small.splice(0), ...this.#queue.splice(0)]) {
      q.reject(new Error("Transport is closed"));
    }
  }

  #arm(): void {
    this.#timer ??= this.#immediate
      ? setImmediate(() => this.#turn())
      : setTimeout(() => this.#turn(), 0);
  }

  #turn(): void {
    this.#timer = undefined;
    this.#sent = 0;
    while (this.#sent < this.#burst) {
      const q = this.#small.shift() ?? this.#queue.shift();
      if (q === undefined) break;
      this.#sent++;
      this.#dispatch(q);
    }
    if (this.#sent > 0) this.#arm();
  }
}
