import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { BroadcastQueue, MAX_INCARNATION, Membership, overrides } from "../src/core/membership.ts";
import type { MemberMessage, MemberStatus } from "../src/core/messages.ts";
import { splitAddress } from "../src/core/engine.ts";

const update = (id: string, incarnation: number, status: MemberStatus): MemberMessage => ({
  type: "member",
  id,
  address: `${id}:1`,
  incarnation,
  status,
});

test("a higher incarnation overrides; at equal incarnation left > dead > suspect > alive", () => {
  const m = new Membership("self", "self:1", 0);
  m.apply(update("x", 1, "alive"), 0);
  assert.equal(m.apply(update("x", 0, "dead"), 1), undefined, "older incarnation ignored");
  assert.equal(m.apply(update("x", 1, "alive"), 1), undefined, "same news ignored");
  assert.equal(m.apply(update("x", 1, "suspect"), 1)?.status, "suspect");
  assert.equal(
    m.apply(update("x", 1, "alive"), 1),
    undefined,
    "alive does not refute at the same incarnation",
  );
  assert.equal(m.apply(update("x", 2, "alive"), 2)?.status, "alive");
  assert.equal(m.apply(update("x", 2, "dead"), 3)?.status, "dead");
  assert.equal(m.apply(update("x", 2, "left"), 4)?.status, "left");
});

test("applying updates in any order ends in the same state", () => {
  const arb = fc.array(
    fc.record({
      incarnation: fc.nat(4),
      status: fc.constantFrom<MemberStatus>("alive", "suspect", "dead", "left"),
    }),
    { minLength: 1, maxLength: 12 },
  );
  fc.assert(
    fc.property(
      arb.chain((us) =>
        fc.tuple(fc.constant(us), fc.shuffledSubarray(us, { minLength: us.length }))
      ),
      ([a, b]) => {
        const end = (us: typeof a) => {
          const m = new Membership("self", "s", 0);
          for (const u of us) m.apply(update("x", u.incarnation, u.status), 0);
          const x = m.get("x")!;
          return [x.incarnation, x.status];
        };
        assert.deepEqual(end(a), end(b));
      },
    ),
  );
});

test("overrides() is a strict order: never both ways", () => {
  const statuses: MemberStatus[] = ["alive", "suspect", "dead", "left"];
  for (const s1 of statuses) {
    for (const s2 of statuses) {
      const m = new Membership("self", "s", 0);
      m.apply(update("x", 1, s2), 0);
      const known = m.get("x")!;
      const a = overrides({ incarnation: 1, status: s1 }, known);
      m.apply(update("y", 1, s1), 0);
      const b = overrides({ incarnation: 1, status: s2 }, m.get("y")!);
      assert.ok(!(a && b), `${s1} and ${s2} override each other`);
    }
  }
});

test("refute() lifts our incarnation above a suspicion, but not for stale news", () => {
  const m = new Membership("self", "s", 0);
  assert.equal(m.refute(update("self", 0, "suspect")), true);
  assert.equal(m.self.incarnation, 1);
  assert.equal(m.refute(update("self", 0, "dead")), false);
  assert.equal(m.refute(update("self", 1, "alive")), false);
  assert.equal(m.refute(update("self", 3, "dead")), true);
  assert.equal(m.self.incarnation, 4);
});

test("live() lists alive and suspect members other than ourselves", () => {
  const m = new Membership("self", "s", 0);
  m.apply(update("a", 0, "alive"), 0);
  m.apply(update("b", 0, "suspect"), 0);
  m.apply(update("c", 0, "dead"), 0);
  m.apply(update("d", 0, "left"), 0);
  assert.deepEqual(m.live().map((x) => x.id), ["a", "b"]);
  assert.deepEqual(m.dead().map((x) => x.id), ["c"]);
  m.forget("c");
  assert.equal(m.get("c"), undefined);
  assert.equal(m.forget("self"), false);
});

