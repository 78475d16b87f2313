// Unit tests of candidate admission in SWIM (src/core/swim.ts and the candidate part of
// src/core/membership.ts), on the engine's real shared parts and virtual time: who may admit
// a stranger (itself, or a member vouching for it within its bound), the pings and
// ping-reqs a silent candidate gets before it is dropped, the members an answering
// candidate displaces, and a known member's move to a new address.
import { test } from "node:test";
import assert from "node:assert/strict";
import { memberRecord, swimSetup } from "./_swim.ts";
import type { Entry } from "../src/core/store.ts";
import type { EngineConfig } from "../src/core/config.ts";
import { Engine } from "../src/core/engine.ts";
import {
  MAX_CANDIDATES,
  MAX_CANDIDATES_PER_SOURCE,
  MAX_VOUCHED_PER_ADDRESS,
  Membership,
} from "../src/core/membership.ts";
import type { MemberMessage, MemberStatus, Message } from "../src/core/messages.ts";
import { seededRandom } from "../src/core/random.ts";

const CONFIG: Partial<EngineConfig> = {
  probeIntervalMs: 1_000,
  probeTimeoutMs: 200,
  reconnectIntervalMs: 1_000_000,
};

/**
 * SWIM of member "me" (address "me:1"), its random source returning `values` in turn, then 0
 * (the first value drawn places the first probe: 0.999 puts it at 999 ms).
 */
function setup(values: number[] = []) {
  const queue = [...values];
  return swimSetup(CONFIG, () => queue.shift() ?? 0);
}

const member = (
  id: string,
  status: MemberStatus = "alive",
  incarnation = 0,
  address = `${id}:1`,
): MemberMessage => ({ type: "member", id, address, incarnation, status });

/** A candidate's sequence number is drawn from the random source: 0.5 → 2³¹. */
const SEQ = 0x8000_0000;

test("a stranger writing to us is a candidate at its address, alive at incarnation 0, due again a probe timeout later", () => {
  const { swim, membership, counters, sent } = setup([0.999, 0.5]);
  assert.equal(swim.nextWakeAt(), 999, "the first probe only");
  swim.heardFrom("x", "x:9", 100);
  const c = membership.candidate("x")!;
  assert.deepEqual({ ...c }, {
    id: "x",
    address: "x:9",
    incarnation: 0,
    status: "alive",
    source: "x:9",
    seq: SEQ,
    relay: false,
    pings: 1,
    next: 300,
  });
  assert.equal(membership.candidateBySeq(SEQ), c);
  assert.equal(membership.candidateBySeq(SEQ + 1), undefined);
  assert.equal(counters.candidatesProposed, 1);
  assert.equal(counters.candidatesRefused, 0);
  assert.equal(swim.nextWakeAt(), 300, "the candidate's second ping is due first");
  assert.deepEqual(sent(), {
    "x:9": [{ type: "ping", seq: SEQ, target: "x" }, membership.update(membership.self)],
  });
  // A later candidate does not put the earlier one's ping off.
  swim.heardFrom("y", "y:9", 150);
  assert.equal(swim.nextWakeAt(), 300);
});

test("an ack for a candidate never pinged admits nothing", () => {
  const { swim, membership, changes } = setup();
  assert.equal(membership.propose(member("x"), "x:1", 77, 0), "proposed");
  swim.onAck(77, "x", 10);
  assert.equal(membership.get("x"), undefined);
  assert.equal(membership.candidate("x")?.pings, 0);
  assert.deepEqual(changes, []);
});

test("a candidate's own ack admits it, heard directly; an unknown third party's ack does not", () => {
  const { swim, membership, counters, changes, spread } = setup([0.999, 0.5]);
  swim.heardFrom("x", "x:9", 100);
  swim.onAck(SEQ, "stranger", 110);
  assert.equal(membership.get("x"), undefined, "a stranger cannot vouch");
  assert.equal(membership.candidate("x")?.pings, 1, "still held");
  assert.equal(counters.candidatesAdmitted, 0);
  swim.onAck(SEQ, "x", 120);
  const x = membership.get("x")!;
  assert.deepEqual([x.status, x.address, x.relayed, x.lastHeard], ["alive", "x:9", undefined, 120]);
  assert.equal(counters.candidatesAdmitted, 1);
  assert.deepEqual(changes, ["x undefined alive"]);
  assert.deepEqual(spread(), [], "a member that wrote to us is not news to spread");
  assert.equal(membership.vouchedBy("x:9"), 0);
});

