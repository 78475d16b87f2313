// The conformance suite against the UDP transports, each on the runtime it belongs to
// (Deno's native one, Bun's, node:dgram on Node and as Deno's fallback), on loopback with
// ephemeral ports; IPv6 on [::1] where the machine has it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { autoTransport, detectUdpRuntime } from "../src/transport/auto.ts";
import { bunUdpTransport, hasBunUdp } from "../src/transport/bun_udp.ts";
import { denoUdpTransport, hasDenoUdp } from "../src/transport/deno_udp.ts";
import { nodeUdpTransport } from "../src/transport/node_udp.ts";
import type { UdpTransport, UdpTransportOptions } from "../src/transport/udp.ts";
import { parseAddress } from "../src/transport/udp.ts";
import { transportSuite } from "./_transport_suite.ts";

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function eventually(done: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !done();) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Waits for `done`; fails the test (naming `what`) if it has not settled within `ms`. */
async function within(done: Promise<void>, ms: number, what: () => string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what()}`)), ms);
  });
  try {
    await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function ipv6Skip(): Promise<string | false> {
  try {
    await (await nodeUdpTransport({ hostname: "::1", port: 0 })).close();
    return false;
  } catch (error) {
    return `no IPv6 loopback on this machine (${(error as Error).message})`;
  }
}
const noIPv6 = await ipv6Skip();

type Open = (options: UdpTransportOptions) => Promise<UdpTransport>;

/** A sender `x` and a receiver `y` on loopback, `y`'s datagrams handed to `onY`. */
async function pair(
  open: Open,
  onY: (data: Uint8Array) => void,
): Promise<{ x: UdpTransport; y: UdpTransport }> {
  const x = await open({ hostname: "127.0.0.1", port: 0 });
  const y = await open({ hostname: "127.0.0.1", port: 0 });
  await y.listen(onY);
  await x.listen(() => {});
  return { x, y };
}
const adapters: { name: string; open: Open; burst: number; skip: string | false }[] = [
  {
    name: "deno-udp",
    open: denoUdpTransport,
    burst: 2000,
    skip: runtime !== "deno"
      ? `Deno.listenDatagram is Deno's API; this is ${runtime}`
      : !hasDenoUdp() && "Deno.listenDatagram is absent (no --unstable-net)",
  },
  {
    name: "bun-udp",
    open: bunUdpTransport,
    burst: 2000,
    skip: !hasBunUdp() && `Bun.udpSocket is Bun's API; this is ${runtime}`,
  },
  {
    name: runtime === "node" ? "node-udp" : `node-udp (node:dgram on ${runtime})`,
    open: nodeUdpTransport,
    burst: 2000,
    skip: runtime === "bun" &&
      "Bun has its own transport; node:dgram there is Bun's compatibility layer",
  },
];

