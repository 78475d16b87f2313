// Unit tests of the engine (src/core/engine.ts) and of rumor mongering
// (src/core/dissemination.ts) one input at a time, without a cluster: what each input
// applies, refuses, reports and queues, with exact counters and messages.
import { test } from "node:test";
import assert from "node:assert/strict";
import { memberRecord } from "./_swim.ts";
import { resolveConfig } from "../src/core/config.ts";
import { newCounters } from "../src/core/counters.ts";
import {
  type Dissemination,
  type DisseminationContext,
  RumorMongering,
} from "../src/core/dissemination.ts";
import {
  type Change,
  changeOf,
  Engine,
  type EngineOptions,
  type EngineOutput,
} from "../src/core/engine.ts";
import { LargeValueCooldown } from "../src/core/large_values.ts";
import { Membership } from "../src/core/membership.ts";
import type {
  EntriesMessage,
  Envelope,
  MemberMessage,
  Message,
  RumorMessage,
} from "../src/core/messages.ts";
import { Outbox } from "../src/core/outbox.ts";
import { seededRandom } from "../src/core/random.ts";
import { type Entry, Store } from "../src/core/store.ts";
import { syncReply, syncRoot } from "../src/core/sync.ts";
import { meet } from "./_meet.ts";

const rumors = (c: DisseminationContext) => new RumorMongering(c);

/** Engine `id` at address `id:1`, spreading writes by rumor mongering. */
function engine(id: string, options: Partial<EngineOptions> = {}, now = 0): Engine {
  return new Engine(
    { id, address: `${id}:1`, dissemination: rumors, ...options },
    now,
    seededRandom(id),
  );
}

const envelope = (sender: string, messages: Message[] = []): Envelope => ({
  cluster: "c",
  sender,
  messages,
});

const usr = (key: string, value: unknown, wall: number, writer = "w", logical = 0): Entry => ({
  section: "usr",
  key,
  value,
  wall,
  logical,
  writer,
  deleted: false,
});

const record = memberRecord;

/** Messages of the given type in an output, with where they go. */
/** The {@linkcode Change} objects of an output, as GossipKV hands them to its listeners. */
function changesOf(out: EngineOutput): Change[] {
  const local = new Set(out.localChanged);
  return out.changed.map((e, i) => changeOf(e, local.has(i) ? "local" : "remote"));
}

function outgoing(e: Engine, type?: Message["type"]): [string, Message][] {
  return e.takeOutput().outgoing.flatMap((o) =>
    o.messages.filter((m) => type === undefined || m.type === type).map((m) =>
      [o.to, m] as [string, Message]
    )
  );
}

/** The ping `e` queued for address `to` (taking the output), or `undefined`. */
function pingTo(e: Engine, to: string): { seq: number; target: string } | undefined {
  const found = outgoing(e, "ping").find(([address]) => address === to);
  return found?.[1] as { seq: number; target: string } | undefined;
}

test("a member id is 1 to 256 characters", () => {
  const message = "Member id must be a string of 1 to 256 characters";
  assert.throws(() => engine(""), { name: "TypeError", message });
  assert.throws(() => engine("x".repeat(257)), { name: "TypeError", message });
  assert.throws(() => engine(7 as unknown as string), { name: "TypeError", message });
  assert.equal(engine("x".repeat(256)).id.length, 256);
  const e = engine("a", { fanout: 5 }, 1234);
  assert.deepEqual([e.id, e.address, e.config.fanout, e.startedAt], ["a", "a:1", 5, 1234]);
  assert.throws(() => engine("a", { fanout: 0 }), RangeError);
});

test("start() writes the member's own record and greets every seed but itself", () => {
  const e = engine("a", { seeds: ["s:1", "a:1", "t:1"], meta: { runtime: "test" } }, 1_000);
  e.start(1_000);
  const own = e.memberRecord("a")!;
  assert.deepEqual(own.value, {
    runtime: "test",
    address: "a:1",
    host: "a",
    port: 1,
    protocol: "v1",
    sync: 2,
  });
  assert.deepEqual([own.writer, own.wall, own.deleted], ["a", 1_000, false]);
  const out = e.takeOutput();
  assert.deepEqual(out.applied, [own]);
  assert.deepEqual(changesOf(out), [], "a sys record is no user change");
  assert.deepEqual(out.outgoing.map((o) => o.to), ["s:1", "t:1"]);
  const hello: MemberMessage = {
    type: "member",
    id: "a",
    address: "a:1",
    incarnation: 0,
    status: "alive",
  };
  for (const o of out.outgoing) assert.deepEqual(o.messages, [hello, syncRoot(e.store)]);
  e.flush(1_000);
  assert.deepEqual(e.takeOutput().outgoing, [], "the record is not left pending as a rumor");
});

test("seeds can be replaced, and the engine keeps its own copy", () => {
  const seeds = ["s:1"];
  const e = engine("a", { seeds });
  seeds.push("t:1");
  assert.deepEqual(e.seeds, ["s:1"]);
  const next = ["u:1"];
  e.setSeeds(next);
  next.push("v:1");
  assert.deepEqual(e.seeds, ["u:1"]);
  assert.deepEqual(engine("b").seeds, []);
});

test("a local write is applied at once, reported, and pushed once at the next flush", () => {
  const a = engine("a", { fanout: 3 });
  a.start(0);
  meet(a, "b");
  const first = a.write("usr", "k", 1, false, 10);
  const second = a.write("usr", "k", 2, false, 11);
  const gone = a.write("usr", "j", "ignored", true, 12);
  assert.equal(gone.value, undefined, "a tombstone holds no value");
  const out = a.takeOutput();
  assert.deepEqual(out.applied, [first, second, gone]);
  assert.deepEqual(changesOf(out).map((c) => [c.key, c.value, c.deleted, c.origin, c.writer]), [
    ["k", 1, false, "local", "a"],
    ["k", 2, false, "local", "a"],
    ["j", undefined, true, "local", "a"],
  ]);
  assert.deepEqual(changesOf(out).map((c) => [c.wall, c.logical]), [[10, 0], [11, 0], [12, 0]]);
  assert.deepEqual(out.outgoing, [], "nothing sent before the flush");
  a.flush(12);
  const pushed = outgoing(a, "rumor");
  assert.deepEqual(pushed.map(([to]) => to), ["b:1"]);
  assert.deepEqual((pushed[0]![1] as RumorMessage).entries, [second, gone]);
  assert.equal((pushed[0]![1] as RumorMessage).hop, 0);
  a.flush(13);
  assert.deepEqual(outgoing(a), [], "nothing pending");
});

