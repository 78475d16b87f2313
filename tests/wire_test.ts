import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Message } from "../src/core/messages.ts";
import type { Entry } from "../src/core/store.ts";
import { assertValue, decodeCbor, encodeCbor } from "../src/wire/cbor.ts";
import { decodeDatagram, encodeMessage, Kind, packDatagrams } from "../src/wire/codec.ts";
import { Wire } from "../src/wire/wire.ts";
import { seededRandom, shuffle } from "../src/core/random.ts";
import { value } from "./_arbitraries.ts";
import { readFileSync } from "node:fs";
// @ts-types="../src/wire/_cbor_x/decode.d.ts"
import { Tag } from "../src/wire/_cbor_x/decode.js";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

test("values round-trip through CBOR: JSON types, Uint8Array, Date, Map", () => {
  fc.assert(fc.property(value, (v) => {
    assertValue(v);
    assert.deepStrictEqual(decodeCbor(encodeCbor(v)), v);
  }));
});

test("every runtime encodes a value to the same bytes", () => {
  const v = {
    s: "héllo",
    n: [0, -1, 23, 24, 255, 65536, 2 ** 40, 1.5],
    b: new Uint8Array([1, 2, 3]),
    d: new Date(1_700_000_000_123),
    m: new Map<unknown, unknown>([[1, "x"], ["k", [true, null]]]),
  };
  assert.equal(
    hex(encodeCbor(v)),
    "a561736668c3a96c6c6f616e88002017181818ff1a00010000fb4270000000000000fb3ff8000000000000" +
      "6162430102036164c1fb41d954fc4007df3b616dd90103a2016178616b82f5f6",
  );
});

