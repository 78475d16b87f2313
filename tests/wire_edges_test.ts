// Edges of the wire's codec, crypto and reassembly that the other wire tests leave out.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Entry } from "../src/core/store.ts";
import type { Message } from "../src/core/messages.ts";
import {
  decodeDatagram,
  fragment,
  header,
  HEADER_BYTES,
  Kind,
  packDatagrams,
} from "../src/wire/codec.ts";
import { generateKey, Keyring, parseKey, ReplayGuard, SEAL_OVERHEAD } from "../src/wire/crypto.ts";
import { Wire } from "../src/wire/wire.ts";

test("parseKey(): one base64 digit past a multiple of 4 is refused, padded or not", () => {
  const notBase64 = {
    name: "TypeError",
    message: "Key is not base64 (make one with: openssl rand -base64 32)",
  };
  const key = btoa(String.fromCharCode(...new Uint8Array(32).fill(7))); // 43 digits and "="
  for (const text of ["AAAAA", "AAAAA=", "AAAAA==", `${key.slice(0, 41)}==`]) {
    assert.throws(() => parseKey(text), notBase64, text);
  }
  assert.equal(parseKey(key).length, 32);
  assert.equal(parseKey(key.slice(0, 43)).length, 32, "padding optional");
});

/** A rumor of one entry, key `k`, whose value is a string of `bytes` bytes. */
function rumorOf(bytes: number): Message {
  const entry: Entry = {
    section: "usr",
    key: "k",
    value: "x".repeat(bytes),
    wall: 1,
    logical: 0,
    writer: "a",
    deleted: false,
  };
  return { type: "rumor", hop: 0, entries: [entry] };
}

/** The fragments of one rumor of a `bytes`-byte value, sent by a fresh wire (id 1). */
function fragmentsOf(bytes: number): { datagrams: Uint8Array[]; chunks: Uint8Array[] } {
  const a = new Wire({ cluster: "c", sender: "a" });
  const datagrams = a.encode([rumorOf(bytes)]);
  const chunks = datagrams.map((d) => {
    const decoded = decodeDatagram(d, "c", 1400);
    assert.equal(decoded.kind, "fragment");
    return decoded.kind === "fragment" ? decoded.fragment.chunk : new Uint8Array();
  });
  return { datagrams, chunks };
}

test("a fragment id reused with another fragment count starts the message afresh", () => {
  const first = fragmentsOf(5_000);
  const second = fragmentsOf(2_500); // the same id (1), fewer fragments
  assert.notEqual(first.datagrams.length, second.datagrams.length);
  const b = new Wire({ cluster: "c", sender: "b" });
  assert.equal(b.decode(first.datagrams[0]!, "a", 0).status, "pending");
  const results = second.datagrams.map((d) => b.decode(d, "a", 0));
  assert.deepEqual(results.map((r) => r.status), [
    ...second.datagrams.slice(1).map(() => "pending"),
    "envelope",
  ]);
  assert.equal(b.pendingBytes, 0, "the first message's partial is gone");
});

test("maxMessageBytes: a message of exactly that many bytes is reassembled, one more is not", () => {
  const { datagrams, chunks } = fragmentsOf(5_000);
  const size = chunks.reduce((n, c) => n + c.length, 0);
  const total = chunks.length;
  const chunk = chunks[0]!.length;
  const fed = (maxMessageBytes: number) => {
    const b = new Wire({ cluster: "c", sender: "b", maxMessageBytes });
    return datagrams.map((d) => b.decode(d, "a", 0));
  };
  // Exactly the message's size: whole.
  const exact = fed(size);
  assert.equal(exact.at(-1)!.status, "envelope");
  // One byte less: refused once the last fragment arrives, every earlier one held.
  const under = fed(size - 1);
  assert.deepEqual(
    under.slice(0, -1).map((r) => r.status),
    datagrams.slice(1).map(() => "pending"),
  );
  assert.deepEqual(under.at(-1), {
    status: "dropped",
    reason: "oversized",
    detail: `message exceeds ${size - 1} bytes`,
  });
  // The first fragment announces `total` chunks of its size, the last one possibly short:
  // up to one chunk more than the cap is taken on trust, past that it is refused at once.
  assert.equal(fed((total - 1) * chunk)[0]!.status, "pending");
  assert.deepEqual(fed((total - 1) * chunk - 1)[0], {
    status: "dropped",
    reason: "oversized",
    detail: `message of ${total} fragments exceeds ${(total - 1) * chunk - 1} bytes`,
  });
});

