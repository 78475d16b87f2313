/**
 * Seeded pseudo-random numbers, so that a simulated cluster replays exactly from its seed.
 *
 * @module
 */

/** A source of uniformly distributed numbers in [0, 1), like `Math.random`. */
export type Random = () => number;

/**
 * A small, fast, seeded generator (sfc32, seeded through splitmix32). Not for secrets.
 *
 * @example Same seed, same sequence
 * ```ts
 * import { seededRandom } from "@gossip-kv/gossip-kv";
 * const a = seededRandom(42), b = seededRandom(42);
 * console.assert(a() === b());
 * ```
 */
export function seededRandom(seed: number | string): Random {
  let s = typeof seed === "number" ? seed >>> 0 : hashSeed(seed);
  const next32 = () => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = next32(), b = next32(), c = next32(), d = next32();
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 0x1_0000_0000;
  };
}

function hashSeed(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A uniformly random integer in [0, n). */
export function randomInt(random: Random, n: number): number {
  return Math.floor(random() * n);
}

/**
 * Up to `k` distinct items of `items`, chosen uniformly at random. Costs O(k) when `k` is
 * small beside the list (rejection sampling), O(n) otherwise (partial Fisher-Yates).
 */
export function sample<T>(random: Random, items: readonly T[], k: number): T[] {
  const n = items.length;
  if (k >= n) return shuffle(random, items.slice());
  if (k * 4 <= n) {
    const picked = new Set<number>();
    while (picked.size < k) picked.add(randomInt(random, n));
    return [...picked].map((i) => items[i]!);
  }
  const pool = items.slice();
  for (let i = 0; i < k; i++) swap(pool, i, i + randomInt(random, n - i));
  pool.length = k;
  return pool;
}

/** Shuffles `items` in place (Fisher-Yates) and returns it. */
export function shuffle<T>(random: Random, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) swap(items, i, randomInt(random, i + 1));
  return items;
}

function swap<T>(items: T[], i: number, j: number): void {
  const tmp = items[i]!;
  items[i] = items[j]!;
  items[j] = tmp;
}