test("assertValue() refuses what cannot be replicated, with a TypeError naming the path", () => {
  class Point {
    x = 1;
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  for (
    const bad of [
      undefined,
      () => 1,
      Symbol("s"),
      new Point(),
      { a: [new Point()] },
      new Date(NaN),
      cyclic,
      2n ** 70n,
    ]
  ) {
    assert.throws(() => assertValue(bad), TypeError);
  }
  assert.throws(() => assertValue({ a: { b: [() => 1] } }), /value\.a\.b\[0\]/);
});

const entryArb: fc.Arbitrary<Entry> = fc.record({
  section: fc.constantFrom("usr" as const, "sys" as const),
  key: fc.string({ minLength: 1, maxLength: 20 }),
  wall: fc.integer({ min: 0, max: 2 ** 45 }),
  logical: fc.nat(1000),
  writer: fc.string({ minLength: 1, maxLength: 10 }),
  deleted: fc.boolean(),
  value,
}).map((e) => (e.deleted ? { ...e, value: undefined } : { ...e }));

const hash = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
/** One to three nodes of a batched sync message, at ascending indices up to `max`. */
const syncNodes = (max: number, data: fc.Arbitrary<Uint8Array>) =>
  fc.uniqueArray(fc.nat(max), { minLength: 1, maxLength: 3 }).chain((indices) =>
    fc.tuple(...indices.sort((a, b) => a - b).map((index) => data.map((d) => ({ index, data: d }))))
  );
const messageArb: fc.Arbitrary<Message> = fc.oneof<fc.Arbitrary<Message>[]>(
  fc.record({
    type: fc.constant("ping" as const),
    seq: fc.nat(),
    target: fc.string({ minLength: 1, maxLength: 9 }),
  }),
  fc.record({ type: fc.constant("ack" as const), seq: fc.nat() }),
  fc.record({
    type: fc.constant("relay" as const),
    origin: fc.string({ minLength: 1, maxLength: 9 }),
    seq: fc.maxSafeNat(),
    to: fc.string({ minLength: 1, maxLength: 9 }),
  }),
  fc.record({
    type: fc.constant("ping-req" as const),
    seq: fc.nat(),
    target: fc.string({ minLength: 1, maxLength: 9 }),
    address: fc.string({ minLength: 1, maxLength: 20 }),
  }),
  fc.record({
    type: fc.constant("member" as const),
    id: fc.string({ minLength: 1, maxLength: 9 }),
    address: fc.string({ minLength: 1, maxLength: 20 }),
    incarnation: fc.nat(),
    status: fc.constantFrom("alive" as const, "suspect" as const, "dead" as const, "left" as const),
  }),
  fc.record({
    type: fc.constant("rumor" as const),
    hop: fc.nat(255),
    entries: fc.array(entryArb, { minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    type: fc.constant("entries" as const),
    entries: fc.array(entryArb, { minLength: 1, maxLength: 4 }),
  }),
  fc.record({ type: fc.constant("sync-root" as const), hash: hash(8), count: fc.nat() }),
  fc.record({
    type: fc.constant("sync-branch" as const),
    level: fc.constant(1),
    index: fc.nat(15),
    children: hash(128),
  }),
  fc.record({
    type: fc.constant("sync-leaf" as const),
    level: fc.constant(2),
    index: fc.nat(255),
    hashes: hash(24),
  }),
  fc.record({
    type: fc.constant("sync-want" as const),
    level: fc.constant(8),
    index: fc.nat(),
    hashes: hash(8),
  }),
  fc.record({
    type: fc.constant("sync-nodes" as const),
    salt: fc.nat({ max: 0xffff }),
    level: fc.constant(3),
    nodes: syncNodes(
      4095,
      fc.integer({ min: 1, max: 0xffff }).chain((mask) => {
        let n = 0;
        for (let m = mask; m; m &= m - 1) n++;
        return hash(n).map((digests) => Uint8Array.of(mask >>> 8, mask & 0xff, ...digests));
      }),
    ),
  }),
  fc.record({
    type: fc.constant("sync-stamps" as const),
    salt: fc.nat({ max: 0xffff }),
    level: fc.constant(5),
    nodes: syncNodes(16 ** 5 - 1, fc.nat(2).chain((n) => hash(9 * n))),
  }),
  fc.record({
    type: fc.constant("sync-pull" as const),
    salt: fc.nat({ max: 0xffff }),
    level: fc.constant(8),
    nodes: syncNodes(2 ** 32 - 1, fc.integer({ min: 1, max: 2 }).chain((n) => hash(2 * n))),
  }),
).map((m) => ({ ...m }));

test("envelopes round-trip: every message type, packed into datagrams within the MTU", () => {
  fc.assert(
    fc.property(fc.array(messageArb, { minLength: 1, maxLength: 30, size: "max" }), (messages) => {
      const a = new Wire({ cluster: "prod", sender: "a", mtu: 512 });
      const b = new Wire({ cluster: "prod", sender: "b", mtu: 512 });
      const got: Message[] = [];
      for (const d of a.encode(messages)) {
        assert.ok(d.length <= 512, `datagram of ${d.length} bytes`);
        const r = b.decode(d, "a", 0);
        if (r.status === "envelope") {
          assert.equal(r.envelope.sender, "a");
          got.push(...r.envelope.messages);
        } else assert.equal(r.status, "pending");
      }
      // Large rumors may be split into several messages; regroup their entries to compare.
      const flat = (ms: readonly Message[]): unknown[] =>
        ms.flatMap((m): unknown[] =>
          m.type === "rumor" || m.type === "entries"
            ? m.entries.map((e) => ({ type: m.type, e }))
            : [m]
        );
      assert.deepStrictEqual(flat(got), flat(messages));
    }),
    { numRuns: 200 },
  );
});

test("a datagram from another cluster is refused as foreign", () => {
  const [d] = new Wire({ cluster: "blue", sender: "a" }).encode([{ type: "ack", seq: 1 }]);
  const r = new Wire({ cluster: "green", sender: "b" }).decode(d!, "a", 0);
  assert.deepEqual(r.status === "dropped" && r.reason, "foreign-cluster");
});

test("malformed fields are refused with a reason, never thrown", () => {
  const cases: [unknown[], string][] = [
    [["c", "s", [1, -1, "t"]], "malformed"], // negative seq
    [["c", "s", [99, 1]], "malformed"], // unknown type
    [["c", "s", [31, 1, 16, new Uint8Array(128)]], "malformed"], // node outside the tree
    [["c", "s", [30, new Uint8Array(7), 1]], "malformed"], // short hash
    [["c", "s", [20, 0, [0, "k", 1, 0, "w"]]], "malformed"], // live entry without value
    [["c", "", [2, 1]], "malformed"], // empty sender
    [["c", "s"], "malformed"], // no messages
    [["c", "s", [20, 0, [0, "k", 1, 0, "w", new Tag("x", 12345)]]], "malformed"], // a CBOR tag no member writes
  ];
  for (const [body, reason] of cases) {
    const d = Uint8Array.of(0x47, 0x4b, 1, Kind.Envelope, ...encodeCbor(body));
    const r = decodeDatagram(d, "c", 1400);
    assert.equal(r.kind, "dropped", JSON.stringify(body));
    assert.equal(r.kind === "dropped" && r.reason, reason);
  }
  assert.equal(
    (decodeDatagram(Uint8Array.of(0x47, 0x4b, 2, 0, 0x80), "c", 1400) as { reason: string }).reason,
    "bad-version",
  );
  assert.equal(
    (decodeDatagram(Uint8Array.of(1, 2, 3, 4, 5), "c", 1400) as { reason: string }).reason,
    "bad-magic",
  );
  assert.equal(
    (decodeDatagram(Uint8Array.of(0x47, 0x4b), "c", 1400) as { reason: string }).reason,
    "truncated",
  );
  assert.equal(
    (decodeDatagram(new Uint8Array(1401), "c", 1400) as { reason: string }).reason,
    "oversized",
  );
});

test("a truncated datagram is refused as truncated", () => {
  const [d] = new Wire({ cluster: "c", sender: "a" }).encode([{
    type: "ping",
    seq: 7,
    target: "b",
  }]);
  for (let n = 5; n < d!.length; n++) {
    const r = decodeDatagram(d!.subarray(0, n), "c", 1400);
    assert.equal(r.kind, "dropped");
    assert.ok(
      r.kind === "dropped" && (r.reason === "truncated" || r.reason === "malformed"),
      `cut at ${n}`,
    );
  }
  assert.equal(
    (decodeDatagram(d!.subarray(0, d!.length - 1), "c", 1400) as { reason: string }).reason,
    "truncated",
  );
});

function bigEntry(bytes: number): Entry {
  const v = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) v[i] = (i * 31) & 0xff;
  return { section: "usr", key: "big", value: v, wall: 1, logical: 0, writer: "a", deleted: false };
}

test("a value larger than the MTU is fragmented and reassembled despite loss of order and duplicates", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 ** 31 }),
      fc.integer({ min: 2_000, max: 200_000 }),
      (seed, size) => {
        const a = new Wire({ cluster: "c", sender: "a" });
        const b = new Wire({ cluster: "c", sender: "b" });
        const message: Message = { type: "rumor", hop: 0, entries: [bigEntry(size)] };
        const datagrams = a.encode([message]);
        assert.ok(datagrams.every((d) => d.length <= 1400));
        const random = seededRandom(seed);
        const arrivals = shuffle(random, [...datagrams, ...datagrams.filter(() => random() < 0.2)]);
        const results = arrivals.map((d) => b.decode(d, "a", 0));
        // Duplicates of every fragment may complete the message twice; merge is idempotent.
        const done = results.filter((r) => r.status === "envelope");
        assert.ok(done.length >= 1);
        for (const r of done) {
          assert.deepStrictEqual(r.status === "envelope" && r.envelope.messages, [message]);
        }
      },
    ),
    { numRuns: 25 },
  );
});

