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
  const joined = c.runUntil(
    () => [...c.members.values()].every((kv) => kv.members().length === N),
    60_000,
  );
  if (joined < 0) throw new Error(`the ${N} members did not all meet within 60 s`);
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

  const dataBytes = (cluster: Cluster) => {
    let n = 0;
    for (const kv of cluster.members.values()) {
      const s = kv.stats().bytesOutByType;
      for (
        const t of [
          "rumor",
          "tree",
          "ihave",
          "relay",
          "graft",
          "prune",
          "entries",
          "sync-branch",
          "sync-leaf",
          "sync-want",
          "sync-nodes",
          "sync-stamps",
          "sync-pull",
        ]
      ) n += s[t] ?? 0;
    }
    return n;
  };
  let c = await formed(1);
  const dataBefore = dataBytes(c);
  await c.get("m7").set("one", "x".repeat(20));
  let took = c.runUntil(() => c.everyoneHas("one", "x".repeat(20)), 60_000);
  let bytes = c.net.stats().total.sentBytes;
  let minimum = (N - 1) * entryBytes(c.get("m7"), "one");
  const data = dataBytes(c) - dataBefore;
  lines.push(
    `1 write → ${N}: ${took} ms = ${(took / INTERVAL).toFixed(2)} gossip rounds = ${
      (took / LATENCY).toFixed(1)
    } ` +
      `latencies (epidemic bound log4(${N}) = ${
        bound.toFixed(2)
      }); ${bytes} bytes on the wire in that time ` +
      `(all traffic, probes included), of which ${Math.round(data)} carry the data ` +
      `(tree, rumors and anti-entropy): ×${(data / minimum).toFixed(1)} the minimum of ${minimum}`,
  );
  assert.ok(took >= 0, "the write did not reach every member");
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

  // In sync: what one anti-entropy round costs (the roots sent; equal roots get no reply).
  const rootsOut = () => {
    let n = 0, bytes = 0, replies = 0;
    for (const kv of c.members.values()) {
      const s = kv.stats();
      n += s.engine.messagesOut["sync-root"];
      bytes += s.bytesOutByType["sync-root"] ?? 0;
      replies += s.engine.messagesOut["sync-branch"] + s.engine.messagesOut["sync-leaf"] +
        s.engine.messagesOut["sync-nodes"] + s.engine.messagesOut["sync-stamps"] +
        s.engine.messagesOut.entries;
    }
    return { n, bytes, replies };
  };
  // Rounds opened before the last write arrived end first (their roots were older).
  c.run(INTERVAL);
  const before = rootsOut();
  c.run(INTERVAL);
  const after = rootsOut();
  const roots = after.n - before.n;
  lines.push(
    `in-sync anti-entropy: ${roots} rounds opened by ${N} members in one interval, ` +
      `${((after.bytes - before.bytes) / roots).toFixed(1)} bytes per round, ` +
      `${after.replies - before.replies} replies`,
  );
  assert.equal(after.replies - before.replies, 0);
  await c.close();
  console.log(lines.join("\n"));
});