test("a datagram's envelope array header is the shortest CBOR form for its length", () => {
  const acks = (n: number): Message[] => Array.from({ length: n }, () => ({ type: "ack", seq: 0 }));
  const options = { cluster: "c", sender: "a", mtu: 1400, nextFragmentId: () => 0 };
  // [cluster, sender, ...messages]: 2 + n items, right after the 4-byte datagram header.
  for (
    const [n, head] of [
      [1, [0x83]],
      [21, [0x97]],
      [22, [0x98, 24]],
      [253, [0x98, 255]],
      [254, [0x99, 1, 0]],
      [300, [0x99, 1, 46]],
    ] as const
  ) {
    const datagrams = packDatagrams(acks(n), options);
    assert.equal(datagrams.length, 1, `${n} acks fit one datagram`);
    assert.deepEqual([...datagrams[0]!.subarray(4, 4 + head.length)], head, `${n} messages`);
    const decoded = decodeDatagram(datagrams[0]!, "c", 1400);
    assert.equal(decoded.kind === "envelope" && decoded.envelope.messages.length, n);
  }
});

test("reassembly buffers: a message fitting maxPendingBytes to the byte is held, one byte more is refused", () => {
  const { datagrams, chunks } = fragmentsOf(5_000);
  const total = chunks.length;
  // A partial message is charged 128 bytes, 8 per announced fragment, and its chunks.
  const charge = 128 + 8 * total;
  const first = charge + chunks[0]!.length;
  const full = (max: number) => `reassembly buffers full (${max} bytes)`;
  // Room for the first fragment exactly: held; the second no longer fits, and the partial
  // message is dropped with it.
  const one = new Wire({ cluster: "c", sender: "b", maxPendingBytes: first });
  assert.deepEqual(one.decode(datagrams[0]!, "a", 0), { status: "pending" });
  assert.equal(one.pendingBytes, first);
  assert.deepEqual(one.decode(datagrams[1]!, "a", 0), {
    status: "dropped",
    reason: "fragment-overflow",
    detail: full(first),
  });
  assert.equal(one.pendingBytes, 0);
  // One byte less: even the first is refused.
  const none = new Wire({ cluster: "c", sender: "b", maxPendingBytes: first - 1 });
  assert.deepEqual(none.decode(datagrams[0]!, "a", 0), {
    status: "dropped",
    reason: "fragment-overflow",
    detail: full(first - 1),
  });
  // Room for two fragments exactly: both held, a duplicate is still pending, the third refused.
  const two = new Wire({
    cluster: "c",
    sender: "b",
    maxPendingBytes: first + chunks[1]!.length,
  });
  assert.deepEqual(two.decode(datagrams[0]!, "a", 0), { status: "pending" });
  assert.deepEqual(two.decode(datagrams[1]!, "a", 0), { status: "pending" });
  assert.deepEqual(two.decode(datagrams[1]!, "a", 0), { status: "pending" }, "duplicate");
  assert.equal(two.pendingBytes, first + chunks[1]!.length);
  assert.equal(two.decode(datagrams[2]!, "a", 0).status, "dropped");
});

test("a source's partial messages are counted down as they complete, never forgotten early", () => {
  const a = new Wire({ cluster: "c", sender: "a" });
  const entry = (i: number): Entry => ({
    section: "usr",
    key: `k${i}`,
    value: "x".repeat(3_000),
    wall: 1,
    logical: 0,
    writer: "a",
    deleted: false,
  });
  const messages = [0, 1, 2, 3].map((i) =>
    a.encode([{ type: "rumor", hop: 0, entries: [entry(i)] }])
  );
  const b = new Wire({ cluster: "c", sender: "b", maxPartialsPerSource: 2 });
  assert.equal(b.decode(messages[0]![0]!, "s", 0).status, "pending");
  assert.equal(b.decode(messages[1]![0]!, "s", 0).status, "pending");
  // The first completes: one partial left, so room for one more, not two.
  const done = messages[0]!.slice(1).map((d) => b.decode(d, "s", 0));
  assert.equal(done.at(-1)!.status, "envelope");
  assert.equal(b.decode(messages[2]![0]!, "s", 0).status, "pending");
  assert.deepEqual(b.decode(messages[3]![0]!, "s", 0), {
    status: "dropped",
    reason: "fragment-overflow",
    detail: "s already has 2 partial messages (maxPartialsPerSource)",
  });
  // Another source is not affected.
  assert.equal(b.decode(messages[3]![0]!, "t", 0).status, "pending");
});

