// Slow readers over real HTTP (Deno.serve, Bun.serve, node:http): clients that open
// GET /events and never read their socket are disconnected once their backlog passes the
// budget, the bytes held for them never pass the total budget, and a client that reads
// receives every event meanwhile.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, serve } from "../src/http/mod.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { sleep, SseReader } from "./_http.ts";

function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`gossip_kv_${name}{`)) sum += Number(line.split(" ").pop());
  }
  return sum;
}

async function until(done: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; !(await done());) {
    if (Date.now() > end) throw new Error(`Gave up after ${ms} ms: ${what}`);
    await sleep(20);
  }
}

/** A client that sends GET /events and never reads what comes back. */
function idleClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      socket.pause();
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

test("clients that never read are disconnected; bytes held stay under the budgets", async () => {
  const kv = await GossipKV.start({ id: "a", transport: new MemoryNetwork().transport("a") });
  const budget = { maxStreamBacklogBytes: 64 * 1024, maxStreamBytes: 256 * 1024 };
  const server = await serve(createInspector(kv, { hostname: "127.0.0.1", ...budget }), {
    port: 0,
  });
  const metrics = async () => await (await fetch(`${server.url}/metrics`)).text();
  const idle = await Promise.all(Array.from({ length: 5 }, () => idleClient(server.port)));
  const closed = idle.map((s) => new Promise<void>((resolve) => s.once("close", () => resolve())));
  for (const s of idle) s.on("error", () => {});
  const reader = new SseReader(await fetch(`${server.url}/events`));
  await reader.next();
  await until(async () => metric(await metrics(), "http_streams") === 6, "six streams open");
  let peak = 0;
  const value = "x".repeat(1024 * 1024);
  for (let i = 0; i < 16; i++) {
    await kv.set(`big${i}`, value);
    assert.equal((await reader.nextEvent("change")).key, `big${i}`);
    peak = Math.max(peak, metric(await metrics(), "http_stream_buffered_bytes"));
  }
  // Sixteen 1 MiB events are more than loopback socket buffers take: every idle client fell
  // behind, and was cut, while the reader got every event.
  await until(
    async () => metric(await metrics(), "http_streams_cut_total") >= 5,
    "the five idle clients to be cut",
  );
  // Held at most: the total budget, or the one event every stream may hold, if larger.
  assert.ok(peak <= Math.max(budget.maxStreamBytes, value.length + 200), `peak ${peak}`);
  for (const s of idle) s.resume(); // let the sockets see their end
  await Promise.all(closed);
  await reader.cancel();
  await server.close();
  await kv.close();
});
