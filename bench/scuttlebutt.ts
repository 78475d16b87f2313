// Part 5: the npm `scuttlebutt` package's Model as a peer, in the same run. Replicas are
// wired as its README shows (`s.pipe(t.createStream()).pipe(s)`), each linked to 3 others,
// except that every link delivers after the same one-way latency as our MemoryNetwork, on
// the same kind of virtual clock: scuttlebutt has no timers, so its time to converge is
// counted in one-way latencies ("hops"), the unit our figures use too.
import { createRequire } from "node:module";
import { seededRandom } from "../src/core/random.ts";
import { VirtualTime } from "../src/time.ts";
import { now } from "./env.ts";

interface Duplex {
  on(event: "data", listener: (line: string) => void): void;
  write(line: string): void;
  resume(): void;
}

interface Model {
  readonly id: string;
  set(key: string, value: unknown): void;
  get(key: string): unknown;
  createStream(): Duplex;
  on(
    event: "update",
    listener: (change: [string, unknown], ts: number, source: string) => void,
  ): void;
}

const require = createRequire(import.meta.url);
const ModelClass = require("scuttlebutt/model") as new (id: string) => Model;

/** One scuttlebutt measurement. */
export interface PeerSpread {
  readonly n: number;
  readonly writes: number;
  /** Virtual ms until every replica had every write; -1 if not within the limit. */
  readonly ms: number;
  readonly p50Ms: number;
  readonly bytes: number;
  readonly messages: number;
  /** Bytes the links carried while connecting (handshakes), before any write. */
  readonly handshakeBytes: number;
  readonly wallMs: number;
}

/**
 * A connected graph in which every replica has exactly 3 links: a ring (so it is
 * connected) plus a random perfect matching of non-neighbours.
 */
export function cubicGraph(n: number, seed: number): [number, number][] {
  const random = seededRandom(seed);
  for (;;) {
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const edges: [number, number][] = [];
    for (let i = 0; i < n; i++) edges.push([i, (i + 1) % n]);
    let ok = true;
    for (let i = 0; i < n; i += 2) {
      const a = order[i]!, b = order[i + 1]!;
      const gap = Math.abs(a - b);
      if (gap === 1 || gap === n - 1) {
        ok = false;
        break;
      }
      edges.push([a, b]);
    }
    if (ok) return edges;
  }
}

/** Runs scuttlebutt with `n` replicas and a burst of `writes` writes by one replica. */
export function scuttlebuttSpread(
  o: { n: number; writes: number; latencyMs: number; seed: number; maxMs: number },
): PeerSpread {
  if (o.n % 2) throw new RangeError("n must be even for a 3-regular graph");
  const time = new VirtualTime();
  const models = Array.from({ length: o.n }, (_, i) => new ModelClass(`m${i}`));
  let bytes = 0, messages = 0;
  for (const [i, j] of cubicGraph(o.n, o.seed)) {
    const a = models[i]!.createStream(), b = models[j]!.createStream();
    // Each stream carries newline-terminated JSON text; its length is its size in bytes
    // (ids, keys and values here are ASCII).
    a.on("data", (line) => {
      bytes += line.length;
      messages++;
      time.setTimeout(() => b.write(line), o.latencyMs);
    });
    b.on("data", (line) => {
      bytes += line.length;
      messages++;
      time.setTimeout(() => a.write(line), o.latencyMs);
    });
    a.resume();
    b.resume();
  }
  time.runUntil(() => time.pending === 0, 60_000);
  const handshakeBytes = bytes;
  bytes = 0;
  messages = 0;

  const random = seededRandom(`${o.seed}/writes`);
  const got = models.map(() => 0);
  const targets = models.map(() => o.writes);
  // One replica writes them all, as in our runs.
  const w = Math.floor(random() * o.n);
  const writes: { model: Model; key: string }[] = [];
  for (let i = 0; i < o.writes; i++) {
    targets[w]!--;
    writes.push({ model: models[w]!, key: `w-${i}` });
  }
  const start = time.now();
  const doneAt = targets.map((t) => (t === 0 ? start : NaN));
  let complete = targets.filter((t) => t === 0).length;
  models.forEach((m, i) =>
    m.on("update", (_change, _ts, source) => {
      if (source !== m.id && ++got[i]! === targets[i]) {
        doneAt[i] = time.now();
        complete++;
      }
    })
  );
  const wall = now();
  for (const { model, key } of writes) model.set(key, `value-${key}`);
  const ok = time.runUntil(() => complete === o.n, o.maxMs);
  const wallMs = now() - wall;
  const sorted = doneAt.map((t) => t - start).sort((a, b) => a - b);
  return {
    n: o.n,
    writes: o.writes,
    ms: ok ? time.now() - start : -1,
    p50Ms: sorted[Math.ceil(sorted.length / 2) - 1] ?? 0,
    bytes,
    messages,
    handshakeBytes,
    wallMs,
  };
}
