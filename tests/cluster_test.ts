// Scripted cluster scenarios over the in-memory network, on virtual time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster, dataOf, LwwModel } from "./_cluster.ts";

async function started(
  n: number,
  options: ConstructorParameters<typeof Cluster>[0] = {},
): Promise<Cluster> {
  const c = new Cluster({ latencyMs: 5, jitterMs: 2, ...options });
  await c.addMany(n);
  const joined = c.runUntil(
    () =>
      [...c.members.values()].every((kv) =>
        kv.members().filter((m) => m.status === "alive").length === n
      ),
    60_000,
  );
  assert.notEqual(joined, -1, `${n} members did not see each other alive`);
  return c;
}

test("members join through a lossy network: a lost join is retried at once", async () => {
  const c = new Cluster({ seed: 3, latencyMs: 5, loss: 0.3 });
  await c.addMany(8);
  // 25 anti-entropy rounds; a member whose join was lost must not wait long to retry.
  const took = c.runUntil(
    () => [...c.members.values()].every((kv) => kv.members().length === 8),
    5_000,
  );
  assert.notEqual(took, -1);
  await c.close();
});

test("a write reaches every member and a delete follows it", async () => {
  const c = await started(5);
  await c.get("m3").set("key 1", "value 1");
  assert.notEqual(c.runUntil(() => c.everyoneHas("key 1", "value 1"), 5_000), -1);
  await c.get("m1").delete("key 1");
  assert.notEqual(c.runUntil(() => c.everyoneHas("key 1", undefined), 5_000), -1);
  // Members know each other (a round trip) before every member record has spread.
  assert.notEqual(c.runUntil(() => c.converged(), 5_000), -1);
  await c.close();
});

test("100 members converge on 1,000 writes", async () => {
  const c = await started(100, { seed: 100 });
  c.run(2_000);
  c.net.resetStats();
  const model = new LwwModel();
  for (let i = 0; i < 1000; i++) {
    const kv = c.get(`m${(i * 37) % 100}`);
    await kv.set(`key ${i % 700}`, { i, by: kv.id });
    model.record(kv, `key ${i % 700}`);
  }
  const took = c.runUntil(() => c.converged(), 30_000);
  assert.notEqual(took, -1, "did not converge within 30 s of virtual time");
  for (const kv of c.members.values()) assert.deepEqual(dataOf(kv), model.expected());
  await c.close();
});

test("30% loss still converges", async () => {
  const c = await started(20, { seed: 30, loss: 0.3 });
  const model = new LwwModel();
  for (let i = 0; i < 200; i++) {
    const kv = c.get(`m${i % 20}`);
    await kv.set(`k${i % 50}`, i);
    model.record(kv, `k${i % 50}`);
  }
  assert.notEqual(c.runUntil(() => c.converged(), 60_000), -1);
  for (const kv of c.members.values()) assert.deepEqual(dataOf(kv), model.expected());
  await c.close();
});

test("a partition with writes on both sides heals to the LWW reference", async () => {
  const c = await started(6, { seed: 6 });
  const left = ["m0", "m1", "m2"], right = ["m3", "m4", "m5"];
  c.partition(left, right);
  const model = new LwwModel();
  for (let i = 0; i < 60; i++) {
    // The same keys written on both sides, interleaved in time.
    const kv = c.get(i % 2 ? left[i % 3]! : right[i % 3]!);
    await kv.set(`k${i % 10}`, `${kv.id}:${i}`);
    model.record(kv, `k${i % 10}`);
    if (i % 7 === 0) {
      await kv.delete(`k${(i + 3) % 10}`);
      model.record(kv, `k${(i + 3) % 10}`);
    }
    c.run(50);
  }
  c.run(20_000); // long enough for each side to declare the other dead
  assert.ok(!c.converged());
  assert.ok(
    c.everyoneSees("m0", "dead") === false &&
      c.get("m3").members().find((m) => m.id === "m0")?.status === "dead",
  );
  c.heal();
  assert.notEqual(c.runUntil(() => c.converged(), 60_000), -1, "did not converge after heal");
  for (const kv of c.members.values()) assert.deepEqual(dataOf(kv), model.expected());
  assert.notEqual(
    c.runUntil(() => left.concat(right).every((id) => c.everyoneSees(id, "alive")), 60_000),
    -1,
  );
  await c.close();
});

