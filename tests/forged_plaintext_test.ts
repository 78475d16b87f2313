// What one unauthenticated source can cost a plaintext cluster, and the option that refuses
// plaintext outright: ghost members, forged clock skew within maxDriftMs, requireEncryption.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "./_cluster.ts";
import { GossipKV } from "../src/gossip_kv.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { generateKey } from "../src/wire/crypto.ts";
import { Wire } from "../src/wire/wire.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

test("requireEncryption without keys: start() rejects and says what to do", async () => {
  const net = new MemoryNetwork();
  await assert.rejects(
    GossipKV.start({ id: "a", transport: net.transport("a"), requireEncryption: true }),
    (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /requireEncryption is set but no keys are given: pass keys/);
      return true;
    },
  );
  await assert.rejects(
    GossipKV.start({
      id: "b",
      transport: net.transport("b"),
      // @ts-expect-error: not a boolean
      requireEncryption: "yes",
    }),
    /requireEncryption must be a boolean/,
  );
});

test("requireEncryption with keys: plaintext is dropped and counted, keys never go back to none", async () => {
  const net = new MemoryNetwork({ latencyMs: 1 });
  const key = generateKey();
  const a = await GossipKV.start({
    id: "a",
    transport: net.transport("a"),
    keys: [key],
    requireEncryption: true,
    gossipIntervalMs: 20,
  });
  const forger = new Wire({ cluster: "default", sender: "evil" });
  const entry = { section: "usr" as const, key: "k", value: 1, wall: Date.now(), logical: 0 };
  for (
    const d of forger.encode([{
      type: "rumor",
      hop: 0,
      entries: [{ ...entry, writer: "evil", deleted: false }],
    }])
  ) {
    net.deliver("evil", "a", d);
  }
  for (let i = 0; i < 50 && (a.stats().dropped["plaintext"] ?? 0) === 0; i++) await sleep(10);
  assert.equal(a.stats().dropped["plaintext"], 1);
  assert.equal(a.get("k"), undefined, "the forged write was not applied");
  await assert.rejects(a.setKeys([]), TypeError);
  await a.close();
});

test("one forged write stamped 55 s ahead does not drag any clock; the key can still be overwritten", async () => {
  const c = new Cluster({ latencyMs: 5, jitterMs: 2 });
  await c.addMany(3);
  assert.ok(c.runUntil(() => c.everyoneSees("m2", "alive"), 10_000) >= 0);
  const forger = new Wire({ cluster: "default", sender: "evil" });
  const ahead = Math.floor(c.now) + 55_000;
  const forged = { section: "usr" as const, key: "x", value: "forged", wall: ahead, logical: 0 };
  for (
    const d of forger.encode([{
      type: "rumor",
      hop: 0,
      entries: [{ ...forged, writer: "evil", deleted: false }],
    }])
  ) c.net.deliver("evil", "m0", d);
  assert.ok(c.runUntil(() => c.everyoneHas("x", "forged"), 10_000) >= 0, "accepted as data");
  // Every member's next write to another key is stamped at its own wall clock, not 55 s ahead.
  for (const [id, kv] of c.members) {
    await kv.set(`after-${id}`, 1);
    const v = kv.version(`after-${id}`)!;
    assert.ok(v.wall <= c.now + 1_000, `${id}'s clock stayed within 1 s: ${v.wall - c.now} ms`);
  }
  // A write made after seeing the forged version still wins over it, everywhere.
  await c.get("m1").set("x", "real");
  assert.ok(c.runUntil(() => c.everyoneHas("x", "real"), 10_000) >= 0, "the key was overwritten");
  assert.ok(c.get("m1").version("x")!.wall >= ahead);
  await c.close();
});
