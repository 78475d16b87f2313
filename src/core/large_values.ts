/**
 * The large-value rules: which entries count as large, and the per-peer cooldown that keeps
 * a large value from being sent again while the peer still reassembles its fragments.
 *
 * @module
 */

import type { Entry, StoredEntry } from "./store.ts";

/** Values above this many bytes (roughly) count as large: see `largeEntryCooldownMs`. */
export const LARGE_ENTRY_BYTES = 8 * 1024;

/** A cheap estimate of a value's encoded size, exact enough to tell large from small. */
export function approxSize(value: unknown, limit: number = LARGE_ENTRY_BYTES + 1): number {
  if (typeof value === "string") return value.length;
  if (value instanceof Uint8Array) return value.length;
  if (typeof value !== "object" || value === null) return 9;
  let size = 1;
  const stack: unknown[] = [value];
  while (stack.length && size <= limit) {
    const v = stack.pop();
    if (typeof v === "string") size += v.length + 1;
    else if (v instanceof Uint8Array) size += v.length + 1;
    else if (v instanceof Map) { for (const [k, x] of v) stack.push(k, x); }
    else if (Array.isArray(v)) stack.push(...v);
    else if (typeof v === "object" && v !== null && !(v instanceof Date)) {
      for (const [k, x] of Object.entries(v)) stack.push(k, x);
    } else size += 9;
  }
  return size;
}

/** Whether an entry's value is large: see `largeEntryCooldownMs`. */
export function isLarge(e: Entry): boolean {
  return !e.deleted && approxSize(e.value) > LARGE_ENTRY_BYTES;
}

/** Large entries recently sent, by destination address, with when they may be sent again. */
export class LargeValueCooldown {
  readonly #cooldownMs: number;
  /** Destination → entry hash → until when not to resend. */
  readonly #sent = new Map<string, Map<string, number>>();

  /** A cooldown of `cooldownMs` per large entry and destination. */
  constructor(cooldownMs: number) {
    this.#cooldownMs = cooldownMs;
  }

  /**
   * Drops from `entries` the large ones sent to `to` less than the cooldown ago, and notes
   * the rest as sent. A large value travels as hundreds of fragments; while the peer is
   * still reassembling it, its Merkle tree still differs, and without this every
   * anti-entropy round would send the whole value again.
   */
  withoutInFlight(to: string, entries: readonly StoredEntry[], now: number): StoredEntry[] {
    let recent = this.#sent.get(to);
    const out: StoredEntry[] = [];
    for (const e of entries) {
      if (isLarge(e)) {
        const id = `${e.ea}:${e.eb}`;
        const until = recent?.get(id);
        if (until !== undefined && until > now) continue;
        if (!recent) this.#sent.set(to, recent = new Map());
        recent.set(id, now + this.#cooldownMs);
      }
      out.push(e);
    }
    return out;
  }

  /** Forgets the cooldowns that ended by `now`. */
  expire(now: number): void {
    for (const [to, recent] of this.#sent) {
      for (const [id, until] of recent) if (until <= now) recent.delete(id);
      if (recent.size === 0) this.#sent.delete(to);
    }
  }
}
