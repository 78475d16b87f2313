/**
 * An incrementally maintained Merkle tree over the key-hash space.
 *
 * The tree has fan-out 16: a node at level `l` covers the keys whose 32-bit key hash
 * starts with the `4·l` bits of its index, down to level 8 where a node is one key hash.
 * A node's hash is the XOR of the 64-bit hashes of the entries below it. XOR is
 * commutative, so the hash of a node depends only on the set of entries under it, never
 * on how a member stores them, and an insert or removal updates each stored level in O(1).
 *
 * Only the top levels are stored densely (more of them as the tree grows); deeper nodes
 * are computed on demand from the entries of one level-3 bucket. Two members can compare
 * any node whatever their stored depth.
 *
 * @module
 */

/** Children per node. */
export const FANOUT = 16;
/** Key-hash bits consumed per level. */
export const BITS_PER_LEVEL = 4;
/** The deepest level: one node per 32-bit key hash. */
export const MAX_LEVEL = 8;
const BUCKET_LEVEL = 3;
const MAX_DENSE_DEPTH = 3;
/**
 * The next level is stored once the tree holds more than one item per `GROWTH` of its
 * nodes: level 3 (4,369 digests in all, 70 kB) from 1,024 items, whose versions take about
 * twice that. Stored, a level-2 node's children are read from it; else from the items of
 * 16 buckets, one cache miss each, which was most of the descent's reading of the tree.
 */
const GROWTH = 4;
/** Words per stored node: hash lanes a and b, count, padding. */
const STRIDE = 4;

/** What the tree needs of an entry: its key hash and its 64-bit entry hash. */
export interface MerkleItem {
  /** First lane of the key hash; its top bits place the item in the tree. */
  readonly ka: number;
  /** Entry hash, first lane. */
  readonly ea: number;
  /** Entry hash, second lane. */
  readonly eb: number;
}

/** The hash and size of one node. An empty node has hash (0, 0) and count 0. */
export interface NodeDigest {
  a: number;
  b: number;
  count: number;
}

/** Index of the node at `level` that holds key hash `ka`. */
export function nodeIndex(ka: number, level: number): number {
  return level === 0 ? 0 : ka >>> (32 - BITS_PER_LEVEL * level);
}

const WIDTH = Array.from({ length: MAX_LEVEL + 1 }, (_, l) => 2 ** (BITS_PER_LEVEL * l));
const OFFSET = WIDTH.map((w) => (w - 1) / (FANOUT - 1));

/** Number of nodes at `level`. */
export function levelWidth(level: number): number {
  return WIDTH[level] ?? 2 ** (BITS_PER_LEVEL * level);
}

/** Whether (level, index) names a node of the tree. */
export function isNode(level: number, index: number): boolean {
  return Number.isInteger(level) && level >= 0 && level <= MAX_LEVEL &&
    Number.isInteger(index) && index >= 0 && index < levelWidth(level);
}

/** Where level `level` starts in the dense arrays (levels 0 to 4 are stored at most). */
function levelOffset(level: number): number {
  return OFFSET[level]!;
}

/**
 * Items of one level-3 bucket, in insertion order: an array while small (a `Set` costs
 * ~280 bytes even for one item, and a sparse tree has about one item per bucket), a `Set`
 * past {@linkcode SMALL_BUCKET} items.
 */
type Bucket<T> = T[] | Set<T>;
const SMALL_BUCKET = 16;

/** The children's digests of {@linkcode MerkleTree.children}: a, b, count for each child. */
const childDigests = new Uint32Array(3 * FANOUT);

/** The Merkle index of a set of items. */
export class MerkleTree<T extends MerkleItem> {
  #depth = 0;
  /**
   * The stored digests, node by node: hash lanes a and b, count, and a word of padding, so
   * that a node is one aligned 16 bytes (its update one cache line, not one per column).
   */
  #d = new Uint32Array(STRIDE);
  readonly #buckets = new Map<number, Bucket<T>>();
  #size = 0;

  /** Number of items in the tree. */
  get size(): number {
    return this.#size;
  }

  /** Adds an item. Adding an item twice corrupts the tree: remove the old version first. */
  add(item: T): void {
    this.#toggle(item, 1);
    const bucket = nodeIndex(item.ka, BUCKET_LEVEL);
    const set = this.#buckets.get(bucket);
    if (!set) this.#buckets.set(bucket, [item]);
    else if (!Array.isArray(set)) set.add(item);
    else if (set.length < SMALL_BUCKET) set.push(item);
    else this.#buckets.set(bucket, new Set(set).add(item));
    this.#size++;
    if (this.#depth < MAX_DENSE_DEPTH && this.#size > levelWidth(this.#depth + 1) / GROWTH) {
      this.#rebuild(this.#depth + 1);
    }
  }

  /** Removes an item previously added. */
  remove(item: T): void {
    const bucket = nodeIndex(item.ka, BUCKET_LEVEL);
    const set = this.#buckets.get(bucket);
    if (!set) return;
    if (Array.isArray(set)) {
      const i = set.indexOf(item);
      if (i < 0) return;
      if (set.length === 1) this.#buckets.delete(bucket);
      else set.splice(i, 1);
    } else {
      if (!set.delete(item)) return;
      if (set.size === 0) this.#buckets.delete(bucket);
    }
    this.#toggle(item, -1);
    this.#size--;
  }

  /** Digest of the root. */
  root(): NodeDigest {
    const d = this.#d;
    return { a: d[0]!, b: d[1]!, count: d[2]! };
  }

