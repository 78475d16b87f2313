// Unit tests of the tree broadcast (src/core/broadcast.ts) one input at a time, on virtual
// time: the trees (pinned: members of different releases must compute the same ones), the
// sequence numbers, the round-trip estimators, the retransmission timeline, the probes of a
// silent member, congestion, takeovers, acknowledgements and the caches, with exact values.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  batched,
  DEFAULT_TREE_CONFIG,
  LOSSY_ACK_COPIES,
  MAX_ATTEMPTS,
  MessageTable,
  originFanout,
  Overlay,
  relayFanout,
  TreeBroadcast,
  type TreeConfig,
  type TreeSend,
} from "../src/core/broadcast.ts";
import type { IHaveMessage, TreeMessage } from "../src/core/messages.ts";
import type { Entry } from "../src/core/store.ts";
import { entry, ids, ihave, member } from "./_tree.ts";

function overlay(self: string, members: readonly string[]): Overlay {
  const o = new Overlay(self);
  for (const id of members) o.set(id, true);
  return o;
}

const tree = (origin: string, seq: number, hop = 0, entries: Entry[] = []): TreeMessage => ({
  type: "tree",
  origin,
  seq,
  hop,
  entries,
});

const seqOf = (s: TreeSend | undefined) => (s!.message as TreeMessage).seq;
const to = (sends: readonly TreeSend[]) => sends.map((s) => s.to);

/** Every member's children in the tree of (origin, seq), in `o`'s view, as `id>c1,c2`. */
function shape(o: Overlay, members: readonly string[], origin: string, seq: number): string {
  return members.flatMap((id) => {
    const c = o.children(origin, seq, id);
    return c.length ? [`${id}>${c.join(",")}`] : [];
  }).join(" ");
}

// ---------------------------------------------------------------- the trees

test("the trees are pinned: every release computes the same tree for a message", () => {
  // Members of two releases relay each other's messages: a different ring, start point or
  // split would leave members out of some trees. These are the trees of this release: a
  // lone message (number divisible by 4) has 3 children at its origin, 2 at a relay; a
  // batch's message 2 at its origin, 3 at a relay.
  const seven = ids(7);
  const o = overlay("m0", seven);
  assert.deepEqual([0, 1, 2, 3].map((seq) => shape(o, seven, "m0", seq)), [
    "m0>m5,m6,m3 m3>m1 m5>m4 m6>m2",
    "m0>m4,m3 m3>m1,m5 m4>m6,m2",
    "m0>m2,m5 m2>m3,m1 m5>m4,m6",
    "m0>m3,m4 m3>m1,m5 m4>m6,m2",
  ]);
  assert.deepEqual(seven.map((id) => o.depth("m0", 0, id)), [0, 2, 2, 1, 2, 1, 1]);
  assert.deepEqual(seven.map((id) => o.depth("m0", 2, id)), [0, 2, 1, 2, 2, 1, 2]);
  assert.equal(o.depth("m0", 0, "zz"), 0, "not on the ring");
  assert.equal(o.depth("m0", 0), 0, "its origin");
  assert.equal(overlay("m5", seven).depth("m0", 0), 1, "this member by default");
  const twenty = ids(20);
  const big = overlay("m0", twenty);
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((seq) => shape(big, twenty, "m3", seq)), [
    "m2>m17,m0 m3>m6,m18,m19 m6>m12,m2 m7>m1 m10>m15,m5 m11>m4,m9 m12>m8 m16>m14,m13 m18>m7,m10 m19>m16,m11",
    "m2>m17,m7,m15 m3>m16,m2 m6>m12,m8 m7>m1,m10 m11>m4,m9 m14>m13 m15>m5,m19 m16>m14,m11,m6 m17>m0,m18",
    "m2>m17,m7,m15 m3>m16,m2 m6>m12,m8 m7>m1,m10 m11>m4,m9 m14>m13 m15>m5,m19 m16>m14,m11,m6 m17>m0,m18",
    "m2>m17,m18,m10 m3>m2,m19 m6>m12,m8 m10>m15,m5 m11>m4,m9 m16>m14,m13 m17>m0 m18>m7,m1 m19>m16,m11,m6",
    "m0>m18 m3>m4,m17,m15 m4>m9,m12 m5>m19,m16 m7>m1,m10 m9>m6 m12>m8,m2 m14>m13,m11 m15>m5,m14 m17>m0,m7",
    "m0>m18 m3>m17,m16 m4>m9,m6 m7>m1,m10 m12>m8,m2 m14>m13,m11 m15>m5,m19 m16>m14,m4,m12 m17>m0,m7,m15",
  ]);
  // A view without the origin (not placed yet): every member it holds is in the row.
  const without = overlay("m1", seven.slice(1));
  assert.deepEqual([10, 11, 12].map((seq) => shape(without, seven, "m0", seq)), [
    "m1>m5,m4 m6>m2,m3",
    "m3>m1,m5 m4>m6,m2",
    "m3>m1 m5>m4 m6>m2",
  ]);
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 7, 8].map((seq) => [batched(seq), originFanout(seq), relayFanout(seq)]),
    [
      [false, 3, 2],
      [true, 2, 3],
      [true, 2, 3],
      [true, 2, 3],
      [false, 3, 2],
      [true, 2, 3],
      [true, 2, 3],
      [false, 3, 2],
    ],
  );
});

test("the start of the row moves with every message: each member heads some trees", () => {
  const members = ids(12);
  const o = overlay("m0", members);
  const heads = new Map<string, number>();
  for (let seq = 0; seq < 600; seq++) {
    for (const c of o.children("m0", seq)) heads.set(c, (heads.get(c) ?? 0) + 1);
  }
  // 11 others, 2.5 children a message: 136 each on average; the ring's arcs are uneven.
  assert.equal(heads.size, 11);
  for (const [id, n] of heads) assert.ok(n > 30 && n < 400, `${id} heads ${n} of 600 trees`);
});

test("the ring: self always placed, a change counted once, a removed member in no tree", () => {
  const o = new Overlay("a");
  assert.deepEqual([o.size, o.version, o.has("a"), o.has("b")], [1, 1, true, false]);
  assert.deepEqual(o.children("a", 0), [], "alone: nobody to send to");
  assert.equal(o.set("a", false), false, "self stays");
  assert.equal(o.set("a", true), false);
  assert.equal(o.set("b", false), false, "not placed: nothing to remove");
  assert.equal(o.version, 1);
  assert.equal(o.set("b", true), true);
  assert.equal(o.set("b", true), false);
  assert.deepEqual([o.size, o.version, o.has("b")], [2, 2, true]);
  assert.deepEqual(o.children("a", 0), ["b"]);
  assert.deepEqual(o.children("a", 0, "b"), []);
  assert.deepEqual(o.children("a", 0, "zz"), [], "not on the ring: no children");
  for (const id of ids(7)) o.set(id, true);
  assert.equal(o.version, 9);
  assert.equal(o.set("m3", false), true);
  assert.deepEqual([o.size, o.version, o.has("m3")], [8, 10, false]);
  const members = ["a", "b", ...ids(7).filter((id) => id !== "m3")];
  for (let seq = 0; seq < 30; seq++) {
    const reached = new Set<string>();
    const queue = ["a"];
    while (queue.length) {
      for (const c of o.children("a", seq, queue.shift()!)) {
        assert.ok(!reached.has(c) && c !== "m3" && c !== "a");
        reached.add(c);
        queue.push(c);
      }
    }
    assert.equal(reached.size, members.length - 1, `seq ${seq}: spans the members left`);
  }
});

