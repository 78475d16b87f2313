// Unit tests of the engine's parts: configuration, outbox, graveyard, large values and the
// dissemination interface.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_CONFIG, isConfigKey, resolveConfig } from "../src/core/config.ts";
import { newCounters } from "../src/core/counters.ts";
import type { Dissemination, DisseminationContext } from "../src/core/dissemination.ts";
import { Engine } from "../src/core/engine.ts";
import { Graveyard } from "../src/core/graveyard.ts";
import {
  approxSize,
  isLarge,
  LARGE_ENTRY_BYTES,
  LargeValueCooldown,
} from "../src/core/large_values.ts";
import {
  MEMBER_STATUS_RANK,
  MEMBER_STATUSES,
  type MemberMessage,
  type RumorMessage,
} from "../src/core/messages.ts";
import { MEMBER_KEY_PREFIX, memberRecord, recordAddress, validSys } from "../src/core/records.ts";
import { Outbox } from "../src/core/outbox.ts";
import { seededRandom } from "../src/core/random.ts";
import { type Entry, hashEntry, type StoredEntry } from "../src/core/store.ts";
import { meet } from "./_meet.ts";

/** An update saying member `id` (at address `id`) is alive. */
function about(id: string): MemberMessage {
  return { type: "member", id, address: id, incarnation: 0, status: "alive" };
}

function entry(key: string, wall: number, value: unknown = 1): StoredEntry {
  return hashEntry({ section: "usr", key, value, wall, logical: 0, writer: "w", deleted: false });
}

test("resolveConfig() fills defaults, ignores other fields and ties the probe timeout", () => {
  const c = resolveConfig({
    id: "x",
    fanout: 5,
    probeIntervalMs: 400,
    gossipIntervalMs: undefined,
  });
  assert.equal(c.fanout, 5);
  assert.equal(c.probeTimeoutMs, 200, "half a custom probe period");
  assert.equal(c.gossipIntervalMs, DEFAULT_CONFIG.gossipIntervalMs);
  assert.equal("id" in c, false);
  assert.ok(Object.isFrozen(c));
  assert.equal(resolveConfig({ probeIntervalMs: 400, probeTimeoutMs: 300 }).probeTimeoutMs, 300);
  assert.throws(() => resolveConfig({ fanout: 2.5 }), RangeError);
  assert.throws(() => resolveConfig({ maxDriftMs: -1 }), /maxDriftMs must be a positive number/);
  assert.throws(() => resolveConfig({ forgetAfterMs: Infinity }), RangeError);
  assert.equal(isConfigKey("fanout"), true);
  assert.equal(isConfigKey("toString"), false);
});

test("the outbox groups by address, drops messages to itself and piggybacks news of the recipient first", () => {
  const counters = newCounters();
  const outbox = new Outbox("me", 1, counters.messagesOut);
  outbox.broadcast(about("x"), 5);
  outbox.broadcast(about("b"), 5);
  outbox.send("me", { type: "ack", seq: 1 });
  outbox.send("a:1", { type: "ack", seq: 2 });
  outbox.send("b:1", { type: "ack", seq: 3 }, "b");
  outbox.send("a:1", { type: "ack", seq: 4 });
  const out = outbox.take(true);
  assert.deepEqual(out.map((o) => o.to), ["a:1", "b:1"]);
  assert.deepEqual(out[0]!.messages.map((m) => m.type), ["ack", "ack", "member"]);
  assert.equal((out[1]!.messages[1] as MemberMessage).id, "b", "news about the recipient first");
  assert.equal(counters.messagesOut.ack, 3);
  assert.equal(counters.messagesOut.member, 2);
  outbox.send("a:1", { type: "ack", seq: 5 });
  assert.deepEqual(outbox.take(false)[0]!.messages.map((m) => m.type), ["ack"]);
  assert.deepEqual(outbox.take(true), []);
});

test("the graveyard refuses versions behind a collected tombstone, and only once settled", () => {
  const grace = 1_000;
  const g = new Graveyard(grace);
  const now = 100_000;
  g.bury([entry("dead", now - 2_000)], now);
  assert.equal(g.buried(entry("dead", now - 3_000), now, true), true, "older than the tombstone");
  assert.equal(g.buried(entry("dead", now - 3_000), now, false), false, "not settled: no verdict");
  assert.equal(
    g.buried(entry("dead", now - 1_500), now, true),
    false,
    "a late write after the delete",
  );
  assert.equal(g.buried(entry("other", now - 3_000), now, true), false, "never deleted");
  assert.equal(g.buried(entry("dead", now - 500), now, true), false, "within the grace period");
  assert.equal(g.buried(entry("other", now - 20_000), now, true), true, "beyond its memory");
});

