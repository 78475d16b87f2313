// Every route of the inspector through app.request(), every error path included: a bad
// request answers application/problem+json and never changes the member's state.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createInspector, type Inspector, type InspectorOptions } from "../src/http/mod.ts";
import type { GossipKV } from "../src/gossip_kv.ts";
import { HttpTransport } from "../src/transport/http.ts";
import { Cluster } from "./_cluster.ts";

const LOCAL: InspectorOptions = { hostname: "127.0.0.1" };

async function setup(options: InspectorOptions = LOCAL) {
  const c = new Cluster({ latencyMs: 2 });
  const a = await c.add("a");
  const b = await c.add("b");
  c.run(1000);
  return { c, a, b, app: createInspector(a, options) };
}

const json = (value: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: "PUT",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(value),
});

/** State that no bad request may change: data, stamps and membership. */
function state(kv: GossipKV): string {
  return JSON.stringify([kv.syncStatus(), kv.snapshot(), kv.keys().map((k) => kv.version(k))]);
}

async function expectProblem(res: Response, status: number, detail?: RegExp) {
  assert.equal(res.status, status);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const body = await res.json();
  assert.deepEqual(Object.keys(body).sort(), ["detail", "status", "title", "type"]);
  assert.equal(body.status, status);
  assert.equal(typeof body.title, "string");
  if (detail) assert.match(body.detail, detail);
  return body;
}

/** Sends a bad request and checks its problem status and that nothing changed. */
async function refused(
  kv: GossipKV,
  app: Inspector,
  path: string,
  init: RequestInit,
  status: number,
  detail?: RegExp,
) {
  const before = state(kv);
  await expectProblem(await app.request(path, init), status, detail);
  assert.equal(state(kv), before, `${init.method ?? "GET"} ${path} changed the state`);
}

test("GET /healthz reports ok, the id, live members and keys", async () => {
  const { c, a, app } = await setup();
  await a.set("k", 1);
  const res = await app.request("/healthz");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true, id: "a", members: 2, keys: 1 });
  await c.close();
});

test("GET /state is the snapshot, with an ETag that If-None-Match turns into 304", async () => {
  const { c, a, app } = await setup();
  await a.set("k", { deep: [1, "two"] });
  const res = await app.request("/state");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(body, a.snapshot());
  assert.deepEqual(body.usr, { k: { deep: [1, "two"] } });
  assert.equal(body.sys.members.b!.status, "alive");
  const etag = res.headers.get("etag")!;
  assert.match(etag, new RegExp(`^"${a.syncStatus().root}-[0-9a-f]{8}"$`));
  const cached = await app.request("/state", { headers: { "if-none-match": etag } });
  assert.equal(cached.status, 304);
  assert.equal(await cached.text(), "");
  await a.set("k", 2);
  const changed = await app.request("/state", { headers: { "if-none-match": etag } });
  assert.equal(changed.status, 200);
  assert.notEqual(changed.headers.get("etag"), etag);
  await c.close();
});

test("the /state ETag changes when a member's status changes, not only the data", async () => {
  const { c, a, app } = await setup();
  const etag = (await app.request("/state")).headers.get("etag");
  await c.crash("b");
  assert.notEqual(
    c.runUntil(() => a.members().find((m) => m.id === "b")?.status === "dead", 60_000),
    -1,
    "a never saw b dead",
  );
  assert.equal((await app.request("/state", { headers: { "if-none-match": etag! } })).status, 200);
  await c.close();
});

