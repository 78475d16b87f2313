// HttpTransport: the conformance suite over real servers (each endpoint an inspector's
// POST /gossip, with a token), then routing, limits and the bridge with a fake fetch.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector } from "../src/http/mod.ts";
import type { Server } from "../src/http/serve.ts";
import { BridgeTransport, HttpTransport } from "../src/transport/http.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { transportSuite } from "./_transport_suite.ts";
import { lateServer, sleep } from "./_http.ts";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const servers: Server[] = [];
// The inspector needs a member to look at; the transports under test are not its own.
const host = await GossipKV.start({ id: "host", transport: new MemoryNetwork().transport("host") });

transportSuite({
  name: `http (${runtime})`,
  async open() {
    const { server, mount } = await lateServer();
    servers.push(server);
    // Every endpoint of the suite is on loopback: an allowed set of peers for the token.
    const trustedPeers = (url: string) => url.startsWith("http://127.0.0.1:");
    const t = new HttpTransport({ url: server.url, token: "t0ken", trustedPeers });
    mount(createInspector(host, { token: "t0ken", hostname: "127.0.0.1", gossip: t }));
    return t;
  },
  maxBytes: 65_536,
  settle: () => sleep(10),
  async teardown() {
    await Promise.all(servers.map((s) => s.close()));
    await host.close();
  },
});

interface Sent {
  url: string;
  headers: Headers;
  body: number[];
}

/** A fetch that records requests and answers with `status`. */
function recorder(status = 204) {
  const sent: Sent[] = [];
  const fetch = (input: string | URL | Request, init?: RequestInit) => {
    sent.push({
      url: String(input),
      headers: new Headers(init?.headers),
      body: [...(init?.body as Uint8Array)],
    });
    return Promise.resolve(new Response(null, { status }));
  };
  return { sent, fetch: fetch as typeof globalThis.fetch };
}

test("send() posts to <url>/gossip with the sender, the token and the bytes", async () => {
  const r = recorder();
  const t = new HttpTransport({
    url: "http://a.test:1/",
    token: "tok",
    trustedPeers: ["http://b.test:2"],
    fetch: r.fetch,
  });
  assert.equal(t.url, "http://a.test:1");
  assert.equal(t.address, "http://a.test:1");
  await t.send("http://b.test:2/", Uint8Array.of(7, 8));
  await t.send("https://c.test", Uint8Array.of(9));
  assert.deepEqual(r.sent.map((s) => s.url), ["http://b.test:2/gossip", "https://c.test/gossip"]);
  assert.equal(r.sent[1]!.headers.get("authorization"), null, "c.test is not a trusted peer");
  const h = r.sent[0]!.headers;
  assert.equal(h.get("x-gossip-from"), "http://a.test:1");
  assert.equal(h.get("x-gossip-url"), null, "the address is the URL: no need to repeat it");
  assert.equal(h.get("authorization"), "Bearer tok");
  assert.equal(h.get("content-type"), "application/octet-stream");
  assert.deepEqual(r.sent[0]!.body, [7, 8]);
  assert.deepEqual(t.stats(), { sent: 2, failed: 0, received: 0 });
});

test("delivery failures are counted, not thrown: HTTP is best effort like UDP", async () => {
  const refused = new HttpTransport({ url: "http://a.test", fetch: recorder(503).fetch });
  await refused.send("http://b.test", Uint8Array.of(1));
  const down = new HttpTransport({
    url: "http://a.test",
    fetch: () => Promise.reject(new TypeError("connection refused")),
  });
  await down.send("http://b.test", Uint8Array.of(1));
  assert.deepEqual([refused.stats().failed, down.stats().failed], [1, 1]);
});

test("a request that hangs is abandoned after timeoutMs, and close() abandons the rest", async () => {
  const hang = (_: unknown, init?: RequestInit) =>
    new Promise<Response>((_, reject) => {
      init!.signal!.addEventListener("abort", () => reject(new DOMException("", "AbortError")));
    });
  const t = new HttpTransport({ url: "http://a.test", timeoutMs: 5, fetch: hang as typeof fetch });
  await t.send("http://b.test", Uint8Array.of(1));
  assert.equal(t.stats().failed, 1);
  const u = new HttpTransport({ url: "http://a.test", fetch: hang as typeof fetch });
  const pending = u.send("http://b.test", Uint8Array.of(1));
  u.close();
  await pending;
  assert.equal(u.stats().failed, 1);
});

