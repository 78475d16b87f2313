// Unit tests of the default dissemination scheme (src/core/tree_dissemination.ts) on the
// engine's real shared parts (member table, store, outbox, counters), one input at a time:
// who gets the tree and who gets rumors (members of release 0.1.0), chunking, forwarding,
// acknowledgements, the periodic re-placing of members and the writes still settling.
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveConfig } from "../src/core/config.ts";
import { newCounters } from "../src/core/counters.ts";
import type { DisseminationContext } from "../src/core/dissemination.ts";
import { LargeValueCooldown } from "../src/core/large_values.ts";
import { Membership } from "../src/core/membership.ts";
import type { MemberStatus, Message, TreeMessage } from "../src/core/messages.ts";
import { Outbox } from "../src/core/outbox.ts";
import { seededRandom } from "../src/core/random.ts";
import { MEMBER_KEY_PREFIX } from "../src/core/records.ts";
import { type Entry, Store, type StoredEntry } from "../src/core/store.ts";
import { TREE_PROTOCOL, TreeDissemination } from "../src/core/tree_dissemination.ts";
import { DEFAULT_MTU } from "../src/wire/codec.ts";
import { SEAL_OVERHEAD } from "../src/wire/crypto.ts";
import { Wire } from "../src/wire/wire.ts";

const usr = (key: string, value: unknown, wall = 1, writer = "w", deleted = false): Entry => ({
  section: "usr",
  key,
  value,
  wall,
  logical: 0,
  writer,
  deleted,
});

/**
 * The scheme of member "m0" (at `m0:1`) at time 0, with `peers` known: id → its status and
 * its `sys` record's value (`undefined`: no record).
 */
function scheme(
  peers: Record<string, [MemberStatus, unknown]>,
  tuning: Parameters<typeof resolveConfig>[0] = {},
  seed = 1,
) {
  const config = resolveConfig({ fanout: 10, gossipIntervalMs: 500, ...tuning });
  const counters = newCounters();
  const membership = new Membership("m0", "m0:1", 0);
  const store = new Store();
  const merged: string[] = [];
  for (const [id, [status, value]] of Object.entries(peers)) {
    membership.apply({ type: "member", id, address: `${id}:1`, incarnation: 0, status }, 0);
    if (value !== undefined) record(store, id, value);
  }
  const outbox = new Outbox("m0:1", 16, counters.messagesOut);
  const largeValues = new LargeValueCooldown(1_000);
  const ctx: DisseminationContext = {
    id: "m0",
    address: "m0:1",
    config,
    random: seededRandom(seed),
    membership,
    store,
    counters,
    outbox,
    largeValues,
    mergeRemote: (e, from) => {
      merged.push(`${e.key}@${from}`);
      return store.merge(e).outcome === "applied" ? "applied" : "duplicate";
    },
    memberChanged: () => {},
    forgotten: () => {},
  };
  const s = new TreeDissemination(ctx, 0);
  for (const id of Object.keys(peers)) s.memberChanged(id);
  /** What was queued: `address type[/seq or hop]`, sorted. */
  const sent = () =>
    outbox.take(false).flatMap((o) => o.messages.map((m) => `${o.to} ${describe(m)}`)).sort();
  return { s, ctx, counters, store, membership, largeValues, merged, sent };
}

function describe(m: Message): string {
  switch (m.type) {
    case "tree":
      return `tree/${m.seq}/${m.hop}:${m.entries.map((e) => e.key).join(",")}`;
    case "rumor":
      return `rumor/${m.hop}:${m.entries.map((e) => e.key).join(",")}`;
    case "ihave":
      return `ihave/${m.origin}:${m.seqs.join(",")}`;
    default:
      return m.type;
  }
}

function record(store: Store, id: string, value: unknown, wall = 1, deleted = false): void {
  store.merge({
    section: "sys",
    key: MEMBER_KEY_PREFIX + id,
    value: deleted ? undefined : value,
    wall,
    logical: 0,
    writer: id,
    deleted,
  });
}