// ---------------------------------------------------------------- configuration, numbers

test("a tuning is validated: each field a positive finite number, unknown ones ignored", () => {
  const t = new TreeBroadcast(
    "a",
    { ackDelayMs: 5, retransmitMs: undefined } as unknown as Partial<TreeConfig>,
    0,
  );
  assert.deepEqual(t.config, { ...DEFAULT_TREE_CONFIG, ackDelayMs: 5 });
  assert.ok(Object.isFrozen(t.config));
  const odd = new TreeBroadcast("a", { colour: "red" } as never, 0);
  assert.deepEqual(odd.config, DEFAULT_TREE_CONFIG);
  for (const bad of [0, -1, NaN, Infinity, "5" as unknown as number]) {
    assert.throws(
      () => new TreeBroadcast("a", { cacheMs: bad }, 0),
      (e: unknown) =>
        e instanceof RangeError && e.message === `cacheMs must be a positive number, got ${bad}`,
    );
  }
  assert.deepEqual(DEFAULT_TREE_CONFIG, {
    ackDelayMs: 15,
    retransmitMs: 100,
    cacheMs: 30_000,
    cacheBytes: 8 * 1024 * 1024,
  });
});

test("sequence numbers start at 2,048 × the clock's seconds, wrap every 2^20 s", () => {
  const first = (now: number, lone = true) =>
    seqOf(member("a", ["b"], {}, now).originate([], now, lone)[0]);
  assert.equal(first(5_999), 5 * 2048);
  assert.equal(first(5_999, false), 5 * 2048 + 1, "a batch's: not divisible by 4");
  assert.equal(first(-5_000), 0, "a clock before 1970 starts at 0");
  assert.equal(first((2 ** 20 + 7) * 1000 + 999), 7 * 2048);
  const a = member("a", ["b"]);
  const seqs = [true, false, true, false, false, false, false, true, true].map((lone) =>
    seqOf(a.originate([], 0, lone)[0])
  );
  assert.deepEqual(seqs, [0, 1, 4, 5, 6, 7, 9, 12, 16]);
});

// ---------------------------------------------------------------- round trips

/**
 * Originates a message from `t` (to its only peer) at `at`, acknowledged `rtt` later by an
 * `ihave` saying it waited `wait` ms.
 */
function measured(t: TreeBroadcast, at: number, rtt: number, lone = true, wait = 0): void {
  const sends = t.originate([], at, lone);
  assert.equal(sends.length, 1);
  t.receiveIHave(sends[0]!.to, { ...ihave(t.overlay.self, seqOf(sends[0])), hop: wait }, at + rtt);
}

test("the retransmission timeout: Jacobson's estimator of the network's round trip, plus the wait", () => {
  const a = member("a", ["b"]);
  assert.deepEqual([a.rto, a.burstRto], [100, 100], "nothing measured: retransmitMs");
  measured(a, 0, 30);
  // srtt 30, rttvar 7.5: 30 + the wait (15, or 2 for a batch's message) + 4 × 7.5.
  assert.deepEqual([a.rto, a.burstRto], [75, 62]);
  assert.deepEqual([a.rtoOf("b"), a.rtoOf("b", true)], [75, 62], "a lone message's by default");
  measured(a, 1_000, 50);
  // rttvar 0.75 × 7.5 + 0.25 × 20 = 10.625, srtt 0.875 × 30 + 0.125 × 50 = 32.5.
  assert.deepEqual([a.rto, a.burstRto], [32.5 + 15 + 42.5, 32.5 + 2 + 42.5]);
  measured(a, 2_000, 10, false);
  // rttvar 13.59375, srtt 29.6875: a batch's message measures the same network.
  assert.deepEqual([a.rto, a.burstRto], [29.6875 + 15 + 54.375, 29.6875 + 2 + 54.375]);
  // An acknowledgement from another member, or of a message not pending, measures nothing.
  const [send] = a.originate([], 3_000);
  a.receiveIHave("c", ihave("a", seqOf(send)), 3_001);
  a.receiveIHave("b", ihave("a", seqOf(send) + 1), 3_001);
  a.receiveIHave("b", ihave("z", seqOf(send)), 3_001);
  assert.equal(a.rto, 29.6875 + 15 + 54.375);
  assert.equal(a.unacknowledged, 1);
});

test("the wait an acknowledgement says it had is not part of the network's round trip", () => {
  const a = member("a", ["b"]);
  measured(a, 0, 40, true, 15);
  // 25 ms of network: srtt 25, rttvar 6.25.
  assert.deepEqual([a.rto, a.burstRto], [25 + 15 + 25, 25 + 2 + 25]);
  const b = member("b", ["c"]);
  measured(b, 0, 5, true, 15);
  // Less than its wait (timers): 0 ms of network; 20 ms at least, a margin of 2.
  assert.deepEqual([b.rto, b.burstRto], [20, 20]);
  const c = member("c", ["d"], { ackDelayMs: 30 });
  measured(c, 0, 5, true, 15);
  assert.equal(c.rto, 0 + 30 + 2);
  // Following samples move the estimate by 1/8 (and the minimum by 1/64 upwards).
  const d = member("d", ["e"]);
  measured(d, 0, 8);
  measured(d, 1_000, 72);
  // rttvar 0.75 × 2 + 0.25 × 64 = 17.5, srtt 7 + 9 = 16.
  assert.equal(d.rto, 16 + 15 + 70);
  measured(d, 2_000, 16);
  // rttvar 13.125, srtt 16.
  assert.equal(d.rto, 16 + 15 + 52.5);
  const e = member("e", ["f"]);
  measured(e, 0, 3_000);
  assert.deepEqual([e.rto, e.burstRto], [2_000, 2_000], "never over 2 s");
});

test("a batch's copy is expected after the batch timeout, a lone one after the rto", () => {
  const a = member("a", ["b"]);
  measured(a, 0, 30);
  a.tick(1_000);
  a.originate([], 10_000, false);
  assert.equal(a.nextWakeAt(), 10_062);
  const b = member("b", ["c"]);
  measured(b, 0, 30);
  b.tick(1_000);
  b.originate([], 10_000);
  assert.equal(b.nextWakeAt(), 10_075);
});

// ---------------------------------------------------------------- retransmission

