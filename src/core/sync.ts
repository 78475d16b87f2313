/**
 * Merkle anti-entropy: the descent that finds exactly the entries two members disagree
 * on, one tree level per message.
 *
 * It is stateless: every message names the node it is about and carries the sender's
 * hashes for it, and the reply is computed from the receiver's tree as it is now. A lost
 * message ends that branch of the descent; the next round starts again from the root.
 *
 * ```
 * A: sync-root(hash)        ─►  B: equal → nothing (one datagram when in sync)
 *                               B: differs → sync-branch(0, 0, B's 16 child hashes)
 * A: for each differing child: sync-branch(child, A's children) or, when small,
 *    sync-leaf(child, A's entry hashes)
 * B: … one level deeper each way …
 * X: sync-leaf  ─►  Y: entries X lacks (full) + sync-want(hashes Y lacks)
 * X: sync-want  ─►  Y: those entries
 * ```
 *
 * @module
 */

import { hashHex, readLane, writeHash } from "./hash.ts";
import { FANOUT, MAX_LEVEL, type NodeDigest } from "./merkle.ts";
import type { Message } from "./messages.ts";
import type { Store, StoredEntry } from "./store.ts";

/** A node with at most this many entries is compared entry by entry. */
export const LEAF_MAX_ENTRIES = 8;

/** The opening message of an anti-entropy round. */
export function syncRoot(store: Store): Message {
  const root = store.root();
  const hash = new Uint8Array(8);
  writeHash(hash, 0, root.a, root.b);
  return { type: "sync-root", hash, count: root.count };
}

/** Lowercase hex of a store's Merkle root. */
export function rootHex(store: Store): string {
  const r = store.root();
  return hashHex(r.a, r.b);
}

function same(d: NodeDigest, bytes: Uint8Array, offset: number): boolean {
  return d.a === readLane(bytes, offset, 0) && d.b === readLane(bytes, offset, 1);
}

function isZero(bytes: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 8; i++) if (bytes[offset + i] !== 0) return false;
  return true;
}

function hashesOf(entries: Iterable<StoredEntry>): Uint8Array {
  const list = [...entries].sort((x, y) => x.ea - y.ea || x.eb - y.eb);
  const out = new Uint8Array(list.length * 8);
  list.forEach((e, i) => writeHash(out, i * 8, e.ea, e.eb));
  return out;
}

/** A set of 64-bit hashes, keyed by their first lane (no string building on the hot path). */
class HashSet64 {
  readonly #map = new Map<number, number[]>();

  static of(bytes: Uint8Array): HashSet64 {
    const set = new HashSet64();
    for (let o = 0; o < bytes.length; o += 8) set.add(readLane(bytes, o, 0), readLane(bytes, o, 1));
    return set;
  }

  add(a: number, b: number): void {
    const list = this.#map.get(a);
    if (!list) this.#map.set(a, [b]);
    else if (!list.includes(b)) list.push(b);
  }

  has(a: number, b: number): boolean {
    return this.#map.get(a)?.includes(b) ?? false;
  }

  *[Symbol.iterator](): Generator<[number, number]> {
    for (const [a, list] of this.#map) for (const b of list) yield [a, b];
  }
}

/** What this member says about one of its nodes: its children, or its entries when small. */
function describe(store: Store, level: number, index: number, count: number): Message {
  if (level === MAX_LEVEL || count <= LEAF_MAX_ENTRIES) {
    return { type: "sync-leaf", level, index, hashes: hashesOf(store.nodeEntries(level, index)) };
  }
  const children = new Uint8Array(FANOUT * 8);
  store.children(level, index).forEach((c, i) => writeHash(children, i * 8, c.a, c.b));
  return { type: "sync-branch", level, index, children };
}

/**
 * The replies to one anti-entropy message, computed from `store` as it is now. Entries
 * messages carry the versions the peer lacks; merging what comes back is the caller's.
 * Returns an empty list when there is nothing to say (for instance, equal roots).
 */
export function syncReply(store: Store, message: Message): Message[] {
  switch (message.type) {
    case "sync-root": {
      const root = store.root();
      if (same(root, message.hash, 0)) return [];
      if (message.count === 0) return [{ type: "entries", entries: [...store.nodeEntries(0, 0)] }];
      if (root.count === 0) {
        return [{ type: "sync-leaf", level: 0, index: 0, hashes: new Uint8Array(0) }];
      }
      return [describe(store, 0, 0, root.count)];
    }
    case "sync-branch": {
      const { level, index, children: theirs } = message;
      const out: Message[] = [];
      const entries: StoredEntry[] = [];
      const mine = store.children(level, index);
      for (let i = 0; i < FANOUT; i++) {
        const child = mine[i]!;
        if (same(child, theirs, i * 8)) continue;
        const childIndex = index * FANOUT + i;
        if (isZero(theirs, i * 8)) {
          // They hold nothing there: everything we hold is news to them.
          for (const e of store.nodeEntries(level + 1, childIndex)) entries.push(e);
        } else if (child.count === 0) {
          out.push({
            type: "sync-leaf",
            level: level + 1,
            index: childIndex,
            hashes: new Uint8Array(0),
          });
        } else {
          out.push(describe(store, level + 1, childIndex, child.count));
        }
      }
      if (entries.length) out.push({ type: "entries", entries });
      return out;
    }
    case "sync-leaf": {
      const theirs = HashSet64.of(message.hashes);
      const ours = new HashSet64();
      const entries: StoredEntry[] = [];
      for (const e of store.nodeEntries(message.level, message.index)) {
        ours.add(e.ea, e.eb);
        if (!theirs.has(e.ea, e.eb)) entries.push(e);
      }
      const wanted: [number, number][] = [];
      for (const [a, b] of theirs) if (!ours.has(a, b)) wanted.push([a, b]);
      const out: Message[] = [];
      if (entries.length) out.push({ type: "entries", entries });
      if (wanted.length) {
        wanted.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
        const hashes = new Uint8Array(wanted.length * 8);
        wanted.forEach(([a, b], i) => writeHash(hashes, i * 8, a, b));
        out.push({ type: "sync-want", level: message.level, index: message.index, hashes });
      }
      return out;
    }
    case "sync-want": {
      const wanted = HashSet64.of(message.hashes);
      const entries: StoredEntry[] = [];
      for (const e of store.nodeEntries(message.level, message.index)) {
        if (wanted.has(e.ea, e.eb)) entries.push(e);
      }
      return entries.length ? [{ type: "entries", entries }] : [];
    }
    default:
      return [];
  }
}
