// Every documented limit, tested at the limit and one past it: the replay window, the drift
// bound, the MTU, the key, id and value caps, the fragment deadline and the tombstone grace.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GossipKV } from "../src/gossip_kv.ts";
import { Engine, type EngineConfig } from "../src/core/engine.ts";
import { DEFAULT_MAX_DRIFT_MS, DEFAULT_MAX_LEAD_MS, HybridClock } from "../src/core/hlc.ts";
import type { Message } from "../src/core/messages.ts";
import { seededRandom } from "../src/core/random.ts";
import type { Entry } from "../src/core/store.ts";
import { encodeCbor } from "../src/wire/cbor.ts";
import {
  decodeDatagram,
  DEFAULT_MTU,
  MAX_ID_LENGTH,
  MAX_KEY_LENGTH,
  packDatagrams,
} from "../src/wire/codec.ts";
import { DEFAULT_REPLAY_WINDOW_MS, ReplayGuard } from "../src/wire/crypto.ts";
import { Wire } from "../src/wire/wire.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";

const T = Date.UTC(2026, 0, 1);

function usr(key: string, wall: number, extra: Partial<Entry> = {}): Entry {
  return {
    section: "usr",
    key,
    value: key,
    wall,
    logical: 0,
    writer: "w",
    deleted: false,
    ...extra,
  };
}

function engine(id: string, now: number, options: Partial<EngineConfig> = {}): Engine {
  const e = new Engine({ id, address: id, ...options }, now, seededRandom(id));
  e.start(now);
  e.takeOutput();
  return e;
}

/** Hands `entries` to `e` as a rumor from member "peer". */
function rumor(e: Engine, entries: Entry[], now: number): void {
  e.receive("peer", {
    cluster: "c",
    sender: "peer",
    messages: [{ type: "rumor", hop: 0, entries }],
  }, now);
}

// ---------------------------------------------------------------------------- replay window

test("the replay window admits a datagram sealed exactly at its edge, either way, and refuses 1 ms past", () => {
  for (const windowMs of [DEFAULT_REPLAY_WINDOW_MS, 1, 5_000]) {
    const guard = new ReplayGuard(windowMs === DEFAULT_REPLAY_WINDOW_MS ? {} : { windowMs });
    assert.equal(guard.windowMs, windowMs);
    let n = 0;
    const nonce = () => Uint8Array.of(n >> 8, n++ & 0xff, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7);
    for (const sign of [-1, 1]) {
      assert.equal(guard.check(nonce(), T + sign * windowMs, T), undefined, `${sign} at the edge`);
      assert.equal(guard.check(nonce(), T + sign * (windowMs - 1), T), undefined);
      const past = guard.check(nonce(), T + sign * (windowMs + 1), T);
      assert.equal(past?.reason, "replayed", `${sign}, 1 ms past a ${windowMs} ms window`);
    }
  }
});

test("within the window a nonce is refused the second time, at the very edge too", () => {
  const guard = new ReplayGuard({ windowMs: 1000 });
  const nonce = new Uint8Array(12).fill(3);
  assert.equal(guard.check(nonce, T - 1000, T), undefined);
  assert.equal(guard.check(nonce, T - 1000, T)?.detail, "nonce seen before");
  // Remembered until its own window closes: still refused at the last admissible ms.
  assert.equal(guard.check(nonce, T - 1000, T)?.reason, "replayed");
});

test("a replay window that is not a positive number of ms is refused", () => {
  for (const windowMs of [0, -1, Number.NaN, Infinity]) {
    assert.throws(() => new ReplayGuard({ windowMs }), RangeError);
  }
  assert.equal(new ReplayGuard({ windowMs: 0.5 }).windowMs, 0.5);
});

// ---------------------------------------------------------------------------- drift bound

test("the clock accepts a stamp exactly at the drift bound and refuses one 1 ms past it", () => {
  for (const maxDriftMs of [DEFAULT_MAX_DRIFT_MS, 0, 1_000]) {
    const clock = new HybridClock(maxDriftMs === DEFAULT_MAX_DRIFT_MS ? {} : { maxDriftMs });
    assert.equal(clock.observe({ wall: T + maxDriftMs + 1, logical: 0 }, T), false);
    assert.ok(clock.last.wall < T + maxDriftMs + 1, "a refused stamp is not adopted");
    assert.equal(clock.observe({ wall: T + maxDriftMs, logical: 5 }, T), true);
    // Adopted up to the lead bound (1 s): past it, the clock stops at the bound.
    const lead = Math.min(maxDriftMs, DEFAULT_MAX_LEAD_MS);
    assert.deepEqual(
      clock.last,
      maxDriftMs <= lead ? { wall: T + maxDriftMs, logical: 5 } : { wall: T + lead, logical: 0 },
    );
  }
});

