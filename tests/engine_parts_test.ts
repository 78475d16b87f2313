// Unit tests of the engine's parts: configuration, outbox, graveyard, large values and the
// dissemination interface.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_CONFIG, isConfigKey, resolveConfig } from "../src/core/config.ts";
import { newCounters } from "../src/core/counters.ts";
import type { Dissemination, DisseminationContext } from "../src/core/dissemination.ts";
import { Engine } from "../src/core/engine.ts";
import { Graveyard } from "../src/core/graveyard.ts";
import { LargeValueCooldown } from "../src/core/large_values.ts";
import type { MemberMessage, RumorMessage } from "../src/core/messages.ts";
import { Outbox } from "../src/core/outbox.ts";
import { seededRandom } from "../src/core/random.ts";
import { hashEntry, type StoredEntry } from "../src/core/store.ts";
import { meet } from "./_meet.ts";

function entry(key: string, wall: number, value: unknown = 1): StoredEntry {
  return hashEntry({ section: "usr", key, value, wall, logical: 0, writer: "w", deleted: false });
}

test("resolveConfig() fills defaults, ignores other fields and ties the probe timeout", () => {
  const c = resolveConfig({
    id: "x",
    fanout: 5,
    probeIntervalMs: 400,
    gossipIntervalMs: undefined,
  });
  assert.equal(c.fanout, 5);
  assert.equal(c.probeTimeoutMs, 200, "half a custom probe period");
  assert.equal(c.gossipIntervalMs, DEFAULT_CONFIG.gossipIntervalMs);
  assert.equal("id" in c, false);
  assert.ok(Object.isFrozen(c));
  assert.equal(resolveConfig({ probeIntervalMs: 400, probeTimeoutMs: 300 }).probeTimeoutMs, 300);
  assert.throws(() => resolveConfig({ fanout: 2.5 }), RangeError);
  assert.throws(() => resolveConfig({ maxDriftMs: -1 }), /maxDriftMs must be a positive number/);
  assert.throws(() => resolveConfig({ forgetAfterMs: Infinity }), RangeError);
  assert.equal(isConfigKey("fanout"), true);
  assert.equal(isConfigKey("toString"), false);
});

test("the outbox groups by address, drops messages to itself and piggybacks news of the recipient first", () => {
  const counters = newCounters();
  const outbox = new Outbox("me", 1, counters.messagesOut);
  const about = (id: string): MemberMessage => ({
    type: "member",
    id,
    address: id,
    incarnation: 0,
    status: "alive",
  });
  outbox.broadcast(about("x"), 5);
  outbox.broadcast(about("b"), 5);
  outbox.send("me", { type: "ack", seq: 1 });
  outbox.send("a:1", { type: "ack", seq: 2 });
  outbox.send("b:1", { type: "ack", seq: 3 }, "b");
  outbox.send("a:1", { type: "ack", seq: 4 });
  const out = outbox.take(true);
  assert.deepEqual(out.map((o) => o.to), ["a:1", "b:1"]);
  assert.deepEqual(out[0]!.messages.map((m) => m.type), ["ack", "ack", "member"]);
  assert.equal((out[1]!.messages[1] as MemberMessage).id, "b", "news about the recipient first");
  assert.equal(counters.messagesOut.ack, 3);
  assert.equal(counters.messagesOut.member, 2);
  outbox.send("a:1", { type: "ack", seq: 5 });
  assert.deepEqual(outbox.take(false)[0]!.messages.map((m) => m.type), ["ack"]);
  assert.deepEqual(outbox.take(true), []);
});

test("the graveyard refuses versions behind a collected tombstone, and only once settled", () => {
  const grace = 1_000;
  const g = new Graveyard(grace);
  const now = 100_000;
  g.bury([entry("dead", now - 2_000)], now);
  assert.equal(g.buried(entry("dead", now - 3_000), now, true), true, "older than the tombstone");
  assert.equal(g.buried(entry("dead", now - 3_000), now, false), false, "not settled: no verdict");
  assert.equal(
    g.buried(entry("dead", now - 1_500), now, true),
    false,
    "a late write after the delete",
  );
  assert.equal(g.buried(entry("other", now - 3_000), now, true), false, "never deleted");
  assert.equal(g.buried(entry("dead", now - 500), now, true), false, "within the grace period");
  assert.equal(g.buried(entry("other", now - 20_000), now, true), true, "beyond its memory");
});

test("a large value is held back per peer for the cooldown; small ones always pass", () => {
  const cool = new LargeValueCooldown(1_000);
  const big = entry("big", 1, new Uint8Array(10_000));
  const small = entry("small", 1);
  assert.deepEqual(cool.withoutInFlight("p", [big, small], 0), [big, small]);
  assert.deepEqual(cool.withoutInFlight("p", [big, small], 500), [small]);
  assert.deepEqual(cool.withoutInFlight("q", [big], 500), [big], "another peer");
  cool.expire(1_000);
  assert.deepEqual(cool.withoutInFlight("p", [big], 1_000), [big], "after the cooldown");
});

test("another dissemination scheme replaces rumor mongering behind the interface", () => {
  const log: string[] = [];
  class Direct implements Dissemination {
    readonly #ctx: DisseminationContext;
    constructor(ctx: DisseminationContext) {
      this.#ctx = ctx;
    }
    publish(entries: readonly StoredEntry[]): void {
      log.push(`publish ${entries.map((e) => e.key)}`);
      for (const m of this.#ctx.membership.live()) {
        this.#ctx.outbox.send(m.address, { type: "rumor", hop: 7, entries }, m.id);
      }
    }
    receive(message: RumorMessage, sender: string, from: string, now: number): void {
      for (const e of message.entries) {
        log.push(`${sender} ${e.key} ${this.#ctx.mergeRemote(e, from, now)}`);
      }
    }
    endEnvelope(sender: string): void {
      log.push(`end ${sender}`);
    }
  }
  const t = 1_000_000;
  const make = (id: string) => {
    const e = new Engine(
      { id, address: id, dissemination: (c) => new Direct(c) },
      t,
      seededRandom(id),
    );
    e.start(t);
    e.flush(t); // its own record, to nobody yet
    return e;
  };
  const a = make("a"), b = make("b");
  meet(a, b, t);
  log.length = 0;
  a.write("usr", "k", 1, false, t);
  a.flush(t);
  const toB = a.takeOutput().outgoing.find((o) => o.to === "b")!;
  assert.equal(toB.messages[0]!.type, "rumor");
  assert.equal((toB.messages[0] as RumorMessage).hop, 7, "the scheme's own message");
  b.receive("a", { cluster: "c", sender: "a", messages: toB.messages }, t);
  assert.deepEqual(log, ["publish k", "a k applied", "end a"]);
  assert.equal(b.store.get("usr", "k")?.value, 1);
});
