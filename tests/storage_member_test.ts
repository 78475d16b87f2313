// Persistence from the member's side: Engine.load(), what the engine hands a storage, and
// GossipKV with a storage (in memory on virtual time, and on files).
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GossipKV, MemoryNetwork } from "../mod.ts";
import { Engine, MEMBER_KEY_PREFIX } from "../src/core/engine.ts";
import { compareStamps } from "../src/core/hlc.ts";
import { seededRandom } from "../src/core/random.ts";
import { compareVersions, type Entry, Store } from "../src/core/store.ts";
import { fileStorage } from "../src/storage/file.ts";
import { MemoryStorage } from "../src/storage/memory.ts";
import type { Storage, StorageLoad } from "../src/storage/types.ts";
import { Cluster } from "./_cluster.ts";
import { entry } from "./_arbitraries.ts";

const T = Date.UTC(2026, 0, 1);

function usr(key: string, wall: number, writer = "w", deleted = false): Entry {
  return {
    section: "usr",
    key,
    value: deleted ? undefined : key,
    wall,
    logical: 0,
    writer,
    deleted,
  };
}

function state(entries: Iterable<Entry>): string[] {
  return [...entries].map((e) =>
    JSON.stringify([e.section, e.key, e.wall, e.logical, e.writer, e.deleted])
  ).sort();
}

// ------------------------------------------------------------------ Engine.load()

test("Engine.load() merges entries silently: no change, no rumor, nothing to persist", () => {
  const e = new Engine({ id: "a", address: "a" }, T, seededRandom("a"));
  const n = e.load([usr("x", T - 10), usr("y", T - 5, "w", true), usr("x", T - 20)], T);
  assert.equal(n, 2);
  assert.equal(e.store.get("usr", "x")?.wall, T - 10);
  assert.equal(e.store.get("usr", "y")?.deleted, true);
  const out = e.takeOutput();
  assert.deepEqual([out.outgoing, out.changed, out.applied, out.collected], [[], [], [], []]);
});

test("Engine.load() raises the clock past every loaded stamp, beyond the drift bound too", () => {
  fc.assert(
    fc.property(
      fc.array(entry, { maxLength: 30, size: "max" }),
      fc.nat(3_600_000),
      (entries, ahead) => {
        const e = new Engine({ id: "a", address: "a", maxDriftMs: 1000 }, T, seededRandom("a"));
        const future = { ...usr("future", T + ahead), logical: 7 };
        const loaded = entries.map((x) => ({ ...x, wall: T - 1000 + x.wall }));
        e.load([...loaded, future], T);
        const stamp = e.write("usr", "new", 1, false, T);
        for (const x of [...loaded, future]) assert.ok(compareStamps(stamp, x) > 0);
        // And the store holds what merging would give (valid sys entries only).
        const valid = [...loaded, future].filter((x) =>
          x.section === "usr" || x.key === MEMBER_KEY_PREFIX + x.writer
        );
        const reference = new Store();
        for (const x of valid) reference.merge(x);
        reference.merge(e.store.get("usr", "new")!);
        assert.deepEqual(
          state([...e.store.versions("sys"), ...e.store.versions("usr")]),
          state([...reference.versions("sys"), ...reference.versions("usr")]),
        );
      },
    ),
  );
});

test("Engine.load() learns the members named in sys records, and skips invalid ones", () => {
  const e = new Engine({ id: "a", address: "a" }, T, seededRandom("a"));
  const record = (id: string, writer = id): Entry => ({
    section: "sys",
    key: MEMBER_KEY_PREFIX + id,
    value: { address: `${id}:1` },
    wall: T - 100,
    logical: 0,
    writer,
    deleted: false,
  });
  e.load([record("a"), record("b"), record("c", "b")], T);
  assert.equal(e.membership.get("b")?.address, "b:1");
  assert.equal(e.membership.get("b")?.status, "alive");
  assert.equal(e.membership.get("c"), undefined, "a record written by another member is skipped");
  assert.equal(e.store.get("sys", "members/c"), undefined);
  e.start(T);
  const own = e.store.get("sys", "members/a")!;
  assert.ok(compareVersions(own, record("a")) > 0, "start() writes our record anew, later");
});

