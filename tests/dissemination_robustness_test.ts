// Dissemination under churn and faults, on virtual time: bursts of writes from several members
// while members restart, join, leave or crash, the network splits, or loses 30% of datagrams.
// Each scenario ends with every live member holding exactly the reference state (the last
// acknowledged write per key, last writer wins) within a bounded virtual time, and checks that
// the burst travelled mostly by dissemination, anti-entropy only repairing what it missed.
// Fixed seeds: the counts printed are the same on every run and runtime.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster, type ClusterOptions, dataOf, LwwModel } from "./_cluster.ts";
import { MemoryStorage } from "../src/storage/memory.ts";
import type { GossipKV, GossipKVOptions } from "../src/gossip_kv.ts";

const N = 48;
/** Virtual ms between two writes of a burst. */
const SPACING = 2;
/** Writes per burst, and the keys they fall on (so that later writes overwrite earlier ones). */
const WRITES = 400;
const KEYS = 250;
/**
 * Virtual ms after a burst within which every member must hold the reference state without
 * loss: 15 anti-entropy rounds (the runner's `gossipIntervalMs` is 200).
 */
const SETTLE_MS = 3_000;

async function formed(
  seed: number,
  options: ClusterOptions = {},
  each: (id: string) => Partial<GossipKVOptions> = () => ({}),
): Promise<Cluster> {
  const c = new Cluster({ seed, latencyMs: 5, jitterMs: 2, ...options });
  for (let i = 0; i < N; i++) await c.add(`m${i}`, each(`m${i}`));
  const joined = c.runUntil(
    () =>
      [...c.members.values()].every((kv) =>
        kv.members().filter((m) => m.status === "alive").length === N
      ),
    60_000,
    50,
  );
  assert.notEqual(joined, -1, `${N} members did not see each other alive within 60 s`);
  c.run(2_000);
  return c;
}

/** Dissemination and anti-entropy counters of the members that ran the whole burst. */
class Delivery {
  readonly #base = new Map<GossipKV, { tree: number; sync: number }>();

  constructor(c: Cluster) {
    for (const kv of c.members.values()) {
      const e = kv.stats().engine;
      this.#base.set(kv, { tree: e.rumorEntriesNew, sync: e.syncEntriesReceived });
    }
  }

  /**
   * Entries that were new to a member when a tree message or a rumor brought them, and
   * entries anti-entropy brought (new or not: an upper bound of what it delivered), summed
   * over the members running since the start that still run.
   */
  since(c: Cluster): { tree: number; sync: number; share: number } {
    let tree = 0, sync = 0;
    for (const kv of c.members.values()) {
      const base = this.#base.get(kv);
      if (!base) continue;
      const e = kv.stats().engine;
      tree += e.rumorEntriesNew - base.tree;
      sync += e.syncEntriesReceived - base.sync;
    }
    return { tree, sync, share: tree / (tree + sync) };
  }
}

interface BurstOptions {
  /** The writer of write `i` (a running member), or undefined to skip it. */
  writer: (i: number) => string | undefined;
  /** Events run before write `i`. */
  events?: Record<number, () => Promise<void>>;
}

/** Writes a burst; returns the reference model of what was acknowledged. */
async function burst(c: Cluster, model: LwwModel, options: BurstOptions): Promise<void> {
  for (let i = 0; i < WRITES; i++) {
    await options.events?.[i]?.();
    const id = options.writer(i);
    if (id !== undefined) await write(c, model, id, `k${(i * 7) % KEYS}`, i);
    c.run(SPACING);
  }
}

/** A write acknowledged by member `id`, recorded in the reference model. */
async function write(c: Cluster, model: LwwModel, id: string, key: string, i: number) {
  const kv = c.get(id);
  await kv.set(key, { i, by: id });
  model.record(kv, key);
}

function sorted(data: Record<string, unknown>): string {
  return JSON.stringify(
    Object.fromEntries(Object.entries(data).sort(([a], [b]) => a < b ? -1 : 1)),
  );
}

/**
 * Runs until every running member holds exactly the reference state; returns the virtual ms
 * it took (asserting that it is within `maxMs`).
 */
