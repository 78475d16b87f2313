import { test } from "node:test";
import assert from "node:assert/strict";
import { suspicionTimeout } from "../src/core/suspicion.ts";

const base = { mult: 5, maxMult: 6, probeIntervalMs: 1000 };

test("an unconfirmed suspicion lasts maxMult times the minimum", () => {
  // N = 100: the minimum is 5 × log10(100) × 1 s = 10 s.
  assert.equal(suspicionTimeout({ ...base, members: 100, confirmations: 0 }), 60_000);
});

test("confirmations shrink the timeout down to the minimum, never below", () => {
  const at = (confirmations: number) => suspicionTimeout({ ...base, members: 100, confirmations });
  assert.ok(at(1) < at(0));
  assert.ok(at(2) < at(1));
  assert.equal(at(3), 10_000, "three confirmations (the expected number) reach the minimum");
  assert.equal(at(10), 10_000);
});

test("the minimum grows with log10 N, and never drops under mult × probe period", () => {
  assert.equal(suspicionTimeout({ ...base, members: 1_000, confirmations: 3 }), 15_000);
  assert.equal(suspicionTimeout({ ...base, members: 5, confirmations: 3 }), 5_000);
});

test("with too few members to confirm, the timeout is the minimum at once", () => {
  // N = 2: only the suspecter and the suspect; nobody else can confirm.
  assert.equal(suspicionTimeout({ ...base, members: 2, confirmations: 0 }), 5_000);
  // N = 3: one other member can confirm, so the timeout starts long.
  assert.equal(suspicionTimeout({ ...base, members: 3, confirmations: 0 }), 30_000);
  assert.equal(suspicionTimeout({ ...base, members: 3, confirmations: 1 }), 5_000);
});

test("between none and all expected confirmations the timeout falls logarithmically", () => {
  // N = 100: min 10 s, max 60 s, 3 confirmations expected; one is log(2)/log(4) = half way.
  const at = (confirmations: number) => suspicionTimeout({ ...base, members: 100, confirmations });
  assert.ok(Math.abs(at(1) - 35_000) < 1e-6, `${at(1)}`);
  assert.ok(Math.abs(at(2) - (60_000 - 50_000 * Math.log(3) / Math.log(4))) < 1e-6, `${at(2)}`);
});
