import { test } from "node:test";
import assert from "node:assert/strict";
import { Overlay, TreeBroadcast, type TreeSend } from "../src/core/broadcast.ts";
import { seededRandom } from "../src/core/random.ts";
import type { Entry } from "../src/core/store.ts";
import { Wire } from "../src/wire/wire.ts";

const ids = (n: number) => Array.from({ length: n }, (_, i) => `m${i}`);

function overlays(members: readonly string[], rings = 3): Map<string, Overlay> {
  const out = new Map<string, Overlay>();
  for (const self of members) {
    const o = new Overlay(self, rings);
    for (const id of members) o.set(id, true);
    out.set(self, o);
  }
  return out;
}

/** Hop distances from `from` over the overlays' neighbour lists. */
function distances(all: Map<string, Overlay>, from: string): Map<string, number> {
  const dist = new Map([[from, 0]]);
  const queue = [from];
  while (queue.length) {
    const at = queue.shift()!;
    for (const n of all.get(at)!.neighbors()) {
      if (!dist.has(n)) {
        dist.set(n, dist.get(at)! + 1);
        queue.push(n);
      }
    }
  }
  return dist;
}

test("the overlay is symmetric, of bounded degree, connected, and the same whoever builds it", () => {
  const members = ids(200);
  const all = overlays(members);
  for (const [id, o] of all) {
    const nbrs = o.neighbors();
    assert.ok(nbrs.length >= 2 && nbrs.length <= 6, `${id} has ${nbrs.length} neighbours`);
    for (const n of nbrs) assert.ok(all.get(n)!.neighbors().includes(id), `${id}–${n} one way`);
  }
  const dist = distances(all, "m0");
  assert.equal(dist.size, members.length, "connected");
  // A random 6-regular graph of 200 nodes has a diameter of about 4; allow some slack.
  assert.ok(Math.max(...dist.values()) <= 6, `eccentricity ${Math.max(...dist.values())}`);
  // Built in another order, the same neighbours.
  const shuffled = new Overlay("m0", 3);
  for (const id of [...members].reverse()) shuffled.set(id, true);
  assert.deepEqual(
    [...shuffled.neighbors()].sort(),
    [...all.get("m0")!.neighbors()].sort(),
  );
});

test("a member leaving the overlay changes the neighbours of at most 2 × rings members", () => {
  const members = ids(100);
  const all = overlays(members);
  const before = new Map([...all].map(([id, o]) => [id, [...o.neighbors()].sort().join()]));
  for (const o of all.values()) o.set("m42", false);
  all.delete("m42");
  let changed = 0;
  for (const [id, o] of all) if ([...o.neighbors()].sort().join() !== before.get(id)) changed++;
  assert.ok(changed >= 1 && changed <= 6, `${changed} members changed neighbours`);
  assert.equal(distances(all, "m0").size, 99, "still connected");
});

test("the overlay refuses a ring count that is not a positive integer", () => {
  assert.throws(() => new Overlay("a", 0), RangeError);
  assert.throws(() => new Overlay("a", 1.5), RangeError);
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
  lossTypes = new Set(["tree", "ihave", "graft", "prune"]);
  readonly #queue: { at: number; from: string; send: TreeSend }[] = [];
  readonly #random = seededRandom("tree-net");

  constructor(members: readonly string[], readonly latency = 10) {
    for (const id of members) {
      const t = new TreeBroadcast(id, {}, 0);
      for (const other of members) t.overlay.set(other, true);
      this.nodes.set(id, t);
      this.got.set(id, new Set());
    }
  }

  broadcast(from: string, key: string): void {
    const entry: Entry = {
      section: "usr",
      key,
      value: "v",
      wall: 1,
      logical: 0,
      writer: from,
      deleted: false,
    };
    this.got.get(from)!.add(key);
    this.#post(from, this.nodes.get(from)!.originate([entry], this.now));
  }

  #post(from: string, sends: readonly TreeSend[]): void {
    for (const send of sends) {
      if (send.message.type === "tree") {
        this.treeOut.set(from, (this.treeOut.get(from) ?? 0) + 1);
      }
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
      case "graft":
        this.#post(to, t.receiveGraft(from, message, this.now));
        break;
      case "prune":
        t.receivePrune(from, message.origin);
        break;
    }
  }

  everyoneHas(key: string): boolean {
    return [...this.got.values()].every((s) => s.has(key));
  }
}

test("the first broadcast floods and prunes; the next ones reach everyone about once", () => {
  const members = ids(64);
  const net = new TreeNet(members);
  net.broadcast("m0", "warm");
  net.run();
  assert.ok(net.everyoneHas("warm"));
  // Eager links are symmetric and form a spanning tree: N − 1 undirected links.
  let eager = 0;
  for (const [id, t] of net.nodes) {
    for (const n of t.eager) {
      eager++;
      assert.ok(net.nodes.get(n)!.eager.has(id), `eager ${id}→${n} but not back`);
    }
  }
  assert.equal(eager / 2, members.length - 1);
  net.treeIn.clear();
  for (let i = 0; i < 10; i++) net.broadcast(members[(i * 7) % 64]!, `k${i}`);
  net.run();
  for (let i = 0; i < 10; i++) assert.ok(net.everyoneHas(`k${i}`));
  const received = [...net.treeIn.values()].reduce((a, b) => a + b, 0);
  assert.equal(received, 10 * (members.length - 1), "each member received each message once");
});

