// Real GossipKV members over real UDP sockets on loopback, in one process: with this
// runtime's own transport (and on Deno, also with the node:dgram fallback).
import { test } from "node:test";
import assert from "node:assert/strict";
import { GossipKV, type GossipKVOptions } from "../src/gossip_kv.ts";
import { autoTransport, detectUdpRuntime } from "../src/transport/auto.ts";
import { nodeUdpTransport } from "../src/transport/node_udp.ts";
import type { UdpTransport } from "../src/transport/udp.ts";
import { generateKey } from "../src/wire/crypto.ts";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function eventually(done: () => boolean, what: string, ms = 60_000): Promise<void> {
  for (const end = Date.now() + ms; !done();) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const transports: { name: string; open: () => Promise<UdpTransport>; skip: string | false }[] = [
  {
    name: `${detectUdpRuntime()} UDP`,
    open: () => autoTransport({ hostname: "127.0.0.1", port: 0 }),
    skip: false,
  },
  {
    name: "node:dgram on Deno",
    open: () => nodeUdpTransport({ hostname: "127.0.0.1", port: 0 }),
    skip: (runtime !== "deno" || detectUdpRuntime() !== "deno") &&
      "the fallback is tested under Deno, where it differs from the native transport",
  },
];

async function cluster(
  n: number,
  open: () => Promise<UdpTransport>,
  options: (i: number) => Partial<GossipKVOptions> = () => ({}),
): Promise<GossipKV[]> {
  const members: GossipKV[] = [];
  for (let i = 0; i < n; i++) {
    members.push(
      await GossipKV.start({
        id: `m${i}`,
        transport: await open(),
        seeds: i === 0 ? [] : [members[0]!.address],
        gossipIntervalMs: 100,
        probeIntervalMs: 200,
        ...options(i),
      }),
    );
  }
  return members;
}

const aliveEverywhere = (members: GossipKV[]) =>
  members.every((m) => m.members().filter((x) => x.status === "alive").length === members.length);

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let o = 0; o < n; o += 65536) crypto.getRandomValues(out.subarray(o, o + 65536));
  return out;
}

function sameBytes(a: unknown, b: Uint8Array): boolean {
  if (!(a instanceof Uint8Array) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

for (const t of transports) {
  test(`${t.name}: four members converge on every member's writes`, { skip: t.skip }, async () => {
    const members = await cluster(4, t.open);
    try {
      await eventually(() => aliveEverywhere(members), "every member alive everywhere");
      for (const m of members) await m.set(`from ${m.id}`, { by: m.id, at: 1 });
      await eventually(
        () => members.every((m) => m.size === members.length),
        "every write everywhere",
      );
      for (const m of members) {
        for (const other of members) {
          assert.deepEqual(m.get(`from ${other.id}`), { by: other.id, at: 1 });
        }
      }
      assert.ok(members.every((m) => m.stats().sendErrors === 0));
    } finally {
      await Promise.all(members.map((m) => m.close()));
    }
  });

  test(`${t.name}: a 1 MiB value replicates`, { skip: t.skip }, async () => {
    const members = await cluster(3, t.open);
    try {
      await eventually(() => aliveEverywhere(members), "every member alive everywhere");
      const value = randomBytes(1024 * 1024);
      await members[0]!.set("big", value);
      await eventually(
        () => members.every((m) => sameBytes(m.get("big"), value)),
        "the 1 MiB value everywhere",
      );
    } finally {
      await Promise.all(members.map((m) => m.close()));
    }
  });
}

test(`${detectUdpRuntime()} UDP: an encrypted cluster works, and a member with the wrong key stays out`, async () => {
  const key = generateKey();
  const open = transports[0]!.open;
  const members = await cluster(3, open, () => ({ keys: [key] }));
  const outsider = await GossipKV.start({
    id: "outsider",
    transport: await open(),
    seeds: [members[0]!.address],
    gossipIntervalMs: 100,
    probeIntervalMs: 200,
    keys: [generateKey()],
  });
  try {
    await eventually(() => aliveEverywhere(members), "every member alive everywhere");
    const value = randomBytes(256 * 1024);
    await members[1]!.set("sealed", value);
    await outsider.set("intruder", 1);
    await eventually(
      () => members.every((m) => sameBytes(m.get("sealed"), value)),
      "the sealed value everywhere",
    );
    const refused = () => members[0]!.stats().dropped.unauthenticated ?? 0;
    await eventually(() => refused() >= 2, "the outsider's datagrams to be refused");
    for (const m of members) {
      assert.equal(m.has("intruder"), false);
      assert.ok(!m.members().some((x) => x.id === "outsider"));
    }
    assert.deepEqual(outsider.keys(), ["intruder"]);
    assert.deepEqual(outsider.members().map((m) => m.id), ["outsider"]);
  } finally {
    await Promise.all([...members, outsider].map((m) => m.close()));
  }
});

test(`${detectUdpRuntime()} UDP: a lone member joins once setSeeds() gives it a seed`, async () => {
  const members = await cluster(2, transports[0]!.open, () => ({ seeds: [] }));
  try {
    assert.throws(() => members[1]!.setSeeds("nope" as unknown as string[]), TypeError);
    await sleep(300);
    assert.ok(!aliveEverywhere(members)); // two clusters of one
    members[1]!.setSeeds([members[0]!.address]); // as DNS re-resolution would
    await eventually(() => aliveEverywhere(members), "the join");
  } finally {
    await Promise.all(members.map((m) => m.close()));
  }
});
