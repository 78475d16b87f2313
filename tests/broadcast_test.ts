import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ECHO_MS,
  LOSS_MEMORY_MS,
  LOSSY_ACK_COPIES,
  MAX_ATTEMPTS,
  originFanout,
  Overlay,
  relayFanout,
  TreeBroadcast,
  type TreeSend,
} from "../src/core/broadcast.ts";
import { seededRandom } from "../src/core/random.ts";
import type { Entry } from "../src/core/store.ts";
import { Wire } from "../src/wire/wire.ts";
import { entry, ids } from "./_tree.ts";

function overlays(members: readonly string[]): Map<string, Overlay> {
  const out = new Map<string, Overlay>();
  for (const self of members) {
    const o = new Overlay(self);
    for (const id of members) o.set(id, true);
    out.set(self, o);
  }
  return out;
}

/** Parent of every member in the tree of message (origin, seq), each computed in its own view. */
function tree(all: Map<string, Overlay>, origin: string, seq: number) {
  const parent = new Map<string, string>();
  const depth = new Map([[origin, 0]]);
  const queue = [origin];
  let maxChildren = 0;
  while (queue.length) {
    const at = queue.shift()!;
    const children = all.get(at)!.children(origin, seq);
    if (at !== origin) maxChildren = Math.max(maxChildren, children.length);
    for (const c of children) {
      assert.ok(!parent.has(c) && c !== origin, `${c} reached twice`);
      parent.set(c, at);
      depth.set(c, depth.get(at)! + 1);
      queue.push(c);
    }
  }
  return { parent, depth: Math.max(...depth.values()), maxChildren };
}

/** Hops to the last member of a part of `size` members whose first gets it from its parent. */
function partDepth(size: number, fanout: number): number {
  return size <= 0 ? 0 : 1 + partDepth(Math.ceil((size - 1) / fanout), fanout);
}

test("every message's tree spans the members, 2 or 3 children a relay, 3 or 2 its origin", () => {
  for (const n of [2, 3, 5, 16, 64, 200]) {
    const members = ids(n);
    const all = overlays(members);
    for (let seq = 100; seq < 110; seq++) {
      const origin = members[seq % n]!;
      const t = tree(all, origin, seq);
      assert.equal(t.parent.size, n - 1, `N=${n} seq ${seq}: spanning`);
      const r = relayFanout(seq);
      assert.equal(r, seq % 4 === 0 ? 2 : 3);
      assert.ok(t.maxChildren <= r, `N=${n}: a relay with ${t.maxChildren} children`);
      const k = originFanout(seq);
      assert.equal(all.get(origin)!.children(origin, seq).length, Math.min(k, n - 1));
      // The origin's k parts, each split in r parts by its first member, and so on.
      const bound = partDepth(Math.ceil((n - 1) / k), r);
      assert.ok(t.depth <= bound, `N=${n} seq ${seq}: depth ${t.depth} > ${bound}`);
      if (n === 200) assert.equal(t.depth, bound, "no deeper than need be, and as deep");
    }
  }
  // Built in another order, the same tree.
  const members = ids(50);
  const shuffled = new Overlay("m7");
  for (const id of [...members].reverse()) shuffled.set(id, true);
  const all = overlays(members);
  for (let seq = 0; seq < 20; seq++) {
    assert.deepEqual(shuffled.children("m3", seq), all.get("m7")!.children("m3", seq));
  }
});

test("a member leaving: the trees over the members left still span them", () => {
  const members = ids(100);
  const all = overlays(members);
  for (const o of all.values()) o.set("m42", false);
  all.delete("m42");
  for (let seq = 40; seq < 50; seq++) assert.equal(tree(all, "m0", seq).parent.size, 98);
  assert.deepEqual(all.get("m0")!.children("m42", 1, "m42"), [], "not on the ring: no children");
});