test("a WebCrypto keyring refuses an unknown key and an altered datagram, never rejecting", async () => {
  const key = generateKey();
  const ring = await Keyring.create([key], { sync: false });
  const sealed = await (await Keyring.create([key])).seal(Uint8Array.of(0x47, 0x4b, 1, 0), "c", 1);
  assert.equal((await ring.open(sealed, "c")).status, "opened");
  const unknown = sealed.slice();
  unknown.set([1, 2, 3, 4], 4); // the key id: a byte under 0x10 is written with two digits
  assert.deepEqual(await ring.open(unknown, "c"), {
    status: "dropped",
    reason: "unauthenticated",
    detail: "sealed with key 01020304, not in the keyring",
  });
  const altered = sealed.slice();
  altered[altered.length - 1]! ^= 1;
  const failed = {
    status: "dropped",
    reason: "unauthenticated",
    detail: "authentication failed (wrong key, other cluster, or altered)",
  };
  assert.deepEqual(await ring.open(altered, "c"), failed);
  assert.deepEqual(await ring.open(sealed, "other cluster"), failed);
  // The synchronous path names the key the same way.
  assert.deepEqual((await Keyring.create([key])).openSync(unknown, "c"), {
    status: "dropped",
    reason: "unauthenticated",
    detail: "sealed with key 01020304, not in the keyring",
  });
});

test("openSync(): an empty datagram's seal (SEAL_OVERHEAD bytes) opens; anything shorter is refused", async () => {
  const ring = await Keyring.create([generateKey()]);
  const sealed = ring.sealSync(new Uint8Array(0), "c", 7);
  assert.equal(sealed.length, SEAL_OVERHEAD);
  const opened = ring.openSync(sealed, "c");
  assert.equal(opened.status === "opened" && opened.datagram.length, 0);
  assert.deepEqual(ring.openSync(sealed.subarray(0, SEAL_OVERHEAD - 1), "c"), {
    status: "dropped",
    reason: "unauthenticated",
    detail: "shorter than a seal",
  });
});

test("ReplayGuard: a bad window is refused by name; it remembers at most maxEntries nonces", () => {
  for (const windowMs of [0, -1, Number.NaN]) {
    assert.throws(() => new ReplayGuard({ windowMs }), {
      name: "RangeError",
      message: `Replay window must be a positive number of ms, got ${windowMs}`,
    });
  }
  const guard = new ReplayGuard({ maxEntries: 2 });
  const nonce = (n: number) => new Uint8Array(12).fill(n);
  for (const n of [1, 2, 3]) assert.equal(guard.check(nonce(n), 1_000, 1_000), undefined);
  // Each check makes room first: with the one checked, at most two are held, so the
  // second is forgotten by now (the bound on memory), and known again once checked.
  assert.equal(guard.check(nonce(2), 1_000, 1_000), undefined);
  assert.equal(guard.check(nonce(2), 1_000, 1_000)?.detail, "nonce seen before");
});

