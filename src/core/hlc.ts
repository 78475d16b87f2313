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
 * Within that bound, a remote stamp is accepted (the write it carries is applied under its
 * stamp) but moves this clock at most `maxLeadMs` (1 s) ahead of the local wall clock. So a
 * forged or badly skewed stamp (55 s ahead, say) does not drag this member's clock, nor through
 * it every other member's, into the future. Last-writer-wins needs causality per key only: a
 * local write gets a stamp later than the key's current version too
 * ({@linkcode HybridClock.tickAfter}), so a write made after seeing another write of the same
 * key still wins over it, however far ahead that one was stamped.
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

/** Default bound on how far an observed stamp moves the clock ahead of the wall clock: 1 s. */
export const DEFAULT_MAX_LEAD_MS = 1_000;

/** Options for {@linkcode HybridClock}. */
export interface HybridClockOptions {
  /** Refuse remote stamps more than this far ahead of the local wall clock. */
  maxDriftMs?: number;
  /**
   * An observed stamp moves the clock at most this far ahead of the local wall clock (a
   * stamp further ahead is still accepted). Default 1 s, at most `maxDriftMs`.
   */
  maxLeadMs?: number;
}

/** A hybrid logical clock. Time is passed in; the clock never reads it itself. */
export class HybridClock {
  #wall = 0;
  #logical = 0;
  readonly maxDriftMs: number;
  readonly maxLeadMs: number;

  constructor(options: HybridClockOptions = {}) {
    this.maxDriftMs = options.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS;
    if (!(this.maxDriftMs >= 0)) throw new RangeError("maxDriftMs must be a non-negative number");
    const lead = options.maxLeadMs ?? DEFAULT_MAX_LEAD_MS;
    if (!(lead >= 0)) throw new RangeError("maxLeadMs must be a non-negative number");
    this.maxLeadMs = Math.min(lead, this.maxDriftMs);
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
   * A new stamp for a local write at wall time `now`: {@linkcode HybridClock.tick}, or just
   * after `floor` (the current version of the key written) when that is later. A stamp
   * past `floor` is not adopted by the clock: only writes to that key carry it.
   */
  tickAfter(now: number, floor: Stamp | undefined): Stamp {
    const s = this.tick(now);
    if (floor === undefined || compareStamps(s, floor) > 0) return s;
    return { wall: floor.wall, logical: floor.logical + 1 };
  }

  /**
   * Takes note of a remote stamp at wall time `now`. Returns `false` when the stamp lies
   * more than `maxDriftMs` in the future; the caller must then refuse (and count)
   * whatever carried it. An accepted stamp moves the clock to itself, or to
   * `now + maxLeadMs` when it lies further ahead.
   */
  observe(remote: Stamp, now: number): boolean {
    if (remote.wall > now + this.maxDriftMs) return false;
    const lead = Math.floor(now) + this.maxLeadMs;
    const adopt = remote.wall > lead ? { wall: lead, logical: 0 } : remote;
    if (
      adopt.wall > this.#wall || (adopt.wall === this.#wall && adopt.logical > this.#logical)
    ) {
      this.#wall = adopt.wall;
      this.#logical = adopt.logical;
    }
    return true;
  }

  /** The latest stamp issued or observed. */
  get last(): Stamp {
    return { wall: this.#wall, logical: this.#logical };
  }
}