/** A network of tree broadcasts on virtual time: latency, loss, and a trace of sends. */
class TreeNet {
  readonly nodes = new Map<string, TreeBroadcast>();
  readonly got = new Map<string, Set<string>>();
  /** Tree messages delivered (first copies and duplicates), by receiver. */
  readonly treeIn = new Map<string, number>();
  /** Tree messages sent, by sender. */
  readonly treeOut = new Map<string, number>();
  now = 0;
  loss = 0;
  /** Message types the loss applies to. */
  lossTypes = new Set(["tree", "ihave", "relay"]);
  /** Members whose datagrams, both ways, are lost (crashed). */
  readonly down = new Set<string>();
  readonly #queue: { at: number; from: string; send: TreeSend }[] = [];
  readonly #random = seededRandom("tree-net");

  constructor(members: readonly string[], public latency = 10) {
    for (const id of members) {
      const t = new TreeBroadcast(id, {}, 0);
      for (const other of members) t.overlay.set(other, true);
      this.nodes.set(id, t);
      this.got.set(id, new Set());
    }
  }

  broadcast(from: string, key: string, lone = true): void {
    this.got.get(from)!.add(key);
    this.#post(from, this.nodes.get(from)!.originate([entry(key, from)], this.now, lone));
  }

  #post(from: string, sends: readonly TreeSend[]): void {
    for (const send of sends) {
      if (send.message.type === "tree") {
        this.treeOut.set(from, (this.treeOut.get(from) ?? 0) + 1);
      }
      if (this.down.has(from) || this.down.has(send.to)) continue;
      if (this.lossTypes.has(send.message.type) && this.#random() < this.loss) continue;
      this.#queue.push({ at: this.now + this.latency, from, send });
    }
  }

  /** Runs until nothing is queued or due, or `maxMs` passes. */
  run(maxMs = 10_000): void {
    const end = this.now + maxMs;
    while (this.now < end) {
      const wake = Math.min(...[...this.nodes.values()].map((t) => t.nextWakeAt()));
      const next = this.#queue.reduce((m, q) => Math.min(m, q.at), Infinity);
      const at = Math.min(wake, next);
      if (at === Infinity) return;
      this.now = Math.max(this.now, at);
      const due = this.#queue.filter((q) => q.at <= this.now);
      this.#queue.splice(0, this.#queue.length, ...this.#queue.filter((q) => q.at > this.now));
      for (const { from, send } of due) this.#deliver(from, send);
      for (const [id, t] of this.nodes) this.#post(id, t.tick(this.now));
    }
  }

  #deliver(from: string, { to, message }: TreeSend): void {
    const t = this.nodes.get(to)!;
    switch (message.type) {
      case "tree": {
        this.treeIn.set(to, (this.treeIn.get(to) ?? 0) + 1);
        const r = t.receiveTree(from, message, this.now);
        if (r.fresh) { for (const e of message.entries) this.got.get(to)!.add(e.key); }
        this.#post(to, r.sends);
        break;
      }
      case "ihave":
        t.receiveIHave(from, message, this.now);
        break;
      case "relay":
        this.#post(to, t.receiveRelay(from, message, this.now));
        break;
    }
  }

  everyoneHas(key: string): boolean {
    return [...this.got].every(([id, s]) => this.down.has(id) || s.has(key));
  }
}

test("each member receives each message once, and relays about its share of them", () => {
  const members = ids(100);
  const net = new TreeNet(members);
  // One writer, a burst of 200 messages: the relaying moves with each message's tree.
  for (let i = 0; i < 200; i++) net.broadcast("m5", `b${i}`, false);
  net.run();
  for (let i = 0; i < 200; i++) assert.ok(net.everyoneHas(`b${i}`));
  const received = [...net.treeIn.values()].reduce((a, b) => a + b, 0);
  assert.equal(received, 200 * 99, "each member received each message once");
  const shares = members.map((id) => net.treeOut.get(id) ?? 0);
  const mean = shares.reduce((a, b) => a + b, 0) / members.length;
  assert.ok(Math.max(...shares) <= 3 * mean, `busiest ${Math.max(...shares)}, mean ${mean}`);
  assert.ok((net.treeOut.get("m5") ?? 0) <= 2.5 * 200, "the writer: 2 or 3 copies a message");
  // Lone messages from everyone: no member sends any message to more than 3.
  net.treeOut.clear();
  for (let i = 0; i < 100; i++) net.broadcast(members[i]!, `k${i}`);
  net.run();
  for (let i = 0; i < 100; i++) assert.ok(net.everyoneHas(`k${i}`));
  assert.ok(Math.max(...members.map((id) => net.treeOut.get(id) ?? 0)) <= 3 * 100);
  for (const t of net.nodes.values()) assert.equal(t.counters.retransmitted, 0, "no loss");
});

