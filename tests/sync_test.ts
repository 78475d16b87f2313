// Each anti-entropy message and the replies it gets, one step at a time (the whole descent
// is run by merkle_test.ts): what is sent, in which canonical order, and when nothing is.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Message } from "../src/core/messages.ts";
import { FANOUT } from "../src/core/merkle.ts";
import { hashHex, readLane } from "../src/core/hash.ts";
import { type Entry, Store, type StoredEntry } from "../src/core/store.ts";
import { LEAF_MAX_ENTRIES, rootHex, syncReply, syncRoot } from "../src/core/sync.ts";

function usr(key: string, wall = 1, writer = "w"): Entry {
  return { section: "usr", key, value: key, wall, logical: 0, writer, deleted: false };
}

function storeOf(entries: readonly Entry[]): Store {
  const s = new Store();
  for (const e of entries) s.merge(e);
  return s;
}

const keys = (n: number, prefix = "k") => Array.from({ length: n }, (_, i) => usr(`${prefix}${i}`));

function pairs(bytes: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  for (let o = 0; o < bytes.length; o += 8) {
    out.push([readLane(bytes, o, 0), readLane(bytes, o, 1)]);
  }
  return out;
}

function of<T extends Message["type"]>(
  m: Message | undefined,
  type: T,
): Extract<Message, { type: T }> {
  assert.equal(m?.type, type);
  return m as Extract<Message, { type: T }>;
}

const entryKeys = (m: Message | undefined) => of(m, "entries").entries.map((e) => e.key).sort();

test("syncRoot() and rootHex() carry the store's root", () => {
  const s = storeOf(keys(5));
  const root = of(syncRoot(s), "sync-root");
  const r = s.root();
  assert.deepEqual(pairs(root.hash), [[r.a, r.b]]);
  assert.equal(root.count, 5);
  assert.equal(rootHex(s), hashHex(r.a, r.b));
  assert.equal(rootHex(new Store()), "0000000000000000");
});

test("a root: equal ends the round; an empty peer gets everything; an empty member asks for all", () => {
  const a = storeOf(keys(20)), b = storeOf(keys(20));
  assert.deepEqual(syncReply(a, syncRoot(b)), []);
  assert.deepEqual(
    entryKeys(syncReply(a, syncRoot(new Store()))[0]),
    keys(20).map((e) => e.key).sort(),
  );
  const leaf = of(syncReply(new Store(), syncRoot(a))[0], "sync-leaf");
  assert.deepEqual([leaf.level, leaf.index, leaf.hashes.length], [0, 0, 0]);
});

test("a small root is answered with its entry hashes in canonical order; a large one with 16 children", () => {
  const peer = storeOf([usr("other")]);
  for (const n of [1, LEAF_MAX_ENTRIES]) {
    const s = storeOf(keys(n));
    const [reply, ...rest] = syncReply(s, syncRoot(peer));
    assert.deepEqual(rest, []);
    const leaf = of(reply, "sync-leaf");
    const expected = [...s.nodeEntries(0, 0)].map((e): [number, number] => [e.ea, e.eb])
      .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    assert.deepEqual(pairs(leaf.hashes), expected, `${n} entries`);
  }
  const big = storeOf(keys(LEAF_MAX_ENTRIES + 1));
  const branch = of(syncReply(big, syncRoot(peer))[0], "sync-branch");
  assert.deepEqual([branch.level, branch.index], [0, 0]);
  assert.deepEqual(
    pairs(branch.children),
    big.children(0, 0).map((c): [number, number] => [c.a, c.b]),
  );
  assert.equal(branch.children.length, FANOUT * 8);
});

