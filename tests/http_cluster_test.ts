// Members that gossip over HTTP only (as on an edge runtime) and members on a
// MemoryNetwork, joined by a bridge member that has both, converge to the same data.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector } from "../src/http/mod.ts";
import { BridgeTransport, HttpTransport } from "../src/transport/http.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { eventually, httpMember, lateServer, SseReader } from "./_http.ts";

const TOKEN = "cluster-secret";
const FAST = { gossipIntervalMs: 50, probeIntervalMs: 100 };

test("an HTTP-only member and memory members converge through a bridge member", async () => {
  const net = new MemoryNetwork({ latencyMs: 1 });
  const memory: GossipKV[] = [];
  for (const id of ["m1", "m2"]) {
    memory.push(
      await GossipKV.start({ id, transport: net.transport(id), seeds: ["m1"], ...FAST }),
    );
  }
  // The bridge: known as "b" on the memory network, reachable over HTTP at its URL.
  const { server: bridgeServer, mount } = await lateServer();
  const primary = net.transport("b");
  const http = new HttpTransport({ url: bridgeServer.url, address: "b", token: TOKEN });
  const bridge = await GossipKV.start({
    id: "b",
    transport: new BridgeTransport(primary, http),
    seeds: ["m1"],
    ...FAST,
  });
  mount(createInspector(bridge, { token: TOKEN, hostname: "127.0.0.1", gossip: http }));
  // The edge: HTTP only, joining through the bridge's URL.
  const edge = await httpMember({ id: "edge", token: TOKEN, seeds: [bridgeServer.url], ...FAST });
  const all = [...memory, bridge, edge.kv];

  await edge.kv.set("from-edge", { n: 1 });
  await memory[1]!.set("from-memory", [1, 2, 3]);
  await bridge.set("from-bridge", "b");
  const converged = () =>
    all.every((kv) => kv.size === 3 && kv.syncStatus().root === all[0]!.syncStatus().root);
  await eventually(converged, "every member to hold the three keys");
  assert.deepEqual(memory[0]!.get("from-edge"), { n: 1 });
  assert.deepEqual(edge.kv.get("from-memory"), [1, 2, 3]);

  // A later write on the memory side reaches the edge; a delete on the edge reaches m1.
  await memory[0]!.set("later", true);
  await edge.kv.delete("from-bridge");
  await eventually(
    () => edge.kv.get("later") === true && !memory[0]!.has("from-bridge"),
    "the later writes to spread",
  );
  // Everyone sees everyone alive: the edge reaches the memory members through others.
  await eventually(
    () => all.every((kv) => kv.members().filter((m) => m.status === "alive").length === all.length),
    "every member to see the others alive",
  );
  assert.ok(http.stats().sent > 0 && http.stats().received > 0);
  await Promise.all([...memory, bridge].map((kv) => kv.close()));
  await edge.close();
  await bridgeServer.close();
});

test("two HTTP-only members gossip with each other directly", async () => {
  const a = await httpMember({ id: "a", token: TOKEN, ...FAST });
  const b = await httpMember({ id: "b", token: TOKEN, seeds: [a.server.url], ...FAST });
  const events = new SseReader(await a.app.request("/events?prefix=k"));
  await b.kv.set("k", "over http");
  const change = await events.nextEvent("change");
  assert.deepEqual([change.key, change.value, change.writer], ["k", "over http", "b"]);
  await eventually(() => b.kv.members().length === 2, "b to know a");
  assert.deepEqual(
    a.kv.members().map((m) => [m.id, m.address]).sort(),
    [["a", a.server.url], ["b", b.server.url]],
  );
  await events.cancel();
  await b.close();
  await a.close();
});

test("a member with the wrong token cannot gossip in", async () => {
  const a = await httpMember({ id: "a", token: TOKEN, ...FAST });
  const intruder = await httpMember(
    { id: "x", token: "other", seeds: [a.server.url], ...FAST },
    { token: "wrong" },
  );
  await intruder.kv.set("evil", 1);
  await eventually(() => intruder.transport.stats().failed >= 3, "the intruder to be refused");
  assert.equal(a.kv.has("evil"), false);
  assert.deepEqual(a.kv.members().map((m) => m.id), ["a"]);
  await intruder.close();
  await a.close();
});