test("with 30% of the copies and acknowledgements lost, retransmissions bring every message", () => {
  const members = ids(50);
  const net = new TreeNet(members);
  net.loss = 0.3;
  for (let i = 0; i < 20; i++) net.broadcast(members[(i * 3) % 50]!, `k${i}`);
  net.run(5_000);
  for (let i = 0; i < 20; i++) assert.ok(net.everyoneHas(`k${i}`), `k${i} did not reach all`);
  const resent = [...net.nodes.values()].reduce((a, t) => a + t.counters.retransmitted, 0);
  assert.ok(resent > 0, "losses were repaired by retransmissions");
  for (const t of net.nodes.values()) assert.equal(t.unacknowledged, 0, "all acknowledged");
});

test("the children of a silent relay get the message from its parent", () => {
  const members = ids(40);
  const net = new TreeNet(members);
  const all = overlays(members);
  // m0's first message is number 0 (its clock read 0). A relay of it, with children, is
  // down (crashed, and SWIM has not said so yet).
  const first = all.get("m0")!.children("m0", 0)[0]!;
  assert.ok(all.get(first)!.children("m0", 0).length > 0);
  net.down.add(first);
  net.broadcast("m0", "k");
  net.run(5_000);
  assert.ok(net.everyoneHas("k"), "everyone but the crashed relay has it");
  assert.ok(net.nodes.get("m0")!.counters.takenOver > 0);
  // Retransmissions to it stop after a bounded number of attempts.
  assert.equal(net.nodes.get("m0")!.unacknowledged, 0);
  assert.ok(net.nodes.get("m0")!.counters.retransmitted <= MAX_ATTEMPTS);
});

test("a burst with a crashed relay: its children's copies are asked of members that have them", () => {
  const members = ids(40);
  const net = new TreeNet(members);
  const all = overlays(members);
  // m0's burst: 20 messages of a batch (numbers 1, 2, 3, 5, ...: 2 children each). The
  // member that relays most of them (with children of its own) is down.
  const seqs = Array.from({ length: 20 }, (_, i) => i + 1 + Math.floor(i / 3));
  const relays = new Map<string, number>();
  for (const seq of seqs) {
    for (const c of all.get("m0")!.children("m0", seq)) {
      if (all.get(c)!.children("m0", seq).length > 0) relays.set(c, (relays.get(c) ?? 0) + 1);
    }
  }
  const down = [...relays].sort((a, b) => b[1] - a[1])[0]![0];
  net.down.add(down);
  const m0 = net.nodes.get("m0")!;
  const tick = m0.tick.bind(m0);
  const sent: TreeSend[] = [];
  m0.tick = (now: number) => {
    const s = tick(now);
    sent.push(...s);
    return s;
  };
  for (let i = 0; i < seqs.length; i++) net.broadcast("m0", `k${i}`, false);
  net.run(5_000);
  for (let i = 0; i < seqs.length; i++) assert.ok(net.everyoneHas(`k${i}`), `k${i}`);
  assert.ok(m0.counters.takenOver > 0);
  // m0 sent copies to its own children only: those of the crashed one were asked of m0's
  // other children (by a relay each), which sent them.
  for (const s of sent) {
    if (s.message.type !== "tree") continue;
    assert.ok(all.get("m0")!.children("m0", s.message.seq).includes(s.to), s.to);
  }
  const relayed = [...net.nodes.values()].reduce((a, t) => a + t.counters.relayed, 0);
  assert.ok(relayed > 0);
  assert.equal(sent.filter((s) => s.message.type === "relay").length, m0.counters.takenOver);
});

