import { test } from "node:test";
import assert from "node:assert/strict";
import { PROCESS_BURST, SEND_BURST, SendQueue } from "../src/transport/_send_queue.ts";

test("SendQueue sends a burst at once, queues the rest for later turns, small ones first", async () => {
  const sent: number[] = [];
  const q = new SendQueue((_to, data) => void sent.push(data.length));
  const results: (void | Promise<unknown>)[] = [];
  for (let i = 0; i < SEND_BURST; i++) results.push(q.send("a:1", new Uint8Array(1000)));
  assert.equal(sent.length, SEND_BURST);
  assert.ok(results.every((r) => r === undefined), "a synchronous send costs no promise");
  const later = [q.send("a:1", new Uint8Array(1000)), q.send("a:1", new Uint8Array(10))];
  assert.equal(sent.length, SEND_BURST);
  await Promise.all(later);
  assert.deepEqual(sent.slice(SEND_BURST), [10, 1000]);
  q.close();
});

test("SendQueue: a queued datagram whose send throws rejects alone, and the queue goes on", async () => {
  const sent: string[] = [];
  const q = new SendQueue((to) => {
    if (to === "bad") throw new TypeError("bad address");
    sent.push(to);
  });
  for (let i = 0; i < SEND_BURST; i++) q.send("a:1", new Uint8Array(1));
  const bad = q.send("bad", new Uint8Array(1));
  const good = q.send("b:2", new Uint8Array(1));
  await assert.rejects(Promise.resolve(bad), TypeError);
  await good;
  assert.equal(sent.at(-1), "b:2");
  q.close();
});

test("SendQueue: closing rejects what is queued, and later sends", async () => {
  const q = new SendQueue(() => Promise.resolve());
  for (let i = 0; i < SEND_BURST; i++) q.send("a:1", new Uint8Array(1));
  const queued = q.send("a:1", new Uint8Array(1));
  q.close();
  await assert.rejects(Promise.resolve(queued), /closed/);
  await assert.rejects(Promise.resolve(q.send("a:1", new Uint8Array(1))), /closed/);
});

test("SendQueue with a smaller burst sends that many a turn, the rest in later turns", async () => {
  const sent: number[] = [];
  const burst = 8;
  const q = new SendQueue((_to, data) => void sent.push(data[0]!), { timerTurns: true, burst });
  const all: (void | Promise<unknown>)[] = [];
  for (let i = 0; i < 3 * burst; i++) all.push(q.send("a:1", new Uint8Array(1000).fill(i)));
  assert.equal(sent.length, burst);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(sent.length, 2 * burst);
  await Promise.all(all);
  assert.deepEqual(sent, Array.from({ length: 3 * burst }, (_, i) => i));
  q.close();
});

test("timer-paced queues of one process share PROCESS_BURST datagrams a turn, the queue that waited first served first", async () => {
  const turn = () => new Promise((resolve) => setTimeout(resolve, 0));
  await turn(); // a fresh turn: the budget is whole
  const sent: number[] = [];
  const count = PROCESS_BURST / SEND_BURST + 2;
  const queues = Array.from(
    { length: count },
    (_, i) => new SendQueue(() => void sent.push(i), { timerTurns: true }),
  );
  const all: (void | Promise<unknown>)[] = [];
  for (const q of queues) {
    for (let j = 0; j < SEND_BURST; j++) all.push(q.send("a:1", new Uint8Array(1000)));
  }
  // Each queue alone could send SEND_BURST now; together they send PROCESS_BURST.
  assert.equal(sent.length, PROCESS_BURST);
  assert.deepEqual(new Set(sent), new Set(Array.from({ length: count - 2 }, (_, i) => i)));
  await turn();
  // The two queues that waited go first in the next turn.
  assert.deepEqual(
    sent.slice(PROCESS_BURST, PROCESS_BURST + 2 * SEND_BURST).sort((a, b) => a - b),
    [...Array(SEND_BURST).fill(count - 2), ...Array(SEND_BURST).fill(count - 1)],
  );
  await Promise.all(all);
  assert.equal(sent.length, count * SEND_BURST);
  for (const q of queues) q.close();
});
