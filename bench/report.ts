// Turns the measurements into docs/benchmarks.md, its SVG plots and the console summary.
import type { ReconcileRow } from "./anti_entropy.ts";
import type { CodecCase } from "./codec.ts";
import type { ConvergenceResult, Spread } from "./convergence.ts";
import type { LocalOpsResult } from "./local_ops.ts";
import type { PeerSpread } from "./scuttlebutt.ts";
import type { UdpResult, UdpSpread } from "./udp.ts";
import { barChart, lineChart, type Series } from "./svg.ts";

/** What one runtime measured of the runtime-dependent parts (1 and 2). */
export interface RuntimeResults {
  readonly runtime: string;
  readonly label: string;
  readonly local: LocalOpsResult;
  readonly codec: CodecCase[];
}

/** Everything one run measured. */
export interface Results {
  readonly mode: string;
  readonly date: string;
  readonly machine: string;
  /** Physical memory of the machine, bytes. */
  readonly memoryBytes: number;
  readonly host: string;
  readonly durationMs: number;
  readonly config: {
    readonly latencyMs: number;
    readonly gossipIntervalMs: number;
    readonly probeIntervalMs: number;
    readonly fanout: number;
    readonly windowMs: number;
    readonly loadRate: number;
    readonly lossCapN: number;
    readonly retransmitMult: number;
  };
  readonly runtimes: RuntimeResults[];
  readonly antiEntropy: ReconcileRow[];
  readonly convergence: ConvergenceResult[];
  readonly peer: PeerSpread[];
  /** Runtimes that could not run parts 1 and 2, with the reason. */
  readonly skipped: string[];
  readonly udp: UdpResult[];
  /** UDP runs that could not run, with the reason. */
  readonly udpSkipped: string[];
}

// ---------------------------------------------------------------------------- formatting

function int(x: number): string {
  return Math.round(x).toLocaleString("en-US");
}

/** Bytes with a decimal unit and 3 significant digits. */
export function bytes(x: number): string {
  if (x < 1000) return `${Math.round(x)} B`;
  for (const [unit, f] of [["GB", 1e9], ["MB", 1e6], ["kB", 1e3]] as const) {
    if (x >= f) return `${Number((x / f).toPrecision(3))} ${unit}`;
  }
  return `${x} B`;
}

/** A ratio: ×3.2, ×0.07. */
export function times(x: number): string {
  if (!Number.isFinite(x)) return "—";
  return `×${
    x >= 100 ? Math.round(x) : x >= 10 ? x.toFixed(1) : x >= 0.1 ? x.toFixed(2) : x.toPrecision(2)
  }`;
}