test("a live member heard directly vouches for a candidate: admitted as relayed by its address, and spread", () => {
  const { swim, membership, counters, changes, spread } = setup([0.999, 0.5]);
  membership.apply(member("v"), 0);
  swim.onMember(member("n", "alive", 3), "v", "v:1", 100);
  swim.onAck(SEQ, "v", 110);
  const n = membership.get("n")!;
  assert.deepEqual([n.status, n.incarnation, n.relayed], ["alive", 3, "v:1"]);
  assert.equal(counters.candidatesAdmitted, 1);
  assert.deepEqual(changes, ["n undefined alive"]);
  assert.deepEqual(spread(), [member("n", "alive", 3)]);
  assert.equal(membership.vouchedBy("v:1"), 1);
  assert.equal(membership.vouchedBy("n:1"), 0);
  assert.deepEqual(membership.partners().map((m) => m.id), ["v"], "heard directly only");
});

test("a voucher must be alive and heard directly", () => {
  for (const status of ["suspect", "dead"] as const) {
    const { swim, membership, counters } = setup([0.999, 0.5]);
    membership.apply(member("v", status), 0);
    swim.onMember(member("n"), "w", "w:1", 100);
    swim.onAck(SEQ, "v", 110);
    assert.equal(membership.get("n"), undefined, status);
    assert.equal(counters.candidatesAdmitted, 0);
  }
  const { swim, membership } = setup([0.999, 0.25, 0.5]);
  membership.apply(member("v"), 0);
  swim.onMember(member("r"), "v", "v:1", 50);
  swim.onAck(0x4000_0000, "v", 60);
  assert.equal(membership.get("r")?.relayed, "v:1", "r came in on v's word");
  swim.onMember(member("n"), "v", "v:1", 100);
  swim.onAck(SEQ, "r", 110);
  assert.equal(membership.get("n"), undefined, "r, itself relayed, cannot vouch");
  swim.onAck(SEQ, "v", 120);
  assert.equal(membership.get("n")?.relayed, "v:1");
});

test(`one address vouches for ${MAX_VOUCHED_PER_ADDRESS} members not heard directly, no more; one heard since frees a place`, () => {
  const seqs = Array.from({ length: MAX_VOUCHED_PER_ADDRESS + 1 }, (_, i) => (i + 1) / 64);
  const { swim, membership, counters } = setup([0.999, ...seqs]);
  membership.apply(member("v"), 0);
  const seqOf = (i: number) => Math.floor(seqs[i]! * 0x1_0000_0000);
  for (let i = 0; i <= MAX_VOUCHED_PER_ADDRESS; i++) swim.onMember(member(`n${i}`), "v", "v:1", 10);
  for (let i = 0; i <= MAX_VOUCHED_PER_ADDRESS; i++) swim.onAck(seqOf(i), "v", 20);
  assert.equal(membership.vouchedBy("v:1"), MAX_VOUCHED_PER_ADDRESS);
  assert.equal(counters.candidatesAdmitted, MAX_VOUCHED_PER_ADDRESS);
  const last = `n${MAX_VOUCHED_PER_ADDRESS}`;
  assert.equal(membership.get(last), undefined);
  assert.equal(membership.candidate(last)?.seq, seqOf(MAX_VOUCHED_PER_ADDRESS), "still held");
  // n0 answers a probe of ours itself: heard directly, it no longer counts against v.
  membership.get("n0")!.relayed = undefined;
  assert.equal(membership.vouchedBy("v:1"), MAX_VOUCHED_PER_ADDRESS - 1);
  swim.onAck(seqOf(MAX_VOUCHED_PER_ADDRESS), "v", 30);
  assert.equal(membership.get(last)?.relayed, "v:1");
});

test("an ack of our probe from the target itself clears its relayed mark; one relayed keeps it", () => {
  const { swim, membership, sent } = setup([0]);
  membership.apply(member("t"), 0);
  const t = membership.get("t")!;
  t.relayed = "v:1";
  swim.tick(0);
  const first = sent()["t:1"]![0] as { seq: number };
  swim.onAck(first.seq, "v", 50);
  assert.deepEqual([t.relayed, t.lastHeard], ["v:1", 50], "relayed by v: still not heard directly");
  swim.tick(1_000);
  const second = sent()["t:1"]![0] as { seq: number };
  assert.equal(second.seq, first.seq + 1, "the first probe ended");
  swim.onAck(second.seq, "t", 1_050);
  assert.deepEqual([t.relayed, t.lastHeard], [undefined, 1_050], "heard directly");
});

