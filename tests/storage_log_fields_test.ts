// The log record format field by field: the frame's layout, every check on a payload with
// the exact damage it reports, and the length limits at and past their edges.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Entry } from "../src/core/store.ts";
import {
  crc32c,
  encodeRecord,
  FRAME_BYTES,
  hasHeader,
  HEADER,
  MAX_PAYLOAD_BYTES,
  readRecords,
} from "../src/storage/_log.ts";
import { encodeCbor } from "../src/wire/cbor.ts";

/** A framed record around any payload: u32 LE length, u32 LE CRC-32C of length ‖ payload. */
function frame(payload: Uint8Array, length = payload.length): Uint8Array {
  const out = new Uint8Array(FRAME_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, length, true);
  out.set(payload, FRAME_BYTES);
  view.setUint32(4, crc32c(payload, crc32c(out.subarray(0, 4))), true);
  return out;
}

function logOf(...records: Uint8Array[]): Uint8Array {
  const parts = [HEADER, ...records];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const good: Entry = {
  section: "usr",
  key: "k",
  value: 1,
  wall: 5,
  logical: 2,
  writer: "w",
  deleted: false,
};

/** The damage reading `payload` after one good record reports, as "reason: detail". */
function damageOf(payload: unknown): string {
  const first = encodeRecord(good);
  const bytes = logOf(first, frame(encodeCbor(payload)), Uint8Array.of(1));
  const r = readRecords(bytes);
  assert.equal(r.records.length, 1);
  assert.equal(r.end, HEADER.length + first.length);
  return `${r.damage?.reason}: ${r.damage?.detail}`;
}

test("encodeRecord(): length and checksum little-endian, then the entry's CBOR", () => {
  const r = encodeRecord(good);
  const payload = encodeCbor([0, "k", 5, 2, "w", 1]);
  assert.deepEqual([...r.subarray(FRAME_BYTES)], [...payload]);
  const view = new DataView(r.buffer);
  assert.equal(view.getUint32(0, true), payload.length);
  assert.equal(view.getUint32(4, true), crc32c(Uint8Array.from([...r.subarray(0, 4), ...payload])));
  assert.deepEqual(
    [...encodeRecord({ ...good, section: "sys", deleted: true, value: undefined }).subarray(8)],
    [...encodeCbor([3, "k", 5, 2, "w"])],
  );
  assert.deepEqual(
    [...encodeRecord({ ...good, deleted: true, value: undefined }).subarray(8)],
    [...encodeCbor([2, "k", 5, 2, "w"])],
  );
  assert.deepEqual([...encodeRecord({ ...good, section: "sys" }).subarray(8)], [
    ...encodeCbor([1, "k", 5, 2, "w", 1]),
  ]);
});

test("every kind of entry reads back with its section, deletion and size", () => {
  const entries: Entry[] = [
    good,
    { ...good, section: "sys", key: "members/w", value: { port: 1 } },
    { ...good, key: "gone", deleted: true, value: undefined },
    { ...good, section: "sys", key: "members/x", deleted: true, value: undefined },
  ];
  const records = entries.map(encodeRecord);
  const r = readRecords(logOf(...records));
  assert.equal(r.damage, null);
  assert.deepEqual(r.records.map((x) => x.entry), entries);
  assert.deepEqual(r.records.map((x) => x.size), records.map((x) => x.length));
  // Reading can start past the header, at any record boundary.
  const from = HEADER.length + records[0]!.length;
  assert.deepEqual(readRecords(logOf(...records), from).records.map((x) => x.entry.key), [
    "members/w",
    "gone",
    "members/x",
  ]);
  assert.deepEqual(readRecords(HEADER), { records: [], end: 8, damage: null, skipped: [] });
});

test("each payload check reports its own damage, at the record's offset", () => {
  const at = HEADER.length + encodeRecord(good).length;
  const WALL = "stamp wall time is not an integer from 0 to 9007199254740991";
  const COUNTER = "stamp counter is not an integer from 0 to 9007199254740991";
  const cases: [unknown, string][] = [
    ["entry", "entry is not an array of 5 or 6 items"],
    [[0, "k", 5, 2], "entry is not an array of 5 or 6 items"],
    [[0, "k", 5, 2, "w", 1, 2], "entry is not an array of 5 or 6 items"],
    [[4, "k", 5, 2, "w", 1], "entry kind is not an integer from 0 to 3"],
    [[-1, "k", 5, 2, "w", 1], "entry kind is not an integer from 0 to 3"],
    [[0.5, "k", 5, 2, "w", 1], "entry kind is not an integer from 0 to 3"],
    [[0, "k", 5, 2, "w"], "entry value does not match its deleted flag"],
    [[2, "k", 5, 2, "w", 1], "entry value does not match its deleted flag"],
    [[0, "", 5, 2, "w", 1], "key is not a string of 1 to 4096 characters"],
    [[0, 7, 5, 2, "w", 1], "key is not a string of 1 to 4096 characters"],
    [[0, "k", -5, 2, "w", 1], WALL],
    [[0, "k", 5, 2.5, "w", 1], COUNTER],
    [[0, "k", 2 ** 53, 2, "w", 1], WALL],
    [[0, "k", 5, "2", "w", 1], COUNTER],
    [[0, "k", 5, 2, "", 1], "writer is not a string of 1 to 256 characters"],
    [[0, "k", 5, 2, 9, 1], "writer is not a string of 1 to 256 characters"],
  ];
  for (const [payload, detail] of cases) {
    assert.equal(damageOf(payload), `malformed: ${detail} at byte ${at}`, JSON.stringify(payload));
  }
  assert.match(
    damageOf([0, "k", 5, 2, "w", new Date(NaN)]),
    new RegExp(`^malformed: Value has an invalid Date at value at byte ${at}$`),
  );
  const notCbor = readRecords(logOf(frame(Uint8Array.of(0xff, 0xff)), Uint8Array.of(1)));
  assert.equal(notCbor.damage?.reason, "malformed");
  assert.match(notCbor.damage?.detail ?? "", /^payload is not CBOR \(.+\) at byte 8$/);
});

test("record lengths: 0 and past the maximum are impossible; one past the file is torn", () => {
  const trailer = Uint8Array.of(1, 2, 3);
  const zero = readRecords(logOf(frame(new Uint8Array(0)), trailer));
  assert.deepEqual(zero.damage, {
    reason: "checksum",
    detail: "impossible record length 0 at byte 8",
  });
  const huge = readRecords(logOf(frame(Uint8Array.of(1), MAX_PAYLOAD_BYTES + 1), trailer));
  assert.deepEqual(huge.damage, {
    reason: "checksum",
    detail: `impossible record length ${MAX_PAYLOAD_BYTES + 1} at byte 8`,
  });
  const max = readRecords(logOf(frame(Uint8Array.of(1), MAX_PAYLOAD_BYTES), trailer));
  assert.deepEqual(max.damage, { reason: "torn", detail: "record cut short at byte 8" });
  const payload = encodeCbor([0, "k", 5, 2, "w", 1]);
  const long = readRecords(logOf(frame(payload, payload.length + 1)));
  assert.deepEqual(long.damage, { reason: "torn", detail: "record cut short at byte 8" });
  // Exactly one frame left, announcing a payload that is not there: cut short, not a
  // frame cut short.
  const bare = frame(Uint8Array.of(1, 2, 3, 4, 5)).subarray(0, FRAME_BYTES);
  assert.deepEqual(readRecords(logOf(bare)).damage, {
    reason: "torn",
    detail: "record cut short at byte 8",
  });
  const frag = readRecords(logOf(encodeRecord(good), new Uint8Array(FRAME_BYTES - 1).fill(9)));
  assert.equal(frag.records.length, 1);
  assert.deepEqual(frag.damage, {
    reason: "torn",
    detail: `incomplete record frame at byte ${8 + encodeRecord(good).length}`,
  });
  // A zero-filled tail (a power cut mid-append) is a torn write, not corruption.
  const first = HEADER.length + encodeRecord(good).length;
  assert.deepEqual(readRecords(logOf(encodeRecord(good), new Uint8Array(64))).damage, {
    reason: "torn",
    detail: `impossible record length 0 at byte ${first}`,
  });
  // A bad checksum on the last record is torn; with anything after it, corruption.
  const bad = encodeRecord(good);
  bad[FRAME_BYTES] = bad[FRAME_BYTES]! ^ 1;
  assert.deepEqual(readRecords(logOf(bad)).damage, {
    reason: "torn",
    detail: "checksum mismatch at byte 8",
  });
  assert.deepEqual(readRecords(logOf(bad, new Uint8Array(1))).damage, {
    reason: "checksum",
    detail: "checksum mismatch at byte 8",
  });
});

test("hasHeader(): the 8 bytes exactly, and nothing shorter", () => {
  assert.equal(hasHeader(HEADER), true);
  assert.equal(hasHeader(logOf(encodeRecord(good))), true);
  assert.equal(hasHeader(HEADER.subarray(0, 7)), false);
  for (let i = 0; i < HEADER.length; i++) {
    const h = HEADER.slice();
    h[i] = h[i]! ^ 0x10;
    assert.equal(hasHeader(h), false, `byte ${i}`);
  }
  assert.deepEqual([...HEADER], [0x47, 0x4b, 0x56, 0x4c, 1, 0, 0, 0]);
});
