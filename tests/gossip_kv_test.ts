import { test } from "node:test";
import assert from "node:assert/strict";
import { GossipKV, MemoryNetwork } from "../mod.ts";
import { seededRandom } from "../src/core/random.ts";
import { Wire } from "../src/wire/wire.ts";
import { Cluster } from "./_cluster.ts";

async function pair() {
  const c = new Cluster({ latencyMs: 2 });
  const a = await c.add("a");
  const b = await c.add("b");
  c.run(1000);
  return { c, a, b };
}

test("bad keys and unencodable values reject with a TypeError and apply nothing", async () => {
  const { c, a } = await pair();
  const before = a.syncStatus().root;
  for (const key of ["", 42, null, undefined, "x".repeat(4097)]) {
    await assert.rejects(a.set(key as string, 1), TypeError);
    await assert.rejects(a.delete(key as string), TypeError);
  }
  for (
    const value of [undefined, () => 1, Symbol("s"), new (class Point {})(), {
      deep: new WeakMap(),
    }]
  ) {
    await assert.rejects(a.set("k", value), TypeError);
  }
  assert.equal(a.syncStatus().root, before);
  assert.equal(a.size, 0);
  await c.close();
});

test("a value over maxValueBytes rejects with a RangeError", async () => {
  const c = new Cluster();
  const a = await c.add("a", { maxValueBytes: 1000 });
  await assert.rejects(a.set("k", new Uint8Array(2000)), RangeError);
  await a.set("k", new Uint8Array(900));
  await c.close();
});

test("values are copied on write: mutating the original changes nothing", async () => {
  const { c, a } = await pair();
  const value = {
    list: [1, 2],
    when: new Date(5),
    bytes: new Uint8Array([1]),
    map: new Map([["x", 1]]),
  };
  await a.set("k", value);
  value.list.push(3);
  value.bytes[0] = 9;
  assert.deepEqual(a.get("k"), {
    list: [1, 2],
    when: new Date(5),
    bytes: new Uint8Array([1]),
    map: new Map([["x", 1]]),
  });
  await c.close();
});

test("get, has, keys, entries and size see the usr section only", async () => {
  const { c, a } = await pair();
  await a.set("x", 1);
  await a.set("y", "two");
  await a.delete("x");
  assert.equal(a.get("x"), undefined);
  assert.equal(a.has("x"), false);
  assert.equal(a.has("y"), true);
  assert.deepEqual(a.keys(), ["y"]);
  assert.deepEqual(a.entries(), [["y", "two"]]);
  assert.equal(a.size, 1);
  assert.equal(a.version("x")?.deleted, true);
  await c.close();
});

test("subscribe() reports local and remote changes, and unsubscribes", async () => {
  const { c, a, b } = await pair();
  const seen: string[] = [];
  const stop = b.subscribe((ch) =>
    seen.push(`${ch.origin}:${ch.key}=${String(ch.value)}:${ch.deleted}:${ch.writer}`)
  );
  await b.set("mine", 1);
  await a.set("theirs", 2);
  c.run(500);
  await a.delete("theirs");
  c.run(500);
  stop();
  await a.set("after", 3);
  c.run(500);
  assert.deepEqual(seen, [
    "local:mine=1:false:b",
    "remote:theirs=2:false:a",
    "remote:theirs=undefined:true:a",
  ]);
  await c.close();
});

test("a throwing subscriber does not break replication", async () => {
  const c = new Cluster({ latencyMs: 2 });
  const errors: unknown[] = [];
  const a = await c.add("a", { onError: (e) => errors.push(e) });
  const b = await c.add("b");
  a.subscribe(() => {
    throw new Error("boom");
  });
  await b.set("k", 1);
  c.run(1000);
  assert.equal(a.get("k"), 1);
  assert.ok(errors.length >= 1);
  await c.close();
});

test("snapshot() is plain JSON: { sys, usr }", async () => {
  const { c, a } = await pair();
  await a.set("key 1", "value 1");
  await a.set("bytes", new Uint8Array([104, 105]));
  await a.set("when", new Date(0));
  await a.set("map", new Map([[1, "one"]]));
  c.run(500);
  const s = a.snapshot();
  assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  assert.deepEqual(s.usr, {
    "key 1": "value 1",
    bytes: { $bytes: "aGk=" },
    when: "1970-01-01T00:00:00.000Z",
    map: { $map: [[1, "one"]] },
  });
  assert.deepEqual(Object.keys(s.sys.members).sort(), ["a", "b"]);
  const me = s.sys.members.a!;
  assert.equal(me.protocol, "v1");
  assert.equal(me.status, "alive");
  assert.equal(typeof me.port, "number");
  assert.equal(typeof me.incarnation, "number");
  await c.close();
});

