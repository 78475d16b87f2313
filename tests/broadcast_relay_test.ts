// Unit tests of the takeover handed on (src/core/broadcast.ts): a member that takes over the
// children of a silent member asks members that have the message to send it, by a `relay`
// each, and sends a copy itself only when nobody is known to have it; the member asked
// sends its copy marked late and awaits its acknowledgement, or refuses the request.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Overlay, TreeBroadcast, type TreeSend } from "../src/core/broadcast.ts";
import type { IHaveMessage, RelayMessage, TreeMessage } from "../src/core/messages.ts";

const ids = (n: number) => Array.from({ length: n }, (_, i) => `m${i}`);

function member(self: string, members: readonly string[]): TreeBroadcast {
  const t = new TreeBroadcast(self, {}, 0);
  for (const id of members) t.overlay.set(id, true);
  return t;
}

const ihave = (origin: string, ...seqs: number[]): IHaveMessage => ({
  type: "ihave",
  origin,
  hop: 0,
  seqs,
});

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
  assert.ok(h.receiveTree("m0", message("m0", 0, 0), 0).fresh);
  const target = members.find((id) =>
    !["m0", "m1", "m2"].includes(id) && !h.overlay.children("m0", 0).includes(id)
  )!;
  // m2 asks for target's copy: it goes from here, hop + 2 (late), and waits to be answered.
  const before = h.unacknowledged;
  assert.deepEqual(sent(h.receiveRelay("m2", relay("m0", 0, target), 10)), [`${target}:tree+3`]);
  assert.equal(h.counters.relayed, 1);
  assert.equal(h.unacknowledged, before + 1);
  // Not answered: resent, as any copy.
  let again: TreeSend[] = [];
  while (!again.some((s) => s.to === target)) again = h.tick(h.nextWakeAt());
  h.receiveIHave(target, ihave("m0", 0), h.nextWakeAt());
  assert.ok(h.counters.retransmitted >= 1);
  // Asked again for the same member: sent it already, refused.
  assert.deepEqual(h.receiveRelay("m3", relay("m0", 0, target), 20), []);
  assert.equal(h.counters.relayRefused, 1);
});

test("a relay is refused for a message not kept, this member, the requester, the origin, a member off the ring", () => {
  const members = ids(16);
  const h = member("m1", members);
  h.receiveTree("m0", message("m0", 0, 0), 0);
  const refused = [
    relay("m0", 4, "m5"), // a message it never had
    relay("m9", 0, "m5"), // another origin's
    relay("m0", 0, "m1"), // this member
    relay("m0", 0, "m2"), // the requester (below)
    relay("m0", 0, "m0"), // the origin
    relay("m0", 0, "zz"), // not on its ring
  ];
  for (const r of refused) assert.deepEqual(h.receiveRelay("m2", r, 5), [], JSON.stringify(r));
  assert.deepEqual([h.counters.relayed, h.counters.relayRefused], [0, refused.length]);
});

test("a takeover is handed to the members that acknowledged the message, in turn; sent from here with none", () => {
  const members = ids(40);
  const all = new Overlay("m0");
  for (const id of members) all.set(id, true);
  // A lone message whose first child d has at least 2 children.
  const a = member("m0", members);
  let first: TreeSend[] = [];
  let seq = 0, d = "";
  for (;;) {
    first = a.originate([], 0);
    seq = (first[0]!.message as TreeMessage).seq;
    d = first[0]!.to;
    if (all.children("m0", seq, d).length >= 2) break;
  }
  const grandchildren = all.children("m0", seq, d);
  const [, b, c] = first.map((s) => s.to);
  // b and c acknowledge; d stays silent: at its second retransmission, its children are
  // handed to b and c in turn, no copy goes from here to them.
  a.receiveIHave(b!, ihave("m0", seq), 20);
  a.receiveIHave(c!, ihave("m0", seq), 20);
  const out: TreeSend[] = [];
  while (a.counters.takenOver === 0) out.push(...a.tick(a.nextWakeAt()));
  const relays = out.filter((s) => s.message.type === "relay");
  assert.deepEqual(
    relays.map((s) => [s.to, (s.message as RelayMessage).to]),
    grandchildren.map((g, i) => [[b, c][(seq + i) % 2], g]),
  );
  assert.ok(!out.some((s) => s.message.type === "tree" && grandchildren.includes(s.to)));

  // Nobody acknowledged: nobody is known to have it, the copies go from here, late.
  const lone = member("m0", members);
  for (let i = 0; i < (seq / 4); i++) lone.originate([], 0);
  const sends = lone.originate([], 0);
  assert.equal((sends[0]!.message as TreeMessage).seq, seq);
  const later: TreeSend[] = [];
  lone.receiveIHave("zz", ihave("m0", 99), 1); // others answer: silence means gone
  while (lone.counters.takenOver === 0) {
    const at = lone.nextWakeAt();
    lone.receiveIHave("zz", ihave("m0", 99), at - 0.5);
    later.push(...lone.tick(at));
  }
  assert.ok(!later.some((s) => s.message.type === "relay"));
  for (const g of grandchildren) {
    assert.ok(later.some((s) => s.to === g && s.message.type === "tree" && s.message.hop === 2));
  }
});

