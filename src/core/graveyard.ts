/**
 * The graveyard: which keys had their tombstones collected, and when, so that a version
 * those tombstones superseded is refused instead of resurrecting the key.
 *
 * @module
 */

import { type Entry, keyHash, type Section, type StoredEntry } from "./store.ts";

/** The graveyard remembers collected tombstones for this many grace periods. */
const GRAVEYARD_GRACES = 10;
/** Collected tombstones remembered at most, both sections together (about 50 B each). */
const GRAVEYARD_MAX = 1_000_000;

/** Key hashes of collected tombstones, by section, with their wall time. */
export class Graveyard {
  readonly #graceMs: number;
  readonly #graves: Record<Section, Map<number, number>> = { sys: new Map(), usr: new Map() };
  /** Versions at or before this wall time are refused: the graveyard forgot what it held. */
  #floor = 0;

  /** A graveyard for tombstones collected `graceMs` after their delete. */
  constructor(graceMs: number) {
    this.#graceMs = graceMs;
  }

  /**
   * Whether `e`, unknown here, may be a version a collected tombstone superseded. Only a
   * `settled` member (up for the grace period) judges, and only entries older than the
   * grace period: younger ones cannot be behind a collected tombstone. Within the
   * graveyard's memory it knows which keys it collected tombstones for, and when: a late
   * but legitimate write (a member that lagged, a long partition) is accepted. Beyond that
   * memory (older than `GRAVEYARD_GRACES` grace periods, or evicted for room) it refuses.
   */
  buried(e: Entry, now: number, settled: boolean): boolean {
    if (!settled || e.wall >= now - this.#graceMs) return false;
    if (e.wall <= Math.max(this.#floor, now - GRAVEYARD_GRACES * this.#graceMs)) return true;
    const deletedAt = this.#graves[e.section].get(keyHash(e.section, e.key));
    return deletedAt !== undefined && deletedAt >= e.wall;
  }

  /** Remembers collected tombstones (key hash → wall time), within bounds. */
  bury(collected: readonly StoredEntry[], now: number): void {
    for (const t of collected) {
      const graves = this.#graves[t.section];
      graves.delete(t.ka); // re-insert: the maps stay in order of collection
      graves.set(t.ka, t.wall);
    }
    const horizon = now - GRAVEYARD_GRACES * this.#graceMs;
    for (const section of ["sys", "usr"] as const) {
      const graves = this.#graves[section];
      for (const [ka, wall] of graves) {
        if (wall > horizon && graves.size <= GRAVEYARD_MAX / 2) break;
        graves.delete(ka);
        if (wall > horizon) this.#floor = Math.max(this.#floor, wall);
      }
    }
  }
}