test("the engine hands over every version it takes in, and every tombstone it collects", () => {
  const a = new Engine({ id: "a", address: "a", tombstoneGraceMs: 1000 }, T, seededRandom("a"));
  a.start(T);
  assert.deepEqual(a.takeOutput().applied.map((x) => x.key), ["members/a"]);
  a.write("usr", "k", 1, false, T);
  a.write("usr", "k", undefined, true, T);
  assert.deepEqual(a.takeOutput().applied.map((x) => [x.key, x.deleted]), [["k", false], [
    "k",
    true,
  ]]);
  a.receive("b", {
    cluster: "c",
    sender: "b",
    messages: [{ type: "entries", entries: [usr("r", T), usr("k", T - 1)] }],
  }, T);
  assert.deepEqual(
    a.takeOutput().applied.map((x) => x.key),
    ["r"],
    "stale entries are not applied",
  );
  a.tick(T + 5000);
  const out = a.takeOutput();
  assert.deepEqual(out.collected.map((x) => [x.key, x.deleted]), [["k", true]]);
});

// ------------------------------------------------------------------ GossipKV, virtual time

test("a member restarted with its storage has its data and what it learned, at once", async () => {
  const c = new Cluster({ latencyMs: 2 });
  const storages = { a: new MemoryStorage(), b: new MemoryStorage() };
  const a = await c.add("a", { storage: storages.a });
  const b = await c.add("b", { storage: storages.b });
  await a.set("from a", 1);
  await b.set("from b", { nested: [1, 2] });
  await a.delete("from b");
  assert.ok(
    c.runUntil(() => c.converged() && b.get("from a") === 1 && !b.has("from b"), 10_000) >= 0,
  );
  await c.crash("a");
  await c.crash("b");
  const a2 = await c.add("a", { storage: storages.a, seeds: [] });
  const b2 = await c.add("b", { storage: storages.b, seeds: [] });
  for (const kv of [a2, b2]) {
    assert.equal(kv.get("from a"), 1);
    assert.equal(kv.has("from b"), false);
    assert.equal(kv.version("from b")?.deleted, true, "the tombstone came back too");
  }
  // Each knows the other from its persisted sys record: they find each other without seeds.
  assert.ok(a2.members().some((m) => m.id === "b"));
  await a2.set("after", true);
  assert.ok(c.runUntil(() => c.everyoneHas("after", true) && c.converged(), 20_000) >= 0);
  await c.close();
});

test("after a whole-cluster restart, members without seeds find each other and converge", async () => {
  const c = new Cluster({ latencyMs: 2, loss: 0.1 });
  const ids = ["m0", "m1", "m2", "m3"];
  const storages = new Map(ids.map((id) => [id, new MemoryStorage()]));
  for (const id of ids) await c.add(id, { storage: storages.get(id)! });
  for (let i = 0; i < 40; i++) await c.get(ids[i % 4]!).set(`k${i}`, i);
  assert.notEqual(c.runUntil(() => c.converged(), 20_000), -1, "no convergence before the crash");
  for (const id of ids) await c.crash(id);
  c.run(60_000);
  for (const id of ids) await c.add(id, { storage: storages.get(id)!, seeds: [] });
  await c.get("m3").set("after restart", "yes");
  const took = c.runUntil(
    () => c.everyoneHas("after restart", "yes") && c.everyoneHas("k39", 39) && c.converged(),
    60_000,
  );
  assert.ok(took >= 0, "no convergence after the restart");
  await c.close();
});