test("the broadcast queue sends each update a bounded number of times, news about the recipient first", () => {
  const q = new BroadcastQueue();
  q.push(update("a", 0, "alive"), 2);
  q.push(update("b", 0, "suspect"), 2);
  q.push(update("b", 1, "alive"), 3); // replaces the older news about b
  assert.equal(q.size, 2);
  assert.deepEqual(q.take(1, "a").map((u) => u.id), ["a"]);
  let sent = 0;
  while (q.size) sent += q.take(5).length;
  assert.equal(sent, 1 + 3);
});

test("splitAddress() understands host:port, [v6]:port and bare names", () => {
  assert.deepEqual(splitAddress("10.0.0.1:7946"), { host: "10.0.0.1", port: 7946 });
  assert.deepEqual(splitAddress("[::1]:7946"), { host: "::1", port: 7946 });
  assert.deepEqual(splitAddress("node-a"), { host: "node-a", port: 0 });
});

test("a member starts alive at incarnation 0, and news about itself is not applied", () => {
  const m = new Membership("self", "s:1", 7);
  assert.deepEqual(m.update(m.self), {
    type: "member",
    id: "self",
    address: "s:1",
    incarnation: 0,
    status: "alive",
  });
  assert.deepEqual([m.self.since, m.self.lastHeard, m.self.suspectDeadline], [7, 7, 0]);
  assert.equal(m.apply(update("self", 5, "dead"), 8), undefined);
  assert.deepEqual([m.self.status, m.self.incarnation], ["alive", 0]);
  assert.deepEqual([...m.all()].map((x) => x.id), ["self"]);
  assert.equal(m.size, 1);
});

test("a new incarnation with the same status keeps the status's start time, and the address", () => {
  const m = new Membership("self", "s", 0);
  m.apply(update("x", 1, "alive"), 5);
  m.apply({ ...update("x", 2, "alive"), address: "x:2" }, 9);
  const x = m.get("x")!;
  assert.deepEqual([x.incarnation, x.since, x.address], [2, 5, "x:1"], "moved only by answering");
  m.apply(update("x", 2, "suspect"), 11);
  assert.equal(x.since, 11);
  assert.deepEqual(m.suspects().map((s) => s.id), ["x"]);
  m.apply(update("x", 3, "alive"), 12);
  assert.deepEqual(m.suspects(), [], "the suspect list follows status changes");
});

test("at the largest incarnation, a member's own word that it is alive overrides what others said", () => {
  const m = new Membership("self", "s", 0);
  m.apply(update("x", MAX_INCARNATION, "suspect"), 0);
  const alive = update("x", MAX_INCARNATION, "alive");
  assert.equal(m.apply(alive, 1, "y"), undefined, "not from another member");
  assert.equal(m.apply(alive, 1), undefined, "not from nobody");
  assert.equal(m.apply(alive, 1, "x")?.status, "alive");
  assert.equal(m.apply(alive, 2, "x"), undefined, "already alive: nothing changes");
  m.apply(update("z", MAX_INCARNATION - 1, "dead"), 0);
  const z = update("z", MAX_INCARNATION - 1, "alive");
  assert.equal(m.apply(z, 1, "z"), undefined, "below the largest: refute by incarnation");
  m.apply(update("w", MAX_INCARNATION, "dead"), 0);
  assert.equal(
    m.apply(update("w", MAX_INCARNATION, "suspect"), 1, "w"),
    undefined,
    "only alive",
  );
});

test("refute() answers only news about us, not once we left; alive at a higher incarnation is refuted", () => {
  const m = new Membership("self", "s", 0);
  assert.equal(m.refute(update("other", 3, "dead")), false);
  assert.equal(m.self.incarnation, 0);
  assert.equal(m.refute(update("self", 4, "alive")), true);
  assert.equal(m.self.incarnation, 5);
  assert.equal(m.refute(update("self", MAX_INCARNATION, "dead")), true);
  assert.equal(m.self.incarnation, MAX_INCARNATION, "never past the largest");
  m.self.status = "left";
  assert.equal(m.refute(update("self", MAX_INCARNATION, "dead")), false);
});

