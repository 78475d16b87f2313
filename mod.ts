/**
 * Gossip KV: a key-value map shared by every member of a cluster, replicated by gossip.
 *
 * Start a member with {@linkcode GossipKV.start}, give it a transport (a UDP socket, or a
 * {@linkcode MemoryNetwork} for tests and demos) and the addresses of a few members to
 * join through. Writes apply locally at once and reach every member within a few network
 * hops; a Merkle-tree comparison with a random peer every `gossipIntervalMs` repairs
 * whatever a lost datagram or a partition missed.
 *
 * @example Three members in one process
 * ```ts
 * import { GossipKV, MemoryNetwork } from "@gossip-kv/gossip-kv";
 *
 * const net = new MemoryNetwork({ latencyMs: 2, loss: 0.1 });
 * const a = await GossipKV.start({ id: "a", transport: net.transport("a"), gossipIntervalMs: 50 });
 * const b = await GossipKV.start({ id: "b", transport: net.transport("b"), seeds: ["a"] });
 * const c = await GossipKV.start({ id: "c", transport: net.transport("c"), seeds: ["a"] });
 * c.subscribe((change) => console.log(change.key, change.value, change.origin));
 * await a.set("key 1", "value 1");
 * await new Promise((resolve) => setTimeout(resolve, 200));
 * console.log(b.get("key 1"), c.snapshot().usr); // "value 1" { "key 1": "value 1" }
 * await Promise.all([a.close(), b.close(), c.close()]);
 * ```
 *
 * @module
 */

export { DEFAULTS, GossipKV } from "./src/gossip_kv.ts";
export type {
  Change,
  GossipKVOptions,
  GossipKVStats,
  GossipKVWarning,
  ListOptions,
  MemberChange,
  MemberInfo,
  MemberStatus,
  Refusal,
  Snapshot,
  SyncStatus,
  WarnedRefusal,
} from "./src/gossip_kv.ts";
export type { EngineConfig, EngineCounters, MessageType } from "./src/core/engine.ts";
export type { Json } from "./src/json.ts";
export type { DropReason } from "./src/wire/codec.ts";
export { MemoryNetwork, MemoryTransport } from "./src/transport/memory.ts";
export type { AddressStats, MemoryNetworkOptions, NetworkStats } from "./src/transport/memory.ts";
export type { DatagramHandler, Transport } from "./src/transport/types.ts";
export { MemoryStorage } from "./src/storage/memory.ts";
export type {
  Entry,
  Section,
  Stamp,
  Storage,
  StorageDamage,
  StorageLoad,
} from "./src/storage/types.ts";
export { autoTransport, detectUdpRuntime } from "./src/transport/auto.ts";
export { parseAddress } from "./src/transport/udp.ts";
export type { UdpTransport, UdpTransportOptions } from "./src/transport/udp.ts";
export { generateKey, parseKey, parseKeyFile } from "./src/wire/crypto.ts";
export type { KeyInput } from "./src/wire/crypto.ts";
export { systemClock, systemScheduler, VirtualTime } from "./src/time.ts";
export type { Clock, Scheduler } from "./src/time.ts";
export { seededRandom } from "./src/core/random.ts";
export type { Random } from "./src/core/random.ts";