test("a silent member: retransmitted and echoed, its timeout doubling to 4×, 8 sends at most", () => {
  const a = member("a", ["b"]);
  assert.equal(a.nextWakeAt(), Infinity);
  assert.deepEqual(to(a.originate([], 0)), ["b"]);
  assert.equal(a.unacknowledged, 1);
  const timeline: string[] = [];
  for (let i = 0; i < 30 && a.nextWakeAt() < Infinity; i++) {
    const at = a.nextWakeAt();
    assert.deepEqual(a.tick(at - 1), [], "nothing before it is due");
    timeline.push(`${at}:${to(a.tick(at)).join(",")}`);
  }
  // Each round: the copy, its echo 1 ms later. The timeout doubles with each silent round
  // (100, 200, 400, then 400: at most 4×), then with each retransmission past the third,
  // up to 2 s. After 3 silent rounds b seems gone (its children, none here, are taken over):
  // from then on it gets one copy a round. The 8th send is never made: anti-entropy will
  // bring it.
  assert.deepEqual(timeline, [
    "100:b",
    "101:b",
    "200:b",
    "201:b",
    "400:b",
    "800:b",
    "801:b",
    "1200:b",
    "1201:b",
    "1600:b",
    "1601:b",
    "2400:b",
    "2401:b",
    "4000:",
  ]);
  assert.equal(a.counters.retransmitted, MAX_ATTEMPTS - 1);
  assert.deepEqual([a.unacknowledged, a.counters.takenOver], [0, 0]);
  assert.equal(a.rtoOf("b"), 400, "4 × the timeout: it stayed silent");
  a.receiveIHave("b", ihave("a", 0), 5_000);
  assert.equal(a.rtoOf("b"), 200, "an answer halves it");
  a.receiveIHave("b", ihave("a", 0), 5_000);
  a.receiveIHave("b", ihave("a", 0), 5_000);
  assert.equal(a.rtoOf("b"), 100, "down to 1× at least");
  assert.equal(a.rtoOf("b", true), 100);
  assert.equal(a.rtoOf("zz"), 100, "a member never sent to: 1×");
});

test("a silent member while others answer: its children get the copy at its second retransmission", () => {
  // The tree of m0's message 0 (pinned above): m0 → m5, m6, m3; m5 → m4.
  const a = member("m0", ids(7));
  assert.deepEqual(to(a.originate([], 0)), ["m5", "m6", "m3"]);
  a.receiveIHave("m6", ihave("m0", 0), 10);
  a.receiveIHave("m3", ihave("m0", 0), 10);
  // Two samples of 10 ms: srtt 10, rttvar 1.875.
  assert.equal(a.rto, 10 + 15 + 7.5);
  assert.equal(a.nextWakeAt(), 100, "deadline set when sent");
  const rounds: string[] = [];
  for (let i = 0; i < 6; i++) {
    const at = a.nextWakeAt();
    rounds.push(`${at}:${a.tick(at).map((s) => `${s.to}+${(s.message as TreeMessage).hop}`)}`);
  }
  // Sent again marked late (hop + 2), echoed 1 ms later; others answered meanwhile, so
  // no backoff: the next round one timeout later, with the takeover of its child m4 (late,
  // not echoed; nor is that round's copy to m5: it seems gone).
  assert.deepEqual(rounds, [
    "100:m5+2",
    "101:m5+2",
    "132.5:m5+2,m4+2",
    "165:m5+2,m4+2",
    "166:m5+2,m4+2",
    "197.5:m4+2",
  ]);
  assert.deepEqual([a.counters.retransmitted, a.counters.takenOver], [5, 1]);
  // A late acknowledgement of a retransmitted copy is not a round trip measured (Karn).
  a.receiveIHave("m5", ihave("m0", 0), 200);
  assert.equal(a.rto, 32.5);
  a.receiveIHave("m4", ihave("m0", 0), 201);
  assert.equal(a.unacknowledged, 0);
});

test("nobody answers: a silent member's children are taken over after 3 silent rounds", () => {
  const a = member("m0", ids(7));
  assert.deepEqual(to(a.originate([], 0)), ["m5", "m6", "m3"]);
  const rounds: string[] = [];
  while (a.counters.takenOver === 0) {
    const at = a.nextWakeAt();
    rounds.push(`${at}:${to(a.tick(at)).join(",")}`);
  }
  assert.deepEqual(rounds, [
    "100:m5,m6,m3",
    "101:m5,m6,m3",
    "200:m5,m6,m3",
    "201:m5,m6,m3",
    "400:m5,m4,m6,m2,m3,m1",
  ]);
  assert.equal(a.counters.takenOver, 3);
});

test("copies to a silent member wait for one probe's answer; their acknowledgements are measured", () => {
  const a = member("a", ["b"]);
  // Three lone messages (0, 4, 8) at once, all to b, none answered.
  for (let i = 0; i < 3; i++) a.originate([], 0);
  assert.equal(a.nextWakeAt(), 100);
  assert.deepEqual(to(a.tick(100)), ["b"], "one probe");
  assert.equal(a.counters.heldBack, 2);
  assert.equal(a.counters.retransmitted, 1);
  assert.deepEqual(to(a.tick(101)), ["b"], "its echo");
  assert.equal(a.nextWakeAt(), 200, "the others wait as long as the probe");
  // b answers the two copies held back (first copies: round trips) and not the probe.
  a.receiveIHave("b", ihave("a", 4, 8), 150);
  // Two samples of 150 ms: srtt 150, rttvar 0.75 × 37.5.
  assert.equal(a.rto, 150 + 15 + 4 * 0.75 * 37.5, "measured");
  assert.equal(a.unacknowledged, 1);
  // Heard since the probe went: the probe's copy is retransmitted as usual.
  assert.deepEqual(to(a.tick(200)), ["b"]);
  assert.equal(a.counters.heldBack, 2);
});

test("copies held back round after round count as attempts: 8 at most", () => {
  const a = member("a", ["b"]);
  for (let i = 0; i < 3; i++) a.originate([], 0);
  const sent = new Map<number, number>();
  let ticks = 0;
  while (a.nextWakeAt() < Infinity && ticks++ < 100) {
    for (const s of a.tick(a.nextWakeAt())) sent.set(seqOf(s), (sent.get(seqOf(s)) ?? 0) + 1);
  }
  assert.equal(a.unacknowledged, 0);
  // The probe (message 0): 7 retransmissions and their echoes but the one that went with
  // the takeover (b seemed gone). Message 8 waited 8 rounds and was dropped; message 4
  // waited 7, then was the probe once message 0 was dropped.
  assert.deepEqual([...sent], [[0, 13], [4, 14]]);
  assert.equal(a.counters.retransmitted, 14);
  assert.equal(a.counters.heldBack, 7 + 8);
});

test("retransmissions due a timeout late, many at once: sent once, no echo, 32 a tick", () => {
  // b answered since the copies went (not silent): every due copy is retransmitted.
  const late = (copies: number, at: number) => {
    const a = member("a", ["b"]);
    for (let i = 0; i < copies; i++) a.originate([], 0);
    a.receiveIHave("b", ihave("zz", 1), 0); // at the ms the copies went: not silent
    const sends = a.tick(at);
    return { a, sends: sends.length, next: a.nextWakeAt() };
  };
  // On time (or late by exactly one timeout): retransmitted and echoed 1 ms later.
  assert.deepEqual([late(9, 200).sends, late(9, 200).next], [9, 201]);
  assert.deepEqual([late(8, 300).sends, late(8, 300).next], [8, 301], "8 is not many");
  // 9 due more than a timeout late: congested, no echo; the timeout doubles at once.
  const c = late(9, 201);
  assert.deepEqual([c.sends, c.next], [9, 401]);
  // 40 of them: 32 go, the rest wait one timeout.
  const d = late(40, 201);
  assert.deepEqual([d.sends, d.next], [32, 301]);
  assert.equal(d.a.counters.retransmitted, 32);
  assert.equal(d.a.tick(301).length, 8);
});

