/**
 * Fast synchronous hashing for the Merkle tree.
 *
 * A 64-bit hash is kept as two independent 32-bit lanes (murmur3-style mixing with
 * `Math.imul`), which is much faster in JavaScript than emulating 64-bit FNV with
 * BigInt and is synchronous, unlike WebCrypto. Strings are hashed by UTF-16 code unit,
 * which is identical on every runtime.
 *
 * @module
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** Seeds of the two lanes; part of the wire protocol, never change them. */
export const LANE_A = 0x9747b28c;
/** Seed of the second lane. */
export const LANE_B = 0x3c6ef372;
const WRITER_SEED = 0x5be0cd19;

function mix(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit hash of a string's UTF-16 code units. */
export function hashString(s: string, seed: number): number {
  let h = seed | 0;
  const n = s.length;
  let i = 0;
  for (; i + 1 < n; i += 2) h = mix(h, s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16));
  if (i < n) h = mix(h, s.charCodeAt(i));
  return fmix(h ^ n);
}

/**
 * {@linkcode hashString} of `s` with two seeds at once, in one pass over its code units:
 * the first into `out[0]`, the second into `out[1]`. Returns `out`.
 */
export function hashStringTwice(
  s: string,
  seedA: number,
  seedB: number,
  out: Uint32Array,
): Uint32Array {
  let a = seedA | 0, b = seedB | 0;
  const n = s.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const k = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    a = mix(a, k);
    b = mix(b, k);
  }
  if (i < n) {
    const k = s.charCodeAt(i);
    a = mix(a, k);
    b = mix(b, k);
  }
  out[0] = fmix(a ^ n);
  out[1] = fmix(b ^ n);
  return out;
}

/**
 * The 64-bit hash of one entry version: its key hash lanes, its stamp, its writer and
 * whether it is a tombstone. Two versions of one key always hash differently.
 */
export function entryHash(
  keyA: number,
  keyB: number,
  wall: number,
  logical: number,
  writer: string,
  deleted: boolean,
): [number, number] {
  const w = writerHash(writer, deleted);
  return [entryHashA(keyA, wall, logical, w), entryHashB(keyB, wall, logical, w)];
}

/** The writer's part of {@linkcode entryHash}, shared by its two lanes. */
export function writerHash(writer: string, deleted: boolean): number {
  return hashString(writer, WRITER_SEED) ^ (deleted ? 0x5a5a5a5a : 0);
}

/**
 * The first lane of {@linkcode entryHash}, `w` being {@linkcode writerHash}: the two lanes
 * apart, a caller storing them gets them without the pair's array.
 */
export function entryHashA(keyA: number, wall: number, logical: number, w: number): number {
  const wallLo = wall >>> 0;
  const wallHi = Math.floor(wall / 0x1_0000_0000) | 0;
  return fmix(mix(mix(mix(mix(keyA, wallLo), wallHi), logical | 0), w) ^ 20);
}

/** The second lane of {@linkcode entryHash} (see {@linkcode entryHashA}). */
export function entryHashB(keyB: number, wall: number, logical: number, w: number): number {
  const wallLo = wall >>> 0;
  const wallHi = Math.floor(wall / 0x1_0000_0000) | 0;
  return fmix(mix(mix(mix(mix(keyB, w), logical | 0), wallHi), wallLo) ^ 20);
}

/** Writes a 64-bit hash big-endian into `out` at `offset`. */
export function writeHash(out: Uint8Array, offset: number, a: number, b: number): void {
  out[offset] = a >>> 24;
  out[offset + 1] = a >>> 16;
  out[offset + 2] = a >>> 8;
  out[offset + 3] = a;
  out[offset + 4] = b >>> 24;
  out[offset + 5] = b >>> 16;
  out[offset + 6] = b >>> 8;
  out[offset + 7] = b;
}

/** Reads lane `lane` (0 or 1) of the 64-bit hash at `offset`. */
export function readLane(bytes: Uint8Array, offset: number, lane: 0 | 1): number {
  const o = offset + lane * 4;
  return ((bytes[o]! << 24) | (bytes[o + 1]! << 16) | (bytes[o + 2]! << 8) | bytes[o + 3]!) >>> 0;
}

/** Lowercase hex of a 64-bit hash, 16 characters. */
export function hashHex(a: number, b: number): string {
  return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
}
