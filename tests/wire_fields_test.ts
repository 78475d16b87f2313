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
  packDatagrams,
  PROTOCOL_VERSION,
} from "../src/wire/codec.ts";
import type { Message } from "../src/core/messages.ts";
import { Wire } from "../src/wire/wire.ts";

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
  // A relay request: origin, seq and the member to send to, each bounded.
  assert.deepEqual(accepted(envelope([C.relay, "o", 8, "t"])), [
    { type: "relay", origin: "o", seq: 8, to: "t" },
  ]);
  assert.equal(
    refused(envelope([C.relay, "o", 8])),
    "malformed: message of type 26 has 3 fields, not 4",
  );
  assert.equal(
    refused(envelope([C.relay, "o", 8, "t", 1])),
    "malformed: message of type 26 has 5 fields, not 4",
  );
  assert.equal(
    refused(envelope([C.relay, "o", -1, "t"])),
    `malformed: seq is not an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
  );
  assert.equal(
    refused(envelope([C.relay, "o", 8, "x".repeat(257)])),
    "malformed: relay target is not a string of 1 to 256 characters",
  );
  assert.equal(
    refused(envelope([C.relay, "", 8, "t"])),
    "malformed: origin is not a string of 1 to 256 characters",
  );
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

test("compact sync messages: ascending nodes of their level, data of exact sizes", () => {
  const node = (mask: number, ...digests: number[]) =>
    Uint8Array.of(mask >>> 8, mask & 0xff, ...digests);
  // sync-nodes: index gaps, then each node's mask and one byte per child it names, back to back.
  assert.deepEqual(
    accepted(
      envelope([C["sync-nodes"], 7, 2, 3, 250, concatBytes([node(0x8001, 1, 2), node(4, 9)])]),
    ),
    [{
      type: "sync-nodes",
      salt: 7,
      level: 2,
      nodes: [{ index: 3, data: node(0x8001, 1, 2) }, { index: 253, data: node(4, 9) }],
    }],
  );
  const nodes: [unknown[], string][] = [
    [[C["sync-nodes"], 0, 8, 0, node(1, 0)], "level is not an integer from 0 to 7"],
    [[C["sync-nodes"], 0, 1, 16, node(1, 0)], "node (1, 16) is not in the tree"],
    [
      [C["sync-nodes"], 0, 1, 1, 0, concatBytes([node(1, 0), node(1, 0)])],
      "sync nodes are not ascending",
    ],
    [[C["sync-nodes"], 0, 1, 1, node(0)], "sync node has no child"],
    [[C["sync-nodes"], 0, 1, 1, node(3, 0)], "sync-nodes data is too short"],
    [[C["sync-nodes"], 0, 1, 1, node(1, 0, 0)], "sync-nodes data is longer than its nodes"],
    [[C["sync-nodes"], 0, 1, 1, [1, 1, 0]], "sync-nodes data is not a byte string"],
    [[C["sync-nodes"], 2 ** 16, 1, 1, node(1, 0)], "salt is not an integer from 0 to 65535"],
    [[C["sync-nodes"], 0, 1], "sync-nodes message names no node"],
  ];
  for (const [message, detail] of nodes) {
    assert.equal(refused(envelope(message)), `malformed: ${detail}`, JSON.stringify(message));
  }
  // sync-stamps: (gap, 9-byte descriptors) pairs, possibly empty; sync-pull: 2-byte key ids.
  const d9 = new Uint8Array(9);
  assert.deepEqual(accepted(envelope([C["sync-stamps"], 1, 8, 2 ** 32 - 1, d9])), [
    { type: "sync-stamps", salt: 1, level: 8, nodes: [{ index: 2 ** 32 - 1, data: d9 }] },
  ]);
  assert.deepEqual(accepted(envelope([C["sync-stamps"], 1, 0, 0, new Uint8Array(0)])), [
    { type: "sync-stamps", salt: 1, level: 0, nodes: [{ index: 0, data: new Uint8Array(0) }] },
  ]);
  assert.deepEqual(accepted(envelope([C["sync-pull"], 1, 3, 5, H8, 2, Uint8Array.of(0, 1)])), [
    {
      type: "sync-pull",
      salt: 1,
      level: 3,
      nodes: [{ index: 5, data: H8 }, { index: 7, data: Uint8Array.of(0, 1) }],
    },
  ]);
  const leaves: [unknown[], string][] = [
    [[C["sync-stamps"], 0, 1, 0, new Uint8Array(10)], "stamps is not a multiple of 9 bytes"],
    [[C["sync-stamps"], 0, 9, 0, d9], "level is not an integer from 0 to 8"],
    [[C["sync-stamps"], 0, 1, 0, d9, 0, d9], "sync nodes are not ascending"],
    [[C["sync-stamps"], 0, 1, 0], "sync-stamps message names no node"],
    [[C["sync-pull"], 0, 1, 0, new Uint8Array(0)], "key ids is empty"],
    [[C["sync-pull"], 0, 1, 0, new Uint8Array(3)], "key ids is not a multiple of 2 bytes"],
    [[C["sync-pull"], 0, 1, 0, [0, 1]], "sync node data is not a byte string"],
    [[C["sync-pull"], 0, 1, 0, H8, 1], "sync nodes are not (index, data) pairs"],
  ];
  for (const [message, detail] of leaves) {
    assert.equal(refused(envelope(message)), `malformed: ${detail}`, JSON.stringify(message));
  }
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

function bigRumor(bytes: number): Message[] {
  return [{
    type: "rumor",
    hop: 0,
    entries: [{
      section: "usr",
      key: "big",
      value: new Uint8Array(bytes),
      wall: 1,
      logical: 0,
      writer: "a",
      deleted: false,
    }],
  }];
}

test("Wire: options default and are checked; every drop is counted with its detail", () => {
  const w = new Wire({ cluster: "c", sender: "b" });
  assert.deepEqual(
    [w.mtu, w.maxMessageBytes, w.maxPendingBytes, w.fragmentTimeoutMs],
    [1400, 8 * 1024 * 1024, 32 * 1024 * 1024, 10_000],
  );
  const sealed = Uint8Array.of(0x47, 0x4b, 1, Kind.Sealed, 0);
  assert.deepEqual(w.decode(sealed, "x", 0), {
    status: "dropped",
    reason: "unauthenticated",
    detail: "sealed datagram, but this member has no cluster key",
  });
  assert.deepEqual(w.decode(new Uint8Array(1401), "x", 0), {
    status: "dropped",
    reason: "oversized",
    detail: "1401 bytes exceeds 1400",
  });
  assert.deepEqual(w.drop("malformed", "by hand"), {
    status: "dropped",
    reason: "malformed",
    detail: "by hand",
  });
  assert.deepEqual(Object.fromEntries(w.drops), { unauthenticated: 1, oversized: 1, malformed: 1 });
  assert.throws(() => new Wire({ cluster: "c", sender: "b", mtu: 255 }), {
    name: "RangeError",
    message: "MTU must be an integer from 256 to 65507, got 255",
  });
});

test("Wire reassembly: sizes, deadlines and replaced partials, with their details", () => {
  const a = new Wire({ cluster: "c", sender: "a" });
  const frags = a.encode(bigRumor(5_000));
  assert.ok(frags.length > 3);
  // An expired partial is dropped with its key in the detail, and its bytes released.
  const b = new Wire({ cluster: "c", sender: "b", fragmentTimeoutMs: 100 });
  assert.deepEqual(b.decode(frags[0]!, "a", 0), { status: "pending" });
  assert.ok(b.pendingBytes > 0);
  b.expire(99);
  assert.ok(b.pendingBytes > 0, "not before its deadline");
  b.expire(100);
  assert.equal(b.pendingBytes, 0);
  assert.equal(b.drops.get("fragment-timeout"), 1);
  // A duplicate fragment is ignored; the message completes once, with its size.
  const c = new Wire({ cluster: "c", sender: "b" });
  let last;
  for (const f of [frags[0]!, ...frags]) last = c.decode(f, "a", 0);
  assert.equal(last?.status, "envelope");
  const total = frags.reduce((n, f) => n + f.length, 0);
  assert.ok(last?.status === "envelope" && last.bytes > 5_000 && last.bytes < total);
  assert.equal(c.pendingBytes, 0);
  // Fragments from two senders with the same id are two messages.
  const d = new Wire({ cluster: "c", sender: "b" });
  d.decode(frags[0]!, "a", 0);
  d.decode(frags[0]!, "z", 0);
  const one = frags[0]!.length;
  assert.ok(d.pendingBytes > one, "two partials held");
  // Caps: a message past maxMessageBytes at its first fragment or on the way.
  const e = new Wire({ cluster: "c", sender: "b", maxMessageBytes: 3_000 });
  const r = e.decode(frags[0]!, "a", 0);
  assert.equal(r.status, "dropped");
  assert.match(
    r.status === "dropped" ? r.detail : "",
    /^message of \d+ fragments exceeds 3000 bytes$/,
  );
  const f = new Wire({ cluster: "c", sender: "b", maxPendingBytes: one + 10 });
  f.decode(frags[0]!, "a", 0);
  assert.deepEqual(f.decode(frags[1]!, "a", 0), {
    status: "dropped",
    reason: "fragment-overflow",
    detail: `reassembly buffers full (${one + 10} bytes)`,
  });
  assert.equal(f.pendingBytes, 0, "the partial is discarded");
});

test("envelopes of every array-header size decode to the same messages, in order", () => {
  for (const n of [1, 21, 22, 23, 30, 253, 254, 255, 300, 5_000]) {
    const messages: Message[] = Array.from({ length: n }, (_, i) => ({ type: "ack", seq: i }));
    const datagrams = packDatagrams(messages, {
      cluster: "c",
      sender: "a",
      mtu: 65_507,
      nextFragmentId: () => 0,
    });
    assert.equal(datagrams.length, 1, `${n} acks in one datagram`);
    const d = decodeDatagram(datagrams[0]!, "c", 65_507);
    assert.deepEqual(d.kind === "envelope" && d.envelope.messages, messages, `${n} messages`);
  }
});

test("envelope array headers are the shortest CBOR form, byte for byte", () => {
  const headerOf = (n: number) => {
    const messages: Message[] = Array.from({ length: n }, (_, i) => ({ type: "ack", seq: i }));
    const [d] = packDatagrams(messages, {
      cluster: "c",
      sender: "a",
      mtu: 65_507,
      nextFragmentId: () => 0,
    });
    return [...d!.subarray(4, 7)];
  };
  assert.deepEqual(headerOf(1).slice(0, 1), [0x83]);
  assert.deepEqual(headerOf(21).slice(0, 1), [0x80 + 23]);
  assert.deepEqual(headerOf(22).slice(0, 2), [0x98, 24]);
  assert.deepEqual(headerOf(253).slice(0, 2), [0x98, 255]);
  assert.deepEqual(headerOf(254), [0x99, 1, 0]);
  assert.deepEqual(headerOf(300), [0x99, 302 >> 8, 302 & 0xff]);
});

test("a member message with its suspecter round-trips; the MTU must leave 64 bytes for messages", () => {
  const member: Message = {
    type: "member",
    id: "m",
    address: "10.0.0.1:7946",
    incarnation: 4,
    status: "suspect",
    by: "s",
  };
  const [d] = packDatagrams([member], {
    cluster: "c",
    sender: "a",
    mtu: 1400,
    nextFragmentId: () => 0,
  });
  const back = decodeDatagram(d!, "c", 1400);
  assert.deepEqual(back.kind === "envelope" && back.envelope.messages, [member]);
  // budget = mtu - 4 (header) - 5 (array) - cluster CBOR - sender CBOR ("a": 2 bytes).
  const pack = (cluster: string) =>
    packDatagrams([{ type: "ack", seq: 1 }], {
      cluster,
      sender: "a",
      mtu: 256,
      nextFragmentId: () => 0,
    });
  assert.equal(pack("x".repeat(179)).length, 1, "a budget of exactly 64 bytes");
  assert.throws(() => pack("x".repeat(180)), {
    name: "RangeError",
    message: "MTU of 256 bytes is too small for this cluster name and id",
  });
});

test("each field of each message names itself when refused", () => {
  const long = "x".repeat(257);
  const cases: [unknown, string][] = [
    [[C.ping, 1, ""], "target is not a string of 1 to 256 characters"],
    [[C.ping, -1, "t"], `seq is not an integer from 0 to ${Number.MAX_SAFE_INTEGER}`],
    [[C["ping-req"], -1, "t", "a"], `seq is not an integer from 0 to ${Number.MAX_SAFE_INTEGER}`],
    [[C["ping-req"], 1, long, "a"], "target is not a string of 1 to 256 characters"],
    [[C["ping-req"], 1, "t", long], "address is not a string of 1 to 256 characters"],
    [[C.member, "", "a", 0, 0], "member id is not a string of 1 to 256 characters"],
    [[C.member, "m", "", 0, 0], "address is not a string of 1 to 256 characters"],
    [
      [C.member, "m", "a", -1, 0],
      `incarnation is not an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
    ],
    [[C.member, "m", "a", 0, 0, ""], "suspecter is not a string of 1 to 256 characters"],
    [
      [C["sync-root"], new Uint8Array(8), -1],
      `count is not an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
    ],
    [
      [C["sync-want"], 0, 0, new Uint8Array(3)],
      "hashes is not a byte string of a multiple of 8 bytes",
    ],
  ];
  for (const [message, detail] of cases) {
    assert.equal(refused(envelope(message)), `malformed: ${detail}`, JSON.stringify(message));
  }
});

test("a bare header is truncated CBOR, not a short header", () => {
  const d = decodeDatagram(Uint8Array.of(MAGIC_0, MAGIC_1, PROTOCOL_VERSION, 0), "c", 100);
  assert.equal(d.kind === "dropped" && d.reason, "truncated");
  assert.match(d.kind === "dropped" ? d.detail : "", /^invalid CBOR: /);
  const junk = decodeDatagram(Uint8Array.of(MAGIC_0, MAGIC_1, PROTOCOL_VERSION, 0, 0xff), "c", 100);
  assert.equal(junk.kind === "dropped" && junk.reason, "malformed");
});

test("reassembly: a changed total restarts the message; an undecodable or oversized whole is refused", () => {
  const frag = (id: number, index: number, total: number, chunk: Uint8Array) =>
    raw(Kind.Fragment, ["c", id, index, total, chunk]);
  const w = new Wire({ cluster: "c", sender: "b" });
  const [d] = packDatagrams([{ type: "ack", seq: 7 }], {
    cluster: "c",
    sender: "a",
    mtu: 1400,
    nextFragmentId: () => 0,
  });
  const half = Math.ceil(d!.length / 2);
  // A first fragment announcing 3 parts, then the same id announcing 2: the 3-part one is dropped.
  assert.deepEqual(w.decode(frag(1, 0, 3, d!.subarray(0, half)), "a", 0), { status: "pending" });
  assert.deepEqual(w.decode(frag(1, 1, 2, d!.subarray(half)), "a", 0), { status: "pending" });
  const done = w.decode(frag(1, 0, 2, d!.subarray(0, half)), "a", 0);
  assert.equal(done.status, "envelope");
  assert.equal(w.pendingBytes, 0);
  // Parts that join into something that is not a datagram.
  const junk = w.decode(frag(2, 0, 1, Uint8Array.of(1, 2, 3, 4, 5)), "a", 0);
  assert.deepEqual(junk, {
    status: "dropped",
    reason: "bad-magic",
    detail: "reassembled: not a Gossip KV datagram",
  });
  const inner = w.decode(
    frag(3, 0, 1, raw(Kind.Fragment, ["c", 1, 0, 1, Uint8Array.of(1)])),
    "a",
    0,
  );
  assert.deepEqual(inner, {
    status: "dropped",
    reason: "malformed",
    detail: "reassembled message is not an envelope",
  });
  // Parts smaller than announced, but adding up past the cap.
  const small = new Wire({ cluster: "c", sender: "b", maxMessageBytes: 10 });
  assert.deepEqual(small.decode(frag(4, 0, 2, new Uint8Array(2)), "a", 0), { status: "pending" });
  assert.deepEqual(small.decode(frag(4, 1, 2, new Uint8Array(9)), "a", 0), {
    status: "dropped",
    reason: "oversized",
    detail: "message exceeds 10 bytes",
  });
  assert.equal(small.pendingBytes, 0);
});
