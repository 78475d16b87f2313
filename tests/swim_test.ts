// Unit tests of SWIM (src/core/swim.ts) on the engine's real shared parts (member table,
// outbox, counters), without a cluster: each probe, relay, suspicion and refutation step,
// with the exact messages it queues.
import { test } from "node:test";
import assert from "node:assert/strict";
import { swimSetup } from "./_swim.ts";
import type { MemberMessage, MemberStatus } from "../src/core/messages.ts";
import { suspicionTimeout } from "../src/core/suspicion.ts";

const setup = swimSetup;

const member = (
  id: string,
  status: MemberStatus = "alive",
  incarnation = 0,
  by?: string,
): MemberMessage => ({
  type: "member",
  id,
  address: `${id}:1`,
  incarnation,
  status,
  ...(by === undefined ? {} : { by }),
});

test("the first probe is drawn within one probe period; reconnection waits its own interval", () => {
  assert.equal(setup({}, () => 0, 100).swim.nextWakeAt(), 100);
  assert.equal(setup({}, () => 0.9995, 100).swim.nextWakeAt(), 1_099, "rounded down");
  assert.equal(
    setup({ probeIntervalMs: 10_000, reconnectIntervalMs: 3_000 }, () => 0.5, 100).swim
      .nextWakeAt(),
    3_100,
  );
});

test("a membership update is piggybacked retransmitMult × ceil(log10(N + 1)) times", () => {
  const count = (members: number) => {
    const { swim, membership, outbox } = setup({ retransmitMult: 3 });
    for (let i = 1; i < members; i++) membership.apply(member(`m${i}`), 0);
    swim.broadcast(member("news"));
    let times = 0;
    for (let round = 0; round < 20; round++) {
      outbox.send("x:1", { type: "ack", seq: round });
      const [batch] = outbox.take(true);
      times += batch!.messages.filter((m) => m.type === "member" && m.id === "news").length;
    }
    return times;
  };
  assert.equal(count(1), 3, "N = 1: log10(2) rounds up to 1");
  assert.equal(count(9), 3, "N = 9: log10(10) is exactly 1");
  assert.equal(count(10), 6, "N = 10: log10(11) rounds up to 2");
});

test("a datagram from an unknown sender makes it a candidate, pinged and introduced to; its ack admits it", () => {
  const { swim, membership, changes, sent } = setup();
  swim.heardFrom("x", "x:9", 50);
  assert.equal(membership.get("x"), undefined, "not a member before it answers");
  const c = membership.candidate("x")!;
  assert.deepEqual([c.address, c.source, c.pings, c.relay], ["x:9", "x:9", 1, false]);
  assert.deepEqual(sent(), {
    "x:9": [{ type: "ping", seq: c.seq, target: "x" }, membership.update(membership.self)],
  });
  swim.heardFrom("x", "x:9", 60);
  assert.deepEqual(sent(), {}, "a candidate is pinged and introduced to once");
  assert.deepEqual(changes, []);
  swim.onAck(c.seq + 1, "x", 65);
  assert.equal(membership.get("x"), undefined, "only the ack of its ping admits it");
  swim.onAck(c.seq, "x", 70);
  const x = membership.get("x")!;
  assert.deepEqual([x.address, x.status, x.lastHeard, x.since], ["x:9", "alive", 70, 70]);
  assert.equal(membership.candidate("x"), undefined);
  assert.deepEqual(changes, ["x undefined alive"]);
  swim.heardFrom("x", "x:9", 80);
  assert.equal(x.lastHeard, 80);
  assert.deepEqual(sent(), {}, "nothing to tell a known live member");
  assert.equal(changes.length, 1);
});

test("a member we think suspect or dead that talks to us is told so, so that it refutes", () => {
  const { swim, membership, sent } = setup();
  membership.apply(member("s", "suspect", 2), 0);
  membership.apply(member("d", "dead", 1), 0);
  swim.heardFrom("s", "s:1", 10);
  swim.heardFrom("d", "d:1", 10);
  assert.deepEqual(sent(), { "s:1": [member("s", "suspect", 2)], "d:1": [member("d", "dead", 1)] });
  assert.equal(membership.get("s")!.lastHeard, 10);
});

