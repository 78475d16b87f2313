/**
 * Turns stored values into plain JSON: what `snapshot()` and the HTTP adapter show.
 *
 * JSON has no bytes, dates, maps or big integers, so they are written as:
 * `Uint8Array` → `{ "$bytes": "<base64>" }`, `Map` → `{ "$map": [[key, value], ...] }`,
 * `Date` → its ISO string, `bigint` → its decimal string, non-finite numbers → `null`.
 *
 * @module
 */

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** Converts a stored value to plain JSON (see the module docs for the conventions). */
export function toJson(value: unknown): Json {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return Number.isFinite(value) ? value : null;
    case "bigint":
      return value.toString();
    case "object": {
      if (value === null) return null;
      if (value instanceof Uint8Array) return { $bytes: base64(value) };
      if (value instanceof Date) return value.toISOString();
      if (Array.isArray(value)) return value.map(toJson);
      if (value instanceof Map) return { $map: [...value].map(([k, v]) => [toJson(k), toJson(v)]) };
      const out: Record<string, Json> = {};
      for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJson(v);
      return out;
    }
    default:
      return null;
  }
}