test("a lone message takes an even number (3 children); a batch takes numbers in a row", () => {
  const a = new TreeBroadcast("a", {}, 0);
  for (const id of ["b", "c", "d", "e", "f", "g", "h"]) a.overlay.set(id, true);
  const lone = a.originate([], 0);
  assert.equal(lone.length, 3);
  const seqs = [a.originate([], 0, false), a.originate([], 0, false)].map((s) => {
    assert.ok(s.length === 2 || s.length === 3);
    return (s[0]!.message as { seq: number }).seq;
  });
  assert.equal(seqs[1]! - seqs[0]!, 1);
  assert.equal((lone[0]!.message as { seq: number }).seq % 2, 0);
});

test("a copy is acknowledged after the ack delay, a duplicate at once", () => {
  const a = new TreeBroadcast("a", { ackDelayMs: 10 }, 0);
  a.overlay.set("b", true);
  const m = { type: "tree" as const, origin: "b", seq: 4, hop: 0, entries: [] };
  assert.ok(a.receiveTree("b", m, 100).fresh);
  assert.equal(a.nextWakeAt(), 110);
  assert.deepEqual(a.tick(110), [{
    to: "b",
    message: { type: "ihave", origin: "b", hop: 10, seqs: [4] },
  }]);
  assert.equal(a.receiveTree("b", m, 200).fresh, false);
  assert.equal(a.nextWakeAt(), 200, "the sender is retransmitting: at once");
  assert.deepEqual(a.tick(200).map((s) => hopOf(s)), [0], "no wait");
  // Its first acknowledgement was lost: this one goes again, ECHO_MS later (and again, up
  // to LOSSY_ACK_COPIES copies).
  assert.deepEqual(a.tick(200 + ECHO_MS).map((s) => hopOf(s)), [ECHO_MS], "again");
  for (let k = 2; k < LOSSY_ACK_COPIES; k++) a.tick(200 + k * ECHO_MS);
  assert.equal(a.nextWakeAt(), Infinity);
  // One of a batch (a number not divisible by 4): 2 ms. The `hop` of an `ihave` is the
  // wait meant, not how late this member's timer ran.
  assert.ok(a.receiveTree("b", { ...m, seq: 5 }, 300).fresh);
  assert.equal(a.nextWakeAt(), 302);
  assert.deepEqual(a.tick(330).map((s) => s.message), [
    { type: "ihave", origin: "b", hop: 2, seqs: [5] },
  ]);
});

