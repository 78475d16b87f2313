// The descent's edges that real stores rarely reach: hashes equal in one 32-bit lane only,
// a peer's leaf in no particular order, and stamps of today's clocks and beyond the
// compact descriptor's range.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readLane, writeHash } from "../src/core/hash.ts";
import { FANOUT } from "../src/core/merkle.ts";
import type { Message } from "../src/core/messages.ts";
import { type Entry, Store } from "../src/core/store.ts";
import { syncReply } from "../src/core/sync.ts";
import { reconcile } from "./_reconcile.ts";

function usr(key: string, wall = 1, writer = "w"): Entry {
  return { section: "usr", key, value: key, wall, logical: 0, writer, deleted: false };
}

function storeOf(entries: readonly Entry[]): Store {
  const s = new Store();
  for (const e of entries) s.merge(e);
  return s;
}

const pairs = (bytes: Uint8Array): [number, number][] =>
  Array.from({ length: bytes.length / 8 }, (_, i) => [
    readLane(bytes, i * 8, 0),
    readLane(bytes, i * 8, 1),
  ]);

test("a child equal in one lane of its hash only is still described", () => {
  const mine = storeOf(Array.from({ length: 200 }, (_, i) => usr(`k${i}`)));
  const children = mine.children(0, 0);
  for (const lane of [0, 1] as const) {
    const theirs = new Uint8Array(FANOUT * 8);
    children.forEach((c, i) => writeHash(theirs, i * 8, c.a, c.b));
    // Child 3 differs in one lane only.
    const c = children[3]!;
    writeHash(theirs, 3 * 8, lane === 0 ? c.a ^ 1 : c.a, lane === 1 ? c.b ^ 1 : c.b);
    const replies = syncReply(mine, { type: "sync-branch", level: 0, index: 0, children: theirs });
    assert.deepEqual(
      replies.map((m) => "index" in m ? [m.type, m.index] : [m.type]),
      [[c.count <= 8 ? "sync-leaf" : "sync-branch", 3]],
      `lane ${lane}`,
    );
  }
});

test("a peer's leaf with hashes sharing a first lane, out of order: each wanted, in order", () => {
  const mine = storeOf([usr("a")]);
  const own = [...mine.nodeEntries(0, 0)][0]!;
  // Three hashes we lack: two share their first lane; listed in descending order, with
  // our own entry's hash among them.
  const lacking: [number, number][] = [[0x9000_0000, 7], [0x9000_0000, 5], [0x1000_0000, 9]];
  const hashes = new Uint8Array(4 * 8);
  lacking.forEach(([a, b], i) => writeHash(hashes, i * 8, a, b));
  writeHash(hashes, 3 * 8, own.ea, own.eb);
  const replies = syncReply(mine, { type: "sync-leaf", level: 0, index: 0, hashes });
  assert.equal(replies.length, 1, JSON.stringify(replies.map((m) => m.type)));
  const want = replies[0] as Extract<Message, { type: "sync-want" }>;
  assert.equal(want.type, "sync-want");
  assert.deepEqual(pairs(want.hashes), [[0x1000_0000, 9], [0x9000_0000, 5], [0x9000_0000, 7]]);
});

test("stamps of today's clocks cross once, from the newer side", () => {
  const now = 1_760_000_000_000;
  const a = storeOf([usr("k", now + 5), usr("j", now)]);
  const b = storeOf([usr("k", now), usr("j", now + 7)]);
  const r = reconcile(a, b, { salt: 0x1234 });
  assert.deepEqual(r.sentAtoB.map((e) => [e.key, e.wall]), [["k", now + 5]]);
  assert.deepEqual(r.sentBtoA.map((e) => [e.key, e.wall]), [["j", now + 7]]);
  assert.deepEqual(a.root(), b.root());
});

test("walls beyond the descriptor's range read as equal: both versions cross, the later wins", () => {
  for (const base of [2 ** 42 - 1, 2 ** 42, 2 ** 42 + 1]) {
    const a = storeOf([usr("k", base + 10)]), b = storeOf([usr("k", base + 20)]);
    const r = reconcile(a, b, { salt: 0x1234 });
    assert.deepEqual([r.sentAtoB.length, r.sentBtoA.length], [1, 1], `wall ${base}`);
    assert.equal(a.get("usr", "k")!.wall, base + 20);
    assert.deepEqual(a.root(), b.root());
  }
});
