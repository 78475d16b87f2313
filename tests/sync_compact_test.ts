// The compact descent between two members of this release: salted 1-byte child digests,
// leaves of version descriptors, and a key that differs crossing once, from the newer side.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Message } from "../src/core/messages.ts";
import { type Entry, Store } from "../src/core/store.ts";
import { RETRY, speaksCompactSync, SYNC_PROTOCOL, syncReply, syncRoot } from "../src/core/sync.ts";
import { encodeMessage } from "../src/wire/codec.ts";
import { entry } from "./_arbitraries.ts";
import { reconcile } from "./_reconcile.ts";

function usr(key: string, wall = 1, writer = "w"): Entry {
  return { section: "usr", key, value: `${key}@${wall}`, wall, logical: 0, writer, deleted: false };
}

function storeOf(entries: readonly Entry[]): Store {
  const s = new Store();
  for (const e of entries) s.merge(e);
  return s;
}

function of<T extends Message["type"]>(
  m: Message | undefined,
  type: T,
): Extract<Message, { type: T }> {
  assert.equal(m?.type, type);
  return m as Extract<Message, { type: T }>;
}

const SALT = { salt: 0x5678 };
const stamp = (e: Entry) => `${e.key}@${e.wall}`;

test("a member speaks the compact descent when its record says sync: 2 or later", () => {
  assert.equal(SYNC_PROTOCOL, 2);
  assert.equal(speaksCompactSync({ sync: 2 }), true);
  assert.equal(speaksCompactSync({ sync: 3 }), true);
  for (const record of [{ sync: 1 }, { sync: "2" }, { tree: 1 }, {}, null, undefined, 2]) {
    assert.equal(speaksCompactSync(record), false, JSON.stringify(record));
  }
});

test("a compact root: equal ends the round, else the salted descent opens", () => {
  const keys = Array.from({ length: 40 }, (_, i) => usr(`k${i}`));
  const a = storeOf(keys), b = storeOf(keys);
  assert.deepEqual(syncReply(a, syncRoot(b), SALT), []);
  b.merge(usr("k3", 2));
  const nodes = of(syncReply(a, syncRoot(b), SALT)[0], "sync-nodes");
  assert.deepEqual([nodes.salt, nodes.level, nodes.nodes.length], [SALT.salt, 0, 1]);
  // Every child of the root holds something: a full mask, and one byte per child.
  assert.deepEqual([...nodes.nodes[0]!.data.subarray(0, 2)], [0xff, 0xff]);
  assert.equal(nodes.nodes[0]!.data.length, 18);
  // An empty peer gets everything; an empty member asks for everything.
  assert.equal(of(syncReply(a, syncRoot(new Store()), SALT)[0], "entries").entries.length, 40);
  const empty = of(syncReply(new Store(), syncRoot(a), SALT)[0], "sync-stamps");
  assert.deepEqual(empty.nodes, [{ index: 0, data: new Uint8Array(0) }]);
  assert.equal(of(syncReply(a, empty)[0], "entries").entries.length, 40);
});

test("a leaf of stamps: the newer side sends, the older side pulls, equal versions stay", () => {
  const a = storeOf([usr("newer-on-a", 5), usr("same", 1), usr("only-on-a", 1)]);
  const b = storeOf([usr("newer-on-a", 3), usr("only-on-b", 2)]);
  // b holds two entries: it describes its root by their stamps.
  const leaf = of(syncReply(b, syncRoot(a), SALT)[0], "sync-stamps");
  assert.equal(leaf.nodes[0]!.data.length, 18);
  const replies = syncReply(a, leaf);
  assert.deepEqual(
    of(replies[0], "entries").entries.map(stamp).sort(),
    ["newer-on-a@5", "only-on-a@1", "same@1"],
  );
  const pull = of(replies[1], "sync-pull");
  assert.equal(pull.nodes[0]!.data.length, 2);
  assert.deepEqual(of(syncReply(b, pull)[0], "entries").entries.map(stamp), ["only-on-b@2"]);
  // The same version on both sides does not cross.
  const c = storeOf([usr("same", 1), usr("newer-on-c", 9)]);
  const d = storeOf([usr("same", 1), usr("newer-on-c", 2)]);
  const [sent, ...rest] = syncReply(c, of(syncReply(d, syncRoot(c), SALT)[0], "sync-stamps"));
  assert.deepEqual(of(sent, "entries").entries.map(stamp), ["newer-on-c@9"]);
  assert.deepEqual(rest, []);
});

