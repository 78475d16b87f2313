// The edge replica's exchange body (src/wire/exchange.ts): packed into bodies of at most
// the size given, decoded only as an envelope of the cluster, refused with a reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Message } from "../src/core/messages.ts";
import { packDatagrams } from "../src/wire/codec.ts";
import { decodeExchange, encodeExchange, EXCHANGE_TYPE } from "../src/wire/exchange.ts";

const entries = (n: number, size: number): Message => ({
  type: "entries",
  entries: Array.from({ length: n }, (_, i) => ({
    section: "usr" as const,
    key: `k${i}`,
    value: "v".repeat(size),
    wall: 1_700_000_000_000 + i,
    logical: 0,
    writer: "m",
    deleted: false,
  })),
});

test("an exchange round-trips, split into bodies of at most maxBytes", () => {
  assert.equal(EXCHANGE_TYPE, "application/x-gossip-kv");
  const message = entries(40, 100);
  const bodies = encodeExchange("c", "edge", [message], 1_200);
  assert.ok(bodies.length > 1, "split");
  for (const b of bodies) assert.ok(b.length <= 1_200, `${b.length} bytes`);
  const keys = bodies.flatMap((b) => {
    const env = decodeExchange(b, "c", 1_200);
    assert.deepEqual([env.cluster, env.sender], ["c", "edge"]);
    return env.messages.flatMap((m) => (m.type === "entries" ? m.entries.map((e) => e.key) : []));
  });
  assert.deepEqual(keys, Array.from({ length: 40 }, (_, i) => `k${i}`));
  assert.equal(encodeExchange("c", "edge", [entries(1, 10)], 1_200).length, 1);
});

test("an entry too large for one body is refused, naming the size", () => {
  assert.throws(() => encodeExchange("c", "edge", [entries(1, 5_000)], 1_200), {
    name: "RangeError",
    message: "An entry does not fit in a request of 1200 bytes",
  });
});

test("anything but an envelope of this cluster is refused with what it is", () => {
  const [body] = encodeExchange("c", "edge", [{ type: "ack", seq: 1 }], 1_200);
  assert.throws(() => decodeExchange(body!, "other", 1_200), {
    name: "TypeError",
    message: `Not a Gossip KV exchange (foreign-cluster): cluster "c"`,
  });
  assert.throws(() => decodeExchange(new Uint8Array([1, 2, 3]), "c", 1_200), {
    name: "TypeError",
    message: /^Not a Gossip KV exchange \(\w+\): .+/,
  });
  assert.throws(() => decodeExchange(body!, "c", body!.length - 1), {
    name: "TypeError",
    message: /^Not a Gossip KV exchange \(oversized\): /,
  });
  let id = 0;
  const [fragment] = packDatagrams([entries(1, 5_000)], {
    cluster: "c",
    sender: "edge",
    mtu: 1_200,
    nextFragmentId: () => ++id,
  });
  assert.throws(() => decodeExchange(fragment!, "c", 1_200), {
    name: "TypeError",
    message: "Not a Gossip KV exchange: a fragment datagram, where an envelope belongs",
  });
  assert.equal(decodeExchange(body!, "c", 1_200).messages[0]!.type, "ack");
});
