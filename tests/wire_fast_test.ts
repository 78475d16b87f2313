// The codec writes tree and ihave messages by hand (src/wire/codec.ts, writeFast): the bytes
// must be those cbor-x writes for the same message, or members of different releases would
// not read each other. Every datagram packed is compared with one built from cbor-x's bytes
// for each message, packed by the same rule (as many as fit the MTU, in order). And it
// reads datagrams of tree and ihave messages by hand (readEnvelope): whatever the bytes,
// the result must be the one of cbor-x and the checks (decodeDatagramByCbor).
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { value as anyValue } from "./_arbitraries.ts";
import {
  decodeDatagram,
  decodeDatagramByCbor,
  encodeMessage,
  HEADER_BYTES,
  MAGIC_0,
  MAGIC_1,
  packDatagrams,
  PROTOCOL_VERSION,
} from "../src/wire/codec.ts";
import { encodeCbor } from "../src/wire/cbor.ts";
import { assertRawDatagramsReadAsCbor, datagramEdit, field } from "./_wire_fast.ts";
import type { IHaveMessage, Message, TreeMessage } from "../src/core/messages.ts";
import type { Entry } from "../src/core/store.ts";

/** Text of any UTF-16 code units (lone surrogates included), across the header sizes. */
const text = (max: number) =>
  fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.string({ maxLength: max, unit: "binary" }),
    fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: max, size: "max" })
      .map((units) => String.fromCharCode(...units)),
    fc.constantFrom(
      "m1",
      "\x7f\x80\u07ff\u0800\uffff",
      "é".repeat(20),
      "🔑".repeat(12),
      "a".repeat(23),
      "a".repeat(64),
      // A lone surrogate: 3 bytes in a string under 64 units, U+FFFD in a longer one.
      "a\ud800b",
      "a".repeat(70) + "\udc00",
    ),
  );

/** Integers from 0 across CBOR's sizes, and past 2^32 (cbor-x writes those as float64). */
const count = fc.oneof(
  fc.nat(30),
  fc.constantFrom(23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 1.7e12),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
);

const entry: fc.Arbitrary<Entry> = fc.record({
  section: fc.constantFrom("usr" as const, "sys" as const),
  key: text(80),
  wall: count,
  logical: count,
  writer: text(20),
  deleted: fc.boolean(),
  value: fc.oneof(text(300), count, fc.integer(), fc.double(), anyValue),
}).map((e) => e.deleted ? { ...e, value: undefined } : e);

const tree: fc.Arbitrary<TreeMessage> = fc.record({
  type: fc.constant("tree" as const),
  origin: text(20),
  seq: count,
  hop: fc.nat(255),
  entries: fc.array(entry, { minLength: 1, maxLength: 4 }),
});

const ihave: fc.Arbitrary<IHaveMessage> = fc.record({
  type: fc.constant("ihave" as const),
  origin: text(20),
  hop: fc.nat(255),
  seqs: fc.uniqueArray(count, { minLength: 1, maxLength: 30 }).map((s) => s.sort((a, b) => a - b)),
});

const ping: fc.Arbitrary<Message> = fc.record({
  type: fc.constant("ping" as const),
  seq: fc.nat(),
  target: fc.constant("m2"),
});

/** The datagrams of `messages` from cbor-x's bytes of each, `null` if one needs fragments. */
function expected(messages: readonly Message[], mtu: number): Uint8Array[] | null {
  const prefix = [encodeCbor("c"), encodeCbor("s")];
  const budget = mtu - HEADER_BYTES - 5 - prefix[0]!.length - prefix[1]!.length;
  const out: Uint8Array[] = [];
  let batch: Uint8Array[] = [], used = 0;
  const flush = () => {
    if (!batch.length) return;
    const items = encodeCbor(new Array(batch.length + 2).fill(0)).subarray(0, -(batch.length + 2));
    const parts = [
      Uint8Array.of(MAGIC_0, MAGIC_1, PROTOCOL_VERSION, 0),
      items,
      ...prefix,
      ...batch,
    ];
    const d = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) d.set(p, (o += p.length) - p.length);
    out.push(d);
    batch = [];
    used = 0;
  };
  for (const m of messages) {
    const bytes = encodeMessage(m);
    if (bytes.length > budget) return null;
    if (used + bytes.length > budget) flush();
    batch.push(bytes);
    used += bytes.length;
  }
  flush();
  return out;
}

test("tree and ihave messages pack to the bytes cbor-x writes for them, in the same datagrams", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(tree, ihave, ping), { minLength: 1, maxLength: 8 }),
      fc.constantFrom(256, 400, 1400),
      (messages, mtu) => {
        const want = expected(messages, mtu);
        fc.pre(want !== null);
        const got = packDatagrams(messages, {
          cluster: "c",
          sender: "s",
          mtu,
          nextFragmentId: () => 1,
        });
        assert.deepEqual(got.map((d) => [...d]), want!.map((d) => [...d]));
      },
    ),
    { numRuns: 400 },
  );
});

