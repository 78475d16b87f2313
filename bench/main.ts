// The benchmark suite: `deno task bench` (also `bun bench/main.ts`, `npx tsx bench/main.ts`).
//
//   deno task bench             full run (under 10 minutes): writes docs/benchmarks.md and
//                               docs/bench/*.svg, prints a summary
//   deno task bench --quick     smaller sizes, this runtime only, into a temporary directory
//   deno task bench --smoke     tiny sizes (about 10 s), into a temporary directory: for CI
//
// Options: --out DIR (where benchmarks.md and bench/ go), --runtimes deno,bun,node (which
// runtimes measure parts 1 and 2; default: all installed for a full run, this one
// otherwise), --max-n N (largest cluster; the default, 1,000, is the largest that fits the
// 10-minute budget; 2,000 needs a larger heap than Deno's default 4 GiB:
// deno run -A --v8-flags=--max-old-space-size=8192 bench/main.ts --max-n 2000).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { DEFAULTS } from "../src/gossip_kv.ts";
import { antiEntropy } from "./anti_entropy.ts";
import { codec } from "./codec.ts";
import { keepSections } from "./sections.ts";
import { convergence, type ConvergenceResult } from "./convergence.ts";
import {
  commandFor,
  denoBinary,
  gc,
  heapUsed,
  machineLabel,
  now,
  ROOT,
  runtime,
  runtimeLabel,
  type RuntimeName,
} from "./env.ts";
import { localOps } from "./local_ops.ts";
import { charts, headlines, markdown, type Results, type RuntimeResults } from "./report.ts";
import { type PeerSpread, scuttlebuttSpread } from "./scuttlebutt.ts";
import { udp, type UdpResult } from "./udp.ts";

type Mode = "full" | "quick" | "smoke";

/**
 * The `results.json` of a full run of release 0.1.0 (rumor mongering), kept to show the
 * dissemination figures before and after the broadcast tree.
 */
const BASELINE = { file: "docs/bench/baseline-0.1.0.json", label: "release 0.1.0 → this release" };

interface Plan {
  readonly local: { keys: number; trials: number; memoryKeys: number };
  readonly codec: { ms: number; trials: number };
  readonly ae: { ns: number[]; ds: number[] };
  readonly ns: number[];
  readonly losses: number[];
  /** Largest N that runs the 30% loss case (see the report for why). */
  readonly lossCapN: number;
  readonly writes: number[];
  readonly windowMs: number;
  readonly loadRate: number;
  /** Each cluster size, with its bursts. */
  readonly udp: { clusters: { n: number; writes: number[] }[]; repeats: number };
}

const PLANS: Record<Mode, Plan> = {
  full: {
    local: { keys: 200_000, trials: 5, memoryKeys: 1_000_000 },
    codec: { ms: 200, trials: 5 },
    ae: { ns: [1_000, 100_000, 1_000_000], ds: [0, 1, 100, 10_000] },
    ns: [16, 64, 256, 1_000],
    losses: [0, 0.1, 0.3],
    lossCapN: 256,
    writes: [1, 1_000],
    windowMs: 5_000,
    loadRate: 20,
    udp: { clusters: [{ n: 16, writes: [1, 1_000] }, { n: 64, writes: [1_000] }], repeats: 5 },
  },
  quick: {
    local: { keys: 100_000, trials: 3, memoryKeys: 1_000_000 },
    codec: { ms: 100, trials: 3 },
    ae: { ns: [1_000, 100_000], ds: [0, 1, 100, 10_000] },
    ns: [16, 64, 256],
    losses: [0, 0.1, 0.3],
    lossCapN: 64,
    writes: [1, 1_000],
    windowMs: 5_000,
    loadRate: 20,
    udp: { clusters: [{ n: 16, writes: [1, 1_000] }, { n: 64, writes: [1_000] }], repeats: 3 },
  },
  smoke: {
    local: { keys: 10_000, trials: 1, memoryKeys: 100_000 },
    codec: { ms: 20, trials: 1 },
    ae: { ns: [1_000], ds: [0, 1, 100] },
    ns: [16],
    losses: [0, 0.1],
    lossCapN: 16,
    writes: [1, 100],
    windowMs: 2_000,
    loadRate: 10,
    udp: { clusters: [{ n: 16, writes: [1, 100] }], repeats: 1 },
  },
};

const LATENCY_MS = 10;
const SEED = 1;

