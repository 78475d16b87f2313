/**
 * The replicated map: two sections (`sys`, `usr`) of last-writer-wins registers with
 * tombstones, indexed by a Merkle tree.
 *
 * Merge keeps, for every key, the version with the greatest (stamp, writer) pair. That
 * order is total, so merge is commutative, associative and idempotent: members that have
 * received the same versions hold the same state, whatever the order they came in.
 *
 * @module
 */

import { compareStamps, type Stamp } from "./hlc.ts";
import {
  entryHashA,
  entryHashB,
  hashString,
  hashStringTwice,
  LANE_A,
  LANE_B,
  writerHash,
} from "./hash.ts";
import { type MerkleItem, MerkleTree, type NodeDigest } from "./merkle.ts";

/** The two sections of the map: the store's own state and the user's data. */
export type Section = "sys" | "usr";

/** One version of one key. A tombstone has `deleted: true` and no value. */
export interface Entry extends Stamp {
  /** The section: `"sys"` (the store's own state) or `"usr"` (the user's data). */
  readonly section: Section;
  /** The key, a non-empty string. */
  readonly key: string;
  /** The value; `undefined` for a tombstone. */
  readonly value: unknown;
  /** Id of the member that wrote this version. */
  readonly writer: string;
  /** Whether this version is a tombstone (a delete). */
  readonly deleted: boolean;
}

/** An entry with the hashes the Merkle tree needs; what the store holds. */
export interface StoredEntry extends Entry, MerkleItem {
  /** Second lane of the key hash. */
  readonly kb: number;
}

/** Orders two versions of the same key by (stamp, writer): positive when `a` wins. */
export function compareVersions(
  a: Stamp & { readonly writer: string },
  b: Stamp & { readonly writer: string },
): number {
  const c = compareStamps(a, b);
  if (c !== 0) return c;
  return a.writer < b.writer ? -1 : a.writer > b.writer ? 1 : 0;
}

/**
 * The tombstone that supersedes version `v` and nothing newer: `v`'s stamp with the counter
 * plus one, by the same writer. Every member that derives it derives the same version.
 */
export function tombstoneAfter(v: Entry): Entry {
  return {
    section: v.section,
    key: v.key,
    value: undefined,
    wall: v.wall,
    logical: v.logical + 1,
    writer: v.writer,
    deleted: true,
  };
}

/** The first lane of a key's hash: where the key sits in the Merkle tree. */
export function keyHash(section: Section, key: string): number {
  return hashString(key, LANE_A ^ (section === "usr" ? 0 : 0x51));
}

/** The two lanes of a key's hash, as {@linkcode hashEntry} computes them (kept). */
const keyLanes = new Uint32Array(2);

/** Adds the hashes to an entry, making it ready to be stored or compared by hash. */
export function hashEntry(entry: Entry): StoredEntry {
  const seed = entry.section === "usr" ? 0 : 0x51;
  // Both lanes of the key hash in one pass over the key (the first is `keyHash`).
  const lanes = hashStringTwice(entry.key, LANE_A ^ seed, LANE_B ^ seed, keyLanes);
  const ka = lanes[0]!, kb = lanes[1]!;
  const w = writerHash(entry.writer, entry.deleted);
  return {
    section: entry.section,
    key: entry.key,
    value: entry.deleted ? undefined : entry.value,
    wall: entry.wall,
    logical: entry.logical,
    writer: entry.writer,
    deleted: entry.deleted,
    ka,
    kb,
    ea: entryHashA(ka, entry.wall, entry.logical, w),
    eb: entryHashB(kb, entry.wall, entry.logical, w),
  };
}

/** What {@linkcode Store.merge} did with an entry. */
export type MergeOutcome =
  /** The entry was newer and replaced what was there (or nothing was there). */
  | "applied"
  /** The store already holds this exact version. */
  | "duplicate"
  /** The store holds a newer version; nothing changed. */
  | "stale";

/** What {@linkcode Store.merge} returns when nothing changed (no object per refusal). */
const STALE = Object.freeze({ outcome: "stale" as const });
const DUPLICATE = Object.freeze({ outcome: "duplicate" as const });

