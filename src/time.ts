/**
 * Time, injected: a clock and a scheduler. The system pair reads the real clock; the
 * virtual pair ({@linkcode VirtualTime}) only moves when told to, so a simulated cluster
 * runs as fast as the CPU allows and replays exactly.
 *
 * @module
 */

/** Reads the current time in milliseconds since the Unix epoch. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** Runs callbacks later, like `setTimeout`. */
export interface Scheduler {
  /** Runs `callback` once, `ms` milliseconds from now; returns a handle. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a callback by the handle `setTimeout` returned. */
  clearTimeout(handle: unknown): void;
  /**
   * Runs `callback` once, as soon as the current turn of the event loop has ended (as
   * `setImmediate` does). Optional: without it, `setTimeout(callback, 0)` is used.
   */
  soon?(callback: () => void): void;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };

declare function setImmediate(callback: () => void): unknown;

/**
 * The runtime's own timers. `soon` is `setImmediate` where the runtime has it (Node, Bun,
 * Deno 2): it runs within microseconds, where `setTimeout(callback, 0)` waits 1 ms at least
 * (Node, Deno) and longer in a busy loop.
 */
export const systemScheduler: Scheduler = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  ...(typeof globalThis.setImmediate === "function" &&
    { soon: (callback: () => void) => void setImmediate(callback) }),
};

interface Timer {
  readonly at: number;
  readonly seq: number;
  callback: (() => void) | undefined;
}

/**
 * A deterministic clock and scheduler. Callbacks run in order of (due time, order of
 * scheduling), only inside {@linkcode VirtualTime.advance} or
 * {@linkcode VirtualTime.runUntil}.
 *
 * @example Advance time by hand
 * ```ts
 * import { VirtualTime } from "@gossip-kv/gossip-kv";
 * const time = new VirtualTime(0);
 * let fired = false;
 * time.setTimeout(() => fired = true, 100);
 * time.advance(99);
 * console.assert(!fired);
 * time.advance(1);
 * console.assert(fired && time.now() === 100);
 * ```
 */
export class VirtualTime implements Clock, Scheduler {
  #now: number;
  #seq = 0;
  readonly #heap: Timer[] = [];

  /** Starts the clock at `start` ms (default 2026-01-01T00:00:00Z). */
  constructor(start: number = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  /** The virtual time, in ms. */
  now(): number {
    return this.#now;
  }

  /** Schedules `callback` at now + `ms` of virtual time. */
  setTimeout(callback: () => void, ms: number): unknown {
    const timer: Timer = { at: this.#now + Math.max(0, ms || 0), seq: this.#seq++, callback };
    this.#push(timer);
    return timer;
  }

  /** Cancels a scheduled callback. */
  clearTimeout(handle: unknown): void {
    if (handle && typeof handle === "object" && "callback" in handle) {
      (handle as Timer).callback = undefined;
    }
  }

  /** Number of callbacks waiting. */
  get pending(): number {
    return this.#heap.length;
  }

  /** Runs every callback due within `ms` from now, then sets the clock to now + `ms`. */
  advance(ms: number): void {
    const end = this.#now + ms;
    while (this.#heap.length && this.#heap[0]!.at <= end) this.#runNext();
    this.#now = end;
  }

  /**
   * Runs callbacks in order until `done()` holds (checked after each one) or `maxMs` of
   * virtual time pass. Returns whether `done()` held.
   */
  runUntil(done: () => boolean, maxMs: number): boolean {
    const end = this.#now + maxMs;
    while (!done()) {
      if (!this.#heap.length || this.#heap[0]!.at > end) {
        this.#now = end;
        return done();
      }
      this.#runNext();
    }
    return true;
  }

  #runNext(): void {
    const timer = this.#pop();
    this.#now = Math.max(this.#now, timer.at);
    const callback = timer.callback;
    timer.callback = undefined;
    callback?.();
  }

  #before(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  // Sift with a hole: each level moves one timer, not two (no swap).
  #push(t: Timer): void {
    const h = this.#heap;
    let i = h.length;
    h.push(t);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent]!;
      if (!this.#before(t, p)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = t;
  }

  #pop(): Timer {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    const n = h.length;
    if (n) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.#before(h[r]!, h[l]!) ? r : l;
        if (!this.#before(h[c]!, last)) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
