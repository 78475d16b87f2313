// The descent's edges that real stores rarely reach: hashes equal in one 32-bit lane only,
// a peer's leaf in no particular order, and stamps of today's clocks and beyond the
// compact descriptor's range.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readLane, writeHash } from "../src/core/hash.ts";
import { FANOUT } from "../src/core/merkle.ts";
import type { Message } from "../src/core/messages.ts";
import { type Entry, Store } from "../src/core/store.ts";
import { digestByte, RETRY, STAMP_BYTES, syncReply, syncRoot } from "../src/core/sync.ts";
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

type Compact = Extract<Message, { type: "sync-nodes" | "sync-stamps" | "sync-pull" }>;
const SALT = 0x1234;

test("a leaf described again under the retry salt is not described a third time", () => {
  const c = storeOf([usr("x"), usr("y")]);
  const opening = syncReply(c, syncRoot(storeOf([usr("z")])), { salt: SALT })[0] as Compact;
  assert.equal(opening.type, "sync-stamps");
  // c shown its own versions: all equal, so it describes the leaf again, once.
  const again = syncReply(c, opening) as Compact[];
  assert.deepEqual(again.map((m) => [m.type, m.salt]), [["sync-stamps", SALT | RETRY]]);
  assert.deepEqual(syncReply(c, again[0]!), []);
});

test("a pull naming no key we hold gets no reply", () => {
  const c = storeOf([usr("x")]);
  const data = Uint8Array.of(0, 0, 0xff, 0xff);
  const ids = syncReply(c, syncRoot(storeOf([usr("z")])), { salt: SALT })[0] as Compact;
  const own = (ids.nodes[0]!.data[0]! << 8) | ids.nodes[0]!.data[1]!;
  assert.ok(own !== 0 && own !== 0xffff, "this salt gives x another id");
  assert.deepEqual(
    syncReply(c, { type: "sync-pull", salt: SALT, level: 0, nodes: [{ index: 0, data }] }),
    [],
  );
});

test("two versions under one key id: the one left over is pulled", () => {
  const c = storeOf([usr("x", 5)]);
  const mine = (syncReply(c, syncRoot(storeOf([usr("z")])), { salt: SALT })[0] as Compact)
    .nodes[0]!.data;
  // Theirs: a newer version under x's id, then x's own descriptor.
  const newer = mine.slice();
  newer[7] = newer[7]! + 64; // the stamp's low bytes: one ms later
  const data = new Uint8Array(2 * STAMP_BYTES);
  data.set(newer, 0);
  data.set(mine, STAMP_BYTES);
  const replies = syncReply(c, {
    type: "sync-stamps",
    salt: SALT,
    level: 0,
    nodes: [{ index: 0, data }],
  }) as Compact[];
  assert.deepEqual(replies.map((m) => m.type), ["sync-pull"]);
  assert.deepEqual([...replies[0]!.nodes[0]!.data], [...mine.subarray(0, 2)]);
});

test("a node answered with both entries and a description asks for no retry", () => {
  const keys = Array.from({ length: 40 }, (_, i) => usr(`k${i}`));
  const mine = storeOf(keys);
  const children = mine.children(0, 0);
  // Theirs: our root's children, one missing (they hold nothing there), one byte wrong.
  const full = syncReply(mine, syncRoot(storeOf([usr("z")])), { salt: SALT })[0] as Compact;
  assert.equal(full.type, "sync-nodes");
  const data = full.nodes[0]!.data.slice();
  const mask = (data[0]! << 8) | data[1]!;
  const present = children.flatMap((c, i) => (c.count > 0 ? [i] : []));
  assert.equal(mask, present.reduce((m, i) => m | (1 << i), 0));
  // Drop the first present child from the mask, and change the byte of the second.
  const [gone, wrong] = present;
  const bytes = [...data.subarray(2)];
  bytes[1] = bytes[1]! ^ 0xff;
  bytes.splice(0, 1);
  const theirs = Uint8Array.of((mask & ~(1 << gone!)) >>> 8, mask & ~(1 << gone!) & 0xff, ...bytes);
  const replies = syncReply(mine, {
    type: "sync-nodes",
    salt: SALT,
    level: 0,
    nodes: [{ index: 0, data: theirs }],
  });
  assert.ok(replies.some((m) => m.type === "entries"));
  assert.ok(
    replies.some((m) => "nodes" in m && m.nodes.some((n) => n.index === wrong)),
    "the changed child described",
  );
  assert.ok(replies.every((m) => !("salt" in m) || (m.salt & RETRY) === 0), "no retry");
});