test("PUT, GET and DELETE /usr/:key round-trip any string key, URL-decoded", async () => {
  const { c, a, app } = await setup();
  for (const key of ["plain", "with/slash", "spa ce", "ünïcødé ✓", "100%", "?#&="]) {
    const path = `/usr/${encodeURIComponent(key)}`;
    assert.equal((await app.request(path, json({ key }))).status, 204, key);
    assert.deepEqual(a.get(key), { key });
    const got = await app.request(path);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get("content-type"), "application/json");
    assert.deepEqual(await got.json(), { key });
    assert.equal((await app.request(path, { method: "DELETE" })).status, 204);
    assert.equal(a.has(key), false);
    await expectProblem(await app.request(path), 404, /absent or deleted/);
  }
  assert.equal((await app.request("/usr/raw/slash", json(null))).status, 204);
  assert.equal(a.get("raw/slash"), null);
  await c.close();
});

test("GET /usr/:key answers 404 for a key never written", async () => {
  const { c, app } = await setup();
  await expectProblem(await app.request("/usr/nothing"), 404, /"nothing"/);
  await c.close();
});

test("GET /usr lists keys with values and writers, by prefix, up to a limit", async () => {
  const { c, a, b, app } = await setup();
  await a.set("p/2", "two");
  await b.set("p/1", 1);
  await a.set("q", true);
  c.run(1000);
  const all = await (await app.request("/usr")).json();
  assert.deepEqual(all.entries.map((e: { key: string }) => e.key), ["p/1", "p/2", "q"]);
  assert.equal(all.truncated, false);
  const p1 = all.entries[0];
  assert.deepEqual([p1.value, p1.writer, typeof p1.wall], [1, "b", "number"]);
  const some = await (await app.request("/usr?prefix=p/&limit=1")).json();
  assert.deepEqual(some.entries.map((e: { key: string }) => e.key), ["p/1"]);
  assert.equal(some.truncated, true);
  for (const limit of ["-1", "x", "1.5"]) {
    await refused(a, app, `/usr?limit=${limit}`, {}, 400, /limit/);
  }
  await c.close();
});

test("GET /members lists status, address, incarnation and last heard", async () => {
  const { c, app } = await setup();
  const members = await (await app.request("/members")).json();
  assert.deepEqual(members.map((m: { id: string }) => m.id).sort(), ["a", "b"]);
  const self = members.find((m: { id: string }) => m.id === "a");
  const b = members.find((m: { id: string }) => m.id === "b");
  assert.deepEqual(self, {
    id: "a",
    address: "a",
    status: "alive",
    incarnation: 0,
    lastHeard: null,
    self: true,
  });
  assert.equal(b.status, "alive");
  assert.equal(b.self, false);
  assert.equal(typeof b.lastHeard, "number");
  await c.close();
});

test("GET /sync shows the Merkle root, counts and the rounds per peer", async () => {
  const { c, a, app } = await setup();
  await a.set("x", 1);
  await a.delete("x");
  await a.set("y", 2);
  c.run(2000);
  const sync = await (await app.request("/sync")).json();
  assert.deepEqual(sync, a.syncStatus());
  assert.equal(sync.keys, 1);
  assert.equal(sync.tombstones, 1);
  assert.equal(sync.peers[0]!.id, "b");
  assert.equal(typeof sync.peers[0]!.lastStarted, "number");
  await c.close();
});

test("GET / is one self-contained page under a strict CSP", async () => {
  const { c, app } = await setup();
  const res = await app.request("/");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /^text\/html/);
  const csp = res.headers.get("content-security-policy")!;
  const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
  assert.match(csp, /default-src 'none'/);
  const html = await res.text();
  assert.ok(html.includes(`<script nonce="${nonce}">`));
  assert.ok(html.includes('new EventSource("events")'));
  assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//, "no external resource");
  assert.doesNotMatch(html, /@import|url\(/);
  const again = await app.request("/");
  assert.notEqual(again.headers.get("content-security-policy"), csp, "a fresh nonce each time");
  await c.close();
});

test("the dashboard escapes the member id", async () => {
  const c = new Cluster();
  const kv = await c.add("<b>&\"x'");
  const html = await (await createInspector(kv, LOCAL).request("/")).text();
  assert.ok(!html.includes("<b>&"));
  assert.ok(html.includes("&#60;b&#62;&#38;&#34;x&#39;"));
  await c.close();
});