test("after a loss seen, a lone message is acknowledged twice; a copy late or twice LOSSY_ACK_COPIES times", () => {
  const a = new TreeBroadcast("a", { ackDelayMs: 10 }, 0);
  for (const id of ["b", "c"]) a.overlay.set(id, true);
  const m = (seq: number, hop = 0) => ({
    type: "tree" as const,
    origin: "b",
    seq,
    hop,
    entries: [],
  });
  const acks = (now: number) => a.tick(now).map((s) => [s.to, s.message.type, hopOf(s)]);
  // No loss seen: one acknowledgement, nothing after it.
  assert.ok(a.receiveTree("b", m(4), 0).fresh);
  assert.deepEqual(acks(10), [["b", "ihave", 10]]);
  assert.equal(a.nextWakeAt(), Infinity, "acknowledged once");
  // Its acknowledgement was lost (the copy comes again): acknowledged at once, and again
  // every ECHO_MS, each in a datagram of its own (another tick), each `hop` the longer wait.
  assert.equal(a.receiveTree("b", m(4), 100).fresh, false);
  assert.deepEqual(acks(100), [["b", "ihave", 0]]);
  for (let k = 1; k < LOSSY_ACK_COPIES; k++) {
    assert.equal(a.nextWakeAt(), 100 + k * ECHO_MS);
    assert.deepEqual(acks(100 + k * ECHO_MS), [["b", "ihave", k * ECHO_MS]], `copy ${k + 1}`);
  }
  assert.equal(a.nextWakeAt(), Infinity, `${LOSSY_ACK_COPIES} copies, no more`);
  // A loss seen lately: a new lone message's acknowledgement goes twice, from any sender
  // (it came on time: no loss on its way just now).
  assert.ok(a.receiveTree("c", m(8), 200).fresh);
  assert.deepEqual(acks(210), [["c", "ihave", 10]]);
  assert.deepEqual(acks(210 + ECHO_MS), [["c", "ihave", 10 + ECHO_MS]]);
  assert.equal(a.nextWakeAt(), Infinity, "twice, no more");
  // A batch's message (a number not divisible by 4) is acknowledged once: a burst batches
  // its acknowledgements, and its copies are many.
  assert.ok(a.receiveTree("b", m(9), 300).fresh);
  assert.deepEqual(acks(302), [["b", "ihave", 2]]);
  assert.equal(a.nextWakeAt(), Infinity);
  // LOSS_MEMORY_MS after the last loss seen: once again.
  assert.ok(a.receiveTree("b", m(12), 100 + LOSS_MEMORY_MS).fresh);
  assert.deepEqual(acks(110 + LOSS_MEMORY_MS), [["b", "ihave", 10]]);
  assert.equal(a.nextWakeAt(), Infinity);
  // A copy that came late (sent again on its way) is a loss seen as well.
  const late = a.receiveTree("c", m(16, 200), 20_000);
  assert.ok(late.fresh);
  assert.deepEqual(acks(20_000), [["c", "ihave", 0]], "late: at once");
  for (let k = 1; k < LOSSY_ACK_COPIES; k++) {
    assert.deepEqual(acks(20_000 + k * ECHO_MS), [["c", "ihave", k * ECHO_MS]], `copy ${k + 1}`);
  }
  assert.equal(a.nextWakeAt(), Infinity);
  // The next on time, twice again.
  assert.ok(a.receiveTree("c", m(20), 20_100).fresh);
  assert.deepEqual(acks(20_110), [["c", "ihave", 10]]);
  assert.deepEqual(acks(20_110 + ECHO_MS), [["c", "ihave", 10 + ECHO_MS]]);
  assert.equal(a.nextWakeAt(), Infinity);
});

test("the retransmission timeout follows the measured round trips", () => {
  const a = new TreeBroadcast("a", { ackDelayMs: 5, retransmitMs: 40 }, 0);
  a.overlay.set("b", true);
  assert.equal(a.rto, 40, "nothing measured yet");
  for (let i = 0; i < 20; i++) {
    const t = i * 1000;
    const [send] = a.originate([], t);
    const seq = (send!.message as { seq: number }).seq;
    a.receiveIHave("b", { type: "ihave", origin: "a", hop: 0, seqs: [seq] }, t + 12);
  }
  // The measured round trip plus the ack delay the peer may have waited, and a margin.
  assert.ok(a.rto >= 17 && a.rto <= 20, `rto ${a.rto}`);
  assert.equal(a.unacknowledged, 0);
});

test("the tree messages survive the wire: encode, decode, and bad ones are refused", () => {
  const wire = new Wire({ cluster: "c", sender: "s" });
  const stamped: Entry = { ...entry("k", "s"), wall: 1_700_000_000_000, logical: 2 };
  const messages = [
    {
      type: "tree" as const,
      origin: "s",
      seq: 1_700_000_000_000 * 1024,
      hop: 3,
      entries: [stamped],
    },
    { type: "ihave" as const, origin: "s", hop: 2, seqs: [10, 11, 15] },
    { type: "graft" as const, origin: "s", seqs: [7] },
    { type: "prune" as const, origin: "s" },
  ];
  const [datagram] = wire.encode(messages);
  const r = new Wire({ cluster: "c", sender: "r" }).decode(datagram!, "s", 0);
  assert.equal(r.status, "envelope");
  if (r.status !== "envelope") return;
  assert.deepEqual(r.envelope.messages, messages);
});

