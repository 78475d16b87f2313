/**
 * Gossip KV: a key-value map shared by every member of a cluster, replicated by gossip.
 *
 * @module
 */

export { MemoryNetwork, MemoryTransport } from "./src/transport/memory.ts";
export type { AddressStats, MemoryNetworkOptions, NetworkStats } from "./src/transport/memory.ts";
export type { DatagramHandler, Transport } from "./src/transport/types.ts";
export { systemClock, systemScheduler, VirtualTime } from "./src/time.ts";
export type { Clock, Scheduler } from "./src/time.ts";
export { seededRandom } from "./src/core/random.ts";
export type { Random } from "./src/core/random.ts";
