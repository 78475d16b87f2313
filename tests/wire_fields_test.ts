// Every field the decoder checks, at its limit and one past it, with the exact reason and
// detail a refusal carries (the details are what an operator reads in the logs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertValue, concatBytes, encodeCbor, plainBytes } from "../src/wire/cbor.ts";
import {
  type Decoded,
  decodeDatagram,
  Kind,
  MAGIC_0,
  MAGIC_1,
  MessageCode as C,
  PROTOCOL_VERSION,
} from "../src/wire/codec.ts";

function raw(kind: number, body: unknown): Uint8Array {
  return Uint8Array.of(MAGIC_0, MAGIC_1, PROTOCOL_VERSION, kind, ...encodeCbor(body));
}

/** Decodes an envelope from "a" in cluster "c" carrying `messages`, given as raw arrays. */
function envelope(...messages: unknown[]): Decoded {
  return decodeDatagram(raw(Kind.Envelope, ["c", "a", ...messages]), "c", 1 << 20);
}

function refused(d: Decoded): string {
  assert.equal(d.kind, "dropped", JSON.stringify(d));
  return d.kind === "dropped" ? `${d.reason}: ${d.detail}` : "";
}

function accepted(d: Decoded): unknown[] {
  assert.equal(d.kind, "envelope", d.kind === "dropped" ? d.detail : d.kind);
  return d.kind === "envelope" ? [...d.envelope.messages] : [];
}

const H8 = new Uint8Array(8);
const entry = (kind = 0, ...rest: unknown[]) => [kind, "k", 1, 0, "w", ...rest];

test("message field counts: exact for fixed messages, 5 or 6 for members, at least one entry", () => {
  assert.deepEqual(accepted(envelope([C.ping, 1, "b"])), [{ type: "ping", seq: 1, target: "b" }]);
  assert.equal(
    refused(envelope([C.ping, 1, "b", 0])),
    "malformed: message of type 1 has 4 fields, not 3",
  );
  assert.equal(refused(envelope([C.ack])), "malformed: message of type 2 has 1 fields, not 2");
  assert.deepEqual(accepted(envelope([C.ack, 0])), [{ type: "ack", seq: 0 }]);
  assert.deepEqual(accepted(envelope([C["ping-req"], 2, "t", "addr"])), [
    { type: "ping-req", seq: 2, target: "t", address: "addr" },
  ]);
  assert.deepEqual(accepted(envelope([C.member, "m", "addr", 0, 3])), [
    { type: "member", id: "m", address: "addr", incarnation: 0, status: "left" },
  ]);
  assert.deepEqual(accepted(envelope([C.member, "m", "addr", 1, 1, "s"])), [
    { type: "member", id: "m", address: "addr", incarnation: 1, status: "suspect", by: "s" },
  ]);
  assert.equal(
    refused(envelope([C.member, "m", "addr", 0])),
    "malformed: member message has 4 fields, not 5 or 6",
  );
  assert.equal(
    refused(envelope([C.member, "m", "addr", 0, 0, "s", 1])),
    "malformed: member message has 7 fields, not 5 or 6",
  );
  assert.equal(refused(envelope([C.rumor, 0])), "malformed: rumor carries no entries");
  assert.equal(refused(envelope([C.entries])), "malformed: entries message carries no entries");
  assert.equal(refused(envelope([])), "malformed: message is not a non-empty array");
  assert.equal(refused(envelope("ping")), "malformed: message is not a non-empty array");
  assert.equal(refused(envelope([99])), "malformed: unknown message type 99");
  assert.equal(refused(envelope(["1"])), "malformed: unknown message type 1");
});

