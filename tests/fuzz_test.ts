// Fuzzing a real member (GossipKV on a virtual-time memory network) with random, malformed
// and mutated datagrams, plaintext and sealed. What is checked is the member's own state
// (its Merkle root, its members, its drop counters), never a copy the test keeps itself.
//
// The seed changes every run and is printed; `FUZZ_SEED=<n>` replays a failure.
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { setImmediate } from "node:timers";
import { GossipKV } from "../src/gossip_kv.ts";
import type { Message } from "../src/core/messages.ts";
import { seededRandom } from "../src/core/random.ts";
import { encodeCbor } from "../src/wire/cbor.ts";
import { generateKey, Keyring } from "../src/wire/crypto.ts";
import { Wire } from "../src/wire/wire.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";

const CLUSTER = "fuzz";

function seedOf(name: string): number {
  const fixed = process.env.FUZZ_SEED;
  const seed = fixed !== undefined ? Number(fixed) : Math.floor(Math.random() * 2 ** 31);
  console.log(`${name}: seed ${seed} (FUZZ_SEED=${seed} replays this run)`);
  return seed;
}

function validMessages(): Message[][] {
  const entry = {
    section: "usr" as const,
    key: "k",
    wall: 5,
    logical: 1,
    writer: "a",
    deleted: false,
  };
  return [
    [
      { type: "ping", seq: 1, target: "b" },
      { type: "member", id: "a", address: "x", incarnation: 3, status: "alive" },
      {
        type: "rumor",
        hop: 1,
        entries: [{ ...entry, value: { nested: [1, "two", new Uint8Array([3])] } }],
      },
      { type: "sync-branch", level: 1, index: 3, children: new Uint8Array(128).fill(7) },
      { type: "entries", entries: [{ ...entry, value: new Map([["m", new Date(0)]]) }] },
    ],
    [{ type: "rumor", hop: 0, entries: [{ ...entry, key: "big", value: new Uint8Array(3000) }] }],
  ];
}

/** One member "b" on a frozen virtual clock, and a raw endpoint "x" to send it bytes from. */
async function target(keys?: string[]) {
  const net = new MemoryNetwork({ virtualTime: true });
  const time = net.time!;
  const kv = await GossipKV.start({
    id: "b",
    cluster: CLUSTER,
    transport: net.transport("b"),
    clock: time,
    scheduler: time,
    random: seededRandom(1),
    onError: (error) => {
      throw error;
    },
    ...(keys && { keys }),
  });
  const x = net.transport("x");
  x.listen(() => {});
  /** Delivers one datagram, running only what it triggers (time does not move). */
  const send = (data: Uint8Array) => {
    x.send("b", data);
    time.advance(0);
  };
  return { time, kv, x, send };
}

/** What the member holds: its Merkle root (every version, `sys` and `usr`) and its members. */
function stateOf(kv: GossipKV): string {
  return kv.syncStatus().root + JSON.stringify(kv.members());
}

function refusals(kv: GossipKV): number {
  let n = 0;
  for (const [reason, count] of Object.entries(kv.stats().dropped)) {
    // Partial messages that time out are counted apart from the datagram that refused them.
    if (reason !== "fragment-timeout") n += count ?? 0;
  }
  return n;
}

test(
  "60,000 random and mutated datagrams: a refused one never changes the member, and is counted",
  {
    timeout: 120_000,
  },
  async () => {
    const seed = seedOf("plaintext fuzz");
    const random = seededRandom(seed);
    const byte = () => Math.floor(random() * 256);
    const wire = new Wire({ cluster: CLUSTER, sender: "a" });
    const valid = validMessages().flatMap((m) => wire.encode(m));
    const { kv, send } = await target();
    const N = 60_000;
    let accepted = 0, changed = 0;
    try {
      for (let i = 0; i < N; i++) {
        let data: Uint8Array;
        const kind = i % 4;
        if (kind === 0) {
          // Pure noise.
          data = Uint8Array.from({ length: Math.floor(random() * 1400) }, byte);
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
          // A valid datagram, whole, or with a few bytes flipped, cut or extended.
          const base = valid[Math.floor(random() * valid.length)]!;
          data = base.slice();
          if (random() < 0.9) {
            const flips = 1 + Math.floor(random() * 4);
            for (let f = 0; f < flips; f++) {
              data[4 + Math.floor(random() * (data.length - 4))] = byte();
            }
          }
          if (random() < 0.2) data = data.subarray(0, Math.floor(random() * data.length));
          else if (random() < 0.1) data = Uint8Array.from([...data, byte()]);
        }
        const before = stateOf(kv), refusedBefore = refusals(kv), inBefore = kv.stats().datagramsIn;
        send(data);
        assert.equal(kv.stats().datagramsIn, inBefore + 1, `datagram ${i} did not arrive`);
        const refused = refusals(kv) - refusedBefore;
        const after = stateOf(kv);
        assert.ok(refused <= 1, `datagram ${i} counted ${refused} times`);
        if (refused === 1) {
          assert.equal(after, before, `refused datagram ${i} (kind ${kind}) changed the member`);
        }
        if (kind !== 3) {
          assert.equal(refused, 1, `garbage datagram ${i} (kind ${kind}) was not refused`);
        }
        if (refused === 0) accepted++;
        if (after !== before) changed++;
      }
    } finally {
      await kv.close({ leave: false });
    }
    // The run reached the paths that change state: mutated datagrams were accepted and applied.
    assert.ok(accepted > 100, `only ${accepted} datagrams accepted`);
    assert.ok(changed > 0, "no datagram ever changed the member");
  },
);