test("a ping is answered only when it names us", () => {
  const { swim, sent } = setup();
  swim.onPing(7, "me", "p:1");
  swim.onPing(8, "someone-else", "p:1");
  assert.deepEqual(sent(), { "p:1": [{ type: "ack", seq: 7 }] });
});

test("a probe pings one live member, asks helpers after the probe timeout, and suspects at the period's end", () => {
  const { swim, membership, counters, changes, sent } = setup({
    probeIntervalMs: 1_000,
    probeTimeoutMs: 300,
    indirectChecks: 2,
  });
  for (const id of ["a", "b", "c", "t"]) membership.apply(member(id), 0);
  membership.apply(member("gone", "dead"), 0);
  // random() = 0: the shuffled order is [b, c, t, a] and the probe takes from its end.
  swim.tick(0);
  assert.equal(counters.probes, 1);
  const first = sent();
  assert.deepEqual(Object.keys(first), ["a:1"]);
  const ping = first["a:1"]![0] as { type: "ping"; seq: number; target: string };
  assert.deepEqual(ping, { type: "ping", seq: 1, target: "a" });
  assert.equal(swim.nextWakeAt(), 300, "the probe timeout comes first");
  swim.tick(299);
  assert.deepEqual(sent(), {}, "not before the probe timeout");
  swim.tick(300);
  const second = sent();
  const reqs = Object.entries(second).filter(([, ms]) => ms[0]!.type === "ping-req");
  assert.equal(reqs.length, 2, "indirectChecks helpers");
  for (const [to, ms] of reqs) {
    assert.notEqual(to, "a:1");
    assert.deepEqual(ms, [{ type: "ping-req", seq: 1, target: "a", address: "a:1" }]);
  }
  assert.deepEqual(second["a:1"], [{ type: "ping", seq: 1, target: "a" }], "a second direct ping");
  assert.equal(second["gone:1"], undefined, "a dead member is no helper");
  assert.equal(swim.nextWakeAt(), 1_000, "then the probe period's end");
  swim.tick(999);
  assert.equal(counters.probesFailed, 0);
  assert.equal(membership.get("a")!.status, "alive");
  sent();
  swim.tick(1_000);
  assert.equal(counters.probesFailed, 1);
  assert.equal(counters.suspicions, 1);
  const a = membership.get("a")!;
  assert.equal(a.status, "suspect");
  assert.deepEqual(changes, ["a alive suspect"]);
  const suspicion = member("a", "suspect", 0, "me");
  const out = sent();
  assert.deepEqual(out["a:1"]![0], suspicion, "the suspect is told first");
  // Five members: an unconfirmed suspicion lasts maxMult × mult × log10(5) probe periods.
  const timeout = suspicionTimeout({
    members: 6,
    confirmations: 0,
    mult: 5,
    maxMult: 6,
    probeIntervalMs: 1_000,
  });
  assert.equal(a.suspectDeadline, 1_000 + timeout);
  assert.ok(swim.nextWakeAt() <= 2_000, "the next probe");
});

test("an acked probe ends without suspicion and marks the target heard", () => {
  const { swim, membership, counters, sent } = setup({ probeIntervalMs: 1_000 });
  membership.apply(member("a"), 0);
  swim.tick(0);
  sent();
  swim.onAck(2, "a", 100); // not our probe's sequence number
  assert.equal(membership.get("a")!.lastHeard, 0);
  swim.onAck(1, "a", 100);
  assert.equal(membership.get("a")!.lastHeard, 100);
  assert.equal(swim.nextWakeAt(), 1_000, "no probe timeout pending");
  swim.tick(600);
  assert.deepEqual(sent(), {}, "no helpers asked after the ack");
  swim.tick(1_000);
  assert.equal(counters.probesFailed, 0);
  assert.equal(membership.get("a")!.status, "alive");
  assert.equal(counters.probes, 2, "the next round probes again");
});

