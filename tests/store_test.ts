import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { type Entry, hashEntry, keyHash, Store, tombstoneAfter } from "../src/core/store.ts";
import { hashString, LANE_A, LANE_B } from "../src/core/hash.ts";
import { entry } from "./_arbitraries.ts";
import { reconcile } from "./_reconcile.ts";

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

// `size: "max"`: without it fast-check 4 draws at most 10 items, whatever `maxLength` says.
const entries = fc.array(entry, { maxLength: 40, size: "max" });

/**
 * The oracle: last writer wins on (wall, counter, writer), written out by hand rather than
 * through `compareVersions`, so that a wrong order in the store cannot agree with itself.
 */
function newer(a: Entry, b: Entry): boolean {
  if (a.wall !== b.wall) return a.wall > b.wall;
  if (a.logical !== b.logical) return a.logical > b.logical;
  return a.writer > b.writer;
}

/** Versions crowded onto few keys and stamps, so that the writer often decides. */
const crowded = fc.array(
  fc.record({
    section: fc.constantFrom<Entry["section"]>("usr", "sys"),
    key: fc.constantFrom("a", "b", "c"),
    wall: fc.nat(3),
    logical: fc.nat(1),
    writer: fc.constantFrom("m1", "m2", "m10", "n"),
    deleted: fc.boolean(),
  }).map((e): Entry => ({
    ...e,
    value: e.deleted ? undefined : `${e.writer}@${e.wall}.${e.logical}`,
  })),
  { minLength: 5, maxLength: 40, size: "max" },
);

/** What a store must hold after merging `list`: the newest version of each key. */
function model(list: readonly Entry[]): Map<string, Entry> {
  const out = new Map<string, Entry>();
  for (const e of list) {
    const id = `${e.section}/${e.key}`;
    const held = out.get(id);
    if (!held || newer(e, held)) out.set(id, e);
  }
  return out;
}

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

test("each key keeps the version a hand-written (wall, counter, writer) order picks", () => {
  let ties = 0;
  fc.assert(fc.property(fc.oneof(entries, crowded), (a) => {
    const s = storeOf(a);
    const expected = model(a);
    assert.equal(s.size, expected.size);
    for (const [id, e] of expected) {
      const held = s.get(e.section, e.key)!;
      assert.deepEqual(
        [held.wall, held.logical, held.writer, held.deleted, held.value],
        [e.wall, e.logical, e.writer, e.deleted, e.value],
        id,
      );
      if (
        a.some((o) =>
          o !== e && o.key === e.key && o.section === e.section &&
          o.wall === e.wall && o.logical === e.logical && o.writer !== e.writer
        )
      ) ties++;
    }
  }));
  // The property tested something: stamps tied between writers, so the writer decided.
  assert.ok(ties >= 10, `${ties} keys decided by the writer`);
});

test("two stores with the same key and stamp but different writers reconcile to the greater writer", () => {
  fc.assert(fc.property(
    fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 2, maxLength: 2 }),
    fc.integer({ min: 0, max: 2 ** 47 }),
    fc.nat(1000),
    fc.boolean(),
    ([w1, w2], wall, logical, deleteFirst) => {
      const version = (writer: string, deleted: boolean): Entry => ({
        section: "usr",
        key: "k",
        value: deleted ? undefined : `from ${writer}`,
        wall,
        logical,
        writer,
        deleted,
      });
      const x = storeOf([version(w1!, deleteFirst)]);
      const y = storeOf([version(w2!, false)]);
      reconcile(x, y);
      const winner = w1! > w2! ? w1! : w2!;
      for (const s of [x, y]) assert.equal(s.get("usr", "k")?.writer, winner);
      assert.deepEqual(x.root(), y.root());
    },
  ));
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
  let deep = 0;
  fc.assert(
    fc.property(
      fc.array(entry, { minLength: 100, maxLength: 600, size: "max" }),
      fc.integer({ min: 0, max: 60 }),
      (a, horizon) => {
        const grown = storeOf(a);
        const collected = grown.collectTombstones(horizon);
        const fresh = storeOf(dump(grown));
        assert.deepEqual(grown.root(), fresh.root());
        assert.deepEqual(grown.node(0, 0), grown.root());
        for (let i = 0; i < 16; i++) assert.deepEqual(grown.node(1, i), fresh.node(1, i));
        let count = 0;
        for (let i = 0; i < 16; i++) count += grown.node(1, i).count;
        assert.equal(count, grown.size);
        // Past 64 versions the tree stores level 1: the comparison above then reads the
        // counters maintained through every replace and collect, not ones computed afresh.
        if (grown.size > 64 && collected > 0) deep++;
      },
    ),
  );
  assert.ok(deep >= 20, `only ${deep} runs grew a stored level and then shrank`);
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