test("an acked probe is over: no helpers asked, no suspicion at the period's end", () => {
  const { swim, membership, counters, sent } = setup([0]);
  membership.apply(member("a"), 0);
  membership.apply(member("b"), 0);
  swim.tick(0);
  const out = sent();
  const [to] = Object.keys(out);
  const seq = (out[to!]![0] as { seq: number }).seq;
  swim.onAck(seq, to!.slice(0, 1), 50);
  swim.tick(300);
  assert.deepEqual(sent(), {}, "no ping-req after an ack");
  swim.tick(999);
  assert.equal(counters.probesFailed, 0);
  assert.deepEqual(membership.suspects(), []);
});

test("a silent candidate: pinged again a probe timeout later with ping-reqs to its introducer and one other, a third time, then dropped", () => {
  const { swim, membership, counters, sent } = setup([0.999, 0.5]);
  // Not helpers: a suspect, and a member reached through another.
  membership.apply(member("sick", "suspect"), 0);
  membership.apply(member("rel"), 0);
  membership.get("rel")!.relayed = "elsewhere:1";
  membership.apply(member("other"), 0);
  membership.apply(member("third"), 0);
  membership.apply(member("intro"), 0);
  swim.onMember(member("n"), "intro", "intro:1", 100);
  const c = membership.candidate("n")!;
  assert.deepEqual([c.source, c.relay, c.pings, c.next], ["intro:1", true, 1, 300]);
  assert.deepEqual(sent(), { "n:1": [{ type: "ping", seq: SEQ, target: "n" }] });
  swim.tick(299);
  assert.deepEqual(sent(), {}, "not due yet");
  const req = { type: "ping-req", seq: SEQ, target: "n", address: "n:1" };
  swim.tick(300);
  assert.deepEqual(sent(), {
    "n:1": [{ type: "ping", seq: SEQ, target: "n" }],
    "intro:1": [req],
    "other:1": [req],
  });
  assert.deepEqual([c.pings, c.next], [2, 500]);
  assert.equal(swim.nextWakeAt(), 500);
  swim.tick(500);
  assert.deepEqual(Object.keys(sent()).sort(), ["intro:1", "n:1", "other:1"]);
  assert.deepEqual([c.pings, c.next], [3, 1_500], "dropped a probe period after the third");
  assert.equal(swim.nextWakeAt(), 999, "the first probe");
  swim.tick(1_499);
  assert.equal(membership.candidate("n"), c);
  swim.tick(1_500);
  assert.equal(membership.candidate("n"), undefined);
  assert.equal(membership.candidateBySeq(SEQ), undefined);
  assert.equal(counters.candidatesDropped, 1);
  assert.equal(membership.get("n"), undefined);
  assert.equal(swim.nextWakeAt() > 1_500, true, "no candidate left to wake for");
});

test("a candidate's ping-reqs go to alive members heard directly, never to itself or one relayed", () => {
  const { swim, membership, sent } = setup([0.999, 0.5, 0.25]);
  membership.apply(member("v"), 0);
  swim.onMember(member("r"), "v", "v:1", 0);
  swim.onAck(SEQ, "v", 1);
  assert.equal(membership.get("r")?.relayed, "v:1");
  swim.heardFrom("n", "n:1", 10);
  sent();
  swim.tick(210);
  assert.deepEqual(sent(), {
    "n:1": [{ type: "ping", seq: 0x4000_0000, target: "n" }],
    "v:1": [{ type: "ping-req", seq: 0x4000_0000, target: "n", address: "n:1" }],
  });
});

test("a stranger that answers at the address of known members displaces them: one address, one member", () => {
  const { swim, membership, changes, forgotten } = setup([0.999, 0.5]);
  membership.apply(member("old", "alive", 2, "x:9"), 0);
  membership.apply(member("keep"), 0);
  const old = membership.get("old")!;
  swim.heardFrom("x", "x:9", 100);
  assert.equal(membership.get("old"), old, "not before x answers");
  swim.onAck(SEQ, "x", 110);
  assert.equal(membership.get("old"), undefined);
  assert.equal(old.status, "dead");
  assert.deepEqual(forgotten, ["old"]);
  assert.deepEqual(changes, ["old alive dead", "x undefined alive"]);
  assert.deepEqual(membership.live().map((m) => m.id).sort(), ["keep", "x"]);
});

