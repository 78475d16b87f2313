// The spread of part 4's dissemination figures over repeated bursts: `deno task bench`
// measures each (N, loss, writes) cell once, so a figure near its target may pass or fail
// with the writer drawn. This runs each cell `--trials` times on one formed cluster (as part 4
// does, the cluster settling between bursts) and prints, per cell, the median and the worst
// of the balance (the busiest member's data bytes ÷ the mean) and of the time to the last
// member ÷ the epidemic bound, and how many bursts missed each target.
//
//   deno run -A bench/balance.ts [--n 16,64,256] [--loss 0.1,0.3] [--writes 1,1000]
//                                [--trials 10] [--seed 1]
//
// Targets (as in docs/benchmarks.md): busiest ÷ mean ≤ ×3; the last member within ×2 the
// bound without loss, ×5 with 10% loss, and within 3 gossip rounds at 30% loss.
import { DEFAULTS } from "../src/gossip_kv.ts";
import { SimCluster } from "./cluster.ts";
import { type ConvergenceOptions, settle, spread } from "./convergence.ts";

const LATENCY_MS = 10;

interface Options {
  ns: number[];
  losses: number[];
  writes: number[];
  trials: number;
  seed: number;
}

function parse(argv: readonly string[]): Options {
  const o: Options = {
    ns: [16, 64, 256],
    losses: [0.1, 0.3],
    writes: [1, 1000],
    trials: 10,
    seed: 1,
  };
  const list = (v: string | undefined, name: string): number[] => {
    const xs = (v ?? "").split(",").map(Number);
    if (v === undefined || xs.some((x) => !Number.isFinite(x) || x < 0)) {
      throw new Error(`${name} needs a comma-separated list of non-negative numbers, got ${v}`);
    }
    return xs;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--n") o.ns = list(argv[++i], a);
    else if (a === "--loss") o.losses = list(argv[++i], a);
    else if (a === "--writes") o.writes = list(argv[++i], a);
    else if (a === "--trials") o.trials = list(argv[++i], a)[0]!;
    else if (a === "--seed") o.seed = list(argv[++i], a)[0]!;
    else throw new Error(`unknown option ${a}`);
  }
  if (!(o.trials >= 1) || !Number.isInteger(o.trials)) throw new Error("--trials must be ≥ 1");
  if (o.ns.some((n) => n < 2 || !Number.isInteger(n))) throw new Error("--n must be ≥ 2");
  if (o.losses.some((l) => l >= 1)) throw new Error("--loss must be below 1");
  return o;
}

/** Whether a burst that took `ms` met its time target (see the module). */
function onTime(ms: number, n: number, loss: number): boolean {
  if (ms < 0) return false;
  if (loss >= 0.3) return ms < 3 * DEFAULTS.gossipIntervalMs;
  const bound = Math.log(n) / Math.log(DEFAULTS.fanout + 1);
  return ms / LATENCY_MS / bound <= (loss > 0 ? 5 : 2);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1]!;
}

const o = parse(process.argv.slice(2));
console.log(
  "| N | loss | writes | bursts | busiest ÷ mean: median / worst | over ×3 | " +
    "all ÷ bound: median / worst | late |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const n of o.ns) {
  const { cluster } = await SimCluster.form({
    n,
    seed: o.seed,
    latencyMs: LATENCY_MS,
    batch: n,
    batchEveryMs: 0,
    maxMs: 300_000,
  });
  const options: ConvergenceOptions = {
    n,
    seed: o.seed,
    latencyMs: LATENCY_MS,
    losses: o.losses,
    writes: o.writes,
    windowMs: 0,
    loadRate: 0,
    maxMs: 120_000,
  };
  settle(cluster);
  spread(cluster, 1, 0, options); // as part 4: the first broadcast over the formed overlay
  const bound = Math.log(n) / Math.log(DEFAULTS.fanout + 1);
  for (const loss of o.losses) {
    for (const writes of o.writes) {
      const ratios: number[] = [], times: number[] = [];
      let late = 0;
      for (let t = 0; t < o.trials; t++) {
        const s = spread(cluster, writes, loss, options);
        ratios.push(s.relayMaxOverMean);
        times.push(s.ms < 0 ? Infinity : s.ms / LATENCY_MS / bound);
        if (!onTime(s.ms, n, loss)) late++;
      }
      const f = (x: number) => `×${x.toFixed(2)}`;
      console.log(
        `| ${n} | ${loss * 100}% | ${writes} | ${o.trials} | ${f(median(ratios))} / ${
          f(Math.max(...ratios))
        } | ${ratios.filter((r) => r > 3).length} | ${f(median(times))} / ${
          f(Math.max(...times))
        } | ${late} |`,
      );
    }
  }
  await cluster.close();
}