for (const a of adapters) {
  for (const [family, hostname] of [["IPv4", "127.0.0.1"], ["IPv6", "::1"]] as const) {
    const skip = a.skip || (family === "IPv6" && noIPv6);
    transportSuite({
      name: `${a.name} ${family}`,
      open: () => a.open({ hostname, port: 0 }),
      maxBytes: 9216, // macOS's default limit; Linux carries up to 65,507
      settle: () => sleep(50),
    }, { skip });
  }

  test(`${a.name}: received datagrams are plain Uint8Arrays that later ones never overwrite`, {
    skip: a.skip,
  }, async () => {
    const got: Uint8Array[] = [];
    const { x, y } = await pair(a.open, (data) => got.push(data));
    for (let i = 0; i < 20; i++) await x.send(y.address, new Uint8Array(1000).fill(i));
    await eventually(() => got.length === 20, "20 datagrams");
    for (const data of got) {
      assert.equal(Object.getPrototypeOf(data), Uint8Array.prototype);
      assert.equal(data.length, 1000);
      assert.ok(data.every((b) => b === data[0]));
    }
    assert.equal(new Set(got.map((d) => d[0])).size, 20);
    await Promise.all([x.close(), y.close()]);
  });

  test(`${a.name}: a received datagram holds its own bytes only, not a receive buffer`, {
    skip: a.skip,
  }, async () => {
    // A datagram kept (a fragment waiting for the rest of its value) must not keep alive the
    // runtime's receive buffer: Deno's node:dgram receives each into 64 KiB of its own.
    const got: Uint8Array[] = [];
    const { x, y } = await pair(a.open, (data) => got.push(data));
    for (let i = 0; i < 5; i++) await x.send(y.address, new Uint8Array(1000).fill(i));
    await eventually(() => got.length === 5, "5 datagrams");
    for (const data of got) {
      assert.equal(data.length, 1000);
      assert.ok(
        data.buffer.byteLength <= 4096,
        `a 1,000-byte datagram holds ${data.buffer.byteLength} bytes`,
      );
    }
    await Promise.all([x.close(), y.close()]);
  });

  test(`${a.name}: a burst of ${a.burst} datagrams to a receiver in this process all arrive`, {
    skip: a.skip,
  }, async () => {
    // What a 1 MiB value is: ~770 fragments to each of a few peers, sent in one turn.
    let count = 0;
    let allArrived!: () => void;
    const arrived = new Promise<void>((resolve) => allArrived = resolve);
    const { x, y } = await pair(a.open, () => {
      if (++count === a.burst) allArrived();
    });
    const sends: (void | Promise<void>)[] = [];
    for (let i = 0; i < a.burst; i++) sends.push(x.send(y.address, new Uint8Array(1400)));
    await Promise.all(sends);
    // Done when the last one arrives; the bound is only there so that a lost datagram fails
    // the test rather than hanging it (on a busy machine the burst alone may take seconds).
    await within(arrived, 120_000, () => `${a.burst} datagrams (${count} arrived)`);
    await Promise.all([x.close(), y.close()]);
  });

  test(`${a.name}: the advertised address is separate from the bound one`, {
    skip: a.skip,
  }, async () => {
    const x = await a.open({ hostname: "127.0.0.1", port: 0, advertise: "203.0.113.7" });
    const { port } = parseAddress(x.boundAddress);
    assert.equal(x.address, `203.0.113.7:${port}`);
    assert.equal(x.runtime, a.name.slice(0, a.name.indexOf("-")));
    const y = await a.open({ hostname: "127.0.0.1", port: 0, advertise: "[2001:db8::1]:9000" });
    assert.equal(y.address, "[2001:db8::1]:9000");
    const z = await a.open({ hostname: "0.0.0.0", port: 0 });
    assert.match(z.address, /^\d+\.\d+\.\d+\.\d+:\d+$/);
    assert.notEqual(z.address.split(":")[0], "0.0.0.0");
    await Promise.all([x.close(), y.close(), z.close()]);
  });

  test(`${a.name}: a dual-stack socket sees IPv4 peers as plain IPv4 and reaches them`, {
    skip: a.skip || noIPv6,
  }, async () => {
    const dual = await a.open({ hostname: "::", port: 0, advertise: "::1" });
    const v4 = await a.open({ hostname: "127.0.0.1", port: 0 });
    const froms: string[] = [];
    await dual.listen((data, from) => {
      froms.push(from);
      void dual.send(from, data);
    });
    let echoed = 0;
    await v4.listen(() => echoed++);
    await v4.send(`127.0.0.1:${parseAddress(dual.boundAddress).port}`, Uint8Array.of(1));
    await eventually(() => echoed === 1, "the echo");
    assert.deepEqual(froms, [v4.address]);
    await Promise.all([dual.close(), v4.close()]);
  });

  test(`${a.name}: bad addresses and sends after close reject, never throw`, {
    skip: a.skip,
  }, async () => {
    const x = await a.open({ hostname: "127.0.0.1", port: 0 });
    await x.listen(() => {});
    for (const to of ["nonsense", "1.2.3.4:99999", "[::1]"]) {
      let p: void | Promise<void> | undefined;
      assert.doesNotThrow(() => p = x.send(to, Uint8Array.of(1)));
      await assert.rejects(Promise.resolve(p), TypeError);
    }
    await x.close();
    await assert.rejects(async () => await x.send("127.0.0.1:9", Uint8Array.of(1)));
    await x.close(); // twice is fine
  });

  test(`${a.name}: a datagram sent right after one to a closed port still arrives`, {
    skip: a.skip,
  }, async () => {
    // A member that just left: its port is closed and answers with ICMP "port unreachable".
    const gone = await a.open({ hostname: "127.0.0.1", port: 0 });
    const closed = gone.address;
    await gone.close();
    let count = 0;
    const { x, y } = await pair(a.open, () => count++);
    for (let i = 0; i < 20; i++) {
      // In one turn, as a leave is announced to every member: first the one gone, then y.
      await Promise.allSettled([
        x.send(closed, new Uint8Array(100)),
        x.send(y.address, new Uint8Array(100)),
      ]);
    }
    await eventually(() => count === 20, `20 datagrams (${count} arrived)`);
    await Promise.all([x.close(), y.close()]);
  });

  test(`${a.name}: bad options throw a TypeError or RangeError`, { skip: a.skip }, async () => {
    await assert.rejects(a.open({ port: 70000 }), RangeError);
    await assert.rejects(a.open({ port: 0, hostname: "" }), TypeError);
    await assert.rejects(a.open({ port: 0, advertise: "a:b:c" }), TypeError);
  });
}

test("autoTransport() picks this runtime's native transport", async () => {
  const expected = runtime === "deno" ? (hasDenoUdp() ? "deno" : "node") : runtime;
  assert.equal(detectUdpRuntime(), expected);
  const t = await autoTransport({ hostname: "127.0.0.1", port: 0 });
  assert.equal(t.runtime, expected);
  await t.close();
});

test("on Deno without --unstable-net, autoTransport() falls back to node:dgram and works", {
  skip: runtime !== "deno" && `a Deno-only fallback; this is ${runtime}`,
}, async () => {
  // A child Deno without deno.json (whose "unstable": ["net"] enables the native API here).
  const auto = new URL("../src/transport/auto.ts", import.meta.url).href;
  const script = `
    const { autoTransport } = await import(${JSON.stringify(auto)});
    const a = await autoTransport({ hostname: "127.0.0.1", port: 0 });
    const b = await autoTransport({ hostname: "127.0.0.1", port: 0 });
    const got = new Promise((resolve) => b.listen((data, from) => resolve(from === a.address)));
    await a.listen(() => {});
    await a.send(b.address, Uint8Array.of(1));
    console.log(typeof Deno.listenDatagram, a.runtime, await got);
    await a.close(); await b.close();`;
  const execPath = (globalThis as unknown as { Deno: { execPath(): string } }).Deno.execPath();
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      execPath,
      ["eval", "--no-config", script],
      { timeout: 60_000 },
      (
        error,
        stdout,
        stderr,
      ) => (error ? reject(new Error(stderr || error.message)) : resolve(stdout)),
    )
  );
  assert.equal(out.trim(), "undefined node true");
});
