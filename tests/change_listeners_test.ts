// Data listeners: every change with the same fields, whenever a listener subscribes or
// unsubscribes (even from inside another listener, in the middle of a batch), and the
// convergence lag counted whether anyone listens or not.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Change } from "../src/gossip_kv.ts";
import { Cluster } from "./_cluster.ts";

async function pair(): Promise<Cluster> {
  const c = new Cluster({ latencyMs: 10 });
  await c.add("a");
  await c.add("b");
  c.time.advance(5_000);
  return c;
}

const FIELDS = ["key", "value", "deleted", "origin", "writer", "wall", "logical"];

test("a remote change has the fields of the writer's local change, and only those", async () => {
  const c = await pair();
  const a = c.members.get("a")!, b = c.members.get("b")!;
  const local: Change[] = [], remote: Change[] = [];
  a.subscribe((ch) => local.push(ch));
  b.subscribe((ch) => remote.push(ch));
  await a.set("k", { n: 1 });
  c.time.advance(1_000);
  await a.delete("k");
  c.time.advance(1_000);
  assert.equal(local.length, 2);
  assert.deepEqual(remote.map((ch) => ({ ...ch, origin: "local" })), local);
  for (const ch of [...local, ...remote]) assert.deepEqual(Object.keys(ch), FIELDS);
  assert.deepEqual(local.map((ch) => [ch.origin, ch.deleted, ch.value]), [
    ["local", false, { n: 1 }],
    ["local", true, undefined],
  ]);
  assert.deepEqual(remote.map((ch) => ch.origin), ["remote", "remote"]);
  assert.ok(local[1]!.wall > local[0]!.wall || local[1]!.logical > local[0]!.logical);
  await Promise.all([a.close(), b.close()]);
});

test("the convergence lag is counted with no listener subscribed", async () => {
  const c = await pair();
  const a = c.members.get("a")!, b = c.members.get("b")!;
  assert.equal(b.stats().lastConvergenceLagMs, null);
  await a.set("k", 1);
  c.time.advance(1_000);
  assert.equal(b.get("k"), 1);
  const lag = b.stats().lastConvergenceLagMs;
  assert.ok(lag !== null && lag > 0 && lag < 1_000, `lag ${lag}`);
  assert.equal(a.stats().lastConvergenceLagMs, null, "a local write is no convergence");
  await Promise.all([a.close(), b.close()]);
});

test("a listener gets the changes made while it is subscribed, late or not", async () => {
  const c = await pair();
  const a = c.members.get("a")!, b = c.members.get("b")!;
  await a.set("before", 1);
  c.time.advance(1_000);
  const seen: string[] = [];
  const unsubscribe = b.subscribe((ch) => seen.push(`${ch.origin} ${ch.key}`));
  await a.set("during", 2);
  c.time.advance(1_000);
  await b.set("own", 3);
  unsubscribe();
  await a.set("after", 4);
  c.time.advance(1_000);
  assert.equal(b.get("after"), 4);
  assert.deepEqual(seen, ["remote during", "local own"]);
  await Promise.all([a.close(), b.close()]);
});

test("a listener subscribed or unsubscribed by another one mid-batch sees the rest of it", async () => {
  const c = await pair();
  const a = c.members.get("a")!, b = c.members.get("b")!;
  const first: string[] = [], second: string[] = [];
  let unsubscribeFirst = () => {};
  unsubscribeFirst = b.subscribe((ch) => {
    first.push(ch.key);
    // The only listener leaves on the first change, subscribing another: called for that
    // change too (a Set's iteration visits what is added during it), and for the rest.
    unsubscribeFirst();
    b.subscribe((next) => second.push(next.key));
  });
  // Written at once: one message, applied in one batch at b.
  const writes = [a.set("x", 1), a.set("y", 2), a.set("z", 3)];
  c.time.advance(1_000);
  await Promise.all(writes);
  assert.deepEqual([b.get("x"), b.get("y"), b.get("z")], [1, 2, 3]);
  assert.deepEqual(first, ["x"]);
  assert.deepEqual(second, ["x", "y", "z"]);
  await Promise.all([a.close(), b.close()]);
});