test("a member removed from the ring: its copy goes to whom the tree over the others names", () => {
  // Ring of a, b, c, d, e: a's lone message goes to 3 of the 4 others.
  const build = (config = {}, entries: Entry[] = []) => {
    const a = member("a", ["b", "c", "d", "e"], config);
    const first = to(a.originate(entries, 0));
    assert.equal(first.length, 3);
    const rest = ["b", "c", "d", "e"].find((id) => !first.includes(id))!;
    a.overlay.set(first[0]!, false);
    for (const id of first.slice(1)) a.receiveIHave(id, ihave("a", 0), 10);
    return { a, rest };
  };
  const { a, rest } = build();
  assert.deepEqual(to(a.tick(100)), [rest], "the tree over 4 members: the 4th is a head now");
  assert.deepEqual([a.counters.retransmitted, a.counters.takenOver], [0, 0]);
  assert.equal(a.unacknowledged, 1, "the new head's copy");
  // The message no longer cached (its bytes over the budget): nothing to send.
  const e = (value: unknown, deleted = false): Entry => ({
    section: "usr",
    key: "k",
    value,
    wall: 1,
    logical: 0,
    writer: "a",
    deleted,
  });
  // 32 + key 1 + writer 1 + 24 + the value's bytes (a string's length, 16 otherwise).
  const fits = build({ cacheBytes: 60 }, [e("vv")]);
  assert.deepEqual(to(fits.a.tick(100)), [fits.rest], "60 bytes: kept");
  assert.deepEqual(build({ cacheBytes: 59 }, [e("vv")]).a.tick(100), []);
  assert.deepEqual(to(build({ cacheBytes: 58 }, [e("vvvvvv", true)]).a.tick(100)).length, 1);
  assert.deepEqual(to(build({ cacheBytes: 74 }, [e(42)]).a.tick(100)).length, 1);
  assert.deepEqual(build({ cacheBytes: 73 }, [e(42)]).a.tick(100), []);
  const custom = new TreeBroadcast("a", { cacheBytes: 62 }, 0, () => 4);
  for (const id of ["b", "c", "d", "e"]) custom.overlay.set(id, true);
  const first = to(custom.originate([e("x")], 0));
  custom.overlay.set(first[0]!, false);
  for (const id of first.slice(1)) custom.receiveIHave(id, ihave("a", 0), 10);
  assert.equal(custom.tick(100).length, 1, "the caller's measure of a value: 4 bytes");
});

test("pending copies are bounded: past 20,000, copies are sent once and not awaited", () => {
  const a = member("a", ["b"]);
  for (let i = 0; i < 20_001; i++) assert.equal(a.originate([], 0, false).length, 1);
  assert.equal(a.unacknowledged, 20_000);
});

// ---------------------------------------------------------------- receiving

test("a fresh message is forwarded to this member's children, never back, hop + 1 up to 255", () => {
  // m0's message 0: m5 → m4 (pinned above).
  const m5 = member("m5", ids(7));
  const r = m5.receiveTree("m0", tree("m0", 0, 3), 0);
  assert.equal(r.fresh, true);
  assert.deepEqual(r.sends, [{ to: "m4", message: tree("m0", 0, 4) }]);
  assert.equal(m5.counters.received, 1);
  assert.equal(m5.unacknowledged, 1);
  const capped = member("m5", ids(7)).receiveTree("m0", tree("m0", 0, 255), 0);
  assert.equal((capped.sends[0]!.message as TreeMessage).hop, 255);
  // From its child (a takeover's copy): not sent back to it.
  const m3 = member("m3", ids(7));
  assert.deepEqual(m3.receiveTree("m1", tree("m0", 0), 0).sends, [], "m3's child is m1");
  // Its own message, relayed back: a duplicate.
  const m0 = member("m0", ids(7));
  const own = m0.receiveTree("m5", tree("m0", 0), 0);
  assert.deepEqual([own.fresh, own.sends, m0.counters.duplicates], [false, [], 1]);
  // Nothing sent to the origin, even when the view names it.
  const m2 = member("m2", ids(7));
  assert.deepEqual(m2.receiveTree("m6", tree("m1", 7), 0).fresh, true);
});

test("copies are acknowledged in batches: 15 ms later, 2 for a batch's, at once for a duplicate", () => {
  const a = member("a", ["b", "c"]);
  a.receiveTree("b", tree("b", 8), 100);
  assert.equal(a.nextWakeAt(), 115, "a lone message: 15 ms");
  a.receiveTree("b", tree("b", 5), 110);
  assert.equal(a.nextWakeAt(), 112, "a batch's message (not divisible by 4): 2 ms");
  a.receiveTree("c", tree("b", 5), 111);
  a.receiveTree("b", tree("c", 3), 111);
  assert.equal(a.counters.duplicates, 1);
  assert.equal(a.nextWakeAt(), 111, "a duplicate: at once");
  assert.deepEqual(a.tick(110), []);
  // Each ihave's hop: how long the last copy it answers waited here.
  assert.deepEqual(a.tick(111).filter((s) => s.message.type === "ihave"), [
    { to: "b", message: { type: "ihave", origin: "b", hop: 1, seqs: [5, 8] } },
    { to: "b", message: { type: "ihave", origin: "c", hop: 0, seqs: [3] } },
    { to: "c", message: { type: "ihave", origin: "b", hop: 0, seqs: [5] } },
  ]);
  assert.equal(a.counters.acked, 4);
  // A duplicate came (a loss seen, its sender retransmitting): the lone message's
  // acknowledgement goes again every 1 ms, LOSSY_ACK_COPIES times in all.
  for (let k = 1; k < LOSSY_ACK_COPIES; k++) {
    assert.deepEqual(a.tick(111 + k), [
      { to: "b", message: { type: "ihave", origin: "b", hop: 1 + k, seqs: [8] } },
    ]);
  }
  assert.equal(a.nextWakeAt(), Infinity);
  // Timers run late: the wait meant is said, not the lateness (up to 255 ms).
  a.receiveTree("b", tree("b", 12), 200);
  assert.deepEqual(a.tick(400).map((s) => (s.message as { hop: number }).hop), [15]);
  assert.deepEqual(a.tick(401).map((s) => (s.message as { hop: number }).hop), [16]);
  a.receiveTree("b", tree("b", 16), 500);
  a.receiveTree("b", tree("b", 20), 507.5);
  assert.deepEqual(a.tick(515).map((s) => (s.message as { hop: number }).hop), [7]);
});