function settle(c: Cluster, model: LwwModel, maxMs: number): number {
  const expected = sorted(model.expected());
  const holds = () =>
    [...c.members.values()].every((kv) => JSON.stringify(dataOf(kv)) === expected);
  const took = c.runUntil(holds, maxMs, 10);
  if (took < 0) {
    const want = model.expected();
    for (const kv of c.members.values()) {
      const have = dataOf(kv);
      const missing = Object.keys(want).filter((k) =>
        sorted({ [k]: have[k] }) !== sorted({ [k]: want[k] })
      );
      assert.deepEqual(missing, [], `${kv.id} differs from the reference after ${maxMs} ms`);
    }
  }
  for (const kv of c.members.values()) assert.deepEqual(dataOf(kv), JSON.parse(expected));
  return took;
}

function ids(from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, i) => `m${from + i}`);
}

/** A running member other than `id` to join through. */
function seedFor(c: Cluster, id: string): string {
  for (const other of c.members.keys()) if (other !== id) return other;
  throw new Error("no member to join through");
}

test("10% of the members restart without storage during a burst from six writers", async () => {
  const c = await formed(101);
  const model = new LwwModel();
  const writers = ids(1, 7);
  // Five members restart: two close gracefully, three crash; some come back at once, some
  // 300 ms later; m40 restarts twice 400 ms apart. Each writes after it is back.
  const restart = (id: string, graceful: boolean, downMs: number) => async () => {
    if (graceful) await c.leave(id);
    else await c.crash(id);
    c.run(downMs);
    await c.add(id, { seeds: [seedFor(c, id)] });
    await write(c, model, id, `after-restart-${id}-${c.now}`, -1);
  };
  const delivery = new Delivery(c);
  await burst(c, model, {
    writer: (i) => writers[i % writers.length],
    events: {
      50: restart("m10", true, 0),
      100: restart("m20", false, 0),
      150: restart("m30", false, 300),
      200: restart("m40", true, 300),
      300: restart("m40", false, 0),
      250: restart("m47", false, 0),
    },
  });
  const took = settle(c, model, SETTLE_MS);
  const d = delivery.since(c);
  console.log(
    `restarts without storage: reference on all ${c.members.size} after ${took} ms; ` +
      `by tree ${d.tree}, by anti-entropy ≤ ${d.sync} (${(100 * d.share).toFixed(1)}% tree)`,
  );
  assert.equal(c.members.size, N);
  assert.ok(d.share >= 0.85, `only ${(100 * d.share).toFixed(1)}% of the entries came by the tree`);
  await c.close();
});

test("10% of the members restart from their storage during a burst, writing up to the crash", async () => {
  const restarting = ["m10", "m20", "m30", "m40", "m47"];
  const storages = new Map(restarting.map((id) => [id, new MemoryStorage()]));
  const c = await formed(103, {}, (id) => {
    const storage = storages.get(id);
    return storage ? { storage } : {};
  });
  const model = new LwwModel();
  // Each restarting member writes, then stops in the same turn: the write is durable on its
  // storage but was never sent. It comes back from the storage at once or 300 ms later.
  const restart = (id: string, graceful: boolean, downMs: number) => async () => {
    await write(c, model, id, `before-stop-${id}-${c.now}`, -1);
    if (graceful) await c.leave(id);
    else await c.crash(id);
    c.run(downMs);
    await c.add(id, { seeds: [seedFor(c, id)], storage: storages.get(id)! });
  };
  const writers = [...ids(1, 7), ...restarting];
  const delivery = new Delivery(c);
  await burst(c, model, {
    // The restarting members write their share of the burst while they run.
    writer: (i) => {
      const id = writers[i % writers.length]!;
      return c.members.has(id) ? id : undefined;
    },
    events: {
      50: restart("m10", true, 0),
      100: restart("m20", false, 0),
      150: restart("m30", false, 300),
      200: restart("m40", true, 300),
      250: restart("m47", false, 0),
    },
  });
  const took = settle(c, model, SETTLE_MS);
  const d = delivery.since(c);
  console.log(
    `restarts from storage: reference on all ${c.members.size} after ${took} ms; ` +
      `by tree ${d.tree}, by anti-entropy ≤ ${d.sync} (${(100 * d.share).toFixed(1)}% tree)`,
  );
  assert.equal(c.members.size, N);
  assert.ok(d.share >= 0.85, `only ${(100 * d.share).toFixed(1)}% of the entries came by the tree`);
  await c.close();
});

test("a write acknowledged just before a graceful close reaches every member", async () => {
  const c = await formed(102);
  await c.get("m5").set("last words", "said");
  await c.leave("m5"); // in the same turn: the write was not flushed yet
  assert.notEqual(c.runUntil(() => c.everyoneHas("last words", "said"), 1_000), -1);
  await c.close();
});