  /** Digest of node (level, index). */
  node(level: number, index: number): NodeDigest {
    if (level <= this.#depth) {
      const d = this.#d, o = STRIDE * (levelOffset(level) + index);
      return { a: d[o]!, b: d[o + 1]!, count: d[o + 2]! };
    }
    let a = 0, b = 0, count = 0;
    for (const set of this.#bucketsUnder(level, index)) {
      for (const item of set) {
        if (level > BUCKET_LEVEL && nodeIndex(item.ka, level) !== index) continue;
        a ^= item.ea;
        b ^= item.eb;
        count++;
      }
    }
    return { a: a >>> 0, b: b >>> 0, count };
  }

  /** Digests of the 16 children of node (level, index), which must be above `MAX_LEVEL`. */
  children(level: number, index: number): NodeDigest[] {
    const acc = this.childrenInto(level, index, childDigests);
    const out: NodeDigest[] = [];
    for (let i = 0; i < 3 * FANOUT; i += 3) {
      out.push({ a: acc[i]!, b: acc[i + 1]!, count: acc[i + 2]! });
    }
    return out;
  }

  /**
   * {@linkcode MerkleTree.children} without an object per child: child `i`'s hash lanes
   * and count go to `out[3i]`, `out[3i + 1]` and `out[3i + 2]` (48 numbers). Returns `out`.
   */
  childrenInto(level: number, index: number, out: Uint32Array): Uint32Array {
    const first = index * FANOUT;
    if (level + 1 <= this.#depth) {
      const d = this.#d, o = STRIDE * (levelOffset(level + 1) + first);
      for (let i = 0; i < FANOUT; i++) {
        out[3 * i] = d[o + STRIDE * i]!;
        out[3 * i + 1] = d[o + STRIDE * i + 1]!;
        out[3 * i + 2] = d[o + STRIDE * i + 2]!;
      }
      return out;
    }
    // Accumulated as 32-bit integers (no number allocated per item), unsigned when read.
    const acc = out.fill(0);
    for (const set of this.#bucketsUnder(level, index)) {
      for (const item of set) {
        if (level > BUCKET_LEVEL && nodeIndex(item.ka, level) !== index) continue;
        const i = 3 * (nodeIndex(item.ka, level + 1) - first);
        acc[i]! ^= item.ea;
        acc[i + 1]! ^= item.eb;
        acc[i + 2]!++;
      }
    }
    return acc;
  }

  /**
   * The buckets that hold the items under node (level, index): for a node below the bucket
   * level, its one bucket, whose items the caller filters by `nodeIndex`.
   */
  #bucketsUnder(level: number, index: number): Bucket<T>[] {
    const out: Bucket<T>[] = [];
    if (level <= BUCKET_LEVEL) {
      const shift = BITS_PER_LEVEL * (BUCKET_LEVEL - level);
      const from = index << shift;
      const to = (index + 1) << shift;
      if (to - from > this.#buckets.size) {
        for (const [bucket, set] of this.#buckets) if (bucket >= from && bucket < to) out.push(set);
      } else {
        for (let bucket = from; bucket < to; bucket++) {
          const set = this.#buckets.get(bucket);
          if (set) out.push(set);
        }
      }
      return out;
    }
    const set = this.#buckets.get(index >>> (BITS_PER_LEVEL * (level - BUCKET_LEVEL)));
    if (set) out.push(set);
    return out;
  }

  /** The items under node (level, index). */
  *items(level: number, index: number): Generator<T> {
    if (level <= BUCKET_LEVEL) {
      const shift = BITS_PER_LEVEL * (BUCKET_LEVEL - level);
      const from = index << shift;
      const to = (index + 1) << shift;
      if (to - from > this.#buckets.size) {
        for (const [bucket, set] of this.#buckets) if (bucket >= from && bucket < to) yield* set;
      } else {
        for (let bucket = from; bucket < to; bucket++) {
          const set = this.#buckets.get(bucket);
          if (set) yield* set;
        }
      }
      return;
    }
    const set = this.#buckets.get(index >>> (BITS_PER_LEVEL * (level - BUCKET_LEVEL)));
    if (!set) return;
    for (const item of set) if (nodeIndex(item.ka, level) === index) yield item;
  }

  #toggle(item: T, delta: 1 | -1): void {
    const d = this.#d, ka = item.ka, ea = item.ea, eb = item.eb;
    d[0]! ^= ea;
    d[1]! ^= eb;
    d[2]! += delta;
    for (let level = 1; level <= this.#depth; level++) {
      const o = STRIDE * (OFFSET[level]! + (ka >>> (32 - BITS_PER_LEVEL * level)));
      d[o]! ^= ea;
      d[o + 1]! ^= eb;
      d[o + 2]! += delta;
    }
  }

  /**
   * Stores one more level: the levels above keep their digests, and the new one is summed
   * bucket by bucket (each bucket lies under one node of it), one XOR per item.
   */
  #rebuild(depth: number): void {
    const d = new Uint32Array(STRIDE * levelOffset(depth + 1));
    d.set(this.#d);
    const first = levelOffset(depth), shift = BITS_PER_LEVEL * (BUCKET_LEVEL - depth);
    // Callbacks, not `for … of`: this runs once per level, mostly before it is optimized,
    // and the interpreter allocates a result object per step of an iterator.
    const sum = (item: T, o: number): void => {
      d[o]! ^= item.ea;
      d[o + 1]! ^= item.eb;
      d[o + 2]!++;
    };
    this.#buckets.forEach((set, bucket) => {
      const o = STRIDE * (first + (bucket >>> shift));
      if (Array.isArray(set)) { for (let i = 0; i < set.length; i++) sum(set[i]!, o); }
      else set.forEach((item) => sum(item, o));
    });
    this.#depth = depth;
    this.#d = d;
  }
}
