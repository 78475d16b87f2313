// GET /events through app.request(): changes made on other members of a MemoryNetwork
// cluster arrive as events, ?prefix= filters them, heartbeats keep the stream alive, and
// the subscriptions end with the stream.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createInspector } from "../src/http/mod.ts";
import { Cluster } from "./_cluster.ts";
import { countSubscriptions, eventually, SseReader } from "./_http.ts";

async function setup(heartbeatMs = 60_000) {
  const c = new Cluster({ latencyMs: 2 });
  const a = await c.add("a");
  const b = await c.add("b");
  c.run(1000);
  const subscriptions = countSubscriptions(a);
  const app = createInspector(a, { hostname: "127.0.0.1", heartbeatMs });
  return { c, a, b, app, subscriptions };
}

test("the event stream delivers a change made on another member", async () => {
  const { c, b, app } = await setup();
  const res = await app.request("/events");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  assert.equal(res.headers.get("cache-control"), "no-cache");
  const events = new SseReader(res);
  const hello = await events.next();
  assert.deepEqual(hello?.comments, ['connected to "a"']);
  await b.set("greeting", { text: "hello", bytes: new Uint8Array([1, 2]) });
  c.run(100);
  const change = await events.nextEvent("change");
  assert.deepEqual(change, {
    key: "greeting",
    value: { text: "hello", bytes: { $bytes: "AQI=" } },
    deleted: false,
    origin: "remote",
    writer: "b",
    wall: b.version("greeting")!.wall,
  });
  await b.delete("greeting");
  c.run(100);
  const deleted = await events.nextEvent("change");
  assert.deepEqual([deleted.key, deleted.value, deleted.deleted], ["greeting", null, true]);
  await events.cancel();
  await c.close();
});

test("local writes appear on the stream with origin local", async () => {
  const { c, a, app } = await setup();
  const events = new SseReader(await app.request("/events"));
  await a.set("k", 1);
  const change = await events.nextEvent("change");
  assert.deepEqual([change.key, change.value, change.origin, change.writer], [
    "k",
    1,
    "local",
    "a",
  ]);
  await events.cancel();
  await c.close();
});

test("?prefix= keeps only the changes of keys that start with it", async () => {
  const { c, a, b, app } = await setup();
  const events = new SseReader(await app.request(`/events?prefix=${encodeURIComponent("user/")}`));
  await b.set("other", 1);
  await b.set("user/1", "one");
  await a.set("users", 2);
  await a.set("user/2", "two");
  c.run(100);
  const keys = [(await events.nextEvent("change")).key, (await events.nextEvent("change")).key];
  assert.deepEqual(keys.sort(), ["user/1", "user/2"]);
  const names = events.seen.filter((e) => e.event === "change").map((e) => JSON.parse(e.data).key);
  assert.ok(!names.includes("other") && !names.includes("users"));
  await events.cancel();
  await c.close();
});

test("membership changes arrive as member events", async () => {
  const { c, app } = await setup();
  const events = new SseReader(await app.request("/events"));
  await c.add("c");
  c.run(1000);
  const joined = await events.nextEvent("member");
  assert.deepEqual(joined, {
    id: "c",
    address: "c",
    status: "alive",
    incarnation: 0,
    previous: null,
  });
  await c.crash("c");
  assert.notEqual(
    c.runUntil(() => c.get("a").members().find((m) => m.id === "c")?.status === "dead", 60_000),
    -1,
    "a never saw c dead",
  );
  const suspect = await events.nextEvent("member");
  assert.deepEqual([suspect.id, suspect.status, suspect.previous], ["c", "suspect", "alive"]);
  await events.cancel();
  await c.close();
});

test("heartbeat comments keep an idle stream alive", async () => {
  const { c, app } = await setup(5);
  const events = new SseReader(await app.request("/events"));
  const beat = await events.next((e) => e.comments.includes("heartbeat"));
  assert.equal(beat?.event, "message");
  assert.equal(beat?.data, "");
  await events.cancel();
  await c.close();
});

test("a client that disconnects leaves no subscription behind", async () => {
  const { c, b, app, subscriptions } = await setup(5);
  const first = new SseReader(await app.request("/events"));
  const second = new SseReader(await app.request("/events?prefix=x"));
  await first.next();
  await second.next();
  assert.equal(subscriptions.live, 2, "data and members, shared by the two streams");
  await first.cancel();
  assert.equal(subscriptions.live, 2, "the other stream still needs them");
  await b.set("x1", 1);
  c.run(100);
  assert.equal((await second.nextEvent("change")).key, "x1");
  await second.cancel();
  assert.equal(subscriptions.live, 0);
  await c.close();
});

test("an aborted request ends its stream and its subscriptions", async () => {
  const { c, app, subscriptions } = await setup();
  const controller = new AbortController();
  const events = new SseReader(await app.request("/events", { signal: controller.signal }));
  await events.next();
  assert.equal(subscriptions.live, 2);
  controller.abort();
  await eventually(() => subscriptions.live === 0, "the subscriptions to end");
  await events.cancel();
  await c.close();
});
