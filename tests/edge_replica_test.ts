// The edge replica (./edge) against real members: three GossipKV members on a memory
// network, each with its inspector served over HTTP on loopback, and the replica reaching
// them with the runtime's own fetch. The replica runs in this process as its fetch handler.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, serve } from "../src/http/mod.ts";
import type { Server } from "../src/http/serve.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { AGE_HEADER, edgeReplica, SYNC_ERROR_HEADER } from "../src/edge/mod.ts";
import type { EdgeReplica, EdgeReplicaOptions } from "../src/edge/mod.ts";
import { encodeExchange } from "../src/wire/exchange.ts";
import { eventually, sleep } from "./_http.ts";

const TOKEN = "edge-secret";
const AUTH = { authorization: `Bearer ${TOKEN}` };

interface Upstream {
  kv: GossipKV;
  server: Server;
}

async function cluster(n = 3): Promise<{ members: Upstream[]; close(): Promise<void> }> {
  const net = new MemoryNetwork();
  const members: Upstream[] = [];
  for (let i = 0; i < n; i++) {
    const id = `m${i}`;
    const kv = await GossipKV.start({
      id,
      transport: net.transport(id),
      seeds: i === 0 ? [] : ["m0"],
      gossipIntervalMs: 50,
    });
    const server = await serve(createInspector(kv, { token: TOKEN }), {
      hostname: "127.0.0.1",
      port: 0,
    });
    members.push({ kv, server });
  }
  return {
    members,
    close: async () => {
      await Promise.all(members.map(async (m) => {
        await m.server.close();
        await m.kv.close();
      }));
    },
  };
}

function replicaOf(
  upstream: readonly Upstream[] | readonly string[],
  extra: Partial<EdgeReplicaOptions> = {},
): EdgeReplica {
  return edgeReplica({
    upstream: upstream.map((u) => typeof u === "string" ? u : u.server.url),
    token: TOKEN,
    maxStalenessMs: 100,
    timeoutMs: 2_000,
    ...extra,
  });
}

const call = (r: EdgeReplica, path: string, init?: RequestInit) =>
  r.fetch(new Request(`http://edge.test${path}`, init));

async function getValue(r: EdgeReplica, key: string): Promise<unknown> {
  const res = await call(r, `/usr/${encodeURIComponent(key)}`);
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  assert.equal(res.status, 200);
  return await res.json();
}

function put(r: EdgeReplica, key: string, value: unknown, headers: Record<string, string> = AUTH) {
  return call(r, `/usr/${encodeURIComponent(key)}`, {
    method: "PUT",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify(value),
  });
}

test("a write on a member is readable through the replica within maxStalenessMs plus one sync", async () => {
  const c = await cluster();
  try {
    const r = replicaOf([c.members[0]!]);
    assert.equal(await getValue(r, "k"), undefined); // first read: syncs from nothing
    await c.members[0]!.kv.set("k", "from a member");
    // Within the staleness bound the replica may still answer from its copy...
    await sleep(150); // ...past it, the next read syncs first.
    assert.equal(await getValue(r, "k"), "from a member");
    const res = await call(r, "/usr/k");
    assert.ok(Number(res.headers.get(AGE_HEADER)) <= 100, "a read says how old its copy is");
    await res.body?.cancel();
  } finally {
    await c.close();
  }
});

test("a write through the replica is acknowledged once an upstream has it, and reaches every member", async () => {
  const c = await cluster();
  try {
    const r = replicaOf([c.members[1]!]);
    const res = await put(r, "edge key", { n: 1 });
    assert.equal(res.status, 204);
    assert.deepEqual(c.members[1]!.kv.get("edge key"), { n: 1 }, "the upstream has it at the ack");
    await eventually(
      () => c.members.every((m) => (m.kv.get("edge key") as { n?: number })?.n === 1),
      "the write to reach every member",
    );
    assert.equal(r.stats().pendingWrites, 0);
    // Read-your-writes at the replica, and the writer is the replica.
    assert.deepEqual(await getValue(r, "edge key"), { n: 1 });
    assert.equal(c.members[0]!.kv.version("edge key")?.writer, r.id);
  } finally {
    await c.close();
  }
});

