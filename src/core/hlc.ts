/**
 * Hybrid logical clock (Kulkarni et al., "Logical physical clocks", 2014).
 *
 * A stamp is wall-clock milliseconds plus a logical counter. Local stamps never go
 * backwards and always exceed every stamp this clock has observed, so a write made after
 * seeing another write wins over it, even when the two machines' clocks disagree. A
 * remote stamp further in the future than `maxDriftMs` is refused (the engine counts it) instead of
 * being adopted: one machine with a bad clock must not drag the whole cluster into the
 * future.
 *
 * @module
 */

/** A point in hybrid logical time. */
export interface Stamp {
  /** Wall-clock milliseconds since the Unix epoch. */
  readonly wall: number;
  /** Counter that orders events within one millisecond. */
  readonly logical: number;
}

/** Orders two stamps: negative if `a` is earlier, positive if later, 0 if equal. */
export function compareStamps(a: Stamp, b: Stamp): number {
  return a.wall - b.wall || a.logical - b.logical;
}

/** Default bound on how far a peer's stamp may be ahead of our wall clock: one minute. */
export const DEFAULT_MAX_DRIFT_MS = 60_000;

/** Options for {@linkcode HybridClock}. */
export interface HybridClockOptions {
  /** Refuse remote stamps more than this far ahead of the local wall clock. */
  maxDriftMs?: number;
}

/** A hybrid logical clock. Time is passed in; the clock never reads it itself. */
export class HybridClock {
  #wall = 0;
  #logical = 0;
  readonly maxDriftMs: number;

  constructor(options: HybridClockOptions = {}) {
    this.maxDriftMs = options.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS;
    if (!(this.maxDriftMs >= 0)) throw new RangeError("maxDriftMs must be a non-negative number");
  }

  /** A new stamp for a local event at wall time `now`, later than every stamp seen so far. */
  tick(now: number): Stamp {
    now = Math.floor(now);
    if (now > this.#wall) {
      this.#wall = now;
      this.#logical = 0;
    } else {
      this.#logical++;
    }
    return { wall: this.#wall, logical: this.#logical };
  }

  /**
   * Takes note of a remote stamp at wall time `now`. Returns `false` when the stamp lies
   * more than `maxDriftMs` in the future; the caller must then refuse (and count)
   * whatever carried it.
   */
  observe(remote: Stamp, now: number): boolean {
    if (remote.wall > now + this.maxDriftMs) return false;
    if (
      remote.wall > this.#wall || (remote.wall === this.#wall && remote.logical > this.#logical)
    ) {
      this.#wall = remote.wall;
      this.#logical = remote.logical;
    }
    return true;
  }

  /** The latest stamp issued or observed. */
  get last(): Stamp {
    return { wall: this.#wall, logical: this.#logical };
  }
}
