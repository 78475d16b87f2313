// A small scenario runner over a MemoryNetwork on virtual time: add members, write,
// partition, heal, crash, advance time, and check convergence against a reference model.
import { GossipKV, type GossipKVOptions } from "../src/gossip_kv.ts";
import { seededRandom } from "../src/core/random.ts";
import { MemoryNetwork, type MemoryNetworkOptions } from "../src/transport/memory.ts";
import type { VirtualTime } from "../src/time.ts";

export interface ClusterOptions extends Omit<MemoryNetworkOptions, "virtualTime"> {
  /** Options given to every member. */
  member?: Partial<GossipKVOptions>;
}

export class Cluster {
  readonly net: MemoryNetwork;
  readonly time: VirtualTime;
  readonly members = new Map<string, GossipKV>();
  readonly #seed: number;
  readonly #memberOptions: Partial<GossipKVOptions>;
  /** Every datagram sent, for replay checks: "time from>to size". */
  readonly trace: string[] = [];

  constructor(options: ClusterOptions = {}) {
    const { member, ...net } = options;
    this.#seed = net.seed ?? 1;
    this.net = new MemoryNetwork({ ...net, virtualTime: true });
    this.time = this.net.time!;
    this.#memberOptions = { gossipIntervalMs: 200, probeIntervalMs: 500, ...member };
  }

  get now(): number {
    return this.time.now();
  }

  /** Starts a member; by default it joins through the first member added. */
  async add(id: string, options: Partial<GossipKVOptions> = {}): Promise<GossipKV> {
    const first = this.members.keys().next().value;
    const transport = this.net.transport(id);
    const send = transport.send.bind(transport);
    transport.send = (to, data) => {
      this.trace.push(`${this.time.now()} ${id}>${to} ${data.length} ${checksum(data)}`);
      send(to, data);
    };
    const kv = await GossipKV.start({
      id,
      transport,
      seeds: first === undefined || first === id ? [] : [first],
      clock: this.time,
      scheduler: this.time,
      random: seededRandom(`${this.#seed}/${id}`),
      onError: (error) => {
        throw error;
      },
      ...this.#memberOptions,
      ...options,
    });
    this.members.set(id, kv);
    return kv;
  }

  /** Starts `n` members named prefix0 .. prefix(n-1). */
  async addMany(n: number, prefix = "m", options: Partial<GossipKVOptions> = {}): Promise<void> {
    for (let i = 0; i < n; i++) await this.add(`${prefix}${i}`, options);
  }

  get(id: string): GossipKV {
    const kv = this.members.get(id);
    if (!kv) throw new Error(`No member ${id}`);
    return kv;
  }

  /** Stops a member as a crash would: no leave, its address goes silent. */
  async crash(id: string): Promise<void> {
    await this.get(id).close({ leave: false });
    this.members.delete(id);
  }

  /** Stops a member gracefully. */
  async leave(id: string): Promise<void> {
    await this.get(id).close();
    this.members.delete(id);
  }

  partition(...groups: string[][]): void {
    this.net.partition(...groups);
  }

  heal(): void {
    this.net.heal();
  }

  /** Advances virtual time by `ms`. */
  run(ms: number): void {
    this.time.advance(ms);
  }

  /**
   * Advances until `done()` or `maxMs`; returns the virtual ms it took, or -1. `done()` is
   * checked after every event, or every `checkEveryMs` of virtual time when given (for
   * predicates too costly to run per event in large clusters).
   */
  runUntil(done: () => boolean, maxMs: number, checkEveryMs?: number): number {
    const start = this.now;
    if (checkEveryMs === undefined) return this.time.runUntil(done, maxMs) ? this.now - start : -1;
    while (!done()) {
      if (this.now - start >= maxMs) return -1;
      this.time.advance(checkEveryMs);
    }
    return this.now - start;
  }

  /** Whether every running member holds the same data (same Merkle root and user data). */
  converged(): boolean {
    let root: string | undefined;
    for (const kv of this.members.values()) {
      const r = kv.syncStatus().root;
      if (root === undefined) root = r;
      else if (r !== root) return false;
    }
    return true;
  }

  /** Whether every running member holds `key` = `value` (`undefined`: absent). */
  everyoneHas(key: string, value: unknown): boolean {
    for (const kv of this.members.values()) {
      if (!Object.is(kv.get(key), value) && JSON.stringify(kv.get(key)) !== JSON.stringify(value)) {
        return false;
      }
    }
    return true;
  }

  /** Whether every running member sees member `id` with `status`. */
  everyoneSees(id: string, status: string): boolean {
    for (const kv of this.members.values()) {
      if (kv.id === id) continue;
      if (kv.members().find((m) => m.id === id)?.status !== status) return false;
    }
    return true;
  }

  async close(): Promise<void> {
    for (const kv of this.members.values()) await kv.close({ leave: false });
    this.members.clear();
  }
}

function checksum(data: Uint8Array): number {
  let h = 0;
  for (const b of data) h = (Math.imul(h, 31) + b) | 0;
  return h >>> 0;
}

/** A reference model: last writer wins on (wall, logical, writer). */
export class LwwModel {
  readonly #versions = new Map<
    string,
    { value: unknown; wall: number; logical: number; writer: string }
  >();

  /** Records the write that `kv` just made to `key` (read back from it). */
  record(kv: GossipKV, key: string): void {
    const v = kv.version(key)!;
    const cur = this.#versions.get(key);
    const wins = !cur || v.wall > cur.wall || (v.wall === cur.wall &&
      (v.logical > cur.logical || (v.logical === cur.logical && v.writer > cur.writer)));
    if (wins) this.#versions.set(key, { value: v.deleted ? undefined : kv.get(key), ...v });
  }

  /** The expected user data. */
  expected(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of this.#versions) if (v.value !== undefined) out[k] = v.value;
    return out;
  }
}

/** A member's user data as a plain object. */
export function dataOf(kv: GossipKV): Record<string, unknown> {
  return Object.fromEntries(kv.entries().sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