test(
  "sealed datagrams: forged, tampered, replayed, stale and foreign ones are refused by reason; fresh ones apply",
  {
    timeout: 120_000,
  },
  async () => {
    const seed = seedOf("sealed fuzz");
    const random = seededRandom(seed);
    const byte = () => Math.floor(random() * 256);
    const key = generateKey();
    const ring = await Keyring.create([key]);
    const stranger = await Keyring.create([generateKey()]);
    const wire = new Wire({ cluster: CLUSTER, sender: "a", mtu: 1300 });
    const { kv, time, x } = await target([key]);
    const N = 3_000;
    let fresh = 0;
    /** Sends and waits (in real time: WebCrypto is asynchronous) until the member has judged it. */
    const judge = async (data: Uint8Array, done: () => boolean, what: string) => {
      x.send("b", data);
      time.advance(0);
      for (let spins = 0; !done(); spins++) {
        if (spins > 100_000) assert.fail(`the member never judged ${what}`);
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    try {
      for (let i = 0; i < N; i++) {
        const now = time.now();
        const plain = wire.encode([{
          type: "rumor",
          hop: 0,
          entries: [{
            section: "usr",
            key: `k${i}`,
            value: i,
            wall: now,
            logical: 0,
            writer: "a",
            deleted: false,
          }],
        }])[0]!;
        const kind = i % 7;
        let data: Uint8Array, reason: string | undefined;
        if (kind === 0) {
          data = await ring.seal(plain, CLUSTER, now); // fresh and genuine: applied
        } else if (kind === 1) {
          // Tampered: a few bytes past the header flipped, each a different byte (two flips
          // of one byte by the same mask would cancel out and leave it genuine).
          data = await ring.seal(plain, CLUSTER, now);
          const flips = 1 + Math.floor(random() * 3);
          const flipped = new Set<number>();
          while (flipped.size < flips) {
            const at = 4 + Math.floor(random() * (data.length - 4));
            if (flipped.has(at)) continue;
            flipped.add(at);
            data[at]! ^= 1 + Math.floor(random() * 255);
          }
          reason = "unauthenticated";
        } else if (kind === 2) {
          data = Uint8Array.from({ length: 4 + Math.floor(random() * 1200) }, byte);
          data.set([0x47, 0x4b, 1, 2]); // a sealed header over noise
          reason = undefined; // unauthenticated, or too short to hold a seal
        } else if (kind === 3) {
          data = await stranger.seal(plain, CLUSTER, now); // another cluster's key
          reason = "unauthenticated";
        } else if (kind === 4) {
          data = await ring.seal(plain, "other", now); // sealed for another cluster name
          reason = "unauthenticated";
        } else if (kind === 5) {
          // Sealed outside the replay window, either way.
          const off = (60_001 + Math.floor(random() * 1e6)) * (random() < 0.5 ? -1 : 1);
          data = await ring.seal(plain, CLUSTER, now + off);
          reason = "replayed";
        } else {
          // A genuine datagram sent again.
          data = await ring.seal(plain, CLUSTER, now);
          await judge(data, () => kv.has(`k${i}`), `datagram ${i}, first copy`);
          fresh++;
          reason = "replayed";
        }
        const before = stateOf(kv), refusedBefore = refusals(kv);
        const droppedBefore = kv.stats().dropped;
        if (kind === 0) {
          await judge(data, () => kv.has(`k${i}`), `fresh datagram ${i}`);
          fresh++;
          assert.equal(refusals(kv), refusedBefore, `fresh datagram ${i} was refused`);
          continue;
        }
        await judge(data, () => refusals(kv) > refusedBefore, `datagram ${i} (kind ${kind})`);
        assert.equal(refusals(kv), refusedBefore + 1, `datagram ${i} counted once`);
        const dropped = kv.stats().dropped;
        const why = Object.keys(dropped).filter((r) =>
          dropped[r as "replayed"] !== droppedBefore[r as "replayed"]
        );
        if (reason) assert.deepEqual(why, [reason], `datagram ${i} (kind ${kind})`);
        assert.equal(
          stateOf(kv),
          before,
          `refused datagram ${i} (kind ${kind}) changed the member`,
        );
        assert.equal(kv.has(`k${i}`), kind === 6, `datagram ${i} (kind ${kind})`);
        if (i % 100 === 0) time.advance(1);
      }
      assert.equal(kv.size, fresh);
    } finally {
      await kv.close({ leave: false });
    }
  },
);