test("a member applies a remote write at the drift bound and refuses, and counts, one 1 ms past", () => {
  const e = engine("a", T);
  rumor(e, [usr("edge", T + DEFAULT_MAX_DRIFT_MS), usr("past", T + DEFAULT_MAX_DRIFT_MS + 1)], T);
  assert.equal(e.store.get("usr", "edge")?.wall, T + DEFAULT_MAX_DRIFT_MS);
  assert.equal(e.store.get("usr", "past"), undefined);
  assert.equal(e.counters.refusedClockSkew, 1);
});

// ---------------------------------------------------------------------------- MTU

test("the MTU is accepted from 256 to 65,507 bytes and refused one byte outside", () => {
  for (const mtu of [256, DEFAULT_MTU, 65_507]) {
    assert.equal(new Wire({ cluster: "c", sender: "a", mtu }).mtu, mtu);
  }
  for (const mtu of [255, 65_508, 1400.5]) {
    assert.throws(() => new Wire({ cluster: "c", sender: "a", mtu }), RangeError);
  }
});

test("a datagram of exactly the size limit is decoded, one byte more is oversized", () => {
  const [d] = packDatagrams([{ type: "ping", seq: 1, target: "b" }], {
    cluster: "c",
    sender: "a",
    mtu: DEFAULT_MTU,
    nextFragmentId: () => 1,
  });
  assert.equal(decodeDatagram(d!, "c", d!.length).kind, "envelope");
  const over = decodeDatagram(d!, "c", d!.length - 1);
  assert.equal(over.kind === "dropped" && over.reason, "oversized");
});

test("values of every length up to 3 MTUs: every datagram fits, the largest whole ones fill it", () => {
  for (const mtu of [256, DEFAULT_MTU]) {
    let largestWhole = 0;
    const sender = new Wire({ cluster: "c", sender: "a", mtu });
    const receiver = new Wire({ cluster: "c", sender: "b", mtu });
    for (let length = 0; length <= 3 * mtu; length++) {
      const entry = { ...usr("k", T), value: "v".repeat(length) };
      const datagrams = sender.encode([{ type: "rumor", hop: 0, entries: [entry] }]);
      let got: readonly Message[] = [];
      for (const d of datagrams) {
        assert.ok(d.length <= mtu, `${d.length} bytes over an MTU of ${mtu}`);
        const r = receiver.decode(d, "a", T);
        if (r.status === "envelope") got = r.envelope.messages;
      }
      assert.deepEqual(got, [{ type: "rumor", hop: 0, entries: [entry] }], `length ${length}`);
      if (datagrams.length === 1) largestWhole = Math.max(largestWhole, datagrams[0]!.length);
    }
    // Fragmenting starts only within a few bytes of the MTU (the envelope's worst-case header).
    assert.ok(largestWhole >= mtu - 8, `largest whole datagram ${largestWhole} of ${mtu}`);
  }
});

test("the memory network refuses a datagram one byte over its MTU", () => {
  const net = new MemoryNetwork({ mtu: 300 });
  const a = net.transport("a");
  net.transport("b").listen(() => {});
  a.send("b", new Uint8Array(300));
  assert.throws(() => a.send("b", new Uint8Array(301)), RangeError);
});

// ---------------------------------------------------------------------------- key, id and value caps

/** One rumor datagram carrying `entry`, decoded with a generous size limit. */
function decodeEntry(entry: Entry, sender = "a") {
  const datagrams = packDatagrams([{ type: "rumor", hop: 0, entries: [entry] }], {
    cluster: "c",
    sender,
    mtu: 65_507,
    nextFragmentId: () => 1,
  });
  assert.equal(datagrams.length, 1);
  return decodeDatagram(datagrams[0]!, "c", 65_507);
}

test("keys of exactly MAX_KEY_LENGTH characters travel; one more is malformed", () => {
  assert.equal(decodeEntry(usr("k".repeat(MAX_KEY_LENGTH), T)).kind, "envelope");
  const past = decodeEntry(usr("k".repeat(MAX_KEY_LENGTH + 1), T));
  assert.equal(past.kind === "dropped" && past.reason, "malformed");
});

test("member ids of exactly MAX_ID_LENGTH characters travel; one more is malformed", () => {
  const id = "i".repeat(MAX_ID_LENGTH);
  assert.equal(decodeEntry(usr("k", T, { writer: id }), id).kind, "envelope");
  const writer = decodeEntry(usr("k", T, { writer: id + "i" }), id);
  assert.equal(writer.kind === "dropped" && writer.reason, "malformed");
  const sender = decodeEntry(usr("k", T), id + "i");
  assert.equal(sender.kind === "dropped" && sender.reason, "malformed");
});