const speaks = { address: "x:1", tree: TREE_PROTOCOL };
/** Six members m1..m6 speaking the tree (m0's trees over them are pinned in broadcast_units). */
const six = (): Record<string, [MemberStatus, unknown]> =>
  Object.fromEntries(["m1", "m2", "m3", "m4", "m5", "m6"].map((id) => [id, ["alive", speaks]]));

const stored = (store: Store, ...keys: string[]): StoredEntry[] =>
  keys.map((k) => store.get("usr", k)!);

test("a member speaks the tree when its record says tree ≥ 1 and it is alive or suspect", () => {
  const { s, sent, store } = scheme({
    t1: ["alive", speaks],
    t2: ["suspect", { tree: 2 }],
    old: ["alive", { address: "old:1" }],
    zero: ["alive", { tree: 0 }],
    text: ["alive", { tree: "1" }],
    norecord: ["alive", undefined],
    nullrecord: ["alive", null],
    dead: ["dead", speaks],
    gone: ["left", { address: "gone:1" }],
  });
  assert.deepEqual(s.recordFields, { tree: 1 });
  assert.equal(TREE_PROTOCOL, 1);
  const o = s.tree.overlay;
  const placed = ["t1", "t2", "old", "zero", "text", "norecord", "nullrecord", "dead", "gone"]
    .filter((id) => o.has(id));
  assert.deepEqual(placed, ["t1", "t2"]);
  assert.equal(o.size, 3, "and itself");
  s.memberChanged("m0");
  s.memberChanged("nobody");
  assert.equal(o.size, 3);
  // A write: the tree to its speakers, a rumor to each live member that does not speak it.
  store.merge(usr("k", 1));
  s.publish(stored(store, "k"), 0);
  assert.deepEqual(sent(), [
    "norecord:1 rumor/0:k",
    "nullrecord:1 rumor/0:k",
    "old:1 rumor/0:k",
    "t1:1 tree/0/0:k",
    "t2:1 tree/0/0:k",
    "text:1 rumor/0:k",
    "zero:1 rumor/0:k",
  ]);
  // A record deleted, or a member gone: it leaves the tree (and gets rumors while alive).
  record(store, "t1", undefined, 2, true);
  s.memberChanged("t1");
  assert.equal(o.has("t1"), false);
  store.merge(usr("k2", 1));
  s.publish(stored(store, "k2"), 1_000);
  assert.ok(sent().includes("t1:1 rumor/0:k2"));
});

test("a dead member gets neither the tree nor rumors", () => {
  const { s, sent, store, membership } = scheme({
    a: ["alive", speaks],
    b: ["alive", { address: "b:1" }],
  });
  for (const id of ["a", "b"]) {
    membership.apply({ type: "member", id, address: `${id}:1`, incarnation: 1, status: "dead" }, 0);
    s.memberChanged(id);
  }
  store.merge(usr("k", 1));
  s.publish(stored(store, "k"), 0);
  assert.deepEqual(sent(), []);
  assert.equal(s.tree.overlay.size, 1);
});

test("a write goes along the tree (pinned children), acknowledged by ihave", () => {
  const { s, sent, store, counters } = scheme(six());
  store.merge(usr("k", "v"));
  s.publish(stored(store, "k"), 0);
  assert.deepEqual(sent(), ["m3:1 tree/0/0:k", "m5:1 tree/0/0:k", "m6:1 tree/0/0:k"]);
  assert.equal(s.tree.unacknowledged, 3);
  for (const id of ["m3", "m5", "m6"]) {
    s.receive({ type: "ihave", origin: "m0", hop: 0, seqs: [0] }, id, `${id}:1`, 10);
  }
  assert.equal(s.tree.unacknowledged, 0);
  assert.equal(counters.rumorsForwarded, 0);
  // graft and prune: not sent by this release, ignored.
  s.receive({ type: "graft", origin: "m1", seqs: [1] }, "m1", "m1:1", 11);
  s.receive({ type: "prune", origin: "m1" }, "m1", "m1:1", 11);
  s.tick(11);
  assert.deepEqual(sent(), []);
});

