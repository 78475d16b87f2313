import { test } from "node:test";
import assert from "node:assert/strict";
import { approxSize, Engine } from "../src/core/engine.ts";
import { seededRandom } from "../src/core/random.ts";
import { syncRoot } from "../src/core/sync.ts";
import type { Message } from "../src/core/messages.ts";
import { meet } from "./_meet.ts";

function engine(id: string, now: number): Engine {
  const e = new Engine({ id, address: id }, now, seededRandom(id));
  e.start(now);
  return e;
}

/**
 * One anti-entropy round opened by `b` with `a`, run to its end, except that entries on
 * their way to `b` never arrive (they are still being reassembled, say). Returns how many
 * times `a` sent the entry `key`.
 */
function roundWithEntriesInFlight(a: Engine, b: Engine, key: string, now: number): number {
  let sent = 0;
  let toA: Message[] = [syncRoot(b.store)];
  for (let leg = 0; leg < 20 && toA.length; leg++) {
    a.receive(b.address, { cluster: "c", sender: b.id, messages: toA }, now);
    const toB = a.takeOutput().outgoing.filter((o) => o.to === b.address).flatMap((o) =>
      o.messages
    );
    sent += toB.flatMap((m) => (m.type === "entries" ? m.entries : [])).filter((e) =>
      e.key === key
    ).length;
    const kept = toB.filter((m) => m.type !== "entries" && m.type !== "rumor");
    if (kept.length === 0) break;
    b.receive(a.address, { cluster: "c", sender: a.id, messages: kept }, now);
    toA = b.takeOutput().outgoing.filter((o) => o.to === a.address).flatMap((o) => o.messages)
      .filter((m) => m.type.startsWith("sync-"));
  }
  return sent;
}

function pair(now: number): [Engine, Engine] {
  const a = engine("a", now), b = engine("b", now);
  meet(a, b, now);
  return [a, b];
}

test("a large value is not sent again to a peer while it is still in flight", () => {
  const t = 1_000_000;
  const [a, b] = pair(t);
  a.write("usr", "big", new Uint8Array(100_000), false, t);
  a.takeOutput();
  assert.equal(roundWithEntriesInFlight(a, b, "big", t + 10), 1);
  assert.equal(roundWithEntriesInFlight(a, b, "big", t + 1_000), 0, "resent while in flight");
  assert.equal(roundWithEntriesInFlight(a, b, "big", t + 9_000), 0, "resent while in flight");
  assert.equal(
    roundWithEntriesInFlight(a, b, "big", t + 10_011),
    1,
    "not resent after the cooldown",
  );
});

test("small values are sent again every round until they arrive", () => {
  const t = 1_000_000;
  const [a, b] = pair(t);
  a.write("usr", "small", "x", false, t);
  a.takeOutput();
  for (const now of [t + 10, t + 1000, t + 2000]) {
    assert.equal(roundWithEntriesInFlight(a, b, "small", now), 1);
  }
});

test("approxSize() tells large values from small ones", () => {
  assert.ok(approxSize(new Uint8Array(10_000)) > 8192);
  assert.ok(approxSize("x".repeat(10_000)) > 8192);
  assert.ok(approxSize({ list: Array.from({ length: 2000 }, (_, i) => `item ${i}`) }) > 8192);
  assert.ok(approxSize({ a: 1, b: [true, null], c: new Date(0) }) < 100);
  assert.ok(approxSize(42) < 100);
});

test("a member forwards small new entries of a rumor, but not large ones", () => {
  const t = 1_000_000;
  const [, b] = pair(t); // b knows a
  meet(b, engine("c", t), t);
  const entry = (key: string, value: unknown) => ({
    section: "usr" as const,
    key,
    value,
    wall: t,
    logical: 0,
    writer: "a",
    deleted: false,
  });
  b.receive("a", {
    cluster: "c",
    sender: "a",
    messages: [{
      type: "rumor",
      hop: 0,
      entries: [entry("small", 1), entry("big", new Uint8Array(50_000))],
    }],
  }, t + 1);
  const forwarded = b.takeOutput().outgoing.flatMap((o) => o.messages)
    .flatMap((m) => (m.type === "rumor" ? m.entries.map((e) => e.key) : []));
  assert.deepEqual(forwarded, ["small"]);
  assert.ok(b.store.get("usr", "big"), "the large entry is applied all the same");
});

test("an unknown entry older than the graveyard's memory is refused, and its sender told to delete it", () => {
  const grace = 1_000;
  const t = 1_000_000;
  const a = new Engine({ id: "a", address: "a", tombstoneGraceMs: grace }, t, seededRandom("a"));
  a.start(t);
  a.takeOutput();
  const now = t + 20 * grace; // settled, and far past ten grace periods
  const ancient = {
    section: "usr" as const,
    key: "k",
    value: 1,
    wall: t + 5 * grace,
    logical: 0,
    writer: "z",
    deleted: false,
  };
  const recent = { ...ancient, key: "r", wall: now - 3 * grace };
  a.receive("z", {
    cluster: "c",
    sender: "z",
    messages: [{ type: "entries", entries: [ancient, recent] }],
  }, now);
  assert.equal(
    a.store.get("usr", "k"),
    undefined,
    "an entry beyond the graveyard's memory came back",
  );
  assert.equal(
    a.store.get("usr", "r")?.value,
    1,
    "a late entry no tombstone superseded was refused",
  );
  const kill = a.takeOutput().outgoing.flatMap((o) => o.messages)
    .flatMap((m) => (m.type === "entries" ? m.entries : []));
  assert.deepEqual(kill.map((e) => [e.key, e.deleted, e.logical]), [["k", true, 1]]);
  assert.equal(a.counters.refusedExpired, 1);
});
