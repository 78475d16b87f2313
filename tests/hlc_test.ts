import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { compareStamps, HybridClock, type Stamp } from "../src/core/hlc.ts";

test("tick() is strictly monotonic whatever the wall clock does", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 1e12 }), { maxLength: 200, size: "max" }),
      (walls) => {
        const clock = new HybridClock();
        let last: Stamp = { wall: -1, logical: 0 };
        for (const wall of walls) {
          const s = clock.tick(wall);
          assert.ok(
            compareStamps(s, last) > 0,
            `${JSON.stringify(s)} after ${JSON.stringify(last)}`,
          );
          assert.ok(s.wall >= wall, "a stamp never lags the wall clock it was made at");
          last = s;
        }
      },
    ),
  );
});

test("a stamp made after observing another is later than it, within the lead bound", () => {
  fc.assert(fc.property(
    fc.array(fc.record({ wall: fc.integer({ min: 0, max: 2e6 }), logical: fc.nat(1000) }), {
      maxLength: 50,
      size: "max",
    }),
    fc.integer({ min: 0, max: 2e6 }),
    (remotes, now) => {
      const clock = new HybridClock({ maxDriftMs: 1e9, maxLeadMs: 1e9 });
      for (const r of remotes) assert.equal(clock.observe(r, now), true);
      const s = clock.tick(now);
      for (const r of remotes) assert.ok(compareStamps(s, r) > 0);
    },
  ));
});

test("a stamp far ahead is accepted but moves the clock at most maxLeadMs past the wall", () => {
  fc.assert(fc.property(
    fc.array(fc.record({ wall: fc.integer({ min: 0, max: 2e6 }), logical: fc.nat(1000) }), {
      maxLength: 50,
      size: "max",
    }),
    fc.integer({ min: 0, max: 2e6 }),
    fc.integer({ min: 0, max: 5_000 }),
    (remotes, now, maxLeadMs) => {
      const clock = new HybridClock({ maxDriftMs: 1e9, maxLeadMs });
      for (const r of remotes) assert.equal(clock.observe(r, now), true);
      assert.ok(clock.last.wall <= Math.max(now + maxLeadMs, 0));
      const s = clock.tick(now);
      for (const r of remotes) {
        if (r.wall <= now + maxLeadMs) assert.ok(compareStamps(s, r) > 0, "within: causal");
        // Per key: a write after seeing `r` of that key still wins over it.
        assert.ok(compareStamps(clock.tickAfter(now, r), r) > 0, "tickAfter is later");
      }
    },
  ));
});

test("tickAfter() does not adopt the floor: the next stamp of another key is the wall's", () => {
  const clock = new HybridClock();
  const ahead = { wall: 1_055_000, logical: 3 };
  assert.equal(clock.observe(ahead, 1_000_000), true);
  assert.deepEqual(clock.last, { wall: 1_001_000, logical: 0 });
  assert.deepEqual(clock.tickAfter(1_002_000, ahead), { wall: 1_055_000, logical: 4 });
  assert.deepEqual(clock.tickAfter(1_002_000, undefined), { wall: 1_002_000, logical: 1 });
  assert.throws(() => new HybridClock({ maxLeadMs: -1 }), /maxLeadMs/);
  assert.equal(new HybridClock({ maxDriftMs: 10 }).maxLeadMs, 10, "at most maxDriftMs");
});

test("observe() refuses a stamp beyond the drift bound, without adopting it", () => {
  const clock = new HybridClock({ maxDriftMs: 1000 });
  const now = 1_000_000;
  assert.equal(clock.observe({ wall: now + 1000, logical: 0 }, now), true);
  assert.equal(clock.observe({ wall: now + 600_000, logical: 0 }, now), false);
  assert.deepEqual(
    clock.last,
    { wall: now + 1000, logical: 0 },
    "the refused stamp is not adopted",
  );
  assert.deepEqual(clock.tick(now), { wall: now + 1000, logical: 1 });
});

test("compareStamps() orders by wall time, then counter", () => {
  assert.ok(compareStamps({ wall: 1, logical: 9 }, { wall: 2, logical: 0 }) < 0);
  assert.ok(compareStamps({ wall: 2, logical: 1 }, { wall: 2, logical: 0 }) > 0);
  assert.equal(compareStamps({ wall: 2, logical: 1 }, { wall: 2, logical: 1 }), 0);
});

test("a negative drift bound is refused", () => {
  assert.throws(
    () => new HybridClock({ maxDriftMs: -1 }),
    /^RangeError: maxDriftMs must be a non-negative number$/,
  );
  assert.throws(() => new HybridClock({ maxDriftMs: Number.NaN }), RangeError);
});

test("observe() adopts a remote counter ahead of ours within the same millisecond", () => {
  const clock = new HybridClock();
  assert.deepEqual(clock.tick(1_000), { wall: 1_000, logical: 0 });
  assert.equal(clock.observe({ wall: 1_000, logical: 5 }, 1_000), true);
  assert.deepEqual(clock.last, { wall: 1_000, logical: 5 });
  assert.deepEqual(clock.tick(1_000), { wall: 1_000, logical: 6 });
  // An older remote stamp changes nothing.
  assert.equal(clock.observe({ wall: 999, logical: 50 }, 1_000), true);
  assert.equal(clock.observe({ wall: 1_000, logical: 2 }, 1_000), true);
  assert.deepEqual(clock.last, { wall: 1_000, logical: 6 });
});
