// What one unauthenticated source can cost the reassembly buffers: a bounded number of
// partial messages, each charged for the fragments it announces, expired in order.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Entry } from "../src/core/store.ts";
import { Wire } from "../src/wire/wire.ts";

const entry = (bytes: number): Entry => ({
  section: "usr",
  key: "k",
  value: "x".repeat(bytes),
  wall: 1,
  logical: 0,
  writer: "a",
  deleted: false,
});

/** The first fragment of `n` messages of `bytes` bytes each. */
function starts(n: number, bytes: number, mtu = 1400): Uint8Array[] {
  const a = new Wire({ cluster: "c", sender: "a", mtu });
  return Array.from(
    { length: n },
    () => a.encode([{ type: "rumor", hop: 0, entries: [entry(bytes)] }])[0]!,
  );
}

test("one source holds at most maxPartialsPerSource partial messages; others are unaffected", () => {
  const b = new Wire({ cluster: "c", sender: "b", maxPartialsPerSource: 8 });
  for (const d of starts(20, 5000)) b.decode(d, "evil", 0);
  assert.equal(b.drops.get("fragment-overflow"), 12);
  assert.equal(b.decode(starts(1, 5000)[0]!, "good", 0).status, "pending");
});

test("a fragment start is charged for every fragment it announces, not its chunk only", () => {
  const b = new Wire({ cluster: "c", sender: "b", mtu: 256, maxMessageBytes: 2_000_000 });
  const [first] = starts(1, 1_000_000, 256);
  b.decode(first!, "evil", 0);
  assert.ok(b.pendingBytes > 8 * 1_000_000 / 256, `charged ${b.pendingBytes}`);
  const capped = new Wire({ cluster: "c", sender: "b", mtu: 256, maxPendingBytes: 100_000 });
  for (const d of starts(6, 1_000_000, 256)) capped.decode(d, `s${Math.random()}`, 0);
  assert.ok(capped.pendingBytes <= 100_000);
  assert.ok((capped.drops.get("fragment-overflow") ?? 0) > 0);
});

test("partial messages expire in the order they started, each at its deadline", () => {
  const b = new Wire({ cluster: "c", sender: "b", fragmentTimeoutMs: 1000 });
  const list = starts(100, 5000);
  list.forEach((d, i) => b.decode(d, `s${i}`, i * 10));
  b.expire(1000 + 495);
  assert.equal(b.drops.get("fragment-timeout"), 50);
  b.expire(1000 + 990);
  assert.equal(b.drops.get("fragment-timeout"), 100);
  assert.equal(b.pendingBytes, 0);
});
