// CPU time per replicated write per member, this release against release 0.1.0 (tag
// v0.1.0, extracted with `git archive` under .scratch/), in one process and one run:
//
//   deno run -A bench/cpu_per_write.ts [--n 16] [--writes 2000] [--encrypted-writes W]
//     [--rate 200] [--trials 3] [--mode plain|encrypted|both] [--release both|0.1.0|this]
//     [--base v0.1.0] [--write]
//
// `--encrypted-writes` sets the writes of the encrypted mode (`--writes` by default);
// `--write` puts the figures into docs/benchmarks.md, section 8, between its markers
// (bench/main.ts keeps it when it rewrites the file; see bench/sections.ts), with the
// command that measured them. The section's figures come from:
//
//   deno task bench:cpu
//
// N members on a MemoryNetwork on virtual time (10 ms latency, the real codec on every
// datagram), `writes` writes at `rate` per second cluster-wide, each by a random member;
// CPU is the process's user + system time (`process.cpuUsage`, every thread: WebCrypto's
// included) from the first write until every member holds every write, divided by
// writes × N, after a full collection where the runtime allows one (see `collect`). In the
// encrypted mode every member holds the same cluster key (both releases take `keys`);
// WebCrypto is asynchronous (0.1.0 seals with it; this release with node:crypto,
// synchronous, where the runtime has it), so virtual time then moves 1 ms at a time, and
// only once every WebCrypto call made meanwhile has finished and its datagram gone on. The two releases alternate which runs first (this release in odd trials, 0.1.0 in
// even ones), since the first run of a trial and the machine's load drift between trials
// shift a run's CPU by a fifth; the table shows each release's median of the trials, the
// ratio of those medians, and the median of the per-trial ratios (each trial's two runs
// back to back, so the two share the machine's load). `--release` runs one of them alone
// (for a profiler). `--base REV` measures against another commit instead of the tag (an A/B
// of a change: `--base main`), extracted the same way. Where the runtime counts the bytes its
// heap allocated (Deno: `v8.getHeapStatistics().total_allocated_bytes`), each release's line
// also shows them per write per member, over the same span as the CPU: a counted quantity,
// steady from run to run where the CPU time moves by a tenth (the collector's work follows it).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { setImmediate } from "node:timers";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import { seededRandom } from "../src/core/random.ts";
import { generateKey } from "../src/wire/crypto.ts";
import { GossipKV } from "../src/gossip_kv.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { RELEASE_TAG, resolveCommit } from "../tests/_release.ts";
import { machineLabel, runtimeLabel } from "./env.ts";
import { CPU, writeSection } from "./sections.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function choice<T extends string>(name: string, options: readonly T[]): T {
  const i = process.argv.indexOf(`--${name}`);
  const v = (i >= 0 ? process.argv[i + 1] : options[0]) as T;
  if (!options.includes(v)) throw new TypeError(`--${name} must be one of ${options.join(", ")}`);
  return v;
}

const N = arg("n", 16), WRITES = arg("writes", 2000), RATE = arg("rate", 200);
const ENCRYPTED_WRITES = arg("encrypted-writes", WRITES);
const TRIALS = arg("trials", 3);
const MODE = choice("mode", ["both", "plain", "encrypted"] as const);
const RELEASE = choice("release", ["both", "0.1.0", "this"] as const);
const TAG = (() => {
  const i = process.argv.indexOf("--base");
  return i >= 0 ? process.argv[i + 1] ?? "" : RELEASE_TAG;
})();
const WRITE = process.argv.includes("--write");
if (WRITE && (RELEASE !== "both" || TAG !== RELEASE_TAG)) {
  throw new TypeError("--write measures against release 0.1.0: no --release, no --base");
}
// The tag's copy keeps its name (tests/rolling_upgrade_test.ts extracts the same); another
// revision is extracted by its commit, so a moving name (main) never finds a stale copy.
const OLD = fileURLToPath(new URL(`../.scratch/${baseDir(TAG)}/`, import.meta.url));

function baseDir(rev: string): string {
  if (rev === RELEASE_TAG) return rev;
  return `rev-${commitOf(rev)}`;
}

/** The commit `rev` names; the tag of 0.1.0 names its commit in a clone without tags too. */
function commitOf(rev: string): string {
  const commit = resolveCommit(ROOT, rev);
  if (commit === undefined) throw new TypeError(`--base must name a git revision, not ${rev}`);
  return commit;
}