test("a large value is held back per peer for the cooldown; small ones always pass", () => {
  const cool = new LargeValueCooldown(1_000);
  const big = entry("big", 1, new Uint8Array(10_000));
  const small = entry("small", 1);
  assert.deepEqual(cool.withoutInFlight("p", [big, small], 0), [big, small]);
  assert.deepEqual(cool.withoutInFlight("p", [big, small], 500), [small]);
  assert.deepEqual(cool.withoutInFlight("q", [big], 500), [big], "another peer");
  cool.expire(1_000);
  assert.deepEqual(cool.withoutInFlight("p", [big], 1_000), [big], "after the cooldown");
});

test("another dissemination scheme replaces rumor mongering behind the interface", () => {
  const log: string[] = [];
  class Direct implements Dissemination {
    readonly #ctx: DisseminationContext;
    constructor(ctx: DisseminationContext) {
      this.#ctx = ctx;
    }
    publish(entries: readonly StoredEntry[]): void {
      log.push(`publish ${entries.map((e) => e.key)}`);
      for (const m of this.#ctx.membership.live()) {
        this.#ctx.outbox.send(m.address, { type: "rumor", hop: 7, entries }, m.id);
      }
    }
    receive(message: RumorMessage, sender: string, from: string, now: number): void {
      for (const e of message.entries) {
        log.push(`${sender} ${e.key} ${this.#ctx.mergeRemote(e, from, now)}`);
      }
    }
    endEnvelope(sender: string): void {
      log.push(`end ${sender}`);
    }
  }
  const t = 1_000_000;
  const make = (id: string) => {
    const e = new Engine(
      { id, address: id, dissemination: (c) => new Direct(c) },
      t,
      seededRandom(id),
    );
    e.start(t);
    e.flush(t); // its own record, to nobody yet
    return e;
  };
  const a = make("a"), b = make("b");
  meet(a, b, t);
  log.length = 0;
  a.write("usr", "k", 1, false, t);
  a.flush(t);
  const toB = a.takeOutput().outgoing.find((o) => o.to === "b")!;
  assert.equal(toB.messages[0]!.type, "rumor");
  assert.equal((toB.messages[0] as RumorMessage).hop, 7, "the scheme's own message");
  b.receive("a", { cluster: "c", sender: "a", messages: toB.messages }, t);
  assert.deepEqual(log, ["publish k", "a k applied", "end a"]);
  assert.equal(b.store.get("usr", "k")?.value, 1);
});

test("the defaults are the documented ones, and every field is a config key", () => {
  assert.deepEqual({ ...DEFAULT_CONFIG }, {
    fanout: 3,
    gossipIntervalMs: 500,
    probeIntervalMs: 1000,
    probeTimeoutMs: 500,
    indirectChecks: 3,
    suspicionMult: 5,
    suspicionMaxMult: 6,
    retransmitMult: 4,
    tombstoneGraceMs: 3_600_000,
    forgetAfterMs: 3_600_000,
    maxDriftMs: 60_000,
    maxPiggyback: 16,
    reconnectIntervalMs: 5_000,
    largeEntryCooldownMs: 10_000,
    ackDelayMs: 15,
    retransmitMs: 100,
  });
  assert.ok(Object.isFrozen(DEFAULT_CONFIG));
  for (const k of Object.keys(DEFAULT_CONFIG)) assert.equal(isConfigKey(k), true, k);
  assert.equal(isConfigKey("hasOwnProperty"), false);
  assert.deepEqual(resolveConfig({}), DEFAULT_CONFIG);
});

test("resolveConfig() names the field and the value it refuses", () => {
  for (const bad of [0, -5, NaN, Infinity, "5", null]) {
    assert.throws(
      () => resolveConfig({ gossipIntervalMs: bad }),
      {
        name: "RangeError",
        message: `gossipIntervalMs must be a positive number, got ${String(bad)}`,
      },
    );
  }
  assert.throws(() => resolveConfig({ fanout: 1.5 }), {
    name: "RangeError",
    message: "fanout must be a positive integer",
  });
  assert.equal(resolveConfig({ fanout: 1 }).fanout, 1);
  assert.equal(
    resolveConfig({ maxDriftMs: 0.5 }).maxDriftMs,
    0.5,
    "fractions are positive numbers",
  );
  assert.equal(resolveConfig({ probeTimeoutMs: 100 }).probeIntervalMs, 1000);
  assert.equal(resolveConfig({ probeTimeoutMs: 100 }).probeTimeoutMs, 100, "kept without a period");
});

