// Deno's native UDP transport keeps several receives pending on its socket. With one, a member
// whose event loop also serves thousands of HTTP connections read almost nothing of its
// socket (the fault lab's hostile scenario: the kernel dropped the cluster's pings and acks,
// and the peers declared the member dead); see src/transport/_deno_receives.ts (at least
// MIN_PENDING_RECEIVES, more while datagrams arrive in bursts: tests/deno_udp_receives_test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { MIN_PENDING_RECEIVES } from "../src/transport/_deno_receives.ts";
import { denoUdpTransport, hasDenoUdp } from "../src/transport/deno_udp.ts";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const skip = runtime !== "deno"
  ? `Deno.listenDatagram is Deno's API; this is ${runtime}`
  : !hasDenoUdp() && "Deno.listenDatagram is absent (no --unstable-net)";
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Conn {
  receive(buffer?: Uint8Array): Promise<unknown>;
}
type Listen = (options: unknown) => Conn;

/**
 * Runs `body` while `Deno.listenDatagram` opens real sockets whose `receive()` calls are
 * counted: how many were pending at once on one socket, at most.
 */
async function countingReceives(body: (pending: () => number) => Promise<void>): Promise<void> {
  const deno = (globalThis as unknown as { Deno: { listenDatagram: Listen } }).Deno;
  const original = deno.listenDatagram;
  let most = 0;
  deno.listenDatagram = (options) => {
    const conn = original.call(deno, options);
    let pending = 0;
    const receive = conn.receive.bind(conn);
    conn.receive = (buffer) => {
      most = Math.max(most, ++pending);
      return receive(buffer).finally(() => pending--);
    };
    return conn;
  };
  try {
    await body(() => most);
  } finally {
    deno.listenDatagram = original;
  }
}

test("deno-udp: several receives wait on the socket at once, each datagram delivered once", {
  skip,
}, async () => {
  await countingReceives(async (most) => {
    const got: number[] = [];
    const y = await denoUdpTransport({ hostname: "127.0.0.1", port: 0 });
    const x = await denoUdpTransport({ hostname: "127.0.0.1", port: 0 });
    await y.listen((data) => got.push(data[0]!));
    await x.listen(() => {});
    await sleep(10);
    assert.ok(MIN_PENDING_RECEIVES > 1);
    assert.ok(
      most() >= MIN_PENDING_RECEIVES,
      `${most()} receive(s) pending on the socket at once`,
    );
    for (let i = 0; i < 100; i++) await x.send(y.address, new Uint8Array(100).fill(i));
    for (const end = Date.now() + 10_000; got.length < 100 && Date.now() < end;) await sleep(10);
    await sleep(50);
    assert.deepEqual(got.toSorted((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
    await Promise.all([x.close(), y.close()]);
  });
});
