// Convergence figures of 100 members on virtual time, beside the epidemic bound and the
// byte minimum. Deterministic counts (same seed, same run), asserted with headroom and
// printed for the record; the full benchmark lives in bench/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "./_cluster.ts";
import { encodeCbor } from "../src/wire/cbor.ts";
import type { GossipKV } from "../src/gossip_kv.ts";

const N = 100;
const LATENCY = 5;
const INTERVAL = 200;

async function formed(seed: number): Promise<Cluster> {
  const c = new Cluster({ seed, latencyMs: LATENCY, member: { gossipIntervalMs: INTERVAL } });
  await c.addMany(N);
  c.runUntil(() => [...c.members.values()].every((kv) => kv.members().length === N), 60_000);
  c.run(3_000);
  c.net.resetStats();
  return c;
}

function entryBytes(kv: GossipKV, key: string): number {
  const v = kv.version(key)!;
  return encodeCbor([0, key, v.wall, v.logical, v.writer, kv.get(key)]).length;
}

test("figures: one write and 1,000 writes reaching 100 members", async () => {
  const bound = Math.log(N) / Math.log(3 + 1);
  const lines: string[] = [];

  let c = await formed(1);
  await c.get("m7").set("one", "x".repeat(20));
  let took = c.runUntil(() => c.everyoneHas("one", "x".repeat(20)), 60_000);
  let bytes = c.net.stats().total.sentBytes;
  let minimum = (N - 1) * entryBytes(c.get("m7"), "one");
  lines.push(
    `1 write → ${N}: ${took} ms = ${(took / INTERVAL).toFixed(2)} gossip rounds = ${
      (took / LATENCY).toFixed(1)
    } ` +
      `latencies (epidemic bound log4(${N}) = ${
        bound.toFixed(2)
      }); ${bytes} bytes on the wire in that time ` +
      `(all traffic), minimum ${minimum} (×${(bytes / minimum).toFixed(1)})`,
  );
  assert.ok(took / INTERVAL <= 3 * bound);
  await c.close();

  c = await formed(2);
  const writers = [...c.members.values()];
  for (let i = 0; i < 1000; i++) await writers[i % N]!.set(`key-${i}`, `value-${i}`);
  took = c.runUntil(() => c.converged() && c.everyoneHas("key-999", "value-999"), 60_000);
  bytes = c.net.stats().total.sentBytes;
  minimum = 0;
  for (let i = 0; i < 1000; i++) minimum += (N - 1) * entryBytes(writers[i % N]!, `key-${i}`);
  lines.push(
    `1,000 writes → ${N}: ${took} ms = ${(took / INTERVAL).toFixed(2)} gossip rounds; ` +
      `${bytes} bytes, minimum ${minimum} (×${(bytes / minimum).toFixed(2)})`,
  );
  assert.ok(took >= 0 && took / INTERVAL <= 10);
  assert.ok(bytes / minimum < 6);

  // In sync: the bytes of one anti-entropy round (one datagram, no reply).
  c.net.resetStats();
  const before = c.trace.length;
  c.run(INTERVAL);
  const roots = c.trace.slice(before).map((t) => Number(t.split(" ")[2]));
  lines.push(
    `in-sync anti-entropy: ${roots.length} datagrams in one round of ${N} members, ` +
      `${Math.min(...roots)}–${Math.max(...roots)} bytes each`,
  );
  await c.close();
  console.log(lines.join("\n"));
});
