import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { compareVersions, type Entry, Store } from "../src/core/store.ts";
import { entry } from "./_arbitraries.ts";

function storeOf(...lists: readonly (readonly Entry[])[]): Store {
  const s = new Store();
  for (const list of lists) for (const e of list) s.merge(e);
  return s;
}

/** Merges every version held by `b` into a copy of `a`. */
function mergeStores(a: Store, b: Store): Store {
  return storeOf(dump(a), dump(b));
}

function dump(s: Store): Entry[] {
  return [...s.versions("sys"), ...s.versions("usr")];
}

/** A store's state as a canonical, comparable value. */
function state(s: Store): string[] {
  return dump(s)
    .map((e) => JSON.stringify([e.section, e.key, e.wall, e.logical, e.writer, e.deleted, e.value]))
    .sort();
}

const entries = fc.array(entry, { maxLength: 40 });

test("merge() is commutative", () => {
  fc.assert(fc.property(entries, entries, (a, b) => {
    assert.deepEqual(
      state(mergeStores(storeOf(a), storeOf(b))),
      state(mergeStores(storeOf(b), storeOf(a))),
    );
  }));
});

test("merge() is associative", () => {
  fc.assert(fc.property(entries, entries, entries, (a, b, c) => {
    const left = mergeStores(mergeStores(storeOf(a), storeOf(b)), storeOf(c));
    const right = mergeStores(storeOf(a), mergeStores(storeOf(b), storeOf(c)));
    assert.deepEqual(state(left), state(right));
  }));
});

test("merge() is idempotent", () => {
  fc.assert(fc.property(entries, (a) => {
    const s = storeOf(a);
    assert.deepEqual(state(mergeStores(s, s)), state(s));
    for (const e of a) assert.notEqual(s.merge(e).outcome, "applied");
  }));
});

test("the order entries arrive in does not change the state", () => {
  fc.assert(
    fc.property(
      entries.chain((a) =>
        fc.tuple(fc.constant(a), fc.shuffledSubarray(a, { minLength: a.length }))
      ),
      ([a, shuffled]) => {
        assert.deepEqual(state(storeOf(a)), state(storeOf(shuffled)));
      },
    ),
  );
});

test("each key keeps the version with the greatest (stamp, writer)", () => {
  fc.assert(fc.property(entries, (a) => {
    const s = storeOf(a);
    for (const e of a) {
      const held = s.get(e.section, e.key)!;
      assert.ok(compareVersions(held, e) >= 0);
    }
  }));
});

test("equal Merkle roots if and only if equal states", () => {
  fc.assert(fc.property(entries, entries, (a, b) => {
    const x = storeOf(a), y = storeOf(b);
    const rx = x.root(), ry = y.root();
    const sameRoot = rx.a === ry.a && rx.b === ry.b && rx.count === ry.count;
    assert.equal(sameRoot, JSON.stringify(state(x)) === JSON.stringify(state(y)));
  }));
});

test("the Merkle tree is the same whether built at once or grown and shrunk", () => {
  fc.assert(
    fc.property(
      fc.array(entry, { maxLength: 300 }),
      fc.integer({ min: 0, max: 60 }),
      (a, horizon) => {
        const grown = storeOf(a);
        grown.collectTombstones(horizon);
        const fresh = storeOf(dump(grown));
        assert.deepEqual(grown.root(), fresh.root());
        for (let i = 0; i < 16; i++) assert.deepEqual(grown.node(1, i), fresh.node(1, i));
      },
    ),
  );
});

test("merge() reports applied, duplicate and stale, and returns the replaced version", () => {
  const s = new Store();
  const v1: Entry = {
    section: "usr",
    key: "k",
    value: 1,
    wall: 10,
    logical: 0,
    writer: "a",
    deleted: false,
  };
  const v2: Entry = { ...v1, value: 2, wall: 11 };
  assert.equal(s.merge(v1).outcome, "applied");
  assert.equal(s.merge(v1).outcome, "duplicate");
  const r = s.merge(v2);
  assert.equal(r.outcome, "applied");
  assert.equal(r.previous?.value, 1);
  assert.equal(s.merge(v1).outcome, "stale");
  assert.equal(s.get("usr", "k")?.value, 2);
});

test("a tie on the stamp is broken by writer id", () => {
  const s = new Store();
  const a: Entry = {
    section: "usr",
    key: "k",
    value: "from a",
    wall: 5,
    logical: 2,
    writer: "a",
    deleted: false,
  };
  const b: Entry = { ...a, value: "from b", writer: "b" };
  s.merge(b);
  assert.equal(s.merge(a).outcome, "stale");
  assert.equal(s.get("usr", "k")?.value, "from b");
});

test("a tombstone hides the value, and is collected only after the horizon", () => {
  const s = new Store();
  s.merge({
    section: "usr",
    key: "k",
    value: "v",
    wall: 100,
    logical: 0,
    writer: "a",
    deleted: false,
  });
  s.merge({
    section: "usr",
    key: "k",
    value: undefined,
    wall: 200,
    logical: 0,
    writer: "a",
    deleted: true,
  });
  assert.equal(s.liveCount("usr"), 0);
  assert.equal(s.tombstoneCount, 1);
  assert.equal(s.collectTombstones(200), 0);
  assert.equal(s.collectTombstones(201), 1);
  assert.equal(s.get("usr", "k"), undefined);
  assert.equal(s.size, 0);
  assert.deepEqual(s.root(), { a: 0, b: 0, count: 0 });
});

test("sections are separate key spaces", () => {
  const s = new Store();
  s.merge({
    section: "usr",
    key: "k",
    value: "user",
    wall: 1,
    logical: 0,
    writer: "a",
    deleted: false,
  });
  s.merge({
    section: "sys",
    key: "k",
    value: "system",
    wall: 1,
    logical: 0,
    writer: "a",
    deleted: false,
  });
  assert.equal(s.get("usr", "k")?.value, "user");
  assert.equal(s.get("sys", "k")?.value, "system");
  assert.equal(s.liveCount("usr"), 1);
  assert.equal(s.liveCount("sys"), 1);
});

test("an entry built by spreading a stored one is hashed afresh", () => {
  const s = new Store();
  const { stored } = s.merge({
    section: "usr",
    key: "k",
    value: 1,
    wall: 1,
    logical: 0,
    writer: "a",
    deleted: false,
  });
  s.merge({ ...stored!, value: undefined, logical: 1, deleted: true });
  const fresh = new Store();
  fresh.merge({
    section: "usr",
    key: "k",
    value: undefined,
    wall: 1,
    logical: 1,
    writer: "a",
    deleted: true,
  });
  assert.deepEqual(s.root(), fresh.root());
});
