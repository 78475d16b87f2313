// The codec writes tree and ihave messages by hand (src/wire/codec.ts, writeFast): the bytes
// must be those cbor-x writes for the same message, or members of different releases would
// not read each other. Every datagram packed is compared with one built from cbor-x's bytes
// for each message, packed by the same rule (as many as fit the MTU, in order).
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { value as anyValue } from "./_arbitraries.ts";
import {
  decodeDatagram,
  encodeMessage,
  HEADER_BYTES,
  MAGIC_0,
  MAGIC_1,
  packDatagrams,
  PROTOCOL_VERSION,
} from "../src/wire/codec.ts";
import { encodeCbor } from "../src/wire/cbor.ts";
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
