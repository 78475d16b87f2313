// The memory a connection costs in serve()'s connection guard on Deno (Deno.serve has no
// connection cap or timeouts, so serve() relays every connection through its own listener).
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import process from "node:process";
import { serve } from "../src/http/mod.ts";
import { runtimeKey } from "../src/_runtime.ts";
import { eventually, sleep, within } from "./_http.ts";

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

test(
  "a request head that came while the guard's own event loop was blocked is served, not cut by the header timeout",
  {
    skip: runtimeKey() !== "deno" && "the connection guard is Deno's",
  },
  async () => {
    // Under load the guard may read a head long after it arrived; a stall of its own event loop
    // is not the client's slowness (a lab member under attack reset load clients' writes so).
    const server = await serve({ fetch: () => new Response("served") }, {
      port: 0,
      headersTimeoutMs: 200,
    });
    const socket = connect(server.port, "127.0.0.1");
    let reply = "", error = "", closed = false;
    socket.on("data", (d) => reply += d);
    socket.on("close", () => closed = true);
    socket.on("error", (e: Error & { code?: string }) => error = e.code ?? e.message);
    try {
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      await sleep(100); // accepted: the guard's clock for this connection runs
      await new Promise<void>((resolve) =>
        socket.write(
          "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
          () => resolve(),
        )
      );
      // The loop blocked for three header timeouts, the head waiting in the socket meanwhile.
      const until = Date.now() + 600;
      while (Date.now() < until) {
        /* busy */
      }
      await eventually(() => reply.includes("served") || closed, "an answer, or the end", 5_000);
      assert.equal(error, "");
      assert.match(reply, /^HTTP\/1\.1 200/, "closed without an answer");
    } finally {
      socket.destroy();
      await within(server.close(), 20_000, "the server to close");
    }
  },
);
