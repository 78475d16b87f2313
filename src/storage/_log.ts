// The log file format, pure (no I/O): header, framed records, CRC-32C, and a reader that
// skips damaged records in the middle (resynchronising on the next record that checks out)
// and stops at a damaged tail. The layout is described in docs/reliability.md.
//
//   header   8 bytes: "GKVL" 0x01 0x00 0x00 0x00 (magic, format version 1, reserved)
//   record   u32 LE payload length · u32 LE CRC-32C of (length bytes ‖ payload) · payload
//   payload  CBOR of the entry layout the wire uses too (src/wire/_entry.ts):
//            [kind, key, wall, logical, writer] for a tombstone,
//            [kind, key, wall, logical, writer, value] otherwise;
//            kind bit 0: sys section, bit 1: tombstone

import type { Entry } from "../core/store.ts";
import { entryFromArray, entryToArray } from "../wire/_entry.ts";
import { decodeCbor, encodeCbor } from "../wire/cbor.ts";

/** The file header: magic "GKVL", format version 1, three reserved bytes. */
export const HEADER: Uint8Array = Uint8Array.of(0x47, 0x4b, 0x56, 0x4c, 1, 0, 0, 0);
/** Bytes of framing before each record's payload. */
export const FRAME_BYTES = 8;
/** Largest payload the reader accepts: a length above this is damage, not a record. */
export const MAX_PAYLOAD_BYTES = 1 << 30;

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as ext4, iSCSI and LevelDB use:
 * `crc32c("123456789")` is 0xE3069283. Pass a previous result as `crc` to continue it.
 */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** Encodes one entry as a framed record. */
export function encodeRecord(e: Entry): Uint8Array {
  const payload = encodeCbor(entryToArray(e));
  const out = new Uint8Array(FRAME_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length, true);
  out.set(payload, FRAME_BYTES);
  view.setUint32(4, crc32c(payload, crc32c(out.subarray(0, 4))), true);
  return out;
}

/** Whether `bytes` starts with this format's header. */
export function hasHeader(bytes: Uint8Array): boolean {
  if (bytes.length < HEADER.length) return false;
  for (let i = 0; i < HEADER.length; i++) if (bytes[i] !== HEADER[i]) return false;
  return true;
}

/** Why reading stopped before the end of the file. */
export type DamageReason =
  /**
   * The last record is incomplete or fails its checksum, or the rest of the file is
   * zeros: a write cut short by a crash. (A corrupt length that points past the end of
   * the file reads the same way.)
   */
  | "torn"
  /** A record followed by more data fails its checksum: the file was damaged. */
  | "checksum"
  /** A record passes its checksum but is not an entry (a bug, or another format). */
  | "malformed";

/** One record read back, with its size on disk (framing included). */
export interface ReadRecord {
  readonly entry: Entry;
  readonly size: number;
}

/** Bytes in the middle of a log that are not a good record, followed by good ones. */
export interface SkippedRange {
  /** Where the unreadable bytes start. */
  readonly offset: number;
  /** How many bytes were skipped, up to the next good record. */
  readonly bytes: number;
  readonly reason: "checksum" | "malformed";
  readonly detail: string;
}

/** What {@linkcode readRecords} found. */
export interface ReadResult {
  readonly records: ReadRecord[];
  /** Offset just past the last good record: the file's valid length. */
  readonly end: number;
  /** Damage in the middle, each range followed by good records (which are kept). */
  readonly skipped: SkippedRange[];
  /** Why reading stopped before the end of the file, or `null` if it did not. */
  readonly damage: { readonly reason: DamageReason; readonly detail: string } | null;
}

function decodePayload(payload: Uint8Array): Entry | string {
  let v: unknown;
  try {
    v = decodeCbor(payload);
  } catch (error) {
    return `payload is not CBOR (${(error as Error).message})`;
  }
  try {
    return entryFromArray(v);
  } catch (error) {
    return (error as Error).message;
  }
}

function allZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** The record at `at`: an entry and its size, or why it is not one. */
function recordAt(
  bytes: Uint8Array,
  view: DataView,
  at: number,
): ReadRecord | { reason: DamageReason; detail: string } {
  if (bytes.length - at < FRAME_BYTES) return { reason: "torn", detail: "incomplete record frame" };
  const length = view.getUint32(at, true);
  if (length === 0 || length > MAX_PAYLOAD_BYTES) {
    return { reason: "checksum", detail: `impossible record length ${length}` };
  }
  const endOfRecord = at + FRAME_BYTES + length;
  if (endOfRecord > bytes.length) return { reason: "torn", detail: "record cut short" };
  const expected = view.getUint32(at + 4, true);
  const actual = crc32c(
    bytes.subarray(at + FRAME_BYTES, endOfRecord),
    crc32c(bytes.subarray(at, at + 4)),
  );
  if (actual !== expected) {
    return {
      reason: endOfRecord === bytes.length ? "torn" : "checksum",
      detail: "checksum mismatch",
    };
  }
  const entry = decodePayload(bytes.subarray(at + FRAME_BYTES, endOfRecord));
  if (typeof entry === "string") return { reason: "malformed", detail: entry };
  return { entry, size: FRAME_BYTES + length };
}

/** The offset of the next good record after `from`, or -1. */
function resynchronise(bytes: Uint8Array, view: DataView, from: number): number {
  for (let p = from; p + FRAME_BYTES < bytes.length; p++) {
    // Cheap filters first: a plausible length, and a payload that opens a CBOR array of
    // 5 or 6 items (0x85, 0x86); only then the checksum.
    const length = view.getUint32(p, true);
    if (length === 0 || p + FRAME_BYTES + length > bytes.length) continue;
    const first = bytes[p + FRAME_BYTES];
    if (first !== 0x85 && first !== 0x86) continue;
    if ("entry" in recordAt(bytes, view, p)) return p;
  }
  return -1;
}

/**
 * Reads the records of a log from `start` (just past the header). A damaged record
 * followed by good ones is skipped (and listed in `skipped`): reading resumes at the next
 * offset where a whole record passes its checksum and decodes. Damage after which no good
 * record follows ends reading (`damage`): a torn write, or a damaged tail.
 */
export function readRecords(bytes: Uint8Array, start: number = HEADER.length): ReadResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: ReadRecord[] = [];
  const skipped: SkippedRange[] = [];
  let at = start;
  while (at < bytes.length) {
    const r = recordAt(bytes, view, at);
    if ("entry" in r) {
      records.push(r);
      at += r.size;
      continue;
    }
    // Even a "record cut short" may be a damaged length in the middle: look past it.
    const next = resynchronise(bytes, view, at + 1);
    if (next < 0) {
      let reason = r.reason;
      // A zero-filled tail is what some file systems leave after a power cut mid-append.
      if (reason === "checksum" && allZero(bytes.subarray(at))) reason = "torn";
      return { records, end: at, skipped, damage: { reason, detail: `${r.detail} at byte ${at}` } };
    }
    skipped.push({
      offset: at,
      bytes: next - at,
      reason: r.reason === "malformed" ? "malformed" : "checksum",
      detail: `${r.detail} at byte ${at}`,
    });
    at = next;
  }
  return { records, end: at, skipped, damage: null };
}