/** The replicated map of one member. Pure and synchronous. */
export class Store {
  readonly #sys = new Map<string, StoredEntry>();
  readonly #usr = new Map<string, StoredEntry>();
  readonly #tombstones = new Set<StoredEntry>();
  readonly #live: Record<Section, number> = { sys: 0, usr: 0 };
  readonly #tree = new MerkleTree<StoredEntry>();
  #lastStored: StoredEntry | undefined;
  /** The version {@linkcode Store.lastStored} replaced, if any. */
  #lastReplaced: StoredEntry | undefined;

  /** The current version of a key, tombstones included. */
  get(section: Section, key: string): StoredEntry | undefined {
    return (section === "usr" ? this.#usr : this.#sys).get(key);
  }

  /**
   * Merges one version of a key: it replaces the current version only if it wins on
   * (stamp, writer). Returns what happened and, when applied, the version it replaced.
   */
  merge(entry: Entry): { outcome: MergeOutcome; previous?: StoredEntry; stored?: StoredEntry } {
    const outcome = this.apply(entry);
    if (outcome !== "applied") return outcome === "stale" ? STALE : DUPLICATE;
    const stored = this.#lastStored!, previous = this.#lastReplaced;
    return previous ? { outcome, previous, stored } : { outcome, stored };
  }

  /**
   * {@linkcode Store.merge} without its result object (a merge of each entry received
   * made one): the version stored, when applied, is {@linkcode Store.lastStored}.
   */
  apply(entry: Entry): MergeOutcome {
    const map = entry.section === "usr" ? this.#usr : this.#sys;
    const current = map.get(entry.key);
    if (current) {
      const c = compareVersions(entry, current);
      if (c < 0) return "stale";
      if (c === 0) return "duplicate";
      this.#remove(current);
    }
    // Always hash afresh: an entry built by spreading another one would carry its hashes.
    const stored = hashEntry(entry);
    this.#lastStored = stored;
    this.#lastReplaced = current;
    map.set(stored.key, stored);
    this.#tree.add(stored);
    if (stored.deleted) this.#tombstones.add(stored);
    else this.#live[stored.section]++;
    return "applied";
  }

  /**
   * The version stored by the last {@linkcode Store.merge} that applied one (a caller that
   * merged through another part finds it without looking the key up again); whether it is
   * still current is the caller's to check.
   */
  get lastStored(): StoredEntry | undefined {
    return this.#lastStored;
  }

  /**
   * Removes tombstones whose stamp is older than `horizon` (wall ms). Returns how many
   * were collected; with `into`, also appends them to it.
   */
  collectTombstones(horizon: number, into?: StoredEntry[]): number {
    let collected = 0;
    for (const t of this.#tombstones) {
      if (t.wall < horizon) {
        this.#remove(t);
        into?.push(t);
        collected++;
      }
    }
    return collected;
  }

  /** Live (not deleted) keys in a section. */
  liveCount(section: Section): number {
    return this.#live[section];
  }

  /** Tombstones held, in both sections. */
  get tombstoneCount(): number {
    return this.#tombstones.size;
  }

  /** Every version held (live entries and tombstones), in both sections. */
  get size(): number {
    return this.#tree.size;
  }

  /** Versions in one section, tombstones included, in insertion order. */
  versions(section: Section): IterableIterator<StoredEntry> {
    return (section === "usr" ? this.#usr : this.#sys).values();
  }

  /** Merkle digest of the whole store. */
  root(): NodeDigest {
    return this.#tree.root();
  }

  /** Merkle digest of one node. */
  node(level: number, index: number): NodeDigest {
    return this.#tree.node(level, index);
  }

  /** Merkle digests of one node's 16 children. */
  children(level: number, index: number): NodeDigest[] {
    return this.#tree.children(level, index);
  }

  /**
   * Merkle digests of one node's 16 children into `out`, without an object each (see
   * {@linkcode MerkleTree.childrenInto}). Returns `out`.
   */
  childrenInto(level: number, index: number, out: Uint32Array): Uint32Array {
    return this.#tree.childrenInto(level, index, out);
  }

  /** The versions under one Merkle node. */
  nodeEntries(level: number, index: number): Iterable<StoredEntry> {
    return this.#tree.items(level, index);
  }

  #remove(entry: StoredEntry): void {
    (entry.section === "usr" ? this.#usr : this.#sys).delete(entry.key);
    this.#tree.remove(entry);
    if (entry.deleted) this.#tombstones.delete(entry);
    else this.#live[entry.section]--;
  }
}