function rate(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toPrecision(3)} M/s`;
  if (x >= 1e3) return `${(x / 1e3).toPrecision(3)} k/s`;
  return `${x.toPrecision(3)} /s`;
}

function fixed(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "—";
}

/** "a–b", or "a" when both ends read the same. */
function span(values: readonly number[], f: (x: number) => string): string {
  const lo = f(Math.min(...values)), hi = f(Math.max(...values));
  return lo === hi ? lo : `${lo}–${hi}`;
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const align = head.map((_, i) => (i === 0 ? "---" : "---:"));
  return [head, align, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

function bound(n: number, fanout: number): number {
  return Math.log(n) / Math.log(fanout + 1);
}

// ---------------------------------------------------------------------------- headlines

/** A headline figure: a short label and its value. */
export interface Headline {
  readonly label: string;
  readonly value: string;
}

function spreadAt(r: Results, n: number, loss: number, writes: number): Spread | undefined {
  return r.convergence.find((c) => c.n === n)?.spreads.find((s) =>
    s.loss === loss && s.writes === writes
  );
}

function closestN(r: Results, n: number): number | undefined {
  const ns = r.convergence.map((c) => c.n);
  if (ns.length === 0) return undefined;
  return ns.reduce((a, b) => (Math.abs(b - n) < Math.abs(a - n) ? b : a));
}

/** The largest ratio of bytes to the minimum, across anti-entropy and convergence. */
export function largestGap(r: Results): { what: string; ratio: number; why: string } | undefined {
  let best: { what: string; ratio: number; why: string } | undefined;
  const consider = (what: string, ratio: number, why: string) => {
    if (Number.isFinite(ratio) && (!best || ratio > best.ratio)) best = { what, ratio, why };
  };
  for (const row of r.antiEntropy) {
    if (row.d === 0) continue;
    consider(
      `anti-entropy, ${int(row.d)} of ${int(row.n)} keys differ`,
      row.bytes / row.minimum,
      "locating one difference among n keys costs one 16-child hash vector (128 bytes) per tree level, about log16 n levels, beside an entry of a few dozen bytes",
    );
  }
  for (const c of r.convergence) {
    for (const s of c.spreads) {
      if (s.loss !== 0 || s.ms < 0) continue;
      consider(
        `convergence, ${int(s.writes)} write${s.writes > 1 ? "s" : ""} → ${
          int(s.n)
        } members (no loss)`,
        s.bytes / s.minimum,
        s.writes === 1
          ? "the tree brings each member one copy, but a single small entry carries a whole datagram header (magic, cluster name, sender id) and the tree message's origin and sequence number, and announcements to the other neighbours follow"
          : "the tree brings each member about one copy; what is left is the per-datagram header and the lazy announcements",
      );
    }
  }
  return best;
}

/** The figures quoted in the summary, the README and the closing note. */
export function headlines(r: Results): Headline[] {
  const out: Headline[] = [];
  const main = r.runtimes[0];
  if (main) {
    const op = (name: string) => main.local.ops.find((o) => o.op.startsWith(name));
    const set = op("set (new key, string"), get = op("get"), del = op("delete");
    out.push({
      label: `local ops vs Map (${main.label.split(" (")[0]})`,
      value: `set ${times(set?.ratio ?? NaN)}, get ${times(get?.ratio ?? NaN)}, delete ${
        times(del?.ratio ?? NaN)
      } of Map's rate; ${
        times(main.local.oursBytesPerKey / main.local.mapBytesPerKey)
      } Map's memory per key at ${int(main.local.memoryKeys)} keys (${
        int(main.local.oursBytesPerKey)
      } vs ${int(main.local.mapBytesPerKey)} B)`,
    });
    const enc = main.codec.map((c) => c.encodeRatio), dec = main.codec.map((c) => c.decodeRatio);
    const size = main.codec.map((c) => c.cborBytes / c.jsonBytes);
    out.push({
      label: "codec vs JSON",
      value: `encode ${times(Math.min(...enc))}–${
        times(Math.max(...enc))
      } of JSON.stringify, decode (validated) ${times(Math.min(...dec))}–${
        times(Math.max(...dec))
      } of JSON.parse; datagrams ${times(Math.min(...size))}–${
        times(Math.max(...size))
      } the JSON size`,
    });
  }
  const inSync = r.antiEntropy.filter((x) => x.d === 0);
  if (inSync.length) {
    out.push({
      label: "anti-entropy in sync",
      value: `${Math.max(...inSync.map((x) => x.datagrams))} datagram of ${
        Math.max(...inSync.map((x) => x.bytes))
      } B, whatever n`,
    });
  }
  const ae = r.antiEntropy.find((x) => x.d === 100 && x.n === 100_000) ??
    r.antiEntropy.filter((x) => x.d === 100).at(-1);
  if (ae) {
    out.push({
      label: `anti-entropy, 100 of ${int(ae.n)} differ`,
      value: `${ae.roundTrips} round trips, ${bytes(ae.bytes)} = ${
        times(ae.bytes / ae.minimum)
      } the entries`,
    });
  }
  const n64 = closestN(r, 64);
  if (n64 !== undefined) {
    const one = spreadAt(r, n64, 0, 1);
    if (one && one.ms >= 0) {
      const b = bound(n64, r.config.fanout);
      out.push({
        label: `1 write → ${n64}`,
        value: `${fixed(one.p50Ms / r.config.latencyMs)} hops to half, ${
          fixed(one.ms / r.config.latencyMs)
        } to all (${times(one.ms / r.config.latencyMs / b)} the epidemic bound ${fixed(b, 2)}; ${
          fixed(one.ms / r.config.gossipIntervalMs, 2)
        } gossip rounds); ${times(one.bytes / one.minimum)} the byte minimum`,
      });
    }
    const many = r.convergence.find((c) => c.n === n64)?.spreads.find((s) =>
      s.loss === 0 && s.writes > 1
    );
    if (many && many.ms >= 0) {
      out.push({
        label: `${int(many.writes)} writes → ${n64}`,
        value: `${int(many.ms)} ms virtual (${
          fixed(many.ms / r.config.gossipIntervalMs, 2)
        } gossip rounds); ${times(many.bytes / many.minimum)} the byte minimum`,
      });
    }
  }
  if (r.convergence.length >= 2) {
    const first = r.convergence[0]!, last = r.convergence.at(-1)!;
    out.push({
      label: "idle traffic per member",
      value: `${fixed(first.idle.bytesPerMemberPerSecond, 0)} B/s at N=${first.n}, ${
        fixed(last.idle.bytesPerMemberPerSecond, 0)
      } B/s at N=${last.n}`,
    });
    out.push({
      label: `under load (${r.config.loadRate} writes/s)`,
      value: `${bytes(first.load.bytesPerMemberPerSecond)}/s per member at N=${first.n}, ${
        bytes(last.load.bytesPerMemberPerSecond)
      }/s at N=${last.n}`,
    });
  }
  const peer = r.peer.filter((p) => p.writes > 1 && p.ms >= 0);
  const pairs = peer.map((p) => ({ p, s: spreadAt(r, p.n, 0, p.writes) })).filter((x) =>
    x.s && x.s.ms >= 0
  );
  if (pairs.length) {
    const ratios = pairs.map(({ p, s }) => s!.bytes / p.bytes);
    const hops = pairs.map(({ p, s }) =>
      `${fixed(s!.ms / r.config.latencyMs, 0)} vs ${fixed(p.ms / r.config.latencyMs, 0)}`
    );
    out.push({
      label: `vs scuttlebutt, ${int(pairs[0]!.p.writes)} writes`,
      value: `bytes ${
        pairs.map(({ p }, i) => `N=${p.n} ${times(ratios[i]!)}`).join(", ")
      } of theirs; hops to converge (ours vs theirs) ${
        pairs.map(({ p }, i) => `N=${p.n} ${hops[i]}`).join(", ")
      }`,
    });
  }
  // The summary speaks of the smallest cluster, which has both bursts.
  const udpN = Math.min(...r.udp.map((u) => u.n));
  const udpAt = r.udp.filter((u) => u.n === udpN);
  const udpOne = udpAt.flatMap((u) => u.spreads.filter((s) => s.writes === 1 && s.ms >= 0));
  const udpMany = udpAt.flatMap((u) => u.spreads.filter((s) => s.writes > 1 && s.ms >= 0));
  if (udpOne.length && udpMany.length) {
    const g = r.config.gossipIntervalMs;
    out.push({
      label: `UDP loopback, ${udpN} members`,
      value: `medians per runtime and socket API: 1 write in ${
        span(udpOne.map((s) => s.ms / g), (x) => fixed(x, 2))
      } gossip rounds, ${int(udpMany[0]!.writes)} writes in ${
        span(udpMany.map((s) => s.ms / g), (x) => fixed(x, 2))
      }, for ${span(udpMany.map((s) => s.bytes / s.minimum), times)} the byte minimum`,
    });
  }
  const gap = largestGap(r);
  if (gap) {
    out.push({ label: "largest gap to the minimum", value: `${times(gap.ratio)}: ${gap.what}` });
  }
  return out;
}

// ---------------------------------------------------------------------------- charts

/** The SVG files of the report, by file name. */
export function charts(r: Results): Map<string, string> {
  const out = new Map<string, string>();
  const lat = r.config.latencyMs, fan = r.config.fanout;
  if (r.runtimes.length) {
    out.set(
      "local_ops.svg",
      barChart({
        title: "Local operations: rate relative to a plain Map",
        yLabel: "ops/s ÷ Map's ops/s",
        categories: r.runtimes[0]!.local.ops.map((o) =>
          o.op.replace(" value)", ")").replace("set (", "set (").replace(", string)", ", str)")
            .replace(", object)", ", obj)")
        ),
        series: r.runtimes.map((rt) => ({
          name: rt.label.split(" (")[0]!,
          values: rt.local.ops.map((o) => o.ratio),
        })),
        yLog: true,
        reference: { value: 1, label: "Map" },
        width: 720,
      }),
    );
    out.set(
      "codec.svg",
      barChart({
        title: "Codec: envelopes per second relative to JSON",
        yLabel: "ours ÷ JSON",
        categories: r.runtimes[0]!.codec.map((c) => c.short),
        series: r.runtimes.flatMap((rt) => [
          { name: `${rt.label.split(" (")[0]} encode`, values: rt.codec.map((c) => c.encodeRatio) },
          { name: `${rt.label.split(" (")[0]} decode`, values: rt.codec.map((c) => c.decodeRatio) },
        ]),
        yLog: true,
        reference: { value: 1, label: "JSON" },
        width: 820,
      }),
    );
  }
  const ns = [...new Set(r.antiEntropy.map((x) => x.n))];
  if (ns.length) {
    const series: Series[] = ns.map((n) => ({
      name: `n = ${int(n)}`,
      points: r.antiEntropy.filter((x) => x.n === n && x.d > 0).map((x) => [x.d, x.bytes] as const),
    }));
    const ds = [...new Set(r.antiEntropy.filter((x) => x.d > 0).map((x) => x.d))].sort((a, b) =>
      a - b
    );
    const perEntry = r.antiEntropy.filter((x) => x.d > 0).map((x) => x.minimum / x.d);
    const avg = perEntry.reduce((a, b) => a + b, 0) / Math.max(1, perEntry.length);
    series.push({
      name: "minimum (the d entries)",
      points: ds.map((d) => [d, d * avg] as const),
      dashed: true,
    });
    out.set(
      "anti_entropy.svg",
      lineChart({
        title: "Anti-entropy: bytes to reconcile d differences",
        xLabel: "differing keys d",
        yLabel: "bytes (both directions)",
        series,
        xLog: true,
        yLog: true,
      }),
    );
  }
  const conv = r.convergence;
  if (conv.length) {
    const xs = conv.map((c) => c.n);
    const one = (f: (s: Spread) => number, loss = 0) =>
      conv.flatMap((c) => {
        const s = c.spreads.find((x) => x.loss === loss && x.writes === 1);
        return s && s.ms >= 0 ? [[c.n, f(s)] as const] : [];
      });
    out.set(
      "convergence_hops.svg",
      lineChart({
        title: "One write: one-way latencies (hops) until members have it",
        xLabel: "members N",
        yLabel: `hops (virtual time ÷ ${lat} ms latency)`,
        xLog: true,
        yLog: true,
        series: [
          { name: "half of the members", points: one((s) => s.p50Ms / lat) },
          { name: "all members", points: one((s) => s.ms / lat) },
          { name: "all, 10% loss", points: one((s) => s.ms / lat, 0.1) },
          {
            name: "epidemic bound log4 N",
            points: xs.map((n) => [n, bound(n, fan)] as const),
            dashed: true,
          },
          {
            name: "3 × bound (target)",
            points: xs.map((n) => [n, 3 * bound(n, fan)] as const),
            dashed: true,
          },
        ],
      }),
    );
    const ratio = (writes: "one" | "many", loss: number, data = false) =>
      conv.flatMap((c) => {
        const s = c.spreads.find((x) =>
          x.loss === loss && (writes === "one" ? x.writes === 1 : x.writes > 1)
        );
        return s && s.ms >= 0 ? [[c.n, (data ? s.dataBytes : s.bytes) / s.minimum] as const] : [];
      });
    out.set(
      "convergence_bytes.svg",
      lineChart({
        title: "Bytes to converge, relative to the minimum",
        xLabel: "members N",
        yLabel: "bytes ÷ (N−1) × entry bytes",
        xLog: true,
        yMin: 0,
        series: [
          { name: "1 write", points: ratio("one", 0) },
          { name: "1,000 writes", points: ratio("many", 0) },
          { name: "1,000 writes, 10% loss", points: ratio("many", 0.1) },
          { name: "1,000 writes, 10% loss, data msgs only", points: ratio("many", 0.1, true) },
          { name: "minimum", points: xs.map((n) => [n, 1] as const), dashed: true },
        ],
      }),
    );
    out.set(
      "traffic.svg",
      lineChart({
        title: "Bytes sent per member per second",
        xLabel: "members N",
        yLabel: "bytes / member / s",
        xLog: true,
        yLog: true,
        series: [
          {
            name: "idle (in sync)",
            points: conv.map((c) => [c.n, c.idle.bytesPerMemberPerSecond] as const),
          },
          {
            name: `under load (${r.config.loadRate} writes/s cluster-wide)`,
            points: conv.map((c) => [c.n, c.load.bytesPerMemberPerSecond] as const),
          },
        ],
      }),
    );
    const largest = conv.at(-1)!;
    const cdf = (s: Spread): [number, number][] => {
      const pts: [number, number][] = [];
      const k = s.arrivals.length;
      const step = Math.max(1, Math.floor(k / 200));
      for (let i = 0; i < k; i += step) pts.push([s.arrivals[i]! / lat, (i + 1) / k]);
      pts.push([s.arrivals[k - 1]! / lat, 1]);
      return pts;
    };
    out.set(
      "arrivals.svg",
      lineChart({
        title: `One write → ${int(largest.n)} members: share that has it`,
        xLabel: `hops (virtual time ÷ ${lat} ms)`,
        yLabel: "share of members",
        xLog: true,
        series: largest.spreads.filter((s) => s.writes === 1 && s.ms >= 0).map((s) => ({
          name: `${pct(s.loss)} loss`,
          points: cdf(s),
          markers: false,
        })),
      }),
    );
  }
  const peerMany = r.peer.filter((p) => p.writes > 1);
  if (peerMany.length) {
    out.set(
      "scuttlebutt.svg",
      lineChart({
        title: `${int(peerMany[0]!.writes)} writes: bytes to converge, ours and scuttlebutt's`,
        xLabel: "members N",
        yLabel: "bytes",
        xLog: true,
        yLog: true,
        series: [
          {
            name: "Gossip KV",
            points: peerMany.flatMap((p) => {
              const s = spreadAt(r, p.n, 0, p.writes);
              return s ? [[p.n, s.bytes] as const] : [];
            }),
          },
          { name: "scuttlebutt Model", points: peerMany.map((p) => [p.n, p.bytes] as const) },
          {
            name: "minimum",
            points: peerMany.flatMap((p) => {
              const s = spreadAt(r, p.n, 0, p.writes);
              return s ? [[p.n, s.minimum] as const] : [];
            }),
            dashed: true,
          },
        ],
      }),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------- document

