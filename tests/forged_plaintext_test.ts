// What one unauthenticated source can cost a plaintext cluster, and the option that refuses
// plaintext outright: ghost members, forged clock skew within maxDriftMs, requireEncryption.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "./_cluster.ts";
import { GossipKV } from "../src/gossip_kv.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { generateKey } from "../src/wire/crypto.ts";
import { Wire } from "../src/wire/wire.ts";
import { MAX_CANDIDATES_PER_SOURCE, MAX_VOUCHED_PER_ADDRESS } from "../src/core/membership.ts";

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

test("5,000 forged members: none displaces a real anti-entropy partner, and writes keep converging", async () => {
  const c = new Cluster({ latencyMs: 5, jitterMs: 2 });
  await c.addMany(3);
  assert.ok(c.runUntil(() => c.everyoneSees("m2", "alive"), 10_000) >= 0);
  // The forger answers every ping sent to its own address, in the name of whoever it
  // targets, and vouches for every member it is asked to probe, in the name it last gave.
  const evil = c.net.transport("evil");
  const reader = new Wire({ cluster: "default", sender: "evil" });
  const lastName = new Map<string, string>();
  await evil.listen((data, from) => {
    const r = reader.decode(data, from, c.now);
    if (r.status !== "envelope") return;
    for (const m of r.envelope.messages) {
      const sender = m.type === "ping"
        ? m.target
        : m.type === "ping-req"
        ? lastName.get(from)
        : undefined;
      if ((m.type !== "ping" && m.type !== "ping-req") || sender === undefined) continue;
      const ack = new Wire({ cluster: "default", sender });
      for (const d of ack.encode([{ type: "ack", seq: m.seq }])) evil.send(from, d);
    }
  });
  const victims = ["m0", "m1", "m2"];
  const ghosts = Array.from({ length: 5_000 }, (_, i) => `ghost-${i}`);
  const attackStart = c.now;
  for (let i = 0; i < ghosts.length; i += 10) {
    const batch = ghosts.slice(i, i + 10);
    const to = victims[(i / 10) % 3]!;
    const forger = new Wire({ cluster: "default", sender: "evil" });
    // Member updates naming ghosts at addresses nobody answers at...
    const updates = batch.map((id) => ({
      type: "member" as const,
      id,
      address: `nowhere-${id}`,
      incarnation: 0,
      status: "alive" as const,
    }));
    for (const d of forger.encode(updates)) c.net.deliver("evil", to, d);
    // ...forged records of as many more...
    const wall = Math.floor(c.now);
    const records = batch.map((id) => ({
      section: "sys" as const,
      key: `members/r${id}`,
      value: { address: `nowhere-r${id}`, protocol: "v1" },
      wall,
      logical: 0,
      writer: `r${id}`,
      deleted: false,
    }));
    for (const d of forger.encode([{ type: "entries", entries: records }])) {
      c.net.deliver("evil", to, d);
    }
    // ...and datagrams in the name of ghosts, from the forger's own address, which answers.
    lastName.set(to, `self-${batch[0]}`);
    const named = new Wire({ cluster: "default", sender: `self-${batch[0]}` });
    for (const d of named.encode([{ type: "ack", seq: 0 }])) c.net.deliver("evil", to, d);
    c.run(20);
  }
  // While that went on, and after it, the real members keep writing and converging.
  for (const [i, id] of victims.entries()) await c.get(id).set(`during-${i}`, i);
  assert.ok(
    c.runUntil(() => victims.every((_, i) => c.everyoneHas(`during-${i}`, i)), 10_000) >= 0,
    "writes during the attack reach everyone",
  );
  const afterAttack = c.now;
  c.run(5_000);
  for (const id of victims) {
    const kv = c.get(id);
    const members = kv.members().map((m) => m.id);
    const strangers = members.filter((m) => !victims.includes(m));
    assert.ok(
      strangers.length <= 1 + MAX_VOUCHED_PER_ADDRESS,
      `${id}: one stranger at the forger's address and those it vouched for, at most: ${strangers}`,
    );
    for (const v of victims) assert.ok(members.includes(v), `${id} still knows ${v}`);
    // Anti-entropy rounds since the attack: with the real members, bar the forger's one place.
    const rounds = kv.syncStatus().peers.filter((p) => (p.lastStarted ?? 0) > afterAttack);
    const real = rounds.filter((p) => victims.includes(p.id));
    assert.equal(real.length, 2, `${id} keeps syncing with both real peers`);
    assert.ok(rounds.length - real.length <= 1);
    assert.ok(kv.stats().engine.candidatesRefused > 0, "candidates past the bound were refused");
  }
  // Pings to forged addresses are bounded per second and member: each source (the forger,
  // every peer relaying the forged records, the records held) has at most
  // MAX_CANDIDATES_PER_SOURCE candidates at a time, each pinged 3 times within its life
  // (1 s here), so at most 2 × 64 × 3 pings a second per source, 4 sources.
  const perSecond = new Map<string, number>();
  for (const line of c.trace) {
    const [time, route] = line.split(" ");
    const [from, to] = route!.split(">");
    if (!to!.startsWith("nowhere-") || Number(time) < attackStart) continue;
    const bucket = `${from} ${Math.floor(Number(time) / 1000)}`;
    perSecond.set(bucket, (perSecond.get(bucket) ?? 0) + 1);
  }
  const peak = Math.max(...perSecond.values());
  assert.ok(
    peak <= 4 * 2 * MAX_CANDIDATES_PER_SOURCE * 3,
    `peak pings to forged addresses: ${peak}/s`,
  );
  await c.get("m1").set("after", 1);
  assert.ok(c.runUntil(() => c.everyoneHas("after", 1), 5_000) >= 0);
  assert.ok(c.runUntil(() => c.converged(), 10_000) >= 0, "the real members converge");
  await c.close();
});

