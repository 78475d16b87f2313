// A copy that waits in a transport's send queue is timed from when it leaves: the tree
// broadcast's retransmission timer starts at its departure, not when it was handed out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TreeBroadcast } from "../src/core/broadcast.ts";
import type { TreeMessage } from "../src/core/messages.ts";
import { GossipKV } from "../src/gossip_kv.ts";
import { seededRandom } from "../src/core/random.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import type { Transport } from "../src/transport/types.ts";

const trees = (sends: { message: { type: string } }[]) =>
  sends.filter((s) => s.message.type === "tree").length;

test("a queued copy's retransmission timeout starts when it departs, not when handed out", () => {
  const a = new TreeBroadcast("a", { retransmitMs: 100 }, 0);
  a.overlay.set("b", true);
  const [copy] = a.originate([], 0);
  assert.equal(copy?.to, "b");
  const m = copy!.message as TreeMessage;
  // Handed out at 0, it would be due at 100; queued, it is not due while it waits.
  a.queued("b", m);
  assert.equal(trees(a.tick(500)), 0);
  // It left at 500: due at 600, its timeout counted from then.
  a.departed("b", m, 500);
  assert.equal(a.nextWakeAt(), 600);
  assert.equal(trees(a.tick(599)), 0);
  assert.equal(trees(a.tick(600)), 1);
  // A departure without a queue, or for another member, changes nothing.
  const control = new TreeBroadcast("a", { retransmitMs: 100 }, 0);
  control.overlay.set("b", true);
  const [other] = control.originate([], 0);
  control.departed("b", other!.message as TreeMessage, 80);
  control.queued("c", other!.message as TreeMessage);
  assert.equal(trees(control.tick(100)), 1);
});

test("a member whose transport holds its sends 300 ms sends each tree copy once", async () => {
  const net = new MemoryNetwork({ virtualTime: true, latencyMs: 1 });
  const time = net.time!;
  const hold = 300;
  let holding = false;
  // A transport whose sends wait in a queue for `hold` ms once `holding` (after the join),
  // as a real one's may under load, each resolving when its datagram leaves.
  const slow = (inner: Transport): Transport => ({
    ...inner,
    listen: (handler) => inner.listen(handler),
    close: () => inner.close(),
    send(to, data) {
      if (!holding) return inner.send(to, data);
      return new Promise<void>((resolve) => {
        time.setTimeout(() => {
          void inner.send(to, data);
          resolve();
        }, hold);
      });
    },
  });
  const start = (id: string, transport: Transport, seeds: string[]) =>
    GossipKV.start({
      id,
      transport,
      seeds,
      clock: time,
      scheduler: time,
      random: seededRandom(id),
      onError: (error) => {
        throw error;
      },
    });
  const a = await start("a", slow(net.transport("a")), []);
  const b = await start("b", net.transport("b"), ["a"]);
  // Virtual time in steps, letting promises settle between them.
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 5) {
      time.advance(5);
      for (let i = 0; i < 5; i++) await Promise.resolve();
    }
  };
  await run(3000);
  assert.equal(b.members().filter((m) => m.status === "alive").length, 2);
  holding = true;
  const before = a.stats().engine.messagesOut.tree;
  await a.set("k", "v");
  await run(2 * hold + 200);
  assert.equal(b.get("k"), "v");
  // Without the departure, its timeout (100 ms: no round trip measured yet) ran out while
  // the copy was still queued, and the copy went again.
  assert.equal(a.stats().engine.messagesOut.tree - before, 1);
  holding = false;
  await run(hold + 10); // what is still held leaves: closing waits for every send
  await Promise.all([a.close({ leave: false }), b.close({ leave: false })]);
});
