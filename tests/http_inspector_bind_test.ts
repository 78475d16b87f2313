// One source of truth for "may this server take writes without a token": serve() hands the
// inspector the address it is bound to, so createInspector(kv) needs no hostname of its own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, type InspectorOptions, serve } from "../src/http/mod.ts";
import { BOUND_HOSTNAME } from "../src/http/_shared.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

async function member(): Promise<GossipKV> {
  return await GossipKV.start({ id: "a", transport: new MemoryNetwork().transport("a") });
}

const put = (value: unknown): RequestInit => ({
  method: "PUT",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(value),
});

test(`${runtime}: serve(createInspector(kv)) on its default loopback bind takes writes`, async () => {
  const kv = await member();
  const server = await serve(createInspector(kv)); // binds 127.0.0.1 by default
  assert.equal(server.hostname, "127.0.0.1");
  const written = await fetch(`${server.url}/usr/greeting`, put("hello"));
  assert.equal(written.status, 204, await written.text());
  assert.equal(kv.get("greeting"), "hello");
  const deleted = await fetch(`${server.url}/usr/greeting`, { method: "DELETE" });
  assert.equal(deleted.status, 204, await deleted.text());
  assert.equal(kv.has("greeting"), false);
  await server.close();
  await kv.close();
});

test("the address serve() is bound to wins over the inspector's hostname option", async () => {
  const kv = await member();
  // What serve() hands each request (src/http/serve.ts); a server on every interface.
  const app = createInspector(kv, { hostname: "127.0.0.1" });
  const env = { [BOUND_HOSTNAME]: "0.0.0.0" };
  const refused = await app.fetch(new Request("http://127.0.0.1/usr/k", put(1)), env);
  assert.equal(refused.status, 403);
  assert.match((await refused.json()).detail, /bound to 0\.0\.0\.0, not loopback/);
  assert.equal(kv.has("k"), false);
  const loopback = await app.fetch(new Request("http://127.0.0.1/usr/k", put(1)), {
    [BOUND_HOSTNAME]: "::1",
  });
  assert.equal(loopback.status, 204);
  await kv.close();
});

test("under another server, an inspector without hostname refuses writes and says why", async () => {
  const kv = await member();
  const refused = await createInspector(kv).request("/usr/k", put(1));
  assert.equal(refused.status, 403);
  assert.match((await refused.json()).detail, /serve\(\) tells the inspector its address/);
  const told = await createInspector(kv, { hostname: "127.0.0.1" }).request("/usr/k", put(1));
  assert.equal(told.status, 204);
  await kv.close();
});

test("optional inspector and serve options accept undefined (exactOptionalPropertyTypes)", async () => {
  const kv = await member();
  const env: Record<string, string | undefined> = {}; // as process.env or Deno.env.get()
  const options: InspectorOptions = {
    token: env.GOSSIP_KV_TOKEN,
    hostname: undefined,
    gossip: undefined,
    maxBodyBytes: undefined,
    heartbeatMs: undefined,
  };
  const app = createInspector(kv, options);
  const server = await serve(app, { hostname: undefined, port: undefined, signal: undefined });
  const written = await fetch(`${server.url}/usr/k`, put(2));
  assert.equal(written.status, 204, await written.text());
  await server.close();
  await kv.close();
});