test("equal stamps by different writers: both versions cross, and both sides keep the winner", () => {
  const a = storeOf([usr("k", 7, "m1")]), b = storeOf([usr("k", 7, "m2")]);
  const r = reconcile(a, b, SALT);
  assert.deepEqual([r.sentAtoB.length, r.sentBtoA.length], [1, 1]);
  assert.equal(a.get("usr", "k")!.writer, "m2");
  assert.deepEqual(a.root(), b.root());
  // Counters beyond the descriptor's range (63) read as equal: both cross, the larger wins.
  const c = storeOf([{ ...usr("k", 7), logical: 70 }]),
    d = storeOf([{ ...usr("k", 7), logical: 80 }]);
  const r2 = reconcile(c, d, SALT);
  assert.deepEqual([r2.sentAtoB.length, r2.sentBtoA.length], [1, 1]);
  assert.equal(c.get("usr", "k")!.logical, 80);
  assert.deepEqual(c.root(), d.root());
});

/** The first salt (below `RETRY`) whose answer to `first` from `b` is a retry, or -1. */
function retrySalt(a: Store, b: Store, type: "sync-nodes" | "sync-stamps"): number {
  for (let salt = 0; salt < RETRY; salt++) {
    const opening = syncReply(b, syncRoot(a), { salt });
    const replies = opening.flatMap((m) => syncReply(a, m));
    if (replies.some((m) => m.type === type && (m.salt & RETRY) !== 0)) return salt;
  }
  return -1;
}

test("a node that differs but looks equal under the salt is described again, once, under another", () => {
  // One key differs among 40: the root's children differ in one, whose byte matches by
  // chance once in 256 salts.
  const keys = Array.from({ length: 40 }, (_, i) => usr(`k${i}`));
  const salt = retrySalt(storeOf(keys), storeOf([...keys, usr("k7", 2)]), "sync-nodes");
  assert.ok(salt >= 0, "no salt makes a child byte match");
  const a = storeOf(keys), b = storeOf([...keys, usr("k7", 2)]);
  const r = reconcile(a, b, { salt });
  assert.deepEqual([r.sentAtoB.length, r.sentBtoA.map(stamp)], [0, ["k7@2"]]);
  assert.deepEqual(a.root(), b.root());
  // A node described again is not described a third time. A member shown its own root looks
  // equal everywhere: it describes the root again under the retry salt, then stops there.
  const c = storeOf(keys);
  const own = of(syncReply(c, syncRoot(new Store()), { salt })[0], "entries");
  assert.equal(own.entries.length, 40);
  const mine = of(syncReply(c, syncRoot(storeOf([usr("other")])), { salt })[0], "sync-nodes");
  const again = syncReply(c, mine);
  assert.equal(again.length, 1);
  const retried = of(again[0], "sync-nodes");
  assert.deepEqual([retried.salt, retried.level], [salt | RETRY, 0]);
  assert.deepEqual(syncReply(c, retried), []);
});

test("a leaf whose versions all look equal under the salt is described again under another", () => {
  // Equal stamps by two writers: their check bytes match by chance once in 256 salts.
  const salt = retrySalt(storeOf([usr("k", 7, "m1")]), storeOf([usr("k", 7, "m2")]), "sync-stamps");
  assert.ok(salt >= 0, "no salt makes the check bytes match");
  const a = storeOf([usr("k", 7, "m1")]), b = storeOf([usr("k", 7, "m2")]);
  const r = reconcile(a, b, { salt });
  assert.deepEqual([r.sentAtoB.length, r.sentBtoA.length], [1, 1]);
  assert.deepEqual(a.root(), b.root());
});

function newer(x: Store, y: Store): Set<string> {
  const out = new Set<string>();
  for (const section of ["sys", "usr"] as const) {
    for (const e of x.versions(section)) {
      const o = y.get(section, e.key);
      if (!o || e.wall > o.wall || (e.wall === o.wall && e.logical > o.logical)) {
        out.add(`${section}/${e.key}`);
      }
    }
  }
  return out;
}

function ties(x: Store, y: Store): Set<string> {
  const out = new Set<string>();
  for (const section of ["sys", "usr"] as const) {
    for (const e of x.versions(section)) {
      const o = y.get(section, e.key);
      if (o && e.wall === o.wall && e.logical === o.logical && e.writer !== o.writer) {
        out.add(`${section}/${e.key}`);
      }
    }
  }
  return out;
}