test("every counter starts at 0, messages counted per type in both directions", () => {
  const c = newCounters();
  const types = [
    "ping",
    "ack",
    "ping-req",
    "member",
    "rumor",
    "tree",
    "ihave",
    "relay",
    "graft",
    "prune",
    "entries",
    "sync-root",
    "sync-branch",
    "sync-leaf",
    "sync-want",
    "sync-nodes",
    "sync-stamps",
    "sync-pull",
  ];
  assert.deepEqual(Object.keys(c.messagesIn), types);
  assert.deepEqual(Object.keys(c.messagesOut), types);
  for (const t of types) {
    assert.deepEqual([c.messagesIn[t as "ping"], c.messagesOut[t as "ping"]], [0, 0]);
  }
  c.messagesIn.ping++;
  assert.equal(c.messagesOut.ping, 0, "two separate records");
  assert.equal(newCounters().messagesIn.ping, 0, "a fresh record each time");
  const { messagesIn: _in, messagesOut: _out, ...rest } = c;
  assert.deepEqual(rest, {
    rumorsForwarded: 0,
    rumorEntriesNew: 0,
    rumorEntriesDuplicate: 0,
    syncRounds: 0,
    syncRoundsSkipped: 0,
    syncInSync: 0,
    syncEntriesReceived: 0,
    syncEntriesSent: 0,
    refusedClockSkew: 0,
    refusedExpired: 0,
    refusedInvalid: 0,
    tombstonesCollected: 0,
    probes: 0,
    probesFailed: 0,
    suspicions: 0,
    refutations: 0,
    candidatesProposed: 0,
    candidatesAdmitted: 0,
    candidatesRefused: 0,
    candidatesDropped: 0,
  });
});

test("member statuses are listed in order of rank", () => {
  assert.deepEqual(MEMBER_STATUSES, ["alive", "suspect", "dead", "left"]);
  assert.deepEqual(MEMBER_STATUS_RANK, { alive: 0, suspect: 1, dead: 2, left: 3 });
  assert.ok(Object.isFrozen(MEMBER_STATUSES) && Object.isFrozen(MEMBER_STATUS_RANK));
});

test("the outbox hands messages for one address alone, uncounted; piggybacks at most maxPiggyback", () => {
  const counters = newCounters();
  const outbox = new Outbox("me", 2, counters.messagesOut);
  for (const id of ["x", "y", "z"]) outbox.broadcast(about(id), 1);
  outbox.send("c", { type: "ack", seq: 1 }, "z");
  outbox.send("d", { type: "ack", seq: 2 });
  assert.deepEqual(outbox.takeFor("c"), [{ type: "ack", seq: 1 }]);
  assert.deepEqual(outbox.takeFor("c"), [], "taken");
  assert.equal(counters.messagesOut.ack, 0, "not counted");
  outbox.send("c", { type: "ack", seq: 3 });
  const out = outbox.take(true);
  assert.deepEqual(out.map((o) => o.to), ["d", "c"]);
  assert.equal(out[0]!.messages.length, 3, "the ack and two updates");
  assert.equal(out[1]!.messages.length, 2, "the ack and the one update left");
  assert.deepEqual(
    out.flatMap((o) =>
      o.messages.filter((m) => m.type === "member").map((m) => (m as MemberMessage).id)
    )
      .sort(),
    ["x", "y", "z"],
    "the id known for c was forgotten when its messages were taken",
  );
  assert.equal(counters.messagesOut.member, 3);
  outbox.send("me", { type: "ack", seq: 4 }, "me");
  assert.deepEqual(outbox.take(true), []);
});

test("the outbox forgets the id given for an address once its batch is taken", () => {
  const counters = newCounters();
  const outbox = new Outbox("me", 1, counters.messagesOut);
  outbox.send("c", { type: "ack", seq: 1 }, "z");
  assert.deepEqual(outbox.take(true)[0]!.messages, [{ type: "ack", seq: 1 }], "nothing to add");
  // Updates about z and y, z's own update piggybacked first only to the address named z.
  outbox.broadcast(about("y"), 2);
  outbox.broadcast(about("z"), 1);
  outbox.send("c", { type: "ack", seq: 2 });
  const [batch] = outbox.take(true);
  assert.deepEqual(
    batch!.messages.map((m) => (m.type === "member" ? m.id : m.type)),
    ["ack", "y"],
    "no id known for c any more: the update sent most times left goes first",
  );
});

