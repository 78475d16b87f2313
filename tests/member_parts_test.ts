// Unit tests of the small parts GossipKV is built from: listener fan-out and traffic counters.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Listeners } from "../src/_listeners.ts";
import { Traffic } from "../src/_traffic.ts";

test("listeners all get every event; a throwing one is reported and the rest still run", () => {
  const errors: unknown[] = [];
  const listeners = new Listeners<number>((e) => errors.push(e));
  const got: string[] = [];
  const offA = listeners.add((n) => void got.push(`a${n}`));
  listeners.add(() => {
    throw new Error("boom");
  });
  listeners.add((n) => void got.push(`c${n}`));
  listeners.emit(1);
  offA();
  offA(); // removing twice is harmless
  listeners.emit(2);
  assert.deepEqual(got, ["a1", "c1", "c2"]);
  assert.equal(errors.length, 2);
  assert.match(String(errors[0]), /boom/);
});

test("traffic counters share each datagram's bytes among its messages' types", () => {
  const t = new Traffic();
  t.received(100);
  t.received(30);
  t.receivedMessages([{ type: "ack" }, { type: "member" }], 100);
  t.sent(60);
  t.sent(40);
  t.sentMessages([{ type: "rumor" }, { type: "rumor" }, { type: "member" }, { type: "ping" }], 100);
  t.sendError();
  t.sendDropped();
  t.sendDropped();
  t.convergenceLag(-5);
  const s = t.snapshot();
  assert.deepEqual(s, {
    datagramsIn: 2,
    datagramsOut: 2,
    bytesIn: 130,
    bytesOut: 100,
    bytesOutByType: { rumor: 50, member: 25, ping: 25 },
    bytesInByType: { ack: 50, member: 50 },
    sendErrors: 1,
    sendsDropped: 2,
    lastConvergenceLagMs: 0,
  });
  (s.bytesOutByType as Record<string, number>).rumor = 0;
  assert.equal(t.snapshot().bytesOutByType.rumor, 50, "a snapshot is a copy");
  assert.equal(new Traffic().snapshot().lastConvergenceLagMs, null);
});
