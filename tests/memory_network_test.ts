import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryNetwork } from "../src/transport/memory.ts";

function recorder(net: MemoryNetwork, address: string) {
  const got: { from: string; data: number[]; at: number }[] = [];
  const t = net.transport(address);
  t.listen((data, from) => got.push({ from, data: [...data], at: net.clock.now() }));
  return { t, got };
}

test("a datagram arrives after the configured latency, in virtual time", () => {
  const net = new MemoryNetwork({ latencyMs: 25, virtualTime: true });
  const a = recorder(net, "a"), b = recorder(net, "b");
  const start = net.clock.now();
  a.t.send("b", Uint8Array.of(1, 2));
  net.time!.advance(24);
  assert.equal(b.got.length, 0);
  net.time!.advance(1);
  assert.deepEqual(b.got, [{ from: "a", data: [1, 2], at: start + 25 }]);
});

test("datagrams over the MTU are refused with a RangeError", () => {
  const net = new MemoryNetwork({ mtu: 100, virtualTime: true });
  const a = recorder(net, "a");
  recorder(net, "b");
  assert.throws(() => a.t.send("b", new Uint8Array(101)), RangeError);
  a.t.send("b", new Uint8Array(100));
});

test("loss drops about the configured share, and stats count every datagram", () => {
  const net = new MemoryNetwork({ seed: 3, loss: 0.3, virtualTime: true });
  const a = recorder(net, "a"), b = recorder(net, "b");
  for (let i = 0; i < 2000; i++) a.t.send("b", Uint8Array.of(i & 0xff));
  net.time!.advance(1);
  const share = b.got.length / 2000;
  assert.ok(share > 0.65 && share < 0.75, `${share}`);
  const s = net.stats();
  assert.equal(s.byAddress.a!.sentDatagrams, 2000);
  assert.equal(s.byAddress.a!.lostDatagrams + s.byAddress.b!.receivedDatagrams, 2000);
  assert.equal(s.total.sentBytes, 2000);
});

test("a partition separates groups until heal()", () => {
  const net = new MemoryNetwork({ virtualTime: true });
  const a = recorder(net, "a"), b = recorder(net, "b"), c = recorder(net, "c");
  net.partition(["a"], ["b"]);
  a.t.send("b", Uint8Array.of(1));
  a.t.send("c", Uint8Array.of(2)); // c is in no group: still reachable
  net.time!.advance(1);
  assert.equal(b.got.length, 0);
  assert.equal(c.got.length, 1);
  net.heal();
  a.t.send("b", Uint8Array.of(3));
  net.time!.advance(1);
  assert.deepEqual(b.got.map((g) => g.data), [[3]]);
});

test("duplication and reordering happen, deterministically from the seed", () => {
  const run = () => {
    const net = new MemoryNetwork({
      seed: 11,
      latencyMs: 5,
      jitterMs: 5,
      duplicate: 0.2,
      reorder: 0.2,
      virtualTime: true,
    });
    const a = recorder(net, "a"), b = recorder(net, "b");
    for (let i = 0; i < 200; i++) a.t.send("b", Uint8Array.of(i));
    net.time!.advance(100);
    return b.got.map((g) => `${g.data[0]}@${g.at}`);
  };
  const first = run();
  assert.deepEqual(run(), first);
  const order = first.map((s) => Number(s.split("@")[0]));
  assert.ok(order.length > 200, "some datagrams were duplicated");
  assert.ok(order.some((x, i) => i > 0 && x < order[i - 1]!), "some datagrams were reordered");
});

test("the receiver gets its own copy of the bytes", () => {
  const net = new MemoryNetwork({ virtualTime: true });
  const a = recorder(net, "a"), b = recorder(net, "b");
  const buf = Uint8Array.of(1, 2, 3);
  a.t.send("b", buf);
  buf[0] = 9;
  net.time!.advance(1);
  assert.deepEqual(b.got[0]!.data, [1, 2, 3]);
});

test("a closed transport receives nothing and frees its address", () => {
  const net = new MemoryNetwork({ virtualTime: true });
  const a = recorder(net, "a"), b = recorder(net, "b");
  b.t.close();
  a.t.send("b", Uint8Array.of(1));
  net.time!.advance(1);
  assert.equal(b.got.length, 0);
  assert.throws(() => b.t.send("a", Uint8Array.of(1)), /closed/);
  assert.throws(() => net.transport("a"), /in use/);
  net.transport("b"); // reusable once closed
});

test("in real-time mode, datagrams arrive asynchronously", async () => {
  const net = new MemoryNetwork({ latencyMs: 1 });
  const a = recorder(net, "a"), b = recorder(net, "b");
  a.t.send("b", Uint8Array.of(42));
  assert.equal(b.got.length, 0);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(b.got.map((g) => g.data), [[42]]);
});

test("bad options are refused", () => {
  assert.throws(() => new MemoryNetwork({ loss: 1.5 }), RangeError);
  assert.throws(() => new MemoryNetwork().transport(""), TypeError);
});