if (!existsSync(`${OLD}src/gossip_kv.ts`)) {
  mkdirSync(OLD, { recursive: true });
  const archive = spawnSync("git", ["archive", commitOf(TAG), "src"], {
    cwd: ROOT,
    maxBuffer: 1 << 28,
  });
  if (archive.status !== 0) throw new Error(`git archive ${TAG} failed: ${archive.stderr}`);
  spawnSync("tar", ["-x", "-C", OLD], { input: archive.stdout });
}
const old = (await import(new URL(`file://${OLD}src/gossip_kv.ts`).href)) as {
  GossipKV: typeof GossipKV;
};

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A full collection, where the runtime lets one be asked for (Deno and Node do): made before
 * each measured run, so that a run pays for collecting its own garbage, not for what the run
 * before it (maybe of the other release) left.
 */
const collect = (() => {
  try {
    v8.setFlagsFromString("--expose_gc");
    const gc = vm.runInNewContext("gc");
    return typeof gc === "function" ? gc as () => void : undefined;
  } catch {
    return undefined;
  }
})();

// WebCrypto calls in flight: virtual time waits for them, as if sealing took no time
// against the network's 10 ms (it takes microseconds on an idle machine). Without that,
// virtual time would run ahead of datagrams still being sealed, and the protocols' timeouts
// would fire for copies that are merely late.
let inFlight = 0;
const subtle = crypto.subtle as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
for (const name of ["encrypt", "decrypt"]) {
  const call = subtle[name]!.bind(crypto.subtle);
  subtle[name] = (...args: unknown[]) => {
    inFlight++;
    return call(...args).finally(() => void inFlight--);
  };
}

/** CPU µs, datagrams sent and heap bytes allocated (if counted), per write per member. */
interface Cost {
  readonly us: number;
  readonly datagrams: number;
  readonly allocated: number | undefined;
}

/** Bytes the heap allocated so far, where the runtime counts them (Deno), else undefined. */
function allocatedBytes(): number | undefined {
  const stats = v8.getHeapStatistics() as { total_allocated_bytes?: number };
  return typeof stats.total_allocated_bytes === "number" ? stats.total_allocated_bytes : undefined;
}

async function run(Kv: typeof GossipKV, seed: number, encrypted: boolean): Promise<Cost> {
  const writes = encrypted ? ENCRYPTED_WRITES : WRITES;
  const net = new MemoryNetwork({ seed, latencyMs: 10, virtualTime: true });
  const time = net.time!;
  const keys = encrypted ? [generateKey()] : undefined;
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
        ...(keys && { keys }),
      }),
    );
  }
  // Plaintext runs synchronously on virtual time; sealed datagrams need the event loop.
  const advance = encrypted
    ? async (ms: number) => {
      for (let t = 0; t < ms; t++) {
        time.advance(1);
        do await turn(); while (inFlight > 0);
      }
    }
    : (ms: number) => void time.advance(ms);
  await advance(10_000); // formed and in sync
  const random = seededRandom(`${seed}/writes`);
  let got = 0;
  for (const kv of members) kv.subscribe((c) => void (c.origin === "remote" && got++));
  const target = writes * (N - 1);
  const sent0 = net.stats().total.sentDatagrams;
  collect?.();
  const allocated0 = allocatedBytes();
  const cpu0 = process.cpuUsage();
  let carry = 0;
  for (let i = 0; i < writes; i++) {
    void members[Math.floor(random() * N)]!.set(`k${i}`, `value-${i}`);
    // Whole ms steps when encrypted; the fractions add up.
    carry += 1000 / RATE;
    const step = encrypted ? Math.floor(carry) : carry;
    carry -= step;
    await advance(step);
  }
  if (encrypted) {
    for (let t = 0; t < 60_000 && got < target; t++) await advance(1);
  } else time.runUntil(() => got >= target, 60_000);
  const cpu = process.cpuUsage(cpu0);
  const allocated1 = allocatedBytes();
  const sent = net.stats().total.sentDatagrams - sent0;
  if (got < target) throw new Error(`only ${got} of ${target} deliveries`);
  for (const kv of members) await kv.close({ leave: false });
  return {
    us: (cpu.user + cpu.system) / (writes * N),
    datagrams: sent / (writes * N),
    allocated: allocated0 === undefined || allocated1 === undefined
      ? undefined
      : (allocated1 - allocated0) / (writes * N),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** One mode's figures: each release's runs, and the per-trial ratios (this ÷ the other). */
interface Row {
  readonly encrypted: boolean;
  readonly writes: number;
  readonly ours: readonly Cost[];
  readonly theirs: readonly Cost[];
  readonly ratios: readonly number[];
}

const us = (xs: readonly Cost[]) => median(xs.map((x) => x.us));
const bytes = (xs: readonly Cost[]) =>
  xs.length && xs.every((x) => x.allocated !== undefined)
    ? median(xs.map((x) => x.allocated!))
    : undefined;
const datagrams = (xs: readonly Cost[]) => median(xs.map((x) => x.datagrams));
const base = TAG === RELEASE_TAG ? "0.1.0" : TAG;

const rows: Row[] = [];
const modes = MODE === "both" ? [false, true] : [MODE === "encrypted"];
for (const encrypted of modes) {
  const ours: Cost[] = [], theirs: Cost[] = [];
  const ratios: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const runOld = async () =>
      RELEASE !== "this" && theirs.push(await run(old.GossipKV, t + 1, encrypted));
    const runOurs = async () =>
      RELEASE !== "0.1.0" && ours.push(await run(GossipKV, t + 1, encrypted));
    if (t % 2 === 0) {
      await runOurs();
      await runOld();
    } else {
      await runOld();
      await runOurs();
    }
    if (ours.length && theirs.length) ratios.push(ours.at(-1)!.us / theirs.at(-1)!.us);
  }
  const row = { encrypted, writes: encrypted ? ENCRYPTED_WRITES : WRITES, ours, theirs, ratios };
  rows.push(row);
  const fmt = (xs: Cost[]) => {
    if (!xs.length) return "not run";
    const b = bytes(xs);
    return `${us(xs).toFixed(1)} µs (${datagrams(xs).toFixed(2)} datagrams sent` +
      `${b === undefined ? "" : `, ${b.toFixed(0)} bytes allocated`})`;
  };
  const ratio = ratios.length
    ? ` (×${(us(ours) / us(theirs)).toFixed(2)}; per trial ×${median(ratios).toFixed(2)}, ` +
      `×${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`
    : "";
  console.log(
    `N=${N}, ${row.writes} writes at ${RATE}/s, ${encrypted ? "encrypted" : "plaintext"}: ` +
      `CPU per write per member, median of ${TRIALS}: ` +
      `${base} ${fmt(theirs)}, this release ${fmt(ours)}${ratio}`,
  );
}

