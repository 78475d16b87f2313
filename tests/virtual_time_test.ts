import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtualTime } from "../src/time.ts";
import { seededRandom } from "../src/core/random.ts";

/**
 * Schedules timers at random delays (whole, fractional, zero, negative, NaN), some from
 * inside callbacks, and checks that each runs at its due time (now + delay when set), in
 * order of due time and then of scheduling, and that `advance` stops at its end.
 */
function check(start: number, seed: number, fractional: boolean): void {
  const time = new VirtualTime(start);
  const random = seededRandom(seed);
  const ran: { id: number; now: number }[] = [];
  const due: number[] = [];
  let next = 0;
  const delay = () => {
    const r = random();
    if (r < 0.05) return 0;
    if (r < 0.08) return -3;
    if (r < 0.1) return NaN;
    const ms = Math.floor(random() * 50);
    return fractional ? ms + Math.floor(random() * 8) / 8 + 1 / 3 : ms;
  };
  const schedule = () => {
    const id = next++;
    const ms = delay();
    due[id] = time.now() + Math.max(0, ms || 0);
    time.setTimeout(() => {
      ran.push({ id, now: time.now() });
      if (random() < 0.3 && next < 3000) schedule();
    }, ms);
  };
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 25; i++) schedule();
    const before = ran.length;
    const end = time.now() + 7.5;
    time.advance(7.5);
    assert.equal(time.now(), end);
    for (const r of ran.slice(before)) assert.ok(r.now <= end, "nothing past the end runs");
    const waiting = due.filter((_, id) => !ran.some((r) => r.id === id));
    assert.ok(waiting.every((d) => d > end), "everything due by the end ran");
  }
  time.advance(1000);
  assert.equal(ran.length, next);
  for (const r of ran) assert.equal(r.now, due[r.id], `timer ${r.id} ran at its due time`);
  const expected = ran.map((r) => r.id).sort((a, b) => due[a]! - due[b]! || a - b);
  assert.deepEqual(ran.map((r) => r.id), expected);
}

test("virtual timers run at their due time, in order of due time and then of scheduling", () => {
  for (const start of [Date.UTC(2026, 0, 1), 0, -5000, 1.5, 1e15]) {
    check(start, 1, false);
    check(start, 2, true);
  }
});

test("runUntil stops when done, or at its limit with nothing past it run", () => {
  const time = new VirtualTime();
  const t0 = time.now();
  const fired: number[] = [];
  for (const ms of [5, 10, 10.25, 20]) time.setTimeout(() => fired.push(ms), ms);
  assert.equal(time.runUntil(() => fired.length >= 2, 100), true);
  assert.deepEqual(fired, [5, 10]);
  assert.equal(time.now(), t0 + 10);
  assert.equal(time.runUntil(() => false, 0.25), false);
  assert.deepEqual(fired, [5, 10, 10.25]);
  assert.equal(time.now(), t0 + 10.25);
  const handle = time.setTimeout(() => fired.push(-1), 1);
  time.clearTimeout(handle);
  time.advance(20);
  assert.deepEqual(fired, [5, 10, 10.25, 20]);
});