test("integers: 0 to their maximum, refused one past it, negative or fractional", () => {
  assert.equal(
    accepted(envelope([C.rumor, 255, entry(0, 1)])).length,
    1,
  );
  assert.equal(
    refused(envelope([C.rumor, 256, entry(0, 1)])),
    "malformed: hop is not an integer from 0 to 255",
  );
  assert.equal(
    refused(envelope([C.member, "m", "addr", 0, 4])),
    "malformed: status is not an integer from 0 to 3",
  );
  assert.equal(
    refused(envelope([C.ack, -1])),
    `malformed: seq is not an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
  );
  assert.equal(
    refused(envelope([C.ack, 1.5])),
    `malformed: seq is not an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
  );
  assert.equal(
    refused(envelope([C.ack, "1"])),
    `malformed: seq is not an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
  );
  assert.deepEqual(accepted(envelope([C.ack, Number.MAX_SAFE_INTEGER])), [
    { type: "ack", seq: Number.MAX_SAFE_INTEGER },
  ]);
  assert.equal(
    refused(envelope([C.entries, entry(4, 1)])),
    "malformed: entry kind is not an integer from 0 to 3",
  );
});

test("entries: 5 items for a tombstone, 6 for a value, the kind's bits read as section and deletion", () => {
  const [usr, sys, gone, sysGone] = [0, 1, 2, 3].map((kind) =>
    (accepted(envelope([C.entries, kind & 2 ? entry(kind) : entry(kind, "v")]))[0] as {
      entries: { section: string; deleted: boolean; value: unknown }[];
    }).entries[0]!
  );
  assert.deepEqual([usr!.section, usr!.deleted, usr!.value], ["usr", false, "v"]);
  assert.deepEqual([sys!.section, sys!.deleted, sys!.value], ["sys", false, "v"]);
  assert.deepEqual([gone!.section, gone!.deleted, gone!.value], ["usr", true, undefined]);
  assert.deepEqual([sysGone!.section, sysGone!.deleted], ["sys", true]);
  assert.equal(
    refused(envelope([C.entries, entry(0)])),
    "malformed: entry value does not match its deleted flag",
  );
  assert.equal(
    refused(envelope([C.entries, entry(2, "v")])),
    "malformed: entry value does not match its deleted flag",
  );
  assert.equal(
    refused(envelope([C.entries, [0, "k", 1, 0]])),
    "malformed: entry is not an array of 5 or 6 items",
  );
  assert.equal(
    refused(envelope([C.entries, [...entry(0, 1), 2]])),
    "malformed: entry is not an array of 5 or 6 items",
  );
  assert.equal(
    refused(envelope([C.entries, "entry"])),
    "malformed: entry is not an array of 5 or 6 items",
  );
  assert.equal(
    refused(envelope([C.entries, [0, "", 1, 0, "w", 1]])),
    "malformed: key is not a string of 1 to 4096 characters",
  );
  assert.equal(
    refused(envelope([C.entries, [0, "k", 1, 0, "", 1]])),
    "malformed: writer is not a string of 1 to 256 characters",
  );
  assert.equal(
    refused(envelope([C.entries, [0, "k", 1, -1, "w", 1]])),
    `malformed: stamp counter is not an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
  );
  assert.equal(
    refused(envelope([C.entries, [0, "k", 1.25, 0, "w", 1]])),
    `malformed: stamp wall time is not an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
  );
  // A value the store cannot hold is refused with the reason assertValue() gives.
  assert.match(refused(envelope([C.entries, entry(0, new Set())])), /^malformed: .+/);
});

test("sync messages: nodes inside the tree, hashes of exact sizes", () => {
  assert.equal(accepted(envelope([C["sync-root"], H8, 0])).length, 1);
  assert.equal(
    refused(envelope([C["sync-root"], new Uint8Array(16), 0])),
    "malformed: root hash is not 8 bytes long",
  );
  assert.equal(
    refused(envelope([C["sync-root"], new Uint8Array(7), 0])),
    "malformed: root hash is not a byte string of a multiple of 8 bytes",
  );
  assert.equal(
    refused(envelope([C["sync-root"], [0, 0, 0, 0, 0, 0, 0, 0], 0])),
    "malformed: root hash is not a byte string of a multiple of 8 bytes",
  );
  assert.equal(
    accepted(envelope([C["sync-branch"], 7, 16 ** 7 - 1, new Uint8Array(128)])).length,
    1,
  );
  assert.equal(
    refused(envelope([C["sync-branch"], 0, 0, new Uint8Array(120)])),
    "malformed: children is not 128 bytes long",
  );
  assert.equal(
    refused(envelope([C["sync-branch"], 1, 16, new Uint8Array(128)])),
    "malformed: node (1, 16) is not in the tree",
  );
  assert.equal(
    refused(envelope([C["sync-leaf"], 9, 0, new Uint8Array(0)])),
    "malformed: level is not an integer from 0 to 8",
  );
  assert.equal(accepted(envelope([C["sync-leaf"], 8, 2 ** 32 - 1, new Uint8Array(16)])).length, 1);
  assert.equal(
    refused(envelope([C["sync-leaf"], 0, 0, new Uint8Array(12)])),
    "malformed: hashes is not a byte string of a multiple of 8 bytes",
  );
  assert.equal(
    refused(envelope([C["sync-want"], 0, -1, new Uint8Array(8)])),
    `malformed: index is not an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
  );
  assert.deepEqual(accepted(envelope([C["sync-want"], 2, 255, H8])), [
    { type: "sync-want", level: 2, index: 255, hashes: H8 },
  ]);
  assert.equal(
    refused(envelope([C["sync-branch"], 0, 0])),
    "malformed: message of type 31 has 3 fields, not 4",
  );
});

