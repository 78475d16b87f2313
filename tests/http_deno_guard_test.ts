// The memory a connection costs in serve()'s connection guard on Deno (Deno.serve has no
// connection cap or timeouts, so serve() relays every connection through its own listener).
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import process from "node:process";
import { serve } from "../src/http/mod.ts";
import { runtimeKey } from "../src/_runtime.ts";
import { eventually, within } from "./_http.ts";

test("a connection held open through Deno's connection guard costs it a few KiB, not 64", {
  skip: runtimeKey() !== "deno" && "the connection guard is Deno's",
}, async () => {
  // Each request waits until the end: every connection is relayed both ways meanwhile.
  const count = 500;
  let arrived = 0;
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  const server = await serve({
    fetch: async () => {
      arrived++;
      await released;
      return new Response("done");
    },
  }, { port: 0 });
  const sockets: Socket[] = [];
  try {
    const before = process.memoryUsage().external;
    for (let i = 0; i < count; i++) {
      const socket = connect(server.port, "127.0.0.1");
      socket.on("error", () => {});
      socket.once("connect", () => socket.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
      sockets.push(socket);
    }
    await eventually(() => arrived === count, `${count} requests relayed (${arrived} so far)`);
    const perConnection = (process.memoryUsage().external - before) / count;
    // Relayed through `conn.readable`, each connection held a pending 64 KiB read buffer.
    assert.ok(
      perConnection < 24 * 1024,
      `${Math.round(perConnection / 1024)} KiB of buffers held per relayed connection`,
    );
  } finally {
    release();
    for (const s of sockets) s.destroy();
    await within(server.close(), 20_000, "the server to close");
  }
});