test("set() takes a key of MAX_KEY_LENGTH and a value of exactly maxValueBytes, and refuses one more", async () => {
  const net = new MemoryNetwork();
  const kv = await GossipKV.start({ id: "a", transport: net.transport("a"), maxValueBytes: 2000 });
  try {
    await kv.set("k".repeat(MAX_KEY_LENGTH), 1);
    await assert.rejects(kv.set("k".repeat(MAX_KEY_LENGTH + 1), 1), TypeError);
    // A string of n > 255 characters encodes as n + 3 bytes of CBOR.
    const fits = "x".repeat(1997);
    assert.equal(encodeCbor(fits).length, 2000);
    await kv.set("fits", fits);
    assert.equal(kv.get("fits"), fits);
    await assert.rejects(kv.set("over", fits + "x"), RangeError);
    assert.equal(kv.has("over"), false);
    const bytes = new Uint8Array(2000 - encodeCbor(new Uint8Array(2000)).length + 2000);
    assert.equal(encodeCbor(bytes).length, 2000);
    await kv.set("bytes", bytes);
    await assert.rejects(kv.set("bytes over", new Uint8Array(bytes.length + 1)), RangeError);
  } finally {
    await kv.close({ leave: false });
  }
});

// ---------------------------------------------------------------------------- fragment deadline

test("a message completed 1 ms before the fragment deadline is delivered; at the deadline it is dropped", () => {
  for (const timeout of [10_000, 500]) {
    const options = timeout === 10_000 ? {} : { fragmentTimeoutMs: timeout };
    const sender = new Wire({ cluster: "c", sender: "a" });
    const entry = { ...usr("big", T), value: "b".repeat(5_000) };
    const fragments = sender.encode([{ type: "rumor", hop: 0, entries: [entry] }]);
    assert.ok(fragments.length >= 4, `${fragments.length} fragments`);
    for (const late of [timeout - 1, timeout]) {
      const receiver = new Wire({ cluster: "c", sender: "b", ...options });
      assert.equal(receiver.fragmentTimeoutMs, timeout);
      assert.equal(receiver.decode(fragments[0]!, "a", T).status, "pending");
      const last = fragments.slice(1).map((f) => receiver.decode(f, "a", T + late)).at(-1);
      const expired = receiver.drops.get("fragment-timeout") ?? 0;
      if (late < timeout) {
        assert.equal(last?.status, "envelope", `completed ${late} ms after the first fragment`);
        assert.equal(expired, 0);
        assert.equal(receiver.pendingBytes, 0);
      } else {
        assert.equal(last?.status, "pending", "a message whose first fragment expired");
        assert.equal(expired, 1);
      }
    }
  }
});

// ---------------------------------------------------------------------------- tombstone grace

const GRACE = 60_000;

test("a tombstone is kept for exactly the grace period and collected 1 ms after", () => {
  for (const after of [GRACE, GRACE + 1]) {
    const e = engine("a", T, { tombstoneGraceMs: GRACE });
    e.write("usr", "k", 1, false, T);
    e.write("usr", "k", undefined, true, T + 1);
    const deletedAt = e.store.get("usr", "k")!.wall;
    e.takeOutput();
    e.tick(deletedAt + after);
    const collected = after > GRACE;
    assert.equal(e.store.tombstoneCount, collected ? 0 : 1, `${after} ms after the delete`);
    assert.equal(e.counters.tombstonesCollected, collected ? 1 : 0);
    assert.deepEqual(e.takeOutput().collected.map((t) => t.key), collected ? ["k"] : []);
  }
});

test("a member judges old entries only once up for the grace period, and from the graveyard's horizon", () => {
  const GRACES = 10; // how many grace periods the graveyard remembers
  // Up for 1 ms less than the grace period: not settled, an ancient write is accepted.
  const fresh = engine("a", T, { tombstoneGraceMs: GRACE });
  rumor(fresh, [usr("ancient", T + GRACE - 1 - GRACES * GRACE - 5)], T + GRACE - 1);
  assert.equal(fresh.settled(T + GRACE - 1), false);
  assert.equal(fresh.counters.refusedExpired, 0);
  assert.ok(fresh.store.get("usr", "ancient"));

  const now = T + GRACE;
  const e = engine("b", T, { tombstoneGraceMs: GRACE });
  assert.equal(e.settled(now), true);
  rumor(e, [
    usr("young", now - GRACE), // exactly the grace period old: cannot be behind a tombstone
    usr("unknown", now - GRACES * GRACE + 1), // older, but younger than the graveyard's memory
    usr("beyond", now - GRACES * GRACE), // at the graveyard's horizon: refused
  ], now);
  assert.ok(e.store.get("usr", "young"));
  assert.ok(e.store.get("usr", "unknown"));
  assert.equal(e.store.get("usr", "beyond"), undefined);
  assert.equal(e.counters.refusedExpired, 1);
});
