// Anti-entropy between members: when rounds open and with whom, which descent answers a
// peer's root (compact when its record says so), and the counters and per-peer state.
import { test } from "node:test";
import assert from "node:assert/strict";
import { QUIET_ROUNDS } from "../src/core/anti_entropy.ts";
import { Engine } from "../src/core/engine.ts";
import type { Entry } from "../src/core/store.ts";
import type { Message } from "../src/core/messages.ts";
import { MEMBER_KEY_PREFIX } from "../src/core/records.ts";
import { RETRY, syncReply, syncRoot } from "../src/core/sync.ts";
import { seededRandom } from "../src/core/random.ts";
import { Store } from "../src/core/store.ts";
import { meet } from "./_meet.ts";

const INTERVAL = 100;

/** Engine `id` at address `id:1`; `draws` counts the random numbers it draws. */
function member(id: string, now = 0) {
  const random = seededRandom(id);
  const counted = { draws: 0 };
  const e = new Engine(
    // Probes far apart: the peers of these tests never answer one, yet stay alive.
    { id, address: `${id}:1`, gossipIntervalMs: INTERVAL, probeIntervalMs: 1e9 },
    now,
    () => {
      counted.draws++;
      return random();
    },
  );
  e.start(now);
  e.takeOutput();
  return Object.assign(counted, { e });
}

/** Delivers `messages` from member `from` to `to`; returns what `to` sends back to it. */
function deliver(to: Engine, from: string, messages: Message[], now: number): Message[] {
  to.receive(`${from}:1`, { cluster: "c", sender: from, messages }, now);
  return to.takeOutput().outgoing.filter((o) => o.to === `${from}:1`).flatMap((o) => o.messages);
}

const usr = (key: string, wall: number): Entry => ({
  section: "usr",
  key,
  value: key,
  wall,
  logical: 0,
  writer: "w",
  deleted: false,
});

const record = (id: string, value: Record<string, unknown>, deleted = false): Entry => ({
  section: "sys",
  key: MEMBER_KEY_PREFIX + id,
  value: deleted ? undefined : { address: `${id}:1`, ...value },
  wall: 1,
  logical: 0,
  writer: id,
  deleted,
});

/** The sync roots `e` sends while ticking every ms of [from, to): [time, peer]. */
function rounds(e: Engine, from: number, to: number): [number, string][] {
  const out: [number, string][] = [];
  for (let t = from; t < to; t++) {
    e.tick(t);
    for (const o of e.takeOutput().outgoing) {
      if (o.messages.some((m) => m.type === "sync-root")) out.push([t, o.to]);
    }
  }
  return out;
}

test("a round opens every interval exactly, with a random live peer, counted and remembered", () => {
  const { e } = member("a");
  for (const p of ["b", "c", "d"]) meet(e, p, 0);
  // A write every few rounds: never quiet (see the next test).
  const seen: [number, string][] = [];
  for (let t = 0; t < 3_000; t += 500) {
    e.write("usr", `k${t}`, t, false, t);
    seen.push(...rounds(e, t, t + 500));
  }
  assert.equal(seen.length, 30);
  for (let i = 1; i < seen.length; i++) assert.equal(seen[i]![0] - seen[i - 1]![0], INTERVAL);
  assert.ok(seen[0]![0] < INTERVAL, `first round at ${seen[0]![0]}`);
  assert.deepEqual(new Set(seen.map(([, to]) => to)), new Set(["b:1", "c:1", "d:1"]));
  assert.equal(e.counters.syncRounds, 30);
  const [at, to] = seen.at(-1)!;
  assert.equal(e.syncStates.get(to.slice(0, 1))!.lastStarted, at);
});

