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

/** The two lanes of a key's hash, as {@linkcode keyLanes} computes them (kept). */
const lanes = new Uint32Array(2);

/**
 * Both lanes of a key's hash (the first is {@linkcode keyHash}) in one pass over the key,
 * into an array kept from call to call: read them before the next call.
 */
function keyLanes(section: Section, key: string): Uint32Array {
  const seed = section === "usr" ? 0 : 0x51;
  return hashStringTwice(key, LANE_A ^ seed, LANE_B ^ seed, lanes);
}

/** Adds the hashes to an entry, making it ready to be stored or compared by hash. */
export function hashEntry(entry: Entry): StoredEntry {
  const lanes = keyLanes(entry.section, entry.key);
  return withHashes(entry, lanes[0]!, lanes[1]!);
}

/** {@linkcode hashEntry} of an entry whose key hash lanes are `ka` and `kb`. */
function withHashes(entry: Entry, ka: number, kb: number): StoredEntry {
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

/**
 * The versions of one section by key hash: the map's key is a slot, 30 bits of the key's
 * hash (a small integer on every V8 build), and it holds the version of the one key there
 * or, for keys whose slots collide (rare), their versions in an array. A map keyed by the
 * key strings themselves made V8 hash every key decoded (a new string) and, for every
 * candidate of a probe, read a key string elsewhere in memory: the store's largest cost.
 */
type Slots = Map<number, StoredEntry | StoredEntry[]>;

/** The slot of the key whose first hash lane is `ka`. */
function slotOf(ka: number): number {
  return ka >>> 2;
}

/** The version of `key` among those a slot holds. */
function findIn(
  held: StoredEntry | StoredEntry[] | undefined,
  key: string,
): StoredEntry | undefined {
  if (held === undefined || !Array.isArray(held)) return held?.key === key ? held : undefined;
  for (let i = 0; i < held.length; i++) if (held[i]!.key === key) return held[i];
  return undefined;
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
  readonly #sys: Slots = new Map();
  readonly #usr: Slots = new Map();
  readonly #tombstones = new Set<StoredEntry>();
  readonly #live: Record<Section, number> = { sys: 0, usr: 0 };
  readonly #tree = new MerkleTree<StoredEntry>();
  #lastStored: StoredEntry | undefined;
  /** The version {@linkcode Store.lastStored} replaced, if any. */
  #lastReplaced: StoredEntry | undefined;

  /** The current version of a key, tombstones included. */
  get(section: Section, key: string): StoredEntry | undefined {
    const slots = section === "usr" ? this.#usr : this.#sys;
    return findIn(slots.get(slotOf(keyHash(section, key))), key);
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
    const slots = entry.section === "usr" ? this.#usr : this.#sys;
    // Always hash afresh: an entry built by spreading another one would carry its hashes.
    const lanes = keyLanes(entry.section, entry.key);
    const ka = lanes[0]!, kb = lanes[1]!;
    const slot = slotOf(ka);
    const held = slots.get(slot);
    const current = findIn(held, entry.key);
    if (current) {
      const c = compareVersions(entry, current);
      if (c < 0) return "stale";
      if (c === 0) return "duplicate";
      this.#remove(current);
    }
    const stored = withHashes(entry, ka, kb);
    this.#lastStored = stored;
    this.#lastReplaced = current;
    if (held === undefined) slots.set(slot, stored);
    else {
      // Another key in the slot, or the version just removed from it.
      const now = slots.get(slot);
      if (now === undefined) slots.set(slot, stored);
      else if (Array.isArray(now)) now.push(stored);
      else slots.set(slot, [now, stored]);
    }
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

  /**
   * Versions in one section, tombstones included, in insertion order (keys whose slots
   * collide, rare, together at the first one's place).
   */
  *versions(section: Section): IterableIterator<StoredEntry> {
    for (const held of (section === "usr" ? this.#usr : this.#sys).values()) {
      if (Array.isArray(held)) yield* held;
      else yield held;
    }
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
    const slots = entry.section === "usr" ? this.#usr : this.#sys;
    const slot = slotOf(entry.ka);
    const held = slots.get(slot);
    if (held === entry) slots.delete(slot);
    else if (Array.isArray(held)) {
      const i = held.indexOf(entry);
      if (i >= 0) held.splice(i, 1);
      if (held.length === 1) slots.set(slot, held[0]!);
    }
    this.#tree.remove(entry);
    if (entry.deleted) this.#tombstones.delete(entry);
    else this.#live[entry.section]--;
  }
}
