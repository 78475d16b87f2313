// serve(): a real server of the runtime running the test (Deno.serve, Bun.serve or
// @hono/node-server), on 127.0.0.1 and a free port, driven with fetch.
import { test } from "node:test";
import { connect } from "node:net";
import assert from "node:assert/strict";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, serve } from "../src/http/mod.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { countSubscriptions, eventually, SseReader, within } from "./_http.ts";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

async function member(id = "a") {
  const net = new MemoryNetwork({ latencyMs: 1 });
  const kv = await GossipKV.start({ id, transport: net.transport(id), gossipIntervalMs: 50 });
  return { net, kv };
}

test(`${runtime}: serve() listens on a free port and answers over the network`, async () => {
  const { kv } = await member();
  const server = await serve(createInspector(kv, { hostname: "127.0.0.1" }), { port: 0 });
  assert.equal(server.hostname, "127.0.0.1");
  assert.ok(server.port > 0 && server.port < 65536, `port ${server.port}`);
  assert.equal(server.url, `http://127.0.0.1:${server.port}`);
  const health = await fetch(`${server.url}/healthz`);
  assert.deepEqual(await health.json(), { ok: true, id: "a", members: 1, keys: 0 });
  const put = await fetch(`${server.url}/usr/${encodeURIComponent("a key/with slash")}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ n: 1 }),
  });
  assert.equal(put.status, 204);
  await put.body?.cancel();
  assert.deepEqual(kv.get("a key/with slash"), { n: 1 });
  const got = await fetch(`${server.url}/usr/a%20key%2Fwith%20slash`);
  assert.deepEqual(await got.json(), { n: 1 });
  const missing = await fetch(`${server.url}/nope`);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("content-type"), "application/problem+json");
  await missing.body?.cancel();
  const big = await fetch(`${server.url}/usr/big`, {
    method: "PUT",
    body: JSON.stringify("x".repeat(2 * 1024 * 1024)),
  });
  assert.equal(big.status, 413);
  await big.body?.cancel();
  assert.equal(kv.has("big"), false);
  await server.close();
  await server.close(); // idempotent
  await assert.rejects(fetch(`${server.url}/healthz`));
  await kv.close();
});

test(`${runtime}: the event stream works over the network and ends with the client`, async () => {
  const { net, kv } = await member();
  const other = await GossipKV.start({
    id: "b",
    transport: net.transport("b"),
    seeds: ["a"],
    gossipIntervalMs: 50,
  });
  const subscriptions = countSubscriptions(kv);
  const server = await serve(createInspector(kv, { hostname: "127.0.0.1" }));
  const controller = new AbortController();
  const res = await fetch(`${server.url}/events`, { signal: controller.signal });
  assert.equal(res.status, 200);
  const events = new SseReader(res);
  await within(events.next(), 10_000, "the stream to open");
  assert.equal(subscriptions.live, 2);
  await other.set("from-b", "hello");
  const change = await events.nextEvent("change");
  assert.deepEqual([change.key, change.value, change.origin], ["from-b", "hello", "remote"]);
  controller.abort();
  await events.cancel();
  await eventually(() => subscriptions.live === 0, "the server to drop the subscriptions");
  await server.close();
  await Promise.all([kv.close(), other.close()]);
});

test(`${runtime}: close() ends open event streams instead of waiting for them`, async () => {
  const { kv } = await member();
  const subscriptions = countSubscriptions(kv);
  const server = await serve(createInspector(kv, { hostname: "127.0.0.1" }));
  const events = new SseReader(await fetch(`${server.url}/events`));
  await within(events.next(), 10_000, "the stream to open");
  await within(server.close(), 10_000, "close() with an open stream");
  assert.equal(await within(events.next(), 10_000, "the stream to end"), null);
  assert.equal(subscriptions.live, 0);
  await kv.close();
});

test(`${runtime}: close() does not wait forever for a client that stalls`, async () => {
  let started = false;
  const server = await serve({
    fetch: async (request) => {
      started = true;
      await request.text().catch(() => {}); // fails once close() drops the connection
      return new Response(null, { status: 204 });
    },
  });
  const socket = connect(server.port, "127.0.0.1");
  socket.on("error", () => {});
  // Announces a body of 100 bytes, sends 3, and then nothing.
  socket.write('PUT /usr/k HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"ab');
  await eventually(() => started, "the request to reach the handler");
  await within(server.close(), 15_000, "close() with a stalled request");
  await assert.rejects(fetch(`${server.url}/`), "the server is closed");
  socket.destroy();
});

test(`${runtime}: aborting the signal closes the server`, async () => {
  const { kv } = await member();
  const controller = new AbortController();
  const server = await serve(createInspector(kv), { signal: controller.signal });
  const res = await fetch(`${server.url}/healthz`);
  assert.equal(res.status, 200);
  await res.body?.cancel();
  controller.abort();
  await server.close(); // resolves once the abort has taken effect
  await assert.rejects(fetch(`${server.url}/healthz`));
  await kv.close();
});

test(`${runtime}: serve() refuses a bad port and an aborted signal`, async () => {
  const app = { fetch: () => new Response("ok") };
  await assert.rejects(serve(app, { port: 70000 }), RangeError);
  await assert.rejects(serve(app, { port: -1 }), RangeError);
  await assert.rejects(serve(app, { signal: AbortSignal.abort() }), { name: "AbortError" });
});

test(`${runtime}: serve() takes any fetch handler, and two servers get two ports`, async () => {
  const one = await serve({ fetch: () => new Response("one") });
  const two = await serve({ fetch: () => new Response("two") }, { hostname: "127.0.0.1" });
  assert.notEqual(one.port, two.port);
  assert.equal(await (await fetch(one.url)).text(), "one");
  assert.equal(await (await fetch(two.url)).text(), "two");
  await Promise.all([one.close(), two.close()]);
});
