/**
 * The one CBOR configuration every member uses, and the rules for user values.
 *
 * Fixed `cbor-x` options make every runtime produce the same bytes for the same value:
 * no record extension (plain CBOR maps, readable by any decoder), `Map` as tag 259 so it
 * survives the trip distinct from a plain object, `Uint8Array` as an untagged byte string,
 * `Date` as tag 1, and minimal map headers.
 *
 * @module
 */

// cbor-x's pure JavaScript encoder and decoder, vendored (see _cbor_x/README.md): the npm
// package cannot be installed by a Deno user of this package, and its main entry would also
// load a native addon and read an environment variable (--allow-env on Deno).
// @ts-types="./_cbor_x/encode.d.ts"
import { Encoder } from "./_cbor_x/encode.js";

const codec = new Encoder({
  // Without records, cbor-x writes a Map with tag 259 by default: it decodes as a Map.
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  variableMapSize: true,
  copyBuffers: true,
});

/** Views any `Uint8Array` (a Node `Buffer` included) as a plain `Uint8Array`. */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Joins byte arrays into one (the one itself when there is only one). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** CBOR-encodes a value (already checked) into a plain `Uint8Array`. */
export function encodeCbor(value: unknown): Uint8Array {
  return plainBytes(codec.encode(value));
}

/** cbor-x's `REUSE_BUFFER_MODE | RESET_BUFFER_MODE`: see {@linkcode encodeCborScratch}. */
const SCRATCH_MODE = 512 | 1024;

/**
 * CBOR-encodes a value (already checked) into the encoder's own buffer, without a copy or
 * a view: the bytes are `[start, end)` of the array returned, valid only until the next
 * call of any encode function here (the next encode writes over them).
 */
export function encodeCborScratch(value: unknown): Uint8Array & { start: number; end: number } {
  return codec.encode(value, SCRATCH_MODE) as Uint8Array & { start: number; end: number };
}

/** Decodes one CBOR item; throws on malformed or truncated input. */
export function decodeCbor(bytes: Uint8Array): unknown {
  return codec.decode(plainBytes(bytes));
}

const MAX_DEPTH = 64;

/**
 * Checks that `value` can be stored and replicated: JSON types, `Uint8Array`, `Date`,
 * `Map`, `bigint` within 64 bits, nested up to 64 levels. Throws a `TypeError` naming
 * the offending path otherwise.
 */
export function assertValue(value: unknown): void {
  if (value === undefined) {
    throw new TypeError("Value must not be undefined: use delete() to remove a key");
  }
  check(value, "value", 0);
}

function check(value: unknown, path: string, depth: number): void {
  if (depth > MAX_DEPTH) {
    throw new TypeError(`Value nests deeper than ${MAX_DEPTH} levels at ${path}`);
  }
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
    case "undefined":
      return;
    case "bigint":
      if (value >= -(2n ** 64n) && value < 2n ** 64n) return;
      throw new TypeError(`Value has a bigint outside 64 bits at ${path}`);
    case "object": {
      if (value === null || value instanceof Uint8Array) return;
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) {
          throw new TypeError(`Value has an invalid Date at ${path}`);
        }
        return;
      }
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) check(value[i], `${path}[${i}]`, depth + 1);
        return;
      }
      if (value instanceof Map) {
        for (const [k, v] of value) {
          check(k, `${path} (a Map key)`, depth + 1);
          check(v, `${path}.get(${String(k)})`, depth + 1);
        }
        return;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        const name = (proto?.constructor as { name?: string } | undefined)?.name ?? "object";
        throw new TypeError(`Value cannot hold a ${name} at ${path}: use plain objects`);
      }
      for (const [k, v] of Object.entries(value)) check(v, `${path}.${k}`, depth + 1);
      return;
    }
    default:
      throw new TypeError(`Value cannot hold a ${typeof value} at ${path}`);
  }
}