test("a member takes over for a silent child: the member it got the message from is asked too", () => {
  const members = ids(64);
  // m1 relays m0's message 0 with 2 children, the first of them with children too.
  const all = new Overlay("m1");
  for (const id of members) all.set(id, true);
  const r = members.find((id) => {
    if (id === "m0" || all.depth("m0", 0, id) < 2) return false;
    const kids = all.children("m0", 0, id);
    return kids.length === 2 && all.children("m0", 0, kids[0]!).length > 0;
  })!;
  const t = member(r, members);
  const kids = t.overlay.children("m0", 0);
  const parent = "m7" === r ? "m8" : "m7"; // any member that sent it: it has it
  const fresh = t.receiveTree(parent, message("m0", 0, 1), 0);
  assert.deepEqual(fresh.sends.map((s) => s.to), kids);
  // Nobody answers but the parent and the second child (to other messages): the first
  // child stays silent, gone once others answered since its copy went.
  t.receiveIHave(kids[1]!, ihave("m0", 0), 25);
  const out: TreeSend[] = [];
  while (t.counters.takenOver === 0) {
    const at = t.nextWakeAt();
    t.receiveIHave(parent, ihave("zz", 1), at - 0.5);
    out.push(...t.tick(at));
  }
  const helpers = out.filter((s) => s.message.type === "relay").map((s) => s.to);
  const grandchildren = all.children("m0", 0, kids[0]!);
  assert.equal(helpers.length, grandchildren.length);
  for (const h of helpers) assert.ok([parent, kids[1]].includes(h), h);
});

test("a takeover goes to the holder with the fewest copies of the message to send: a leaf first", () => {
  const members = ids(64);
  const all = new Overlay("m0");
  for (const id of members) all.set(id, true);
  // m0's lone message seq, relayed by r to k1 (a leaf) and k2 (with children); r got it
  // from p, which has 2 children of its own in that tree.
  let found: { seq: number; r: string; k1: string; k2: string; p: string } | undefined;
  for (let seq = 0; !found && seq < 4_000; seq += 4) {
    for (const r of members.slice(1)) {
      const [k1, k2] = all.children("m0", seq, r);
      if (!k1 || !k2 || all.children("m0", seq, k1).length > 0) continue;
      if (all.children("m0", seq, k2).length === 0) continue;
      const p = members.find((id) =>
        ![r, k1, k2, "m0"].includes(id) && all.children("m0", seq, id).length === 2
      );
      if (p) found = { seq, r, k1, k2, p };
      if (found) break;
    }
  }
  assert.ok(found, "no such tree");
  const { seq, r, k1, k2, p } = found;
  const t = member(r, members);
  const sends = t.receiveTree(p, message("m0", seq, all.depth("m0", seq, r) - 1), 0).sends;
  assert.deepEqual(sends.map((s) => s.to), [k1, k2]);
  // k1 acknowledges, k2 stays silent while p answers (other messages): k2 is gone.
  t.receiveIHave(k1, ihave("m0", seq), 25);
  const out: TreeSend[] = [];
  while (t.counters.takenOver === 0) {
    const at = t.nextWakeAt();
    t.receiveIHave(p, ihave("zz", 1), at - 0.5);
    out.push(...t.tick(at));
  }
  // k2's children (2 at most) go to the leaf k1 (no copy to send), not to p (2 to send): p comes
  // first among the holders, as the member the message came from.
  const grandchildren = all.children("m0", seq, k2);
  assert.deepEqual(
    out.filter((s) => s.message.type === "relay").map((
      s,
    ) => [s.to, (s.message as RelayMessage).to]),
    grandchildren.map((g) => [k1, g]),
  );
});