/** Section 8 of docs/benchmarks.md, between its markers. */
function section(): string {
  const command = ["deno run -A bench/cpu_per_write.ts", ...process.argv.slice(2)].join(" ");
  const kb = (b: number | undefined) => b === undefined ? "—" : `${(b / 1000).toFixed(1)} kB`;
  return [
    CPU.begin,
    "## 8. CPU per replicated write",
    "",
    `Generated by \`${command}\` on ${new Date().toISOString().slice(0, 10)}, running on ` +
    `${runtimeLabel()}, ${machineLabel()}. ${N} members on a \`MemoryNetwork\` on virtual time (10 ms latency, ` +
    `the real codec on every datagram), writes at ${RATE} a second cluster-wide, each by a ` +
    "random member. CPU is the process's user and system time from the first write until " +
    "every member holds every write, divided by the writes and the members; release " +
    `${base} and this release alternate which runs first, ${TRIALS} trials. Target: at ` +
    `most a third of release 0.1.0's, plaintext and encrypted.`,
    "",
    `| mode | writes | ${base}, µs | this release, µs | this ÷ ${base} (medians) | ` +
    "per trial: median, range | datagrams sent, " + `${base} → this | bytes allocated, ` +
    `${base} → this |`,
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map((r) => {
      const ratio = r.ratios.length ? `×${(us(r.ours) / us(r.theirs)).toFixed(2)}` : "—";
      const per = r.ratios.length
        ? `×${median([...r.ratios]).toFixed(2)}, ×${Math.min(...r.ratios).toFixed(2)}–×${
          Math.max(...r.ratios).toFixed(2)
        }`
        : "—";
      const cell = (xs: readonly Cost[], f: (xs: readonly Cost[]) => string) =>
        xs.length ? f(xs) : "—";
      return `| ${r.encrypted ? "encrypted" : "plaintext"} | ${r.writes.toLocaleString("en")} | ` +
        `${cell(r.theirs, (xs) => us(xs).toFixed(1))} | ${
          cell(r.ours, (xs) => us(xs).toFixed(1))
        } | ` +
        `${ratio} | ${per} | ${cell(r.theirs, (xs) => datagrams(xs).toFixed(2))} → ` +
        `${cell(r.ours, (xs) => datagrams(xs).toFixed(2))} | ` +
        `${kb(bytes(r.theirs))} → ${kb(bytes(r.ours))} |`;
    }),
    "",
    "Datagrams sent and bytes allocated are per write per member; bytes allocated are the " +
    "heap's allocations over the same span, where the runtime counts them " +
    "(Deno). The encrypted mode seals and opens every datagram with the cluster key.",
    CPU.end,
  ].join("\n");
}

if (WRITE) {
  console.log(`\nWrote section 8 of ${writeSection(CPU, section())}`);
}
