/**
 * A simulated network inside one process, for tests, demos and benchmarks. It carries
 * the real datagram bytes, enforces the MTU, and can add latency, jitter, loss,
 * duplication, reordering and partitions. With `virtualTime: true` it runs on a
 * {@linkcode VirtualTime} clock: a whole cluster advances as fast as the CPU allows, and
 * the same seed replays the same run, message for message.
 *
 * @module
 */

import { copyBytes } from "../wire/_slab.ts";
import { type Random, seededRandom } from "../core/random.ts";
import { type Clock, type Scheduler, systemClock, systemScheduler, VirtualTime } from "../time.ts";
import type { DatagramHandler, Transport } from "./types.ts";

/** Options for {@linkcode MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /** Seed of the network's own randomness (loss, jitter, duplication). Default 1. */
  seed?: number;
  /** One-way delay of every datagram, in ms. Default 0. */
  latencyMs?: number;
  /** Extra random delay, uniform in [0, jitterMs). Default 0. */
  jitterMs?: number;
  /** Probability that a datagram is lost. Default 0. */
  loss?: number;
  /** Probability that a datagram is delivered twice. Default 0. */
  duplicate?: number;
  /** Probability that a datagram is held back long enough to arrive after later ones. */
  reorder?: number;
  /** Largest datagram carried, in bytes; a larger one makes `send` throw. Default 1,400. */
  mtu?: number;
  /** Run on virtual time instead of the real clock. Default false. */
  virtualTime?: boolean | VirtualTime;
}

/** Traffic counters of one address. */
export interface AddressStats {
  /** Datagrams sent from this address. */
  sentDatagrams: number;
  /** Bytes sent from this address. */
  sentBytes: number;
  /** Datagrams delivered to this address. */
  receivedDatagrams: number;
  /** Bytes delivered to this address. */
  receivedBytes: number;
  /** Datagrams sent from this address that never arrived (loss, partition, closed peer). */
  lostDatagrams: number;
}

/** Traffic counters of the whole network and of each address. */
export interface NetworkStats {
  /** Counters summed over every address. */
  readonly total: AddressStats;
  /** Counters of each address that sent or received anything. */
  readonly byAddress: Readonly<Record<string, AddressStats>>;
}

function emptyStats(): AddressStats {
  return {
    sentDatagrams: 0,
    sentBytes: 0,
    receivedDatagrams: 0,
    receivedBytes: 0,
    lostDatagrams: 0,
  };
}

/**
 * A simulated datagram network.
 *
 * @example Two endpoints on virtual time
 * ```ts
 * import { MemoryNetwork } from "@gossip-kv/gossip-kv";
 * const net = new MemoryNetwork({ seed: 1, latencyMs: 5, virtualTime: true });
 * const a = net.transport("a");
 * const b = net.transport("b");
 * const got: string[] = [];
 * b.listen((data, from) => got.push(`${from}:${data.length}`));
 * a.listen(() => {});
 * a.send("b", new Uint8Array(3));
 * net.time!.advance(5);
 * console.assert(got[0] === "a:3");
 * ```
 */
export class MemoryNetwork {
  /** The network's clock: virtual or the system's. Give it to the members too. */
  readonly clock: Clock;
  /** The network's scheduler: virtual or the system's. Give it to the members too. */
  readonly scheduler: Scheduler;
  /** The virtual clock, when the network runs on virtual time. */
  readonly time: VirtualTime | undefined;
  /** Largest datagram carried, in bytes. */
  readonly mtu: number;
  /** One-way delay, in ms; may be changed while the network runs. */
  latencyMs: number;
  /** Extra random delay, in ms; may be changed while the network runs. */
  jitterMs: number;
  /** Probability of loss; may be changed while the network runs. */
  loss: number;
  /** Probability of duplication; may be changed while the network runs. */
  duplicate: number;
  /** Probability of reordering; may be changed while the network runs. */
  reorder: number;
  readonly #random: Random;
  readonly #endpoints = new Map<string, MemoryTransport>();
  readonly #groups = new Map<string, number>();
  readonly #stats = new Map<string, AddressStats>();
  readonly #total = emptyStats();

  /** Makes a network; see {@linkcode MemoryNetworkOptions} for the defaults. */
  constructor(options: MemoryNetworkOptions = {}) {
    this.#random = seededRandom(options.seed ?? 1);
    this.latencyMs = options.latencyMs ?? 0;
    this.jitterMs = options.jitterMs ?? 0;
    this.loss = options.loss ?? 0;
    this.duplicate = options.duplicate ?? 0;
    this.reorder = options.reorder ?? 0;
    this.mtu = options.mtu ?? 1400;
    for (
      const [name, p] of [["loss", this.loss], ["duplicate", this.duplicate], [
        "reorder",
        this.reorder,
      ]] as const
    ) {
      if (!(p >= 0 && p <= 1)) {
        throw new RangeError(`${name} must be a probability in [0, 1], got ${p}`);
      }
    }
    if (options.virtualTime) {
      this.time = options.virtualTime instanceof VirtualTime
        ? options.virtualTime
        : new VirtualTime();
      this.clock = this.time;
      this.scheduler = this.time;
    } else {
      this.time = undefined;
      this.clock = systemClock;
      this.scheduler = systemScheduler;
    }
  }