test("fragment(): each chunk fills the MTU less the worst-case fragment framing, no more", () => {
  // Framing: the header, array(5), the cluster's CBOR, and 5 bytes each at most for the id,
  // the index, the total and the chunk's byte-string header.
  const mtu = 200;
  const chunkSize = mtu - HEADER_BYTES - 1 - 2 - 20; // cluster "c" is 2 bytes of CBOR
  const datagram = Uint8Array.from({ length: 3 * chunkSize + 1 }, (_, i) => i & 0xff);
  const parts = fragment(datagram, {
    cluster: "c",
    sender: "a",
    mtu,
    nextFragmentId: () => 0xffff_ffff, // the longest id
  });
  assert.equal(parts.length, 4);
  const chunks = parts.map((d) => {
    assert.ok(d.length <= mtu, `${d.length} bytes`);
    const decoded = decodeDatagram(d, "c", mtu);
    assert.equal(decoded.kind, "fragment");
    return decoded.kind === "fragment" ? decoded.fragment.chunk : new Uint8Array();
  });
  assert.deepEqual(chunks.map((c) => c.length), [chunkSize, chunkSize, chunkSize, 1]);
  assert.deepEqual(Uint8Array.from(chunks.flatMap((c) => [...c])), datagram);
});

test("packDatagrams(): messages filling the room exactly share one datagram, one byte more splits", () => {
  const pack = (messages: Message[], mtu: number) =>
    packDatagrams(messages, { cluster: "c", sender: "a", mtu, nextFragmentId: () => 1 });
  // A message's size: a datagram holding it alone, less the header, a 1-byte array header
  // and the CBOR of "c" and "a" (2 bytes each).
  const size = pack([rumorOf(100)], 1400)[0]!.length - HEADER_BYTES - 1 - 4;
  // The room for messages: the MTU less the header, a worst-case 5-byte array header and the
  // prefix.
  const exactly = (room: number) => room + HEADER_BYTES + 5 + 4;
  const kinds = (datagrams: Uint8Array[], mtu: number) =>
    datagrams.map((d) => {
      const decoded = decodeDatagram(d, "c", mtu);
      return decoded.kind === "envelope" ? decoded.envelope.messages.length : decoded.kind;
    });
  // One message of exactly the room: sent whole; one byte less room: fragmented.
  assert.deepEqual(kinds(pack([rumorOf(100)], exactly(size)), exactly(size)), [1]);
  const tight = exactly(size - 1);
  assert.deepEqual(kinds(pack([rumorOf(100)], tight), tight), ["fragment", "fragment"]);
  // Two messages filling the room exactly: one datagram; one byte less room: two.
  const two = exactly(2 * size);
  assert.deepEqual(kinds(pack([rumorOf(100), rumorOf(100)], two), two), [2]);
  assert.deepEqual(kinds(pack([rumorOf(100), rumorOf(100)], two - 1), two - 1), [1, 1]);
});

test("a number cut short inside its CBOR is truncated, whatever words the runtime's error uses", () => {
  // The decoder reads these through a DataView, whose error ("Offset is outside the bounds of
  // the DataView", "Out of bounds access") names no end of data: the decoder's flag decides.
  for (const body of [[0xfb, 0x40, 0x09], [0xfa, 0x40], [0x1b, 1, 2], [0x19, 1], [0x82, 0xfb, 1]]) {
    const decoded = decodeDatagram(Uint8Array.of(...header(Kind.Envelope), ...body), "c", 1400);
    assert.equal(decoded.kind === "dropped" && decoded.reason, "truncated", `${body}`);
  }
});

test("packDatagrams(): a rumor or entries message too large for one datagram is split, not fragmented", () => {
  const entries: Entry[] = Array.from({ length: 40 }, (_, i) => ({
    section: "usr",
    key: `k${i}`,
    value: "x".repeat(100),
    wall: 1,
    logical: 0,
    writer: "a",
    deleted: false,
  }));
  for (
    const message of [{ type: "rumor", hop: 0, entries }, { type: "entries", entries }] as Message[]
  ) {
    const datagrams = packDatagrams([message], {
      cluster: "c",
      sender: "a",
      mtu: 1400,
      nextFragmentId: () => 1,
    });
    assert.ok(datagrams.length > 1);
    const received = datagrams.flatMap((d) => {
      const decoded = decodeDatagram(d, "c", 1400);
      assert.equal(decoded.kind, "envelope", message.type);
      return decoded.kind === "envelope" ? decoded.envelope.messages : [];
    });
    assert.ok(received.every((m) => m.type === message.type));
    assert.deepEqual(
      received.flatMap((m) => "entries" in m ? m.entries.map((e) => e.key) : []),
      entries.map((e) => e.key),
    );
  }
});