test("a child they hold and we do not is asked for, whatever byte they send for it", () => {
  const keys = Array.from({ length: 5 }, (_, i) => usr(`k${i}`));
  const mine = storeOf(keys);
  const children = mine.children(0, 0);
  const empty = children.findIndex((c) => c.count === 0);
  assert.ok(empty >= 0, "five keys leave a child empty");
  // Theirs: every child present; for the one we lack, the byte an empty child would have.
  const bytes = children.map((c) => digestByte(SALT, c.a, c.b));
  bytes[empty] = digestByte(SALT, 0, 0);
  const theirs = Uint8Array.of(0xff, 0xff, ...bytes);
  const replies = syncReply(mine, {
    type: "sync-nodes",
    salt: SALT,
    level: 0,
    nodes: [{ index: 0, data: theirs }],
  });
  // Every child we lack is asked for with an empty leaf, the one whose byte matches too.
  const lacking = children.flatMap((c, i) => (c.count === 0 ? [[i, 0]] : []));
  assert.deepEqual(
    replies.map((m) =>
      "nodes" in m ? [m.type, m.nodes.map((n) => [n.index, n.data.length])] : m.type
    ),
    [["sync-stamps", lacking]],
  );
});

test("a pull sends only the keys it names, even a key whose id is 0", () => {
  // Under salt 3381 the key "x0" has the id 0 (found by search).
  const c = storeOf([usr("x0")]);
  const opening = syncReply(c, syncRoot(storeOf([usr("z")])), { salt: 3381 })[0] as Compact;
  assert.deepEqual([...opening.nodes[0]!.data.subarray(0, 2)], [0, 0]);
  const pull = (...ids: number[]): Message => ({
    type: "sync-pull",
    salt: 3381,
    level: 0,
    nodes: [{ index: 0, data: Uint8Array.from(ids) }],
  });
  assert.deepEqual(syncReply(c, pull(0x12, 0x34)), []);
  assert.deepEqual(
    syncReply(c, pull(0x12, 0x34, 0, 0)).map((m) => m.type === "entries" && m.entries[0]!.key),
    ["x0"],
  );
});

test("a node's versions are described in the order of their key ids, whatever the salt", () => {
  const c = storeOf([usr("p"), usr("q")]);
  for (let salt = 0; salt < 32; salt++) {
    const opening = syncReply(c, syncRoot(storeOf([usr("z")])), { salt })[0] as Compact;
    const data = opening.nodes[0]!.data;
    assert.equal(data.length, 2 * STAMP_BYTES);
    const first = (data[0]! << 8) | data[1]!;
    const second = (data[STAMP_BYTES]! << 8) | data[STAMP_BYTES + 1]!;
    assert.ok(first <= second, `salt ${salt}: ${first} before ${second}`);
  }
});

test("our leaf lists hashes sharing a first lane in order, whatever order they were stored in", () => {
  // "c1872" and "c51795" (wall 1, writer "w") have entry hashes with the same first lane.
  const a = usr("c1872"), b = usr("c51795");
  const peer = syncRoot(storeOf([usr("other")])); // a root that differs, with one entry
  const leaves = [[a, b], [b, a]].map((order) => {
    const replies = syncReply(storeOf(order), peer);
    assert.equal(replies.length, 1);
    const leaf = replies[0] as Extract<Message, { type: "sync-leaf" }>;
    assert.equal(leaf.type, "sync-leaf");
    return pairs(leaf.hashes);
  });
  const [first, second] = leaves[0]!;
  assert.equal(first![0], second![0], "the two hashes share their first lane");
  assert.ok(first![1] < second![1], "ordered by the second lane");
  assert.deepEqual(leaves[1], leaves[0]);
});

test("three keys in one deepest node (their key hashes are equal) are compared by their versions", () => {
  // "t1075107", "t3088513" and "t3220748" have the same 32-bit key hash: more entries than a
  // compact leaf holds, down to the deepest level, where there are no children to descend to.
  const keys = ["t1075107", "t3088513", "t3220748"];
  const a = storeOf(keys.map((k) => usr(k, 1)));
  const b = storeOf(keys.map((k, i) => usr(k, i === 2 ? 2 : 1)));
  const r = reconcile(a, b, { salt: 0x1234 });
  assert.deepEqual(r.sentAtoB.map((e) => e.key), []);
  assert.deepEqual(r.sentBtoA.map((e) => [e.key, e.wall]), [["t3220748", 2]]);
  assert.deepEqual(a.root(), b.root());
});