test("a quiet member skips every other round that would go alone, until its root changes or a root differs", () => {
  const { e } = member("a");
  for (const p of ["b", "c", "d"]) meet(e, p, 0);
  const quietAt = QUIET_ROUNDS * INTERVAL;
  const gaps = (seen: [number, string][]) => seen.slice(1).map(([t], i) => t - seen[i]![0]);
  // Not quiet yet: every interval. Then every other interval: never two skipped in a row.
  const before = rounds(e, 0, quietAt);
  assert.equal(before.length, QUIET_ROUNDS);
  assert.deepEqual(new Set(gaps(before)), new Set([INTERVAL]));
  const quiet = rounds(e, quietAt, quietAt + 20 * INTERVAL);
  assert.equal(quiet.length, 10);
  assert.deepEqual(new Set(gaps(quiet)), new Set([2 * INTERVAL]));
  assert.equal(e.counters.syncRoundsSkipped, 10);
  // A local write: the next round that comes due goes, and every round after it.
  let t = quiet.at(-1)![0] + 1;
  e.write("usr", "k", 1, false, t);
  const written = rounds(e, t, t + 5 * INTERVAL);
  assert.equal(written.length, 5);
  assert.ok(written[0]![0] - quiet.at(-1)![0] <= INTERVAL, `first round at ${written[0]![0]}`);
  assert.deepEqual(new Set(gaps(written)), new Set([INTERVAL]));
  // Quiet again; then a peer's root that differs from ours brings the rounds back too.
  t += 5 * INTERVAL;
  rounds(e, t, t + QUIET_ROUNDS * INTERVAL);
  t += QUIET_ROUNDS * INTERVAL;
  assert.equal(rounds(e, t, t + 4 * INTERVAL).length, 2, "quiet again");
  t += 4 * INTERVAL;
  const other = new Store();
  other.merge(usr("theirs", 5));
  deliver(e, "b", [syncRoot(other)], t);
  assert.equal(rounds(e, t, t + 4 * INTERVAL).length, 4);
});

test("a peer whose record says sync: 2 gets the compact descent, under a fresh salt each root", () => {
  const a = member("a");
  deliver(a.e, "b", [{ type: "rumor", hop: 0, entries: [record("b", { sync: 2 })] }], 0);
  const peer = new Store();
  peer.merge(usr("other", 5));
  const salts = new Set<number>();
  for (let i = 0; i < 5; i++) {
    const before = a.draws;
    const reply = deliver(a.e, "b", [syncRoot(peer)], 1);
    assert.equal(a.draws, before + 1, "one draw for the salt");
    const opening = reply.find((m) => m.type === "sync-stamps" || m.type === "sync-nodes");
    assert.ok(opening && "salt" in opening, JSON.stringify(reply.map((m) => m.type)));
    assert.ok(opening.salt < RETRY);
    salts.add(opening.salt);
  }
  assert.ok(salts.size > 1, "a salt drawn for each root");
  // Other steps of the descent draw nothing.
  const before = a.draws;
  deliver(a.e, "b", [{ type: "sync-pull", salt: 1, level: 0, nodes: [] }], 2);
  deliver(a.e, "b", [{ type: "sync-leaf", level: 0, index: 0, hashes: new Uint8Array(0) }], 2);
  assert.equal(a.draws, before);
});

test("a peer with no record, an older record or a deleted one gets the full descent", () => {
  for (const entries of [[], [record("b", { sync: 1 })], [record("b", {}, true)]]) {
    const { e } = member("a");
    deliver(e, "b", entries.length ? [{ type: "rumor", hop: 0, entries }] : [], 0);
    const peer = new Store();
    peer.merge(usr("other", 5));
    const reply = deliver(e, "b", [syncRoot(peer)], 1).filter((m) => m.type !== "entries");
    assert.deepEqual(reply.map((m) => m.type), ["sync-leaf"], JSON.stringify(entries));
  }
});

test("equal roots count a round in sync; other messages that need no answer do not", () => {
  const { e } = member("a");
  deliver(e, "b", [], 0);
  const same = new Store();
  for (const x of e.versions("sys")) same.merge(x);
  assert.deepEqual(deliver(e, "b", [syncRoot(same)], 7), []);
  assert.equal(e.counters.syncInSync, 1);
  assert.equal(e.syncStates.get("b")!.lastInSync, 7);
  deliver(e, "b", [{ type: "sync-want", level: 0, index: 0, hashes: new Uint8Array(0) }], 8);
  assert.equal(e.counters.syncInSync, 1);
  assert.equal(e.syncStates.get("b")!.lastInSync, 7);
});

test("entries each way are counted in total and per peer, and mark the last repair", () => {
  const { e } = member("a");
  e.write("usr", "mine", 1, false, 1);
  e.takeOutput();
  deliver(e, "b", [{ type: "entries", entries: [usr("x", 1), usr("y", 1)] }], 3);
  deliver(e, "b", [{ type: "entries", entries: [usr("z", 1)] }], 4);
  const received = e.syncStates.get("b")!;
  assert.deepEqual(
    [received.entriesReceived, received.lastRepair, e.counters.syncEntriesReceived],
    [3, 4, 3],
  );
  // b holds nothing: everything a holds goes to it.
  const sent = deliver(e, "b", [syncRoot(new Store())], 5)
    .flatMap((m) => (m.type === "entries" ? m.entries : []));
  assert.ok(sent.length >= 2, `${sent.length} sent`);
  assert.deepEqual({ ...e.syncStates.get("b")! }, {
    lastStarted: 0,
    lastInSync: 0,
    lastRepair: 5,
    entriesReceived: 3,
    entriesSent: sent.length,
  });
  assert.equal(e.counters.syncEntriesSent, sent.length);
});