test("the compact descent moves what is newer on each side, one way, and the stores converge", () => {
  let deep = 0, withTies = 0, twoWay = 0, exchanges = 0, moved = 0, extra = 0, missed = 0;
  fc.assert(
    fc.property(
      fc.array(entry, { maxLength: 300, size: "max" }),
      fc.array(entry, { maxLength: 300, size: "max" }),
      fc.array(fc.nat(), { maxLength: 5 }),
      fc.nat({ max: 0xffff }),
      (x, y, tie, salt) => {
        // A few of x's versions again in y, by another writer with the same stamp.
        const twins = x.length ? tie.map((i) => ({ ...x[i % x.length]!, writer: "m9" })) : [];
        const a = storeOf(x), b = storeOf([...y, ...twins]);
        const aNewer = newer(a, b), bNewer = newer(b, a), tied = ties(a, b);
        const key = (e: Entry) => `${e.section}/${e.key}`;
        const r = reconcile(a, b, { salt });
        // What crossed: the newer versions, each way (a tie crosses both ways).
        const ab = new Set(r.sentAtoB.map(key)), ba = new Set(r.sentBtoA.map(key));
        for (const k of ab) if (!aNewer.has(k) && !tied.has(k)) extra++;
        for (const k of ba) if (!bNewer.has(k) && !tied.has(k)) extra++;
        for (const k of aNewer) if (!ab.has(k)) missed++;
        for (const k of bNewer) if (!ba.has(k)) missed++;
        moved += ab.size + ba.size;
        // Later rounds, each with another salt, finish what a chance equality hid.
        let rounds = 1;
        while (a.root().a !== b.root().a || a.root().b !== b.root().b) {
          assert.ok(rounds < 6, "not equal after 6 exchanges");
          reconcile(a, b, { salt: (salt + rounds * 0x9e37) & 0x7fff });
          rounds++;
        }
        exchanges += rounds;
        assert.deepEqual(
          [...a.versions("usr")].map(stamp).sort(),
          [...b.versions("usr")].map(stamp).sort(),
        );
        assert.deepEqual(
          [...a.versions("sys")].map(stamp).sort(),
          [...b.versions("sys")].map(stamp).sort(),
        );
        if (a.size > 64) deep++;
        if (tied.size) withTies++;
        if (aNewer.size && bNewer.size) twoWay++;
      },
    ),
  );
  assert.ok(deep >= 20, `only ${deep} runs descended through a stored level`);
  assert.ok(withTies >= 20 && twoWay >= 20, `${withTies} runs with ties, ${twoWay} both ways`);
  // A salted byte is equal by chance once in 256 comparisons: a few differences wait for the
  // next exchange (a chance equality high in the tree hides a whole branch), and a key id
  // equal by chance may send a version that is not newer.
  assert.ok(missed <= moved / 50, `${missed} missed of ${moved}`);
  assert.ok(extra <= moved / 1000, `${extra} extra of ${moved}`);
  assert.ok(exchanges <= 1.4 * 100, `${exchanges} exchanges for 100 runs`);
  console.log(`${missed} missed and ${extra} extra of ${moved} moved; ${exchanges} exchanges`);
});

test("100 of 100,000 keys newer on each side: each crosses once, towards the older side", () => {
  const base = Array.from({ length: 100_000 }, (_, i) => usr(`key-${i}`, 1_000 + i));
  const a = storeOf(base), b = storeOf(base);
  const onA = new Set<string>(), onB = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const k = `key-${i * 487}`;
    const e = usr(k, 500_000 + i);
    (i % 2 ? a : b).merge(e);
    (i % 2 ? onA : onB).add(k);
  }
  // Until equal roots: an exchange may leave a difference a salted byte hid to the next.
  const r = reconcile(a, b, SALT);
  let exchanges = 1;
  while (a.root().a !== b.root().a || a.root().b !== b.root().b) {
    assert.ok(exchanges++ < 3, "not equal after 3 exchanges");
    const more = reconcile(a, b, { salt: SALT.salt + exchanges });
    r.bytes += more.bytes;
    r.legs += more.legs;
    r.sentAtoB.push(...more.sentAtoB);
    r.sentBtoA.push(...more.sentBtoA);
  }
  assert.deepEqual(new Set(r.sentAtoB.map((e) => e.key)), onA);
  assert.deepEqual(new Set(r.sentBtoA.map((e) => e.key)), onB);
  assert.deepEqual([r.sentAtoB.length, r.sentBtoA.length], [100, 100]);
  assert.deepEqual(a.root(), b.root());
  let minimum = 0;
  // The minimum: the 200 newer entries, each encoded as in an entries message.
  for (const e of [...r.sentAtoB, ...r.sentBtoA]) {
    minimum += encodeMessage({ type: "entries", entries: [e, e] }).length -
      encodeMessage({ type: "entries", entries: [e] }).length;
  }
  assert.ok(r.bytes <= 3 * minimum, `${r.bytes} bytes, minimum ${minimum}`);
  // Counts, not timings: bytes against the full descent of release 0.1.0 on the same stores.
  const c = storeOf(base), d = storeOf(base);
  for (let i = 0; i < 200; i++) (i % 2 ? c : d).merge(usr(`key-${i * 487}`, 500_000 + i));
  const full = reconcile(c, d);
  assert.ok(full.sentAtoB.length + full.sentBtoA.length > 200, "the full descent sends stale ones");
  assert.ok(r.bytes * 3 < full.bytes, `${r.bytes} bytes, full descent ${full.bytes}`);
  console.log(
    `200 of 100,000 keys differ, 100 newer on each side: compact ${r.bytes} bytes in ${r.legs} ` +
      `legs (entries alone ${minimum}), full ${full.bytes} bytes in ${full.legs} legs`,
  );
});
