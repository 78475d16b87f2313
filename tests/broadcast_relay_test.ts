// Unit tests of the takeover handed on (src/core/broadcast.ts): a member that takes over the
// children of a silent member asks members that have the message to send it, by a `relay`
// each, and sends a copy itself only when nobody is known to have it; the member asked
// sends its copy marked late and awaits its acknowledgement, or refuses the request.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Overlay, type TreeSend } from "../src/core/broadcast.ts";
import type { RelayMessage, TreeMessage } from "../src/core/messages.ts";
import { ids, ihave, member } from "./_tree.ts";

const relay = (origin: string, seq: number, to: string): RelayMessage => ({
  type: "relay",
  origin,
  seq,
  to,
});

/** Sends as `to:type`, a relay as `helper:relay>to`, a tree message with its hop. */
const sent = (sends: readonly TreeSend[]) =>
  sends.map((s) => {
    const m = s.message;
    if (m.type === "relay") return `${s.to}:relay>${m.to}`;
    return m.type === "tree" ? `${s.to}:tree+${m.hop}` : `${s.to}:${m.type}`;
  });

const message = (origin: string, seq: number, hop: number): TreeMessage => ({
  type: "tree",
  origin,
  seq,
  hop,
  entries: [],
});

test("a relay: the member asked sends its copy marked late, and awaits its acknowledgement", () => {
  const members = ids(16);
  const h = member("m1", members);
  // A batch's message (a relay asks only for those), kept here for the cache's time.
  assert.ok(h.receiveTree("m0", message("m0", 1, 0), 0).fresh);
  for (const id of h.overlay.children("m0", 1)) h.receiveIHave(id, ihave("m0", 1), 5);
  const target = members.find((id) =>
    !["m0", "m1", "m2"].includes(id) && !h.overlay.children("m0", 1).includes(id)
  )!;
  // m2 asks for target's copy: it goes from here, hop + 2 (late), and waits to be answered.
  const before = h.unacknowledged;
  assert.deepEqual(sent(h.receiveRelay("m2", relay("m0", 1, target), 10)), [`${target}:tree+3`]);
  assert.equal(h.counters.relayed, 1);
  assert.equal(h.unacknowledged, before + 1);
  // Not answered: resent, as any copy.
  let again: TreeSend[] = [];
  while (!again.some((s) => s.to === target)) again = h.tick(h.nextWakeAt());
  h.receiveIHave(target, ihave("m0", 1), h.nextWakeAt());
  assert.ok(h.counters.retransmitted >= 1);
  // Asked again for the same member: sent it already, refused.
  assert.deepEqual(h.receiveRelay("m3", relay("m0", 1, target), 20), []);
  assert.equal(h.counters.relayRefused, 1);
});

test("a relay is refused for a message not kept, this member, the requester, the origin, a member off the ring", () => {
  const members = ids(16);
  const h = member("m1", members);
  h.receiveTree("m0", message("m0", 1, 0), 0);
  h.receiveTree("m0", message("m0", 0, 0), 0);
  for (const id of h.overlay.children("m0", 0)) h.receiveIHave(id, ihave("m0", 0), 5);
  const refused = [
    relay("m0", 5, "m5"), // a message it never had
    relay("m9", 1, "m5"), // another origin's
    relay("m0", 0, "m5"), // a lone message: not kept once acknowledged (at a leaf, never)
    relay("m0", 1, "m1"), // this member
    relay("m0", 1, "m2"), // the requester (below)
    relay("m0", 1, "m0"), // the origin
    relay("m0", 1, "zz"), // not on its ring
  ];
  for (const r of refused) assert.deepEqual(h.receiveRelay("m2", r, 5), [], JSON.stringify(r));
  assert.deepEqual([h.counters.relayed, h.counters.relayRefused], [0, refused.length]);
});

