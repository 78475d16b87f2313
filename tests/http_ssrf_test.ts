// The cluster token never goes where a forged datagram or header points: a bridge member
// told by one plaintext datagram that a member lives at some URL sends it no credentials,
// and a URL in X-Gossip-From or X-Gossip-Url must be http(s)://host:port, nothing more.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, serve } from "../src/http/mod.ts";
import { BridgeTransport, HttpTransport } from "../src/transport/http.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { Wire } from "../src/wire/wire.ts";
import { eventually, lateServer } from "./_http.ts";

const TOKEN = "cluster-secret";

test("a member address learned from one forged datagram never receives the token", async () => {
  const seen: { path: string; authorization: string | null }[] = [];
  const target = await serve({
    fetch: (req) => {
      seen.push({
        path: new URL(req.url).pathname,
        authorization: req.headers.get("authorization"),
      });
      return new Response(null, { status: 204 });
    },
  }, { hostname: "127.0.0.1", port: 0 });
  const net = new MemoryNetwork({ latencyMs: 1 });
  const { server, mount } = await lateServer();
  const http = new HttpTransport({ url: server.url, address: "b", token: TOKEN });
  const bridge = await GossipKV.start({
    id: "b",
    transport: new BridgeTransport(net.transport("b"), http),
    probeIntervalMs: 50,
    gossipIntervalMs: 50,
  });
  mount(createInspector(bridge, { token: TOKEN, hostname: "127.0.0.1", gossip: http }));
  const forger = new Wire({ cluster: "default", sender: "x" });
  for (
    const d of forger.encode([
      { type: "member", id: "ghost", address: target.url, incarnation: 0, status: "alive" },
    ])
  ) net.deliver("x", "b", d);
  await eventually(() => seen.length >= 2, "the bridge to contact the gossiped address");
  assert.ok(seen.every((r) => r.authorization === null), JSON.stringify(seen));
  assert.ok(seen.every((r) => r.path === "/gossip"));
  await bridge.close();
  await server.close();
  await target.close();
});

test("X-Gossip-From and X-Gossip-Url with a path, credentials or query are refused with 400", async () => {
  const http = new HttpTransport({ url: "http://127.0.0.1:1", token: TOKEN });
  const member = await GossipKV.start({ id: "a", transport: http });
  const app = createInspector(member, { token: TOKEN, gossip: http });
  const post = (headers: Record<string, string>) =>
    app.request("/gossip", {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, ...headers },
      body: new Uint8Array(4),
    });
  for (
    const bad of [
      "http://127.0.0.1:9998/internal/admin",
      "http://user:pw@127.0.0.1:9998",
      "http://127.0.0.1:9998?x=1",
      "ftp://127.0.0.1:9998",
    ]
  ) {
    assert.equal((await post({ "x-gossip-from": bad })).status, 400, bad);
    assert.equal((await post({ "x-gossip-from": "m", "x-gossip-url": bad })).status, 400, bad);
  }
  assert.equal((await post({ "x-gossip-from": "http://127.0.0.1:9998" })).status, 204);
  await member.close();
});