test("unknown routes answer 404 problem JSON; known routes with another method 405", async () => {
  const { c, a, app } = await setup();
  await refused(a, app, "/nope", {}, 404, /GET \/nope/);
  for (
    const [path, method, allow] of [
      ["/state", "POST", "GET"],
      ["/healthz", "DELETE", "GET"],
      ["/usr/k", "POST", "GET, PUT, DELETE"],
      ["/usr", "PUT", "GET"],
      ["/gossip", "GET", "POST"],
      ["/metrics", "PUT", "GET"],
    ] as const
  ) {
    const before = state(a);
    const res = await app.request(path, { method, body: method === "GET" ? null : "1" });
    await expectProblem(res, 405);
    assert.equal(res.headers.get("allow"), allow);
    assert.equal(state(a), before);
  }
  await c.close();
});

test("invalid JSON, empty bodies and invalid UTF-8 answer 400 and change nothing", async () => {
  const { c, a, app } = await setup();
  await a.set("k", "old");
  for (const body of ["{nope", "", "[1,", "undefined"]) {
    await refused(a, app, "/usr/k", { method: "PUT", body }, 400, /not valid JSON/);
  }
  await refused(a, app, "/usr/k", { method: "PUT", body: new Uint8Array([0x22, 0xff, 0x22]) }, 400);
  assert.equal(a.get("k"), "old");
  await c.close();
});

test("bad keys answer 400 and change nothing", async () => {
  const { c, a, app } = await setup();
  await refused(a, app, "/usr/", json(1), 400, /non-empty/);
  await refused(a, app, "/usr/%E0%A4%A", json(1), 400, /percent-encoding/);
  await refused(a, app, "/usr/%ZZ", { method: "DELETE" }, 400, /percent-encoding/);
  await refused(a, app, "/usr/%", {}, 400, /percent-encoding/);
  await refused(a, app, `/usr/${"k".repeat(4097)}`, json(1), 400, /longer than 4096/);
  await refused(a, app, `/usr/${"k".repeat(4097)}`, { method: "DELETE" }, 400, /longer/);
  await c.close();
});

test("bodies over the limit answer 413, declared or streamed, and change nothing", async () => {
  const { c, a } = await setup();
  const app = createInspector(a, { ...LOCAL, maxBodyBytes: 64 });
  const big = JSON.stringify("x".repeat(100));
  await refused(a, app, "/usr/k", { method: "PUT", body: big }, 413, /limit of 64 bytes/);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < 10; i++) controller.enqueue(new TextEncoder().encode("[1,2,3,4,5,6,7]"));
      controller.close();
    },
  });
  const streamed = new Request("http://localhost/usr/k", {
    method: "PUT",
    body: stream,
    // @ts-ignore: Node and Deno need `duplex` to send a stream body; Bun ignores it.
    duplex: "half",
  });
  assert.equal(streamed.headers.get("content-length"), null);
  const before = state(a);
  await expectProblem(await app.request(streamed), 413);
  assert.equal(state(a), before);
  assert.equal((await app.request("/usr/k", json("small"))).status, 204);
  await c.close();
});

test("a body cut off by the connection closing answers 400 and is not logged as a failure", async () => {
  const { c, a, app } = await setup();
  for (const [method, path] of [["PUT", "/usr/k"], ["POST", "/edge/sync"]]) {
    // What a runtime's server hands the handler when the client goes away mid-body, or the
    // server drops the connection while it closes: a stream that fails.
    const cut = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("[1,"));
        controller.error(new DOMException("The connection was closed.", "AbortError"));
      },
    });
    const request = new Request(`http://localhost${path}`, {
      method,
      body: cut,
      // @ts-ignore: Node and Deno need `duplex` to send a stream body; Bun ignores it.
      duplex: "half",
    });
    const logged: unknown[] = [];
    const error = console.error;
    console.error = (...args: unknown[]) => void logged.push(args);
    const before = state(a);
    try {
      await expectProblem(
        await app.request(request),
        400,
        /^The body ended after \d+ bytes: The connection was closed/,
      );
    } finally {
      console.error = error;
    }
    assert.deepEqual(logged, [], path);
    assert.equal(state(a), before);
  }
  await c.close();
});