test("probes go round-robin over live members, each once per round", () => {
  const { swim, membership, sent } = setup({ probeIntervalMs: 100 }, () => 0.4);
  for (const id of ["a", "b", "c"]) membership.apply(member(id), 0);
  const targets: string[] = [];
  let now = 0;
  for (let i = 0; i < 6; i++) {
    now = swim.nextWakeAt();
    swim.tick(now);
    const ping = Object.values(sent()).flat().find((m) => m.type === "ping") as
      | { seq: number; target: string }
      | undefined;
    targets.push(ping!.target);
    swim.onAck(ping!.seq, ping!.target, now);
  }
  assert.deepEqual([...targets.slice(0, 3)].sort(), ["a", "b", "c"]);
  assert.deepEqual([...targets.slice(3)].sort(), ["a", "b", "c"]);
});

test("a probe target forgotten or dead meanwhile is skipped; with nobody live there is no probe", () => {
  const { swim, membership, counters, sent } = setup({ probeIntervalMs: 100 }, () => 0);
  swim.tick(0);
  assert.equal(counters.probes, 0, "nobody to probe");
  for (const id of ["a", "b"]) membership.apply(member(id), 0);
  swim.tick(100); // order [b, a]: probes a
  swim.onAck(1, "a", 100);
  membership.apply(member("b", "dead"), 150);
  swim.tick(200); // b, next in order, is dead now: a new round
  const ping = Object.values(sent()).flat().filter((m) => m.type === "ping");
  assert.deepEqual(ping.map((m) => (m as { target: string }).target), ["a", "a"]);
});

test("a failed probe whose target was forgotten meanwhile suspects nobody", () => {
  const { swim, membership, counters } = setup({ probeIntervalMs: 1_000 });
  membership.apply(member("a"), 0);
  swim.tick(0);
  membership.forget("a");
  swim.tick(1_000);
  assert.equal(counters.probesFailed, 1);
  assert.equal(counters.suspicions, 0);
});

test("a suspect is declared dead at its deadline, not a millisecond before", () => {
  const { swim, membership, changes, outbox } = setup({ probeIntervalMs: 1_000 });
  membership.apply(member("a"), 0);
  membership.apply(member("s", "alive", 3), 0);
  swim.onMember(member("s", "suspect", 3, "a"), "a", "a:1", 0);
  const s = membership.get("s")!;
  const deadline = s.suspectDeadline;
  assert.ok(deadline > 0);
  assert.equal(swim.nextWakeAt(), Math.min(deadline, swim.nextWakeAt()));
  outbox.take(false);
  swim.tick(deadline - 1);
  assert.equal(s.status, "suspect");
  swim.tick(deadline);
  assert.equal(s.status, "dead");
  assert.equal(s.incarnation, 3);
  assert.deepEqual(changes.slice(-1), ["s suspect dead"]);
  outbox.send("x:1", { type: "ack", seq: 0 });
  const news = outbox.take(true)[0]!.messages.filter((m) => m.type === "member");
  assert.deepEqual(news.find((m) => (m as MemberMessage).id === "s"), member("s", "dead", 3));
});

test("the deadline of a pending suspicion bounds nextWakeAt()", () => {
  const { swim, membership } = setup(
    { probeIntervalMs: 1_000, reconnectIntervalMs: 1e9 },
    () => 0,
    0,
  );
  membership.apply(member("a"), 0);
  swim.tick(0); // probes a: the wake is its timeout, 500
  swim.onAck(1, "a", 0);
  assert.equal(swim.nextWakeAt(), 1_000);
  membership.apply(member("s"), 0);
  swim.onMember(member("s", "suspect", 0, "z"), "a", "a:1", 0);
  const deadline = membership.get("s")!.suspectDeadline;
  membership.get("s")!.suspectDeadline = 700;
  assert.equal(swim.nextWakeAt(), 700);
  membership.get("s")!.suspectDeadline = deadline;
  assert.equal(swim.nextWakeAt(), 1_000);
});