test("a known member named at another address moves once it answers there, not before, and is not re-reported", () => {
  const { swim, membership, changes, forgotten, sent, spread } = setup([0.999, 0.5]);
  membership.apply(member("a", "alive", 1), 0);
  membership.apply(member("b"), 0);
  const a = membership.get("a")!;
  swim.onMember(member("a", "alive", 2, "a:2"), "b", "b:1", 100);
  assert.deepEqual([a.address, a.incarnation], ["a:1", 2], "the news applies; the address waits");
  const c = membership.candidate("a")!;
  assert.deepEqual([c.move, c.address, c.relay, c.seq], [true, "a:2", true, SEQ]);
  assert.deepEqual(sent(), { "a:2": [{ type: "ping", seq: SEQ, target: "a" }] });
  assert.deepEqual(spread(), [], "not spread before it answers");
  swim.onAck(SEQ, "a", 150);
  assert.equal(membership.get("a"), a, "the same member");
  assert.deepEqual([a.address, a.relayed, a.lastHeard, a.status], ["a:2", undefined, 150, "alive"]);
  assert.deepEqual(changes, [], "a move is no status change");
  assert.deepEqual(forgotten, []);
  assert.deepEqual(spread(), [member("a", "alive", 2, "a:2")]);
});

test("a move vouched for by another member records the voucher", () => {
  const { swim, membership } = setup([0.999, 0.5]);
  membership.apply(member("a"), 0);
  membership.apply(member("b"), 0);
  swim.onMember(member("a", "suspect", 1, "a:2"), "b", "b:1", 100);
  assert.equal(membership.candidate("a")?.move, true, "suspect news moves too");
  swim.onAck(SEQ, "b", 110);
  const a = membership.get("a")!;
  assert.deepEqual([a.address, a.relayed], ["a:2", "b:1"]);
});

test("dead news of a known member at another address does not move it", () => {
  const { swim, membership, changes } = setup([0.999, 0.5]);
  membership.apply(member("a"), 0);
  swim.onMember(member("a", "dead", 1, "a:2"), "b", "b:1", 100);
  assert.equal(membership.candidate("a"), undefined);
  assert.deepEqual([membership.get("a")!.address, membership.get("a")!.status], ["a:1", "dead"]);
  assert.deepEqual(changes, ["a alive dead"]);
});

test(`one source proposes ${MAX_CANDIDATES_PER_SOURCE} candidates at most; a refusal is counted, and a drop frees a place`, () => {
  const { swim, membership, counters } = setup();
  for (let i = 0; i < MAX_CANDIDATES_PER_SOURCE; i++) {
    assert.equal(swim.propose(member(`n${i}`), "src:1", 0), true);
  }
  assert.equal(counters.candidatesProposed, MAX_CANDIDATES_PER_SOURCE);
  assert.equal(swim.propose(member("extra"), "src:1", 0), false);
  assert.equal(membership.candidate("extra"), undefined);
  assert.equal(counters.candidatesRefused, 1);
  assert.equal(swim.propose(member("other"), "elsewhere:1", 0), true, "another source has room");
  assert.equal(swim.propose(member("n0", "alive", 5), "src:1", 0), true, "news of one held");
  assert.equal(membership.candidate("n0")?.incarnation, 5);
  assert.equal(swim.propose(member("n0", "alive", 1), "src:1", 0), true, "old news: still held");
  assert.equal(counters.candidatesRefused, 1);
  assert.equal(counters.candidatesProposed, MAX_CANDIDATES_PER_SOURCE + 1);
  membership.drop("n1");
  assert.equal(swim.propose(member("extra"), "src:1", 0), true);
  assert.equal(swim.propose(member("extra2"), "src:1", 0), false);
  assert.equal(counters.candidatesRefused, 2);
});

test("a stranger refused for room is not introduced to", () => {
  const { swim, membership, sent } = setup();
  for (let i = 0; i < MAX_CANDIDATES_PER_SOURCE; i++) {
    membership.propose(member(`n${i}`), "x:9", i + 1, 0);
  }
  sent();
  swim.heardFrom("x", "x:9", 10);
  assert.equal(membership.candidate("x"), undefined);
  assert.deepEqual(sent(), {});
});