test("a batch's message: a takeover is handed to the members that acknowledged it; a lone one's, and with none, sent from here", () => {
  const members = ids(40);
  const all = new Overlay("m0");
  for (const id of members) all.set(id, true);
  // A batch's message (2 children: b, and d with at least 2 children of its own).
  const a = member("m0", members);
  let first: TreeSend[] = [];
  let seq = 0, d = "";
  for (;;) {
    first = a.originate([], 0, false);
    seq = (first[0]!.message as TreeMessage).seq;
    d = first[0]!.to;
    if (all.children("m0", seq, d).length >= 2) break;
    a.receiveIHave(first[0]!.to, ihave("m0", seq), 0);
    a.receiveIHave(first[1]!.to, ihave("m0", seq), 0);
  }
  assert.equal(first.length, 2);
  const grandchildren = all.children("m0", seq, d);
  const b = first[1]!.to;
  // b acknowledges; d stays silent: at its second retransmission, its children are handed
  // to b, no copy goes from here to them.
  a.receiveIHave(b, ihave("m0", seq), 5);
  const out: TreeSend[] = [];
  while (a.counters.takenOver === 0) out.push(...a.tick(a.nextWakeAt()));
  const relays = out.filter((s) => s.message.type === "relay");
  assert.deepEqual(
    relays.map((s) => [s.to, (s.message as RelayMessage).to]),
    grandchildren.map((g) => [b, g]),
  );
  assert.ok(!out.some((s) => s.message.type === "tree" && grandchildren.includes(s.to)));

  // The same without b's acknowledgement: nobody is known to have it, the copies go from
  // here, late; and so they do for a lone message (its takeover's time counts), b or not.
  for (const lone of [false, true]) {
    const c = member("m0", members);
    let sends: TreeSend[] = [];
    let n = 0;
    for (;;) {
      sends = c.originate([], 0, !lone ? false : true);
      n = (sends[0]!.message as TreeMessage).seq;
      if (all.children("m0", n, sends[0]!.to).length >= 1) break;
      for (const s of sends) c.receiveIHave(s.to, ihave("m0", n), 0);
    }
    const silent = sends[0]!.to;
    if (lone) { for (const s of sends.slice(1)) c.receiveIHave(s.to, ihave("m0", n), 5); }
    else c.receiveIHave("zz", ihave("m0", 99), 1); // others answer: silence means gone
    const later: TreeSend[] = [];
    while (c.counters.takenOver === 0) later.push(...c.tick(c.nextWakeAt()));
    assert.ok(!later.some((s) => s.message.type === "relay"), `lone ${lone}`);
    for (const g of all.children("m0", n, silent)) {
      const copy = later.find((s) => s.to === g && s.message.type === "tree");
      assert.ok(copy && (copy.message as TreeMessage).hop === 2, `lone ${lone}: ${g}`);
    }
  }
});

/**
 * A batch's message `seq` of m0 in the tree over `members`, relayed by `r` to `kids`, `r`'s
 * children (`silent`, with children, and one or two leaves), found among the numbers.
 */
function batchRelay(all: Overlay, members: readonly string[]) {
  for (let seq = 1; seq < 4_000; seq += seq % 4 === 3 ? 2 : 1) {
    for (const r of members.slice(1)) {
      const kids = all.children("m0", seq, r);
      const silent = kids.find((k) => all.children("m0", seq, k).length > 0);
      const leaves = kids.filter((k) => all.children("m0", seq, k).length === 0);
      if (!silent || leaves.length === 0 || leaves.length + 1 !== kids.length) continue;
      // A member that sent it to r (any holder) with children of its own in that tree.
      const p = members.find((id) =>
        ![r, ...kids, "m0"].includes(id) && all.children("m0", seq, id).length >= 2
      );
      if (p) return { seq, r, kids, silent, leaves, p };
    }
  }
  throw new Error("no such tree");
}

test("a relay takes over for a silent child: the holders are the member it came from and the children that acknowledged", () => {
  const members = ids(100);
  const all = new Overlay("m0");
  for (const id of members) all.set(id, true);
  const { seq, r, kids, silent, leaves, p } = batchRelay(all, members);
  const t = member(r, members);
  const depth = all.depth("m0", seq, r);
  assert.deepEqual(t.receiveTree(p, message("m0", seq, depth - 1), 0).sends.map((s) => s.to), kids);
  // The leaves acknowledge, the other child stays silent while p answers (to other
  // messages): it is gone, its children are handed on, to the leaves first (no copy of
  // their own to send, against p's 2 or more).
  for (const l of leaves) t.receiveIHave(l, ihave("m0", seq), 5);
  const out: TreeSend[] = [];
  while (t.counters.takenOver === 0) {
    const at = t.nextWakeAt();
    t.receiveIHave(p, ihave("zz", 1), at - 0.5);
    out.push(...t.tick(at));
  }
  const grandchildren = all.children("m0", seq, silent);
  const relays = out.filter((s) => s.message.type === "relay");
  assert.deepEqual(relays.map((s) => (s.message as RelayMessage).to), grandchildren);
  const load = new Map([
    [p, all.children("m0", seq, p).length],
    ...leaves.map((l) => [l, 0] as const),
  ]);
  for (const s of relays) {
    // Each goes to a holder with the fewest copies to send (ties: the first of p, leaves).
    const least = Math.min(...load.values());
    assert.equal(load.get(s.to), least, s.to);
    assert.equal([...load].find(([, v]) => v === least)![0], s.to);
    load.set(s.to, least + 1);
  }
  assert.ok(relays.every((s) => s.to !== p) || grandchildren.length > 2);
});