test("a copy as late as its depth in the tree is acknowledged at once and sent on twice", () => {
  // m0's message 0 (pinned): m5 is 1 hop from m0, and sends to m4.
  const on = (hop: number) => {
    const m5 = member("m5", ids(7));
    const r = m5.receiveTree("m0", tree("m0", 0, hop), 1_000);
    return { r, m5, next: m5.nextWakeAt() };
  };
  const early = on(0);
  assert.deepEqual(early.r.sends, [{ to: "m4", message: tree("m0", 0, 1) }]);
  assert.equal(early.next, 1_015, "on time: acknowledged after the delay");
  const late = on(1);
  assert.deepEqual(late.r.sends, [{ to: "m4", message: tree("m0", 0, 2) }]);
  assert.equal(late.next, 1_000, "late: acknowledged at once");
  const sends = late.m5.tick(1_000);
  assert.deepEqual(sends.map((s) => s.message.type), ["ihave"]);
  assert.equal(late.m5.nextWakeAt(), 1_001);
  assert.deepEqual(late.m5.tick(1_001), [
    { to: "m4", message: tree("m0", 0, 2) },
    { to: "m0", message: { type: "ihave", origin: "m0", hop: 1, seqs: [0] } },
  ], "the echo, and the acknowledgement again (a loss seen: the copy came late)");
  assert.equal(late.m5.counters.retransmitted, 0);
});

test("an acknowledgement holds 4,096 numbers at most, and each number once", () => {
  const a = member("a", ["b"]);
  for (let seq = 5_000; seq > 904; seq--) a.receiveTree("b", tree("b", seq), 0);
  a.receiveTree("b", tree("b", 905), 0);
  const acks = a.tick(1_000).map((s) => (s.message as IHaveMessage).seqs);
  assert.deepEqual(acks.map((s) => s.length), [4096]);
  assert.deepEqual([acks[0]![0], acks[0]!.at(-1)], [905, 5_000]);
  // 905 came twice (a loss seen): the lone messages' numbers (divisible by 4) go again,
  // LOSSY_ACK_COPIES times in all.
  for (let k = 1; k < LOSSY_ACK_COPIES; k++) {
    const again = a.tick(1_000 + k).map((s) => (s.message as IHaveMessage).seqs);
    assert.deepEqual(again.map((s) => [s.length, s[0], s.at(-1)]), [[1024, 908, 5_000]]);
  }
  for (let seq = 10_000; seq < 14_097; seq++) a.receiveTree("b", tree("b", seq), 2_000);
  const more = a.tick(3_000).map((s) => (s.message as IHaveMessage).seqs);
  assert.deepEqual(more.map((s) => s.length), [4096, 1]);
  assert.deepEqual(more[1], [14_096]);
});

test("a message is remembered for cacheMs: after that, a copy is fresh again", () => {
  const at = (later: number) => {
    const a = member("a", ["b"], { cacheMs: 1_000 });
    a.receiveTree("b", tree("b", 1), 0);
    a.tick(later);
    return a.receiveTree("b", tree("b", 1), later).fresh;
  };
  assert.equal(at(999), false);
  assert.equal(at(1_000), true);
  // Forgotten with the message: the copy a takeover would send.
  const a = member("m0", ids(7), { cacheMs: 50 });
  a.originate([], 0);
  a.receiveIHave("m6", ihave("m0", 0), 10);
  a.tick(60);
  assert.deepEqual(to(a.tick(100)), ["m5", "m3"], "retransmitted");
  for (let i = 0; i < 6; i++) a.tick(a.nextWakeAt());
  assert.ok(a.counters.retransmitted >= 4, "resent past the takeover's round");
  assert.equal(a.counters.takenOver, 0, "no message left to take over with");
});

test("past 1,024 forgotten messages their slots are cut off: later messages are remembered and forgotten on time", () => {
  const a = member("a", ["b"], { cacheMs: 1_000 });
  for (let seq = 0; seq < 3_000; seq++) a.receiveTree("b", tree("b", seq), 0);
  a.tick(1_000); // all 3,000 forgotten
  assert.equal(a.receiveTree("b", tree("b", 7), 1_000).fresh, true, "forgotten");
  a.receiveTree("b", tree("b", 5_000), 1_500);
  for (const t of [1_600, 2_000, 2_499]) {
    a.tick(t);
    assert.equal(a.receiveTree("b", tree("b", 5_000), t).fresh, false, `remembered at ${t}`);
  }
  a.tick(2_500);
  assert.equal(a.receiveTree("b", tree("b", 5_000), 2_500).fresh, true, "forgotten at 2,500");
});

// ---------------------------------------------------------------- edges

test("two ids with the same ring key: ordered by id, so every view holds the same ring", () => {
  // hashString("n95064") and hashString("n109849") collide on 32 bits (ring seed).
  const one = overlay("n95064", ["m1", "m2", "m3", "n109849"]);
  const other = overlay("n109849", ["n95064", "m3", "m2", "m1"]);
  for (let seq = 0; seq < 64; seq++) {
    for (const id of ["m1", "m2", "m3", "n95064", "n109849"]) {
      assert.deepEqual(one.children("m1", seq, id), other.children("m1", seq, id));
    }
  }
  assert.equal(one.set("n109849", false), true);
  assert.deepEqual([one.has("n109849"), one.has("n95064"), one.size], [false, true, 4]);
});

test("a member not on the ring has no children in any tree", () => {
  const o = overlay("m0", ids(7));
  for (let seq = 0; seq < 16; seq++) assert.deepEqual(o.children("m0", seq, "zz"), []);
  for (let seq = 0; seq < 16; seq++) assert.deepEqual(o.children("zz", seq, "zz"), []);
});

test("a copy received from this member itself is not acknowledged to it", () => {
  const a = member("a", ["b"]);
  a.receiveTree("a", tree("b", 4), 0);
  assert.deepEqual(a.tick(100).filter((s) => s.message.type === "ihave"), []);
  assert.equal(a.nextWakeAt(), Infinity);
});

test("the next wake-up is the earliest copy due, each round", () => {
  const a = member("a", ["b"]);
  a.originate([], 0);
  a.originate([], 50);
  const rounds: string[] = [];
  for (let i = 0; i < 5; i++) {
    const at = a.nextWakeAt();
    rounds.push(`${at}:${a.tick(at).map(seqOf).join(",")}`);
  }
  // Message 4's copy is due at 150 and waits for the probe (message 0's) until 200.
  assert.deepEqual(rounds, ["100:0", "101:0", "150:", "200:0", "201:0"]);
  assert.ok(a.counters.heldBack >= 1);
});

test("heard at the very ms its copies went: a member is not silent, nor this one alone", () => {
  const a = member("a", ["b"]);
  a.originate([], 0);
  a.originate([], 0);
  a.receiveIHave("b", ihave("zz", 1), 0);
  assert.deepEqual(a.tick(100).map(seqOf), [0, 4], "both again, none held back");
  const c = member("a", ["b", "c"]);
  c.originate([], 0);
  c.originate([], 0);
  c.receiveIHave("c", ihave("a", 0), 0);
  // b silent, but c answered at the ms the copies went: b's copies are not held back.
  assert.deepEqual(to(c.tick(100)), ["b", "c", "b"]);
  assert.equal(c.counters.heldBack, 0);
});

