// What the tests of the codec's hand-written readers share (tests/wire_fast_test.ts: tree and
// ihave messages; tests/wire_fast_sync_test.ts: sync-root, sync-nodes, ping and ack): whatever
// the bytes, reading a datagram by hand must give the result of cbor-x and the checks.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeDatagram,
  decodeDatagramByCbor,
  HEADER_BYTES,
  MAGIC_0,
  MAGIC_1,
  PROTOCOL_VERSION,
} from "../src/wire/codec.ts";
import { encodeCbor } from "../src/wire/cbor.ts";

/**
 * A field of a raw message: mostly one of `valid` (values the layout accepts), now and then
 * one of `edge` (on the other side of a limit, or of another type).
 */
export const field = <T>(valid: T[], edge: T[]): fc.Arbitrary<T> =>
  fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...valid) }, {
    weight: 1,
    arbitrary: fc.constantFrom(...edge),
  });

/** An alteration of a datagram past its header: a byte changed, the end cut, a byte added. */
export const datagramEdit: fc.Arbitrary<(d: Uint8Array) => Uint8Array> = fc.oneof(
  fc.record({ at: fc.nat(), byte: fc.nat(255) }).map((e) => (d: Uint8Array) => {
    const out = d.slice();
    out[HEADER_BYTES + (e.at % (d.length - HEADER_BYTES))] = e.byte;
    return out;
  }),
  fc.nat().map((n) => (d: Uint8Array) =>
    d.slice(0, HEADER_BYTES + (n % (d.length - HEADER_BYTES)))
  ),
  fc.nat(255).map((b) => (d: Uint8Array) => Uint8Array.of(...d, b)),
);

/**
 * Asserts, over `numRuns` envelopes of up to 3 messages drawn from `message` (raw arrays, as
 * cbor-x encodes them) under a cluster name and sender id at their limits, sometimes with a
 * byte after the envelope, that reading each datagram by hand gives what cbor-x and the
 * checks give.
 */
export function assertRawDatagramsReadAsCbor(
  message: fc.Arbitrary<unknown[]>,
  numRuns = 3000,
): void {
  fc.assert(
    fc.property(
      field(["c"], ["d", ""]),
      field(["s", "x".repeat(256)], ["", "x".repeat(257)]),
      fc.array(message, { maxLength: 3 }),
      field([false], [true]),
      (cluster, sender, messages, trailing) => {
        const body = encodeCbor([cluster, sender, ...messages]);
        const d = Uint8Array.of(
          MAGIC_0,
          MAGIC_1,
          PROTOCOL_VERSION,
          0,
          ...body,
          ...(trailing ? [0] : []),
        );
        assert.deepEqual(decodeDatagram(d, "c", 1 << 16), decodeDatagramByCbor(d, "c", 1 << 16));
      },
    ),
    { numRuns },
  );
}