test("a message with a lost fragment expires at its deadline and is counted", () => {
  const a = new Wire({ cluster: "c", sender: "a" });
  const b = new Wire({ cluster: "c", sender: "b", fragmentTimeoutMs: 1000 });
  const datagrams = a.encode([{ type: "rumor", hop: 0, entries: [bigEntry(5000)] }]);
  for (const d of datagrams.slice(1)) assert.equal(b.decode(d, "a", 0).status, "pending");
  assert.ok(b.pendingBytes > 0);
  b.expire(1000);
  assert.equal(b.pendingBytes, 0);
  assert.equal(b.drops.get("fragment-timeout"), 1);
  assert.equal(b.decode(datagrams[0]!, "a", 1001).status, "pending");
});

test("reassembly stays under its memory cap and refuses what would exceed it", () => {
  const a = new Wire({ cluster: "c", sender: "a" });
  const b = new Wire({
    cluster: "c",
    sender: "b",
    maxPendingBytes: 20_000,
    maxMessageBytes: 1_000_000,
  });
  for (let i = 0; i < 5; i++) {
    const datagrams = a.encode([{ type: "rumor", hop: 0, entries: [bigEntry(9000)] }]);
    for (const d of datagrams.slice(1)) b.decode(d, "a", 0);
    assert.ok(b.pendingBytes <= 20_000);
  }
  assert.ok((b.drops.get("fragment-overflow") ?? 0) > 0);
});

test("a message announced larger than the cap is refused at its first fragment", () => {
  const a = new Wire({ cluster: "c", sender: "a" });
  const b = new Wire({ cluster: "c", sender: "b", maxMessageBytes: 10_000 });
  const datagrams = a.encode([{ type: "rumor", hop: 0, entries: [bigEntry(50_000)] }]);
  const r = b.decode(datagrams[0]!, "a", 0);
  assert.equal(r.status === "dropped" && r.reason, "oversized");
});

test("packing fills datagrams: many small messages share one", () => {
  const messages: Message[] = Array.from({ length: 40 }, (_, i) => ({ type: "ack", seq: i }));
  const datagrams = packDatagrams(messages, {
    cluster: "c",
    sender: "a",
    mtu: 1400,
    nextFragmentId: () => 0,
  });
  assert.equal(datagrams.length, 1);
  assert.ok(encodeMessage(messages[0]!).length <= 3);
});

test("the vendored cbor-x files are those of the npm package cbor-x 1.6.9, unchanged", () => {
  const npm = new URL("../node_modules/cbor-x/", import.meta.url);
  const vendored = new URL("../src/wire/_cbor_x/", import.meta.url);
  const pkg = JSON.parse(readFileSync(new URL("package.json", npm), "utf8")) as { version: string };
  assert.equal(pkg.version, "1.6.9", "the development dependency is the vendored version");
  for (const file of ["encode.js", "decode.js", "LICENSE"]) {
    assert.ok(
      readFileSync(new URL(file, vendored)).equals(readFileSync(new URL(file, npm))),
      `src/wire/_cbor_x/${file} differs from cbor-x 1.6.9's`,
    );
  }
});