test("writes are cut into tree messages of about 1,250 bytes; one message is a lone one", () => {
  const { s, sent, store } = scheme({ m1: ["alive", speaks] });
  // key 2 + writer 1 + 24 + value: two of 625 bytes fit in one message, two of 626 do not.
  const put = (key: string, bytes: number, deleted = false) =>
    store.merge(usr(key, deleted ? undefined : "x".repeat(bytes), 1, "w", deleted));
  put("a1", 598);
  put("a2", 598);
  s.publish(stored(store, "a1", "a2"), 0);
  assert.deepEqual(sent(), ["m1:1 tree/0/0:a1,a2"]);
  put("b1", 599);
  put("b2", 598);
  put("b3", 0, true);
  put("b4", 0, true);
  s.publish(stored(store, "b1", "b2", "b3", "b4"), 5_000);
  // 626 + 625 > 1,250: cut; a tombstone counts 27 bytes. Two messages: numbers in a row.
  assert.deepEqual(sent(), ["m1:1 tree/1/0:b1", "m1:1 tree/2/0:b2,b3,b4"]);
  // A message of its own: the next even number.
  put("c", 1);
  s.publish(stored(store, "c"), 9_000);
  assert.deepEqual(sent(), ["m1:1 tree/4/0:c"]);
});

test("a burst's tree messages each fill one sealed datagram of the default MTU, most of it", () => {
  // Long member ids and cluster name, the largest numbers: the envelope at its largest.
  const id = "0f8e4c6a-1b2d-4e5f-8a9b-0c1d2e3f4a5b";
  const wire = new Wire({ cluster: "production-cluster-eu-west-1", sender: id });
  const room = DEFAULT_MTU - SEAL_OVERHEAD;
  for (
    const [keyLength, valueLength] of [[6, 12], [16, 40], [36, 100], [20, 300], [40, 1]] as const
  ) {
    const { s, ctx, store } = scheme({ m1: ["alive", speaks] });
    const keys = Array.from({ length: 200 }, (_, i) => `${i}`.padStart(keyLength, "k"));
    for (const key of keys) {
      store.merge({ ...usr(key, "v".repeat(valueLength), 1_796_000_000_000), writer: id });
    }
    s.publish(stored(store, ...keys), 0);
    const messages = ctx.outbox.take(false).flatMap((o) => o.messages) as TreeMessage[];
    const sizes = messages.map((m) => {
      const datagrams = wire.encode([{ ...m, seq: 2 ** 20 - 1, hop: 255 }], SEAL_OVERHEAD);
      assert.equal(datagrams.length, 1, `key ${keyLength}, value ${valueLength}: one datagram`);
      return datagrams[0]!.length;
    });
    // Each datagram costs its sender and receiver CPU: all but the last are 80% full at least.
    for (const size of sizes.slice(0, -1)) {
      assert.ok(
        size <= room && size >= 0.8 * room,
        `key ${keyLength}, value ${valueLength}: ${size} bytes`,
      );
    }
  }
});

test("large values go to fanout live members as rumors, noted in flight, never along the tree", () => {
  const { s, sent, store, largeValues } = scheme({
    a: ["alive", speaks],
    b: ["alive", speaks],
    c: ["alive", { address: "c:1" }],
  }, { fanout: 2 });
  store.merge(usr("big", "x".repeat(10_000)));
  store.merge(usr("small", 1));
  const entries = stored(store, "big", "small");
  s.publish(entries, 0);
  const out = sent();
  const large = out.filter((l) => l.endsWith("rumor/0:big"));
  assert.equal(large.length, 2, "fanout members");
  for (const l of large) {
    const address = l.split(" ")[0]!;
    assert.deepEqual(largeValues.withoutInFlight(address, entries, 1), [entries[1]]);
  }
  assert.ok(!out.some((l) => l.includes("tree") && l.includes("big")));
  assert.deepEqual(out.filter((l) => l.includes("small")).sort(), [
    "a:1 tree/0/0:small",
    "b:1 tree/0/0:small",
    "c:1 rumor/0:small",
  ]);
  // Only large values: no tree message, no rumor to the old members beyond the fanout.
  store.merge(usr("big2", "y".repeat(10_000)));
  s.publish(stored(store, "big2"), 10);
  assert.equal(sent().length, 2);
  assert.equal(s.tree.unacknowledged, 2, "only the first write's copies await an answer");
});

