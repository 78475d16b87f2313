// The tree broadcast past a member's capacity: one member of five takes fewer datagrams a
// ms than the others send it, and drops what arrives beyond its receive buffer (as a
// kernel does). The copies sent to it must not multiply (src/core/broadcast.ts: WINDOW).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { TreeSend } from "../src/core/broadcast.ts";
import { entry, ids, member } from "./_tree.ts";

interface Datagram {
  readonly at: number;
  readonly from: string;
  readonly send: TreeSend;
}

/**
 * Five members, 1 ms apart; m0-m3 each write one lone message a ms for `loadMs`; m4 handles
 * `perMs` datagrams a ms and holds `buffer` waiting, dropping the rest. Runs `drainMs` more.
 */
function overload(perMs: number, loadMs = 1_000, drainMs = 5_000, buffer = 50) {
  const members = ids(5);
  const slow = "m4";
  const nodes = new Map(members.map((id) => [id, member(id, members)]));
  const got = new Map(members.map((id) => [id, new Set<string>()]));
  let wire: Datagram[] = [];
  const inbox: Datagram[] = [];
  let now = 0, writes = 0, copies = 0, toSlow = 0, dropped = 0, droppedCopies = 0;
  const post = (from: string, sends: readonly TreeSend[]) => {
    for (const send of sends) {
      if (send.message.type === "tree") copies++;
      wire.push({ at: now + 1, from, send });
    }
  };
  const deliver = ({ from, send: { to, message } }: Datagram) => {
    const t = nodes.get(to)!;
    if (message.type === "tree") {
      const r = t.receiveTree(from, message, now);
      if (r.fresh) { for (const e of message.entries) got.get(to)!.add(e.key); }
      post(to, r.sends);
    } else if (message.type === "ihave") t.receiveIHave(from, message, now);
    else post(to, t.receiveRelay(from, message, now));
  };
  for (now = 0; now < loadMs + drainMs; now++) {
    if (now < loadMs) {
      for (const w of members.slice(0, 4)) {
        const key = `${w}/${now}`;
        writes++;
        got.get(w)!.add(key);
        post(w, nodes.get(w)!.originate([entry(key, w)], now));
      }
    }
    const due = wire.filter((d) => d.at <= now);
    wire = wire.filter((d) => d.at > now);
    for (const d of due) {
      if (d.send.to !== slow) deliver(d);
      else {
        if (d.send.message.type === "tree") toSlow++;
        if (inbox.length < buffer) inbox.push(d);
        else {
          dropped++;
          if (d.send.message.type === "tree") droppedCopies++;
        }
      }
    }
    for (let i = 0; i < perMs && inbox.length > 0; i++) deliver(inbox.shift()!);
    for (const [id, t] of nodes) if (t.nextWakeAt() <= now) post(id, t.tick(now));
  }
  const missed = (id: string) => writes - got.get(id)!.size;
  return { writes, copies, toSlow, dropped, droppedCopies, missed, nodes };
}

test("a member that keeps up: each write sent to it once, 4 copies a write in all", () => {
  const r = overload(6);
  assert.equal(r.dropped, 0);
  assert.equal(r.toSlow, r.writes, "once each");
  assert.equal(r.copies, 4 * r.writes, "one copy to each of the 4 others");
  for (const id of ids(5)) assert.equal(r.missed(id), 0);
});

test("a member past its capacity: the copies sent to it stay near one a write", () => {
  // It takes 3 datagrams a ms of the 4 tree messages (and their acknowledgements) sent it.
  // Before the window, every loss to it was resent twice and marked late (sent on twice by
  // its subtree), and each drop made more: 4.41 copies a write to it, 8.28 in all, its
  // buffer dropping 16,785 datagrams; now 1.36, 4.99 and 7,568, of which 1,596 copies (its
  // round trip grew: it queues, and its window bounds the retransmissions to it). Most of
  // the other drops are acknowledgements sent again: a copy it sent again is answered
  // LOSSY_ACK_COPIES times (4,273 dropped, 1,601 copies, when answered twice).
  const r = overload(3);
  assert.ok(r.dropped > 0, "it was overloaded");
  assert.ok(r.toSlow <= 1.5 * r.writes, `${r.toSlow} copies to it for ${r.writes} writes`);
  assert.ok(r.copies <= 5.5 * r.writes, `${r.copies} copies for ${r.writes} writes`);
  assert.ok(
    r.droppedCopies <= 0.5 * r.writes,
    `${r.droppedCopies} copies dropped for ${r.writes} writes`,
  );
  assert.ok(r.dropped <= 2.5 * r.writes, `${r.dropped} dropped for ${r.writes} writes`);
  // What it missed, anti-entropy brings (not run here); the members that keep up miss only
  // writes that it was to relay to them (it answers: it is not taken over).
  for (const id of ["m0", "m1", "m2", "m3"]) {
    assert.ok(r.missed(id) <= 0.01 * r.writes, `${id} missed ${r.missed(id)}`);
  }
  for (const t of r.nodes.values()) assert.equal(t.unacknowledged, 0, "all settled");
});

test("twice past its capacity: still under two copies a write to it", () => {
  // 2 datagrams a ms: before the window 7.49 copies a write to it, 10.85 in all; now 1.50
  // and 4.79 (1.45 and 4.64 before acknowledgements answering a late copy went 4 times).
  const r = overload(2);
  assert.ok(r.toSlow <= 2 * r.writes, `${r.toSlow} copies to it for ${r.writes} writes`);
  assert.ok(r.copies <= 5.5 * r.writes, `${r.copies} copies for ${r.writes} writes`);
});