test("writes made before any member is admitted are held, and pushed by the envelope that admits the first", () => {
  const a = engine("a", { seeds: ["b:1"] });
  a.start(0);
  a.takeOutput();
  const first = a.write("usr", "k", 1, false, 1);
  a.flush(1);
  assert.deepEqual(outgoing(a), [], "nobody to push to");
  // The seed answers the greeting: a candidate, pinged, until it answers the ping.
  a.receive("b:1", envelope("b"), 2);
  const out = outgoing(a);
  assert.deepEqual(out.filter(([, m]) => m.type === "rumor"), [], "still nobody");
  const [, ping] = out.find(([to, m]) => to === "b:1" && m.type === "ping")! as [
    string,
    { seq: number },
  ];
  const second = a.write("usr", "j", 2, false, 3);
  a.flush(3);
  a.receive("b:1", envelope("b", [{ type: "ack", seq: ping.seq }]), 4);
  const pushed = outgoing(a, "rumor");
  assert.deepEqual(pushed.map(([to]) => to), ["b:1"]);
  assert.deepEqual((pushed[0]![1] as RumorMessage).entries, [first, second]);
  a.flush(5);
  assert.deepEqual(outgoing(a), [], "pushed once");
});

test("a member alone holds its newest 1,024 writes for the first member admitted", () => {
  const a = engine("a");
  a.start(0);
  a.takeOutput();
  for (let i = 0; i < 1_030; i++) {
    a.write("usr", `k${i}`, i, false, 1 + i);
    a.flush(1 + i);
  }
  a.write("usr", "k1029", "again", false, 2_000); // the held version superseded
  a.receive("b:1", envelope("b"), 2_001);
  const [, ping] = outgoing(a, "ping").find(([to]) => to === "b:1")! as [string, { seq: number }];
  a.receive("b:1", envelope("b", [{ type: "ack", seq: ping.seq }]), 2_002);
  const entries = outgoing(a, "rumor").filter(([to]) => to === "b:1")
    .flatMap(([, m]) => (m as RumorMessage).entries);
  assert.equal(entries.length, 1_024);
  assert.deepEqual(entries.slice(0, 2).map((e) => e.key), ["k6", "k7"], "the oldest dropped");
  assert.deepEqual([entries.at(-1)!.key, entries.at(-1)!.value], ["k1029", "again"]);
  assert.equal(entries.filter((e) => e.key === "k1029").length, 1, "current versions only");
  a.flush(2_003);
  assert.deepEqual(outgoing(a, "rumor"), [], "pushed once");
});

test("a write superseded by a remote version before the flush is not pushed", () => {
  const a = engine("a");
  a.start(0);
  meet(a, "b");
  a.write("usr", "k", 1, false, 10);
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [usr("k", 2, 20, "b")] }]), 20);
  a.takeOutput();
  a.flush(20);
  assert.deepEqual(outgoing(a, "rumor"), []);
});

test("a member ignores its own looped-back datagrams, and every input once it left", () => {
  const a = engine("a");
  a.start(0);
  a.receive("a:1", envelope("a", [{ type: "ping", seq: 1, target: "a" }]), 1);
  assert.equal(a.counters.messagesIn.ping, 0);
  assert.equal([...a.members()].length, 1);
  a.leave(2);
  assert.equal(a.left, true);
  a.receive("b:1", envelope("b", [{ type: "ping", seq: 1, target: "a" }]), 3);
  assert.equal(a.counters.messagesIn.ping, 0);
  assert.equal([...a.members()].length, 1, "nobody learned after leaving");
  assert.deepEqual(a.serveClient([syncRoot(new Store())], 3), []);
  assert.equal(a.counters.messagesIn["sync-root"], 0);
});

test("each message goes to its part, and is counted by type", () => {
  const a = engine("a", { probeIntervalMs: 1_000 });
  a.start(0);
  meet(a, "b");
  meet(a, "c");
  const acks = a.counters.messagesIn.ack;
  a.receive("b:1", envelope("b", [{ type: "ping", seq: 5, target: "a" }]), 1);
  assert.deepEqual(outgoing(a), [["b:1", { type: "ack", seq: 5 }]]);
  a.receive("b:1", envelope("b", [{ type: "ping-req", seq: 6, target: "c", address: "c:1" }]), 2);
  const [[to, ping]] = outgoing(a) as unknown as [[string, { type: "ping"; seq: number }]];
  assert.deepEqual([to, ping.type], ["c:1", "ping"]);
  a.receive("c:1", envelope("c", [{ type: "ack", seq: ping.seq }]), 3);
  assert.deepEqual(outgoing(a), [["b:1", { type: "ack", seq: 6 }]], "the ack relayed");
  a.receive(
    "b:1",
    envelope("b", [{ type: "member", id: "d", address: "d:1", incarnation: 2, status: "alive" }]),
    4,
  );
  assert.equal(a.membership.candidate("d")?.incarnation, 2, "a candidate until it answers");
  assert.ok(pingTo(a, "d:1"), "pinged at its address");
  a.receive("b:1", envelope("b", [{ type: "rumor", hop: 0, entries: [usr("r", 1, 5)] }]), 5);
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [usr("e", 1, 5)] }]), 5);
  assert.deepEqual([a.entry("usr", "r")?.value, a.entry("usr", "e")?.value], [1, 1]);
  a.takeOutput();
  a.receive("b:1", envelope("b", [syncRoot(new Store())]), 6);
  assert.ok(
    outgoing(a).some(([to, m]) =>
      to === "b:1" && (m.type === "entries" || m.type.startsWith("sync-"))
    ),
    "answered",
  );
  assert.deepEqual(
    [
      a.counters.messagesIn.ping,
      a.counters.messagesIn["ping-req"],
      a.counters.messagesIn.ack - acks,
      a.counters.messagesIn.member,
      a.counters.messagesIn.rumor,
      a.counters.messagesIn.entries,
      a.counters.messagesIn["sync-root"],
    ],
    [1, 1, 1, 1, 1, 1, 1],
  );
});

