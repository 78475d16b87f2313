// The codec writes and reads sync-root, sync-nodes, ping and ack messages by hand too (writeFast and
// readEnvelope, src/wire/codec.ts), as tree and ihave messages: the bytes must be those
// cbor-x writes, and whatever the bytes read, the result must be the one of cbor-x and the
// checks (decodeDatagramByCbor), as tests/wire_fast_test.ts checks for tree and ihave ones.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeDatagram,
  decodeDatagramByCbor,
  encodeMessage,
  MAGIC_0,
  MAGIC_1,
  packDatagrams,
  PROTOCOL_VERSION,
} from "../src/wire/codec.ts";
import { encodeCbor } from "../src/wire/cbor.ts";
import { assertRawDatagramsReadAsCbor, datagramEdit, field } from "./_wire_fast.ts";
import { levelWidth, MAX_LEVEL } from "../src/core/merkle.ts";
import type { Message, SyncNodesMessage, SyncRootMessage } from "../src/core/messages.ts";

const root: fc.Arbitrary<SyncRootMessage> = fc.record({
  type: fc.constant("sync-root" as const),
  hash: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  count: fc.oneof(fc.nat(30), fc.constantFrom(2 ** 32, 2 ** 53 - 1), fc.nat()),
});

/** A node's data: its 2-byte child mask, then a byte per child the mask names. */
const nodeData = fc.integer({ min: 1, max: 0xffff }).chain((mask) => {
  let children = 0;
  for (let m = mask; m; m &= m - 1) children++;
  return fc.uint8Array({ minLength: children, maxLength: children })
    .map((bytes) => Uint8Array.of(mask >> 8, mask & 0xff, ...bytes));
});

const nodes: fc.Arbitrary<SyncNodesMessage> = fc.integer({ min: 0, max: MAX_LEVEL - 1 }).chain(
  (level) =>
    fc.record({
      type: fc.constant("sync-nodes" as const),
      salt: fc.nat(0xffff),
      level: fc.constant(level),
      nodes: fc.uniqueArray(fc.nat(levelWidth(level) - 1), { minLength: 1, maxLength: 6 })
        .chain((indexes) =>
          fc.tuple(
            ...indexes.sort((a, b) => a - b).map((index) =>
              nodeData.map((data) => ({ index, data }))
            ),
          )
        ),
    }),
);

const ihave: fc.Arbitrary<Message> = fc.record({
  type: fc.constant("ihave" as const),
  origin: fc.constantFrom("m1", "é"),
  hop: fc.nat(255),
  seqs: fc.uniqueArray(fc.nat(), { minLength: 1, maxLength: 4 }).map((s) =>
    s.sort((a, b) => a - b)
  ),
});

const ack: fc.Arbitrary<Message> = fc.record({
  type: fc.constant("ack" as const),
  seq: fc.oneof(fc.nat(), fc.constantFrom(2 ** 32, 2 ** 53 - 1)),
});

const ping: fc.Arbitrary<Message> = fc.record({
  type: fc.constant("ping" as const),
  seq: fc.nat(),
  target: fc.oneof(
    fc.constantFrom("m2", "é", "t".repeat(256)),
    fc.string({ minLength: 1, maxLength: 8 }),
  ),
});

const pack = (messages: readonly Message[]) =>
  packDatagrams(messages, { cluster: "c", sender: "s", mtu: 1400, nextFragmentId: () => 1 });

test("sync-root, sync-nodes, ping and ack messages pack to cbor-x's bytes and read by hand back to what was sent", () => {
  let envelopes = 0;
  fc.assert(
    fc.property(
      fc.array(fc.oneof(root, nodes, ihave, ack, ping), { minLength: 1, maxLength: 4 }),
      (messages) => {
        const datagrams = pack(messages);
        fc.pre(datagrams.length === 1);
        const d = datagrams[0]!;
        // One datagram: the header, the array's head, the cluster, the sender, each message.
        const items = encodeCbor(new Array(messages.length + 2).fill(0))
          .subarray(0, -(messages.length + 2));
        const parts = [
          Uint8Array.of(MAGIC_0, MAGIC_1, PROTOCOL_VERSION, 0),
          items,
          encodeCbor("c"),
          encodeCbor("s"),
          ...messages.map(encodeMessage),
        ];
        assert.deepEqual([...d], parts.flatMap((p) => [...p]));
        const r = decodeDatagram(d, "c", 1400);
        assert.deepEqual(r, decodeDatagramByCbor(d, "c", 1400));
        assert.equal(r.kind, "envelope");
        // (fast-check makes records without a prototype: compared as plain objects.)
        assert.deepEqual(r.kind === "envelope" && r.envelope.messages, structuredClone(messages));
        envelopes++;
      },
    ),
    { numRuns: 800 },
  );
  assert.ok(envelopes > 300, `${envelopes} datagrams decoded`);
});

test("whatever the bytes of a sync, ping or ack datagram, reading it by hand gives the result of cbor-x and the checks", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(root, nodes, ihave, ack, ping), { minLength: 1, maxLength: 3 }),
      fc.array(datagramEdit, { maxLength: 3 }),
      fc.constantFrom("c", "d"),
      (messages, edits, cluster) => {
        const datagrams = pack(messages);
        fc.pre(datagrams.length === 1);
        let d = datagrams[0]!;
        for (const e of edits) d = e(d);
        assert.deepEqual(decodeDatagram(d, cluster, 1400), decodeDatagramByCbor(d, cluster, 1400));
      },
    ),
    { numRuns: 3000 },
  );
});

test("sync, ping and ack messages at the layout's limits are read by hand as cbor-x and the checks read them", () => {
  const bytes = (n: number) => new Uint8Array(n).fill(7);
  const rawRoot = fc.tuple(
    field([bytes(8)], [bytes(7), bytes(16), bytes(0), "h", 8]),
    field([0, 2 ** 32, 2 ** 53 - 1], [2 ** 53, -1, 1.5, "n"]),
    field([false], [true]),
  ).map(([hash, count, extra]) => extra ? [30, hash, count, 0] : [30, hash, count]);
  const rawNodes = fc.tuple(
    field([0, 0xffff], [0x10000, -1, "s"]),
    field([0, 1, 2, MAX_LEVEL - 1], [MAX_LEVEL, -1, 0.5]),
    fc.array(field([0, 1, 3, 15, 255], [-1, 0.5, 2 ** 53, "g"]), { maxLength: 4 }),
    field(
      [Uint8Array.of(0, 1, 9), Uint8Array.of(0x80, 0x01, 1, 2), Uint8Array.of(0, 1, 9, 0, 2, 8)],
      [Uint8Array.of(0, 0), Uint8Array.of(0, 3, 1), Uint8Array.of(0, 1, 9, 9), bytes(0), "b"],
    ),
  ).map(([salt, level, gaps, blob]) => [34, salt, level, ...gaps, blob]);
  const seq = field([0, 2 ** 32, 2 ** 53 - 1], [2 ** 53, -1, 1.5, "q"]);
  const rawAck = fc.tuple(seq, field([false], [true]))
    .map(([s, extra]) => extra ? [2, s, 0] : [2, s]);
  const rawPing = fc.tuple(seq, field(["m2", "t".repeat(256)], ["", "t".repeat(257), "é", 3]))
    .map(([s, target]) => [1, s, target]);
  assertRawDatagramsReadAsCbor(fc.oneof(rawRoot, rawNodes, rawAck, rawPing));
});