function img(file: string, alt: string): string {
  return `![${alt}](bench/${file})`;
}

/** The report, as Markdown. `files` are the chart files written next to it, under bench/. */
export function markdown(
  r: Results,
  files: ReadonlySet<string>,
  baseline?: { readonly results: Results; readonly label: string },
): string {
  const c = r.config;
  const lat = c.latencyMs;
  const L: string[] = [];
  const chart = (file: string, alt: string) => {
    if (files.has(file)) L.push("", img(file, alt));
  };
  L.push(
    "# Benchmarks",
    "",
    `Generated by \`bench/main.ts\` (${r.mode} run) on ${r.date}, running on ${r.host}; ${r.machine}. The whole run took ${
      r.durationMs < 120_000
        ? `${fixed(r.durationMs / 1000, 0)} seconds`
        : `${fixed(r.durationMs / 60_000, 1)} minutes`
    }. Do not edit by hand: run \`deno task bench\` again (or \`bun bench/main.ts\`, \`npx tsx bench/main.ts\`).`,
    "",
    "Every figure is a count (bytes, datagrams, messages, round trips, hops) or a ratio of two",
    "measurements taken in the same run, never a bare wall-clock time: the machine is shared and",
    "noisy, so only ratios and counts are comparable from one run to the next. Clusters run in one",
    "process over `MemoryNetwork` on virtual time (the real codec encodes and decodes every datagram,",
    "the MTU is enforced), so their times are virtual and exact, and a run replays from its seed.",
    "",
    "## Summary",
    "",
    table(["figure", "value"], headlines(r).map((h) => [h.label, h.value])),
  );
  if (baseline) L.push(...beforeAfter(baseline.results, r, baseline.label));

  // 1 -----------------------------------------------------------------------------
  if (r.runtimes.length) {
    const first = r.runtimes[0]!;
    L.push(
      "",
      "## 1. Local operations",
      "",
      `One member alone (nothing to send), beside a plain \`Map\` doing the same work in the same process: ${
        int(first.local.keys)
      } distinct keys per timed pass, ${first.local.trials} passes, ours and the Map's timed back to back in each pass (alternating which goes first); the table shows medians, the ratio is the median of the per-pass ratios. A \`set\` stamps the write with the hybrid clock, hashes it into the Merkle tree, queues it for the next broadcast and tells subscribers; an object value is also copied (CBOR round trip) so that later changes by the caller do not leak into the store. A \`delete\` writes a tombstone.`,
    );
    for (const rt of r.runtimes) {
      L.push(
        "",
        `**${rt.label}**`,
        "",
        table(
          ["operation", "Gossip KV", "Map", "ratio"],
          rt.local.ops.map((o) => [o.op, rate(o.ours), rate(o.map), times(o.ratio)]),
        ),
      );
    }
    L.push(
      "",
      `Memory per key at ${
        int(first.local.memoryKeys)
      } keys (\`key-i\` → \`value-i\`, both strings), heap growth after a forced full GC, each structure built from nothing in its own function. GC: \`Bun.gc(true)\` on Bun; on Deno and Node, V8's \`gc\` obtained at run time with \`v8.setFlagsFromString("--expose-gc")\` and a fresh \`vm\` context (the same as starting with \`--expose-gc\`, without needing the flag).`,
      "",
      table(
        ["runtime", "Gossip KV", "Map", "ratio"],
        r.runtimes.map((rt) => [
          rt.label,
          `${int(rt.local.oursBytesPerKey)} B/key`,
          `${int(rt.local.mapBytesPerKey)} B/key`,
          times(rt.local.oursBytesPerKey / rt.local.mapBytesPerKey),
        ]),
      ),
      "",
      "Where the bytes go: each version is an object holding the key, value, stamp, writer and four 32-bit hashes (the Merkle tree's), kept in the section's `Map` and in its Merkle bucket (an array, a `Set` past 16 versions).",
    );
    chart("local_ops.svg", "Local operations relative to Map");

    // 2 ---------------------------------------------------------------------------
    L.push(
      "",
      "## 2. Codec",
      "",
      "Whole envelopes: our encode is `packDatagrams` (header, cluster name, sender id, CBOR messages, MTU packing) and our decode is `decodeDatagram` (CBOR plus validation of every field). The baseline is `JSON.stringify` / `JSON.parse` of the same messages as plain objects, binary fields as hex strings (JSON has no bytes), with no validation and no conversion to bytes: a strict baseline. Ratios above 1 mean faster than JSON.",
    );
    for (const rt of r.runtimes) {
      L.push(
        "",
        `**${rt.label}**`,
        "",
        table(
          [
            "envelope",
            "datagram",
            "JSON",
            "size",
            "encode",
            "JSON.stringify",
            "ratio",
            "decode",
            "JSON.parse",
            "ratio",
          ],
          rt.codec.map((x) => [
            x.name,
            `${x.cborBytes} B`,
            `${x.jsonBytes} B`,
            times(x.cborBytes / x.jsonBytes),
            rate(x.encode),
            rate(x.jsonStringify),
            times(x.encodeRatio),
            rate(x.decode),
            rate(x.jsonParse),
            times(x.decodeRatio),
          ]),
        ),
      );
    }
    chart("codec.svg", "Codec throughput relative to JSON");
  }
  if (r.skipped.length) L.push("", `Not measured: ${r.skipped.join("; ")}.`);

  // 3 -------------------------------------------------------------------------------
  if (r.antiEntropy.length) {
    L.push(
      "",
      "## 3. Anti-entropy",
      "",
      "Two stores of n keys; d keys get a newer version on one side; exchanges run the stateless Merkle descent to completion over a lossless link (`tests/_reconcile.ts`: every message is encoded into real datagrams and decoded) until the roots are equal. Both stores speak the compact descent of this release: a salted byte per child, and leaves that carry each version's stamp, so only the newer version of a key crosses. A salted byte equal by chance (once in 256 comparisons) makes a differing node look equal: when that leaves nothing to do for the node, it is described again under another salt; otherwise the difference waits for the next exchange, which draws another salt. The figures add up every exchange until the roots are equal. The minimum is the d newer entries themselves, encoded as on the wire. A leg is one one-way wave of messages; a round trip is two. Stale entries are older versions sent the wrong way, which the receiver ignores.",
      "",
      table(
        [
          "n",
          "d",
          "exchanges",
          "round trips",
          "legs",
          "datagrams",
          "bytes",
          "minimum",
          "× minimum",
          "stale entries sent",
          ...(baseline ? [`× minimum, stale (${baseline.label.split(" →")[0]})`] : []),
        ],
        r.antiEntropy.map((x) => {
          const before = baseline?.results.antiEntropy.find((y) => y.n === x.n && y.d === x.d);
          return [
            int(x.n),
            int(x.d),
            String(x.exchanges ?? 1),
            String(x.roundTrips),
            String(x.legs),
            int(x.datagrams),
            bytes(x.bytes),
            x.d ? bytes(x.minimum) : "0 B",
            x.d ? times(x.bytes / x.minimum) : "—",
            int(x.entriesStale),
            ...(baseline
              ? [
                before
                  ? `${before.d ? times(before.bytes / before.minimum) : bytes(before.bytes)}, ${
                    int(before.entriesStale)
                  }`
                  : "—",
              ]
              : []),
          ];
        }),
      ),
    );
    chart("anti_entropy.svg", "Anti-entropy bytes against differences");
  }

  // 4 -------------------------------------------------------------------------------
  if (r.convergence.length) {
    const ns = r.convergence.map((x) => x.n);
    L.push(
      "",
      "## 4. Convergence",
      "",
      `N members over \`MemoryNetwork\` on virtual time, ${lat} ms one-way latency, the library's defaults: anti-entropy every ${c.gossipIntervalMs} ms, SWIM probe every ${c.probeIntervalMs} ms, fanout ${c.fanout}. The cluster is formed first (every member started at once, joining through \`m0\`, until every member sees every other alive and all Merkle roots are equal), then each measurement runs on it in turn, the cluster settling (loss back to 0, equal roots, 5 s for piggybacked news to run out) between them. A write burst is made by one random member in one turn (writes made in one turn travel together); the measurement ends when the last member has applied every write.`,
      "",
      `- **Rounds** = virtual time ÷ gossip interval (${c.gossipIntervalMs} ms); **hops** = virtual time ÷ one-way latency (${lat} ms). The epidemic bound is log_(fanout+1) N = log4 N hops.`,
      "- **Minimum** = every member but the writer receives every entry once: (N − 1) × the entry's encoded size (the wire codec's, exactly).",
      "- **Bytes** are every datagram sent by anyone until the last member had everything, background included (SWIM probes, anti-entropy roots); **data** bytes leave out SWIM and in-sync roots (the split is the library's `bytesOutByType`, which shares a datagram's bytes evenly among its messages).",
      "- **Missed by broadcast** is the share of the (N − 1) × writes deliveries that no broadcast message (tree or rumor) made (anti-entropy did).",
      "- **Busiest ÷ mean** is the balance: the data bytes the busiest member sent (its relaying, or the writer's own push), divided by the mean over all members.",
      "- Before the measurements the cluster carries one write (not counted): the first broadcast over a newly formed overlay goes over every link, and its duplicates prune the links the tree does not need.",
      "",
      "Formation:",
      "",
      table(
        ["N", "all alive after", "bytes to form", "heap per (member, known member)"],
        r.convergence.map((x) => [
          int(x.n),
          `${fixed(x.formation.joinedMs / c.gossipIntervalMs, 1)} rounds`,
          bytes(x.formation.bytes),
          x.heapPerPair ? `${int(x.heapPerPair)} B` : "—",
        ]),
      ),
    );
    for (const kind of ["one", "many"] as const) {
      const rows: string[][] = [];
      for (const x of r.convergence) {
        for (const s of x.spreads) {
          if ((kind === "one") !== (s.writes === 1)) continue;
          const b = bound(x.n, c.fanout);
          const done = s.ms >= 0;
          rows.push([
            int(x.n),
            pct(s.loss),
            done ? fixed(s.ms / c.gossipIntervalMs, 2) : `> ${fixed(s.ms / c.gossipIntervalMs, 0)}`,
            `${fixed(s.p50Ms / lat, 0)} / ${fixed(s.p99Ms / lat, 0)} / ${
              done ? fixed(s.ms / lat, 0) : "—"
            }`,
            fixed(b, 2),
            done ? times(s.ms / lat / b) : "—",
            bytes(s.bytes),
            bytes(s.dataBytes),
            bytes(s.minimum),
            times(s.bytes / s.minimum),
            times(s.dataBytes / s.minimum),
            pct(Math.max(0, 1 - s.viaRumor / s.deliveries)),
            s.relayMaxOverMean ? times(s.relayMaxOverMean) : "—",
            int(s.suspicions),
          ]);
        }
      }
      const writes = r.convergence[0]?.spreads.find((s) =>
        (kind === "one") === (s.writes === 1)
      )?.writes ?? 1;
      L.push(
        "",
        kind === "one" ? "One write:" : `${int(writes)} writes (one member, one turn):`,
        "",
        table(
          [
            "N",
            "loss",
            "rounds",
            "hops: half / 99% / all",
            "bound",
            "all ÷ bound",
            "bytes",
            "data bytes",
            "minimum",
            "× min",
            "data × min",
            "missed by broadcast",
            "busiest ÷ mean",
            "suspicions",
          ],
          rows,
        ),
      );
    }
    const capped = ns.filter((n) => n > c.lossCapN);
    if (capped.length) {
      const lossy = r.convergence.flatMap((x) => x.spreads).filter((s) => s.loss === 0.3);
      const probes = lossy.reduce((a, s) => a + s.probes, 0);
      const failed = lossy.reduce((a, s) => a + s.probesFailed, 0);
      L.push(
        "",
        `30% loss runs only up to N = ${int(c.lossCapN)}. At that loss rate ${
          pct(failed / Math.max(1, probes))
        } of SWIM probes fail even with indirect probes (measured above), each failure is a false suspicion that every member hears and refutes, and each such update is piggybacked ${c.retransmitMult}·⌈log10(N+1)⌉ times by every member that learns it: membership traffic grows with N² cluster-wide (see the suspicions and bytes columns). Simulating it at N = ${
          int(capped[0]!)
        } takes longer than this whole run is allowed.`,
      );
    }
    chart("convergence_hops.svg", "Hops to converge against N");
    chart("arrivals.svg", "Share of members reached over time");
    chart("convergence_bytes.svg", "Bytes to converge relative to the minimum");
    L.push(
      "",
      `Traffic per member per second over ${
        fixed(c.windowMs / 1000, 0)
      } s of virtual time, idle (in sync) and under a load of ${c.loadRate} writes per second cluster-wide, each by a random member (so each write is its own broadcast, and its own announcements). A fixed cluster-wide rate is the fair load: each member must receive every write once whatever N, so its share should not grow with N. Idle, a member sends its SWIM ping with its anti-entropy root in one datagram and acks the pings it gets (a member in sync for 8 gossip intervals skips the rounds between its probes; PROTOCOL.md): what grows with N is only the length of the member ids (m0 to m999) and of the entry count in the root.`,
      "",
      table(
        [
          "N",
          "idle B/s",
          "idle datagrams/s",
          "load B/s",
          "of which SWIM",
          "of which data",
          "load bytes per write per member",
        ],
        r.convergence.map((x) => [
          int(x.n),
          fixed(x.idle.bytesPerMemberPerSecond, 0),
          fixed(x.idle.datagramsPerMemberPerSecond, 2),
          fixed(x.load.bytesPerMemberPerSecond, 0),
          fixed(x.load.swimBytesPerMemberPerSecond, 0),
          fixed(x.load.dataBytesPerMemberPerSecond, 0),
          fixed(x.load.bytesPerMemberPerSecond / x.load.writesPerSecond, 0),
        ]),
      ),
    );
    chart("traffic.svg", "Bytes per member per second against N");
  }

  // 5 -------------------------------------------------------------------------------
  if (r.peer.length) {
    L.push(
      "",
      "## 5. Against scuttlebutt",
      "",
      "The npm `scuttlebutt` package (5.6.15), its `Model`, replicas wired as its README shows (`a.createStream()` piped both ways with `b.createStream()`), each replica linked to exactly 3 others (a ring plus a random perfect matching: connected, 3-regular), with the same member ids as ours. Scuttlebutt has no timers and streams are in-process, so each link delivers after the same one-way latency as our `MemoryNetwork`, on the same kind of virtual clock: hops are comparable. Bytes are the newline-delimited JSON its streams emit; the handshake (each side's vector clock, sent when a link opens) is left out. Same N, same burst (one replica writes every key in one turn), no loss (its streams are reliable; ours are datagrams). Scuttlebutt sends each update once per link direction; it has no failure detection and no anti-entropy timer, so it spends nothing when idle, and nothing tells it when a replica is gone.",
      "",
      table(
        [
          "N",
          "writes",
          "hops, ours",
          "hops, theirs",
          "bytes, ours",
          "bytes, theirs",
          "ours ÷ theirs",
          "× min, ours",
          "× min, theirs",
          "CPU ours ÷ theirs",
        ],
        r.peer.map((p) => {
          const s = spreadAt(r, p.n, 0, p.writes);
          return [
            int(p.n),
            int(p.writes),
            s && s.ms >= 0 ? fixed(s.ms / lat, 0) : "—",
            p.ms >= 0 ? fixed(p.ms / lat, 0) : "—",
            s ? bytes(s.bytes) : "—",
            bytes(p.bytes),
            s ? times(s.bytes / p.bytes) : "—",
            s ? times(s.bytes / s.minimum) : "—",
            s ? times(p.bytes / s.minimum) : "—",
            s && p.writes > 1 ? times(s.wallMs / p.wallMs) : "—",
          ];
        }),
      ),
      "",
      "CPU is the wall-clock time each simulation took to converge, as a ratio in the same run (bursts only: for one write, ours is dominated by the SWIM background of N members meanwhile): ours includes encoding and decoding every datagram and the simulated network; theirs is JSON lines through in-process streams.",
    );
    chart("scuttlebutt.svg", "Bytes to converge, ours and scuttlebutt's");
  }

  // 6 -------------------------------------------------------------------------------
  if (r.udp.length || r.udpSkipped.length) {
    const g = c.gossipIntervalMs;
    L.push(
      "",
      "## 6. Real UDP on loopback",
      "",
      `${
        [...new Set(r.udp.map((u) => u.n))].join(" or ") || 16
      } members in one process, each on its own socket bound by \`autoTransport({ hostname: "127.0.0.1", port: 0 })\`, real timers, the library's defaults; one process per runtime, Deno twice: with its own \`Deno.listenDatagram\` (which \`autoTransport\` picks: \`deno.json\` turns on \`"unstable": ["net"]\`) and with its \`node:dgram\` (\`nodeUdpTransport\`, what \`autoTransport\` falls back to without the flag). Each burst is repeated (${
        r.udp[0]?.spreads[0]?.repeats ?? 1
      } times, by a different writer each time); the table shows the median and the slowest time to converge, in gossip rounds (wall-clock time ÷ ${g} ms, and the median and slowest in ms), and the median bytes. "× memory" compares those bytes with the same burst on \`MemoryNetwork\` above (same N, no loss).`,
      "",
    );
    if (r.udp.length) {
      const rows: string[][] = [];
      for (const u of r.udp) {
        for (const s of u.spreads) {
          const mem = spreadAt(r, u.n, 0, s.writes) ??
            (s.writes > 1
              ? r.convergence.find((x) => x.n === u.n)?.spreads.find((x) =>
                x.loss === 0 && x.writes > 1
              )
              : undefined);
          rows.push([
            u.label.split(" (")[0]!,
            u.api === "node"
              ? "node:dgram"
              : u.api === "deno"
              ? "Deno.listenDatagram"
              : "Bun.udpSocket",
            int(u.n),
            int(s.writes),
            fixed(u.joinedMs / g, 2),
            s.ms >= 0 ? `${fixed(s.ms / g, 2)} / ${fixed(s.maxMs / g, 2)}` : "did not converge",
            s.ms >= 0 ? `${fixed(s.ms, 1)} / ${fixed(s.maxMs, 1)}` : "—",
            int(s.datagrams),
            bytes(s.bytes),
            times(s.bytes / s.minimum),
            mem && mem.writes === s.writes ? times(s.bytes / mem.bytes) : "—",
            s.failed || s.sendErrors || s.dropped
              ? `${s.failed} failed, ${s.sendErrors} send errors, ${s.dropped} dropped`
              : "none",
          ]);
        }
      }
      L.push(
        table(
          [
            "runtime",
            "socket API",
            "N",
            "writes",
            "joined (rounds)",
            "rounds: median / slowest",
            "ms: median / slowest",
            "datagrams",
            "bytes",
            "× min",
            "× memory",
            "errors",
          ],
          rows,
        ),
      );
    }
    if (r.udpSkipped.length) L.push("", `Not measured: ${r.udpSkipped.join("; ")}.`);
  }

  // Where the gaps are ---------------------------------------------------------------
  const gap = largestGap(r);
  const clean = r.convergence.flatMap((x) => x.spreads).filter((s) => s.loss === 0 && s.ms >= 0);
  if (gap || clean.length) {
    L.push("", "## Where the gaps to the minimum come from", "");
    if (gap) {
      L.push(`- **Largest byte gap: ${times(gap.ratio)}** (${gap.what}): ${gap.why}.`);
    }
    const ones = clean.filter((s) => s.writes === 1);
    if (ones.length) {
      const missed = ones.map((s) => 1 - s.viaRumor / s.deliveries);
      const half = ones.map((s) => s.p50Ms / lat / bound(s.n, c.fanout));
      const all = ones.map((s) => s.ms / lat / bound(s.n, c.fanout));
      L.push(
        `- **Time: the depth of a shared tree.** Half the members have a write within ${
          span(half, times)
        } the epidemic bound and the last one at ${span(all, times)} (${
          span(missed, pct)
        } of the deliveries left to anti-entropy). Each writer's messages travel along its own spanning tree of the overlay, which starts as the tree all writers share: a write from a leaf of the shared tree climbs before it descends (up to twice the tree's depth), and a writer's tree only comes closer to a shortest-path tree where duplicates prune it and grafts repair it. Scuttlebutt floods every update over every link of a connected graph, so its last replica has it within the graph's diameter, for more bytes than ours (section 5).`,
      );
    }
    const many = clean.filter((s) => s.writes > 1);
    if (many.length) {
      L.push(
        `- **Bytes: about one copy per member.** The tree brings each member one copy of a write, so a burst costs ${
          span(many.map((s) => s.dataBytes / s.minimum), times)
        } the minimum in data bytes (datagram headers, the lazy announcements, a few grafts); for a single small entry the datagram header (magic, cluster name, sender id) and the tree message's origin and sequence number add about as much again as the entry.`,
      );
    }
  }

  // Limits ---------------------------------------------------------------------------
  const conv = r.convergence;
  if (conv.length && conv.at(-1)!.n >= 256) {
    const largest = conv.at(-1)!;
    const prev = conv.at(-2);
    const projected = largest.heapPerPair * 10_000 * 10_000;
    L.push("", "## Scale: why N stops at " + int(largest.n));
    const lines = [
      "",
      `Every member holds every member: its \`sys\` record (address, port, protocol, ...) in the replicated store and its SWIM state. Memory therefore grows with N², and so does the work of forming the cluster (every member must receive N − 1 records). Measured at N = ${
        int(largest.n)
      }: ${
        int(largest.heapPerPair)
      } B of heap per (member, known member) pair, so N = 10,000 would need about ${
        bytes(projected)
      } of heap in one process, beyond this machine (${r.machine}).`,
    ];
    // What fits: three quarters of the machine's memory for the members' tables.
    const fits = Math.floor(Math.sqrt(0.75 * r.memoryBytes / largest.heapPerPair) / 100) * 100;
    // The same work at both N: forming the cluster, and the bursts without loss and with 10%
    // (30% runs only at small N).
    const common = (x: ConvergenceResult) =>
      x.formationWallMs +
      x.spreads.filter((s) => s.loss < 0.3).reduce((a, s) => a + s.wallMs, 0);
    if (prev && common(prev) > 0) {
      const k = Math.log(common(largest) / common(prev)) / Math.log(largest.n / prev.n);
      const at = (n: number) => largest.totalWallMs * (n / largest.n) ** k / r.durationMs;
      lines.push(
        "",
        `Forming N = ${
          int(largest.n)
        } and spreading the bursts without loss and with 10% loss took ${
          times(common(largest) / common(prev))
        } the time of the same work at N = ${int(prev.n)} (≈ N^${
          fixed(k, 1)
        }). At that rate N = 2,000 would add about ${
          times(at(2_000))
        } of this whole run and need about ${
          bytes(largest.heapPerPair * 2_000 ** 2)
        } of heap, close to the 4 GiB V8 gives \`deno run\` by default (the task passes no flags); the largest N whose tables fit in three quarters of this machine's memory, about ${
          int(fits)
        }, would add ${times(at(fits))}; N = 10,000, ${
          times(at(10_000))
        }, besides the memory. So the 10-minute budget of \`deno task bench\` stops at N = ${
          int(largest.n)
        }; \`deno run -A --v8-flags=--max-old-space-size=8192 bench/main.ts --max-n 2000\` adds N = 2,000. Simulating 10,000 members would need their tables shared between simulated members, which would no longer be the library as users run it, so it is not done.`,
      );
    }
    L.push(...lines);
  }
  L.push("");
  return L.join("\n");
}

