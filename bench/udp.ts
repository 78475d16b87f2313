// Part 6: real UDP on loopback. 16 members in one process, each on its own socket bound by
// `autoTransport` (the runtime's own API; or `node:dgram`, which Deno also provides), real
// timers, the library's defaults: one write and a burst of 1,000 writes, until every member
// has them.
import { DEFAULTS, GossipKV } from "../src/gossip_kv.ts";
import { seededRandom } from "../src/core/random.ts";
import { autoTransport, detectUdpRuntime } from "../src/transport/auto.ts";
import { entryBytes } from "./anti_entropy.ts";
import { now, runtimeLabel } from "./env.ts";

/** One burst over UDP, repeated: medians (and the slowest) of the repetitions. */
export interface UdpSpread {
  readonly writes: number;
  readonly repeats: number;
  /** Wall-clock ms until the last member had every write (median, and the slowest). */
  readonly ms: number;
  readonly maxMs: number;
  /** Repetitions that did not converge within 30 s. */
  readonly failed: number;
  readonly bytes: number;
  readonly datagrams: number;
  readonly minimum: number;
  /** Datagrams the sockets failed to send, and datagrams refused on receipt. */
  readonly sendErrors: number;
  readonly dropped: number;
}

/** Everything one runtime measured over UDP. */
export interface UdpResult {
  readonly label: string;
  /** The socket API `autoTransport` picked. */
  readonly api: "deno" | "bun" | "node";
  readonly n: number;
  /** Wall-clock ms until every member saw every other alive. */
  readonly joinedMs: number;
  readonly spreads: UdpSpread[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(done: () => boolean, maxMs: number): Promise<boolean> {
  const end = now() + maxMs;
  while (!done()) {
    if (now() > end) return false;
    await sleep(2);
  }
  return true;
}

function totals(members: readonly GossipKV[]) {
  let bytes = 0, datagrams = 0, sendErrors = 0, dropped = 0;
  for (const kv of members) {
    const s = kv.stats();
    bytes += s.bytesOut;
    datagrams += s.datagramsOut;
    sendErrors += s.sendErrors;
    for (const v of Object.values(s.dropped)) dropped += v ?? 0;
  }
  return { bytes, datagrams, sendErrors, dropped };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs the UDP measurement on this runtime. */
export async function udp(
  o: { n: number; writes: readonly number[]; repeats: number; nodeDgram?: boolean },
): Promise<UdpResult> {
  const bind = o.nodeDgram
    ? (await import("../src/transport/node_udp.ts")).nodeUdpTransport
    : autoTransport;
  const members: GossipKV[] = [];
  const alive: number[] = [];
  const got: number[] = [];
  const targets: number[] = [];
  let watched = new Set<string>();
  let complete = 0, lastAt = 0;
  const start = now();
  try {
    for (let i = 0; i < o.n; i++) {
      const kv = await GossipKV.start({
        id: `m${i}`,
        transport: await bind({ hostname: "127.0.0.1", port: 0 }),
        seeds: i === 0 ? [] : [members[0]!.address],
        random: seededRandom(`udp/m${i}`),
        onError: () => {},
      });
      members.push(kv);
      alive.push(0);
      got.push(0);
      targets.push(0);
      kv.subscribeMembers((ch) => {
        alive[i] = alive[i]! + (ch.status === "alive" ? 1 : 0) - (ch.previous === "alive" ? 1 : 0);
      });
      kv.subscribe((ch) => {
        if (ch.origin !== "remote" || !watched.has(ch.key)) return;
        if (++got[i]! === targets[i]) {
          complete++;
          lastAt = now();
        }
      });
    }
    if (!await until(() => alive.every((a) => a === o.n - 1), 30_000)) {
      throw new Error(`${o.n} members over UDP did not all see each other alive`);
    }
    const joinedMs = now() - start;
    const roots = () => new Set(members.map((kv) => kv.syncStatus().root)).size === 1;
    await until(roots, 30_000);
    const spreads: UdpSpread[] = [];
    let phase = 0;
    for (const writes of o.writes) {
      const runs: Omit<UdpSpread, "repeats" | "maxMs" | "failed">[] = [];
      for (let r = 0; r < o.repeats; r++) {
        const writer = members[(3 + r) % o.n]!;
        watched = new Set(Array.from({ length: writes }, (_, i) => `u${phase}-${i}`));
        for (let i = 0; i < o.n; i++) {
          got[i] = 0;
          targets[i] = members[i] === writer ? 0 : writes;
        }
        complete = 1;
        const before = totals(members);
        const t0 = now();
        for (const key of watched) void writer.set(key, `value-${key}`);
        const ok = await until(() => complete === o.n, 30_000);
        const after = totals(members);
        let minimum = 0;
        for (const key of watched) {
          const v = writer.version(key)!;
          minimum += (o.n - 1) * entryBytes({
            section: "usr",
            key,
            value: writer.get(key),
            wall: v.wall,
            logical: v.logical,
            writer: v.writer,
            deleted: false,
          });
        }
        runs.push({
          writes,
          ms: ok ? lastAt - t0 : -1,
          bytes: after.bytes - before.bytes,
          datagrams: after.datagrams - before.datagrams,
          minimum,
          sendErrors: after.sendErrors - before.sendErrors,
          dropped: after.dropped - before.dropped,
        });
        phase++;
        // Let the anti-entropy rounds already under way finish before the next burst.
        await until(roots, 30_000);
        await sleep(DEFAULTS.gossipIntervalMs);
      }
      const done = runs.filter((x) => x.ms >= 0);
      spreads.push({
        writes,
        repeats: o.repeats,
        ms: median(done.map((x) => x.ms)),
        maxMs: Math.max(...done.map((x) => x.ms)),
        failed: runs.length - done.length,
        bytes: median(runs.map((x) => x.bytes)),
        datagrams: median(runs.map((x) => x.datagrams)),
        minimum: median(runs.map((x) => x.minimum)),
        sendErrors: runs.reduce((a, x) => a + x.sendErrors, 0),
        dropped: runs.reduce((a, x) => a + x.dropped, 0),
      });
    }
    const api = o.nodeDgram ? "node" : detectUdpRuntime();
    return { label: runtimeLabel(), api, n: o.n, joinedMs, spreads };
  } finally {
    await Promise.allSettled(members.map((kv) => kv.close({ leave: false })));
  }
}