test("the dissemination scheme sees its messages, the end of each envelope and member changes", () => {
  const log: string[] = [];
  class Logging implements Dissemination {
    publish(): void {}
    receive(m: Message, sender: string, from: string): void {
      log.push(`${m.type} ${sender} ${from}`);
    }
    endEnvelope(sender: string): void {
      log.push(`end ${sender}`);
    }
    memberChanged(id: string): void {
      log.push(`member ${id}`);
    }
    nextWakeAt(): number {
      return 7;
    }
  }
  const a = engine("a", { dissemination: () => new Logging() }, 0);
  assert.equal(a.nextWakeAt(), 7, "the scheme's wake counts");
  assert.ok(engine("b").nextWakeAt() > 7, "a scheme without one does not");
  a.start(0);
  const kinds: Message[] = [
    { type: "rumor", hop: 0, entries: [] },
    { type: "tree", origin: "o", seq: 1, hop: 0, entries: [] },
    { type: "ihave", origin: "o", hop: 0, seqs: [1] },
    { type: "graft", origin: "o", seqs: [1] },
    { type: "prune", origin: "o" },
  ];
  a.receive("b:1", envelope("b", kinds), 1);
  assert.deepEqual(log, [
    "rumor b b:1",
    "tree b b:1",
    "ihave b b:1",
    "graft b b:1",
    "prune b b:1",
    "end b",
  ], "b is a candidate: no member change yet");
  log.length = 0;
  const ping = pingTo(a, "b:1")!;
  a.receive("b:1", envelope("b", [{ type: "ack", seq: ping.seq }]), 2);
  assert.deepEqual(log, ["member b", "end b"], "admitted once it answers");
});

test("a remote entry too far ahead of the clock is refused and counted", () => {
  const a = engine("a", { maxDriftMs: 1_000 });
  a.start(0);
  a.takeOutput();
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [usr("k", 1, 10_001)] }]), 9_000);
  assert.equal(a.entry("usr", "k"), undefined);
  assert.equal(a.counters.refusedClockSkew, 1);
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [usr("k", 1, 10_000)] }]), 9_000);
  assert.equal(a.entry("usr", "k")?.value, 1);
  const out = a.takeOutput();
  assert.deepEqual(changesOf(out).map((c) => [c.key, c.origin, c.writer]), [["k", "remote", "w"]]);
  assert.deepEqual(out.applied, [a.entry("usr", "k")]);
});

test("one output's changes interleave local writes and remote merges in order", () => {
  const a = engine("a");
  a.start(0);
  a.takeOutput();
  a.write("usr", "mine", 1, false, 5);
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [usr("theirs", 2, 6)] }]), 6);
  a.write("usr", "mine", undefined, true, 7);
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [usr("old", 3, 1)] }]), 7);
  const out = a.takeOutput();
  // The versions stored, themselves (the first "mine" was replaced by its tombstone).
  assert.equal(out.changed.length, 4);
  assert.equal(out.changed[1], a.entry("usr", "theirs"));
  assert.equal(out.changed[2], a.entry("usr", "mine"));
  assert.equal(out.changed[3], a.entry("usr", "old"));
  assert.deepEqual(out.localChanged, [0, 2]);
  assert.deepEqual(changesOf(out).map((c) => [c.key, c.origin, c.deleted, c.value, c.writer]), [
    ["mine", "local", false, 1, "a"],
    ["theirs", "remote", false, 2, "w"],
    ["mine", "local", true, undefined, "a"],
    ["old", "remote", false, 3, "w"],
  ]);
  assert.deepEqual(
    changesOf(out).map((c) => [c.wall, c.logical]),
    out.changed.map((e) => [e.wall, e.logical]),
  );
  assert.deepEqual(changesOf(a.takeOutput()), [], "taken once");
});

test("a member record written by another member is refused and counted", () => {
  const a = engine("a");
  a.start(0);
  a.receive("b:1", envelope("b"), 0);
  const forged = { ...record("x", 5), writer: "b" };
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [forged] }]), 10);
  assert.equal(a.memberRecord("x"), undefined);
  assert.equal(a.counters.refusedInvalid, 1);
  assert.equal(a.membership.get("x"), undefined);
  assert.equal(a.membership.candidate("x"), undefined, "not even a candidate");
});

test("another member's record makes it known; a known one moves to its record's address once it answers there", () => {
  const a = engine("a");
  a.start(0);
  a.takeOutput();
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [record("x", 5)] }]), 10);
  assert.equal(a.membership.get("x"), undefined, "a candidate until it answers");
  const ping = pingTo(a, "x:1")!;
  assert.equal(ping.target, "x");
  a.receive("x:1", envelope("x", [{ type: "ack", seq: ping.seq }]), 10);
  const x = a.membership.get("x")!;
  assert.deepEqual([x.address, x.status, x.incarnation, x.since], ["x:1", "alive", 0, 10]);
  const changes = a.takeOutput().memberChanges;
  assert.deepEqual(changes.filter((c) => c.id === "x").length, 1);
  assert.deepEqual(changes.find((c) => c.id === "x"), {
    id: "x",
    address: "x:1",
    status: "alive",
    incarnation: 0,
    previous: undefined,
  });
  a.receive(
    "b:1",
    envelope("b", [{ type: "entries", entries: [record("x", 6, { address: "x:2" })] }]),
    11,
  );
  assert.equal(a.membership.get("x"), x);
  assert.equal(x.address, "x:1", "until the new address answers for x");
  const move = pingTo(a, "x:2")!;
  assert.equal(move.target, "x");
  a.receive("x:2", envelope("x", [{ type: "ack", seq: move.seq + 1 }]), 11);
  assert.equal(x.address, "x:1", "not on a wrong sequence number");
  a.receive("x:2", envelope("x", [{ type: "ack", seq: move.seq }]), 11);
  assert.equal(a.membership.get("x"), x);
  assert.equal(x.address, "x:2");
  assert.deepEqual(a.takeOutput().memberChanges.filter((c) => c.id === "x"), []);
  // Records naming no address, and deleted records, make nobody known.
  a.receive(
    "b:1",
    envelope("b", [{ type: "entries", entries: [record("y", 5, { port: 1 })] }]),
    12,
  );
  a.receive(
    "b:1",
    envelope("b", [{
      type: "entries",
      entries: [{ ...record("z", 5), value: undefined, deleted: true }],
    }]),
    12,
  );
  assert.equal(a.membership.get("y"), undefined);
  assert.equal(a.membership.get("z"), undefined);
  assert.ok(a.memberRecord("z")?.deleted, "the tombstone is kept all the same");
});