test("others answering at the very ms a copy went does not make its member gone", () => {
  const a = member("m0", ids(7));
  a.originate([], 0);
  a.receiveIHave("m6", ihave("m0", 0), 0);
  a.receiveIHave("m3", ihave("m0", 0), 0);
  assert.equal(a.rto, 20);
  const rounds: string[] = [];
  for (let i = 0; i < 8; i++) {
    const at = a.nextWakeAt();
    rounds.push(`${at}:${to(a.tick(at)).join(",")}`);
  }
  // The takeover of m5's child m4 comes after 3 silent rounds, not at the second.
  assert.deepEqual(rounds, [
    "100:m5",
    "101:m5",
    "120:m5",
    "121:m5",
    "140:m5,m4",
    "160:m4",
    "161:m4",
    "180:m5,m4",
  ]);
});

test("a member that answers other copies is not gone: its lost copy is resent, never taken over", () => {
  const a = member("m0", ids(7));
  a.originate([], 0);
  a.receiveIHave("m6", ihave("m0", 0), 10);
  a.receiveIHave("m3", ihave("m0", 0), 10);
  const rounds: string[] = [];
  for (let i = 0; i < 6; i++) {
    const at = a.nextWakeAt();
    a.receiveIHave("m5", ihave("zz", 1), at - 1);
    rounds.push(`${at}:${to(a.tick(at)).join(",")}`);
  }
  assert.deepEqual(rounds, [
    "100:m5",
    "101:m5",
    "132.5:m5",
    "133.5:m5",
    "165:m5",
    "166:m5",
  ]);
  assert.equal(a.counters.takenOver, 0);
});

test("a member heard once, then silent: its silent rounds count from its last answer", () => {
  const a = member("m0", ids(7));
  a.originate([], 0);
  a.receiveIHave("m5", ihave("zz", 1), 50);
  const rounds: string[] = [];
  for (let i = 0; i < 12; i++) {
    const at = a.nextWakeAt();
    rounds.push(`${at}:${to(a.tick(at)).join(",")}`);
  }
  // m5 answered after the copy went (not gone: resent, echoed); m6 and m3 are gone once m5
  // was heard after their copies went: their children m2 and m1 get it at the second
  // resend, which goes once.
  assert.deepEqual(rounds, [
    "100:m5,m6,m3",
    "101:m5,m6,m3",
    "200:m5,m6,m2,m3,m1",
    "201:m5",
    "300:m5,m6,m3,m2,m1",
    "301:m5,m6,m3,m2,m1",
    "400:m2,m1",
    "401:m2,m1",
    "500:m5,m6,m3",
    "501:m5,m6,m3",
    "600:m2,m1",
    "900:m5,m6,m3",
  ]);
  assert.equal(a.counters.takenOver, 2);
});

test("nobody answers two messages: every silent member's children are taken over, held copies too", () => {
  const a = member("m0", ids(7));
  assert.deepEqual(to(a.originate([], 0)), ["m5", "m6", "m3"]);
  assert.deepEqual(to(a.originate([], 0)), ["m2", "m1", "m4"]);
  const rounds: string[] = [];
  for (let i = 0; i < 8; i++) {
    const at = a.nextWakeAt();
    rounds.push(`${at}:${a.tick(at).map((s) => `${s.to}/${seqOf(s)}`).join(",")}`);
  }
  assert.deepEqual(rounds.slice(4, 7), [
    "400:m5/0,m4/0,m6/0,m2/0,m3/0,m1/0,m2/4,m3/4,m1/4,m5/4,m4/4,m6/4",
    "500:",
    "800:m5/0,m6/0,m3/0,m2/4,m1/4,m4/4",
  ]);
  assert.deepEqual([a.counters.takenOver, a.counters.heldBack, a.counters.retransmitted], [
    6,
    12,
    24,
  ]);
});

test("a cached message is forgotten exactly cacheMs after it was sent", () => {
  const build = () => {
    const a = member("a", ["b", "c", "d", "e"], { cacheMs: 200, retransmitMs: 250 });
    const first = to(a.originate([], 0));
    a.overlay.set(first[0]!, false);
    for (const id of first.slice(1)) a.receiveIHave(id, ihave("a", 0), 10);
    return a;
  };
  const kept = build();
  kept.tick(199);
  assert.equal(kept.tick(250).length, 1, "still cached at 199: re-routed at 250");
  const forgotten = build();
  forgotten.tick(200);
  assert.deepEqual(forgotten.tick(250), [], "forgotten at 200");
});

test("the cache's byte count goes down with what it forgets", () => {
  // 60 bytes a message; room for two. The first is forgotten by age, then two more fit.
  const e = entry("k", "a", "vv");
  const a = member("a", ["b", "c", "d", "e"], { cacheMs: 100, cacheBytes: 120 });
  a.originate([e], 0, false);
  a.tick(100);
  a.originate([e], 150);
  const first = to(a.originate([e], 150));
  a.overlay.set(first[0]!, false);
  for (const id of ["b", "c", "d", "e"]) {
    if (id !== first[0]) a.receiveIHave(id, ihave("a", 4, 8), 160);
  }
  // The second message's copies: acknowledged above only where they went; the third's head
  // removed: re-routed from the cache.
  const sends = a.tick(250).filter((s) => seqOf(s) === 8);
  assert.equal(sends.length, 1);
});

test("the table of peers is pruned of members off the ring past 2 × N + 16 entries", () => {
  // b stays silent 3 rounds: its timeout is 4×. It leaves the ring with `others` members
  // copies went to; when it comes back, it has kept its backoff unless it was pruned.
  const rtoAfter = (others: number) => {
    const a = member("a", ["b"]);
    a.originate([], 0);
    for (const t of [100, 101, 200, 201, 400]) a.tick(t);
    assert.equal(a.rtoOf("b"), 400);
    const x = ids(others).map((id) => `x${id}`);
    for (const id of x) a.overlay.set(id, true);
    for (let i = 0; i < 60; i++) a.originate([], 1_000);
    for (const id of [...x, "b"]) a.overlay.set(id, false);
    a.tick(1_001);
    a.overlay.set("b", true);
    return a.rtoOf("b");
  };
  assert.equal(rtoAfter(0), 400);
  assert.equal(rtoAfter(17), 400, "18 entries for a ring of 1: kept");
  assert.equal(rtoAfter(18), 100, "19: pruned");
  // With c on the ring too (2 members), 20 entries are kept; a member on the ring is never
  // pruned.
  const withC = (others: number, bLeaves: boolean) => {
    const a = member("a", ["b"]);
    a.originate([], 0);
    for (const t of [100, 101, 200, 201, 400]) a.tick(t);
    const x = ["c", ...ids(others).map((id) => `x${id}`)];
    for (const id of x) a.overlay.set(id, true);
    for (let i = 0; i < 80; i++) a.originate([], 1_000);
    for (const id of x.slice(1)) a.overlay.set(id, false);
    if (bLeaves) a.overlay.set("b", false);
    a.tick(1_001);
    a.overlay.set("b", true);
    return a.rtoOf("b");
  };
  assert.equal(withC(17, true), 400, "19 entries for a ring of 2: kept");
  assert.equal(withC(40, false), 400, "pruned, but b is on the ring: kept");
});

