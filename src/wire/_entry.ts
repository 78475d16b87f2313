/**
 * The entry layout, one definition for the wire and the storage log: the CBOR array
 * `[kind, key, wall, logical, writer]` for a tombstone, `[..., value]` otherwise, where
 * kind bit 0 is the `sys` section and bit 1 a tombstone; and its field limits.
 *
 * @module
 */

import type { Entry } from "../core/store.ts";
import { assertValue } from "./cbor.ts";

/** Longest member id, cluster name or address accepted, in UTF-16 code units. */
export const MAX_ID_LENGTH = 256;
/** Longest key accepted, in UTF-16 code units. */
export const MAX_KEY_LENGTH = 4096;

/** A field that breaks the layout; the message names it. */
export class LayoutError extends TypeError {}

/** An entry as the array the layout writes (CBOR-encode it to get its bytes). */
export function entryToArray(e: Entry): unknown[] {
  const kind = (e.section === "sys" ? 1 : 0) | (e.deleted ? 2 : 0);
  return e.deleted
    ? [kind, e.key, e.wall, e.logical, e.writer]
    : [kind, e.key, e.wall, e.logical, e.writer, e.value];
}

/** Checks a text field of the layout. */
export function layoutString(v: unknown, what: string, max: number, allowEmpty = false): string {
  if (typeof v !== "string" || (!allowEmpty && v.length === 0) || v.length > max) {
    throw new LayoutError(`${what} is not a string of 1 to ${max} characters`);
  }
  return v;
}

/** Slots of {@linkcode internId}'s table (a power of 2). */
const INTERN_SLOTS = 256;
const interned: (string | undefined)[] = new Array(INTERN_SLOTS).fill(undefined);

/**
 * The copy of member id `s` decoded last time, if its slot still holds it, else `s` (which
 * takes the slot). Each datagram decodes its ids as new strings, and a new string costs a
 * `Map` or `Set` lookup a few hundred ns more than one used as a key before (V8 hashes and
 * looks it up in its string table once per string): every datagram's sender and origin are
 * looked up several times. The slot is picked by a cheap hash of the UTF-16 code units.
 */
export function internId(s: string): string {
  let h = s.length;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  const slot = (h ^ (h >>> 8)) & (INTERN_SLOTS - 1);
  const held = interned[slot];
  if (held === s) return held;
  interned[slot] = s;
  return s;
}

/**
 * The member id held by {@linkcode internId}'s slot for the ASCII text in `bytes[start,
 * start + n)`, without making a string: undefined if the slot holds another text (or the
 * bytes are not ASCII). Same hash as `internId`, whose code units are these bytes.
 */
export function internedAt(bytes: Uint8Array, start: number, n: number): string | undefined {
  let h = n;
  for (let i = 0; i < n; i++) h = (Math.imul(h, 31) + bytes[start + i]!) | 0;
  const held = interned[(h ^ (h >>> 8)) & (INTERN_SLOTS - 1)];
  if (held === undefined || held.length !== n) return undefined;
  for (let i = 0; i < n; i++) {
    const c = bytes[start + i]!;
    if (c >= 0x80 || held.charCodeAt(i) !== c) return undefined;
  }
  return held;
}

/** Checks an unsigned integer field of the layout. */
export function layoutUint(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    throw new LayoutError(`${what} is not an integer from 0 to ${max}`);
  }
  return v;
}

/**
 * The entry a decoded array holds. Throws a {@linkcode LayoutError} naming the first field that breaks
 * the layout (or a value that cannot be replicated).
 */
export function entryFromArray(v: unknown): Entry {
  if (!Array.isArray(v) || v.length < 5 || v.length > 6) {
    throw new LayoutError("entry is not an array of 5 or 6 items");
  }
  const kind = layoutUint(v[0], "entry kind", 3);
  const deleted = (kind & 2) !== 0;
  if (deleted !== (v.length === 5)) {
    throw new LayoutError("entry value does not match its deleted flag");
  }
  const section = kind & 1 ? "sys" : "usr";
  if (!deleted) {
    try {
      assertValue(v[5]);
    } catch (error) {
      throw new LayoutError((error as Error).message);
    }
  }
  return {
    section,
    key: layoutString(v[1], "key", MAX_KEY_LENGTH),
    wall: layoutUint(v[2], "stamp wall time"),
    logical: layoutUint(v[3], "stamp counter"),
    writer: internId(layoutString(v[4], "writer", MAX_ID_LENGTH)),
    deleted,
    value: deleted ? undefined : v[5],
  };
}