test("the graveyard forgets graves past its memory and refuses at or below what it forgot", () => {
  const grace = 1_000;
  const g = new Graveyard(grace);
  g.bury([entry("a", 10_000), entry("b", 12_000)], 12_000);
  const at = (key: string, wall: number, now: number) => g.buried(entry(key, wall), now, true);
  assert.equal(at("a", 9_000, 20_000), true);
  assert.equal(at("a", 10_000, 20_000), true, "at the tombstone's own stamp");
  assert.equal(at("a", 10_001, 20_000), false, "a later write");
  assert.equal(at("c", 10_001, 20_000), false, "another key");
  assert.equal(at("c", 10_000, 20_000), true, "exactly ten grace periods old");
  assert.equal(at("a", 18_999, 20_000), false, "younger than the grace period: no verdict");
  assert.equal(at("a", 19_000, 20_000), false, "exactly the grace period old: no verdict");
  // Burying at 21,000 drops a's grave (past ten grace periods) without raising the floor.
  g.bury([], 21_000);
  assert.equal(at("c", 11_500, 21_000), false, "the floor did not move");
  assert.equal(at("b", 11_500, 21_000), true, "b's grave is kept");
  // A section has its own graves.
  g.bury([hashEntry({ ...entry("s", 15_000), section: "sys" })], 21_100);
  assert.equal(at("s", 14_000, 21_200), false, "a usr key of the same name");
  assert.equal(
    g.buried(hashEntry({ ...entry("s", 14_000), section: "sys" }), 21_200, true),
    true,
  );
});

test("a tombstone collected again moves its grave to its newer stamp", () => {
  const g = new Graveyard(1_000);
  g.bury([entry("k", 5_000)], 6_000);
  g.bury([entry("k", 7_000)], 8_000);
  assert.equal(g.buried(entry("k", 6_500), 9_000, true), true);
  assert.equal(g.buried(entry("k", 7_001), 9_000, true), false);
});

test("approxSize() counts strings, bytes, maps, arrays and objects, and stops past its limit", () => {
  assert.equal(approxSize("abc"), 3);
  assert.equal(approxSize(new Uint8Array(7)), 7);
  assert.equal(approxSize(5), 9);
  assert.equal(approxSize(null), 9);
  assert.equal(approxSize(undefined), 9);
  assert.equal(approxSize(true), 9);
  assert.equal(approxSize({}), 1);
  assert.equal(approxSize([]), 1);
  assert.equal(approxSize({ ab: "xyz" }), 1 + 3 + 4);
  assert.equal(approxSize(["ab", new Uint8Array(4), 1, null]), 1 + 3 + 5 + 9 + 9);
  assert.equal(approxSize(new Map([["k", "vv"]])), 1 + 2 + 3);
  assert.equal(approxSize([new Date(0)]), 1 + 9, "a date is a scalar");
  assert.equal(approxSize({ a: { b: ["c"] } }), 1 + 2 + 2 + 2);
  const huge = Array.from({ length: 100 }, () => "x".repeat(99));
  assert.equal(approxSize(huge, 250), 1 + 100 * 3, "three strings past a limit of 250");
  assert.equal(approxSize(huge), 1 + 100 * 82, "the default limit is just over 8 KiB");
});

test("a value is large from 8,193 bytes; a tombstone never is", () => {
  const e = (value: unknown, deleted = false) =>
    hashEntry({ section: "usr", key: "k", value, wall: 1, logical: 0, writer: "w", deleted });
  assert.equal(LARGE_ENTRY_BYTES, 8_192);
  assert.equal(isLarge(e("x".repeat(8_192))), false);
  assert.equal(isLarge(e("x".repeat(8_193))), true);
  assert.equal(isLarge(e(new Uint8Array(8_193), true)), false);
});