test("a member that joins after 1,000 writes receives all of them", async () => {
  const c = await started(4, { seed: 4 });
  for (let i = 0; i < 1000; i++) await c.get(`m${i % 4}`).set(`key-${i}`, i);
  c.run(2_000);
  const late = await c.add("late");
  assert.notEqual(c.runUntil(() => late.size === 1000 && c.converged(), 30_000), -1);
  assert.equal(late.get("key-999"), 999);
  await c.close();
});

test("a delete never resurrects, even after its tombstone is collected", async () => {
  const grace = 10_000;
  const c = await started(4, {
    seed: 9,
    member: { tombstoneGraceMs: grace, forgetAfterMs: 60_000 },
  });
  await c.get("m0").set("doomed", "alive");
  await c.get("m0").set("kept", "yes");
  assert.notEqual(c.runUntil(() => c.everyoneHas("doomed", "alive"), 5_000), -1);
  // m3 is cut off longer than the grace period, holding the old value.
  c.partition(["m0", "m1", "m2"], ["m3"]);
  await c.get("m1").delete("doomed");
  c.run(3 * grace);
  for (const id of ["m0", "m1", "m2"]) {
    assert.equal(c.get(id).version("doomed"), undefined, `${id} collected the tombstone`);
  }
  assert.equal(c.get("m3").get("doomed"), "alive");
  c.heal();
  assert.notEqual(c.runUntil(() => c.converged(), 60_000), -1);
  assert.ok(c.everyoneHas("doomed", undefined), "the deleted key came back");
  assert.ok(c.everyoneHas("kept", "yes"));
  // A member that joins now does not bring it back either.
  await c.add("fresh");
  assert.notEqual(c.runUntil(() => c.converged(), 30_000), -1);
  assert.ok(c.everyoneHas("doomed", undefined));
  await c.close();
});

test("a write that arrives after the grace period is kept, unless a delete superseded it", async () => {
  const grace = 10_000;
  const c = await started(4, {
    seed: 13,
    member: { tombstoneGraceMs: grace, forgetAfterMs: 600_000 },
  });
  await c.get("m0").set("doomed", "old");
  assert.notEqual(c.runUntil(() => c.everyoneHas("doomed", "old"), 5_000), -1);
  // m3 is cut off longer than the grace period; both sides write meanwhile.
  c.partition(["m0", "m1", "m2"], ["m3"]);
  await c.get("m3").set("late", "written while cut off");
  await c.get("m1").delete("doomed");
  c.run(3 * grace);
  c.heal();
  assert.notEqual(c.runUntil(() => c.converged(), 60_000), -1);
  // The delete was collected, yet the old value does not come back…
  assert.ok(c.everyoneHas("doomed", undefined));
  // …while a write nobody deleted, older than the grace period when it arrives, survives.
  assert.ok(c.everyoneHas("late", "written while cut off"), "an acknowledged write was lost");
  await c.close();
});

test("a crashed member is marked dead, a closed one left", async () => {
  const c = await started(5, { seed: 5 });
  await c.crash("m4");
  assert.notEqual(c.runUntil(() => c.everyoneSees("m4", "dead"), 60_000), -1);
  await c.leave("m3");
  assert.notEqual(c.runUntil(() => c.everyoneSees("m3", "left"), 5_000), -1);
  const snapshot = c.get("m0").snapshot();
  assert.equal(snapshot.sys.members.m3?.status, "left");
  assert.equal(snapshot.sys.members.m4?.status, "dead");
  await c.close();
});

test("under 30% loss no member is falsely declared dead", async () => {
  const c = await started(10, { seed: 31 });
  const deaths: string[] = [];
  for (const kv of c.members.values()) {
    kv.subscribeMembers((m) => {
      if (m.status === "dead") deaths.push(`${kv.id} saw ${m.id} dead`);
    });
  }
  c.net.loss = 0.3;
  c.run(120_000);
  assert.deepEqual(deaths, []);
  await c.close();
});