test("collected tombstones are forgotten by the storage", async () => {
  const c = new Cluster({ member: { tombstoneGraceMs: 2000, gossipIntervalMs: 200 } });
  const storage = new MemoryStorage();
  const a = await c.add("a", { storage });
  await a.set("k", 1);
  await a.delete("k");
  assert.equal(storage.entries().find((e) => e.key === "k")?.deleted, true);
  c.run(3000);
  assert.equal(storage.entries().find((e) => e.key === "k"), undefined);
  await c.close();
});

/** A storage whose sync() waits for release(), or fails. */
class GatedStorage implements Storage {
  readonly inner = new MemoryStorage();
  #release: (() => void)[] = [];
  fail: Error | undefined;
  damage: StorageLoad["damage"] = null;
  async load(): Promise<StorageLoad> {
    return { entries: (await this.inner.load()).entries, damage: this.damage };
  }
  append(entries: readonly Entry[]): void {
    this.inner.append(entries);
  }
  forget(entries: readonly Entry[]): void {
    this.inner.forget(entries);
  }
  sync(): Promise<void> {
    if (this.fail) return Promise.reject(this.fail);
    return new Promise((resolve) => this.#release.push(resolve));
  }
  release(): void {
    for (const r of this.#release.splice(0)) r();
  }
  close(): Promise<void> {
    this.release();
    return this.inner.close();
  }
}

test("set() and delete() resolve only once the storage says the write is durable", async () => {
  const storage = new GatedStorage();
  const kv = await GossipKV.start({ transport: new MemoryNetwork().transport("a"), storage });
  let done = 0;
  const writes = [kv.set("a", 1).then(() => done++), kv.delete("b").then(() => done++)];
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(done, 0);
  assert.equal(kv.get("a"), 1, "applied at once all the same");
  storage.release();
  await Promise.all(writes);
  assert.equal(done, 2);
  await kv.close();
});

test("a failing storage rejects set(); the member carries on in memory", async () => {
  const storage = new GatedStorage();
  const kv = await GossipKV.start({ transport: new MemoryNetwork().transport("a"), storage });
  storage.fail = new Error("disk on fire");
  await assert.rejects(kv.set("a", 1), /disk on fire/);
  assert.equal(kv.get("a"), 1);
  await kv.close();
});

test("damage found on load is reported to onError, and the member starts", async () => {
  const storage = new GatedStorage();
  storage.damage = { message: "torn tail at byte 80", bytesDropped: 12 };
  const errors: unknown[] = [];
  const kv = await GossipKV.start({
    transport: new MemoryNetwork().transport("a"),
    storage,
    onError: (e) => errors.push(e),
  });
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /torn tail at byte 80/);
  assert.equal((errors[0] as Error).cause, storage.damage);
  await kv.close();
});

// ------------------------------------------------------------------ GossipKV, files

test("a member restarted on its directory has every value back, and stamps move forward", async () => {
  const dir = await mkdtemp(join(tmpdir(), "gossip-kv-member-"));
  try {
    const net = new MemoryNetwork();
    let now = T + 3_600_000;
    const clock = { now: () => now };
    const value = {
      list: [1, "two"],
      bytes: new Uint8Array([1, 2]),
      when: new Date(5),
      map: new Map([["k", 1]]),
    };
    const a = await GossipKV.start({
      id: "a",
      transport: net.transport("a"),
      clock,
      storage: fileStorage({ dir }),
    });
    await a.set("k", value);
    await a.set("gone", 1);
    await a.delete("gone");
    const before = a.version("k")!;
    await a.close();
    now -= 3_600_000; // the machine's clock went back an hour meanwhile
    const a2 = await GossipKV.start({
      id: "a",
      transport: net.transport("a"),
      clock,
      storage: fileStorage({ dir }),
    });
    assert.deepEqual(a2.get("k"), value);
    assert.equal(a2.version("gone")?.deleted, true);
    await a2.set("k", "newer");
    assert.ok(compareStamps(a2.version("k")!, before) > 0, "a write after the restart wins");
    await a2.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
