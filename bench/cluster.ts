// A cluster of GossipKV members over a MemoryNetwork on virtual time, built for scale: no
// per-datagram trace, and O(1) convergence checks fed by the members' own change events.
import { DEFAULTS, GossipKV, type GossipKVOptions } from "../src/gossip_kv.ts";
import { seededRandom } from "../src/core/random.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import type { VirtualTime } from "../src/time.ts";

/** Options of {@linkcode SimCluster.form}. */
export interface FormOptions {
  readonly n: number;
  readonly seed: number;
  readonly latencyMs: number;
  /** Members started per batch; a batch joins every `batchEveryMs` of virtual time. */
  readonly batch: number;
  readonly batchEveryMs: number;
  /** Give up forming after this much virtual time. */
  readonly maxMs: number;
  /** Options of every member (the library's defaults otherwise). */
  readonly member?: Partial<GossipKVOptions>;
}

/** How forming went. */
export interface Formation {
  /** Virtual ms from the first start until every member saw every other alive. */
  readonly joinedMs: number;
  /** Virtual ms more until every Merkle root was equal. */
  readonly inSyncMs: number;
  /** Bytes on the network while forming. */
  readonly bytes: number;
}

/** Per-member counts of remote changes received, for O(1) "everyone has it" checks. */
export class SimCluster {
  readonly net: MemoryNetwork;
  readonly time: VirtualTime;
  readonly members: GossipKV[] = [];
  readonly latencyMs: number;
  readonly #alive: number[] = [];
  #fullyJoined = 0;
  #watched: Set<string> | undefined;
  #got: number[] = [];
  #target: number[] = [];
  /** Virtual time at which each member had every watched write (NaN until then). */
  doneAt: number[] = [];
  /** Members that have every watched write. */
  complete = 0;

  private constructor(seed: number, latencyMs: number) {
    this.net = new MemoryNetwork({ seed, latencyMs, virtualTime: true });
    this.time = this.net.time!;
    this.latencyMs = latencyMs;
  }

  get now(): number {
    return this.time.now();
  }

  /** Forms a cluster of `n` members that all see each other alive and hold equal roots. */
  static async form(o: FormOptions): Promise<{ cluster: SimCluster; formation: Formation }> {
    const c = new SimCluster(o.seed, o.latencyMs);
    const start = c.now;
    for (let i = 0; i < o.n; i += o.batch) {
      for (let j = i; j < Math.min(o.n, i + o.batch); j++) await c.#add(j, o);
      if (i + o.batch < o.n) c.time.advance(o.batchEveryMs);
    }
    const ok = c.time.runUntil(() => c.#fullyJoined === o.n, o.maxMs);
    if (!ok) {
      const seen = c.#alive.reduce((a, b) => a + b, 0) / (o.n * (o.n - 1));
      throw new Error(
        `${o.n} members did not all see each other alive within ${o.maxMs} ms (${
          (100 * seen).toFixed(1)
        }% of pairs)`,
      );
    }
    const joinedMs = c.now - start;
    const interval = o.member?.gossipIntervalMs ?? DEFAULTS.gossipIntervalMs;
    const synced = c.runUntilInSync(interval, o.maxMs);
    if (synced < 0) throw new Error(`${o.n} members did not reach equal roots`);
    return {
      cluster: c,
      formation: { joinedMs, inSyncMs: synced, bytes: c.net.stats().total.sentBytes },
    };
  }

  async #add(i: number, o: FormOptions): Promise<void> {
    const id = `m${i}`;
    const kv = await GossipKV.start({
      id,
      transport: this.net.transport(id),
      seeds: i === 0 ? [] : ["m0"],
      clock: this.time,
      scheduler: this.time,
      random: seededRandom(`${o.seed}/${id}`),
      onError: (error) => {
        throw error;
      },
      ...o.member,
    });
    this.members.push(kv);
    this.#alive.push(0);
    const n = o.n;
    kv.subscribeMembers((ch) => {
      const before = this.#alive[i]!;
      const after = before + (ch.status === "alive" ? 1 : 0) - (ch.previous === "alive" ? 1 : 0);
      this.#alive[i] = after;
      if (before === n - 1) this.#fullyJoined--;
      if (after === n - 1) this.#fullyJoined++;
    });
    kv.subscribe((ch) => {
      if (ch.origin !== "remote" || !this.#watched?.has(ch.key)) return;
      if (++this.#got[i]! === this.#target[i]) {
        this.doneAt[i] = this.now;
        this.complete++;
      }
    });
  }

  /** Whether every member sees every other member alive. */
  get fullyJoined(): boolean {
    return this.#fullyJoined === this.members.length;
  }

  /**
   * Watches remote changes to `keys`: member i is complete once it has applied
   * `targets[i]` of them (each key is written once, so each applies once per member).
   */
  watch(keys: Set<string>, targets: readonly number[]): void {
    this.#watched = keys;
    this.#got = targets.map(() => 0);
    this.#target = [...targets];
    this.doneAt = targets.map((t) => (t === 0 ? this.now : NaN));
    this.complete = targets.filter((t) => t === 0).length;
  }

  /** Whether every Merkle root is equal. */
  inSync(): boolean {
    let root: string | undefined;
    for (const kv of this.members) {
      const r = kv.syncStatus().root;
      if (root === undefined) root = r;
      else if (r !== root) return false;
    }
    return true;
  }

  /** Advances, checking roots every `stepMs`, until equal; returns the virtual ms, or -1. */
  runUntilInSync(stepMs: number, maxMs: number): number {
    const start = this.now;
    while (!this.inSync()) {
      if (this.now - start >= maxMs) return -1;
      this.time.advance(stepMs);
    }
    return this.now - start;
  }

  /** Advances until `done()` (checked after every event) or `maxMs`; virtual ms, or -1. */
  runUntil(done: () => boolean, maxMs: number): number {
    const start = this.now;
    return this.time.runUntil(done, maxMs) ? this.now - start : -1;
  }

  /** Sum of every member's bytes out by message type. */
  bytesByType(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const kv of this.members) {
      for (const [t, b] of Object.entries(kv.stats().bytesOutByType)) out[t] = (out[t] ?? 0) + b;
    }
    return out;
  }

  async close(): Promise<void> {
    for (const kv of this.members) await kv.close({ leave: false });
    this.members.length = 0;
  }
}