test("a member whose own record was deleted or readdressed elsewhere writes it again, unless it left", () => {
  const a = engine("a");
  a.start(0);
  const own = a.memberRecord("a")!;
  const tomb = {
    ...record("a", 0),
    wall: own.wall,
    logical: own.logical + 1,
    value: undefined,
    deleted: true,
  };
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [tomb] }]), 50);
  const again = a.memberRecord("a")!;
  assert.equal(again.deleted, false);
  assert.ok(again.wall === 50 || again.logical > tomb.logical);
  assert.deepEqual((again.value as { address: string }).address, "a:1");
  // A version of its record it did not write, naming another address: written again too.
  const forged = { ...record("a", again.wall + 10, { address: "elsewhere:1" }) };
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [forged] }]), 60);
  const mine = a.memberRecord("a")!;
  assert.deepEqual((mine.value as { address: string }).address, "a:1");
  assert.ok(mine.wall > forged.wall || mine.logical > forged.logical, "newer than the forged one");
  const b = engine("b");
  b.start(0);
  b.leave(1);
  // A member that left ignores every input, so its record stays as it was.
  b.receive(
    "c:1",
    envelope("c", [{ type: "entries", entries: [{ ...tomb, key: "members/b", writer: "b" }] }]),
    50,
  );
  assert.equal(b.memberRecord("b")!.deleted, false);
});

test("load() applies persisted versions quietly, learns members, and moves the clock past them", () => {
  const a = engine("a");
  const far = 10_000_000; // far beyond the drift bound of a member started at 0
  const n = a.load([
    usr("k", 1, far, "a", 3),
    usr("k", 0, 5, "a"), // older: not applied
    record("x", 5),
    { ...record("y", 5), writer: "x" }, // not its own record: not applied
  ], 0);
  assert.equal(n, 2);
  assert.equal(a.entry("usr", "k")?.value, 1);
  assert.equal(a.membership.get("x")?.address, "x:1");
  assert.equal(a.memberRecord("y"), undefined);
  assert.deepEqual(a.takeOutput().memberChanges, [], "loading announces nothing");
  const next = a.write("usr", "k", 2, false, 0);
  assert.ok(next.wall > far || (next.wall === far && next.logical > 3), "a new write wins");
  assert.equal(a.entry("usr", "k")?.value, 2);
});

test("the queries read the store and the member table", () => {
  const a = engine("a");
  a.start(0);
  a.write("usr", "k", 1, false, 1);
  a.write("usr", "gone", 1, false, 1);
  a.write("usr", "gone", undefined, true, 2);
  assert.equal(a.liveCount("usr"), 1);
  assert.equal(a.liveCount("sys"), 1);
  assert.equal(a.tombstoneCount, 1);
  assert.deepEqual([...a.versions("usr")].map((e) => e.key).sort(), ["gone", "k"]);
  assert.equal(a.entry("usr", "k")?.value, 1);
  assert.match(a.rootHex(), /^[0-9a-f]{16}$/);
  assert.notEqual(a.rootHex(), engine("b").rootHex());
  assert.deepEqual([...a.members()].map((m) => m.id), ["a"]);
  assert.equal(a.syncStates.size, 0);
});

test("a member is settled once up for exactly the tombstone grace period", () => {
  const a = engine("a", { tombstoneGraceMs: 1_000 }, 500);
  assert.equal(a.settled(1_499), false);
  assert.equal(a.settled(1_500), true);
});

test("maintenance runs every gossip interval: tombstones collected after the grace period, and remembered", () => {
  const a = engine("a", { tombstoneGraceMs: 1_000, gossipIntervalMs: 500 }, 0);
  a.start(0);
  a.write("usr", "k", 1, false, 0);
  const tomb = a.write("usr", "k", undefined, true, 0);
  a.takeOutput();
  a.tick(499);
  assert.equal(a.tombstoneCount, 1, "no maintenance before the interval");
  a.tick(500);
  assert.equal(a.tombstoneCount, 1, "within the grace period");
  a.tick(999);
  assert.equal(a.tombstoneCount, 1, "maintenance waits for its next interval");
  a.tick(1_001);
  assert.equal(a.tombstoneCount, 0);
  assert.equal(a.counters.tombstonesCollected, 1);
  assert.deepEqual(a.takeOutput().collected, [tomb]);
  // The graveyard now refuses the version that tombstone superseded, and says so.
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [usr("k", 1, 0, "a")] }]), 1_100);
  assert.equal(a.entry("usr", "k"), undefined);
  assert.equal(a.counters.refusedExpired, 1);
  const kill = outgoing(a, "entries");
  assert.deepEqual(kill.map(([to, m]) => [to, (m as EntriesMessage).entries[0]!.deleted]), [
    ["b:1", true],
  ]);
  // A refused tombstone is not answered.
  a.receive(
    "b:1",
    envelope("b", [{
      type: "entries",
      entries: [{ ...usr("k", undefined, 0, "a"), deleted: true }],
    }]),
    1_100,
  );
  assert.equal(a.counters.refusedExpired, 2);
  assert.deepEqual(outgoing(a, "entries"), []);
});