test("a tree message is merged once, forwarded to this member's children, acknowledged", () => {
  const { s, sent, counters, merged } = scheme(six());
  const m: TreeMessage = { type: "tree", origin: "m1", seq: 3, hop: 2, entries: [usr("k", 1)] };
  const children = s.tree.overlay.children("m1", 3);
  s.receive(m, "m2", "m2:1", 0);
  assert.deepEqual(merged, ["k@m2:1"]);
  assert.equal(counters.rumorEntriesNew, 1);
  const out = sent();
  assert.deepEqual(
    out,
    children.filter((c) => c !== "m2").map((c) => `${c}:1 tree/3/3:k`).sort(),
  );
  // Again (a retransmission): not merged again, acknowledged at once.
  s.receive(m, "m2", "m2:1", 5);
  assert.deepEqual(merged, ["k@m2:1"]);
  s.tick(5);
  assert.deepEqual(sent(), ["m2:1 ihave/m1:3"]);
  // A new message with an entry already held: merged, counted as a duplicate.
  s.receive({ ...m, seq: 5 }, "m2", "m2:1", 6);
  assert.deepEqual([counters.rumorEntriesNew, counters.rumorEntriesDuplicate], [1, 1]);
  // A sender this member does not know: its acknowledgement has no address to go to.
  s.receive({ ...m, seq: 7, entries: [] }, "stranger", "s:1", 200);
  s.tick(300);
  assert.ok(!sent().some((l) => l.startsWith("s:1")));
});

test("a rumor's new entries go on along the tree and to old members, hop + 1, not to the sender", () => {
  const peers = six();
  peers["o1"] = ["alive", { address: "o1:1" }];
  peers["o2"] = ["alive", { address: "o2:1" }];
  const { s, sent, counters, merged } = scheme(peers);
  s.receive({ type: "rumor", hop: 1, entries: [usr("k", 1)] }, "o1", "o1:1", 0);
  s.receive({ type: "rumor", hop: 3, entries: [usr("k", 1), usr("j", 2)] }, "o1", "o1:1", 0);
  assert.deepEqual(merged, ["k@o1:1", "k@o1:1", "j@o1:1"]);
  assert.deepEqual([counters.rumorEntriesNew, counters.rumorEntriesDuplicate], [2, 1]);
  assert.deepEqual(sent(), [], "at the envelope's end");
  s.endEnvelope("o1", 0);
  assert.deepEqual(sent(), [
    "m3:1 tree/0/0:k,j",
    "m5:1 tree/0/0:k,j",
    "m6:1 tree/0/0:k,j",
    "o2:1 rumor/4:k,j",
  ]);
  assert.equal(counters.rumorsForwarded, 1);
  s.endEnvelope("o1", 1);
  assert.deepEqual(sent(), [], "nothing new since");
  // Large values are not forwarded.
  s.receive({ type: "rumor", hop: 0, entries: [usr("big", "x".repeat(9_000))] }, "o1", "o1:1", 2);
  s.endEnvelope("o1", 2);
  assert.deepEqual(sent(), []);
  assert.equal(counters.rumorsForwarded, 1);
});

