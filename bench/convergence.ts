// Part 4: convergence of N members over a MemoryNetwork on virtual time, with the library's
// defaults (gossip and probe every 1 s, fanout 3): rounds and bytes for one write and for
// 1,000 writes to reach every member, beside the epidemic bound and the byte minimum, with
// 0%, 10% and 30% loss; and the bytes each member spends per second idle and under load.
import type { GossipKV } from "../src/gossip_kv.ts";
import { DEFAULT_CONFIG } from "../src/core/engine.ts";
import { seededRandom } from "../src/core/random.ts";
import { entryBytes } from "./anti_entropy.ts";
import { type Formation, SimCluster } from "./cluster.ts";
import { now } from "./env.ts";

/** SWIM's messages; with `sync-root`, all an idle member sends. Every other type carries data. */
const SWIM_TYPES = new Set(["ping", "ack", "ping-req", "member"]);

/** One dissemination measurement. */
export interface Spread {
  readonly n: number;
  readonly loss: number;
  readonly writes: number;
  /** Virtual ms until the last member had every write; -1 if not within the limit. */
  readonly ms: number;
  /** Virtual ms until half, and 99%, of the members had every write. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Bytes sent by every member during `ms` (all traffic), and datagrams. */
  readonly bytes: number;
  readonly datagrams: number;
  /** Of those, bytes of messages that carry or locate data (all but SWIM and sync roots). */
  readonly dataBytes: number;
  /** Of those, bytes of SWIM messages (ping, ack, ping-req, member updates). */
  readonly swimBytes: number;
  /**
   * Balance: the data bytes sent by the busiest member during `ms`, divided by the mean
   * over all members (1 = perfectly even; a star around one member is about N).
   */
  readonly relayMaxOverMean: number;
  /** Suspicions raised during `ms` (false ones: no member failed). */
  readonly suspicions: number;
  /** (N − 1) × the encoded size of the entries (the writer's own members excluded). */
  readonly minimum: number;
  /** Deliveries needed: (N − 1) × writes. */
  readonly deliveries: number;
  /** Of those, entries that were new to their receiver when a rumor brought them. */
  readonly viaRumor: number;
  /** Entries received in anti-entropy `entries` messages (new or not). */
  readonly viaSync: number;
  /** SWIM probes sent, and those that got no ack, during `ms`. */
  readonly probes: number;
  readonly probesFailed: number;
  /** Per member, in order: virtual ms after the write at which it had every write. */
  readonly arrivals: readonly number[];
  /** Wall-clock ms the simulation took (for the CPU ratio against scuttlebutt only). */
  readonly wallMs: number;
}

/** Traffic of the whole cluster over a window, per member per second. */
export interface Traffic {
  readonly n: number;
  readonly bytesPerMemberPerSecond: number;
  readonly datagramsPerMemberPerSecond: number;
  readonly dataBytesPerMemberPerSecond: number;
  readonly swimBytesPerMemberPerSecond: number;
  /** Writes per second, cluster-wide (0 when idle). */
  readonly writesPerSecond: number;
}

/** Everything measured at one N. */
export interface ConvergenceResult {
  readonly n: number;
  readonly formation: Formation;
  readonly formationWallMs: number;
  /** Wall-clock ms of everything measured at this N (for the scale projection only). */
  readonly totalWallMs: number;
  readonly spreads: Spread[];
  readonly idle: Traffic;
  readonly load: Traffic;
  /** Heap bytes per (member, known member) pair of the formed cluster. */
  readonly heapPerPair: number;
}

/** Options of {@linkcode convergence}. */
export interface ConvergenceOptions {
  readonly n: number;
  readonly seed: number;
  readonly latencyMs: number;
  readonly losses: readonly number[];
  readonly writes: readonly number[];
  /** Length of the idle and load windows, virtual ms. */
  readonly windowMs: number;
  /** Cluster-wide writes per second during the load window. */
  readonly loadRate: number;
  /** Virtual ms allowed for one spread. */
  readonly maxMs: number;
  readonly heapUsed?: () => number;
  /** Progress lines, if wanted. */
  readonly log?: (line: string) => void;
}

function sumStats(members: readonly GossipKV[]) {
  let rumor = 0, sync = 0, data = 0, swim = 0, suspicions = 0, probes = 0, probesFailed = 0;
  for (const kv of members) {
    const st = kv.stats();
    rumor += st.engine.rumorEntriesNew;
    sync += st.engine.syncEntriesReceived;
    suspicions += st.engine.suspicions;
    probes += st.engine.probes;
    probesFailed += st.engine.probesFailed;
    for (const [t, b] of Object.entries(st.bytesOutByType)) {
      if (SWIM_TYPES.has(t)) swim += b;
      else if (t !== "sync-root") data += b;
    }
  }
  return { rumor, sync, data, swim, suspicions, probes, probesFailed };
}