test("propose(): known, ignored and updated candidates; dead news of one held drops it", () => {
  const m = new Membership("me", "me:1", 0);
  m.apply(member("k"), 0);
  assert.equal(m.propose(member("me"), "s:1", 1, 0), "ignored");
  assert.equal(m.propose(member("k"), "s:1", 2, 0), "known");
  assert.equal(m.propose(member("d", "dead"), "s:1", 3, 0), "ignored");
  assert.equal(m.propose(member("l", "left"), "s:1", 4, 0), "ignored");
  assert.equal(m.propose(member("c", "alive", 1), "s:1", 5, 0), "proposed");
  assert.equal(m.propose(member("c", "alive", 1, "c:2"), "s:2", 6, 0, true), "updated");
  assert.deepEqual([m.candidate("c")!.address, m.candidate("c")!.relay], ["c:1", false], "same");
  assert.equal(m.propose(member("c", "suspect", 1, "c:2"), "s:2", 6, 0, true), "updated");
  const c = m.candidate("c")!;
  assert.deepEqual([c.status, c.address, c.relay, c.seq, c.source], [
    "suspect",
    "c:2",
    true,
    5,
    "s:1",
  ]);
  assert.equal(m.propose(member("c", "alive", 2), "s:3", 7, 0, false), "updated");
  assert.deepEqual([c.incarnation, c.relay], [2, true], "relay is kept once set");
  assert.equal(m.propose(member("c", "dead", 2), "s:1", 8, 0), "ignored");
  assert.equal(m.candidate("c"), undefined);
  assert.equal(m.candidateBySeq(5), undefined);
  assert.equal(m.propose(member("c", "left", 9), "s:1", 9, 0), "ignored", "not held any more");
});

test("drop() forgets a candidate's sequence number and frees its source's place", () => {
  const m = new Membership("me", "me:1", 0);
  assert.equal(m.drop("none"), undefined);
  for (let i = 0; i < MAX_CANDIDATES_PER_SOURCE; i++) {
    assert.equal(m.propose(member(`n${i}`), "s:1", 100 + i, 0), "proposed");
  }
  assert.equal(m.propose(member("x"), "s:1", 1, 0), "full");
  assert.equal(m.drop("n0")?.id, "n0");
  assert.equal(m.drop("n0"), undefined);
  assert.equal(m.candidateBySeq(100), undefined);
  assert.equal(m.candidateBySeq(101)?.id, "n1");
  assert.equal(m.propose(member("x"), "s:1", 1, 0), "proposed");
  assert.equal(m.propose(member("y"), "s:1", 2, 0), "full");
  // Emptied and filled again: the count starts from zero.
  for (let i = 1; i < MAX_CANDIDATES_PER_SOURCE; i++) m.drop(`n${i}`);
  m.drop("x");
  for (let i = 0; i < MAX_CANDIDATES_PER_SOURCE; i++) {
    assert.equal(m.propose(member(`z${i}`), "s:1", 300 + i, 0), "proposed", `z${i}`);
  }
  assert.equal(m.propose(member("y"), "s:1", 2, 0), "full");
});

test("a candidate held under a sequence number reused by a newer one keeps the newer's", () => {
  const m = new Membership("me", "me:1", 0);
  m.propose(member("a"), "s:1", 7, 0);
  m.propose(member("b"), "s:2", 7, 0);
  assert.equal(m.candidateBySeq(7)?.id, "b");
  m.drop("a");
  assert.equal(m.candidateBySeq(7)?.id, "b");
});

test("partners(): live members heard directly; all live members when none is", () => {
  const m = new Membership("me", "me:1", 0);
  assert.deepEqual(m.partners(), []);
  m.apply(member("a"), 0);
  m.apply(member("b", "suspect"), 0);
  m.apply(member("d", "dead"), 0);
  assert.deepEqual(m.partners().map((x) => x.id), ["a", "b"]);
  m.get("a")!.relayed = "v:1";
  assert.deepEqual(m.partners().map((x) => x.id), ["b"]);
  m.get("b")!.relayed = "v:1";
  assert.deepEqual(m.partners().map((x) => x.id), ["a", "b"], "all relayed: all live");
  assert.equal(m.vouchedBy("v:1"), 2);
  assert.equal(m.vouchedBy("w:1"), 0);
});

