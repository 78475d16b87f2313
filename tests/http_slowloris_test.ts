// Slow and idle HTTP connections are closed after the header or idle timeout, on Deno (through
// serve()'s connection guard, as Deno.serve has none), Bun (its idle timeout) and Node
// (headersTimeout and keepAliveTimeout), while an event stream that receives heartbeats stays
// open and the member keeps answering.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, serve } from "../src/http/mod.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { runtimeKey } from "../src/_runtime.ts";
import { within } from "./_http.ts";

/** A raw connection, and a promise of its close. */
function open(port: number, send?: string): { socket: Socket; closed: Promise<void> } {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => {});
  socket.on("data", () => {});
  if (send !== undefined) socket.once("connect", () => socket.write(send));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return { socket, closed };
}

test("idle, half-sent and kept-alive connections are closed after the timeouts", async () => {
  const kv = await GossipKV.start({ id: "a", transport: new MemoryNetwork().transport("a") });
  const inspector = createInspector(kv, { hostname: "127.0.0.1", heartbeatMs: 100 });
  // Bun counts its idle timeout in whole seconds: 1 s is its least.
  const server = await serve(inspector, { port: 0, headersTimeoutMs: 500, idleTimeoutMs: 1_000 });
  try {
    const idle = Array.from({ length: 200 }, () => open(server.port));
    const partial = Array.from(
      { length: 50 },
      () => open(server.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
    );
    const kept = open(server.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    // An event stream with heartbeats every 100 ms moves bytes: it is not idle.
    let streamClosed = false;
    const stream = open(
      server.port,
      "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
    );
    stream.closed.then(() => streamClosed = true);
    // Bun has no header timeout: its idle timeout closes the half-sent ones (silent since).
    await within(
      Promise.all([...idle, ...partial, kept].map((c) => c.closed)),
      30_000,
      "every idle, half-sent and kept-alive connection to be closed",
    );
    assert.equal(streamClosed, false, "the event stream with heartbeats stays open");
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200, "the member still answers");
    await health.body?.cancel();
    stream.socket.destroy();
  } finally {
    await server.close();
    await kv.close();
  }
});

test("a request head sent a byte at a time is cut by the header timeout (Deno and Node)", {
  skip: runtimeKey() === "bun" ? "Bun has no header timeout; only its idle timeout" : false,
}, async () => {
  const kv = await GossipKV.start({ id: "a", transport: new MemoryNetwork().transport("a") });
  const server = await serve(createInspector(kv, { hostname: "127.0.0.1" }), {
    port: 0,
    headersTimeoutMs: 500,
    idleTimeoutMs: 60_000,
  });
  try {
    const c = open(server.port);
    const head = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + "a".repeat(10_000);
    let i = 0;
    const drip = setInterval(() => {
      if (!c.socket.destroyed) c.socket.write(head[i++ % head.length]!);
    }, 50);
    try {
      await within(c.closed, 30_000, "the slow head to be cut");
    } finally {
      clearInterval(drip);
    }
  } finally {
    await server.close();
    await kv.close();
  }
});

test("serve() refuses limits that are not positive numbers", async () => {
  const app = { fetch: () => new Response("") };
  for (const bad of [0, -1, Number.NaN, Infinity]) {
    await assert.rejects(serve(app, { idleTimeoutMs: bad }), /idleTimeoutMs must be a positive/);
    await assert.rejects(serve(app, { headersTimeoutMs: bad }), /headersTimeoutMs must be/);
    await assert.rejects(serve(app, { maxConnections: bad }), /maxConnections must be/);
  }
});