test("confirmations from distinct members shorten a suspicion; a repeat from the same one does not", () => {
  const { swim, membership } = setup({ probeIntervalMs: 1_000 });
  for (const id of ["a", "b", "c", "d", "e"]) membership.apply(member(id), 0);
  swim.onMember(member("e", "suspect", 0, "a"), "a", "a:1", 100);
  const e = membership.get("e")!;
  const first = e.suspectDeadline;
  const timeout = (confirmations: number) =>
    suspicionTimeout({ members: 6, confirmations, mult: 5, maxMult: 6, probeIntervalMs: 1_000 });
  assert.equal(first, 100 + timeout(0));
  swim.onMember(member("e", "suspect", 0, "a"), "a", "a:1", 200);
  assert.equal(e.suspectDeadline, first, "the same suspecter again");
  swim.onMember(member("e", "suspect", 0, "b"), "c", "c:1", 300);
  assert.equal(e.suspectDeadline, 100 + timeout(1), "measured from the suspicion's start");
  swim.onMember(member("e", "suspect", 0), "c", "c:1", 300);
  assert.equal(e.suspectDeadline, 100 + timeout(2), "without `by`, the sender confirms");
  swim.onMember(member("e", "suspect", 1, "a"), "a", "a:1", 400);
  assert.equal(e.suspectDeadline, 400 + timeout(0), "a new incarnation starts afresh");
});

test("our own probe failure confirms a suspicion we heard of, once", () => {
  const { swim, membership, counters, sent } = setup({ probeIntervalMs: 1_000 });
  membership.apply(member("a"), 0);
  swim.onMember(member("a", "suspect", 0, "z"), "z", "z:1", 0);
  const a = membership.get("a")!;
  assert.equal(a.suspicion!.by.size, 1);
  sent();
  swim.tick(0);
  sent();
  swim.tick(1_000); // the probe of a fails
  assert.equal(counters.suspicions, 1);
  assert.deepEqual([...a.suspicion!.by].sort(), ["me", "z"]);
  assert.deepEqual(sent()["a:1"]!.filter((m) => m.type === "member"), [
    member("a", "suspect", 0, "me"),
  ]);
  // A second failed probe of a member we already suspect changes nothing.
  swim.tick(2_000);
  assert.equal(counters.probesFailed, 2);
  assert.equal(counters.suspicions, 1);
});

test("news of a new member makes it a candidate; once it answers it is reported and spread", () => {
  const { swim, membership, changes, outbox } = setup();
  swim.onMember(member("n", "alive", 4), "x", "x:1", 10);
  assert.equal(membership.get("n"), undefined, "not a member before it answers");
  const c = membership.candidate("n")!;
  assert.deepEqual([c.incarnation, c.source, c.relay], [4, "x:1", true]);
  assert.deepEqual(changes, []);
  assert.deepEqual(outbox.take(true).map((o) => [o.to, o.messages]), [
    ["n:1", [{ type: "ping", seq: c.seq, target: "n" }]],
  ], "pinged, and no news of it spread yet");
  swim.onAck(c.seq, "n", 15);
  assert.equal(membership.get("n")!.incarnation, 4);
  assert.deepEqual(changes, ["n undefined alive"]);
  outbox.send("n:1", { type: "ack", seq: 0 }, "n");
  const out = outbox.take(true);
  assert.deepEqual(out[0]!.messages, [{ type: "ack", seq: 0 }, member("n", "alive", 4)]);
  // Old news changes nothing and is not spread again.
  swim.onMember(member("n", "alive", 3), "x", "x:1", 20);
  assert.deepEqual(changes, ["n undefined alive"]);
  outbox.send("y:1", { type: "ack", seq: 1 });
  const later = outbox.take(true)[0]!.messages;
  assert.equal(later.filter((m) => m.type === "member" && m.incarnation === 3).length, 0);
  // A change of incarnation alone is spread but not reported as a status change.
  swim.onMember(member("n", "alive", 5), "x", "x:1", 30);
  assert.deepEqual(changes, ["n undefined alive"]);
  swim.onMember(member("n", "left", 5), "x", "x:1", 40);
  assert.deepEqual(changes.slice(-1), ["n alive left"]);
});