test("a rumor goes on to old members up to the hop limit; along the tree always", () => {
  // 9 members known, fanout 10: 2 × ceil(log11 9) + 2 = 4.
  const at = (hop: number, sender = "o1") => {
    const peers = six();
    peers["o1"] = ["alive", { address: "o1:1" }];
    peers["o2"] = ["alive", { address: "o2:1" }];
    const { s, sent, counters } = scheme(peers);
    s.receive({ type: "rumor", hop, entries: [usr("k", 1)] }, sender, `${sender}:1`, 0);
    s.endEnvelope(sender, 0);
    return { out: sent(), forwarded: counters.rumorsForwarded };
  };
  assert.deepEqual(at(3).out.filter((l) => l.includes("rumor")), ["o2:1 rumor/4:k"]);
  const limit = at(4);
  assert.deepEqual(limit.out, ["m3:1 tree/0/0:k", "m5:1 tree/0/0:k", "m6:1 tree/0/0:k"]);
  assert.equal(limit.forwarded, 0);
  // From a tree speaker that did not know we speak it: both old members get it.
  assert.deepEqual(at(0, "m1").out.filter((l) => l.includes("rumor")), [
    "o1:1 rumor/1:k",
    "o2:1 rumor/1:k",
  ]);
  // The only old member is the sender: nothing to forward to, nothing counted.
  const { s, sent, counters } = scheme({ o1: ["alive", { address: "o1:1" }] });
  s.receive({ type: "rumor", hop: 0, entries: [usr("k", 1)] }, "o1", "o1:1", 0);
  s.endEnvelope("o1", 0);
  assert.deepEqual(sent(), []);
  assert.equal(counters.rumorsForwarded, 0);
  // Rumors to at most fanout old members.
  const many: Record<string, [MemberStatus, unknown]> = {};
  for (let i = 0; i < 8; i++) many[`o${i}`] = ["alive", { address: `o${i}:1` }];
  const few = scheme(many, { fanout: 3 });
  few.s.receive({ type: "rumor", hop: 0, entries: [usr("k", 1)] }, "o0", "o0:1", 0);
  few.s.endEnvelope("o0", 0);
  const out = few.sent();
  assert.equal(out.length, 3);
  assert.ok(!out.some((l) => l.startsWith("o0:1")), "never back to the sender");
});

test("members are re-placed every gossip interval; tick and nextWakeAt follow the tree", () => {
  const { s, store } = scheme({ a: ["alive", { address: "a:1" }] }, { gossipIntervalMs: 500 });
  assert.equal(s.tree.overlay.has("a"), false);
  assert.equal(s.nextWakeAt(), 500);
  // Its record now says it speaks the tree, and nobody reported the change.
  record(store, "a", speaks, 2);
  s.tick(499);
  assert.equal(s.tree.overlay.has("a"), false);
  s.tick(500);
  assert.equal(s.tree.overlay.has("a"), true, "re-placed at the interval");
  assert.equal(s.nextWakeAt(), 1_000);
  store.merge(usr("k", 1));
  s.publish(stored(store, "k"), 600);
  assert.equal(s.nextWakeAt(), 700, "the copy's retransmission first");
  s.tick(700);
  assert.equal(s.tree.counters.retransmitted, 1);
});

test("writes broadcast or received lately are settling for 2 timeouts after the last one", () => {
  const { s, store } = scheme(six());
  assert.deepEqual(s.settling(0), { entries: 0, until: -Infinity });
  store.merge(usr("a", 1));
  store.merge(usr("b", 1));
  s.publish(stored(store, "a", "b"), 100);
  s.receive(
    { type: "tree", origin: "m1", seq: 1, hop: 0, entries: [usr("c", 1)] },
    "m1",
    "m1:1",
    100,
  );
  s.receive(
    { type: "tree", origin: "m1", seq: 1, hop: 0, entries: [usr("c", 1)] },
    "m1",
    "m1:1",
    120,
  );
  s.receive({ type: "rumor", hop: 0, entries: [usr("d", 1), usr("e", 1)] }, "m2", "m2:1", 150);
  s.endEnvelope("m2", 150);
  // rto 100 (nothing measured): 200 ms after the last.
  assert.equal(s.tree.rto, 100);
  assert.deepEqual(s.settling(150), { entries: 5, until: 350 });
  assert.deepEqual(s.settling(300), { entries: 5, until: 350 }, "2 timeouts after: still");
  assert.deepEqual(s.settling(301), { entries: 2, until: 350 }, "those of t = 100 are past");
  assert.deepEqual(s.settling(350), { entries: 2, until: 350 });
  assert.deepEqual(s.settling(351), { entries: 0, until: -Infinity });
  // Many slots: those past are dropped, and the rest still counted.
  for (let t = 1_000; t < 1_300; t++) {
    store.merge(usr(`k${t}`, 1));
    s.publish(stored(store, `k${t}`), t);
  }
  assert.deepEqual(s.settling(1_299), { entries: 201, until: 1_499 });
  assert.deepEqual(s.settling(1_400), { entries: 100, until: 1_499 });
  store.merge(usr("z", 1));
  s.publish(stored(store, "z"), 1_400);
  assert.deepEqual(s.settling(1_400), { entries: 101, until: 1_600 });
});