test("retransmissions come due late, many at once: one probe a silent member, 32 at most a tick", () => {
  const a = new TreeBroadcast("a", { retransmitMs: 40 }, 0);
  for (let i = 0; i < 40; i++) a.overlay.set(`m${i}`, true);
  let copies = 0;
  const peers = new Set<string>();
  for (let i = 0; i < 20; i++) {
    for (const s of a.originate([], 0)) {
      copies++;
      peers.add(s.to);
    }
  }
  assert.equal(a.unacknowledged, copies);
  // The event loop was stuck for a second: every copy is overdue, none acknowledged.
  const sends = a.tick(1_000);
  assert.equal(sends.length, Math.min(32, peers.size), "one copy a member, no echo, no takeover");
  assert.equal(new Set(sends.map((s) => s.to)).size, sends.length);
  assert.equal(a.counters.takenOver, 0);
  assert.ok(a.counters.heldBack >= copies - 32, "the others wait for the probes' answers");
  // On time and few: the echo (a second copy, 1 ms later); the takeover of the silent
  // members' children after their second silent round.
  const b = new TreeBroadcast("b", { retransmitMs: 40 }, 0);
  for (let i = 0; i < 40; i++) b.overlay.set(`m${i}`, true);
  const first = b.originate([], 0);
  assert.equal(b.tick(40).length, first.length, "the retransmissions");
  assert.equal(b.tick(41).length, first.length, "the echoes");
  // Nobody answers: each silent round doubles their next timeout (40, 40, 80 ms); the
  // takeover comes with the third, not before.
  let at = 41, again: TreeSend[] = [];
  while (b.counters.takenOver === 0 && at < 10_000) again = b.tick(at = b.nextWakeAt());
  assert.equal(at, 40 + 40 + 80);
  assert.ok(again.length > first.length, "retransmissions and the silent members' children");
});

test("round trips grow past the timeout (an overloaded loop): copies do not multiply", () => {
  const members = ids(16);
  const net = new TreeNet(members, 2);
  // A quick network first: the round trips measured are short, and so is the timeout.
  for (let i = 0; i < 16; i++) net.broadcast(members[i]!, `w${i}`);
  for (let i = 0; i < 50; i++) net.broadcast("m0", `v${i}`, false);
  net.run();
  const before = [...net.treeOut.values()].reduce((a, b) => a + b, 0);
  // Then every hop takes 40 ms, a round trip 80 ms: every copy's acknowledgement is late.
  net.latency = 40;
  for (let i = 0; i < 100; i++) net.broadcast("m1", `b${i}`, false);
  net.run();
  for (let i = 0; i < 100; i++) assert.ok(net.everyoneHas(`b${i}`));
  const copies = [...net.treeOut.values()].reduce((a, b) => a + b, 0) - before;
  const sum = (f: (t: TreeBroadcast) => number) =>
    [...net.nodes.values()].reduce((a, t) => a + f(t), 0);
  const needed = 100 * 15;
  // Before congestion control: 25,350 copies (17 times the need), every copy resent,
  // echoed and taken over; now 4,850.
  assert.ok(copies <= 4 * needed, `${copies} copies for ${needed} needed`);
  const takenOver = sum((t) => t.counters.takenOver);
  assert.ok(takenOver <= 0.4 * needed, `${takenOver} copies to children of slow members`);
  assert.ok(sum((t) => t.counters.heldBack) > 0, "a probe went, the other copies waited");
  for (const t of net.nodes.values()) assert.equal(t.unacknowledged, 0);
});

/** Sequence number of a tree send. */
const seqOf = (s: TreeSend) => (s.message as { seq: number }).seq;
const hopOf = (s: TreeSend) => (s.message as { hop: number }).hop;