test("a branch: equal children are skipped, children they lack are sent, others described", () => {
  const mine = storeOf(keys(200));
  const theirs = storeOf([...keys(200).slice(0, 150), ...keys(3, "x")]);
  const branch = of(syncReply(theirs, syncRoot(mine))[0], "sync-branch");
  // Blank out one child of theirs that holds something of mine: everything under it is news.
  const children = branch.children.slice();
  const myChildren = mine.children(0, 0);
  const blank = myChildren.findIndex((c) => c.count > 0);
  children.fill(0, blank * 8, blank * 8 + 8);
  const replies = syncReply(mine, { ...branch, children });
  const expectedNews = [...mine.nodeEntries(1, blank)].map((e) => e.key).sort();
  const news = replies.filter((m) => m.type === "entries");
  assert.equal(news.length, 1);
  assert.deepEqual(entryKeys(news[0]), expectedNews);
  const theirChildren = theirs.children(0, 0);
  const described = replies.filter((m) => m.type !== "entries") as Extract<
    Message,
    { level: number; index: number }
  >[];
  for (let i = 0; i < FANOUT; i++) {
    const differs = myChildren[i]!.a !== theirChildren[i]!.a ||
      myChildren[i]!.b !== theirChildren[i]!.b;
    const d = described.find((m) => m.index === i);
    if (i === blank || !differs) assert.equal(d, undefined, `child ${i}`);
    else {
      assert.equal(d!.level, 1);
      const kind = myChildren[i]!.count === 0
        ? "sync-leaf"
        : myChildren[i]!.count <= LEAF_MAX_ENTRIES
        ? "sync-leaf"
        : "sync-branch";
      assert.equal(d!.type, kind, `child ${i}`);
      if (myChildren[i]!.count === 0) assert.equal(of(d, "sync-leaf").hashes.length, 0);
    }
  }
});

test("a branch where we hold nothing in a differing child answers with an empty leaf", () => {
  const mine = storeOf(keys(3));
  const theirs = storeOf([...keys(3), ...keys(40, "y")]);
  const branch = of(syncReply(theirs, syncRoot(mine))[0], "sync-branch");
  const myChildren = mine.children(0, 0);
  const replies = syncReply(mine, branch);
  for (const m of replies) {
    if (m.type === "sync-leaf" && myChildren[m.index]!.count === 0) {
      assert.equal(m.hashes.length, 0);
      return;
    }
  }
  // Forty keys of theirs over sixteen children, three of ours: some child holds only theirs.
  assert.fail(`no empty leaf among ${replies.map((m) => m.type).join(", ")}`);
});

test("a leaf: we send what they lack and want, sorted, what we lack; a want gets exactly it", () => {
  const both = keys(3, "both");
  const mine = storeOf([...both, usr("mine")]);
  const theirs = storeOf([...both, usr("theirs1"), usr("theirs2")]);
  const leaf = of(syncReply(theirs, syncRoot(mine))[0], "sync-leaf");
  const [entries, want, ...rest] = syncReply(mine, leaf);
  assert.deepEqual(rest, []);
  assert.deepEqual(entryKeys(entries), ["mine"]);
  const w = of(want, "sync-want");
  const lacking = [theirs.get("usr", "theirs1")!, theirs.get("usr", "theirs2")!]
    .map((e: StoredEntry): [number, number] => [e.ea, e.eb])
    .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  assert.deepEqual(pairs(w.hashes), lacking);
  assert.deepEqual([w.level, w.index], [0, 0]);
  assert.deepEqual(entryKeys(syncReply(theirs, w)[0]), ["theirs1", "theirs2"]);
  // Nothing to send either way: no reply at all.
  assert.deepEqual(syncReply(theirs, { ...w, hashes: new Uint8Array(8) }), []);
  const same = of(syncReply(mine, syncRoot(theirs))[0], "sync-leaf");
  assert.deepEqual(syncReply(storeOf([...both, usr("mine")]), same), []);
});

test("a leaf listing a hash twice is wanted once; other messages get no reply", () => {
  const mine = storeOf([usr("a")]);
  const theirs = storeOf([usr("b")]);
  const b = theirs.get("usr", "b")!;
  const hashes = new Uint8Array(16);
  const one = of(syncReply(theirs, syncRoot(mine))[0], "sync-leaf").hashes;
  hashes.set(one, 0);
  hashes.set(one, 8);
  const replies = syncReply(mine, { type: "sync-leaf", level: 0, index: 0, hashes });
  assert.deepEqual(pairs(of(replies[1], "sync-want").hashes), [[b.ea, b.eb]]);
  assert.deepEqual(syncReply(mine, { type: "ping", seq: 1, target: "x" }), []);
  assert.deepEqual(syncReply(mine, { type: "entries", entries: [] }), []);
});