test("no member relays a message more often than its overlay degree, whoever broadcasts", () => {
  const members = ids(100);
  const net = new TreeNet(members);
  net.broadcast("m0", "warm");
  net.run();
  net.treeOut.clear();
  for (let i = 0; i < 100; i++) net.broadcast(members[i]!, `k${i}`);
  net.run();
  const shares = members.map((id) => net.treeOut.get(id) ?? 0);
  const total = shares.reduce((a, b) => a + b, 0);
  // About one copy per member per message: a few grafts where an announcement overtook a
  // long path of the tree.
  assert.ok(total >= 100 * 99 && total <= 1.05 * 100 * 99, `${total} copies`);
  // No star: the busiest member relays at most its overlay degree per message.
  const degree = 2 * net.nodes.get("m0")!.config.rings;
  assert.ok(Math.max(...shares) <= 100 * degree, `busiest relayed ${Math.max(...shares)}`);
});

test("with 30% of the copies lost, announcements and grafts bring every message to all", () => {
  const members = ids(50);
  const net = new TreeNet(members);
  net.broadcast("m0", "warm");
  net.run();
  net.loss = 0.3;
  net.lossTypes = new Set(["tree"]); // what is left to anti-entropy when announcements are lost too
  for (let i = 0; i < 20; i++) net.broadcast(members[(i * 3) % 50]!, `k${i}`);
  net.run(5_000);
  for (let i = 0; i < 20; i++) assert.ok(net.everyoneHas(`k${i}`), `k${i} did not reach all`);
  const grafts = [...net.nodes.values()].reduce((a, t) => a + t.counters.grafts, 0);
  assert.ok(grafts > 0, "losses were repaired by grafts");
});

test("a member that hears of a message it lacks grafts it from the announcer", () => {
  const a = new TreeBroadcast("a", { graftTimeoutMs: 10 }, 0);
  const b = new TreeBroadcast("b", { graftTimeoutMs: 10 }, 0);
  a.overlay.set("b", true);
  b.overlay.set("a", true);
  b.receivePrune("a", "b"); // b only announces its messages to a
  const entry: Entry = {
    section: "usr",
    key: "k",
    value: 1,
    wall: 1,
    logical: 0,
    writer: "b",
    deleted: false,
  };
  assert.deepEqual(b.originate([entry], 0), [], "nothing eager");
  const announced = b.tick(b.nextWakeAt());
  assert.equal(announced.length, 1);
  const ihave = announced[0]!.message;
  assert.equal(ihave.type, "ihave");
  if (ihave.type !== "ihave") return;
  a.receiveIHave("b", ihave, 100);
  assert.deepEqual(a.tick(105), [], "waits for the eager copy first");
  const grafts = a.tick(110);
  assert.equal(grafts.length, 1);
  const graft = grafts[0]!.message;
  assert.equal(graft.type, "graft");
  if (graft.type !== "graft") return;
  const resent = b.receiveGraft("a", graft, 120);
  assert.equal(resent.length, 1);
  assert.equal(resent[0]!.message.type, "tree");
  assert.ok(b.eager.has("a"), "the graft turned the link eager again");
  const r = a.receiveTree("b", resent[0]!.message as never, 130);
  assert.ok(r.fresh);
  assert.equal(a.missing, 0);
});

test("a skipped sequence number is asked for from the sender of a later one", () => {
  const a = new TreeBroadcast("a", { graftTimeoutMs: 10 }, 0);
  a.overlay.set("b", true);
  const m = (seq: number) => ({
    type: "tree" as const,
    origin: "c",
    seq,
    hop: 1,
    entries: [],
  });
  a.receiveTree("b", m(5), 0);
  a.receiveTree("b", m(8), 1);
  assert.equal(a.missing, 2, "6 and 7");
  const grafts = a.tick(20);
  assert.deepEqual(grafts.map((s) => s.message), [{ type: "graft", origin: "c", seqs: [6, 7] }]);
  assert.equal(grafts[0]!.to, "b");
});

test("a duplicate prunes the link it came by, with the next batch, once", () => {
  const a = new TreeBroadcast("a", { graftTimeoutMs: 10, lazyDelayMs: 50 }, 0);
  a.overlay.set("b", true);
  a.overlay.set("c", true);
  const m = { type: "tree" as const, origin: "x", seq: 1, hop: 1, entries: [] };
  assert.ok(a.receiveTree("b", m, 0).fresh);
  const dup = a.receiveTree("c", m, 1);
  assert.equal(dup.fresh, false);
  assert.deepEqual(dup.sends, [], "the prune waits for the next batch");
  assert.ok(a.lazy.has("c") && !a.eager.has("c"));
  a.receiveTree("c", m, 2);
  const sent = a.tick(a.nextWakeAt()).filter((s) => s.message.type === "prune");
  assert.deepEqual(sent, [{ to: "c", message: { type: "prune", origin: "x" } }], "one prune");
});

test("the tree messages survive the wire: encode, decode, and bad ones are refused", () => {
  const wire = new Wire({ cluster: "c", sender: "s" });
  const entry: Entry = {
    section: "usr",
    key: "k",
    value: "v",
    wall: 1_700_000_000_000,
    logical: 2,
    writer: "s",
    deleted: false,
  };
  const messages = [
    { type: "tree" as const, origin: "s", seq: 1_700_000_000_000 * 1024, hop: 3, entries: [entry] },
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
