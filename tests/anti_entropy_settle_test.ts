// Anti-entropy and a broadcast still travelling: a round whose roots differ only by a write
// on its way is not descended at once (the broadcast brings the write), and anti-entropy
// still repairs, within a fraction of a gossip interval, what the broadcast lost.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SETTLE_FRACTION } from "../src/core/anti_entropy.ts";
import { Engine } from "../src/core/engine.ts";
import type { Message } from "../src/core/messages.ts";
import { seededRandom } from "../src/core/random.ts";
import { syncRoot } from "../src/core/sync.ts";

const T0 = 1_000_000;
const INTERVAL = 1000;

type Drop = (from: string, to: string, m: Message) => boolean;

/** A message delivered (or lost), with its sender and recipient. */
interface Sent {
  readonly from: string;
  readonly to: string;
  readonly message: Message;
}

/** Two members (and a third, so the tree has relays) that know each other and agree. */
function cluster() {
  const engines = new Map<string, Engine>();
  for (const id of ["a", "b", "c"]) {
    const e = new Engine({ id, address: id, gossipIntervalMs: INTERVAL }, T0, seededRandom(id));
    e.start(T0);
    if (id !== "a") e.setSeeds(["a"]);
    engines.set(id, e);
  }
  let now = T0;
  /** Delivers everything queued (drop says which messages are lost), at `now`. */
  const pump = (drop: Drop = () => false): Sent[] => {
    const seen: Sent[] = [];
    for (let round = 0; round < 50; round++) {
      let any = false;
      for (const [id, e] of engines) {
        for (const o of e.takeOutput().outgoing) {
          const messages = o.messages.filter((m) => !drop(id, o.to, m));
          for (const message of messages) seen.push({ from: id, to: o.to, message });
          any = true;
          if (messages.length) {
            engines.get(o.to)?.receive(id, { cluster: "c", sender: id, messages }, now);
          }
        }
      }
      if (!any) break;
    }
    return seen;
  };
  /** Runs every member's timers up to `until`, delivering as it goes. */
  const run = (until: number, drop?: Drop): Sent[] => {
    const out: Sent[] = [];
    for (;;) {
      const next = Math.min(...[...engines.values()].map((e) => e.nextWakeAt()));
      if (next > until) break;
      now = Math.max(now, next);
      for (const e of engines.values()) e.tick(now);
      out.push(...pump(drop));
    }
    now = until;
    return out;
  };
  for (const e of engines.values()) e.flush(now);
  pump();
  run(T0 + 10 * INTERVAL);
  const [a, b, c] = ["a", "b", "c"].map((id) => engines.get(id)!);
  assert.equal(a!.rootHex(), b!.rootHex(), "formed and in sync");
  assert.equal(a!.rootHex(), c!.rootHex(), "formed and in sync");
  // Past a's last round with b by more than two waits (a root that close would answer it).
  const started = () => a!.syncStates.get("b")?.lastStarted ?? 0;
  const last = started();
  while (started() === last) run(now + 50);
  run(started() + 2 * INTERVAL * SETTLE_FRACTION + 1);
  return {
    a: a!,
    b: b!,
    now: () => now,
    engine: (id: string) => engines.get(id)!,
    pump,
    run,
    /** b opens a round with a, as its anti-entropy would. */
    bAsksA(): Message[] {
      a!.receive("b", { cluster: "c", sender: "b", messages: [syncRoot(b!.store)] }, now);
      return a!.takeOutput().outgoing.filter((o) => o.to === "b").flatMap((o) => o.messages);
    },
  };
}

const descent = (ms: readonly Message[]) =>
  ms.filter((m) => m.type.startsWith("sync-") && m.type !== "sync-root");

