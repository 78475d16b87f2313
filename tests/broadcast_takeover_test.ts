// Unit tests of the tree broadcast's probe and takeover rules (src/core/broadcast.ts) on
// virtual time, with several copies pending to the same silent members: which copy probes,
// which wait for the probe's answer, when a silent member's children are taken over, and
// when a resent copy is marked late.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { TreeMessage } from "../src/core/messages.ts";
import { ids, ihave, member } from "./_tree.ts";
import type { TreeBroadcast, TreeSend } from "../src/core/broadcast.ts";

const seqOf = (s: TreeSend) => (s.message as TreeMessage).seq;
/** Sends as `to/seq`, and a `relay` as `helper/seq>to`. */
const sent = (sends: readonly TreeSend[]) =>
  sends.map((s) => `${s.to}/${seqOf(s)}${s.message.type === "relay" ? `>${s.message.to}` : ""}`)
    .join(",");

/** Up to `n` rounds of `a`, each at its next wake-up, as `at:to/seq,...`. */
function rounds(a: TreeBroadcast, n: number, before?: (at: number, i: number) => void): string[] {
  const out: string[] = [];
  for (let i = 0; i < n && a.nextWakeAt() < Infinity; i++) {
    const at = a.nextWakeAt();
    before?.(at, i);
    out.push(`${at}:${sent(a.tick(at))}`);
  }
  return out;
}

test("three messages to members silent but one: held copies wait for the probes, takeovers come at the third round", () => {
  // The trees of m0's messages 0, 4 and 8 (pinned in broadcast_units_test.ts): each member
  // gets copies of two or three of them.
  const a = member("m0", ids(7));
  assert.deepEqual([0, 1, 2].map(() => sent(a.originate([], 0))), [
    "m5/0,m6/0,m3/0",
    "m2/4,m1/4,m4/4",
    "m1/8,m4/8,m2/8",
  ]);
  // m5 answers at the ms the copies went: not silent since then (its copy of message 0 is
  // resent as a loss), and this member is not alone.
  a.receiveIHave("m5", ihave("zz", 1), 0);
  assert.deepEqual(rounds(a, 7), [
    // Round 1: m5 was heard at the ms the copies went, so this member is not alone: every
    // copy is resent, and echoed.
    "100:m5/0,m6/0,m3/0,m2/4,m1/4,m4/4,m1/8,m4/8,m2/8",
    "101:m5/0,m6/0,m3/0,m2/4,m1/4,m4/4,m1/8,m4/8,m2/8",
    // Round 2: nobody heard since: one copy probes each silent member, its other copies
    // wait for the answer (message 8's); silent 2 rounds, nobody is gone yet.
    "200:m5/0,m6/0,m3/0,m2/4,m1/4,m4/4",
    "201:m5/0,m6/0,m3/0,m2/4,m1/4,m4/4",
    // Round 3: silent 3 rounds, gone: the children of each are taken over, held copies too.
    "300:m5/0,m6/0,m2/0,m3/0,m1/0,m2/4,m3/4,m1/4,m5/4,m4/4,m6/4,m5/8,m6/8,m3/8",
    "301:m5/0",
    "400:",
  ]);
  assert.deepEqual([a.counters.takenOver, a.counters.heldBack, a.counters.retransmitted], [
    8,
    14,
    21,
  ]);
});

test("others answer during the second round: held copies of a member silent 2 rounds are taken over", () => {
  const a = member("m0", ids(7));
  for (let i = 0; i < 3; i++) a.originate([], 0);
  const r = rounds(a, 4, (at, i) => {
    if (i === 1) a.receiveIHave("zz", ihave("m0", 99), at - 1);
  });
  assert.deepEqual(r, [
    // Nobody answered: each silent member gets one probe (message 0's or 4's copy), its
    // other copies (message 8's) wait for the probe's answer.
    "100:m5/0,m6/0,m3/0,m2/4,m1/4,m4/4",
    "101:m5/0,m6/0,m3/0,m2/4,m1/4,m4/4",
    // Another member answered before the second round: every member silent through 2
    // rounds while others answered is gone. The probes take over their children; the held
    // copies (message 8's) too, and wait.
    "200:m5/0,m4/0,m6/0,m2/0,m3/0,m1/0,m2/4,m3/4,m1/4,m5/4,m4/4,m6/4,m1/8,m5/8,m4/8,m6/8,m2/8,m3/8",
    "300:",
  ]);
  assert.equal(a.counters.takenOver, 9);
});