test("the envelope: header, cluster, sender and at least one message", () => {
  const ok = raw(Kind.Envelope, ["c", "a", [C.ack, 1]]);
  assert.equal(decodeDatagram(ok, "c", ok.length).kind, "envelope");
  assert.equal(
    refused(decodeDatagram(ok.subarray(0, 3), "c", 100)),
    "truncated: 3 bytes is shorter than a header",
  );
  assert.equal(decodeDatagram(ok.subarray(0, 4), "c", 100).kind, "dropped");
  const bad = (i: number, v: number) => {
    const d = ok.slice();
    d[i] = v;
    return decodeDatagram(d, "c", 100);
  };
  assert.equal(refused(bad(0, 0)), "bad-magic: not a Gossip KV datagram");
  assert.equal(refused(bad(1, 0)), "bad-magic: not a Gossip KV datagram");
  assert.equal(refused(bad(2, 2)), "bad-version: protocol version 2");
  assert.equal(refused(bad(3, 7)), "malformed: unknown kind 7");
  assert.equal(bad(3, Kind.Sealed).kind, "sealed");
  assert.equal(refused(decodeDatagram(ok, "other", 100)), 'foreign-cluster: cluster "c"');
  assert.equal(
    refused(decodeDatagram(raw(Kind.Envelope, ["c", "a"]), "c", 100)),
    "malformed: envelope carries no messages",
  );
  assert.equal(
    refused(decodeDatagram(raw(Kind.Envelope, ["c"]), "c", 100)),
    "malformed: body is not an array",
  );
  assert.equal(
    refused(decodeDatagram(raw(Kind.Envelope, { c: 1 }), "c", 100)),
    "malformed: body is not an array",
  );
  assert.equal(
    refused(decodeDatagram(raw(Kind.Envelope, ["c", "", [C.ack, 1]]), "c", 100)),
    "malformed: sender is not a string of 1 to 256 characters",
  );
  // An empty cluster name is a name like any other.
  assert.equal(decodeDatagram(raw(Kind.Envelope, ["", "a", [C.ack, 1]]), "", 100).kind, "envelope");
  assert.equal(
    refused(decodeDatagram(raw(Kind.Envelope, [7, "a", [C.ack, 1]]), "c", 100)),
    "malformed: cluster name is not a string of 1 to 256 characters",
  );
});