test("dead and left members are forgotten after forgetAfterMs, their records tombstoned", () => {
  const a = engine("a", { forgetAfterMs: 1_000, gossipIntervalMs: 1 }, 0);
  a.start(0);
  meet(a, "b");
  a.receive(
    "b:1",
    envelope("b", [{ type: "entries", entries: [record("x", 0), record("y", 0)] }]),
    0,
  );
  const pings = outgoing(a, "ping");
  for (const id of ["x", "y"]) {
    const [, ping] = pings.find(([to]) => to === `${id}:1`)! as [string, { seq: number }];
    a.receive(`${id}:1`, envelope(id, [{ type: "ack", seq: ping.seq }]), 0);
  }
  assert.ok(a.membership.get("x") && a.membership.get("y"), "admitted");
  a.receive(
    "b:1",
    envelope("b", [
      { type: "member", id: "x", address: "x:1", incarnation: 0, status: "dead" },
      { type: "member", id: "y", address: "y:1", incarnation: 0, status: "left" },
      { type: "member", id: "z", address: "z:1", incarnation: 0, status: "dead" },
    ]),
    100,
  );
  a.takeOutput();
  a.tick(1_099);
  assert.ok(a.membership.get("x") && a.membership.get("y"), "not yet");
  a.tick(1_100);
  assert.equal(a.membership.get("x"), undefined);
  assert.equal(a.membership.get("y"), undefined);
  assert.equal(a.membership.get("z"), undefined, "a member without a record too");
  assert.ok(a.membership.get("b"), "a live member stays");
  const applied = a.takeOutput().applied;
  assert.deepEqual(applied.map((e) => [e.key, e.deleted, e.logical]).sort(), [
    ["members/x", true, 1],
    ["members/y", true, 1],
  ]);
  assert.ok(a.memberRecord("x")?.deleted);
});

test("leave() tells fanout × 2 live peers, then the member ignores every input", () => {
  const a = engine("a", { fanout: 2 });
  a.start(0);
  for (const id of ["b", "c", "d", "e", "f", "g"]) meet(a, id);
  a.leave(10);
  a.leave(11);
  assert.equal(a.membership.self.status, "left");
  const out = a.takeOutput().outgoing;
  assert.equal(out.length, 4);
  for (const o of out) {
    assert.deepEqual(o.messages, [{
      type: "member",
      id: "a",
      address: "a:1",
      incarnation: 0,
      status: "left",
    }]);
  }
  const before = a.nextWakeAt();
  a.tick(before + 100_000);
  assert.deepEqual(a.takeOutput().outgoing, [], "no rounds after leaving");
});

test("a member that left sends its farewell without piggybacked news", () => {
  const a = engine("a", { fanout: 1 });
  a.start(0);
  meet(a, "b");
  meet(a, "c");
  a.receive(
    "c:1",
    envelope("c", [{ type: "member", id: "n", address: "n:1", incarnation: 0, status: "alive" }]),
    0,
  );
  // Admitted, news of n is queued to piggyback.
  a.receive("n:1", envelope("n", [{ type: "ack", seq: pingTo(a, "n:1")!.seq }]), 0);
  assert.equal(a.membership.get("n")?.status, "alive");
  a.takeOutput();
  a.leave(1);
  const out = a.takeOutput().outgoing;
  assert.equal(out.length, 2);
  for (const o of out) assert.equal(o.messages.length, 1);
});

test("an edge client's user entries are merged and spread; its sys entries are refused", () => {
  const a = engine("a");
  a.start(0);
  meet(a, "b");
  const replies = a.serveClient([
    { type: "entries", entries: [usr("k", 1, 5, "client"), record("x", 5)] },
    { type: "rumor", hop: 0, entries: [usr("r", 2, 5, "client")] },
  ], 10);
  assert.deepEqual(replies, []);
  assert.equal(a.counters.refusedInvalid, 1);
  assert.equal(a.counters.syncEntriesReceived, 3);
  assert.deepEqual([a.counters.messagesIn.entries, a.counters.messagesIn.rumor], [1, 1]);
  assert.equal(a.memberRecord("x"), undefined);
  const pushed = outgoing(a, "rumor");
  assert.deepEqual(pushed.map(([to]) => to), ["b:1"], "spread as this member's own");
  assert.deepEqual((pushed[0]![1] as RumorMessage).entries.map((e) => e.key), ["k", "r"]);
  // The same entries again are not new: nothing to spread.
  a.serveClient([{ type: "entries", entries: [usr("k", 1, 5, "client")] }], 11);
  assert.deepEqual(outgoing(a, "rumor"), []);
});

test("an edge client's descent is answered from the store and counted", () => {
  const a = engine("a");
  a.start(0);
  a.write("usr", "k", 1, false, 1);
  a.takeOutput();
  const same = new Store();
  for (const e of a.versions("sys")) same.merge(e);
  for (const e of a.versions("usr")) same.merge(e);
  assert.deepEqual(a.serveClient([syncRoot(same)], 2), []);
  assert.equal(a.counters.syncInSync, 1);
  const replies = a.serveClient([syncRoot(new Store())], 3);
  assert.equal(a.counters.syncInSync, 1);
  assert.ok(replies.length > 0);
  const sent = replies.flatMap((r) => (r.type === "entries" ? r.entries : []));
  assert.equal(a.counters.syncEntriesSent, sent.length);
  assert.equal(sent.length, 2, "the root of a small store answers with its entries");
  assert.equal(a.counters.messagesOut.entries, replies.filter((r) => r.type === "entries").length);
  assert.deepEqual(outgoing(a), [], "nothing queued for a transport");
});

test("an edge client's stale copy of a collected key is answered with its tombstone", () => {
  const a = engine("a", { tombstoneGraceMs: 1_000, gossipIntervalMs: 100 }, 0);
  a.start(0);
  a.write("usr", "k", 1, false, 0);
  a.write("usr", "k", undefined, true, 0);
  a.tick(100);
  a.tick(1_100);
  assert.equal(a.tombstoneCount, 0);
  a.takeOutput();
  const replies = a.serveClient([{ type: "entries", entries: [usr("k", 1, 0, "a")] }], 1_200);
  assert.deepEqual(replies.map((r) => r.type), ["entries"]);
  const [t] = (replies[0] as EntriesMessage).entries;
  assert.deepEqual([t!.key, t!.deleted], ["k", true]);
  assert.equal(a.counters.messagesOut.entries, 1);
  assert.equal(a.counters.syncEntriesSent, 1);
});

// ---------------------------------------------------------------- rumor mongering