test("a suspicion of us is refuted: a higher incarnation, to the sender, to fanout peers and piggybacked", () => {
  const { swim, membership, counters, outbox } = setup({ fanout: 2 });
  for (const id of ["a", "b", "c"]) membership.apply(member(id), 0);
  swim.onMember(member("me", "suspect", 0, "a"), "a", "a:1", 10);
  assert.equal(membership.self.incarnation, 1);
  assert.equal(counters.refutations, 1);
  const alive: MemberMessage = { ...member("me", "alive", 1), address: "me:1" };
  const out = outbox.take(false);
  const got = out.map((o) => [o.to, o.messages.length]);
  assert.deepEqual(out.find((o) => o.to === "a:1")!.messages[0], alive);
  assert.equal(out.filter((o) => o.messages.some((m) => m.type === "member")).length, out.length);
  // The sender plus 2 peers (the sender may be one of them).
  const total = out.reduce((n, o) => n + o.messages.length, 0);
  assert.equal(total, 3, JSON.stringify(got));
  outbox.send("z:1", { type: "ack", seq: 0 });
  assert.deepEqual(outbox.take(true)[0]!.messages[1], alive, "piggybacked too");
});

test("stale news of our death is answered with our current record; stale alive news is not", () => {
  const { swim, membership, counters, sent } = setup();
  membership.self.incarnation = 5;
  swim.onMember(member("me", "dead", 2), "a", "a:1", 10);
  assert.equal(counters.refutations, 0);
  assert.deepEqual(sent(), { "a:1": [{ ...member("me", "alive", 5), address: "me:1" }] });
  swim.onMember(member("me", "alive", 2), "a", "a:1", 10);
  assert.deepEqual(sent(), {});
  membership.self.status = "left";
  swim.onMember(member("me", "dead", 2), "a", "a:1", 10);
  assert.deepEqual(sent(), {}, "a member that left does not argue");
});

test("a ping-req is relayed only to a known member at its known address, and the ack relayed back once", () => {
  const { swim, membership, sent } = setup({ probeIntervalMs: 1_000 });
  membership.apply(member("t"), 0);
  const req = { type: "ping-req" as const, seq: 42, target: "t", address: "t:1" };
  swim.onPingReq({ ...req, target: "unknown", address: "unknown:1" }, "r:1", 0);
  swim.onPingReq({ ...req, address: "elsewhere:1" }, "r:1", 0);
  swim.onPingReq({ ...req, target: "me", address: "me:1" }, "r:1", 0);
  assert.deepEqual(sent(), {});
  swim.onPingReq(req, "r:1", 0);
  assert.deepEqual(sent(), { "t:1": [{ type: "ping", seq: 1, target: "t" }] });
  swim.onAck(1, "t", 10);
  assert.deepEqual(sent(), { "r:1": [{ type: "ack", seq: 42 }] });
  swim.onAck(1, "t", 10);
  assert.deepEqual(sent(), {}, "relayed once");
});

test("a relay is forgotten once its probe period ended, and not before", () => {
  const { swim, membership, sent } = setup({ probeIntervalMs: 1_000 });
  membership.apply(member("t"), 0);
  const req = { type: "ping-req" as const, seq: 9, target: "t", address: "t:1" };
  swim.onPingReq(req, "r:1", 0); // relay seq 1, expires at 1000
  swim.onPingReq({ ...req, seq: 10 }, "r:1", 500); // relay seq 2, expires at 1500
  sent();
  swim.expireRelays(999);
  swim.onAck(1, "t", 999);
  assert.deepEqual(sent(), { "r:1": [{ type: "ack", seq: 9 }] });
  swim.expireRelays(1_500);
  swim.onAck(2, "t", 1_500);
  assert.deepEqual(sent(), {}, "expired at 1500");
});