test("members() lists every member with address, status and incarnation", async () => {
  const { c, a } = await pair();
  const list = a.members().sort((x, y) => x.id.localeCompare(y.id));
  assert.deepEqual(list.map((m) => [m.id, m.address, m.status, m.incarnation]), [[
    "a",
    "a",
    "alive",
    0,
  ], ["b", "b", "alive", 0]]);
  assert.equal(list[0]!.lastHeard, null);
  assert.equal(typeof list[1]!.lastHeard, "number");
  await c.close();
});

test("close() is idempotent, and a closed member refuses writes", async () => {
  const { c, a } = await pair();
  await Promise.all([a.close(), a.close()]);
  assert.equal(a.closed, true);
  await assert.rejects(a.set("k", 1), /closed/);
  await c.close();
});

test("an aborted signal closes the member with a graceful leave", async () => {
  const c = new Cluster({ latencyMs: 2 });
  const controller = new AbortController();
  await c.add("a");
  const b = await c.add("b", { signal: controller.signal });
  c.run(1000);
  controller.abort();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(b.closed, true);
  c.run(1000);
  assert.equal(c.get("a").members().find((m) => m.id === "b")?.status, "left");
  await c.close();
});

test("garbage datagrams are dropped and counted, and change nothing", async () => {
  const { c, a } = await pair();
  await a.set("k", "v");
  c.run(500);
  const before = JSON.stringify(a.snapshot());
  const stranger = c.net.transport("stranger");
  stranger.listen(() => {});
  const random = seededRandom(5);
  const foreign = new Wire({ cluster: "other", sender: "x" }).encode([{ type: "ack", seq: 1 }])[0]!;
  for (let i = 0; i < 500; i++) {
    stranger.send(
      "a",
      Uint8Array.from({ length: 1 + Math.floor(random() * 300) }, () => Math.floor(random() * 256)),
    );
  }
  stranger.send("a", foreign);
  c.run(100);
  assert.equal(JSON.stringify(a.snapshot()), before);
  const dropped = a.stats().dropped;
  assert.equal(Object.values(dropped).reduce((n, x) => n + (x ?? 0), 0), 501);
  assert.equal(dropped["foreign-cluster"], 1);
  await c.close();
});

test("options are checked: a missing transport or bad tuning is refused", async () => {
  await assert.rejects(GossipKV.start({} as never), TypeError);
  const net = new MemoryNetwork();
  await assert.rejects(GossipKV.start({ transport: net.transport("x"), fanout: 0 }), RangeError);
  await assert.rejects(GossipKV.start({ transport: net.transport("y"), mtu: 100 }), RangeError);
});

test("in real time, the README example converges", async () => {
  const net = new MemoryNetwork({ seed: 7, latencyMs: 2, loss: 0.1 });
  const a = await GossipKV.start({ id: "a", transport: net.transport("a"), gossipIntervalMs: 50 });
  const b = await GossipKV.start({
    id: "b",
    transport: net.transport("b"),
    seeds: ["a"],
    gossipIntervalMs: 50,
  });
  await a.set("key 1", "value 1");
  for (let i = 0; i < 100 && b.get("key 1") !== "value 1"; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(b.get("key 1"), "value 1");
  await b.delete("key 1");
  for (let i = 0; i < 100 && a.has("key 1"); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(a.has("key 1"), false);
  await Promise.all([a.close(), b.close()]);
});

test("writes go out through scheduler.soon when the scheduler has it, not a 0 ms timer", async () => {
  const c = new Cluster({ latencyMs: 2, member: { gossipIntervalMs: 60_000 } });
  const soon: (() => void)[] = [];
  const a = await c.add("a", {
    scheduler: {
      setTimeout: (callback, ms) => c.time.setTimeout(callback, ms),
      clearTimeout: (handle) => c.time.clearTimeout(handle),
      soon: (callback) => void soon.push(callback),
    },
  });
  const b = await c.add("b");
  c.run(1000);
  await a.set("k", 1);
  await a.set("j", 2);
  assert.equal(soon.length, 1, "one flush for the writes of one turn");
  c.run(100);
  assert.equal(b.get("k"), undefined, "not sent before the flush runs");
  soon.shift()!();
  c.run(100);
  assert.equal(b.get("k"), 1);
  assert.equal(b.get("j"), 2);
  await c.close();
});