interface Args {
  mode: Mode;
  out: string | undefined;
  runtimes: RuntimeName[] | undefined;
  maxN: number | undefined;
  /** Internal: measure parts 1 and 2 only and write them to this JSON file. */
  partJson: string | undefined;
  /** Internal: measure part 6 only and write it to this JSON file. */
  udpJson: string | undefined;
  /** Part 6 through `node:dgram` whatever the runtime. */
  udpNode: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    mode: "full",
    out: undefined,
    runtimes: undefined,
    maxN: undefined,
    partJson: undefined,
    udpJson: undefined,
    udpNode: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const name = a.split("=")[0];
    if (name === "--smoke") args.mode = "smoke";
    else if (name === "--quick") args.mode = "quick";
    else if (name === "--out") args.out = value();
    else if (name === "--max-n") args.maxN = Number(value());
    else if (name === "--runtime-part") args.partJson = value();
    else if (name === "--udp-part") args.udpJson = value();
    else if (name === "--udp-node-dgram") args.udpNode = true;
    else if (name === "--runtimes") {
      args.runtimes = value().split(",").filter(Boolean).map((r) => {
        if (r !== "deno" && r !== "bun" && r !== "node") throw new Error(`unknown runtime ${r}`);
        return r;
      });
    } else if (name === "--help" || name === "-h") {
      console.log(
        "usage: deno task bench [--smoke | --quick] [--out DIR] [--runtimes deno,bun,node] [--max-n N]",
      );
      process.exit(0);
    } else throw new Error(`unknown option ${a} (try --help)`);
  }
  return args;
}

const started = now();