test("at most maxInFlight requests run at once; the others wait their turn", async () => {
  let running = 0, most = 0;
  const release: (() => void)[] = [];
  const slow = () =>
    new Promise<Response>((resolve) => {
      most = Math.max(most, ++running);
      release.push(() => {
        running--;
        resolve(new Response(null, { status: 204 }));
      });
    });
  const t = new HttpTransport({ url: "http://a.test", maxInFlight: 2, fetch: slow });
  const sends = Array.from({ length: 5 }, (_, i) => t.send("http://b.test", Uint8Array.of(i)));
  while (t.stats().sent < 5) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    release.shift()?.();
  }
  await Promise.all(sends);
  assert.equal(most, 2);
  const stuck = new HttpTransport({ url: "http://a.test", maxInFlight: 1, fetch: slow });
  const first = stuck.send("http://b.test", Uint8Array.of(1));
  const waiting = stuck.send("http://b.test", Uint8Array.of(2));
  stuck.close(); // neither has gone out yet: both are dropped
  await Promise.all([first, waiting]);
  assert.deepEqual(stuck.stats(), { sent: 0, failed: 2, received: 0 });
  assert.equal(release.length, 0, "no request was made after close()");
});

test("send() refuses oversized datagrams, unknown addresses and a closed transport", async () => {
  const t = new HttpTransport({ url: "http://a.test", maxBytes: 10, fetch: recorder().fetch });
  await assert.rejects(t.send("http://b.test", new Uint8Array(11)), RangeError);
  await assert.rejects(t.send("b-on-udp:7946", new Uint8Array(1)), /No HTTP route to b-on-udp/);
  t.close();
  await assert.rejects(t.send("http://b.test", new Uint8Array(1)), /closed/);
});

test("the constructor refuses what is not an http(s) URL", () => {
  for (const url of ["", "b.test:80", "ftp://b.test", "http://", "http://a b", "http://x/?q=1"]) {
    assert.throws(() => new HttpTransport({ url }), TypeError, url);
  }
  assert.throws(() => new HttpTransport({ url: "http://a.test", address: "" }), TypeError);
});

test("a peer that names its URL is answered at that URL under its own address", async () => {
  const r = recorder();
  const edge = new HttpTransport({ url: "http://edge.test", fetch: r.fetch });
  const got: string[] = [];
  edge.listen((_, from) => got.push(from));
  const headers = new Headers({
    "x-gossip-from": "10.0.0.5:7946",
    "x-gossip-url": "http://b:8080/",
  });
  assert.equal(edge.receive(Uint8Array.of(1), headers), true);
  assert.deepEqual(got, ["10.0.0.5:7946"]);
  await edge.send("10.0.0.5:7946", Uint8Array.of(2));
  assert.equal(r.sent[0]!.url, "http://b:8080/gossip");
  assert.equal(edge.stats().received, 1);
});

test("receive() refuses bad headers, and delivers nothing once closed", () => {
  const t = new HttpTransport({ url: "http://a.test" });
  let n = 0;
  t.listen(() => n++);
  assert.throws(() => t.receive(Uint8Array.of(1), new Headers()), TypeError);
  assert.throws(
    () =>
      t.receive(Uint8Array.of(1), new Headers({ "x-gossip-from": "p", "x-gossip-url": "nope" })),
    TypeError,
  );
  t.close();
  assert.equal(t.receive(Uint8Array.of(1), new Headers({ "x-gossip-from": "http://p" })), false);
  assert.equal(n, 0);
});

test("a bridge sends URLs over HTTP, everything else over its primary transport", async () => {
  const net = new MemoryNetwork({ virtualTime: true });
  const primary = net.transport("b");
  const peer = net.transport("m1");
  const onPeer: string[] = [];
  peer.listen((_, from) => onPeer.push(from));
  const r = recorder();
  const http = new HttpTransport({ url: "http://b.test:8080", address: "b", fetch: r.fetch });
  const bridge = new BridgeTransport(primary, http);
  assert.equal(bridge.address, "b");
  const got: string[] = [];
  await bridge.listen((_, from) => got.push(from));
  await bridge.send("http://edge.test", Uint8Array.of(1));
  await bridge.send("m1", Uint8Array.of(2));
  net.time!.advance(1);
  assert.deepEqual(r.sent.map((s) => s.url), ["http://edge.test/gossip"]);
  assert.equal(r.sent[0]!.headers.get("x-gossip-from"), "b");
  assert.equal(r.sent[0]!.headers.get("x-gossip-url"), "http://b.test:8080");
  assert.deepEqual(onPeer, ["b"]);
  http.receive(Uint8Array.of(3), new Headers({ "x-gossip-from": "http://edge.test" }));
  peer.send("b", Uint8Array.of(4));
  net.time!.advance(1);
  assert.deepEqual(got, ["http://edge.test", "m1"], "both transports deliver to the member");
  await bridge.close();
  assert.equal(http.receive(Uint8Array.of(5), new Headers({ "x-gossip-from": "x" })), false);
});

test("a bridge refuses an HTTP transport that carries another address", () => {
  const net = new MemoryNetwork();
  const http = new HttpTransport({ url: "http://b.test" });
  assert.throws(() => new BridgeTransport(net.transport("b"), http), TypeError);
});
