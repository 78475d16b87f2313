// Part 3: the cost of anti-entropy between two replicas of n keys that differ in d keys,
// beside the minimum: the d entries themselves, encoded as on the wire. Two members of this
// release speak the compact descent; `full: true` measures the full one (release 0.1.0's).
import { seededRandom } from "../src/core/random.ts";
import { type Entry, Store } from "../src/core/store.ts";
import { encodeMessage } from "../src/wire/codec.ts";
import { reconcile } from "../tests/_reconcile.ts";

/** One (n, d) cell. */
export interface ReconcileRow {
  readonly n: number;
  readonly d: number;
  /** Half round trips (one-way waves of messages) and round trips. */
  readonly legs: number;
  readonly roundTrips: number;
  readonly datagrams: number;
  readonly bytes: number;
  /** Bytes of the d newer entries alone (what must cross, at the least). */
  readonly minimum: number;
  /** Entries that crossed: the newer versions, and stale ones sent the wrong way. */
  readonly entriesNeeded: number;
  readonly entriesStale: number;
  /**
   * Exchanges until the roots were equal: more than one when a salted child digest matched
   * by chance and hid a difference (the next exchange, with another salt, finds it).
   */
  readonly exchanges: number;
}

const BASE_WALL = Date.UTC(2026, 0, 1);

/** Encoded size of one entry inside an `entries` message, exactly as on the wire. */
export function entryBytes(e: Entry): number {
  return encodeMessage({ type: "entries", entries: [e, e] }).length -
    encodeMessage({ type: "entries", entries: [e] }).length;
}

/**
 * For each n: two equal stores of n keys (they share the entry objects, as two members'
 * stores would hold equal copies), then, for each d in turn, d keys get a newer version in
 * the second store and one exchange reconciles them. Each d picks keys the earlier ones did
 * not touch, so every exchange starts from exactly d differences.
 */
export function antiEntropy(
  o: { ns: readonly number[]; ds: readonly number[]; full?: boolean },
): ReconcileRow[] {
  const rows: ReconcileRow[] = [];
  for (const n of o.ns) {
    const a = new Store(), b = new Store();
    for (let i = 0; i < n; i++) {
      const { stored } = a.merge({
        section: "usr",
        key: `key-${i}`,
        value: `value-${i}`,
        wall: BASE_WALL + i,
        logical: 0,
        writer: `m${i % 64}`,
        deleted: false,
      });
      b.merge(stored!);
    }
    // A random permutation of the keys, consumed d at a time.
    const order = Array.from({ length: n }, (_, i) => i);
    const random = seededRandom(n);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    let next = 0;
    let wall = BASE_WALL + 10 * n;
    for (const d of o.ds) {
      if (next + d > n) continue;
      let minimum = 0;
      for (let j = 0; j < d; j++) {
        const k = order[next++]!;
        const { stored } = b.merge({
          section: "usr",
          key: `key-${k}`,
          value: `value-${k}'`,
          wall: wall++,
          logical: 0,
          writer: "m1",
          deleted: false,
        });
        minimum += entryBytes(stored!);
      }
      let legs = 0, datagrams = 0, bytes = 0, sent = 0, needed = 0, exchanges = 0;
      const equal = () => a.root().a === b.root().a && a.root().b === b.root().b;
      do {
        if (++exchanges > 10) throw new Error(`n=${n} d=${d}: roots differ after 10 exchanges`);
        const salt = Math.floor(random() * 0x8000);
        const r = reconcile(a, b, o.full ? undefined : { salt });
        legs += r.legs;
        datagrams += r.datagrams;
        bytes += r.bytes;
        sent += r.sentAtoB.length + r.sentBtoA.length;
        needed += r.sentBtoA.filter((e) => e.wall >= BASE_WALL + 10 * n).length;
      } while (!equal());
      rows.push({
        n,
        d,
        legs,
        roundTrips: Math.ceil(legs / 2),
        datagrams,
        bytes,
        minimum,
        entriesNeeded: needed,
        entriesStale: sent - needed,
        exchanges,
      });
    }
  }
  return rows;
}