test("a delete travels both ways", async () => {
  const c = await cluster();
  try {
    const r = replicaOf([c.members[0]!]);
    await c.members[2]!.kv.set("a", 1);
    assert.equal((await put(r, "b", 2)).status, 204);
    await eventually(() => c.members.every((m) => m.kv.has("a") && m.kv.has("b")), "spread");
    await sleep(150);
    assert.equal(await getValue(r, "a"), 1);
    // Replica → members.
    const del = await call(r, "/usr/b", { method: "DELETE", headers: AUTH });
    assert.equal(del.status, 204);
    assert.equal(await getValue(r, "b"), undefined);
    await eventually(() => c.members.every((m) => !m.kv.has("b")), "the delete to reach all");
    // Members → replica.
    await c.members[2]!.kv.delete("a");
    await sleep(150);
    assert.equal(await getValue(r, "a"), undefined);
  } finally {
    await c.close();
  }
});

test("a replica started from nothing serves the full state after one sync", async () => {
  const c = await cluster();
  try {
    for (let i = 0; i < 300; i++) await c.members[i % 3]!.kv.set(`key/${i}`, i);
    await c.members[0]!.kv.delete("key/7");
    await eventually(
      () => c.members.every((m) => m.kv.size === 299),
      "the members to converge",
    );
    const r = replicaOf([c.members[2]!]);
    const res = await call(r, "/state");
    assert.equal(res.status, 200);
    const state = await res.json() as { usr: Record<string, number>; sys: { members: object } };
    assert.equal(r.stats().syncs, 1);
    assert.deepEqual(state.usr, c.members[2]!.kv.snapshot().usr);
    assert.deepEqual(Object.keys(state.sys.members).sort(), ["m0", "m1", "m2"]);
    const list = await (await call(r, "/usr?prefix=key/1&limit=5")).json() as {
      entries: { key: string; value: number }[];
      truncated: boolean;
    };
    assert.deepEqual(list.entries.map((e) => e.key), [
      "key/1",
      "key/10",
      "key/100",
      "key/101",
      "key/102",
    ]);
    assert.equal(list.truncated, true);
    // In sync: one request, a few dozen bytes.
    const again = await r.sync();
    assert.equal(again.roundTrips, 1);
    assert.equal(again.entriesReceived, 0);
    assert.ok(again.bytesSent < 64, `in sync, ${again.bytesSent} bytes sent`);
  } finally {
    await c.close();
  }
});

test("the replica is a client, not a member: it is not listed, probed or declared dead, and cannot write membership records", async () => {
  const c = await cluster();
  try {
    const r = replicaOf([c.members[0]!]);
    assert.equal((await put(r, "x", 1)).status, 204);
    // A client writes user data only: a membership record it pushes is refused.
    const forged = encodeExchange("default", "intruder", [{
      type: "entries",
      entries: [{
        section: "sys",
        key: "members/intruder",
        value: { address: "127.0.0.1:9", host: "127.0.0.1", port: 9, protocol: "v1" },
        wall: Date.now(),
        logical: 0,
        writer: "intruder",
        deleted: false,
      }],
    }], 1 << 20)[0]!;
    const res = await fetch(`${c.members[0]!.server.url}/edge/sync`, {
      method: "POST",
      headers: AUTH,
      body: forged as Uint8Array<ArrayBuffer>,
    });
    assert.equal(res.status, 204);
    await sleep(300); // several probe and gossip rounds
    for (const m of c.members) {
      assert.deepEqual(m.kv.members().map((x) => x.id).sort(), ["m0", "m1", "m2"]);
      assert.equal(Object.keys(m.kv.snapshot().sys.members).includes(r.id), false);
      assert.equal(Object.keys(m.kv.snapshot().sys.members).includes("intruder"), false);
    }
  } finally {
    await c.close();
  }
});