test("a silent move's ping-reqs go to the member that named the new address, not to the member itself", () => {
  const { swim, membership, sent } = setup([0.999, 0.5]);
  membership.apply(member("a"), 0);
  membership.apply(member("b"), 0);
  swim.onMember(member("a", "alive", 1, "a:2"), "b", "b:1", 100);
  sent();
  swim.tick(300);
  assert.deepEqual(sent(), {
    "a:2": [{ type: "ping", seq: SEQ, target: "a" }],
    "b:1": [{ type: "ping-req", seq: SEQ, target: "a", address: "a:2" }],
  });
});

test("candidates are pinged each when due: one learned later does not wait for the earlier", () => {
  const { swim, membership, sent } = setup([0.999, 0.5, 0.25]);
  swim.heardFrom("x", "x:1", 0);
  swim.heardFrom("y", "y:1", 100);
  sent();
  swim.tick(199);
  assert.deepEqual(sent(), {});
  swim.tick(200);
  assert.deepEqual(Object.keys(sent()), ["x:1"]);
  assert.equal(swim.nextWakeAt(), 300, "y's second ping");
  swim.tick(300);
  assert.deepEqual(Object.keys(sent()), ["y:1"]);
  assert.deepEqual([membership.candidate("x")!.pings, membership.candidate("y")!.pings], [2, 2]);
  assert.equal(swim.nextWakeAt(), 400, "x's third ping");
});

test("a candidate that became a member meanwhile is not admitted again", () => {
  const { swim, membership, counters, changes, spread } = setup([0.999, 0.5]);
  swim.onMember(member("n"), "v", "v:1", 100);
  membership.apply(member("n", "alive", 3), 105);
  const n = membership.get("n")!;
  swim.onAck(SEQ, "n", 110);
  assert.equal(membership.get("n"), n);
  assert.equal(n.incarnation, 3);
  assert.equal(membership.candidate("n"), undefined, "the candidate is dropped");
  assert.equal(counters.candidatesAdmitted, 0);
  assert.deepEqual(changes, []);
  assert.deepEqual(spread(), []);
});

test("a member reached only through another is never asked to relay a candidate's ping", () => {
  const { swim, membership, sent } = setup([0.999, 0.5]);
  membership.apply(member("r"), 0);
  membership.get("r")!.relayed = "v:1";
  assert.deepEqual(membership.partners().map((m) => m.id), ["r"], "the only partner");
  swim.onMember(member("n"), "r", "r:1", 0);
  sent();
  swim.tick(200);
  assert.deepEqual(sent(), { "n:1": [{ type: "ping", seq: SEQ, target: "n" }] });
});

test("news that a held candidate left drops it", () => {
  const m = new Membership("me", "me:1", 0);
  assert.equal(m.propose(member("c"), "s:1", 5, 0), "proposed");
  assert.equal(m.propose(member("c", "left"), "s:1", 6, 0), "ignored");
  assert.equal(m.candidate("c"), undefined);
  assert.equal(m.candidateBySeq(5), undefined);
});

test(`${MAX_CANDIDATES} candidates are held at most, whatever their sources`, () => {
  const m = new Membership("me", "me:1", 0);
  const sources = MAX_CANDIDATES / MAX_CANDIDATES_PER_SOURCE;
  for (let s = 0; s < sources; s++) {
    for (let i = 0; i < MAX_CANDIDATES_PER_SOURCE; i++) {
      assert.equal(m.propose(member(`c${s}.${i}`), `s${s}:1`, s * 1_000 + i, 0), "proposed");
    }
  }
  assert.equal([...m.candidates()].length, MAX_CANDIDATES);
  assert.equal(m.propose(member("one-more"), "fresh:1", 99_999, 0), "full");
  m.drop("c0.0");
  assert.equal(m.propose(member("one-more"), "fresh:1", 99_999, 0), "proposed");
});

test("a candidate dropped and named again answers only to its new sequence number", () => {
  const { swim, membership, counters } = setup();
  assert.equal(membership.propose(member("a"), "s:1", 5, 0), "proposed");
  membership.drop("a");
  assert.equal(membership.propose(member("a"), "s:1", 6, 0), "proposed");
  assert.equal(membership.candidateBySeq(5), undefined);
  assert.equal(membership.candidateBySeq(6)?.id, "a");
  membership.candidate("a")!.pings = 1;
  swim.onAck(5, "a", 10);
  assert.equal(membership.get("a"), undefined, "the old ping's ack admits nothing");
  assert.equal(counters.candidatesAdmitted, 0);
});

