// The full descent down to the deepest level of the Merkle tree, where a node has no
// children: more keys there than a leaf lists (their 32-bit key hashes are all equal).
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Entry, keyHash, Store } from "../src/core/store.ts";
import { LEAF_MAX_ENTRIES } from "../src/core/sync.ts";
import { reconcile } from "./_reconcile.ts";

function usr(key: string, wall = 1): Entry {
  return { section: "usr", key, value: key, wall, logical: 0, writer: "w", deleted: false };
}

function storeOf(entries: readonly Entry[]): Store {
  const s = new Store();
  for (const e of entries) s.merge(e);
  return s;
}

// Nine keys with one 32-bit key hash: three found by search, six made by inverting the
// murmur3 mixing of the key hash (a 6-character prefix, then the 2 code units that lead
// to the same hash).
const KEYS = [
  "t1075107",
  "t3088513",
  "t3220748",
  "c00013\u7783\u58e8",
  "c00018\u5e0a\u6a5a",
  "c00019\u9cc0\u8467",
  "c00038\u8154\u6c89",
  "c00039\u734f\u86e1",
  "c00040\u6dd4\u62e8",
];

test("nine keys in one deepest node: described as a leaf, the version that differs crosses", () => {
  assert.equal(new Set(KEYS.map((k) => keyHash("usr", k))).size, 1, "one key hash");
  assert.ok(KEYS.length > LEAF_MAX_ENTRIES, "more than a leaf holds above the deepest level");
  for (const changed of [0, 8]) {
    const a = storeOf(KEYS.map((k) => usr(k)));
    const b = storeOf(KEYS.map((k, i) => usr(k, i === changed ? 2 : 1)));
    // The full descent (as to a member of release 0.1.0): branches down to the deepest
    // level, whose node is described by its 9 entries' hashes.
    const r = reconcile(a, b);
    // Only the key that differs crosses (the full descent sends this side's older version
    // of it too, which the peer keeps out by its stamp).
    assert.deepEqual(r.sentAtoB.map((e) => [e.key, e.wall]), [[KEYS[changed], 1]]);
    assert.deepEqual(r.sentBtoA.map((e) => [e.key, e.wall]), [[KEYS[changed], 2]]);
    assert.equal(a.get("usr", KEYS[changed]!)?.wall, 2);
    assert.deepEqual(a.root(), b.root());
  }
});