test("a dead member is pinged every reconnect interval, so that partitions heal", () => {
  const { swim, membership, sent } = setup({ reconnectIntervalMs: 2_000 }, () => 0.6);
  swim.tickReconnect(1_999);
  assert.deepEqual(sent(), {});
  swim.tickReconnect(2_000);
  assert.deepEqual(sent(), {}, "nobody dead");
  membership.apply(member("a", "dead"), 0);
  membership.apply(member("b", "dead"), 0);
  membership.apply(member("c", "left"), 0);
  swim.tickReconnect(3_999);
  assert.deepEqual(sent(), {}, "next at 4000");
  swim.tickReconnect(4_000);
  // random() = 0.6 of [a, b]: b.
  assert.deepEqual(sent(), { "b:1": [{ type: "ping", seq: 1, target: "b" }] });
  assert.equal(swim.nextWakeAt(), Math.min(6_000, swim.nextWakeAt()));
});

test("only alive members help probe; a target found dead meanwhile is not suspected", () => {
  const { swim, membership, counters, sent } = setup({
    probeIntervalMs: 1_000,
    probeTimeoutMs: 300,
    indirectChecks: 5,
  });
  for (const id of ["a", "b", "s"]) membership.apply(member(id), 0);
  membership.apply(member("s", "suspect", 1), 0);
  swim.tick(0); // order [b, s, a] with random() = 0: probes a
  sent();
  swim.tick(300);
  const helpers = Object.entries(sent()).filter(([, ms]) => ms[0]!.type === "ping-req");
  assert.deepEqual(helpers.map(([to]) => to), ["b:1"], "a suspect is no helper");
  membership.apply(member("a", "dead"), 500);
  swim.tick(1_000);
  assert.equal(counters.probesFailed, 1);
  assert.equal(counters.suspicions, 0);
  assert.equal(membership.get("a")!.status, "dead");
});

test("only news of the same suspicion confirms it: not alive news, not an older incarnation's, and `by` counts, not the sender", () => {
  const { swim, membership, changes } = setup({ probeIntervalMs: 1_000 });
  for (const id of ["a", "b", "c", "d", "e"]) membership.apply(member(id), 0);
  swim.onMember(member("e", "suspect", 2, "a"), "a", "a:1", 100);
  const e = membership.get("e")!;
  const first = e.suspectDeadline;
  swim.onMember(member("e", "alive", 2), "b", "b:1", 200);
  swim.onMember(member("e", "suspect", 1, "c"), "c", "c:1", 200);
  swim.onMember(member("e", "suspect", 2, "a"), "d", "d:1", 200);
  assert.equal(e.suspectDeadline, first, "no confirmation among these");
  assert.deepEqual([...e.suspicion!.by], ["a"]);
  assert.deepEqual(changes.filter((c) => c.startsWith("e ")), ["e alive suspect"]);
});

test("news that changes a known member is not answered with our own record", () => {
  const { swim, membership, outbox } = setup();
  membership.apply(member("n"), 0);
  swim.onMember(member("n", "alive", 5), "x", "x:1", 30);
  assert.deepEqual(outbox.take(false), []);
});

test("our failed probe of a member others suspect reports no second status change", () => {
  const { swim, membership, changes } = setup({ probeIntervalMs: 1_000 });
  membership.apply(member("a"), 0);
  swim.onMember(member("a", "suspect", 0, "z"), "z", "z:1", 0);
  swim.tick(0);
  swim.tick(1_000);
  assert.deepEqual(changes, ["a alive suspect"]);
});

test("a member forgotten after it was put in the probe order is not probed", () => {
  const { swim, membership, sent } = setup({ probeIntervalMs: 100 }, () => 0);
  for (const id of ["a", "b"]) membership.apply(member(id), 0);
  swim.tick(0); // order [b, a]: probes a
  swim.onAck(1, "a", 0);
  membership.forget("b");
  membership.apply(member("b"), 50); // a new member under the same id: not the one in the order
  sent();
  swim.tick(100);
  const pings = Object.values(sent()).flat().filter((m) => m.type === "ping");
  assert.deepEqual(pings.map((m) => (m as { target: string }).target), ["a"]);
});

