// A five-member cluster in one process, over the in-memory network with 10% loss:
// writes on different members, a partition with writes on both sides, and the heal.
//
//   deno run examples/demo.ts      (or: bun examples/demo.ts, npx tsx examples/demo.ts)
import { GossipKV, MemoryNetwork } from "../mod.ts";

const net = new MemoryNetwork({ latencyMs: 5, jitterMs: 5, loss: 0.1 });
const ids = ["ada", "bob", "cyd", "dee", "eve"];
const members: GossipKV[] = [];
for (const id of ids) {
  members.push(
    await GossipKV.start({
      id,
      transport: net.transport(id),
      seeds: members.length ? ["ada"] : [],
      gossipIntervalMs: 100,
      probeIntervalMs: 250,
    }),
  );
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const show = (title: string) => {
  console.log(`\n${title}`);
  for (const m of members) {
    const alive = m.members().filter((x) => x.status === "alive").length;
    console.log(`  ${m.id}: ${JSON.stringify(m.snapshot().usr)}  (sees ${alive} alive)`);
  }
};

members[4]!.subscribe((c) => {
  const value = JSON.stringify(c.value);
  if (c.origin === "local") {
    console.log(c.deleted ? `  eve deleted ${c.key}` : `  eve set ${c.key} = ${value}`);
  } else {
    console.log(
      c.deleted
        ? `  eve learned that ${c.writer} deleted ${c.key}`
        : `  eve learned ${c.key} = ${value} from ${c.writer}`,
    );
  }
});
await sleep(500);
await members[0]!.set("greeting", "hello");
await members[2]!.set("counter", 1);
await sleep(300);
show("after two writes:");

net.partition(["ada", "bob"], ["cyd", "dee", "eve"]);
await members[0]!.set("counter", 100); // on one side
await sleep(10);
await members[3]!.set("counter", 200); // on the other, later: this one wins
await members[4]!.delete("greeting");
await sleep(300);
show("partitioned (ada, bob | cyd, dee, eve):");

net.heal();
await sleep(1500);
show("healed: every member holds the same data, last writer wins:");

await Promise.all(members.map((m) => m.close()));