test("a start point equal to a member's ring key starts the row at that member", () => {
  // The start of message 155,212 of "o" hashes to 2,839,989,916: the ring key of "A36988".
  const o = overlay("o", ["A36988", "m1", "m2", "m3", "m4"]);
  assert.deepEqual(o.children("o", 155_212), ["A36988", "m2", "m1"]);
});

test("a copy resent is marked late when a loss is likely: others answered, or no backoff", () => {
  // b stays silent 3 rounds (its timeout backs off to 4×), then answers: 2×. Message 4 goes
  // to it at 900 (after the last probe's wait) and is not answered either.
  const resent = (othersAnswer: boolean) => {
    const a = member("a", ["b"]);
    a.originate([], 0);
    const first = a.tick(100);
    assert.deepEqual(first.map((s) => (s.message as TreeMessage).hop), [2], "no backoff yet");
    for (const t of [101, 200, 201, 400]) a.tick(t);
    a.receiveIHave("b", ihave("a", 0), 450);
    assert.equal(a.rtoOf("b"), 200);
    a.originate([], 900);
    if (othersAnswer) a.receiveIHave("c", ihave("zz", 1), 950);
    return a.tick(1_000).map((s) => `${seqOf(s)}+${(s.message as TreeMessage).hop}`);
  };
  assert.deepEqual(resent(false), ["4+0"], "backed off, nobody answered: slow, not lossy");
  assert.deepEqual(resent(true), ["4+2"], "others answered since: a loss");
});

test("a message dropped from the cache for its bytes is still remembered for cacheMs", () => {
  // A byte budget too small for any message: each is dropped as it is cached, its id kept.
  const a = member("a", ["b"], { cacheMs: 1_000, cacheBytes: 1 });
  a.receiveTree("b", tree("b", 1), 0);
  a.receiveTree("b", tree("b", 2), 400);
  for (const t of [0, 500, 999]) {
    a.tick(t);
    assert.equal(a.receiveTree("b", tree("b", 1), t).fresh, false, `seq 1 remembered at ${t}`);
  }
  a.tick(1_000);
  assert.equal(a.receiveTree("b", tree("b", 1), 1_000).fresh, true, "seq 1 forgotten at 1,000");
  assert.equal(a.receiveTree("b", tree("b", 2), 1_000).fresh, false, "seq 2 still remembered");
  a.tick(1_400);
  assert.equal(a.receiveTree("b", tree("b", 2), 1_400).fresh, true, "seq 2 forgotten at 1,400");
});

test("past 1,024 forgotten messages dropped for their bytes, the slots are cut off and later ids still expire", () => {
  // Every message is dropped from the cache for its bytes as it arrives: its id alone is
  // kept, so the cache's slots run ahead of the seen ids' when the slots are cut off.
  const a = member("a", ["b"], { cacheMs: 1_000, cacheBytes: 1 });
  for (let seq = 0; seq < 2_100; seq++) a.receiveTree("b", tree("b", seq), 0);
  for (let seq = 2_100; seq < 4_100; seq++) a.receiveTree("b", tree("b", seq), 600);
  a.tick(1_000); // the first 2,100 forgotten
  assert.equal(a.receiveTree("b", tree("b", 7), 1_000).fresh, true, "forgotten");
  assert.equal(a.receiveTree("b", tree("b", 3_000), 1_000).fresh, false, "remembered");
  a.tick(1_599);
  assert.equal(a.receiveTree("b", tree("b", 3_001), 1_599).fresh, false, "remembered at 1,599");
  a.tick(1_600);
  assert.equal(a.receiveTree("b", tree("b", 3_002), 1_600).fresh, true, "forgotten at 1,600");
});

test("the message table tells origins and numbers apart, and counts no origin without a value", () => {
  const t = new MessageTable<string>();
  t.set("a", 4, "a4");
  t.set("b", 4, "b4");
  t.set("a", 5, "a5");
  t.set("a", 4, "a4 again");
  assert.deepEqual([t.size, t.origins], [3, 2]);
  assert.deepEqual([t.get("a", 4), t.get("b", 4), t.get("a", 5)], ["a4 again", "b4", "a5"]);
  assert.equal(t.get("b", 5), undefined);
  assert.equal(t.has("c", 4), false);
  assert.equal(t.delete("b", 5), false, "nothing held");
  assert.deepEqual([t.size, t.origins], [3, 2]);
  assert.equal(t.delete("b", 4), true);
  assert.deepEqual([t.size, t.origins], [2, 1], "b's last value went, and b with it");
  assert.equal(t.delete("a", 4) && t.delete("a", 5), true);
  assert.deepEqual([t.size, t.origins], [0, 0]);
  // Numbers past 2^31 (a member's numbers start at 2,048 × its clock's seconds) stay apart.
  t.set("a", 2 ** 31 + 1, "high");
  assert.equal(t.get("a", 1), undefined);
  assert.equal(t.get("a", 2 ** 31 + 1), "high");
  // Out of order: a lower number after a higher one, found both ways.
  t.set("b", 10, "b10");
  t.set("b", 7, "b7");
  assert.deepEqual([t.get("b", 10), t.get("b", 7), t.has("b", 10), t.has("b", 7)], [
    "b10",
    "b7",
    true,
    true,
  ]);
  assert.equal(t.has("b", 11), false);
  t.delete("b", 10);
  t.set("b", 8, "b8");
  assert.deepEqual([t.get("b", 8), t.get("b", 10)], ["b8", undefined]);
});

test("a leaf of a message's tree keeps its id alone: duplicates known for cacheMs, no bytes of the budget taken", () => {
  const twenty = ids(20);
  const view = overlay("m1", twenty);
  // Lone messages: a batch's is kept at a leaf too (a relay may ask for it; below).
  const seqs = Array.from({ length: 64 }, (_, i) => 4 * i);
  const leaves = seqs.filter((seq) => view.children("m0", seq).length === 0);
  // A message m1 relays, whose first child, once off the ring, leaves m1 a new child.
  const relayed = seqs.find((seq) => {
    const c = view.children("m0", seq);
    if (c.length === 0) return false;
    const without = overlay("m1", twenty.filter((id) => id !== c[0]));
    return without.children("m0", seq).some((id) => !c.includes(id));
  })!;
  assert.ok(leaves.length > 8 && relayed !== undefined);
  // A budget of one message (32 bytes without entries).
  const a = member("m1", twenty, { cacheMs: 1_000, cacheBytes: 40 });
  const children = to(a.receiveTree("m0", tree("m0", relayed), 0).sends);
  assert.deepEqual(children, view.children("m0", relayed));
  for (const seq of leaves) {
    assert.deepEqual(a.receiveTree("m0", tree("m0", seq), 1), { fresh: true, sends: [] });
  }
  // The relayed message is still kept: its first child gone, it goes to the new one.
  for (const id of children.slice(1)) a.receiveIHave(id, ihave("m0", relayed), 10);
  a.overlay.set(children[0]!, false);
  const rerouted = a.tick(200).filter((s) => s.message.type === "tree");
  assert.ok(rerouted.length > 0, "re-routed from the cache");
  for (const s of rerouted) {
    assert.equal(seqOf(s), relayed);
    assert.ok(!children.includes(s.to));
  }
  a.tick(999);
  for (const seq of leaves) {
    assert.equal(a.receiveTree("m2", tree("m0", seq), 999).fresh, false, `${seq} seen`);
  }
  a.tick(1_001);
  assert.equal(a.receiveTree("m2", tree("m0", leaves[0]!), 1_001).fresh, true, "forgotten");
});