test("fragments: index below total, total up to 65,535, a chunk of at least one byte", () => {
  const frag = (...body: unknown[]) =>
    decodeDatagram(raw(Kind.Fragment, ["c", ...body]), "c", 1 << 20);
  const chunk = new Uint8Array(3);
  const ok = frag(7, 4, 5, chunk);
  assert.equal(ok.kind, "fragment");
  if (ok.kind === "fragment") {
    assert.deepEqual({ ...ok.fragment, chunk: [...ok.fragment.chunk] }, {
      cluster: "c",
      id: 7,
      index: 4,
      total: 5,
      chunk: [0, 0, 0],
    });
  }
  assert.equal(frag(2 ** 32 - 1, 65_534, 65_535, chunk).kind, "fragment");
  assert.equal(
    refused(frag(1, 5, 5, chunk)),
    "malformed: fragment index is not an integer from 0 to 4",
  );
  assert.equal(
    refused(frag(1, 0, 65_536, chunk)),
    "malformed: fragment total is not an integer from 0 to 65535",
  );
  assert.equal(
    refused(frag(2 ** 32, 0, 1, chunk)),
    "malformed: fragment id is not an integer from 0 to 4294967295",
  );
  assert.equal(refused(frag(1, 0, 1, new Uint8Array(0))), "malformed: fragment chunk is empty");
  assert.equal(
    refused(frag(1, 0, 1)),
    "malformed: fragment is not [cluster, id, index, total, chunk]",
  );
  assert.equal(
    refused(frag(1, 0, 1, "abc")),
    "malformed: chunk is not a byte string of a multiple of 1 bytes",
  );
});

test("assertValue(): every limit and its exact message", () => {
  const nest = (n: number): unknown => (n === 0 ? 1 : [nest(n - 1)]);
  assertValue(nest(64));
  assert.throws(() => assertValue(nest(65)), {
    name: "TypeError",
    message: `Value nests deeper than 64 levels at value${"[0]".repeat(65)}`,
  });
  assertValue(2n ** 64n - 1n);
  assertValue(-(2n ** 64n));
  for (const big of [2n ** 64n, -(2n ** 64n) - 1n]) {
    assert.throws(() => assertValue({ n: big }), {
      name: "TypeError",
      message: "Value has a bigint outside 64 bits at value.n",
    });
  }
  assert.throws(() => assertValue(undefined), {
    name: "TypeError",
    message: "Value must not be undefined: use delete() to remove a key",
  });
  assert.throws(() => assertValue([new Date(NaN)]), {
    name: "TypeError",
    message: "Value has an invalid Date at value[0]",
  });
  assert.throws(() => assertValue(new Map([[() => 1, 1]])), {
    name: "TypeError",
    message: "Value cannot hold a function at value (a Map key)",
  });
  assert.throws(() => assertValue(new Map([["k", Symbol("s")]])), {
    name: "TypeError",
    message: "Value cannot hold a symbol at value.get(k)",
  });
  assert.throws(() => assertValue({ s: new Set() }), {
    name: "TypeError",
    message: "Value cannot hold a Set at value.s: use plain objects",
  });
  assertValue(Object.assign(Object.create(null), { a: 1 }));
  assertValue({ a: [null, true, "s", 1.5, new Uint8Array(2), new Date(0), new Map([[1, 2]])] });
  // Map keys and values are checked as deeply as the rest.
  assert.throws(() => assertValue(new Map([["k", { d: new Date(NaN) }]])), /value\.get\(k\)\.d/);
});

test("plainBytes() and concatBytes() keep bytes as they are", () => {
  const base = Uint8Array.of(1, 2, 3, 4, 5);
  const part = base.subarray(1, 4);
  assert.equal(plainBytes(part), part, "a plain Uint8Array is returned as is");
  class Sub extends Uint8Array {}
  const sub = new Sub(base.buffer, 1, 3);
  const plain = plainBytes(sub);
  assert.equal(plain.constructor, Uint8Array);
  assert.deepEqual([...plain], [2, 3, 4]);
  assert.equal(plain.buffer, base.buffer, "a view, not a copy");
  assert.equal(concatBytes([part]), part);
  assert.deepEqual([...concatBytes([part, Uint8Array.of(9), new Uint8Array(0), base])], [
    2,
    3,
    4,
    9,
    1,
    2,
    3,
    4,
    5,
  ]);
  assert.deepEqual([...concatBytes([])], []);
});