test("the default body limit is 1 MiB", async () => {
  const { c, a, app } = await setup();
  const over = JSON.stringify("x".repeat(1024 * 1024));
  await refused(a, app, "/usr/k", { method: "PUT", body: over }, 413, /1048576 bytes/);
  await c.close();
});

test("a value over the member's maxValueBytes answers 413 and changes nothing", async () => {
  const c = new Cluster();
  const a = await c.add("a", { maxValueBytes: 100 });
  const app = createInspector(a, LOCAL);
  await refused(a, app, "/usr/k", json({ list: "y".repeat(200) }), 413, /maxValueBytes/);
  await c.close();
});

test("with a token, writes need Authorization: Bearer <token> (401 otherwise)", async () => {
  const { c, a } = await setup();
  const app = createInspector(a, { hostname: "0.0.0.0", token: "s3cret" });
  for (const [path, init] of [["/usr/k", json(1)], ["/usr/k", { method: "DELETE" }]] as const) {
    const before = state(a);
    const missing = await app.request(path, init);
    await expectProblem(missing, 401, /Authorization: Bearer/);
    assert.equal(missing.headers.get("www-authenticate"), 'Bearer realm="gossip-kv"');
    const h = (authorization: string) => ({
      ...init,
      headers: { ...(init.headers as Record<string, string>), authorization },
    });
    for (
      const wrong of ["Bearer nope", "Bearer s3cre", "Bearer s3crett", "Basic s3cret", "s3cret"]
    ) {
      const res = await app.request(path, h(wrong));
      await expectProblem(res, 401);
    }
    const bad = await app.request(path, h("Bearer wrong"));
    assert.match(bad.headers.get("www-authenticate")!, /error="invalid_token"/);
    assert.equal(state(a), before);
    assert.equal((await app.request(path, h("Bearer s3cret"))).status, 204);
    assert.equal((await app.request(path, h("bearer   s3cret"))).status, 204);
  }
  assert.equal((await app.request("/usr/k")).status, 404, "reads need no token");
  await c.close();
});

test("without a token, writes on a non-loopback bind answer 403 saying how to enable them", async () => {
  const { c, a } = await setup();
  for (const hostname of ["0.0.0.0", "10.1.2.3", "::", "example.com", undefined]) {
    const app = createInspector(a, hostname === undefined ? {} : { hostname });
    const body = await expectProblem(await app.request("/usr/k", json(1)), 403, /token/);
    assert.match(body.detail, /Authorization: Bearer <token>|loopback/);
    await refused(a, app, "/usr/k", { method: "DELETE" }, 403, /loopback/);
    await refused(a, app, "/gossip", { method: "POST", body: "x" }, 403);
  }
  for (const hostname of ["127.0.0.1", "127.9.9.9", "localhost", "::1", "[::1]"]) {
    const app = createInspector(a, { hostname });
    assert.equal((await app.request("/usr/k", json(hostname))).status, 204, hostname);
  }
  await c.close();
});

test("without a token, a loopback server refuses writes addressed to another host name", async () => {
  const { c, a, app } = await setup();
  // A page of another site whose name now resolves to 127.0.0.1 (DNS rebinding).
  await refused(a, app, "http://evil.example/usr/k", json(1), 403, /loopback name/);
  assert.equal((await app.request("http://127.0.0.1:8080/usr/k", json(1))).status, 204);
  assert.equal((await app.request("http://[::1]:8080/usr/k", json(2))).status, 204);
  await c.close();
});

