// Part 1: local operations of one member (set, get, delete) beside a plain Map doing the
// same work in the same process, and memory per key beside the same data in a Map.
import { GossipKV } from "../src/gossip_kv.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { gc, heapUsed, now } from "./env.ts";

/** One operation's rate, ours and the Map's, in operations per second (medians of trials). */
export interface OpRate {
  readonly op: string;
  readonly ours: number;
  readonly map: number;
  /** Median over trials of (ours / map), each trial timing both back to back. */
  readonly ratio: number;
}

/** Result of {@linkcode localOps}. */
export interface LocalOpsResult {
  readonly keys: number;
  readonly trials: number;
  readonly ops: OpRate[];
  readonly memoryKeys: number;
  readonly oursBytesPerKey: number;
  readonly mapBytesPerKey: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function alone(): Promise<{ kv: GossipKV; net: MemoryNetwork }> {
  // Virtual time: the member's timers never fire unless the bench advances the clock, so
  // nothing but the measured work runs.
  const net = new MemoryNetwork({ virtualTime: true });
  const kv = await GossipKV.start({
    id: "bench",
    transport: net.transport("bench"),
    clock: net.clock,
    scheduler: net.scheduler,
  });
  return { kv, net };
}

function keysOf(n: number, prefix: string): string[] {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = `${prefix}${i}`;
  return out;
}

interface Pair {
  ours: number;
  map: number;
}

/** Times `ours` and `map` (each doing `count` operations) back to back; ops per second. */
function timePair(count: number, ours: () => void, map: () => void, oursFirst: boolean): Pair {
  const run = (f: () => void) => {
    const t = now();
    f();
    return count / ((now() - t) / 1000);
  };
  if (oursFirst) {
    const o = run(ours);
    return { ours: o, map: run(map) };
  }
  const m = run(map);
  return { ours: run(ours), map: m };
}

/** Measures set/get/delete rates and memory per key. */
export async function localOps(
  o: { keys: number; trials: number; memoryKeys: number },
): Promise<LocalOpsResult> {
  const keys = keysOf(o.keys, "key-");
  const values = keys.map((_, i) => `value-${i}`);
  const objects = keys.map((_, i) => ({ id: i, name: `user ${i}`, tags: ["a", "b"] }));
  const samples: Record<string, Pair[]> = {
    "set (new key, string value)": [],
    "set (overwrite, string value)": [],
    "set (new key, object value)": [],
    "get": [],
    "delete": [],
  };
  let sink = 0;
  for (let trial = 0; trial < o.trials; trial++) {
    const first = trial % 2 === 0;
    let { kv, net } = await alone();
    let map = new Map<string, unknown>();
    samples["set (new key, string value)"]!.push(timePair(o.keys, () => {
      for (let i = 0; i < keys.length; i++) void kv.set(keys[i]!, values[i]!);
    }, () => {
      for (let i = 0; i < keys.length; i++) map.set(keys[i]!, values[i]!);
    }, first));
    net.time!.advance(1); // the flush of this turn's rumor (no peers: nothing is sent)
    samples["set (overwrite, string value)"]!.push(timePair(o.keys, () => {
      for (let i = 0; i < keys.length; i++) void kv.set(keys[i]!, values[keys.length - 1 - i]!);
    }, () => {
      for (let i = 0; i < keys.length; i++) map.set(keys[i]!, values[keys.length - 1 - i]!);
    }, first));
    net.time!.advance(1);
    samples["get"]!.push(timePair(o.keys, () => {
      let n = 0;
      for (let i = 0; i < keys.length; i++) if (kv.get(keys[i]!) !== undefined) n++;
      sink += n;
    }, () => {
      let n = 0;
      for (let i = 0; i < keys.length; i++) if (map.get(keys[i]!) !== undefined) n++;
      sink += n;
    }, first));
    samples["delete"]!.push(timePair(o.keys, () => {
      for (let i = 0; i < keys.length; i++) void kv.delete(keys[i]!);
    }, () => {
      for (let i = 0; i < keys.length; i++) map.delete(keys[i]!);
    }, first));
    net.time!.advance(1);
    await kv.close({ leave: false });
    ({ kv, net } = await alone());
    map = new Map();
    samples["set (new key, object value)"]!.push(timePair(o.keys, () => {
      for (let i = 0; i < keys.length; i++) void kv.set(keys[i]!, objects[i]!);
    }, () => {
      for (let i = 0; i < keys.length; i++) map.set(keys[i]!, objects[i]!);
    }, first));
    net.time!.advance(1);
    await kv.close({ leave: false });
  }
  if (sink < 0) console.log(sink);
  const ops: OpRate[] = Object.entries(samples).map(([op, pairs]) => ({
    op,
    ours: median(pairs.map((p) => p.ours)),
    map: median(pairs.map((p) => p.map)),
    ratio: median(pairs.map((p) => p.ours / p.map)),
  }));
  const memory = await memoryPerKey(o.memoryKeys);
  return { keys: o.keys, trials: o.trials, ops, memoryKeys: o.memoryKeys, ...memory };
}

/**
 * Heap growth per key after a forced GC: `n` keys set on a lone member, then the same keys
 * and values in a Map. Both include the key and value strings they were given. Each is
 * built in its own function, so nothing of one is reachable while the other is measured.
 */
async function memoryPerKey(n: number): Promise<{
  oursBytesPerKey: number;
  mapBytesPerKey: number;
}> {
  const ours = await oursHeap(n);
  const map = mapHeap(n);
  return { oursBytesPerKey: ours / n, mapBytesPerKey: map / n };
}

async function oursHeap(n: number): Promise<number> {
  gc();
  const before = heapUsed();
  const { kv, net } = await alone();
  for (let i = 0; i < n; i++) void kv.set(`key-${i}`, `value-${i}`);
  net.time!.advance(1); // flush: the pending rumor list is dropped
  gc();
  const grown = heapUsed() - before;
  if (kv.size !== n) throw new Error(`expected ${n} keys, got ${kv.size}`);
  await kv.close({ leave: false });
  return grown;
}

function mapHeap(n: number): number {
  gc();
  const before = heapUsed();
  const map = new Map<string, string>();
  for (let i = 0; i < n; i++) map.set(`key-${i}`, `value-${i}`);
  gc();
  const grown = heapUsed() - before;
  if (map.size !== n) throw new Error("map lost keys");
  return grown;
}