/** Bytes one member sent of messages that carry or locate data. */
function dataSent(kv: GossipKV): number {
  let data = 0;
  for (const [t, b] of Object.entries(kv.stats().bytesOutByType)) {
    if (!SWIM_TYPES.has(t) && t !== "sync-root") data += b;
  }
  return data;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

/** Waits until the cluster is whole again: all alive, equal roots; then lets it settle. */
export function settle(c: SimCluster): void {
  c.net.loss = 0;
  if (!c.fullyJoined) {
    if (c.runUntil(() => c.fullyJoined, 120_000) < 0) {
      throw new Error(`${c.members.length} members did not all come back alive`);
    }
  }
  if (c.runUntilInSync(DEFAULT_CONFIG.gossipIntervalMs, 120_000) < 0) {
    throw new Error(`${c.members.length} members did not reach equal roots`);
  }
  // Let piggybacked membership news run out, so it is not counted in the next window.
  c.time.advance(5_000);
}

let phase = 0;

/**
 * A burst of `writes` writes by one random member, measured until every member has them;
 * then the cluster settles. Each call draws another writer (and other keys).
 */
export function spread(c: SimCluster, writes: number, loss: number, o: ConvergenceOptions): Spread {
  const n = c.members.length;
  const random = seededRandom(`${o.seed}/spread/${phase}`);
  const tag = `p${phase++}`;
  c.net.loss = loss;
  const before = sumStats(c.members);
  const sent0 = c.members.map(dataSent);
  const net0 = c.net.stats().total;
  const keys = new Set<string>();
  const targets = c.members.map(() => writes);
  // One member writes them all in one turn (a bulk update): they travel together.
  const w = Math.floor(random() * n);
  const written: { kv: GossipKV; key: string }[] = [];
  for (let i = 0; i < writes; i++) {
    const key = `${tag}-${i}`;
    keys.add(key);
    targets[w]!--;
    written.push({ kv: c.members[w]!, key });
  }
  c.watch(keys, targets);
  const start = c.now;
  const wall = now();
  for (const { kv, key } of written) void kv.set(key, `value-${key}`);
  const ms = c.runUntil(() => c.complete === n, o.maxMs);
  const wallMs = now() - wall;
  o.log?.(
    `  N=${n} loss=${loss} writes=${writes}: ${ms} virtual ms, ${(wallMs / 1000).toFixed(1)} s`,
  );
  const net1 = c.net.stats().total;
  const after = sumStats(c.members);
  const sent = c.members.map((kv, i) => dataSent(kv) - sent0[i]!);
  const meanSent = sent.reduce((a, b) => a + b, 0) / n;
  let minimum = 0;
  for (const { kv, key } of written) {
    const v = kv.version(key)!;
    minimum += (n - 1) * entryBytes({
      section: "usr",
      key,
      value: kv.get(key),
      wall: v.wall,
      logical: v.logical,
      writer: v.writer,
      deleted: false,
    });
  }
  const arrivals = c.doneAt.map((t) => (Number.isNaN(t) ? Infinity : t - start));
  const sorted = arrivals.filter((_, i) => targets[i]! > 0).sort((a, b) => a - b);
  const result: Spread = {
    n,
    loss,
    writes,
    ms,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    bytes: net1.sentBytes - net0.sentBytes,
    datagrams: net1.sentDatagrams - net0.sentDatagrams,
    dataBytes: after.data - before.data,
    swimBytes: after.swim - before.swim,
    relayMaxOverMean: meanSent > 0 ? Math.max(...sent) / meanSent : 0,
    suspicions: after.suspicions - before.suspicions,
    minimum,
    deliveries: (n - 1) * writes,
    viaRumor: after.rumor - before.rumor,
    viaSync: after.sync - before.sync,
    probes: after.probes - before.probes,
    probesFailed: after.probesFailed - before.probesFailed,
    arrivals: sorted,
    wallMs,
  };
  const t = now();
  settle(c);
  o.log?.(`  settled in ${((now() - t) / 1000).toFixed(1)} s`);
  return result;
}

function traffic(c: SimCluster, windowMs: number, rate: number, seed: number): Traffic {
  const n = c.members.length;
  const before = sumStats(c.members);
  const net0 = c.net.stats().total;
  const end = c.now + windowMs;
  if (rate > 0) {
    const random = seededRandom(`${seed}/load`);
    const every = 1000 / rate;
    let i = 0;
    const tick = () => {
      if (c.now >= end) return;
      void c.members[Math.floor(random() * n)]!.set(`load-${i}`, `value-load-${i}`);
      i++;
      c.time.setTimeout(tick, every);
    };
    tick();
  }
  c.time.advance(windowMs);
  const net1 = c.net.stats().total;
  const after = sumStats(c.members);
  const perMemberSecond = (x: number) => x / n / (windowMs / 1000);
  return {
    n,
    bytesPerMemberPerSecond: perMemberSecond(net1.sentBytes - net0.sentBytes),
    datagramsPerMemberPerSecond: perMemberSecond(net1.sentDatagrams - net0.sentDatagrams),
    dataBytesPerMemberPerSecond: perMemberSecond(after.data - before.data),
    swimBytesPerMemberPerSecond: perMemberSecond(after.swim - before.swim),
    writesPerSecond: rate,
  };
}

/** Forms a cluster of `o.n` members and runs every measurement on it, one after the other. */
export async function convergence(o: ConvergenceOptions): Promise<ConvergenceResult> {
  const heap0 = o.heapUsed?.() ?? 0;
  const wall = now();
  const { cluster: c, formation } = await SimCluster.form({
    n: o.n,
    seed: o.seed,
    latencyMs: o.latencyMs,
    batch: o.n,
    batchEveryMs: 0,
    maxMs: 300_000,
  });
  const formationWallMs = now() - wall;
  const heapPerPair = o.heapUsed ? (o.heapUsed() - heap0) / (o.n * o.n) : 0;
  settle(c);
  // One write before the measurements: the first broadcast over the newly formed overlay
  // goes over every link and prunes the duplicates, which shapes the tree the others use.
  const { log: _log, ...quiet } = o;
  spread(c, 1, 0, quiet);
  const idle = traffic(c, o.windowMs, 0, o.seed);
  const spreads: Spread[] = [];
  for (const loss of o.losses) {
    for (const writes of o.writes) spreads.push(spread(c, writes, loss, o));
  }
  const load = traffic(c, o.windowMs, o.loadRate, o.seed);
  await c.close();
  const totalWallMs = now() - wall;
  return { n: o.n, formation, formationWallMs, totalWallMs, spreads, idle, load, heapPerPair };
}