/** How `kv` holds member `id`: its address and status. */
const held = (kv: GossipKV, id: string) => {
  const m = kv.members().find((x) => x.id === id);
  return m && `${m.address} ${m.status}`;
};

test("a forged record or member update does not move a known member to an address that does not answer for it", async () => {
  const c = new Cluster({ latencyMs: 5, jitterMs: 2 });
  await c.addMany(3);
  assert.ok(c.runUntil(() => ["m1", "m2"].every((id) => c.everyoneSees(id, "alive")), 10_000) >= 0);
  const m1 = c.get("m0").members().find((m) => m.id === "m1")!;
  const forger = new Wire({ cluster: "default", sender: "evil" });
  // m1's record, newer than its own, naming an address where nobody listens...
  const record = {
    section: "sys" as const,
    key: "members/m1",
    value: { address: "nowhere", protocol: "v1" },
    wall: Math.floor(c.now) + 1,
    logical: 0,
    writer: "m1",
    deleted: false,
  };
  // ...and updates at a higher incarnation naming that address, and m2's (which is not m1).
  const updates = ["nowhere", "m2"].map((address, i) => ({
    type: "member" as const,
    id: "m1",
    address,
    incarnation: m1.incarnation + 5 + i,
    status: "alive" as const,
  }));
  for (const d of forger.encode([{ type: "entries", entries: [record] }, ...updates])) {
    c.net.deliver("evil", "m0", d);
  }
  // At no point does a member hold m1 elsewhere (a refutation would only repair it later).
  let seen = "";
  const moved = () =>
    ["m0", "m2"].some((id) => {
      seen = `${id} held m1 as ${held(c.get(id), "m1")}`;
      return held(c.get(id), "m1") !== "m1 alive";
    });
  assert.equal(c.runUntil(moved, 10_000), -1, seen);
  // m1 still gets writes from the others (its traffic was not sent elsewhere).
  await c.get("m0").set("after", 1);
  assert.ok(c.runUntil(() => c.everyoneHas("after", 1), 5_000) >= 0);
  await c.close();
});

test("a member restarted at a new address is moved there, once that address answers for it", async () => {
  const c = new Cluster({ latencyMs: 5, jitterMs: 2 });
  await c.addMany(3);
  assert.ok(c.runUntil(() => c.everyoneSees("m2", "alive"), 10_000) >= 0);
  await c.crash("m1");
  await c.add("m1", { transport: c.net.transport("m1-new"), seeds: ["m0"] });
  assert.ok(
    c.runUntil(
      () => ["m0", "m2"].every((id) => held(c.get(id), "m1") === "m1-new alive"),
      10_000,
    ) >=
      0,
    `m0: ${held(c.get("m0"), "m1")}, m2: ${held(c.get("m2"), "m1")}`,
  );
  await c.get("m2").set("to the moved member", 1);
  assert.ok(c.runUntil(() => c.everyoneHas("to the moved member", 1), 5_000) >= 0);
  await c.close();
});
