// The log format, without the file system: framing, checksums, and what a damaged log
// reads back as.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Entry } from "../src/core/store.ts";
import {
  crc32c,
  encodeRecord,
  FRAME_BYTES,
  hasHeader,
  HEADER,
  readRecords,
} from "../src/storage/_log.ts";
import { encodeCbor } from "../src/wire/cbor.ts";
import { entry, value } from "./_arbitraries.ts";

function log(entries: readonly Entry[]): { bytes: Uint8Array; offsets: number[] } {
  const records = entries.map(encodeRecord);
  const bytes = new Uint8Array(HEADER.length + records.reduce((n, r) => n + r.length, 0));
  bytes.set(HEADER);
  const offsets: number[] = [];
  let at = HEADER.length;
  for (const r of records) {
    offsets.push(at);
    bytes.set(r, at);
    at += r.length;
  }
  offsets.push(at);
  return { bytes, offsets };
}

const text = (s: string) => new TextEncoder().encode(s);

/** Entries with values of every kind the store accepts. */
const anyEntry: fc.Arbitrary<Entry> = fc.tuple(entry, value).map(([e, v]) =>
  e.deleted ? e : { ...e, value: v }
);

test("crc32c() matches the published check values", () => {
  assert.equal(crc32c(text("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(text("6789"), crc32c(text("12345"))), 0xe3069283, "continued");
});

test("records read back exactly as written, every value kind included", () => {
  fc.assert(fc.property(fc.array(anyEntry, { maxLength: 30, size: "max" }), (entries) => {
    const { bytes } = log(entries);
    const read = readRecords(bytes);
    assert.equal(read.damage, null);
    assert.equal(read.end, bytes.length);
    assert.deepEqual(read.records.map((r) => r.entry), entries);
    assert.deepEqual(read.records.map((r) => r.size), entries.map((e) => encodeRecord(e).length));
  }));
});

test("any prefix of a log plus garbage reads back exactly the records before the damage", () => {
  fc.assert(fc.property(
    fc.array(anyEntry, { minLength: 1, maxLength: 12, size: "max" }),
    fc.nat(),
    fc.uint8Array({ maxLength: 40, size: "max" }),
    (entries, cutAt, garbage) => {
      const { bytes, offsets } = log(entries);
      const cut = HEADER.length + (cutAt % (bytes.length - HEADER.length + 1));
      // The first garbage byte differs from the byte it replaces, so the damage is real.
      if (garbage.length && cut < bytes.length && garbage[0] === bytes[cut]) garbage[0]! ^= 1;
      const damaged = new Uint8Array(cut + garbage.length);
      damaged.set(bytes.subarray(0, cut));
      damaged.set(garbage, cut);
      const whole = offsets.filter((o) => o <= cut).length - 1; // records entirely before the cut
      const read = readRecords(damaged);
      assert.deepEqual(read.records.map((r) => r.entry), entries.slice(0, whole));
      assert.equal(read.end, offsets[whole]);
      assert.equal(read.damage === null, read.end === damaged.length);
    },
  ));
});

test("a corrupt record in the middle is skipped, and every record after it is kept", () => {
  fc.assert(fc.property(
    fc.array(anyEntry, { minLength: 2, maxLength: 10, size: "max" }),
    fc.nat(),
    fc.nat(),
    fc.integer({ min: 0, max: 7 }),
    (entries, which, where, bit) => {
      const { bytes, offsets } = log(entries);
      const k = which % (entries.length - 1); // not the last record
      const start = offsets[k]!, size = offsets[k + 1]! - start;
      const at = where % size;
      bytes[start + at]! ^= 1 << bit;
      const read = readRecords(bytes);
      assert.deepEqual(
        read.records.map((r) => r.entry),
        [...entries.slice(0, k), ...entries.slice(k + 1)],
      );
      assert.equal(read.damage, null);
      assert.equal(read.end, bytes.length);
      assert.equal(read.skipped.length, 1);
      assert.equal(read.skipped[0]!.offset, start);
      assert.equal(read.skipped[0]!.bytes, size);
      assert.equal(read.skipped[0]!.reason, "checksum");
    },
  ));
});

test("damage confined to the last record, or a zero-filled tail, is a torn write", () => {
  const entries: Entry[] = ["a", "b", "c"].map((key, i) => ({
    section: "usr",
    key,
    value: i,
    wall: 10 + i,
    logical: 0,
    writer: "m",
    deleted: false,
  }));
  const { bytes, offsets } = log(entries);
  const lastByte = bytes.slice();
  lastByte[bytes.length - 1]! ^= 0x40;
  assert.equal(readRecords(lastByte).damage?.reason, "torn");
  assert.equal(readRecords(bytes.subarray(0, bytes.length - 3)).damage?.reason, "torn");
  assert.equal(readRecords(bytes.subarray(0, offsets[2]! + 5)).damage?.reason, "torn");
  const zeros = new Uint8Array(bytes.length + 4096);
  zeros.set(bytes.subarray(0, offsets[2]!));
  const read = readRecords(zeros);
  assert.equal(read.damage?.reason, "torn");
  assert.equal(read.records.length, 2);
  assert.equal(read.end, offsets[2]);
});

test("a record with a good checksum that is not an entry is reported as malformed", () => {
  const payload = encodeCbor(["not", "an", "entry"]);
  const record = new Uint8Array(FRAME_BYTES + payload.length);
  const view = new DataView(record.buffer);
  view.setUint32(0, payload.length, true);
  record.set(payload, FRAME_BYTES);
  view.setUint32(4, crc32c(payload, crc32c(record.subarray(0, 4))), true);
  const good = encodeRecord({
    section: "usr",
    key: "k",
    value: 1,
    wall: 1,
    logical: 0,
    writer: "m",
    deleted: false,
  });
  const bytes = new Uint8Array([...HEADER, ...good, ...record, ...good]);
  const read = readRecords(bytes);
  assert.equal(read.records.length, 2);
  assert.equal(read.skipped.length, 1);
  assert.equal(read.skipped[0]!.offset, HEADER.length + good.length);
  assert.equal(read.skipped[0]!.reason, "malformed");
  const tail = readRecords(new Uint8Array([...HEADER, ...good, ...record]));
  assert.equal(tail.records.length, 1);
  assert.equal(tail.end, HEADER.length + good.length);
  assert.equal(tail.damage?.reason, "malformed");
});

test("hasHeader() accepts only this format's header", () => {
  assert.ok(hasHeader(HEADER));
  assert.ok(!hasHeader(HEADER.subarray(0, 7)));
  assert.ok(!hasHeader(Uint8Array.of(0x47, 0x4b, 0x56, 0x4c, 2, 0, 0, 0)), "another version");
  assert.ok(!hasHeader(text('{"json": true}')));
});