test("a root that differs only by a write still travelling is answered later, by our own root", () => {
  const c = cluster();
  c.a.write("usr", "k", "v", false, c.now());
  c.a.flush(c.now());
  const inFlight = c.a.takeOutput(); // the broadcast, not delivered yet
  assert.ok(inFlight.outgoing.some((o) => o.messages.some((m) => m.type === "tree")));
  const reply = c.bAsksA();
  assert.deepEqual(descent(reply), [], "no descent while the write travels");
  // The broadcast arrives; a then sends its root, b finds it equal and says nothing.
  for (const o of inFlight.outgoing) {
    const to = o.to === "b" ? c.b : undefined;
    to?.receive("a", { cluster: "c", sender: "a", messages: o.messages }, c.now());
  }
  assert.equal(c.b.store.get("usr", "k")?.value, "v");
  const later = c.run(c.now() + INTERVAL * SETTLE_FRACTION);
  const roots = later.filter((s) => s.message.type === "sync-root" && s.from === "a");
  assert.ok(roots.length >= 1, "a answers with its own root once the wait is over");
  assert.deepEqual(descent(later.map((s) => s.message)), [], "equal roots by then: no descent");
});

test("a root whose entry count differs by more than the writes travelling is descended at once", () => {
  const c = cluster();
  for (let i = 0; i < 5; i++) c.a.write("usr", `old-${i}`, i, false, c.now());
  c.a.flush(c.now());
  c.a.takeOutput(); // lost: b never gets these five
  c.run(c.now() + INTERVAL * SETTLE_FRACTION + 1, () => true); // they no longer travel
  c.a.write("usr", "k", "v", false, c.now());
  c.a.flush(c.now());
  c.a.takeOutput();
  assert.ok(descent(c.bAsksA()).length > 0, "b lacks more than the one write travelling");
});

test("what the broadcast lost, anti-entropy still repairs within a fraction of the interval", () => {
  const c = cluster();
  const start = c.now();
  c.a.write("usr", "k", "v", false, start);
  c.a.flush(start);
  const tree: Drop = (_from, to, m) => to === "b" && (m.type === "tree" || m.type === "rumor");
  c.pump(tree); // every copy to b is lost, retransmissions too
  assert.equal(c.b.store.get("usr", "k"), undefined);
  assert.deepEqual(descent(c.bAsksA()), [], "a waits for the broadcast first");
  c.run(start + 2 * INTERVAL * SETTLE_FRACTION, tree);
  assert.equal(c.b.store.get("usr", "k")?.value, "v", "repaired by the round a answered later");
});

test("two members both waiting for writes do not keep bouncing roots: the one that opened the round answers at once", () => {
  const c = cluster();
  const start = c.now();
  const writer = c.engine("c");
  let i = 0;
  // c writes every 20 ms (delivered to all): a and b always have writes travelling.
  // k and j are lost on every path but anti-entropy between a and b.
  const lost: Drop = (from, to, m) =>
    (m.type === "tree" || m.type === "rumor" || (m.type === "entries" && from === "c")) &&
    m.entries.some((e) => (e.key === "k" && to !== "a") || (e.key === "j" && to !== "b"));
  c.a.write("usr", "k", "a's", false, start);
  c.a.flush(start);
  c.b.write("usr", "j", "b's", false, start);
  c.b.flush(start);
  c.pump(lost);
  const log: Sent[] = [];
  while (c.now() < start + 6 * INTERVAL) {
    writer.write("usr", `c-${i++}`, i, false, c.now());
    writer.flush(c.now());
    log.push(...c.run(c.now() + 20, lost));
  }
  const sync = log.filter((s) =>
    s.message.type.startsWith("sync-") && (s.from === "a" || s.from === "b") &&
    (s.to === "a" || s.to === "b")
  );
  // A root answered by a root (the answer after a wait), then what its receiver sends next.
  let checked = 0;
  for (let n = 1; n < sync.length; n++) {
    const [prev, cur] = [sync[n - 1]!, sync[n]!];
    if (prev.message.type !== "sync-root" || cur.message.type !== "sync-root") continue;
    if (cur.from !== prev.to) continue;
    const next = sync.slice(n + 1).find((s) => s.from === cur.to);
    assert.ok(next, "the member that opened the round answers the root it got back");
    assert.notEqual(next.message.type, "sync-root", "and descends at once, no second wait");
    checked++;
  }
  assert.ok(checked > 0, "a round was answered after a wait");
  assert.equal(c.a.store.get("usr", "j")?.value, "b's");
  assert.equal(c.b.store.get("usr", "k")?.value, "a's");
});