test("an upstream that is down is skipped, and skipped again by the next sync", async () => {
  const c = await cluster(1);
  // A port that was free: nothing listens there.
  const gone = await serve({ fetch: () => new Response(null) }, { hostname: "127.0.0.1" });
  const deadUrl = gone.url;
  await gone.close();
  try {
    const r = replicaOf([deadUrl, c.members[0]!.server.url], { downForMs: 60_000 });
    await c.members[0]!.kv.set("k", "v");
    assert.equal(await getValue(r, "k"), "v");
    let stats = r.stats();
    assert.equal(stats.roundTrips, 2, "one refused request, then one sync from nothing");
    assert.ok(stats.upstreams[0]!.downUntil !== null);
    assert.match(stats.upstreams[0]!.lastError!, new RegExp(deadUrl.replace(/[.]/g, "\\.")));
    await r.sync();
    stats = r.stats();
    assert.equal(stats.roundTrips, 3, "the next sync goes straight to the live upstream");
    assert.equal(stats.lastSync!.upstream, c.members[0]!.server.url);
  } finally {
    await c.close();
  }
});

test("a wrong or missing token is refused with 401 and changes nothing", async () => {
  const c = await cluster(1);
  try {
    const r = replicaOf([c.members[0]!]);
    for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "Basic x" }]) {
      const res = await put(r, "k", "v", headers);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      assert.ok(res.headers.get("www-authenticate"));
      await res.body?.cancel();
      const del = await call(r, "/usr/k", { method: "DELETE", headers });
      assert.equal(del.status, 401);
      await del.body?.cancel();
    }
    assert.equal(await getValue(r, "k"), undefined);
    assert.equal(c.members[0]!.kv.has("k"), false);
    // A replica configured with the wrong token cannot sync, and says so.
    const wrong = replicaOf([c.members[0]!], { token: "not-the-token" });
    const res = await call(wrong, "/healthz");
    assert.equal(res.status, 503);
    assert.match((await res.json() as { detail: string }).detail, /HTTP 401/);
    // The upstream route itself refuses a client without the token.
    const direct = await fetch(`${c.members[0]!.server.url}/edge/sync`, {
      method: "POST",
      body: new Uint8Array([1, 2, 3]),
    });
    assert.equal(direct.status, 401);
    await direct.body?.cancel();
  } finally {
    await c.close();
  }
});

test("bad input gets the inspector's answers: 400, 404, 405 and 413", async () => {
  const c = await cluster(1);
  try {
    const r = replicaOf([c.members[0]!], { maxBodyBytes: 4096 });
    const expect = async (res: Response, status: number, detail: RegExp) => {
      assert.equal(res.status, status);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      const body = await res.json() as { status: number; detail: string; title: string };
      assert.equal(body.status, status);
      assert.match(body.detail, detail);
    };
    await expect(
      await call(r, "/usr/k", {
        method: "PUT",
        headers: AUTH,
        body: "{not json",
      }),
      400,
      /not valid JSON/,
    );
    await expect(await call(r, "/usr/%E0%A4%A"), 400, /percent-encoding/);
    await expect(await call(r, "/usr?limit=-1"), 400, /limit/);
    await expect(await call(r, "/usr/absent"), 404, /absent/);
    await expect(await call(r, "/nowhere"), 404, /No route GET \/nowhere/);
    const res = await call(r, "/state", { method: "POST" });
    assert.equal(res.headers.get("allow"), "GET");
    await expect(res, 405, /accepts GET/);
    await expect(await put(r, "big", "x".repeat(5000)), 413, /exceeds the limit/);
    await expect(await put(r, "k".repeat(5000), 1), 400, /longer than/);
    assert.equal(c.members[0]!.kv.size, 0, "nothing reached the upstream");
    // The upstream route: a body that is not an exchange of this cluster.
    const garbage = await fetch(`${c.members[0]!.server.url}/edge/sync`, {
      method: "POST",
      headers: AUTH,
      body: new Uint8Array([1, 2, 3, 4, 5]),
    });
    await expect(garbage, 400, /Not a Gossip KV exchange/);
    const foreign = replicaOf([c.members[0]!], { cluster: "other" });
    const h = await call(foreign, "/healthz");
    await expect(h, 503, /foreign-cluster/);
  } finally {
    await c.close();
  }
});

/** A server that answers every request with `answer`, counting them. */
async function fakeUpstream(answer: () => Response | Promise<Response>) {
  let requests = 0;
  const server = await serve({
    fetch: () => {
      requests++;
      return answer();
    },
  }, { hostname: "127.0.0.1" });
  return {
    server,
    get requests() {
      return requests;
    },
  };
}