test("a copy resent for a loss is marked late; a late copy goes on twice, to every child", () => {
  const members = ids(40);
  const a = new TreeBroadcast("m0", { retransmitMs: 40 }, 0);
  for (const id of members) a.overlay.set(id, true);
  const first = a.originate([], 0);
  assert.equal(first.length, 3);
  const seq = seqOf(first[0]!);
  for (const s of first) assert.equal(hopOf(s), 0);
  // Two children answer, the third does not: its copy (or its answer) was lost.
  const [b, c, d] = first.map((s) => s.to);
  for (const from of [b!, c!]) {
    a.receiveIHave(from, { type: "ihave", origin: "m0", hop: 0, seqs: [seq] }, 22);
  }
  const again = a.tick(a.nextWakeAt());
  assert.deepEqual(again.map((s) => s.to), [d], "resent to the silent child only");
  assert.equal(a.counters.takenOver, 0, "one loss: its children are not taken over yet");
  assert.equal(hopOf(again[0]!), 2, "marked late by a timeout's hops");
  const echo = a.tick(a.nextWakeAt());
  assert.deepEqual(echo.map((s) => [s.to, hopOf(s)]), [[d, 2]], "the echo, late too");
  // Still silent: resent again, once, and its children are taken over with this second
  // retransmission, marked late; none of these is echoed (their subtrees are).
  const at = a.nextWakeAt();
  const second = a.tick(at);
  const grandchildren = overlays(members).get("m0")!.children("m0", seq, d);
  assert.deepEqual(second.map((s) => s.to), [d!, ...grandchildren]);
  assert.equal(a.counters.takenOver, grandchildren.length);
  for (const s of second) assert.equal(hopOf(s), 2);
  assert.ok(a.nextWakeAt() > at + 1, "no echo: the next is a timeout away");

  // Its receiver finds the copy later than its place in the tree: it sends it on twice.
  const all = overlays(members);
  const relay = members.find((id) =>
    id !== "m0" && all.get(id)!.depth("m0", seq) >= 2 && all.get(id)!.children("m0", seq).length
  )!;
  const depth = all.get(relay)!.depth("m0", seq);
  const onTime = new TreeBroadcast(relay, {}, 0);
  const isLate = new TreeBroadcast(relay, {}, 0);
  for (const t of [onTime, isLate]) for (const id of members) t.overlay.set(id, true);
  const m = (hop: number) => ({ type: "tree" as const, origin: "m0", seq, hop, entries: [] });
  const parent = relay === "m1" ? "m2" : "m1";
  const sent = onTime.receiveTree(parent, m(depth - 1), 100).sends;
  assert.deepEqual(sent.map((s) => s.to), all.get(relay)!.children("m0", seq));
  for (const s of sent) assert.equal(hopOf(s), depth, "on time: one hop more");
  assert.equal(onTime.tick(101).filter((s) => s.message.type === "tree").length, 0);
  const lateSent = isLate.receiveTree(parent, m(depth - 1 + 2), 100).sends;
  assert.deepEqual(lateSent.map((s) => s.to), sent.map((s) => s.to));
  for (const s of lateSent) assert.equal(hopOf(s), depth + 2, "still late by as much");
  assert.equal(isLate.nextWakeAt(), 100, "its sender waits: acknowledged at once");
  assert.deepEqual(isLate.tick(100).map((s) => [s.to, s.message.type]), [[parent, "ihave"]]);
  const echoes = isLate.tick(101).filter((s) => s.message.type === "tree");
  assert.deepEqual(echoes.map((s) => s.to), sent.map((s) => s.to), "each child's second copy");
});

test("a member's depth in a message's tree is its hops from the origin", () => {
  for (const n of [2, 16, 100]) {
    const members = ids(n);
    const all = overlays(members);
    for (let seq = 8; seq < 12; seq++) {
      const depth = new Map([["m1", 0]]);
      const queue = ["m1"];
      while (queue.length) {
        const at = queue.shift()!;
        for (const c of all.get(at)!.children("m1", seq)) {
          depth.set(c, depth.get(at)! + 1);
          queue.push(c);
        }
      }
      for (const id of members) {
        assert.equal(all.get(id)!.depth("m1", seq), depth.get(id), `N=${n} ${id}`);
        assert.equal(all.get("m0")!.depth("m1", seq, id), depth.get(id), "in another's view");
      }
    }
  }
  const o = new Overlay("a");
  o.set("b", true);
  assert.equal(o.depth("b", 1, "zz"), 0, "not on the ring");
});