/** Rumor mongering on fresh shared parts of member "me", with `peers` live. */
function mongering(peers: string[], fanout = 2) {
  const config = resolveConfig({ fanout });
  const counters = newCounters();
  const membership = new Membership("me", "me:1", 0);
  for (const id of peers) {
    membership.apply(
      { type: "member", id, address: `${id}:1`, incarnation: 0, status: "alive" },
      0,
    );
  }
  const outbox = new Outbox("me:1", 16, counters.messagesOut);
  const store = new Store();
  const largeValues = new LargeValueCooldown(1_000);
  const ctx: DisseminationContext = {
    id: "me",
    address: "me:1",
    config,
    random: seededRandom(1),
    membership,
    store,
    counters,
    outbox,
    largeValues,
    mergeRemote: (e) => (store.merge(e).outcome === "applied" ? "applied" : "duplicate"),
    memberChanged: () => {},
    forgotten: () => {},
  };
  const scheme = new RumorMongering(ctx);
  const sent = () =>
    outbox.take(false).flatMap((o) =>
      o.messages.map((m) => [o.to, m as RumorMessage] as [string, RumorMessage])
    );
  return { scheme, counters, store, largeValues, sent };
}

test("a write is pushed as a rumor of hop 0 to fanout peers; its large values noted in flight", () => {
  const { scheme, store, largeValues, sent } = mongering(["a", "b", "c", "d"], 2);
  store.merge(usr("small", 1, 1));
  store.merge(usr("big", new Uint8Array(10_000), 1));
  const entries = [store.get("usr", "small")!, store.get("usr", "big")!];
  scheme.publish(entries, 5);
  const out = sent();
  assert.equal(out.length, 2);
  for (const [to, m] of out) {
    assert.deepEqual(m, { type: "rumor", hop: 0, entries });
    assert.deepEqual(largeValues.withoutInFlight(to, entries, 6), [entries[0]], "in flight");
  }
  const idle = ["a:1", "b:1", "c:1", "d:1"].find((to) => !out.some(([t]) => t === to))!;
  assert.deepEqual(largeValues.withoutInFlight(idle, entries, 6), entries);
});

test("new small entries of a rumor are forwarded once, hop + 1, to fanout peers but not the sender", () => {
  const { scheme, counters, store, sent } = mongering(["s", "b"], 1);
  scheme.receive({ type: "rumor", hop: 2, entries: [usr("k", 1, 1)] }, "s", "s:1", 5);
  scheme.receive(
    { type: "rumor", hop: 1, entries: [usr("k", 1, 1), usr("big", "x".repeat(9_000), 1)] },
    "s",
    "s:1",
    5,
  );
  assert.deepEqual([counters.rumorEntriesNew, counters.rumorEntriesDuplicate], [2, 1]);
  assert.deepEqual(sent(), [], "forwarded at the envelope's end");
  scheme.endEnvelope("s", 5);
  assert.deepEqual(sent(), [["b:1", { type: "rumor", hop: 3, entries: [store.get("usr", "k")!] }]]);
  assert.equal(counters.rumorsForwarded, 1);
  scheme.endEnvelope("s", 6);
  assert.deepEqual(sent(), [], "nothing new since");
  assert.equal(counters.rumorsForwarded, 1);
  // Only large or duplicate entries: nothing to forward.
  scheme.receive(
    { type: "rumor", hop: 0, entries: [usr("big2", "x".repeat(9_000), 1)] },
    "s",
    "s:1",
    7,
  );
  scheme.endEnvelope("s", 7);
  assert.deepEqual(sent(), []);
  // Not a rumor: not this scheme's.
  scheme.receive({ type: "prune", origin: "o" }, "s", "s:1", 8);
  scheme.endEnvelope("s", 8);
  assert.deepEqual(sent(), []);
});

test("a rumor is forwarded up to a hop limit of 2 × ceil(log_{fanout+1} N) + 2", () => {
  // N = 5 members, fanout 3: 2 × ceil(log4 5) + 2 = 6.
  const forwardedAt = (hop: number, peers = ["s", "b", "c", "d"]) => {
    const { scheme, sent } = mongering(peers, 3);
    scheme.receive({ type: "rumor", hop, entries: [usr("k", 1, 1)] }, "s", "s:1", 5);
    scheme.endEnvelope("s", 5);
    return sent().map(([, m]) => m.hop);
  };
  assert.deepEqual(forwardedAt(5), [6, 6, 6]);
  assert.deepEqual(forwardedAt(6), []);
  // N = 2 (the sender only): 2 × ceil(log4 2) + 2 = 4, and nobody but the sender to tell.
  assert.deepEqual(forwardedAt(3, ["s"]), []);
  // N = 17, fanout 3: 2 × ceil(log4 17) + 2 = 8.
  const many = Array.from({ length: 16 }, (_, i) => `p${i}`);
  assert.equal(forwardedAt(7, many).length, 3);
  assert.deepEqual(forwardedAt(8, many), []);
});

test("a lone sender gets nothing back and no forward is counted", () => {
  const { scheme, counters, sent } = mongering(["s"], 3);
  scheme.receive({ type: "rumor", hop: 0, entries: [usr("k", 1, 1)] }, "s", "s:1", 5);
  scheme.endEnvelope("s", 5);
  assert.deepEqual(sent(), []);
  assert.equal(counters.rumorsForwarded, 0);
});

test("an older copy of a key written again after its tombstone was collected is merely stale", () => {
  const a = engine("a", { tombstoneGraceMs: 1_000, gossipIntervalMs: 100 }, 0);
  a.start(0);
  a.write("usr", "k", 1, false, 0);
  a.write("usr", "k", undefined, true, 0);
  a.tick(100);
  a.tick(1_100); // the tombstone is collected: k is in the graveyard
  a.write("usr", "k", 2, false, 1_100);
  a.takeOutput();
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [usr("k", 1, 0, "a")] }]), 1_200);
  assert.equal(a.entry("usr", "k")?.value, 2);
  assert.equal(a.counters.refusedExpired, 0, "held: the store's rule, not the graveyard's");
  assert.deepEqual(outgoing(a, "entries"), []);
});

