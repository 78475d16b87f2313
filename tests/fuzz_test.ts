import { test } from "node:test";
import assert from "node:assert/strict";
import type { Message } from "../src/core/messages.ts";
import { Store } from "../src/core/store.ts";
import { seededRandom } from "../src/core/random.ts";
import { encodeCbor } from "../src/wire/cbor.ts";
import { Wire } from "../src/wire/wire.ts";

const CLUSTER = "fuzz";

function validDatagrams(): Uint8Array[] {
  const w = new Wire({ cluster: CLUSTER, sender: "a" });
  const entry = {
    section: "usr" as const,
    key: "k",
    wall: 5,
    logical: 1,
    writer: "a",
    deleted: false,
  };
  const messages: Message[] = [
    { type: "ping", seq: 1, target: "b" },
    { type: "member", id: "a", address: "10.0.0.1:7946", incarnation: 3, status: "alive" },
    {
      type: "rumor",
      hop: 1,
      entries: [{ ...entry, value: { nested: [1, "two", new Uint8Array([3])] } }],
    },
    { type: "sync-branch", level: 1, index: 3, children: new Uint8Array(128).fill(7) },
    { type: "entries", entries: [{ ...entry, value: new Map([["m", new Date(0)]]) }] },
  ];
  return [
    ...w.encode(messages),
    ...w.encode([{ type: "rumor", hop: 0, entries: [{ ...entry, value: new Uint8Array(3000) }] }]),
  ];
}

/** Applies what a decoded envelope carries, as a receiver would. */
function apply(store: Store, messages: readonly Message[]): void {
  for (const m of messages) {
    if (m.type === "rumor" || m.type === "entries") { for (const e of m.entries) store.merge(e); }
  }
}

test("100,000 random and mutated datagrams: nothing escapes the decoder, garbage is never applied", () => {
  const random = seededRandom(2026);
  const byte = () => Math.floor(random() * 256);
  const valid = validDatagrams();
  const wire = new Wire({ cluster: CLUSTER, sender: "b", maxPendingBytes: 1 << 20 });
  const store = new Store();
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 100_000; i++) {
    let data: Uint8Array;
    const kind = i % 4;
    if (kind === 0) {
      // Pure noise.
      data = Uint8Array.from({ length: Math.floor(random() * 1500) }, byte);
    } else if (kind === 1) {
      // A valid header over noise, so that the CBOR decoder itself is exercised.
      data = Uint8Array.from({ length: 4 + Math.floor(random() * 200) }, byte);
      data.set([0x47, 0x4b, 1, Math.floor(random() * 2)]);
    } else if (kind === 2) {
      // Well-formed CBOR of the wrong shape.
      const junk = [CLUSTER, "x", [Math.floor(random() * 40), random() < 0.5 ? -1 : "s", {
        a: byte(),
      }]];
      data = Uint8Array.of(0x47, 0x4b, 1, 0, ...encodeCbor(junk));
    } else {
      // A valid datagram with a few bytes flipped, cut or extended.
      const base = valid[Math.floor(random() * valid.length)]!;
      data = base.slice();
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) data[4 + Math.floor(random() * (data.length - 4))] = byte();
      if (random() < 0.2) data = data.subarray(0, Math.floor(random() * data.length));
    }
    const before = store.root();
    let result;
    try {
      result = wire.decode(data, `peer-${i % 7}`, i);
    } catch (error) {
      assert.fail(`decode threw on datagram ${i}: ${(error as Error).stack}`);
    }
    if (result.status === "envelope") {
      accepted++;
      // Whatever got through is well-formed: every entry is a complete, typed version.
      for (const m of result.envelope.messages) {
        if (m.type === "rumor" || m.type === "entries") {
          for (const e of m.entries) {
            assert.equal(typeof e.key, "string");
            assert.ok(Number.isSafeInteger(e.wall) && e.wall >= 0);
            assert.ok(e.deleted === (e.value === undefined) || !e.deleted);
          }
        }
      }
      apply(store, result.envelope.messages);
    } else {
      if (result.status === "dropped") refused++;
      assert.deepEqual(store.root(), before, "a refused datagram changed the store");
    }
    if (kind !== 3) {
      assert.notEqual(result.status, "envelope", `garbage datagram ${i} was accepted`);
    }
  }
  let counted = 0;
  // Partial messages that time out are counted too, apart from the datagram that refused them.
  for (const [reason, n] of wire.drops) if (reason !== "fragment-timeout") counted += n;
  assert.equal(counted, refused, "every refusal is counted");
  assert.ok(refused >= 75_000, `${refused} refused`);
  assert.ok(accepted < 25_000);
});