test("a candidate vouched for at our own address never displaces us", () => {
  const { swim, membership, changes, forgotten } = setup([0.999, 0.5]);
  membership.apply(member("v"), 0);
  swim.onMember(member("impostor", "alive", 0, "me:1"), "v", "v:1", 0);
  swim.onAck(SEQ, "v", 10);
  assert.equal(membership.self.status, "alive");
  assert.equal(membership.get("me"), membership.self);
  assert.deepEqual(forgotten, []);
  assert.deepEqual(changes.filter((c) => c.startsWith("me ")), []);
});

// The engine proposes members named by `sys` records it holds (src/core/engine.ts).

const recordOf = memberRecord;

/** Engine `a` hears record `entry` from member b (at "b:1") at `now`. */
const hearFromB = (a: Engine, entry: Entry, now: number): void =>
  a.receive("b:1", {
    cluster: "c",
    sender: "b",
    messages: [{ type: "entries", entries: [entry] }],
  }, now);

/** Engine "a" at "a:1", started at 0, its output taken. */
function started(): Engine {
  const a = new Engine({ id: "a", address: "a:1" }, 0, seededRandom("a"));
  a.start(0);
  a.takeOutput();
  return a;
}

/** Ticks `a` every 50 ms over [from, to): the pings it sends to `address`. */
function pingsTo(a: Engine, address: string, from: number, to: number): number {
  let n = 0;
  for (let t = from; t < to; t += 50) {
    a.tick(t);
    for (const o of a.takeOutput().outgoing) {
      if (o.to === address) n += o.messages.filter((m) => m.type === "ping").length;
    }
  }
  return n;
}

test("a member named by a record that never answers is proposed twice per version of its record, three pings each", () => {
  const a = started();
  const gossip = (wall: number, now: number) => hearFromB(a, recordOf("x", wall), now);
  gossip(5, 10);
  const c = a.membership.candidate("x")!;
  assert.deepEqual([c.status, c.incarnation, c.address, c.source], ["alive", 0, "x:1", "b:1"]);
  assert.equal(pingsTo(a, "x:1", 0, 30_000), 6);
  assert.equal(a.membership.candidate("x"), undefined);
  assert.equal(pingsTo(a, "x:1", 30_000, 60_000), 0, "no more for this version");
  gossip(40_000, 60_000);
  assert.equal(a.membership.candidate("x")?.source, "b:1");
  assert.equal(pingsTo(a, "x:1", 60_000, 90_000), 6, "a new version: two tries again");
  assert.equal(a.membership.get("x"), undefined);
});

test("a member named by a record when there was no room is proposed from the record later", () => {
  const a = started();
  // b itself is a candidate from b:1 (it wrote to us), and these fill b:1's other places.
  const strangers: Message[] = Array.from({ length: MAX_CANDIDATES_PER_SOURCE - 1 }, (_, i) => ({
    type: "member",
    id: `s${i}`,
    address: `s${i}:1`,
    incarnation: 0,
    status: "alive",
  }));
  a.receive("b:1", { cluster: "c", sender: "b", messages: strangers }, 10);
  hearFromB(a, recordOf("x", 5), 10);
  assert.equal(a.membership.candidate("x"), undefined, "no room from b:1");
  assert.equal(a.counters.candidatesRefused, 1);
  a.takeOutput();
  let ping: { seq: number } | undefined;
  for (let t = 50; !ping && t < 5_000; t += 50) {
    a.tick(t);
    const out = a.takeOutput().outgoing.find((o) => o.to === "x:1");
    ping = out?.messages.find((m) => m.type === "ping") as { seq: number } | undefined;
  }
  const c = a.membership.candidate("x")!;
  assert.deepEqual([c.status, c.source, c.seq], ["alive", "\0records", ping!.seq]);
  a.receive(
    "x:1",
    { cluster: "c", sender: "x", messages: [{ type: "ack", seq: ping!.seq }] },
    5_000,
  );
  assert.equal(a.membership.get("x")?.status, "alive");
});