test("a suspicion relayed by another member counts its suspecter, not the relay", () => {
  const { swim, membership } = setup({ probeIntervalMs: 1_000 });
  for (const id of ["a", "b", "c", "d", "e"]) membership.apply(member(id), 0);
  swim.onMember(member("e", "suspect", 0, "a"), "c", "c:1", 100);
  swim.onMember(member("e", "suspect", 0, "c"), "c", "c:1", 100);
  const timeout = suspicionTimeout({
    members: 6,
    confirmations: 1,
    mult: 5,
    maxMult: 6,
    probeIntervalMs: 1_000,
  });
  assert.equal(membership.get("e")!.suspectDeadline, 100 + timeout);
});

test("a probe's verdict on a late tick waits as long again: the acks may be unread yet", () => {
  const { swim, membership, counters } = setup({ probeIntervalMs: 1_000 });
  membership.apply(member("a"), 0);
  membership.apply(member("b"), 0);
  swim.tick(0); // probes a (the order is shuffled with random() = 0)
  swim.tick(500);
  // The event loop was busy: the tick due at 1,000 runs at 1,300. The ack is read after it.
  swim.tick(1_300);
  assert.equal(counters.probesFailed, 0, "no verdict on a late tick");
  assert.equal(swim.nextWakeAt(), 1_600, "it waits 300 ms more");
  swim.onAck(1, "a", 1_310);
  swim.tick(1_600);
  assert.equal(counters.suspicions, 0);
  // Without an ack, ticks on time give the verdict one probe period after the next probe.
  let now = 1_600;
  while (counters.probes < 2) swim.tick(now = swim.nextWakeAt());
  const sentAt = now;
  while (counters.probesFailed === 0) swim.tick(now = swim.nextWakeAt());
  assert.equal(now, sentAt + 1_000);
  assert.equal(counters.suspicions, 1);
});

test("late ticks postpone a verdict by at most 4 probe periods", () => {
  const { swim, membership, counters } = setup({ probeIntervalMs: 1_000 });
  membership.apply(member("a"), 0);
  swim.tick(0);
  let now = 0;
  while (counters.probesFailed === 0 && now < 20_000) swim.tick(now = swim.nextWakeAt() + 900);
  assert.ok(now <= 1_000 + 4 * 1_000 + 900, `verdict at ${now}`);
});

test("news of a member at its own address is spread, not proposed as a move", () => {
  const { swim, membership, spread } = setup();
  membership.apply(member("a"), 0);
  membership.apply(member("x"), 0);
  swim.onMember(member("x", "alive", 1), "a", "a:1", 10);
  assert.equal(membership.get("x")!.incarnation, 1);
  assert.equal(membership.candidate("x"), undefined);
  assert.deepEqual(spread().filter((m) => (m as MemberMessage).id === "x"), [
    member("x", "alive", 1),
  ]);
});

test("news that a member at another address is dead is spread, not proposed as a move", () => {
  const { swim, membership, spread } = setup();
  membership.apply(member("a"), 0);
  membership.apply(member("x"), 0);
  const dead: MemberMessage = { ...member("x", "dead", 1), address: "x:2" };
  swim.onMember(dead, "a", "a:1", 10);
  const x = membership.get("x")!;
  assert.deepEqual([x.status, x.address], ["dead", "x:1"]);
  assert.equal(membership.candidate("x"), undefined);
  assert.deepEqual(
    spread().filter((m) => (m as MemberMessage).id === "x").map((m) => (m as MemberMessage).status),
    ["dead"],
  );
});

test("news of a member alive or suspect at another address is a move to propose, not spread yet", () => {
  for (const status of ["alive", "suspect"] as const) {
    const { swim, membership, spread } = setup();
    membership.apply(member("a"), 0);
    membership.apply(member("x"), 0);
    swim.onMember({ ...member("x", status, 1), address: "x:2" }, "a", "a:1", 10);
    const c = membership.candidate("x");
    assert.deepEqual([c?.address, c?.move], ["x:2", true], status);
    assert.equal(membership.get("x")!.address, "x:1", "until x:2 answers");
    assert.deepEqual(spread().filter((m) => (m as MemberMessage).id === "x"), [], status);
  }
});