test("the tree broadcast takes the engine's ack delay and first retransmission timeout", () => {
  const { s } = scheme({}, { ackDelayMs: 7, retransmitMs: 250 });
  assert.deepEqual([s.tree.config.ackDelayMs, s.tree.config.retransmitMs], [7, 250]);
  assert.equal(s.tree.rto, 250);
});

test("a member never counts itself among the old members, with or without a record", () => {
  // Every peer speaks the tree; this member has no record of its own yet.
  const { s, sent, counters } = scheme(six());
  s.memberChanged("m0");
  s.receive({ type: "rumor", hop: 0, entries: [usr("k", 1)] }, "m1", "m1:1", 0);
  s.endEnvelope("m1", 0);
  assert.ok(sent().every((l) => l.includes(" tree/")), "along the tree only");
  assert.equal(counters.rumorsForwarded, 0, "no old member: no rumor forwarded");
});

test("a member forgotten before the scheme hears of it gets no rumor", () => {
  const { s, sent, store, membership } = scheme({
    o1: ["alive", { address: "o1:1" }],
    o2: ["alive", { address: "o2:1" }],
  });
  membership.forget("o2");
  store.merge(usr("k", 1));
  s.publish(stored(store, "k"), 0);
  assert.deepEqual(sent(), ["o1:1 rumor/0:k"]);
});

test("each envelope's rumors start from hop -1: a low hop after a high one is forwarded as such", () => {
  const peers = six();
  peers["o1"] = ["alive", { address: "o1:1" }];
  peers["o2"] = ["alive", { address: "o2:1" }];
  const { s, sent } = scheme(peers);
  s.receive({ type: "rumor", hop: 3, entries: [usr("a", 1)] }, "o1", "o1:1", 0);
  s.endEnvelope("o1", 0);
  sent();
  s.receive({ type: "rumor", hop: 0, entries: [usr("b", 1)] }, "o1", "o1:1", 1);
  s.endEnvelope("o1", 1);
  assert.ok(sent().includes("o2:1 rumor/1:b"));
});

test("the hop limit grows with log_{fanout+1} N: 6 for 8 members and fanout 2", () => {
  // (Not 9 members: log(9) / log(3) is 2 on Deno and Bun, 2.0000000000000004 on Node.)
  const at = (hop: number) => {
    const peers = six();
    delete peers["m6"];
    peers["o1"] = ["alive", { address: "o1:1" }];
    peers["o2"] = ["alive", { address: "o2:1" }];
    const { s, sent } = scheme(peers, { fanout: 2 });
    s.receive({ type: "rumor", hop, entries: [usr("k", 1)] }, "o1", "o1:1", 0);
    s.endEnvelope("o1", 0);
    return sent().filter((l) => l.includes("rumor"));
  };
  assert.deepEqual(at(5), ["o2:1 rumor/6:k"]);
  assert.deepEqual(at(6), []);
});

test("a rumor goes to fanout old members at most", () => {
  const { s, sent } = scheme({
    m1: ["alive", speaks],
    o1: ["alive", { address: "o1:1" }],
    o2: ["alive", { address: "o2:1" }],
    o3: ["alive", { address: "o3:1" }],
  }, { fanout: 2 });
  s.receive({ type: "rumor", hop: 0, entries: [usr("k", 1)] }, "m1", "m1:1", 0);
  s.endEnvelope("m1", 0);
  assert.equal(sent().filter((l) => l.includes("rumor")).length, 2);
});

test("a rumor never goes back to its sender, whatever the draw", () => {
  for (let seed = 1; seed <= 12; seed++) {
    const { s, sent } = scheme(
      {
        o1: ["alive", { address: "o1:1" }],
        o2: ["alive", { address: "o2:1" }],
        o3: ["alive", { address: "o3:1" }],
      },
      { fanout: 2 },
      seed,
    );
    s.receive({ type: "rumor", hop: 0, entries: [usr("k", 1)] }, "o1", "o1:1", 0);
    s.endEnvelope("o1", 0);
    assert.deepEqual(sent(), ["o2:1 rumor/1:k", "o3:1 rumor/1:k"], `seed ${seed}`);
  }
});