test("an empty or spaced token is refused when the inspector is made", async () => {
  const { c, a } = await setup();
  assert.throws(() => createInspector(a, { token: "" }), TypeError);
  assert.throws(() => createInspector(a, { token: "a b" }), TypeError);
  await c.close();
});

test("writes to a closed member answer 503 and change nothing", async () => {
  const { c, a, app } = await setup();
  await a.close();
  await refused(a, app, "/usr/k", json(1), 503, /closed/);
  await refused(a, app, "/usr/k", { method: "DELETE" }, 503, /closed/);
  await c.close();
});

test("an unexpected failure answers 500 problem JSON without details", async () => {
  const { c, a } = await setup();
  const broken = Object.create(a, { stats: { value: () => assert.fail("boom") } }) as GossipKV;
  const app = createInspector(broken, LOCAL);
  const original = console.error;
  const logged: unknown[] = [];
  console.error = (...args: unknown[]) => void logged.push(args);
  try {
    const body = await expectProblem(await app.request("/metrics"), 500);
    assert.doesNotMatch(body.detail, /boom/);
  } finally {
    console.error = original;
  }
  assert.equal(logged.length, 1);
  await c.close();
});

test("POST /gossip hands the datagram and its sender to the HTTP transport", async () => {
  const { c, a } = await setup();
  const gossip = new HttpTransport({ url: "http://127.0.0.1:1" });
  const got: [number[], string][] = [];
  gossip.listen((data, from) => got.push([[...data], from]));
  const app = createInspector(a, { hostname: "127.0.0.1", token: "t", gossip });
  const res = await app.request("/gossip", {
    method: "POST",
    headers: { authorization: "Bearer t", "x-gossip-from": "http://10.0.0.9:80" },
    body: new Uint8Array([1, 2, 3]),
  });
  assert.equal(res.status, 204);
  assert.deepEqual(got, [[[1, 2, 3], "http://10.0.0.9:80"]]);
  await c.close();
});

test("POST /gossip refuses bad requests before the transport sees them", async () => {
  const { c, a } = await setup();
  const gossip = new HttpTransport({ url: "http://127.0.0.1:1" });
  let delivered = 0;
  gossip.listen(() => delivered++);
  const app = createInspector(a, { hostname: "127.0.0.1", token: "t", gossip, maxBodyBytes: 32 });
  const post = (headers: Record<string, string>, body: BodyInit = "x"): RequestInit => ({
    method: "POST",
    headers,
    body,
  });
  const ok = { authorization: "Bearer t", "x-gossip-from": "http://10.0.0.9:80" };
  await refused(a, app, "/gossip", post({ "x-gossip-from": "p" }), 401);
  await refused(a, app, "/gossip", post({ ...ok, authorization: "Bearer x" }), 401);
  await refused(a, app, "/gossip", post({ authorization: "Bearer t" }), 400, /X-Gossip-From/);
  await refused(a, app, "/gossip", post({ ...ok, "x-gossip-from": "x".repeat(257) }), 400);
  await refused(a, app, "/gossip", post({ ...ok, "x-gossip-url": "ftp://x" }), 400, /Url/);
  await refused(a, app, "/gossip", post(ok, new Uint8Array(33)), 413, /32 bytes/);
  assert.equal(delivered, 0);
  gossip.close();
  await refused(a, app, "/gossip", post(ok), 503, /closed or not listening/);
  const plain = createInspector(a, { hostname: "127.0.0.1", token: "t" });
  await refused(a, plain, "/gossip", post(ok), 404, /HttpTransport/);
  await c.close();
});

test("every response says nosniff", async () => {
  const { c, app } = await setup();
  for (const path of ["/", "/healthz", "/nope", "/metrics"]) {
    assert.equal((await app.request(path)).headers.get("x-content-type-options"), "nosniff");
  }
  await c.close();
});