test("a copy resent twice while another copy's probe is under way: its second retransmission takes over", () => {
  const a = member("m0", ids(5));
  // A round trip of 30 ms measured on three copies: the batch timeout (2 ms wait) is 13 ms
  // shorter than the lone one (15 ms).
  const first = a.originate([], 0);
  for (const s of first) a.receiveIHave(s.to, ihave("m0", seqOf(s)), 30);
  assert.deepEqual([a.rto, a.burstRto], [61.875, 48.875]);
  // Lone message 4, then batch message 5 timed to come due 1 ms after message 4's copies:
  // m3 gets both, and is m3's child m1's parent in message 5's tree.
  assert.equal(sent(a.originate([], 1_000)), "m2/4,m3/4,m1/4");
  assert.equal(sent(a.originate([], 1_014, false)), "m4/5,m3/5");
  assert.deepEqual(a.overlay.children("m0", 5, "m3"), ["m1"]);
  // Everyone answers but m3; another member keeps answering (never m3).
  for (const [to, seq] of [["m2", 4], ["m1", 4], ["m4", 5]] as const) {
    a.receiveIHave(to, ihave("m0", seq), 1_015);
  }
  const r = rounds(a, 6, (at) => a.receiveIHave("m4", ihave("zz", 1), at));
  assert.deepEqual(r.map((x) => x.replace(/^(\d+\.?\d{0,2})\d*/, "$1")), [
    "100:",
    // Message 4's copy probes m3 (silent round 1) and is echoed.
    "1061.87:m3/4",
    // Message 5's copy waits for no probe (others answer): resent, echoed.
    "1062.87:m3/4,m3/5",
    "1063.87:m3/5",
    // Its second retransmission, while the probe still waits: m3 was silent through 1 round
    // only, but 2 retransmissions of a copy while others answer make it gone: its child m1
    // is taken over, handed to m4, which acknowledged message 5 (a relay, not a copy).
    "1139.05:m3/5,m4/5>m1",
    "1151.05:m3/4",
  ]);
  assert.equal(a.counters.takenOver, 1);
});

test("a copy resent is not marked late when others answered at the very ms it went", () => {
  // b silent 3 rounds (its timeout backed off), then answers: a copy to it at 900, with
  // another member heard at 900, not after: slow, not lossy.
  const a = member("a", ["b"]);
  a.originate([], 0);
  for (const t of [100, 101, 200, 201, 400]) a.tick(t);
  a.receiveIHave("b", ihave("a", 0), 450);
  assert.equal(a.rtoOf("b"), 200);
  a.originate([], 900);
  a.receiveIHave("c", ihave("zz", 1), 900);
  assert.deepEqual(
    a.tick(1_100).map((s) => `${seqOf(s)}+${(s.message as TreeMessage).hop}`),
    ["4+0"],
  );
});

test("a member heard at the very ms its copy went is never gone: its child is not taken over", () => {
  const a = member("m0", ids(7));
  assert.equal(sent(a.originate([], 0)), "m5/0,m6/0,m3/0");
  a.receiveIHave("m5", ihave("zz", 1), 0);
  // m6 and m3 are gone at the third silent round: their children m2 and m1 get the copy.
  // m5, silent since but heard at 0, is only slow: resent, its child m4 never sent to.
  assert.deepEqual(rounds(a, 12), [
    "100:m5/0,m6/0,m3/0",
    "101:m5/0,m6/0,m3/0",
    "200:m5/0,m6/0,m3/0",
    "201:m5/0,m6/0,m3/0",
    "300:m5/0,m6/0,m2/0,m3/0,m1/0",
    "301:m5/0",
    "400:m2/0,m1/0",
    "401:m2/0,m1/0",
    "500:m5/0,m6/0,m3/0,m2/0,m1/0",
    "501:m5/0,m6/0,m3/0,m2/0,m1/0",
    "700:m2/0,m1/0",
    "900:m5/0,m6/0,m3/0",
  ]);
  assert.equal(a.counters.takenOver, 2);
});

test("a late, congested tick: a member heard since its probe went is not gone, its children not taken over", () => {
  const a = member("m0", ids(7));
  assert.equal(sent(a.originate([], 0)), "m5/0,m6/0,m3/0");
  // Nobody answers two rounds: m5's probe (message 0's copy) waits until 400.
  for (const t of [100, 101, 200, 201]) a.tick(t);
  assert.equal(a.nextWakeAt(), 400);
  for (let i = 0; i < 4; i++) a.originate([], 150); // messages 4 to 16
  // m5 answers at 250 (it is silent 0 rounds since), and gets messages 20 and 28 at 260,
  // m0's child in their trees, with m4 its child; m6 answers later.
  a.receiveIHave("m5", ihave("zz", 1), 250);
  assert.deepEqual([0, 1, 2].map(() => sent(a.originate([], 260))), [
    "m6/20,m3/20,m5/20",
    "m4/24,m2/24,m1/24",
    "m3/28,m5/28,m6/28",
  ]);
  assert.deepEqual(a.overlay.children("m0", 20, "m5"), ["m4"]);
  a.receiveIHave("m6", ihave("zz", 1), 300);
  // This member's timers run 140 ms late: many copies due at once, congested. m5's copies
  // of messages 20 and 28 wait for its probe's answer; m5 is not gone (heard since its
  // probe went, though not since these copies did): m4 gets neither from here.
  const late = sent(a.tick(390));
  assert.equal(
    late,
    "m2/4,m1/4,m4/4,m5/8,m6/8,m3/8,m1/12,m5/12,m6/12,m6/16,m3/16,m5/16,m6/20,m1/20,m6/24,m3/24,m5/24,m1/28,m6/28",
  );
  assert.ok(!late.includes("m4/20") && !late.includes("m4/28"));
  assert.deepEqual([a.counters.takenOver, a.counters.heldBack], [12, 14]);
});