test("a batch's message is kept at a leaf and once acknowledged, for a relay to ask for", () => {
  const twenty = ids(20);
  const view = overlay("m1", twenty);
  const seqs = Array.from({ length: 64 }, (_, i) => i).filter(batched);
  const leaf = seqs.find((seq) => view.children("m0", seq).length === 0)!;
  const inner = seqs.find((seq) => view.children("m0", seq).length > 0)!;
  const a = member("m1", twenty);
  const other = twenty.find((id) => !["m0", "m1", "m2"].includes(id))!;
  assert.deepEqual(a.receiveTree("m0", tree("m0", leaf), 0).sends, []);
  for (const id of to(a.receiveTree("m0", tree("m0", inner), 0).sends)) {
    a.receiveIHave(id, ihave("m0", inner), 5);
  }
  assert.equal(a.unacknowledged, 0);
  for (const seq of [leaf, inner]) {
    const asked = a.receiveRelay("m2", { type: "relay", origin: "m0", seq, to: other }, 10);
    assert.deepEqual(to(asked), [other], `message ${seq} kept`);
  }
  assert.equal(a.counters.relayRefused, 0);
});

test("the message table holds what a Map would, whatever the order of numbers, and its gaps go", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(
          fc.constantFrom("set", "delete", "set"),
          fc.constantFrom("a", "b"),
          fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constant(-1)),
        ),
        { maxLength: 120, size: "medium" },
      ),
      (ops) => {
        const t = new MessageTable<number>();
        const ref = new Map<string, number>();
        const next = { a: 0, b: 0 };
        ops.forEach(([op, origin, n], i) => {
          // -1: the origin's next number (in order, as most arrive); else any of 0 to 40.
          const seq = n < 0 ? (next[origin as "a" | "b"] += 3) + 40 : n;
          const key = `${origin} ${seq}`;
          if (op === "set") {
            t.set(origin, seq, i);
            ref.set(key, i);
          } else assert.equal(t.delete(origin, seq), ref.delete(key), `delete ${key}`);
          for (const o of ["a", "b"]) {
            for (let s = 0; s < next[o as "a" | "b"] + 45; s++) {
              assert.equal(t.get(o, s), ref.get(`${o} ${s}`), `get ${o} ${s}`);
              assert.equal(t.has(o, s), ref.has(`${o} ${s}`));
            }
          }
          assert.equal(t.size, ref.size);
          const origins = new Set([...ref.keys()].map((k) => k.split(" ")[0]));
          assert.equal(t.origins, origins.size);
        });
      },
    ),
    { numRuns: 200 },
  );
  // Dropped in order, as messages expire: the slots go with them.
  const t = new MessageTable<number>();
  for (let seq = 0; seq < 10_000; seq++) t.set("a", seq, seq);
  for (let seq = 0; seq < 9_990; seq++) t.delete("a", seq);
  assert.equal(t.slots("a"), 10);
  // One value held at the front: the gaps behind it stay until it goes.
  t.set("a", 5, 5);
  for (let seq = 9_990; seq < 9_999; seq++) t.delete("a", seq);
  assert.deepEqual([t.slots("a"), t.size], [11, 2]);
  t.delete("a", 5);
  assert.deepEqual([t.slots("a"), t.size, t.get("a", 9_999)], [1, 1, 9_999]);
  // The newest dropped before those in between: the gaps at the end go with it.
  t.set("a", 10_001, 1);
  t.set("a", 10_002, 2);
  t.delete("a", 10_001);
  t.delete("a", 10_002);
  assert.deepEqual([t.slots("a"), t.has("a", 10_002)], [1, false]);
});

test("a message is kept while a copy of it awaits an acknowledgement, not cacheMs", () => {
  const a = member("a", ["b", "c", "d", "e"]);
  const first = to(a.originate([], 0));
  assert.equal(a.keptBytes, 32, "32 bytes: a message without entries");
  for (const id of first.slice(1)) a.receiveIHave(id, ihave("a", 0), 10);
  assert.equal(a.keptBytes, 32, "one copy still waits");
  a.overlay.set(first[0]!, false);
  const rerouted = to(a.tick(200));
  assert.equal(rerouted.length, 1, "sent to whom the tree now names");
  assert.equal(a.keptBytes, 32);
  a.receiveIHave(rerouted[0]!, ihave("a", 0), 210);
  assert.equal(a.keptBytes, 0, "every copy acknowledged: its id alone stays");
  assert.equal(a.receiveTree("b", tree("a", 0), 220).fresh, false, "still seen");
  // A relay keeps what it sent on until its children answer; a member with no copy to wait
  // for (alone on its ring) keeps nothing.
  const alone = member("z", []);
  alone.originate([], 0);
  assert.equal(alone.keptBytes, 0);
});

test("a copy's acknowledgement is found after its message's id was forgotten (cacheMs shorter than the wait)", () => {
  const a = member("a", ["b", "c", "d", "e"], { cacheMs: 50 });
  const first = to(a.originate([], 0));
  assert.equal(a.unacknowledged, 3);
  a.tick(60); // past cacheMs: the message released and its id forgotten, its copies still wait
  assert.equal(a.keptBytes, 0);
  a.receiveIHave(first[0]!, ihave("a", 0), 61);
  assert.equal(a.unacknowledged, 2, "found without the id");
  for (const id of first.slice(1)) a.receiveIHave(id, ihave("a", 0), 62);
  assert.equal(a.unacknowledged, 0);
  // Its number again (a restarted member's) is a message of its own, and its copies likewise.
  const again = a.receiveTree("b", tree("a", 0), 63);
  assert.deepEqual(again, { fresh: false, sends: [] }, "its own messages are never fresh");
  assert.deepEqual(a.tick(10_000).filter((s) => s.message.type === "tree"), []);
});

test("an overlay changed member by member gives the trees of one built from its members at once", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 11 }), fc.boolean()), { maxLength: 40 }),
      fc.integer({ min: 0, max: 2 ** 31 }),
      (changes, seq) => {
        const o = new Overlay("m0");
        for (const [i, present] of changes) o.set(`m${i}`, present);
        const members = ids(12).filter((id) => o.has(id));
        const fresh = overlay("m0", members);
        assert.equal(o.size, fresh.size);
        for (const origin of ["m0", "m3", "m11", "gone"]) {
          for (const of of members) {
            assert.deepEqual(o.children(origin, seq, of), fresh.children(origin, seq, of));
            assert.equal(o.depth(origin, seq, of), fresh.depth(origin, seq, of));
          }
        }
      },
    ),
    { numRuns: 200 },
  );
});
