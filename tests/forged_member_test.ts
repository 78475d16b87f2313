// Forged plaintext membership claims: a member told it is left or dead while alive, even
// at the largest incarnation, recovers, and never sends a value the wire refuses.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "./_cluster.ts";
import { MAX_INCARNATION, Membership } from "../src/core/membership.ts";
import { Wire } from "../src/wire/wire.ts";

test("refute() never raises the incarnation past MAX_INCARNATION", () => {
  const m = new Membership("b", "b:1", 0);
  const forged = {
    type: "member",
    id: "b",
    address: "b:1",
    incarnation: MAX_INCARNATION,
    status: "left",
  } as const;
  assert.equal(m.refute(forged), true);
  assert.equal(m.self.incarnation, MAX_INCARNATION);
});

test("at MAX_INCARNATION a member's own word that it is alive overrides left, others' does not", () => {
  const m = new Membership("a", "a:1", 0);
  const at = (status: "alive" | "left") =>
    ({ type: "member", id: "b", address: "b:1", incarnation: MAX_INCARNATION, status }) as const;
  m.apply(at("left"), 0, "x");
  assert.equal(m.apply(at("alive"), 1, "x"), undefined, "hearsay does not refute");
  assert.equal(m.apply(at("alive"), 1, "b")?.status, "alive");
});

for (const status of ["left", "dead"] as const) {
  test(`one forged {b, ${status}, 2^53-1} datagram does not cut b off`, async () => {
    const c = new Cluster({ latencyMs: 5, jitterMs: 2 });
    await c.addMany(3);
    assert.ok(c.runUntil(() => c.everyoneSees("m1", "alive"), 10_000) >= 0);
    const forger = new Wire({ cluster: "default", sender: "evil" });
    const [datagram] = forger.encode([
      { type: "member", id: "m1", address: "m1", incarnation: MAX_INCARNATION, status },
    ]);
    c.net.deliver("evil", "m0", datagram!);
    c.run(1_000);
    const malformed = () =>
      [...c.members.values()].reduce((n, kv) => n + (kv.stats().dropped["malformed"] ?? 0), 0);
    assert.ok(c.runUntil(() => c.everyoneSees("m1", "alive"), 30_000) >= 0, "m1 seen alive again");
    assert.equal(malformed(), 0, "no member sent a datagram the others refuse");
    await c.get("m1").set("after", 1);
    assert.ok(c.runUntil(() => c.everyoneHas("after", 1), 10_000) >= 0, "m1's writes spread");
    await c.get("m2").set("back", 2);
    assert.ok(c.runUntil(() => c.everyoneHas("back", 2), 10_000) >= 0, "m1 is repaired");
    await c.close();
  });
}

test("a forged ping-req does not make a member send to an address it names", async () => {
  const c = new Cluster({ latencyMs: 5, jitterMs: 2 });
  await c.addMany(3);
  assert.ok(c.runUntil(() => c.everyoneSees("m2", "alive"), 10_000) >= 0);
  const victim = c.net.transport("victim");
  let reflected = 0;
  victim.listen(() => reflected++);
  const forger = new Wire({ cluster: "default", sender: "evil" });
  for (const [target, address] of [["nobody", "victim"], ["m2", "victim"]]) {
    const [d] = forger.encode([{ type: "ping-req", seq: 1, target: target!, address: address! }]);
    c.net.deliver("evil", "m0", d!);
  }
  c.run(2_000);
  assert.equal(reflected, 0);
  await c.close();
});