test("a member forgotten with its record already deleted gets no second tombstone", () => {
  const a = engine("a", { forgetAfterMs: 1_000, gossipIntervalMs: 1 }, 0);
  a.start(0);
  const gone = { ...record("x", 0), value: undefined, deleted: true };
  a.receive(
    "b:1",
    envelope("b", [
      { type: "member", id: "x", address: "x:1", incarnation: 0, status: "dead" },
      { type: "entries", entries: [gone] },
    ]),
    0,
  );
  a.takeOutput();
  a.tick(1_000);
  assert.equal(a.membership.get("x"), undefined);
  assert.deepEqual(a.takeOutput().applied, []);
  assert.equal(a.memberRecord("x")?.logical, 0);
});

test("a fresh engine has nothing to report, and each output is taken once", () => {
  const a = engine("a");
  const empty = {
    outgoing: [],
    changed: [],
    localChanged: [],
    memberChanges: [],
    applied: [],
    collected: [],
  };
  // Every field.
  const fields = (o: EngineOutput) => ({
    outgoing: o.outgoing,
    changed: o.changed,
    localChanged: o.localChanged,
    memberChanges: o.memberChanges,
    applied: o.applied,
    collected: o.collected,
  });
  a.flush(0); // nothing written yet: nothing to spread
  assert.deepEqual(fields(a.takeOutput()), empty);
  a.start(0);
  a.receive("b:1", envelope("b"), 0);
  assert.notDeepEqual(fields(a.takeOutput()), empty);
  assert.deepEqual(fields(a.takeOutput()), empty);
});

test("a user entry shaped like a member record makes nobody known, loaded or received", () => {
  const a = engine("a");
  const fake = usr("members/z", { address: "z:1" }, 5, "z");
  a.load([fake], 0);
  a.start(0);
  a.receive(
    "b:1",
    envelope("b", [{ type: "entries", entries: [usr("members/y", { address: "y:1" }, 5, "y")] }]),
    1,
  );
  assert.equal(a.membership.get("z"), undefined);
  assert.equal(a.membership.get("y"), undefined);
});

test("loading the member's own record does not rewrite it", () => {
  const a = engine("a");
  const own = record("a", 5);
  assert.equal(a.load([own], 100), 1);
  assert.deepEqual(a.memberRecord("a")?.wall, 5);
  assert.deepEqual(a.takeOutput().applied, []);
});

test("a member alone greets its seeds again every anti-entropy round", () => {
  const a = engine("a", { seeds: ["s:1"], gossipIntervalMs: 100 });
  a.start(0);
  a.takeOutput();
  a.tick(a.nextWakeAt());
  a.tick(200);
  const greetings = outgoing(a).filter(([to, m]) => to === "s:1" && m.type === "member");
  assert.ok(greetings.length >= 1, "greeted again");
});

test("maintenance runs at its interval only, not on every tick", () => {
  const a = engine("a", {
    tombstoneGraceMs: 1_000,
    gossipIntervalMs: 500,
    probeIntervalMs: 100_000,
  }, 0);
  a.start(0);
  a.write("usr", "k", undefined, true, 0);
  a.tick(500);
  a.tick(1_000); // the tombstone is not older than the grace period yet; next maintenance at 1500
  a.tick(1_200);
  assert.equal(a.tombstoneCount, 1, "no maintenance between intervals");
  a.tick(1_500);
  assert.equal(a.tombstoneCount, 0);
});

test("an edge client's descent through branches, leaves and wants is answered and counted", () => {
  const a = engine("a");
  a.start(0);
  for (let i = 0; i < 300; i++) a.write("usr", `k${i}`, i, false, 1 + i);
  a.takeOutput();
  // The client holds all but three of the member's entries.
  const client = new Store();
  for (const e of [...a.versions("sys"), ...a.versions("usr")]) {
    if (!["k7", "k150", "k299"].includes(e.key)) client.merge(e);
  }
  let toA: Message[] = [syncRoot(client)];
  const seen = new Set<string>();
  for (let leg = 0; leg < 20 && toA.length; leg++) {
    for (const m of toA) seen.add(m.type);
    const replies = a.serveClient(toA, 10);
    toA = [];
    for (const r of replies) {
      if (r.type === "entries") { for (const e of r.entries) client.merge(e); }
      else toA.push(...syncReply(client, r as Parameters<typeof syncReply>[1]));
    }
  }
  assert.ok(seen.has("sync-branch") || seen.has("sync-leaf"), [...seen].join());
  assert.ok(seen.has("sync-want"), [...seen].join());
  assert.equal(client.liveCount("usr"), 300, "the client has every entry");
  assert.equal(a.counters.syncEntriesSent, 3);
  assert.equal(a.counters.syncInSync, 0);
  for (const t of seen) assert.ok(a.counters.messagesIn[t as "sync-want"] > 0, t);
});

test("a member routes a peer's sync-branch to anti-entropy", () => {
  const a = engine("a");
  a.start(0);
  for (let i = 0; i < 300; i++) a.write("usr", `k${i}`, i, false, 1 + i);
  a.takeOutput();
  const other = new Store();
  other.merge(usr("x", 1, 1));
  for (const e of a.versions("usr")) if (e.key !== "k1") other.merge(e);
  const replies = a.serveClient([syncRoot(other)], 1);
  const branch = replies.find((r) => r.type === "sync-branch");
  assert.ok(branch, "a large store answers a different root with its branch");
  const b = engine("b");
  b.start(0);
  b.takeOutput();
  b.receive("a:1", envelope("a", [branch]), 2);
  assert.equal(b.counters.messagesIn["sync-branch"], 1);
  assert.ok(outgoing(b).some(([to, m]) => to === "a:1" && m.type.startsWith("sync-")));
});

test("a rumor's hop is counted from the envelope's own rumors only", () => {
  const { scheme, sent } = mongering(["s", "b"], 1);
  scheme.receive({ type: "rumor", hop: 0, entries: [usr("k", 1, 1)] }, "s", "s:1", 5);
  scheme.endEnvelope("s", 5);
  assert.deepEqual(sent().map(([, m]) => m.hop), [1]);
  scheme.receive({ type: "rumor", hop: 0, entries: [usr("j", 1, 1)] }, "s", "s:1", 6);
  scheme.endEnvelope("s", 6);
  assert.deepEqual(sent().map(([, m]) => m.hop), [1], "not carried over from the last envelope");
});

