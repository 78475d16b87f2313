// CPU time per replicated write per member, this release against release 0.1.0 (tag
// v0.1.0, extracted with `git archive` under .scratch/), in one process and one run:
//
//   deno run -A bench/cpu_per_write.ts [--n 16] [--writes 2000] [--rate 200] [--trials 3]
//
// N members on a MemoryNetwork on virtual time (10 ms latency, the real codec on every
// datagram), `writes` writes at `rate` per second cluster-wide, each by a random member;
// CPU is the process's user + system time (`process.cpuUsage`) from the first write until
// every member holds every write, divided by writes × N. The two releases alternate, and
// the table shows the median of the trials and the ratio of the medians.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { seededRandom } from "../src/core/random.ts";
import { GossipKV } from "../src/gossip_kv.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";

const TAG = "v0.1.0";
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OLD = fileURLToPath(new URL(`../.scratch/${TAG}/`, import.meta.url));

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const N = arg("n", 16), WRITES = arg("writes", 2000), RATE = arg("rate", 200);
const TRIALS = arg("trials", 3);

if (!existsSync(`${OLD}src/gossip_kv.ts`)) {
  mkdirSync(OLD, { recursive: true });
  const archive = spawnSync("git", ["archive", TAG, "src"], { cwd: ROOT, maxBuffer: 1 << 28 });
  if (archive.status !== 0) throw new Error(`git archive ${TAG} failed: ${archive.stderr}`);
  spawnSync("tar", ["-x", "-C", OLD], { input: archive.stdout });
}
const old = (await import(new URL(`file://${OLD}src/gossip_kv.ts`).href)) as {
  GossipKV: typeof GossipKV;
};

async function run(Kv: typeof GossipKV, seed: number): Promise<number> {
  const net = new MemoryNetwork({ seed, latencyMs: 10, virtualTime: true });
  const time = net.time!;
  const members: GossipKV[] = [];
  for (let i = 0; i < N; i++) {
    members.push(
      await Kv.start({
        id: `m${i}`,
        transport: net.transport(`m${i}`),
        seeds: i === 0 ? [] : ["m0"],
        clock: time,
        scheduler: time,
        random: seededRandom(`${seed}/m${i}`),
      }),
    );
  }
  time.advance(10_000); // formed and in sync
  const random = seededRandom(`${seed}/writes`);
  let got = 0;
  for (const kv of members) kv.subscribe((c) => void (c.origin === "remote" && got++));
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < WRITES; i++) {
    void members[Math.floor(random() * N)]!.set(`k${i}`, `value-${i}`);
    time.advance(1000 / RATE);
  }
  time.runUntil(() => got >= WRITES * (N - 1), 60_000);
  const cpu = process.cpuUsage(cpu0);
  if (got < WRITES * (N - 1)) throw new Error(`only ${got} of ${WRITES * (N - 1)} deliveries`);
  for (const kv of members) await kv.close({ leave: false });
  return (cpu.user + cpu.system) / (WRITES * N); // µs per write per member
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const ours: number[] = [], theirs: number[] = [];
for (let t = 0; t < TRIALS; t++) {
  theirs.push(await run(old.GossipKV, t + 1));
  ours.push(await run(GossipKV, t + 1));
}
console.log(
  `N=${N}, ${WRITES} writes at ${RATE}/s: CPU per write per member, median of ${TRIALS}: ` +
    `0.1.0 ${median(theirs).toFixed(1)} µs, this release ${median(ours).toFixed(1)} µs ` +
    `(×${(median(ours) / median(theirs)).toFixed(2)})`,
);