test("the broadcast queue: nothing at max 0, the recipient's news once, the least sent first", () => {
  const q = new BroadcastQueue();
  q.push(update("x", 0, "alive"), 3);
  q.push(update("y", 0, "alive"), 3);
  assert.deepEqual(q.take(0, "x"), []);
  assert.deepEqual(q.take(2, "y").map((u) => u.id), ["y", "x"], "news about y first, once");
  q.push(update("z", 0, "alive"), 3);
  assert.deepEqual(q.take(1).map((u) => u.id), ["z"], "the one sent the fewest times");
  assert.deepEqual(q.take(3).map((u) => u.id).sort(), ["x", "y", "z"]);
  assert.deepEqual(q.take(3).map((u) => u.id).sort(), ["x", "y", "z"]);
  assert.equal(q.size, 0, "each sent three times");
  assert.deepEqual(new BroadcastQueue().take(5, "x"), []);
});

test("at the largest incarnation a lower alive claim from the member itself changes nothing", () => {
  const m = new Membership("self", "s", 0);
  m.apply(update("x", MAX_INCARNATION, "dead"), 0);
  assert.equal(m.apply(update("x", MAX_INCARNATION - 1, "alive"), 1, "x"), undefined);
  assert.equal(m.get("x")!.incarnation, MAX_INCARNATION);
});

test("the recipient's own news is not taken twice", () => {
  const q = new BroadcastQueue();
  q.push(update("x", 0, "alive"), 3);
  q.push(update("y", 0, "alive"), 3);
  assert.deepEqual(q.take(3, "y").map((u) => u.id), ["y", "x"]);
});

test("a known member named at another address moves there only once it answers there", () => {
  const m = new Membership("self", "s", 0);
  m.apply(update("x", 1, "alive"), 0);
  m.apply({ ...update("y", 0, "alive"), address: "x:2" }, 0);
  const x = m.get("x")!;
  const to = (address: string) => ({ ...update("x", 1, "alive"), address });
  assert.equal(m.propose(to("x:2"), "z:1", 7, 0), "known", "not a new member");
  assert.equal(m.propose(to("x:1"), "z:1", 7, 0, false, true), "ignored", "already there");
  assert.equal(m.propose(to("w:1"), "z:1", 7, 0, false, true), "proposed");
  assert.equal(m.propose({ ...update("q", 0, "alive") }, "z:1", 8, 0, false, true), "ignored");
  assert.equal(x.address, "x:1", "until it answers");
  assert.equal(m.candidate("x")?.move, true);
  assert.deepEqual(m.live().map((l) => l.id), ["x", "y"], "still a member meanwhile");
  m.drop("x");
  assert.equal(m.propose(to("x:2"), "z:1", 9, 0, true, true), "proposed");
  const moved = m.admit("x", 30);
  assert.equal(moved?.member, x, "the same member");
  assert.deepEqual([x.address, x.lastHeard, x.incarnation], ["x:2", 30, 1]);
  assert.deepEqual(moved.displaced.map((d) => d.id), ["y"], "one address is one member");
  assert.equal(moved.relay, true);
  assert.equal(m.get("y"), undefined);
  assert.equal(m.candidate("x"), undefined);
});

test("a candidate whose standing changed meanwhile is not admitted: a stranger now a member, a moving member forgotten", () => {
  const at = (id: string, address: string): MemberMessage => ({
    type: "member",
    id,
    address,
    incarnation: 0,
    status: "alive",
  });
  const m = new Membership("me", "me:1", 0);
  assert.equal(m.propose(at("x", "x:2"), "s:1", 7, 0), "proposed");
  m.apply(at("x", "x:1"), 0); // admitted another way (its record loaded from storage)
  assert.equal(m.admit("x", 10), undefined);
  assert.equal(m.get("x")!.address, "x:1");
  assert.equal(m.candidate("x"), undefined, "dropped");
  assert.equal(m.propose(at("x", "x:3"), "s:1", 8, 0, false, true), "proposed", "a move");
  m.forget("x");
  assert.equal(m.admit("x", 20), undefined);
  assert.equal(m.get("x"), undefined);
});