test("an edge client's leaf is answered; its other messages get no sync reply and count no round in sync", () => {
  const a = engine("a");
  a.start(0);
  for (let i = 0; i < 5_000; i++) a.write("usr", `k${i}`, i, false, 1 + i);
  a.takeOutput();
  const client = new Store();
  for (const e of [...a.versions("sys"), ...a.versions("usr")]) {
    if (e.key !== "k4321") client.merge(e);
  }
  let toA: Message[] = [syncRoot(client)];
  const seen = new Set<string>();
  for (let leg = 0; leg < 20 && toA.length; leg++) {
    for (const m of toA) seen.add(m.type);
    const replies = a.serveClient(toA, 10);
    toA = [];
    for (const r of replies) {
      if (r.type === "entries") { for (const e of r.entries) client.merge(e); }
      else toA.push(...syncReply(client, r as Parameters<typeof syncReply>[1]));
    }
  }
  assert.ok(seen.has("sync-leaf"), [...seen].join());
  assert.equal(client.get("usr", "k4321")?.value, 4321);
  assert.equal(a.counters.syncInSync, 0);
  assert.deepEqual(
    a.serveClient([{ type: "ping", seq: 1, target: "a" }, { type: "ack", seq: 1 }], 11),
    [],
  );
  assert.equal(a.counters.syncInSync, 0);
});

test("with a member admitted, a write waits for the flush: an envelope received meanwhile does not push it", () => {
  const a = engine("a");
  a.start(0);
  meet(a, "b");
  a.write("usr", "k", 1, false, 1);
  a.flush(1);
  assert.deepEqual(outgoing(a, "rumor").map(([to]) => to), ["b:1"]);
  a.write("usr", "j", 2, false, 2);
  a.receive("b:1", envelope("b"), 3);
  assert.deepEqual(outgoing(a, "rumor"), [], "not before the flush");
  a.flush(4);
  const pushed = outgoing(a, "rumor");
  assert.deepEqual(pushed.map(([, m]) => (m as RumorMessage).entries.map((e) => e.key)), [["j"]]);
});

test("a user entry under a member record's key names no member", () => {
  const a = engine("a");
  a.start(0);
  meet(a, "b");
  const lookalike: Entry = { ...record("x", 5), section: "usr" };
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [lookalike] }]), 10);
  assert.equal(a.entry("usr", lookalike.key)?.wall, 5, "stored as user data");
  assert.equal(a.membership.candidate("x"), undefined);
  for (let t = 10; t < 3_000; t += 50) {
    a.tick(t);
    assert.deepEqual(outgoing(a).filter(([to]) => to === "x:1"), [], `at ${t}`);
  }
  assert.equal(a.membership.get("x"), undefined);
});

test("a member displaced from its address by another id loses its anti-entropy state", () => {
  const a = engine("a");
  a.start(0);
  meet(a, "x");
  a.receive("x:1", envelope("x", [{ type: "entries", entries: [usr("k", 1, 5, "x")] }]), 10);
  assert.equal(a.syncStates.get("x")?.entriesReceived, 1);
  // A restarted process at x's address, with another id, answers its ping.
  a.receive("x:1", envelope("y"), 20);
  const [, ping] = outgoing(a, "ping").find(([to, m]) =>
    to === "x:1" && (m as { target: string }).target === "y"
  )! as [string, { seq: number }];
  a.receive("x:1", envelope("y", [{ type: "ack", seq: ping.seq }]), 30);
  assert.equal(a.membership.get("y")?.address, "x:1");
  assert.equal(a.membership.get("x"), undefined, "displaced");
  assert.equal(a.syncStates.has("x"), false);
});

test("a member alone whose writes were all superseded holds nothing: a later write waits for the flush", () => {
  const a = engine("a");
  a.start(0);
  a.takeOutput();
  a.write("usr", "k", 1, false, 1);
  // A newer version of k from a stranger (a candidate until it answers a ping).
  a.receive("b:1", envelope("b", [{ type: "entries", entries: [usr("k", 2, 50, "b")] }]), 2);
  a.flush(3); // nothing current left to hold
  const [, ping] = outgoing(a, "ping").find(([to]) => to === "b:1")! as [string, { seq: number }];
  a.write("usr", "j", 2, false, 4);
  a.receive("b:1", envelope("b", [{ type: "ack", seq: ping.seq }]), 5);
  assert.equal(a.membership.get("b")?.status, "alive");
  assert.deepEqual(outgoing(a, "rumor"), [], "j was never held: it waits for the flush");
  a.flush(6);
  const pushed = outgoing(a, "rumor");
  assert.deepEqual(pushed.map(([, m]) => (m as RumorMessage).entries.map((e) => e.key)), [["j"]]);
});

test("a sys entry that is not a member record names no member, however often maintenance runs", () => {
  const a = engine("a", { gossipIntervalMs: 100 });
  a.start(0);
  meet(a, "b");
  const proposed = a.counters.candidatesProposed;
  a.write("sys", "settings/peer", { address: "q:1" }, false, 1);
  for (let t = 0; t < 3_000; t += 50) {
    a.tick(t);
    assert.deepEqual(outgoing(a).filter(([to]) => to === "q:1"), [], `at ${t}`);
  }
  assert.equal(a.counters.candidatesProposed, proposed);
});

test("an edge client's branch that matches ours gets no reply and counts no round in sync", () => {
  const a = engine("a");
  a.start(0);
  for (let i = 0; i < 5_000; i++) a.write("usr", `k${i}`, i, false, 1 + i);
  a.takeOutput();
  const same = new Store();
  for (const e of [...a.versions("sys"), ...a.versions("usr")]) same.merge(e);
  const behind = new Store();
  for (const e of [...a.versions("sys"), ...a.versions("usr")]) {
    if (e.key !== "k4321") behind.merge(e);
  }
  // Our own children, as a member holding what we hold describes them.
  const branch = syncReply(same, syncRoot(behind));
  assert.deepEqual(branch.map((m) => m.type), ["sync-branch"]);
  assert.deepEqual(a.serveClient(branch, 10), []);
  assert.equal(a.counters.syncInSync, 0);
});