test("a cooldown ends exactly at its time, and expire() forgets only the ended ones", () => {
  const cool = new LargeValueCooldown(1_000);
  const big = entry("big", 1, new Uint8Array(10_000));
  const big2 = entry("big2", 1, new Uint8Array(10_000));
  cool.withoutInFlight("p", [big], 0);
  cool.withoutInFlight("p", [big2], 500);
  assert.deepEqual(cool.withoutInFlight("p", [big, big2], 999), []);
  assert.deepEqual(cool.withoutInFlight("p", [big, big2], 1_000), [big], "big's ended at 1000");
  // big is now cooling again until 2000, big2 until 1500.
  cool.expire(1_499);
  assert.deepEqual(cool.withoutInFlight("p", [big2], 1_499), []);
  cool.expire(1_500);
  assert.deepEqual(cool.withoutInFlight("p", [big2], 1_000), [big2], "forgotten by expire()");
  cool.expire(10_000);
  assert.deepEqual(cool.withoutInFlight("p", [big], 1_500), [big], "every cooldown forgotten");
});

test("member records: only x writes members/x; the record shows address, host, port and protocol", () => {
  const sys = (key: string, writer: string): Entry => ({
    section: "sys",
    key,
    value: {},
    wall: 1,
    logical: 0,
    writer,
    deleted: false,
  });
  assert.equal(MEMBER_KEY_PREFIX, "members/");
  assert.equal(validSys(sys("members/x", "x")), true);
  assert.equal(validSys(sys("members/x", "y")), false);
  assert.equal(validSys(sys("x", "x")), false);
  assert.equal(validSys({ ...sys("anything", "y"), section: "usr" }), true);
  assert.deepEqual(memberRecord("[::1]:7946", { runtime: "deno", port: 1 }), {
    runtime: "deno",
    address: "[::1]:7946",
    host: "::1",
    port: 7946,
    protocol: "v1",
  });
  const rec = (value: unknown) => ({ ...sys("members/x", "x"), value });
  assert.equal(recordAddress(rec({ address: "x:1" })), "x:1");
  assert.equal(recordAddress(rec({ address: "" })), undefined);
  assert.equal(recordAddress(rec({ address: 5 })), undefined);
  assert.equal(recordAddress(rec({})), undefined);
  assert.equal(recordAddress(rec(undefined)), undefined);
});

test("the outbox keeps the recipient's id across messages sent without one", () => {
  const counters = newCounters();
  const outbox = new Outbox("me", 1, counters.messagesOut);
  outbox.broadcast(about("x"), 10);
  outbox.broadcast(about("b"), 1);
  outbox.send("b:1", { type: "ack", seq: 1 }, "b");
  outbox.send("b:1", { type: "ack", seq: 2 });
  const [batch] = outbox.take(true);
  assert.equal((batch!.messages[2] as MemberMessage).id, "b", "news about b, though sent least");
});

test("the graveyard judges only entries older than the grace period, and refuses one at the tombstone's stamp", () => {
  const g = new Graveyard(1_000);
  g.bury([entry("k", 20_000)], 20_000);
  assert.equal(g.buried(entry("k", 19_500), 20_000, true), false, "younger than the grace period");
  assert.equal(g.buried(entry("k", 19_000), 20_000, true), false, "exactly the grace period old");
  assert.equal(g.buried(entry("k", 18_999), 20_000, true), true);
  const h = new Graveyard(1_000);
  h.bury([entry("k", 15_000)], 16_000);
  assert.equal(h.buried(entry("k", 15_000), 20_000, true), true, "at the tombstone's own stamp");
  assert.equal(h.buried(entry("k", 15_001), 20_000, true), false);
});

test("past 500,000 graves in a section the oldest are forgotten, and refused from then on", () => {
  const g = new Graveyard(1_000_000);
  const graves = Array.from(
    { length: 500_001 },
    (_, i) => ({ section: "usr", ka: i, wall: 1_000_000 + i }) as unknown as StoredEntry,
  );
  g.bury(graves, 2_000_000);
  const unknown = (wall: number) => g.buried(entry("never-deleted", wall), 5_000_000, true);
  assert.equal(unknown(1_000_000), true, "at or below the oldest forgotten grave");
  assert.equal(unknown(1_000_001), false, "above it: the graves kept still know");
});

test("approxSize() stops only once past its limit, and the default limit tells 8,193 bytes from 8,192", () => {
  const three = ["x".repeat(99), "x".repeat(99), "x".repeat(99)];
  assert.equal(approxSize(three, 201), 301, "201 is not past 201");
  // 1 + 3 ("yy") + 2 per "x": the size reaches 8,192 exactly, then 8,194.
  const value = [...Array.from({ length: 4_095 }, () => "x"), "yy"];
  assert.equal(approxSize(value), 8_194);
  assert.equal(isLarge(hashEntry({ ...entry("v", 1), value })), true);
});