test("versions that differ in stamp, writer or deletion alone hash differently", () => {
  fc.assert(fc.property(
    entry,
    fc.constantFrom("wall", "logical", "writer", "deleted"),
    fc.integer({ min: 1, max: 2 ** 40 }),
    (e, field, by) => {
      const other: Entry = field === "wall"
        ? { ...e, wall: e.wall + by }
        : field === "logical"
        ? { ...e, logical: e.logical + (by % 1000) + 1 }
        : field === "writer"
        ? { ...e, writer: `${e.writer}${by}` }
        : { ...e, deleted: !e.deleted, value: e.deleted ? 1 : undefined };
      const [x, y] = [hashEntry(e), hashEntry(other)];
      assert.deepEqual([x.ka, x.kb], [y.ka, y.kb], "same key, same key hash");
      assert.notDeepEqual([x.ea, x.eb], [y.ea, y.eb], field);
    },
  ));
});

test("tombstoneAfter() supersedes exactly the version it names", () => {
  fc.assert(fc.property(entry, (v) => {
    const t = tombstoneAfter(v);
    assert.deepEqual(t, {
      section: v.section,
      key: v.key,
      value: undefined,
      wall: v.wall,
      logical: v.logical + 1,
      writer: v.writer,
      deleted: true,
    });
    const s = storeOf([v]);
    assert.equal(s.merge(t).outcome, "applied");
    assert.equal(s.tombstoneCount, 1);
    assert.equal(s.merge({ ...v, wall: v.wall + 1 }).outcome, "applied", "a later write wins");
  }));
});

test("the two sections hash a key apart, with the pinned seeds", () => {
  fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 20, size: "max" }), (k) => {
    assert.equal(keyHash("usr", k), hashString(k, LANE_A));
    assert.equal(keyHash("sys", k), hashString(k, LANE_A ^ 0x51));
    const u = hashEntry({
      section: "usr",
      key: k,
      value: 1,
      wall: 1,
      logical: 0,
      writer: "w",
      deleted: false,
    });
    const y = hashEntry({ ...u, section: "sys" });
    assert.equal(u.ka, keyHash("usr", k));
    assert.equal(u.kb, hashString(k, LANE_B));
    assert.equal(y.ka, keyHash("sys", k));
    assert.equal(y.kb, hashString(k, LANE_B ^ 0x51));
  }));
});

test("lastStored is the version the last applying merge stored; a stale or equal one leaves it", () => {
  const s = new Store();
  assert.equal(s.lastStored, undefined);
  const v = (key: string, wall: number): Entry => ({
    section: "usr",
    key,
    value: `${key}@${wall}`,
    wall,
    logical: 0,
    writer: "m1",
    deleted: false,
  });
  s.merge(v("a", 2));
  assert.equal(s.lastStored, s.get("usr", "a"));
  s.merge(v("b", 1));
  assert.equal(s.lastStored, s.get("usr", "b"));
  assert.equal(s.merge(v("a", 1)).outcome, "stale");
  assert.equal(s.merge(v("a", 2)).outcome, "duplicate");
  assert.equal(s.lastStored, s.get("usr", "b"), "unchanged");
  s.merge(v("a", 3));
  assert.equal(s.lastStored, s.get("usr", "a"));
  assert.equal(s.get("usr", "a")?.wall, 3, "the newer version");
});