test("hand-written tree and ihave messages decode to what was sent", () => {
  const messages: Message[] = [
    {
      type: "tree",
      origin: "m1",
      seq: 2 ** 32 + 4,
      hop: 3,
      entries: [
        {
          section: "usr",
          key: "k",
          wall: 1.7e12,
          logical: 2,
          writer: "m1",
          deleted: false,
          value: "v",
        },
        {
          section: "sys",
          key: "🔑",
          wall: 5,
          logical: 0,
          writer: "m2",
          deleted: true,
          value: undefined,
        },
        {
          section: "usr",
          key: "n",
          wall: 5,
          logical: 70_000,
          writer: "m2",
          deleted: false,
          value: 300,
        },
      ],
    },
    { type: "ihave", origin: "é", hop: 15, seqs: [24, 280, 2 ** 32 + 1] },
  ];
  const [d] = packDatagrams(messages, {
    cluster: "c",
    sender: "s",
    mtu: 1400,
    nextFragmentId: () => 1,
  });
  const r = decodeDatagram(d!, "c", 1400);
  assert.equal(r.kind, "envelope");
  assert.deepEqual(r.kind === "envelope" && r.envelope.messages, messages);
});

const pack = (messages: readonly Message[], mtu = 1400) =>
  packDatagrams(messages, { cluster: "c", sender: "s", mtu, nextFragmentId: () => 1 });

test("datagrams of tree and ihave messages read by hand decode as through cbor-x and the checks", () => {
  let envelopes = 0;
  fc.assert(
    fc.property(
      fc.array(fc.oneof(tree, ihave, ping), { minLength: 1, maxLength: 6 }),
      (messages) => {
        fc.pre(expected(messages, 1400) !== null);
        for (const d of pack(messages)) {
          const r = decodeDatagram(d, "c", 1400);
          // Refused alike when a field breaks the layout (an empty key, a value cbor-x reads
          // back as another: -0 as 0...).
          assert.deepEqual(r, decodeDatagramByCbor(d, "c", 1400));
          if (r.kind === "envelope") envelopes++;
        }
      },
    ),
    { numRuns: 300 },
  );
  assert.ok(envelopes > 100, `${envelopes} datagrams decoded`);
});

test("whatever the bytes of a datagram, reading it by hand gives the result of cbor-x and the checks", () => {
  // Plain messages (the ones read by hand), then altered: bytes changed, cut, added.
  const plain = fc.record({
    type: fc.constant("tree" as const),
    origin: fc.constantFrom("m1", "m2"),
    seq: count,
    hop: fc.nat(300),
    entries: fc.array(
      fc.record({
        section: fc.constantFrom("usr" as const, "sys" as const),
        key: fc.constantFrom("k", "key", "a".repeat(30)),
        wall: count,
        logical: fc.nat(5),
        writer: fc.constantFrom("m1", "m3"),
        deleted: fc.boolean(),
        value: fc.oneof(fc.constantFrom("v", "", "é"), fc.nat(1000)),
      }).map((e) => e.deleted ? { ...e, value: undefined } : e),
      { minLength: 1, maxLength: 3 },
    ),
  });
  fc.assert(
    fc.property(
      fc.array(fc.oneof(plain, ihave), { minLength: 1, maxLength: 3 }),
      fc.array(datagramEdit, { maxLength: 3 }),
      fc.constantFrom("c", "d"),
      (messages, edits, cluster) => {
        fc.pre(expected(messages, 1400)?.length === 1);
        let d = pack(messages)[0]!;
        for (const e of edits) d = e(d);
        assert.deepEqual(decodeDatagram(d, cluster, 1400), decodeDatagramByCbor(d, cluster, 1400));
      },
    ),
    { numRuns: 2000 },
  );
});

test("messages at the layout's limits are read by hand as cbor-x and the checks read them", () => {
  // Raw arrays, each field mostly a value the layout accepts, now and then one on the other
  // side of a limit (or of another type).
  const rawEntry = fc.tuple(
    field([0, 1, 2, 3], [4, 5, 7]),
    field(["k", "a".repeat(4096)], ["", "a".repeat(4097), 5]),
    field([0, 2 ** 32, 2 ** 53 - 1], [2 ** 53, 1.5, -1, "w"]),
    field([0, 3], [-1, 0.5]),
    field(["m1", "w".repeat(256)], ["", "w".repeat(257)]),
    field<unknown>(["v", "", 7, 2 ** 31], [-1, 1.5, true, null, 2 ** 40]),
    field([false], [true]),
  ).map(([kind, key, wall, logical, writer, value, flip]) =>
    ((kind & 2) !== 0) !== flip
      ? [kind, key, wall, logical, writer]
      : [kind, key, wall, logical, writer, value]
  );
  const origin = field(["m1", "o".repeat(256)], ["", "o".repeat(257), "é", 3]);
  const count = field([0, 5, 2 ** 53 - 1], [2 ** 53, -1, 2.5]);
  const hop = field([0, 255], [256, -1]);
  const rawTree = fc.tuple(origin, count, hop, fc.array(rawEntry, { minLength: 1, maxLength: 3 }))
    .map(([o, seq, h, entries]) => [22, o, seq, h, ...entries]);
  const gaps = fc.tuple(count, fc.array(field([1, 5], [0, 2 ** 53]), { maxLength: 3 }))
    .map(([first, rest]) => [first, ...rest]);
  const rawIHave = fc.tuple(origin, hop, gaps).map(([o, h, seqs]) => [23, o, h, ...seqs]);
  assertRawDatagramsReadAsCbor(fc.oneof(rawTree, rawIHave));
});
