/**
 * The receive loops of Deno's native UDP adapter: {@linkcode Receives}.
 *
 * @module
 */

import type { DenoAddr, DenoDatagramConn } from "../_runtime.ts";

/**
 * Receives kept pending at once on the socket, at most. With one, a member whose event loop
 * also serves many HTTP connections all but stops reading its socket, although its timers run
 * on time, and the kernel drops what arrives (in the fault lab, the cluster's pings and acks
 * with the rest: the peers declared the member dead). Measured with
 * tests/lab/deno_udp_reads.ts (2,000 clients connecting, ~2,900 datagrams/s arriving, two
 * other processes burning a core each), datagrams read per second: one pending, 48-685; 8
 * pending, mostly 30-500; 32 pending, 204-2,256. Each holds a 64 KiB buffer: 2 MiB in all.
 */
export const MAX_PENDING_RECEIVES = 32;

/**
 * Receives kept pending while datagrams arrive one at a time. Every pending receive is woken
 * when one datagram arrives, and all but one find nothing and wait again. 64 members in one
 * process, 1,000 writes (medians of 5 bursts, 5 runs each): 0.36-0.37 s with 32 always
 * pending, 0.28-0.34 s with 4, and the process's kernel time a third lower.
 */
export const MIN_PENDING_RECEIVES = 4;

/**
 * Polls in a row that must complete every pending receive before the loops double. A burst
 * between members of one process fills a few polls; a starved event loop fills them all.
 * 1,000 writes to 64 members in one process, medians of 5 bursts, 3 runs each, alternating
 * in one session: 0.31-0.35 s (3 polls) against 0.40-0.43 s with 32 always pending; in
 * another, 0.35-0.41 s doubling after one full poll, 0.30-0.35 s with 4 always pending.
 */
export const FULL_POLLS = 3;

/**
 * The receive loops of one socket, between {@linkcode MIN_PENDING_RECEIVES} and
 * {@linkcode MAX_PENDING_RECEIVES} of them. Deno settles all the receives that one poll of
 * its event loop completed before any of their continuations runs, so a check queued as a
 * microtask by the first continuation runs after the last: when every pending receive
 * completed in {@linkcode FULL_POLLS} polls in a row, more datagrams are likely waiting, and
 * the loops double; when fewer than half did, loops end down to twice as many as did (and at
 * least the minimum).
 */
export class Receives {
  readonly #conn: DenoDatagramConn;
  readonly #deliver: (data: Uint8Array, hostname: string, port: number) => void;
  readonly #closed: () => boolean;
  /** Loops running, receives completed in this poll, loops asked to end. */
  #loops = 0;
  #completed = 0;
  #surplus = 0;
  /** Polls in a row that completed every pending receive. */
  #full = 0;
  readonly #buffers: Uint8Array[] = [];
  readonly #check = () => this.#adjust();

  constructor(
    conn: DenoDatagramConn,
    deliver: (data: Uint8Array, hostname: string, port: number) => void,
    closed: () => boolean,
  ) {
    this.#conn = conn;
    this.#deliver = deliver;
    this.#closed = closed;
  }

  /** Loops running now (for tests). */
  get loops(): number {
    return this.#loops;
  }

  /** Starts the minimum of loops. */
  start(): void {
    for (let n = 0; n < MIN_PENDING_RECEIVES; n++) void this.#loop();
  }

  #adjust(): void {
    const completed = this.#completed;
    this.#completed = 0;
    if (this.#closed()) return;
    const active = this.#loops - this.#surplus;
    if (completed < active) {
      this.#full = 0;
      const keep = Math.max(MIN_PENDING_RECEIVES, 2 * completed);
      if (keep < active) this.#surplus += active - keep;
    } else if (++this.#full >= FULL_POLLS) {
      this.#full = 0;
      this.#surplus = 0;
      const more = Math.min(this.#loops, MAX_PENDING_RECEIVES - this.#loops);
      for (let n = 0; n < more; n++) void this.#loop();
    }
  }

  async #loop(): Promise<void> {
    this.#loops++;
    // Without a buffer, each receive() allocates 64 KiB; one buffer, then a right-sized copy.
    // Ended loops leave theirs for the next ones: the loops come and go with the bursts.
    const buffer = this.#buffers.pop() ?? new Uint8Array(65536);
    let failures = 0;
    try {
      while (!this.#closed()) {
        if (this.#surplus > 0) {
          this.#surplus--;
          return;
        }
        let datagram: [Uint8Array, DenoAddr];
        try {
          datagram = await this.#conn.receive(buffer);
          failures = 0;
        } catch {
          if (this.#closed()) return; // close() interrupts the pending receive
          // On Windows, an ICMP "port unreachable" for an earlier send surfaces as a receive
          // error (WSAECONNRESET) although the socket is fine: keep reading, but back off in
          // case the error persists. https://github.com/tokio-rs/tokio/issues/2017
          await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 2 ** failures++)));
          continue;
        }
        if (this.#completed++ === 0) queueMicrotask(this.#check);
        this.#deliver(datagram[0].slice(), datagram[1].hostname, datagram[1].port);
      }
    } finally {
      this.#loops--;
      if (!this.#closed()) this.#buffers.push(buffer);
    }
  }
}
