/**
 * A {@linkcode Storage} in memory, for tests: it outlives the member that uses it, so a
 * member started again with the same instance restarts from the state the first one
 * left, synchronously enough for virtual-time tests. It survives no process exit; use
 * `fileStorage()` (`@gossip-kv/gossip-kv/storage/file`) for that.
 *
 * @module
 */

import { compareVersions, type Entry, type Section } from "../core/store.ts";
import type { Storage, StorageLoad } from "./types.ts";

/**
 * A storage in memory that outlives its members: for tests of restarts.
 *
 * @example A member restarts from where it stopped
 * ```ts
 * import { GossipKV, MemoryNetwork, MemoryStorage } from "@gossip-kv/gossip-kv";
 *
 * const net = new MemoryNetwork();
 * const storage = new MemoryStorage();
 * const a = await GossipKV.start({ id: "a", transport: net.transport("a"), storage });
 * await a.set("greeting", "hello");
 * await a.close();
 * const again = await GossipKV.start({ id: "a", transport: net.transport("a"), storage });
 * console.log(again.get("greeting")); // "hello"
 * await again.close();
 * ```
 */
export class MemoryStorage implements Storage {
  readonly #sections: Record<Section, Map<string, Entry>> = { sys: new Map(), usr: new Map() };
  #open = false;

  /** Returns every entry held; the storage is open until {@linkcode MemoryStorage.close}. */
  load(): Promise<StorageLoad> {
    this.#open = true;
    return Promise.resolve({ entries: this.entries(), damage: null });
  }

  /** Keeps each entry unless a greater version of its key is held. */
  append(entries: readonly Entry[]): void {
    if (!this.#open) throw new Error("Storage is not open: call load() first");
    for (const e of entries) {
      const map = this.#sections[e.section];
      const current = map.get(e.key);
      if (!current || compareVersions(e, current) > 0) map.set(e.key, e);
    }
  }

  /** Removes each entry that is still the version held for its key. */
  forget(entries: readonly Entry[]): void {
    for (const e of entries) {
      const map = this.#sections[e.section];
      const current = map.get(e.key);
      if (current && compareVersions(e, current) === 0) map.delete(e.key);
    }
  }

  /** Resolves at once: memory is as durable as this storage gets. */
  sync(): Promise<void> {
    return Promise.resolve();
  }

  /** Closes the storage; {@linkcode MemoryStorage.load} opens it again, state intact. */
  close(): Promise<void> {
    this.#open = false;
    return Promise.resolve();
  }

  /** Every entry held, `sys` section first, tombstones included. */
  entries(): Entry[] {
    return [...this.#sections.sys.values(), ...this.#sections.usr.values()];
  }
}
