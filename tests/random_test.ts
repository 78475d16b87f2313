// The seeded generator and the helpers built on it: a simulated cluster replays from its
// seed only if these give the same numbers everywhere, and sampling is fair only if they
// pick what they say.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { randomInt, sample, seededRandom, shuffle } from "../src/core/random.ts";

test("seededRandom() gives the pinned sequences, from numbers and from strings", () => {
  const r = seededRandom(42);
  assert.deepEqual([r(), r(), r()], [0.9105992272961885, 0.36439116508699954, 0.7828414337709546]);
  const s = seededRandom("m1");
  assert.deepEqual([s(), s()], [0.5107844974845648, 0.4160048726480454]);
});

test("seededRandom() stays in [0, 1), spreads evenly, and differs between seeds", () => {
  const r = seededRandom(7);
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 100_000; i++) {
    const x = r();
    assert.ok(x >= 0 && x < 1, String(x));
    buckets[Math.floor(x * 10)]++;
  }
  for (const b of buckets) assert.ok(b > 9_000 && b < 11_000, `bucket of ${b}`);
  const first = (seed: number | string) => seededRandom(seed)();
  assert.notEqual(first(1), first(2));
  assert.notEqual(first("a"), first("b"));
  assert.notEqual(first("ab"), first("ba"));
});

test("randomInt() covers [0, n) and nothing else", () => {
  const r = seededRandom(3);
  const seen = new Set<number>();
  for (let i = 0; i < 1_000; i++) {
    const x = randomInt(r, 7);
    assert.ok(Number.isInteger(x) && x >= 0 && x < 7);
    seen.add(x);
  }
  assert.equal(seen.size, 7);
});

test("sample() picks min(k, n) distinct items of the list, every item sometimes", () => {
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 40 }),
    fc.integer({ min: 0, max: 50 }),
    fc.nat(),
    (n, k, seed) => {
      const items = Array.from({ length: n }, (_, i) => `m${i}`);
      const picked = sample(seededRandom(seed), items, k);
      assert.equal(picked.length, Math.min(k, n));
      assert.equal(new Set(picked).size, picked.length, "distinct");
      for (const p of picked) assert.ok(items.includes(p));
      assert.equal(items.length, n, "the list is left alone");
      assert.deepEqual(items, Array.from({ length: n }, (_, i) => `m${i}`));
    },
  ));
  // Both strategies (rejection for small k, partial Fisher-Yates otherwise) reach every item.
  for (const k of [2, 8]) {
    const r = seededRandom(k);
    const items = Array.from({ length: 10 }, (_, i) => i);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 5_000; i++) for (const x of sample(r, items, k)) counts[x]++;
    const expected = (5_000 * k) / 10;
    for (const c of counts) {
      assert.ok(Math.abs(c - expected) < expected * 0.15, `${c} of ${expected}`);
    }
  }
});

test("shuffle() permutes in place, and every position is reachable", () => {
  const r = seededRandom(5);
  const firsts = new Set<number>();
  const lasts = new Set<number>();
  for (let i = 0; i < 500; i++) {
    const items = [0, 1, 2, 3, 4];
    const out = shuffle(r, items);
    assert.equal(out, items);
    assert.deepEqual([...out].sort(), [0, 1, 2, 3, 4]);
    firsts.add(out[0]!);
    lasts.add(out[4]!);
  }
  assert.equal(firsts.size, 5);
  assert.equal(lasts.size, 5);
  assert.deepEqual(shuffle(r, []), []);
  assert.deepEqual(shuffle(r, ["x"]), ["x"]);
});
