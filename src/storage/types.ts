/**
 * The storage port: what a member needs to keep its state across a restart. A member
 * started with a storage (`GossipKV.start({ storage })`) loads it before it joins, appends
 * every entry it applies (its own writes and what it learns from others, both sections,
 * tombstones included), and resolves `set()` and `delete()` once {@linkcode Storage.sync}
 * says the write is durable.
 *
 * Implementations: `fileStorage()` (`@gossip-kv/gossip-kv/storage/file`, an append-only
 * log for Deno, Bun and Node) and {@linkcode MemoryStorage} (for tests).
 *
 * @module
 */

import type { Entry } from "../core/store.ts";

export type { Entry, Section } from "../core/store.ts";
export type { Stamp } from "../core/hlc.ts";

/** Something wrong with the persisted state that had to be dropped to start. */
export interface StorageDamage {
  /** What was found and what was done, in one sentence for a log. */
  readonly message: string;
  /** Bytes dropped (0 when the storage cannot tell). */
  readonly bytesDropped: number;
}

/** What {@linkcode Storage.load} found. */
export interface StorageLoad {
  /** Every persisted entry: at most one version per key, tombstones included. */
  readonly entries: readonly Entry[];
  /**
   * Damage found and repaired (a torn or corrupt tail, say): the member starts with
   * `entries`, and anti-entropy fills in the rest. `null` when the state was intact.
   */
  readonly damage: StorageDamage | null;
}

/**
 * Durable state of one member. The member calls {@linkcode Storage.load} once, before
 * anything else; then {@linkcode Storage.append} and {@linkcode Storage.forget} in the
 * order things happen (synchronously: they queue), {@linkcode Storage.sync} as a
 * durability barrier, and {@linkcode Storage.close} last.
 *
 * @example A storage that keeps nothing (every member needs at least this much)
 * ```ts
 * import type { Storage } from "@gossip-kv/gossip-kv";
 *
 * const nothing: Storage = {
 *   load: () => Promise.resolve({ entries: [], damage: null }),
 *   append: () => {},
 *   forget: () => {},
 *   sync: () => Promise.resolve(),
 *   close: () => Promise.resolve(),
 * };
 * console.log((await nothing.load()).entries.length); // 0
 * ```
 */
export interface Storage {
  /** Opens the storage and reads every persisted entry. Rejects if it cannot be opened. */
  load(): Promise<StorageLoad>;
  /**
   * Queues entries the member applied, in order. Each one replaces the stored version of
   * its key (the member appends only versions that won under last-writer-wins, so keeping
   * the greater by `compareVersions` is the same thing). Not yet durable.
   */
  append(entries: readonly Entry[]): void;
  /**
   * The member dropped these versions (tombstones collected after the grace period):
   * remove each one if it is still the stored version of its key. Need not be durable: a
   * tombstone that comes back after a restart is collected again.
   */
  forget(entries: readonly Entry[]): void;
  /**
   * Resolves once everything appended before the call is durable, as far as the storage
   * promises; rejects if that cannot be ensured (a failed write or fsync).
   */
  sync(): Promise<void>;
  /** Makes everything appended durable and releases the storage. Nothing is called after. */
  close(): Promise<void>;
  /**
   * Optional. Why the storage cannot make writes durable now (a full disk, say), or
   * `undefined`. While set, a member refuses writes (nothing is applied), reports itself
   * not ready, and keeps applying what it learns from others in memory; the storage may
   * recover on its own.
   */
  readonly failure?: Error | undefined;
}