function log(line: string): void {
  console.log(`[${((now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
}

/** Parts 1 and 2 on this runtime. */
async function runtimeParts(plan: Plan): Promise<RuntimeResults> {
  const local = await localOps(plan.local);
  const c = codec(plan.codec);
  return { runtime, label: runtimeLabel(), local, codec: c };
}

/**
 * Runs this suite on runtime `name` in a child process, for one part (`--runtime-part` or
 * `--udp-part`), and reads back what it wrote; a string says why it could not.
 */
function child<T>(
  name: RuntimeName,
  mode: Mode,
  part: "--runtime-part" | "--udp-part",
  extra: readonly string[] = [],
): T | string {
  const command = commandFor(name);
  if (!command) {
    return `${name}: not installed (node_modules/.bin/${name === "node" ? "tsx" : name})`;
  }
  const dir = mkdtempSync(join(tmpdir(), "gossip-kv-bench-"));
  const file = join(dir, "part.json");
  try {
    const flags = mode === "full" ? [] : [`--${mode}`];
    const r = spawnSync(
      command[0]!,
      [
        ...command.slice(1),
        join(ROOT, "bench", "main.ts"),
        ...flags,
        ...extra,
        part,
        file,
      ],
      { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"], timeout: 300_000 },
    );
    if (r.status !== 0) return `${name}: exited with ${r.status ?? r.signal ?? r.error?.message}`;
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Part 6 here, or why it failed (UDP may be forbidden where the suite runs). */
async function udpHere(plan: Plan, nodeDgram: boolean): Promise<UdpResult[] | string> {
  try {
    const results: UdpResult[] = [];
    for (const c of plan.udp.clusters) {
      results.push(await udp({ ...c, repeats: plan.udp.repeats, nodeDgram }));
    }
    return results;
  } catch (error) {
    return `${runtimeLabel()}: ${(error as Error).message}`;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const plan = PLANS[args.mode];
  if (args.partJson) {
    writeFileSync(args.partJson, JSON.stringify(await runtimeParts(plan)));
    return;
  }
  if (args.udpJson) {
    const r = await udpHere(plan, args.udpNode);
    if (typeof r === "string") throw new Error(r);
    writeFileSync(args.udpJson, JSON.stringify(r));
    return;
  }
  const ns = args.maxN === undefined
    ? plan.ns
    : [...plan.ns.filter((n) => n < args.maxN!), args.maxN];
  log(`Gossip KV benchmarks, ${args.mode} run on ${runtimeLabel()}`);

  // 1 and 2: on every runtime asked for, this one first.
  const wanted = args.runtimes ??
    (args.mode === "full" ? (["deno", "bun", "node"] as RuntimeName[]) : [runtime]);
  const order = [runtime, ...wanted.filter((r) => r !== runtime)].filter((r) => wanted.includes(r));
  const runtimes: RuntimeResults[] = [];
  const skipped: string[] = [];
  for (const name of order) {
    log(`1–2. local operations and codec on ${name}`);
    if (name === runtime) runtimes.push(await runtimeParts(plan));
    else {
      const r = child<RuntimeResults>(name, args.mode, "--runtime-part");
      if (typeof r === "string") {
        skipped.push(r);
        log(`  skipped: ${r}`);
      } else runtimes.push(r);
    }
  }

  log(`3. anti-entropy, n = ${plan.ae.ns.join(", ")}`);
  const ae = antiEntropy(plan.ae);
  gc();

  const conv: ConvergenceResult[] = [];
  for (const n of ns) {
    log(`4. convergence, N = ${n}`);
    conv.push(
      await convergence({
        n,
        seed: SEED,
        latencyMs: LATENCY_MS,
        losses: plan.losses.filter((l) => l < 0.3 || n <= plan.lossCapN),
        writes: plan.writes,
        windowMs: plan.windowMs,
        loadRate: plan.loadRate,
        maxMs: 120_000,
        heapUsed: () => {
          gc();
          return heapUsed();
        },
        log,
      }),
    );
    gc();
  }

  const peer: PeerSpread[] = [];
  for (const n of ns) {
    for (const writes of plan.writes) {
      log(`5. scuttlebutt, N = ${n}, ${writes} write${writes > 1 ? "s" : ""}`);
      peer.push(
        scuttlebuttSpread({ n, writes, latencyMs: LATENCY_MS, seed: SEED, maxMs: 120_000 }),
      );
      gc();
    }
  }

  // 6: real UDP on loopback, each runtime in a child process of its own; Deno twice, with
  // its own Deno.listenDatagram (deno.json turns on "unstable": ["net"]) and with node:dgram.
  const udpRuns: UdpResult[] = [];
  const udpSkipped: string[] = [];
  const udpSizes = plan.udp.clusters.map((c) => c.n).join(" and ");
  const udpTargets: { name: RuntimeName; flags: string[] }[] = args.mode === "full"
    ? [
      { name: "deno", flags: [] },
      { name: "deno", flags: ["--udp-node-dgram"] },
      { name: "bun", flags: [] },
      { name: "node", flags: [] },
    ].filter((t) => wanted.includes(t.name as RuntimeName)) as {
      name: RuntimeName;
      flags: string[];
    }[]
    : [];
  if (udpTargets.length === 0) {
    log(`6. UDP on loopback, ${udpSizes} members, here`);
    const r = await udpHere(plan, false);
    if (typeof r === "string") udpSkipped.push(r);
    else udpRuns.push(...r);
  }
  for (const t of udpTargets) {
    log(`6. UDP on loopback, ${udpSizes} members, ${t.name} ${t.flags.join(" ")}`);
    const r = child<UdpResult[]>(t.name, args.mode, "--udp-part", t.flags);
    if (typeof r === "string") udpSkipped.push(r);
    else udpRuns.push(...r);
  }
  for (const s of udpSkipped) log(`  skipped: ${s}`);

  const results: Results = {
    mode: args.mode,
    date: new Date().toISOString().slice(0, 10),
    machine: machineLabel(),
    memoryBytes: totalmem(),
    host: runtimeLabel(),
    durationMs: now() - started,
    config: {
      latencyMs: LATENCY_MS,
      gossipIntervalMs: DEFAULTS.gossipIntervalMs,
      probeIntervalMs: DEFAULTS.probeIntervalMs,
      fanout: DEFAULTS.fanout,
      windowMs: plan.windowMs,
      loadRate: plan.loadRate,
      lossCapN: plan.lossCapN,
      retransmitMult: DEFAULTS.retransmitMult,
    },
    runtimes,
    antiEntropy: ae,
    convergence: conv,
    peer,
    skipped,
    udp: udpRuns,
    udpSkipped,
  };

  const out = args.out ??
    (args.mode === "full" ? join(ROOT, "docs") : mkdtempSync(join(tmpdir(), "gossip-kv-bench-")));
  const svgDir = join(out, "bench");
  mkdirSync(svgDir, { recursive: true });
  const svgs = charts(results);
  for (const [file, svg] of svgs) writeFileSync(join(svgDir, file), svg);
  const stripped = {
    ...results,
    convergence: results.convergence.map((x) => ({
      ...x,
      spreads: x.spreads.map(({ arrivals: _, ...s }) => s),
    })),
  };
  writeFileSync(join(svgDir, "results.json"), JSON.stringify(stripped, null, 2) + "\n");
  // The figures of release 0.1.0, for the "before and after" section (see BASELINE).
  const baselineFile = join(ROOT, BASELINE.file);
  const baseline = existsSync(baselineFile)
    ? { results: JSON.parse(readFileSync(baselineFile, "utf8")) as Results, label: BASELINE.label }
    : undefined;
  // The sections of bench/edge.ts and bench/cpu_per_write.ts: kept when rewriting the file.
  const md = join(out, "benchmarks.md");
  const before = existsSync(md) ? readFileSync(md, "utf8") : "";
  writeFileSync(md, keepSections(before, markdown(results, new Set(svgs.keys()), baseline)));
  // `deno fmt --check` (CI) formats SVG and JSON too: hand it the files as it wants them.
  const deno = denoBinary();
  const written = [...svgs.keys(), "results.json"].map((f) => join(svgDir, f));
  const fmt = deno
    ? spawnSync(deno, ["fmt", "--quiet", ...written], { cwd: ROOT, stdio: "inherit" })
    : undefined;
  if (fmt?.status !== 0) log("warning: could not run deno fmt on the charts");

  console.log("\nSummary");
  for (const h of headlines(results)) console.log(`  ${h.label}: ${h.value}`);
  console.log(`\nWrote ${join(out, "benchmarks.md")} and ${svgs.size} charts in ${svgDir}`);
  log("done");
}

await main();
