// The Merkle tree's hashes are part of the wire protocol: members compare them across
// runtimes and versions, so their values are pinned here, not only their properties.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  entryHash,
  hashHex,
  hashString,
  hashStringTwice,
  LANE_A,
  LANE_B,
  readLane,
  writeHash,
} from "../src/core/hash.ts";

test("hashString() gives the pinned values on both lanes", () => {
  const pinned: [string, number, number][] = [
    ["", 3954623016, 1020716019],
    ["a", 298494453, 2884439244],
    ["ab", 1395310093, 1957755985],
    ["abc", 2110155457, 1617719021],
    ["key 1", 642812791, 1924145613],
    ["ключ", 2977679686, 2243637056],
    ["🔑", 1924999970, 1886759975],
  ];
  for (const [s, a, b] of pinned) {
    assert.deepEqual([hashString(s, LANE_A), hashString(s, LANE_B)], [a, b], JSON.stringify(s));
  }
});

test("hashStringTwice() is hashString() with each seed", () => {
  const out = new Uint32Array(2);
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), fc.integer(), fc.integer(), (s, x, y) => {
      hashStringTwice(s, x, y, out);
      assert.deepEqual([out[0], out[1]], [hashString(s, x), hashString(s, y)]);
    }),
  );
});

test("entryHash() gives the pinned values, wall times past 32 bits included", () => {
  assert.deepEqual(entryHash(1, 2, 3, 4, "w", false), [1132789997, 1589845484]);
  assert.deepEqual(entryHash(0xffffffff, 7, 2 ** 45 + 3, 9, "writer", true), [
    2667724181,
    1866173133,
  ]);
});

test("hashString() is an unsigned 32-bit value that depends on every code unit and the length", () => {
  fc.assert(fc.property(
    fc.string({ maxLength: 40, size: "max", unit: "binary" }),
    fc.nat(39),
    fc.integer({ min: 1, max: 0xffff }),
    (s, at, by) => {
      const h = hashString(s, LANE_A);
      assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffff_ffff);
      if (s.length === 0) return;
      const i = at % s.length;
      const changed = s.slice(0, i) + String.fromCharCode((s.charCodeAt(i) + by) & 0xffff) +
        s.slice(i + 1);
      if (changed !== s) assert.notEqual(hashString(changed, LANE_A), h, `code unit ${i}`);
      assert.notEqual(hashString(s + "\0", LANE_A), h, "a longer string");
    },
  ));
});

test("entryHash() changes with each part of a version, the high wall bits included", () => {
  type Args = Parameters<typeof entryHash>;
  const base: Args = [0x1234_5678, 0x9abc_def0, 2 ** 40 + 17, 3, "m1", false];
  const h = entryHash(...base);
  const variants: Args[] = [
    [base[0] ^ 1, base[1], base[2], base[3], base[4], base[5]],
    [base[0], base[1] ^ 1, base[2], base[3], base[4], base[5]],
    [base[0], base[1], base[2] + 1, base[3], base[4], base[5]],
    [base[0], base[1], base[2] + 2 ** 32, base[3], base[4], base[5]],
    [base[0], base[1], base[2], 4, base[4], base[5]],
    [base[0], base[1], base[2], base[3], "m2", base[5]],
    [base[0], base[1], base[2], base[3], base[4], true],
  ];
  for (const v of variants) assert.notDeepEqual(entryHash(...v), h, JSON.stringify(v));
  // Each key lane feeds its own hash lane; the stamp, writer and deletion feed both.
  for (const v of variants.slice(2)) {
    const [a, b] = entryHash(...v);
    assert.ok(a !== h[0] && b !== h[1], JSON.stringify(v));
  }
});

test("writeHash() then readLane() gives back both lanes, big-endian", () => {
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 0xffff_ffff }),
    fc.integer({ min: 0, max: 0xffff_ffff }),
    fc.nat(8),
    (a, b, offset) => {
      const out = new Uint8Array(offset + 8 + 3).fill(0xee);
      writeHash(out, offset, a, b);
      assert.equal(readLane(out, offset, 0), a);
      assert.equal(readLane(out, offset, 1), b);
      assert.equal(out[offset], a >>> 24);
      assert.equal(out[offset + 7], b & 0xff);
      assert.ok(out.subarray(0, offset).every((x) => x === 0xee), "nothing written before");
      assert.ok(out.subarray(offset + 8).every((x) => x === 0xee), "nothing written after");
    },
  ));
  const out = new Uint8Array(8);
  writeHash(out, 0, 0x0102_0304, 0xa0b0_c0d0);
  assert.deepEqual([...out], [1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0]);
});

test("hashHex() is 16 lowercase hex digits, zero-padded", () => {
  assert.equal(hashHex(0x1234, 0xabcdef01), "00001234abcdef01");
  assert.equal(hashHex(0, 0), "0000000000000000");
  assert.equal(hashHex(0xffff_ffff, 1), "ffffffff00000001");
});
