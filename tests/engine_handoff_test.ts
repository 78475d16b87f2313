// The graceful close's hand-off (src/core/engine.ts): a member that leaves sends its own
// recent writes (newest first, within 4 anti-entropy periods and 32 kB) to 2 × fanout live
// peers as anti-entropy entries, one datagram (about 1,000 bytes) each.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RumorMongering } from "../src/core/dissemination.ts";
import { Engine } from "../src/core/engine.ts";
import type { EntriesMessage, Envelope, Message } from "../src/core/messages.ts";
import { seededRandom } from "../src/core/random.ts";

const envelope = (sender: string, messages: Message[] = []): Envelope => ({
  cluster: "c",
  sender,
  messages,
});

/** Engine "a" (fanout 1, anti-entropy every 500 ms) with live peers b, c and d. */
function member(): Engine {
  const a = new Engine(
    {
      id: "a",
      address: "a:1",
      dissemination: (c) => new RumorMongering(c),
      fanout: 1,
      gossipIntervalMs: 500,
    },
    0,
    seededRandom("a"),
  );
  a.start(0);
  for (const peer of ["b", "c", "d"]) {
    a.receive(`${peer}:1`, envelope(peer), 0);
    const ping = a.takeOutput().outgoing.flatMap((o) => o.messages).find((m) =>
      m.type === "ping" && (m as { target: string }).target === peer
    ) as { seq: number } | undefined;
    assert.ok(ping);
    a.receive(`${peer}:1`, envelope(peer, [{ type: "ack", seq: ping.seq }]), 0);
    a.takeOutput();
  }
  return a;
}

/** The entries handed off at leave(now): address → the keys of each message. */
function handOff(a: Engine, now: number): Map<string, string[][]> {
  a.leave(now);
  const out = new Map<string, string[][]>();
  for (const o of a.takeOutput().outgoing) {
    const lists = o.messages.filter((m) => m.type === "entries").map((m) =>
      (m as EntriesMessage).entries.map((e) => e.key)
    );
    if (lists.length) out.set(o.to, lists);
  }
  return out;
}

test("the writes of the last 4 periods go, newest first, to 2 × fanout peers", () => {
  const a = member();
  a.write("usr", "old", "x", false, 1_000);
  a.write("usr", "edge", "x", false, 8_000);
  a.write("usr", "k1", "x", false, 9_000);
  a.write("usr", "k2", "x", false, 9_500);
  a.write("usr", "gone", undefined, true, 9_600);
  a.write("usr", "big", "x".repeat(10_000), false, 9_700);
  a.receive(
    "b:1",
    envelope("b", [{
      type: "rumor",
      hop: 0,
      entries: [{
        section: "usr",
        key: "theirs",
        value: "y",
        wall: 9_800,
        logical: 0,
        writer: "b",
        deleted: false,
      }],
    }]),
    9_800,
  );
  a.takeOutput();
  const sent = a.counters.syncEntriesSent;
  const out = handOff(a, 10_000);
  assert.equal(out.size, 2, "2 × fanout peers");
  for (const lists of out.values()) {
    // 10,000 − 4 × 500 = 8,000: "edge" is just in, "old" out; large values and other
    // writers' entries stay behind.
    assert.deepEqual(lists, [["gone", "k2", "k1", "edge"]]);
  }
  assert.equal(a.counters.syncEntriesSent - sent, 8);
});

test("the hand-off is cut into messages of about 1,000 bytes, 32 kB in all", () => {
  const a = member();
  // key 3 + writer 1 + 24 + 472 = 500 bytes each: two a message.
  for (let i = 0; i < 80; i++) {
    a.write("usr", `k${String(i).padStart(2, "0")}`, "x".repeat(472), false, 9_000 + i);
  }
  a.takeOutput();
  const out = handOff(a, 9_100);
  for (const lists of out.values()) {
    // 32,768 bytes: 65 entries of 500 (the 66th would pass), two a message.
    assert.deepEqual(lists.map((l) => l.length), [...Array(32).fill(2), 1]);
    assert.deepEqual(lists.at(-1), ["k15"]);
    assert.deepEqual(lists[0], ["k79", "k78"]);
  }
});

test("nothing recent: nothing handed off", () => {
  const a = member();
  a.write("usr", "old", "x", false, 1_000);
  a.takeOutput();
  assert.equal(handOff(a, 10_000).size, 0);
});

test("writes of the same millisecond are handed off newest first by their logical counter", () => {
  const a = member();
  for (const key of ["ka", "kb", "kc"]) a.write("usr", key, "x", false, 9_000);
  assert.deepEqual(
    ["ka", "kb", "kc"].map((k) => a.entry("usr", k)!.logical),
    [0, 1, 2],
    "one wall, counters 0 to 2",
  );
  a.takeOutput();
  for (const lists of handOff(a, 9_100).values()) assert.deepEqual(lists, [["kc", "kb", "ka"]]);
});

test("a hand-off of exactly 32 kB goes whole", () => {
  const a = member();
  // key 3 + writer 1 + 24 + 484 = 512 bytes each: one a message; 64 make 32,768 bytes.
  for (let i = 0; i < 65; i++) {
    a.write("usr", `k${String(i).padStart(2, "0")}`, "x".repeat(484), false, 9_000 + i);
  }
  a.takeOutput();
  for (const lists of handOff(a, 9_100).values()) {
    assert.equal(lists.length, 64);
    assert.deepEqual(lists[0], ["k64"]);
    assert.deepEqual(lists.at(-1), ["k01"], "the oldest is the one left out");
  }
});

test("an entry's size counts its key, its writer, 24 bytes and its value", () => {
  const a = member();
  // key 3 + writer 1 + 24 + 306 = 334 bytes each: a third would pass 1,000 bytes.
  for (let i = 0; i < 6; i++) {
    a.write("usr", `k${String(i).padStart(2, "0")}`, "x".repeat(306), false, 9_000 + i);
  }
  a.takeOutput();
  for (const lists of handOff(a, 9_100).values()) {
    assert.deepEqual(lists, [["k05", "k04"], ["k03", "k02"], ["k01", "k00"]]);
  }
});

test("a write larger than the whole hand-off is left out, with no empty message in its place", () => {
  const a = member();
  a.write("usr", "k".repeat(33_000), "x", false, 9_000);
  a.takeOutput();
  assert.equal(handOff(a, 9_100).size, 0);
});