test("a member removed from the ring: the copy it missed goes to whom the tree now names", () => {
  const { s, sent, store, membership } = scheme(six());
  store.merge(usr("k", "v"));
  s.publish(stored(store, "k"), 0);
  assert.deepEqual(sent(), ["m3:1 tree/0/0:k", "m5:1 tree/0/0:k", "m6:1 tree/0/0:k"]);
  for (const id of ["m3", "m6"]) {
    s.receive({ type: "ihave", origin: "m0", hop: 0, seqs: [0] }, id, `${id}:1`, 10);
  }
  membership.apply(
    { type: "member", id: "m5", address: "m5:1", incarnation: 1, status: "dead" },
    20,
  );
  s.memberChanged("m5");
  s.tick(100);
  // The message is still cached (its size measured by the engine's approxSize).
  const out = sent();
  assert.equal(out.length, 1);
  assert.match(out[0]!, /^m[1-6]:1 tree\/0\/0:k$/);
  assert.equal(s.tree.counters.retransmitted, 0);
});

test("settling counts stay right when the slots are compacted", () => {
  const { s, store } = scheme(six());
  let expected = 0;
  const counts = new Map<number, number>();
  for (let t = 1_000; t < 1_300; t++) {
    const n = (t % 3) + 1;
    const keys = Array.from({ length: n }, (_, i) => `k${t}-${i}`);
    for (const k of keys) store.merge(usr(k, 1));
    s.publish(stored(store, ...keys), t);
    counts.set(t, n);
  }
  const from = (t: number) => {
    expected = 0;
    for (const [at, n] of counts) if (at >= t) expected += n;
    return expected;
  };
  // rto 100: what is 200 ms old or less is settling.
  assert.deepEqual(s.settling(1_400), { entries: from(1_200), until: 1_499 });
  assert.deepEqual(s.settling(1_450), { entries: from(1_250), until: 1_499 });
  assert.deepEqual(s.settling(1_480), { entries: from(1_280), until: 1_499 });
});

test("a kept tree message holds the stored versions it applied, and the received copies of versions stored otherwise", () => {
  const { s, ctx, store } = scheme(six());
  const merge = ctx.mergeRemote;
  // Versions applied and at once superseded here (as the engine rewrites its own record),
  // each by a stamp that differs in one field only: wall, logical counter, writer.
  const anew: Record<string, (e: Entry) => Entry> = {
    w: (e) => ({ ...e, wall: e.wall + 1 }),
    l: (e) => ({ ...e, logical: e.logical + 1 }),
    x: (e) => ({ ...e, writer: "x" }),
  };
  (ctx as { mergeRemote: typeof merge }).mergeRemote = (e, from, now) => {
    const outcome = merge(e, from, now);
    if (anew[e.key]) assert.equal(store.merge(anew[e.key]!(e)).outcome, "applied");
    return outcome;
  };
  // And a tombstone that came with a value: stored without it, so not the same fields.
  const received = [...["k", "w", "l", "x"].map((key) => usr(key, 1)), usr("d", "v", 1, "w", true)];
  // A message whose tree gives this member children other than the sender.
  let seq = 1;
  while (!s.tree.overlay.children("m1", seq).some((c) => c !== "m2")) seq++;
  s.receive({ type: "tree", origin: "m1", seq, hop: 2, entries: [...received] }, "m2", "m2:1", 0);
  const forwarded = ctx.outbox.take(false).flatMap((o) => o.messages).filter((m) =>
    m.type === "tree"
  ) as TreeMessage[];
  assert.ok(forwarded.length > 0);
  for (const m of forwarded) {
    const [k, ...rest] = m.entries;
    assert.equal(k, store.get("usr", "k"), "the stored version itself");
    assert.notEqual(k, received[0], "not the decoded copy");
    rest.forEach((e, i) => assert.equal(e, received[i + 1], "the version received"));
  }
});
