// What a member sends while the cluster is idle and in sync: its SWIM probe, its acks and its
// anti-entropy roots, with the library's default periods, counted datagram by datagram.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULTS } from "../src/gossip_kv.ts";
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