  /** A transport bound to `address`. An address can be bound again once closed. */
  transport(address: string): MemoryTransport {
    if (typeof address !== "string" || address.length === 0) {
      throw new TypeError("Address must be a non-empty string");
    }
    if (this.#endpoints.has(address)) throw new Error(`Address ${address} is already in use`);
    const t = new MemoryTransport(this, address);
    this.#endpoints.set(address, t);
    return t;
  }

  /**
   * Splits the network: datagrams between addresses of different groups are lost.
   * Addresses in no group still reach everyone. Replaces any earlier partition.
   */
  partition(...groups: readonly (readonly string[])[]): void {
    this.#groups.clear();
    groups.forEach((group, i) => group.forEach((address) => this.#groups.set(address, i)));
  }

  /** Removes every partition. */
  heal(): void {
    this.#groups.clear();
  }

  /** Whether a datagram from `from` can reach `to` under the current partition. */
  connected(from: string, to: string): boolean {
    const a = this.#groups.get(from), b = this.#groups.get(to);
    return a === undefined || b === undefined || a === b;
  }

  /** Counters since the network was made (or since {@linkcode MemoryNetwork.resetStats}). */
  stats(): NetworkStats {
    const byAddress: Record<string, AddressStats> = {};
    for (const [address, s] of this.#stats) byAddress[address] = { ...s };
    return { total: { ...this.#total }, byAddress };
  }

  /** Zeroes every counter. */
  resetStats(): void {
    this.#stats.clear();
    Object.assign(this.#total, emptyStats());
  }

  #statsOf(address: string): AddressStats {
    let s = this.#stats.get(address);
    if (!s) this.#stats.set(address, s = emptyStats());
    return s;
  }

  /** @internal Called by {@linkcode MemoryTransport.send}. */
  deliver(from: string, to: string, data: Uint8Array): void {
    if (data.length > this.mtu) {
      throw new RangeError(`Datagram of ${data.length} bytes exceeds the MTU of ${this.mtu} bytes`);
    }
    const sender = this.#statsOf(from);
    sender.sentDatagrams++;
    sender.sentBytes += data.length;
    this.#total.sentDatagrams++;
    this.#total.sentBytes += data.length;
    if (this.#random() < this.loss || !this.connected(from, to)) {
      sender.lostDatagrams++;
      this.#total.lostDatagrams++;
      return;
    }
    const copies = this.#random() < this.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      // Copy: the receiver must not see later changes to the sender's buffer.
      const bytes = copyBytes(data);
      let delay = this.latencyMs + (this.jitterMs ? this.#random() * this.jitterMs : 0);
      if (this.#random() < this.reorder) delay += this.latencyMs + this.jitterMs + 1;
      this.scheduler.setTimeout(() => this.#arrive(from, to, bytes), delay);
    }
  }

  #arrive(from: string, to: string, data: Uint8Array): void {
    const endpoint = this.#endpoints.get(to);
    // A partition that started while the datagram was in flight also stops it.
    if (!endpoint?.handler || !this.connected(from, to)) {
      this.#statsOf(from).lostDatagrams++;
      this.#total.lostDatagrams++;
      return;
    }
    const receiver = this.#statsOf(to);
    receiver.receivedDatagrams++;
    receiver.receivedBytes += data.length;
    this.#total.receivedDatagrams++;
    this.#total.receivedBytes += data.length;
    endpoint.handler(data, from);
  }

  /** @internal Called by {@linkcode MemoryTransport.close}. */
  release(address: string, endpoint: MemoryTransport): void {
    if (this.#endpoints.get(address) === endpoint) this.#endpoints.delete(address);
  }
}

/** One endpoint of a {@linkcode MemoryNetwork}. */
export class MemoryTransport implements Transport {
  /** The address this endpoint is bound to. */
  readonly address: string;
  /** The network this endpoint belongs to. */
  readonly network: MemoryNetwork;
  /** @internal */
  handler: DatagramHandler | undefined;
  #closed = false;

  /** @internal Use {@linkcode MemoryNetwork.transport}. */
  constructor(network: MemoryNetwork, address: string) {
    this.network = network;
    this.address = address;
  }

  /** Delivers datagrams addressed to this endpoint to `handler`. */
  listen(handler: DatagramHandler): void {
    if (this.#closed) throw new Error(`Transport ${this.address} is closed`);
    this.handler = handler;
  }

  /** Sends one datagram; throws a `RangeError` above the network's MTU. */
  send(to: string, data: Uint8Array): void {
    if (this.#closed) throw new Error(`Transport ${this.address} is closed`);
    this.network.deliver(this.address, to, data);
  }

  /** Unbinds the address; datagrams in flight to it are lost. */
  close(): void {
    this.#closed = true;
    this.handler = undefined;
    this.network.release(this.address, this);
  }
}