test("a crashed member that restarts with the same id is seen alive and catches up", async () => {
  const c = await started(4, { seed: 12 });
  await c.crash("m2");
  assert.notEqual(c.runUntil(() => c.everyoneSees("m2", "dead"), 60_000), -1);
  await c.get("m0").set("missed", 42);
  c.run(1_000);
  const back = await c.add("m2", { seeds: ["m0"] });
  assert.notEqual(
    c.runUntil(() => c.everyoneSees("m2", "alive") && back.get("missed") === 42, 30_000),
    -1,
  );
  await c.close();
});

test("the same seed replays the same run, message for message", async () => {
  async function run(): Promise<string[]> {
    const c = await started(8, { seed: 77, loss: 0.1 });
    for (let i = 0; i < 50; i++) await c.get(`m${i % 8}`).set(`k${i}`, i);
    await c.crash("m7");
    c.run(10_000);
    const trace = c.trace;
    await c.close();
    return trace;
  }
  const first = await run();
  const second = await run();
  assert.ok(first.length > 1000);
  assert.deepEqual(second, first);
});

test("dead members are forgotten after forgetAfterMs, and their sys record goes with them", async () => {
  const c = await started(4, {
    seed: 21,
    member: { forgetAfterMs: 20_000, tombstoneGraceMs: 5_000 },
  });
  await c.crash("m3");
  assert.notEqual(c.runUntil(() => c.everyoneSees("m3", "dead"), 60_000), -1);
  const gone = () =>
    [...c.members.values()].every((kv) =>
      !kv.members().some((m) => m.id === "m3") && !kv.snapshot().sys.members.m3
    );
  assert.notEqual(c.runUntil(gone, 60_000), -1);
  assert.notEqual(c.runUntil(() => c.converged(), 10_000), -1);
  await c.close();
});

test("a member whose clock runs 10 minutes ahead cannot drag the others into the future", async () => {
  const c = await started(3, { seed: 22 });
  const time = c.time;
  const ahead = await c.add("ahead", { clock: { now: () => time.now() + 600_000 } });
  c.run(3_000);
  await ahead.set("from the future", 1);
  await c.get("m0").set("from now", 2);
  c.run(5_000);
  for (const id of ["m0", "m1", "m2"]) {
    const kv = c.get(id);
    assert.equal(kv.get("from the future"), undefined, `${id} adopted a future stamp`);
    assert.equal(kv.get("from now"), 2);
    assert.ok(kv.stats().engine.refusedClockSkew > 0);
    // Its own clock was not dragged forward: a new write is stamped with the present.
    await kv.set("probe", id);
    assert.ok(kv.version("probe")!.wall <= time.now());
  }
  await c.close();
});

test("one write reaches 100 members within 3× the epidemic bound, in rounds of anti-entropy", async () => {
  const c = await started(100, { seed: 64 });
  c.run(2_000);
  const interval = 200; // the Cluster runner's gossipIntervalMs
  await c.get("m42").set("news", true);
  const took = c.runUntil(() => c.everyoneHas("news", true), 60_000);
  const bound = Math.log(100) / Math.log(3 + 1);
  assert.ok(
    took >= 0 && took / interval <= 3 * bound,
    `${took} ms = ${took / interval} rounds, bound ${bound}`,
  );
  await c.close();
});

test("in sync, an anti-entropy round costs one datagram", async () => {
  const c = await started(2, { seed: 2, member: { probeIntervalMs: 1_000_000 } });
  await c.get("m0").set("k", 1);
  c.run(3_000);
  const trace = c.trace.length;
  c.run(200 * 10); // ten rounds each way, nothing else to say
  const datagrams = c.trace.slice(trace);
  assert.ok(datagrams.length <= 2 * 10 + 2, `${datagrams.length} datagrams in 10 rounds`);
  await c.close();
});
