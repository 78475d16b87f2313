// The log file format, pure (no I/O): header, framed records, CRC-32C, and a reader that
// stops at the first damaged record. The layout is described in docs/reliability.md.
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

/** What {@linkcode readRecords} found. */
export interface ReadResult {
  readonly records: ReadRecord[];
  /** Offset just past the last good record: the file's valid length. */
  readonly end: number;
  /** Why reading stopped early, or `null` if every byte was a good record. */
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

/**
 * Reads the records of a log from `start` (just past the header) and stops at the first
 * damaged one: everything before it is returned, nothing after (a record after damage
 * cannot be trusted to be framed right).
 */
export function readRecords(bytes: Uint8Array, start: number = HEADER.length): ReadResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: ReadRecord[] = [];
  let at = start;
  const stop = (reason: DamageReason, detail: string): ReadResult => {
    // A zero-filled tail is what some file systems leave after a power cut mid-append.
    if (reason === "checksum" && allZero(bytes.subarray(at))) reason = "torn";
    return { records, end: at, damage: { reason, detail: `${detail} at byte ${at}` } };
  };
  while (at < bytes.length) {
    if (bytes.length - at < FRAME_BYTES) return stop("torn", "incomplete record frame");
    const length = view.getUint32(at, true);
    if (length === 0 || length > MAX_PAYLOAD_BYTES) {
      return stop("checksum", `impossible record length ${length}`);
    }
    const endOfRecord = at + FRAME_BYTES + length;
    if (endOfRecord > bytes.length) return stop("torn", "record cut short");
    const expected = view.getUint32(at + 4, true);
    const actual = crc32c(
      bytes.subarray(at + FRAME_BYTES, endOfRecord),
      crc32c(bytes.subarray(at, at + 4)),
    );
    if (actual !== expected) {
      return stop(endOfRecord === bytes.length ? "torn" : "checksum", "checksum mismatch");
    }
    const entry = decodePayload(bytes.subarray(at + FRAME_BYTES, endOfRecord));
    if (typeof entry === "string") return stop("malformed", entry);
    records.push({ entry, size: FRAME_BYTES + length });
    at = endOfRecord;
  }
  return { records, end: at, damage: null };
}
