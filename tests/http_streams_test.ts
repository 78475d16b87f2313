// Long responses under byte budgets: event streams and /state bodies that clients do not
// read cannot hold more than the configured bytes, per client and in total; streams are
// capped in number; a stream that takes nothing is cut; events and /state versions are
// serialised once however many clients read them. Through app.request() (any runtime).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createInspector, type InspectorOptions } from "../src/http/mod.ts";
import { Cluster } from "./_cluster.ts";
import { SseReader, within } from "./_http.ts";

async function setup(options: InspectorOptions = {}) {
  const c = new Cluster({ latencyMs: 2 });
  const a = await c.add("a");
  const app = createInspector(a, { hostname: "127.0.0.1", heartbeatMs: 60_000, ...options });
  const metric = async (name: string) => {
    const text = await (await app.request("/metrics")).text();
    let sum = 0;
    for (const line of text.split("\n")) {
      if (line.startsWith(`gossip_kv_${name}{`)) sum += Number(line.split(" ").pop());
    }
    return sum;
  };
  return { c, a, app, metric };
}

/** Reads a body to its end; resolves with the error that ended it, if one did. */
async function drain(res: Response): Promise<unknown> {
  const reader = res.body!.getReader();
  try {
    for (;;) if ((await reader.read()).done) return undefined;
  } catch (error) {
    return error;
  }
}

const big = (n: number) => "x".repeat(n);

test("an event stream that is not read is cut once its backlog passes the per-client budget", async () => {
  const { c, a, app, metric } = await setup({ maxStreamBacklogBytes: 100_000 });
  const slow = await app.request("/events");
  const fast = new SseReader(await app.request("/events"));
  await fast.next();
  for (let i = 0; i < 5; i++) {
    await a.set(`k${i}`, big(30_000));
    assert.equal((await fast.nextEvent("change")).key, `k${i}`, "a reader keeps up");
  }
  assert.equal(await metric("http_streams_cut_total"), 1);
  assert.ok(await within(drain(slow), 5_000, "the slow stream to end") instanceof Error);
  assert.ok(await metric("http_stream_buffered_bytes") <= 100_000);
  await fast.cancel();
  await c.close();
});

test("one event larger than the per-client budget still reaches an idle client", async () => {
  const { c, a, app } = await setup({ maxStreamBacklogBytes: 10_000 });
  const events = new SseReader(await app.request("/events"));
  await events.next();
  await a.set("large", big(50_000));
  assert.equal((await events.nextEvent("change")).value, big(50_000));
  await events.cancel();
  await c.close();
});

test("past the total budget, the stream furthest behind is cut first", async () => {
  const { c, a, app, metric } = await setup({
    maxStreamBacklogBytes: 1_000_000,
    maxStreamBytes: 100_000,
  });
  const behind = await app.request("/events");
  await a.set("early", big(60_000)); // only `behind` is open: it holds this one
  const others = [await app.request("/events"), await app.request("/events")];
  // Each event is held once, however many streams send it: 60 kB for the three streams
  // on `late`, 60 kB more for `behind` on `early`: over 100 kB.
  await a.set("late", big(60_000));
  assert.equal(await metric("http_streams_cut_total"), 1);
  assert.ok(await within(drain(behind), 5_000, "the stream behind to end") instanceof Error);
  assert.ok(await metric("http_stream_buffered_bytes") <= 100_000);
  for (const r of others) await r.body!.cancel();
  await c.close();
});

test("streams beyond maxStreams get 503 with Retry-After", async () => {
  const { c, app, metric } = await setup({ maxStreams: 2 });
  const open = [await app.request("/events"), await app.request("/state")];
  const refused = await app.request("/events");
  assert.equal(refused.status, 503);
  assert.ok(refused.headers.get("retry-after"));
  assert.equal((await app.request("/state")).status, 503);
  assert.equal(await metric("http_streams_refused_total"), 2);
  for (const r of open) await r.body!.cancel();
  assert.equal((await app.request("/events")).status, 200);
  await c.close();
});

test("a stream that takes nothing while bytes wait is cut after streamStallMs", async () => {
  const { c, a, app, metric } = await setup({ streamStallMs: 40 });
  for (let i = 0; i < 10; i++) await a.set(`k${i}`, big(10_000));
  const state = await app.request("/state");
  const events = await app.request("/events");
  const cut = async () => await metric("http_streams_cut_total");
  const start = Date.now();
  while (await cut() < 2 && Date.now() - start < 10_000) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(await cut(), 2, "the /state body and the event stream were both cut");
  assert.ok(await drain(state) instanceof Error);
  assert.ok(await drain(events) instanceof Error);
  await c.close();
});

test("/state is serialised once per version, and versions held by readers stay in the budget", async () => {
  const { c, a, app, metric } = await setup({ maxStreamBytes: 450_000 });
  for (let i = 0; i < 10; i++) await a.set(`k${i}`, big(20_000));
  const first = await app.request("/state");
  const second = await app.request("/state");
  const size = Number(first.headers.get("content-length"));
  assert.ok(size > 200_000);
  assert.equal(await metric("http_stream_buffered_bytes"), size, "one copy for both readers");
  await a.set("k0", "changed"); // a new version, smaller: fits beside the one being read
  const third = await app.request("/state");
  assert.equal(third.status, 200);
  await a.set("k10", big(120_000)); // a new version too large beside the held ones
  const refused = await app.request("/state");
  assert.equal(refused.status, 503);
  assert.ok(refused.headers.get("retry-after"));
  assert.equal(await drain(first), undefined);
  assert.equal(await drain(second), undefined);
  await drain(third);
  const after = await app.request("/state");
  assert.equal(after.status, 200, "served once the earlier readers are done");
  const body = await after.json();
  assert.equal(body.usr.k10.length, 120_000);
  await c.close();
});

test("a /state refused for want of memory is refused before it is serialised", async () => {
  const { c, a, app } = await setup({ maxStreamBytes: 300_000 });
  for (let i = 0; i < 10; i++) await a.set(`k${i}`, big(20_000));
  const held = await app.request("/state");
  let serialised = 0;
  const snapshot = a.snapshot.bind(a);
  a.snapshot = () => {
    serialised++;
    return snapshot();
  };
  for (let i = 0; i < 5; i++) {
    await a.set("k0", `v${i}`); // a new version each time
    assert.equal((await app.request("/state")).status, 503);
  }
  assert.equal(serialised, 0);
  await drain(held);
  assert.equal((await app.request("/state")).status, 200);
  assert.equal(serialised, 1);
  await c.close();
});