test("a record naming no address makes no candidate", () => {
  const a = started();
  hearFromB(a, recordOf("y", 5, { port: 1 }), 10);
  assert.equal(a.membership.candidate("y"), undefined);
  for (let t = 0; t < 5_000; t += 50) {
    a.tick(t);
    for (const o of a.takeOutput().outgoing) {
      assert.deepEqual(o.messages.filter((m) => m.type === "ping" && m.target === "y"), []);
    }
    assert.equal(a.membership.candidate("y"), undefined, `at ${t}`);
  }
});

test("a member displaced from its address is proposed again from its record, twice", () => {
  const a = started();
  const pingOf = (target: string) => {
    for (const o of a.takeOutput().outgoing) {
      const p = o.messages.find((m) => m.type === "ping" && m.target === target);
      if (p) return p as { seq: number };
    }
    return undefined;
  };
  hearFromB(a, recordOf("x", 5), 10);
  a.receive("x:1", {
    cluster: "c",
    sender: "x",
    messages: [{ type: "ack", seq: pingOf("x")!.seq }],
  }, 20);
  assert.equal(a.membership.get("x")?.address, "x:1");
  a.tick(600); // maintenance: x is a member
  a.takeOutput();
  // A restarted process at x's address, with another id.
  a.receive("x:1", { cluster: "c", sender: "y", messages: [] }, 700);
  a.receive("x:1", {
    cluster: "c",
    sender: "y",
    messages: [{ type: "ack", seq: pingOf("y")!.seq }],
  }, 710);
  assert.equal(a.membership.get("x"), undefined, "displaced");
  assert.equal(a.membership.get("y")?.address, "x:1");
  // Pings to x as a candidate: the probe of x in flight when it was displaced sends one
  // more ping of its own (its second direct ping), not counted here.
  let pings = 0;
  for (let t = 750; t < 30_000; t += 50) {
    a.tick(t);
    const seq = a.membership.candidate("x")?.seq;
    for (const o of a.takeOutput().outgoing) {
      pings += o.messages.filter((m) => m.type === "ping" && m.target === "x" && m.seq === seq)
        .length;
    }
  }
  assert.equal(pings, 6, "two tries of three pings, from the record it left");
  assert.equal(a.membership.get("x"), undefined);
});

// A probe's verdict on late ticks, at its bounds (src/core/swim.ts, MAX_LATE_FACTOR).

test("a tick exactly 20 ms late is on time: the probe fails then", () => {
  const { swim, membership, counters } = setup([0]);
  membership.apply(member("t"), 0);
  swim.tick(0);
  swim.tick(1_020);
  assert.equal(counters.probesFailed, 1);
  assert.equal(membership.get("t")!.status, "suspect");
});

test("a tick as late as the room left is not postponed: the probe fails then", () => {
  const { swim, membership, counters } = setup([0]);
  membership.apply(member("t"), 0);
  swim.tick(0);
  // 4,000 ms late, with 4 probe periods of room: no room left to wait.
  swim.tick(5_000);
  assert.equal(counters.probesFailed, 1);
});

test("a postponed verdict comes at the probe period plus the time waited, not before", () => {
  const { swim, membership, counters } = setup([0]);
  membership.apply(member("t"), 0);
  swim.tick(0);
  swim.tick(500);
  swim.tick(1_100); // 100 ms late: waits 200 ms more
  assert.equal(counters.probesFailed, 0);
  assert.equal(swim.nextWakeAt(), 1_200);
  swim.tick(1_199);
  assert.equal(counters.probesFailed, 0);
  swim.tick(1_200);
  assert.equal(counters.probesFailed, 1);
});

test("a member's record naming a new address makes a move candidate charged to the sender, not relayed; its own address none", () => {
  const a = started();
  hearFromB(a, recordOf("x", 5), 10);
  const ping = a.takeOutput().outgoing.flatMap((o) => o.messages).find((m) =>
    m.type === "ping" && m.target === "x"
  ) as { seq: number };
  a.receive("x:1", { cluster: "c", sender: "x", messages: [{ type: "ack", seq: ping.seq }] }, 20);
  assert.equal(a.membership.get("x")?.address, "x:1");
  hearFromB(a, recordOf("x", 6), 30);
  assert.equal(a.membership.candidate("x"), undefined, "the same address: no move");
  hearFromB(a, recordOf("x", 7, { address: "x:9" }), 40);
  const c = a.membership.candidate("x")!;
  assert.deepEqual([c.address, c.move, c.relay, c.source], ["x:9", true, false, "b:1"]);
  assert.equal(a.membership.get("x")?.address, "x:1", "until x:9 answers");
});