test("entries still in flight to a peer leave no empty entries message", () => {
  const { e } = member("a");
  // The peer holds a's record already: only the large value differs.
  const peer = new Store();
  for (const x of e.versions("sys")) peer.merge(x);
  e.write("usr", "big", "x".repeat(100_000), false, 1);
  e.takeOutput();
  const leaf = syncReply(peer, syncRoot(e.store))[0]!;
  assert.equal(leaf.type, "sync-leaf");
  // Anti-entropy's answers only (membership news rides along).
  const sync = (ms: Message[]) =>
    ms.filter((m) => m.type === "entries" || m.type.startsWith("sync-")).map((m) =>
      m.type === "entries" ? m.entries.map((x) => x.key) : m.type
    );
  assert.deepEqual(sync(deliver(e, "b", [leaf], 2)), [["big"]]);
  assert.deepEqual(sync(deliver(e, "b", [leaf], 3)), [], "still in flight: nothing to send");
  assert.equal(e.syncStates.get("b")!.entriesSent, 1);
});

test("a forgotten member's anti-entropy state goes with it", () => {
  const e = new Engine(
    { id: "a", address: "a:1", forgetAfterMs: 1_000, gossipIntervalMs: 1, probeIntervalMs: 1e9 },
    0,
    seededRandom("a"),
  );
  e.start(0);
  meet(e, "x", 0);
  deliver(e, "x", [{ type: "entries", entries: [usr("k", 1)] }], 0);
  meet(e, "b", 0);
  assert.equal(e.syncStates.get("x")!.entriesReceived, 1);
  deliver(
    e,
    "b",
    [{ type: "member", id: "x", address: "x:1", incarnation: 0, status: "dead" }],
    100,
  );
  e.tick(1_099);
  assert.ok(e.syncStates.has("x"), "not yet");
  e.tick(1_100);
  assert.equal(e.membership.get("x"), undefined);
  assert.equal(e.syncStates.has("x"), false);
  assert.ok(e.syncStates.has("b") || e.membership.get("b"), "a live member stays");
});

/**
 * Member `a`, and a store for its peer `b` (a member of the compact descent) that holds what
 * `a` holds, with `keys` user keys both got.
 */
function compactPeers(keys: number): { a: ReturnType<typeof member>; peer: Store } {
  const a = member("a");
  deliver(a.e, "b", [{ type: "rumor", hop: 0, entries: [record("b", { sync: 2 })] }], 0);
  const peer = new Store();
  for (const e of [...a.e.versions("sys"), ...a.e.versions("usr")]) peer.merge(e);
  for (let i = 0; i < keys; i++) {
    const e = usr(`k${i}`, 10 + i);
    peer.merge(e);
    deliver(a.e, "b", [{ type: "entries", entries: [e] }], 1);
  }
  return { a, peer };
}

/**
 * `b` opens a compact descent with `a` from `peer`'s root and answers every step (30 legs at
 * most), merging the entries `a` sends; the message types that reached `a`.
 */
function descend(a: ReturnType<typeof member>, peer: Store): Set<string> {
  const received = new Set<string>();
  let toA: Message[] = [syncRoot(peer)];
  for (let leg = 0; leg < 30 && toA.length; leg++) {
    for (const m of toA) received.add(m.type);
    const replies = deliver(a.e, "b", toA, 2);
    toA = [];
    for (const r of replies) {
      if (r.type === "entries") { for (const e of r.entries) peer.merge(e); }
      else toA.push(...syncReply(peer, r as Parameters<typeof syncReply>[1]));
    }
  }
  return received;
}

test("every step of a compact descent that reaches us is answered, until our newer key crosses", () => {
  const { a, peer } = compactPeers(5_000);
  // One key newer here than at the peer.
  const newer = { ...usr("k4321", 20_000), value: "newer" };
  deliver(a.e, "b", [{ type: "entries", entries: [newer] }], 1);
  const received = descend(a, peer);
  assert.equal(peer.get("usr", "k4321")?.value, "newer");
  assert.ok(received.has("sync-nodes"), [...received].join());
});

test("a pull of a compact descent that reaches us is answered with the key it names", () => {
  const { a, peer } = compactPeers(300);
  // A key held here only: the peer pulls it.
  deliver(a.e, "b", [{ type: "entries", entries: [usr("only", 20_000)] }], 1);
  const received = descend(a, peer);
  assert.ok(received.has("sync-pull"), [...received].join());
  assert.equal(peer.get("usr", "only")?.wall, 20_000);
});
