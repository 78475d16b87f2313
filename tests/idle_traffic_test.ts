// What a member sends while the cluster is idle and in sync: its SWIM probe, its acks and its
// anti-entropy roots, with the library's default periods, counted datagram by datagram.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULTS } from "../src/gossip_kv.ts";
import { QUIET_ROUNDS } from "../src/core/anti_entropy.ts";
import type { MessageType } from "../src/core/messages.ts";
import { decodeDatagram } from "../src/wire/codec.ts";
import { Cluster } from "./_cluster.ts";

const N = 8;
const WINDOW_MS = 20_000;

/** Every datagram sent during `ms` of virtual time, decoded: its sender and message types. */
async function idleWindow(ms: number) {
  const c = new Cluster({
    seed: 7,
    latencyMs: 5,
    member: {
      gossipIntervalMs: DEFAULTS.gossipIntervalMs,
      probeIntervalMs: DEFAULTS.probeIntervalMs,
    },
  });
  await c.addMany(N);
  assert.ok(c.runUntil(() => c.converged(), 60_000) >= 0, "formed and in sync");
  // Piggybacked news of the joins runs out first: only the background is left.
  c.run(10_000);
  const sent: { from: string; types: MessageType[] }[] = [];
  const deliver = c.net.deliver.bind(c.net);
  c.net.deliver = (from, to, data) => {
    const d = decodeDatagram(data, "default", 65_535);
    assert.equal(d.kind, "envelope");
    if (d.kind === "envelope") {
      sent.push({ from, types: d.envelope.messages.map((m) => m.type) });
    }
    deliver(from, to, data);
  };
  c.run(ms);
  c.net.deliver = deliver;
  await c.close();
  return sent;
}

test("idle and in sync, a member's roots ride its probes: 2 datagrams a probe period, not 4", async () => {
  const sent = await idleWindow(WINDOW_MS);
  const periods = WINDOW_MS / DEFAULTS.probeIntervalMs;
  for (let i = 0; i < N; i++) {
    const mine = sent.filter((d) => d.from === `m${i}`);
    const count = (t: MessageType) => mine.filter((d) => d.types.includes(t)).length;
    // Nothing but SWIM and anti-entropy roots while idle.
    for (const d of mine) {
      assert.ok(
        d.types.every((t) => t === "ping" || t === "ack" || t === "sync-root"),
        d.types.join(),
      );
    }
    const pings = mine.filter((d) => d.types.includes("ping"));
    assert.ok(Math.abs(pings.length - periods) <= 1, `m${i}: ${pings.length} pings`);
    // Every probe's ping carries a root in its datagram, and no root goes alone: quiet, a
    // member skips the rounds between its probes (a round every two intervals at least).
    for (const d of pings) assert.deepEqual(d.types, ["ping", "sync-root"]);
    assert.equal(count("sync-root"), pings.length, `m${i}: ${count("sync-root")} roots`);
    assert.equal(mine.length, pings.length + count("ack"));
  }
  // Each member acks one probe a period on average: 2 datagrams a member a period in all.
  assert.ok(sent.length <= (2 * periods + 1) * N, `${sent.length} datagrams`);
});

test("quiet members skip rounds, yet a write one of them missed is repaired within two intervals of the heal", async () => {
  const interval = DEFAULTS.gossipIntervalMs;
  // Probes far apart: anti-entropy alone, and nobody suspected while cut off.
  const c = new Cluster({
    seed: 11,
    latencyMs: 5,
    member: { gossipIntervalMs: interval, probeIntervalMs: 60_000 },
  });
  await c.addMany(N);
  assert.ok(c.runUntil(() => c.converged(), 60_000) >= 0, "formed and in sync");
  const skipped = () => [...c.members.values()].map((kv) => kv.stats().engine.syncRoundsSkipped);
  const before = skipped();
  c.run((QUIET_ROUNDS + 4) * interval);
  const after = skipped();
  for (let i = 0; i < N; i++) assert.ok(after[i]! > before[i]!, `m${i} skipped no round`);
  // One member is cut off while a write spreads, long enough for the tree to give up on it
  // and for every member to be quiet again.
  const x = c.get(`m${N - 1}`);
  c.partition([x.id], [...c.members.keys()].filter((id) => id !== x.id));
  await c.get("m1").set("missed", 1);
  c.run(40_000);
  assert.equal(x.get("missed"), undefined);
  const synced = x.stats().engine.syncEntriesReceived;
  c.heal();
  const took = c.runUntil(() => x.get("missed") === 1, 10 * interval);
  // Found by a round within two intervals, then the descent's few round trips (10 ms each).
  assert.ok(took >= 0 && took <= 2 * interval + 100, `repaired ${took} ms after the heal`);
  assert.ok(x.stats().engine.syncEntriesReceived > synced, "by anti-entropy");
  await c.close();
});