test("the origin has 3 children for a number divisible by 4, else 2; a lone message takes one", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 8].map(originFanout), [3, 2, 2, 2, 3, 2, 3]);
  const a = new TreeBroadcast("a", {}, 0);
  for (const id of ["b", "c", "d", "e", "f", "g", "h"]) a.overlay.set(id, true);
  for (let i = 0; i < 5; i++) {
    const batch = a.originate([], 0, false);
    const lone = a.originate([], 0);
    assert.equal(seqOf(lone[0]!) % 4, 0);
    assert.equal(lone.length, 3);
    assert.equal(batch.length, originFanout(seqOf(batch[0]!)));
  }
});

test("an acknowledgement's wait is left out of the round trip; each timeout adds its own", () => {
  const a = new TreeBroadcast("a", { ackDelayMs: 15, retransmitMs: 300 }, 0);
  a.overlay.set("b", true);
  for (let i = 0; i < 30; i++) {
    const t = i * 1000;
    const [send] = a.originate([], t, i % 2 === 0);
    const seq = seqOf(send!);
    // The network's round trip is 40 ms; the acknowledgement waited 15 ms (lone) or 2 ms.
    const wait = seq % 4 === 0 ? 15 : 2;
    a.receiveIHave("b", { type: "ihave", origin: "a", hop: wait, seqs: [seq] }, t + 40 + wait);
  }
  assert.ok(Math.abs(a.rto - (40 + 15 + 2)) < 0.5, `lone: ${a.rto}`);
  assert.ok(Math.abs(a.burstRto - (40 + 2 + 2)) < 0.5, `batch: ${a.burstRto}`);
  assert.equal(a.unacknowledged, 0);
});

test("a copy resent when nobody answered is marked late too, unless its member was slow", () => {
  const a = new TreeBroadcast("a", { retransmitMs: 40 }, 0);
  a.overlay.set("b", true);
  const [first] = a.originate([], 0);
  assert.equal(hopOf(first!), 0);
  // Nobody answered anything here, but b was never found slow: likely a loss.
  assert.deepEqual(a.tick(40).map((s) => [s.to, hopOf(s)]), [["b", 2]]);
  assert.deepEqual(a.tick(41).map((s) => [s.to, hopOf(s)]), [["b", 2]], "its echo");
  // b stayed silent through that probe: its timeout backed off, and its copies wait.
  const [second] = a.originate([], 41);
  assert.equal(second!.to, "b");
  assert.ok(a.rtoOf("b") > a.rto, "b's timeout backed off");
});

test("a member silent through an earlier round has its children taken over at once", () => {
  const members = ids(40);
  const all = overlays(members);
  const a = new TreeBroadcast("m0", { retransmitMs: 40 }, 0);
  for (const id of members) a.overlay.set(id, true);
  const answer = (sends: readonly TreeSend[], except: string, at: number) => {
    for (const s of sends) {
      if (s.to === except || s.message.type !== "tree") continue;
      a.receiveIHave(s.to, { type: "ihave", origin: "m0", hop: 0, seqs: [seqOf(s)] }, at);
    }
  };
  // The first message: one child, d, never answers; it is resent to once (and echoed).
  const first = a.originate([], 0);
  const d = first.find((s) => all.get(s.to)!.children("m0", seqOf(s)).length > 0)!.to;
  answer(first, d, 20);
  assert.deepEqual(a.tick(a.nextWakeAt()).map((s) => s.to), [d]);
  a.tick(a.nextWakeAt());
  assert.equal(a.counters.takenOver, 0);
  // A later message whose tree gives d children: at its first retransmission, d has been
  // silent through a round already: its children get the message now.
  let t = 100;
  for (;;) {
    const sends = a.originate([], t);
    const seq = seqOf(sends[0]!);
    if (sends.some((s) => s.to === d) && all.get(d)!.children("m0", seq).length > 0) {
      answer(sends, d, t + 20);
      let again: TreeSend[] = [];
      while (!again.some((s) => s.to === d && seqOf(s) === seq)) {
        again = a.tick(a.nextWakeAt());
      }
      const children = all.get(d)!.children("m0", seq);
      for (const c of children) {
        assert.ok(again.some((s) => s.to === c && seqOf(s) === seq), `${c} taken over`);
      }
      break;
    }
    answer(sends, "", t + 20);
    t += 100;
    assert.ok(t < 100_000, "no such message");
  }
});