/**
 * "Before and after": the dissemination figures of `before` (a `results.json` of an
 * earlier run, such as release 0.1.0's) beside this run's, with this release's targets.
 */
export function beforeAfter(before: Results, after: Results, label: string): string[] {
  const c = after.config;
  const lat = c.latencyMs;
  const L: string[] = [
    "",
    `## Before and after: ${label}`,
    "",
    `Dissemination figures of the run of ${before.date} beside this run's (${label}), same plan and seeds; → reads before → after. Targets: the last member within ×2 the epidemic bound without loss and ×5 with 10% loss, fewer than 3 gossip rounds at 30% loss; bursts ≤ ×1.3 the byte minimum in data bytes, a single write ≤ ×2.5 in all bytes; no member above ×3 the mean data bytes. The CPU per replicated write of both releases, measured in one run, is in [section 8](#8-cpu-per-replicated-write).`,
    "",
  ];
  const rows: string[][] = [];
  for (const x of after.convergence) {
    const old = before.convergence.find((y) => y.n === x.n);
    for (const s of x.spreads) {
      const o = old?.spreads.find((t) => t.loss === s.loss && t.writes === s.writes);
      const b = bound(x.n, c.fanout);
      const pair = (f: (t: typeof s) => string) => `${o ? f(o) : "—"} → ${f(s)}`;
      const allBound = (t: typeof s) => (t.ms >= 0 ? times(t.ms / lat / b) : "—");
      rows.push([
        int(x.n),
        pct(s.loss),
        int(s.writes),
        pair(allBound),
        pair((t) => fixed(t.ms / c.gossipIntervalMs, 2)),
        pair((t) => times(t.bytes / t.minimum)),
        pair((t) => times(t.dataBytes / t.minimum)),
        pair((t) => pct(Math.max(0, 1 - t.viaRumor / t.deliveries))),
        s.relayMaxOverMean ? times(s.relayMaxOverMean) : "—",
      ]);
    }
  }
  L.push(
    table(
      [
        "N",
        "loss",
        "writes",
        "all ÷ bound",
        "rounds",
        "× min",
        "data × min",
        "left to anti-entropy",
        "busiest ÷ mean (after)",
      ],
      rows,
    ),
  );
  L.push(
    "",
    table(
      ["N", "idle B/s per member", "load B/s per member", "load bytes per write per member"],
      after.convergence.map((x) => {
        const o = before.convergence.find((y) => y.n === x.n);
        const perWrite = (t: ConvergenceResult) =>
          t.load.bytesPerMemberPerSecond / (t.load.writesPerSecond || 1);
        return [
          int(x.n),
          `${o ? int(o.idle.bytesPerMemberPerSecond) : "—"} → ${
            int(x.idle.bytesPerMemberPerSecond)
          }`,
          `${o ? int(o.load.bytesPerMemberPerSecond) : "—"} → ${
            int(x.load.bytesPerMemberPerSecond)
          }`,
          `${o ? int(perWrite(o)) : "—"} → ${int(perWrite(x))}`,
        ];
      }),
    ),
  );
  const peers: string[][] = [];
  for (const p of after.peer) {
    const x = after.convergence.find((y) => y.n === p.n);
    const s = x?.spreads.find((t) => t.loss === 0 && t.writes === p.writes);
    const o = before.convergence.find((y) => y.n === p.n)?.spreads.find((t) =>
      t.loss === 0 && t.writes === p.writes
    );
    if (!s || p.ms < 0) continue;
    peers.push([
      int(p.n),
      int(p.writes),
      `${o ? fixed(o.ms / lat, 0) : "—"} → ${fixed(s.ms / lat, 0)}`,
      fixed(p.ms / lat, 0),
      `${o ? times(o.ms / p.ms) : "—"} → ${times(s.ms / p.ms)}`,
      `${o ? times(o.bytes / p.bytes) : "—"} → ${times(s.bytes / p.bytes)}`,
    ]);
  }
  if (peers.length) {
    L.push(
      "",
      "Against scuttlebutt (same run each time; target: hops ≤ ×1.5 theirs, bytes below theirs):",
      "",
      table(
        ["N", "writes", "hops, ours", "hops, theirs", "hops ours ÷ theirs", "bytes ours ÷ theirs"],
        peers,
      ),
    );
  }
  const udp: string[][] = [];
  for (const u of after.udp) {
    const o = before.udp.find((v) => v.label === u.label && v.api === u.api && v.n === u.n);
    for (const s of u.spreads) {
      const t = o?.spreads.find((v) => v.writes === s.writes);
      const ms = (v: UdpSpread) => `${fixed(v.ms, 1)} / ${fixed(v.maxMs, 1)} ms`;
      udp.push([u.label, u.api, int(u.n), int(s.writes), `${t ? ms(t) : "—"} → ${ms(s)}`]);
    }
  }
  if (udp.length) {
    L.push(
      "",
      `Real UDP on loopback (median / slowest of the repeats; targets: 1 write to 16 members within 5 ms, 1,000 writes to 64 members within 0.3 s; "—": not measured before):`,
      "",
      table(["runtime", "socket API", "N", "writes", "time to the last member"], udp),
    );
  }
  return L;
}
