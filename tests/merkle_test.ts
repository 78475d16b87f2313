import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { type Entry, Store } from "../src/core/store.ts";
import {
  isNode,
  levelWidth,
  MAX_LEVEL,
  MerkleTree,
  type NodeDigest,
  nodeIndex,
} from "../src/core/merkle.ts";
import { seededRandom } from "../src/core/random.ts";
import { entry } from "./_arbitraries.ts";
import { reconcile } from "./_reconcile.ts";

function storeOf(list: readonly Entry[]): Store {
  const s = new Store();
  for (const e of list) s.merge(e);
  return s;
}

function versions(s: Store): Set<string> {
  const out = new Set<string>();
  for (const section of ["sys", "usr"] as const) {
    for (const e of s.versions(section)) {
      out.add(`${e.section}/${e.key}@${e.wall}.${e.logical}.${e.writer}`);
    }
  }
  return out;
}

function differingKeys(a: Store, b: Store): Set<string> {
  const keys = new Set<string>();
  for (const section of ["sys", "usr"] as const) {
    for (const [x, y] of [[a, b], [b, a]] as const) {
      for (const e of x.versions(section)) {
        const other = y.get(section, e.key);
        if (
          !other || other.wall !== e.wall || other.logical !== e.logical ||
          other.writer !== e.writer
        ) {
          keys.add(`${section}/${e.key}`);
        }
      }
    }
  }
  return keys;
}

test("the descent finds exactly the differing keys, and leaves both sides equal", () => {
  let deep = 0;
  fc.assert(
    fc.property(
      fc.array(entry, { maxLength: 200, size: "max" }),
      fc.array(entry, { maxLength: 200, size: "max" }),
      (x, y) => {
        const a = storeOf(x), b = storeOf(y);
        const expected = differingKeys(a, b);
        const r = reconcile(a, b);
        const moved = new Set([...r.sentAtoB, ...r.sentBtoA].map((e) => `${e.section}/${e.key}`));
        assert.deepEqual(moved, expected);
        assert.deepEqual(versions(a), versions(b));
        assert.deepEqual(a.root(), b.root());
        if (a.size > 64) deep++;
      },
    ),
  );
  assert.ok(deep >= 20, `only ${deep} runs descended through a stored level`);
});

function bigStore(n: number, writer = "w"): Store {
  const s = new Store();
  for (let i = 0; i < n; i++) {
    s.merge({
      section: "usr",
      key: `key-${i}`,
      value: i,
      wall: 1_000 + i,
      logical: 0,
      writer,
      deleted: false,
    });
  }
  return s;
}

test("in sync, a comparison is one small datagram", () => {
  const r = reconcile(bigStore(1000), bigStore(1000));
  assert.equal(r.datagrams, 1);
  assert.equal(r.legs, 1);
  assert.ok(r.bytes < 40, `${r.bytes} bytes`);
});

test("100 differing keys among 100,000 are found in few round trips and bytes", () => {
  const a = bigStore(100_000), b = bigStore(100_000);
  for (let i = 0; i < 100; i++) {
    const k = i * 997;
    b.merge({
      section: "usr",
      key: `key-${k}`,
      value: -k,
      wall: 500_000 + i,
      logical: 0,
      writer: "w",
      deleted: false,
    });
  }
  const r = reconcile(a, b);
  assert.equal(new Set(r.sentBtoA.map((e) => e.key)).size, 100);
  assert.deepEqual(a.root(), b.root());
  const minimum = r.sentBtoA.length * 30;
  // Counts, not timings: the figures are stable for a given tree layout.
  assert.ok(r.legs <= 12, `${r.legs} legs`);
  assert.ok(r.bytes < 100 * 1024, `${r.bytes} bytes`);
  console.log(
    `100 of 100,000 keys differ: ${r.legs} legs (${
      Math.ceil(r.legs / 2)
    } round trips), ${r.datagrams} datagrams, ${r.bytes} bytes (entries alone: ~${minimum} bytes)`,
  );
});

test("an empty member receives everything in one exchange", () => {
  const a = new Store(), b = bigStore(500);
  const r = reconcile(a, b);
  assert.equal(r.sentBtoA.length, 500);
  assert.equal(r.legs, 2);
  assert.deepEqual(a.root(), b.root());
});

test("deep nodes are computed exactly like stored ones", () => {
  let storedLevel3 = 0;
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 0xffff_ffff }), { maxLength: 3000, size: "max" }),
      (hashes) => {
        if (hashes.length > 16 ** 3 / 4) storedLevel3++;
        const tree = new MerkleTree<{ ka: number; ea: number; eb: number }>();
        const items = hashes.map((ka, i) => ({
          ka,
          ea: (ka ^ i * 7919) >>> 0,
          eb: (i * 2654435761) >>> 0,
        }));
        for (const item of items) tree.add(item);
        for (const level of [0, 1, 2, 3, 4, 5, MAX_LEVEL]) {
          const sample = items.slice(0, 5).map((it) => nodeIndex(it.ka, level));
          for (const index of sample) {
            let a = 0, b = 0, count = 0;
            for (const it of items) {
              if (nodeIndex(it.ka, level) === index) {
                a ^= it.ea;
                b ^= it.eb;
                count++;
              }
            }
            assert.deepEqual(tree.node(level, index), { a: a >>> 0, b: b >>> 0, count });
            assert.ok(index < levelWidth(level));
            if (level < MAX_LEVEL) {
              const children = tree.children(level, index);
              let ca = 0, cc = 0;
              for (const c of children) {
                ca ^= c.a;
                cc += c.count;
              }
              assert.equal(ca >>> 0, a >>> 0);
              assert.equal(cc, count);
            }
          }
        }
      },
    ),
  );
  assert.ok(storedLevel3 >= 20, `only ${storedLevel3} runs stored level 3`);
});

