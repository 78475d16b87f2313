// How many receives Deno's native UDP adapter keeps pending: few while datagrams arrive one at
// a time, more (up to the maximum) while they arrive faster than one a poll, and few again
// after. Deno with --unstable-net only (Deno.listenDatagram).
import { test } from "node:test";
import assert from "node:assert/strict";
import { denoGlobal } from "../src/_runtime.ts";
import {
  MAX_PENDING_RECEIVES,
  MIN_PENDING_RECEIVES,
  Receives,
} from "../src/transport/_deno_receives.ts";
import { hasDenoUdp } from "../src/transport/deno_udp.ts";

const skip = !hasDenoUdp() && "Deno.listenDatagram is Deno's API (with --unstable-net)";
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function eventually(done: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !done();) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test("Deno's receives: the minimum for a trickle, more for a burst, the minimum again", {
  skip,
}, async () => {
  const deno = denoGlobal()!;
  const rx = deno.listenDatagram!({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const tx = deno.listenDatagram!({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  let closed = false;
  let got = 0, most = 0;
  const receives = new Receives(rx, () => {
    got++;
    most = Math.max(most, receives.loops);
  }, () => closed);
  const to = { transport: "udp" as const, hostname: "127.0.0.1", port: rx.addr.port };
  const data = new Uint8Array(100);
  try {
    receives.start();
    assert.equal(receives.loops, MIN_PENDING_RECEIVES);
    // One at a time: each arrives alone, and the loops stay at the minimum.
    for (let i = 0; i < 20; i++) {
      await tx.send(data, to);
      await eventually(() => got === i + 1, `datagram ${i + 1}`);
    }
    assert.equal(most, MIN_PENDING_RECEIVES);
    // 60 at once, while this event loop is busy: they wait in the socket together.
    const sends = Array.from({ length: 60 }, () => tx.send(data, to));
    const busyUntil = Date.now() + 50;
    while (Date.now() < busyUntil) { /* busy */ }
    await Promise.all(sends);
    await eventually(() => got === 80, "the burst");
    assert.ok(most > MIN_PENDING_RECEIVES, `at most ${most} pending for a burst`);
    assert.ok(receives.loops <= MAX_PENDING_RECEIVES);
    // A trickle again: back to the minimum.
    for (let i = 0; i < 60; i++) {
      await tx.send(data, to);
      await eventually(() => got === 81 + i, `datagram ${81 + i}`);
    }
    assert.equal(receives.loops, MIN_PENDING_RECEIVES);
  } finally {
    closed = true;
    rx.close();
    tx.close();
  }
  await eventually(() => receives.loops === 0, "the loops to end");
});