test("an upstream that answers garbage or times out never corrupts the copy: the read fails clearly or says how stale it is", async () => {
  const c = await cluster(1);
  let mode: "good" | "garbage" | "html" | "slow" = "good";
  const member = c.members[0]!;
  // A proxy in front of a real member that can turn bad.
  const proxy = await fakeUpstream(async () => {
    if (mode === "garbage") {
      return new Response(new Uint8Array([0x47, 0x4b, 1, 0, 0xff, 0x00, 0x13]), {
        headers: { "content-type": "application/x-gossip-kv" },
      });
    }
    if (mode === "html") return new Response("<html>maintenance</html>", { status: 200 });
    if (mode === "slow") await sleep(1_500);
    return new Response(null, { status: 502 });
  });
  const relay = await serve({
    fetch: async (request) => {
      if (mode !== "good") return await fetch(proxy.server.url, { method: "POST" });
      return await fetch(`${member.server.url}/edge/sync`, {
        method: "POST",
        headers: request.headers,
        body: await request.arrayBuffer(),
      });
    },
  }, { hostname: "127.0.0.1" });
  try {
    // Never synced, and the upstream talks garbage: a clear 503.
    mode = "garbage";
    const fresh = replicaOf([relay.url], { downForMs: 0, timeoutMs: 500 });
    const first = await call(fresh, "/usr/k");
    assert.equal(first.status, 503);
    assert.match((await first.json() as { detail: string }).detail, /Not a Gossip KV exchange/);

    mode = "good";
    await member.kv.set("k", "v1");
    const r = replicaOf([relay.url], { downForMs: 0, timeoutMs: 500 });
    assert.equal(await getValue(r, "k"), "v1");
    const root = r.stats().lastSync;
    assert.ok(root);
    await member.kv.set("k", "v2");
    for (const bad of ["garbage", "html", "slow"] as const) {
      mode = bad;
      await sleep(150);
      const res = await call(r, "/usr/k");
      assert.equal(res.status, 200, `${bad}: served from the copy`);
      assert.equal(await res.json(), "v1", `${bad}: the copy is the last good one`);
      assert.ok(Number(res.headers.get(AGE_HEADER)) >= 150, `${bad}: the age says how stale`);
      const why = res.headers.get(SYNC_ERROR_HEADER) ?? "";
      assert.match(
        why,
        {
          garbage: /Not a Gossip KV exchange/,
          html: /not application\/x-gossip-kv/,
          slow: /no answer within 500 ms/,
        }[bad],
      );
    }
    mode = "good";
    await sleep(150);
    assert.equal(await getValue(r, "k"), "v2", "back to good, it catches up");
    // A write while no upstream answers is applied here and said to be not yet upstream.
    mode = "html";
    const w = await put(r, "later", 1);
    assert.equal(w.status, 202);
    assert.match((await w.json() as { detail: string }).detail, /no upstream has it yet/);
    assert.equal(await getValue(r, "later"), 1, "read-your-writes");
    assert.equal(r.stats().pendingWrites, 1);
    mode = "good";
    await r.sync();
    assert.equal(member.kv.get("later"), 1, "pushed with the next sync");
    assert.equal(r.stats().pendingWrites, 0);
  } finally {
    await relay.close();
    await proxy.server.close();
    await c.close();
  }
});

test("a copy past half its staleness is answered at once and refreshed through ctx.waitUntil", async () => {
  const c = await cluster(1);
  try {
    const r = replicaOf([c.members[0]!], { maxStalenessMs: 400 });
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
    const read = () => r.fetch(new Request("http://edge.test/usr/k"), {}, ctx);
    await (await read()).body?.cancel(); // syncs from nothing, inline
    assert.equal(r.stats().syncs, 1);
    assert.equal(pending.length, 0, "a fresh copy needs no refresh");
    await c.members[0]!.kv.set("k", "new");
    await sleep(250); // past half the staleness, within it
    const res = await read();
    assert.equal(res.status, 404, "answered from the copy, without waiting for a sync");
    await res.body?.cancel();
    assert.equal(pending.length, 1, "a refresh was handed to waitUntil");
    await Promise.all(pending);
    assert.equal(r.stats().syncs, 2);
    assert.equal(await (await read()).json(), "new");
  } finally {
    await c.close();
  }
});