/** Every node of `level` recomputed from the items: the oracle for the stored levels. */
function bruteLevel(items: readonly Item[], level: number): Map<number, NodeDigest> {
  const out = new Map<number, NodeDigest>();
  for (const it of items) {
    const i = nodeIndex(it.ka, level);
    const d = out.get(i) ?? { a: 0, b: 0, count: 0 };
    d.a = (d.a ^ it.ea) >>> 0;
    d.b = (d.b ^ it.eb) >>> 0;
    d.count++;
    out.set(i, d);
  }
  return out;
}

interface Item {
  ka: number;
  ea: number;
  eb: number;
}

function assertLevels(tree: MerkleTree<Item>, items: readonly Item[], levels: number): void {
  for (let level = 0; level <= levels; level++) {
    const expected = bruteLevel(items, level);
    for (let i = 0; i < levelWidth(level); i++) {
      assert.deepEqual(
        tree.node(level, i),
        expected.get(i) ?? { a: 0, b: 0, count: 0 },
        `node (${level}, ${i})`,
      );
    }
  }
}

const itemOf = (ka: number, i: number): Item => ({
  ka,
  ea: (Math.imul(ka ^ i, 0x9e3779b1) ^ i) >>> 0,
  eb: Math.imul(i + 1, 2654435761) >>> 0,
});

test("every stored node stays exact through adds, removals and the growth of the tree", () => {
  let grew = 0;
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 0xffff_ffff }), {
        minLength: 50,
        maxLength: 2500,
        size: "max",
      }),
      fc.array(fc.nat(), { maxLength: 500, size: "max" }),
      fc.nat(),
      (hashes, removals, cut) => {
        const tree = new MerkleTree<Item>();
        const items = hashes.map(itemOf);
        // Some items in, some of those out, then the rest in: a level stored after removals
        // starts from the items kept (all the items come first when `cut` is their number).
        const early = items.slice(0, cut % (items.length + 1));
        for (const item of early) tree.add(item);
        const kept = new Set(early);
        for (const r of removals) {
          if (early.length === 0) break;
          const victim = early[r % early.length]!;
          tree.remove(victim);
          kept.delete(victim);
        }
        for (const item of items.slice(early.length)) {
          tree.add(item);
          kept.add(item);
        }
        assert.equal(tree.size, kept.size);
        // Levels 1, 2 and 3 are stored once the tree holds more than 4, 64 and 1,024 items.
        assertLevels(tree, [...kept], 3);
        if (items.length > 1024 && removals.length > 0) grew++;
      },
    ),
    { numRuns: 60 },
  );
  assert.ok(grew >= 10, `only ${grew} runs stored level 3 and removed items`);
});

test("a tree grown to 20,000 items keeps level 3 exact through removals", () => {
  const random = seededRandom(17);
  const items = Array.from(
    { length: 20_000 },
    (_, i) => itemOf(Math.floor(random() * 0x1_0000_0000), i),
  );
  const tree = new MerkleTree<Item>();
  for (const item of items) tree.add(item);
  const kept = items.filter((_, i) => i % 3 !== 0);
  for (let i = 0; i < items.length; i += 3) tree.remove(items[i]!);
  assertLevels(tree, kept, 3);
  for (const level of [4, 6, MAX_LEVEL]) {
    const index = nodeIndex(kept[0]!.ka, level);
    assert.deepEqual(tree.node(level, index), bruteLevel(kept, level).get(index));
  }
});

test("isNode() and levelWidth() at the edges of every level", () => {
  for (let level = 0; level <= MAX_LEVEL + 2; level++) assert.equal(levelWidth(level), 16 ** level);
  for (let level = 0; level <= MAX_LEVEL; level++) {
    const last = levelWidth(level) - 1;
    assert.equal(isNode(level, 0), true);
    assert.equal(isNode(level, last), true, `(${level}, ${last})`);
    assert.equal(isNode(level, last + 1), false, `(${level}, ${last + 1})`);
    assert.equal(isNode(level, -1), false);
    assert.equal(isNode(level, 0.5), false);
  }
  assert.equal(isNode(MAX_LEVEL + 1, 0), false);
  assert.equal(isNode(-1, 0), false);
  assert.equal(isNode(0.5, 0), false);
  assert.equal(isNode(Number.NaN, 0), false);
});

test("children() are always 16, and an empty deep node is empty", () => {
  const tree = new MerkleTree<Item>();
  const items = Array.from({ length: 100 }, (_, i) => itemOf((i * 0x0100_0193) >>> 0, i));
  for (const item of items) tree.add(item);
  for (const level of [0, 1, 2, 3, 4, MAX_LEVEL - 1]) {
    const index = nodeIndex(items[0]!.ka, level);
    assert.equal(tree.children(level, index).length, 16, `children of (${level}, ${index})`);
  }
  // A key hash no item has, at every depth below the stored levels.
  const empty = (items[0]!.ka ^ 0x8000_0000) >>> 0;
  for (let level = 4; level <= MAX_LEVEL; level++) {
    const index = nodeIndex(empty, level);
    assert.deepEqual(
      tree.node(level, index),
      bruteLevel(items, level).get(index) ?? {
        a: 0,
        b: 0,
        count: 0,
      },
    );
    assert.equal(tree.children(level - 1, nodeIndex(empty, level - 1)).length, 16);
  }
  assert.deepEqual([...tree.items(MAX_LEVEL, 12345)], []);
});
