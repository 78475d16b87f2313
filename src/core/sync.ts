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
 * Between two members that both speak it (their `sys` records say `sync: 2`), the descent
 * is compact: the member that answers the root draws a salt, and every node is described
 * by a mask of its non-empty children and one salted byte per child (`sync-nodes`), 16 to
 * 18 bytes where the full hashes take 128. A small node is described by its versions
 * (`sync-stamps`: key id and stamp of each entry), so the receiver sends the versions that
 * are newer on its side and pulls (`sync-pull`) those that are newer on the other: a key
 * that differs crosses once, in the right direction.
 *
 * ```
 * A: sync-root(hash)        ─►  B: differs → sync-nodes(salt, level 0, B's children)
 * A: sync-nodes(salt, level 1, A's children of each differing child), or sync-stamps
 * …
 * X: sync-stamps  ─►  Y: entries newer on Y (or missing on X) + sync-pull(keys newer on X)
 * X: sync-pull    ─►  Y: those entries
 * ```
 *
 * A salted byte is equal for two different nodes once in 256 times: that branch is missed
 * in this round, and the next round, with another salt, finds it.
 *
 * @module
 */

import { hashHex, readLane, writeHash } from "./hash.ts";
import { FANOUT, MAX_LEVEL, type NodeDigest } from "./merkle.ts";
import type { Message, SyncNodeData } from "./messages.ts";
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
 *
 * A root is answered by the compact descent when `compact` is given (the peer speaks it),
 * by the full one otherwise; every other message is answered in its own descent.
 */
export function syncReply(store: Store, message: Message, compact?: CompactOptions): Message[] {
  switch (message.type) {
    case "sync-root": {
      const root = store.root();
      if (same(root, message.hash, 0)) return [];
      if (compact) return compactRoot(store, message.count, compact.salt & (RETRY - 1));
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
    case "sync-nodes":
      return compactNodes(store, message);
    case "sync-stamps":
      return compactStamps(store, message);
    case "sync-pull":
      return compactPull(store, message);
    default:
      return [];
  }
}

// ------------------------------------------------------------------- compact descent

/** The revision of the descent a member speaks, as its `sys` record's `sync` field says. */
export const SYNC_PROTOCOL = 2;

/** The fields this member adds to its `sys` record to say which descent it speaks. */
export const SYNC_RECORD_FIELDS: Readonly<Record<string, unknown>> = Object.freeze({
  sync: SYNC_PROTOCOL,
});

/** Whether a member's `sys` record value says it speaks the compact descent. */
export function speaksCompactSync(record: unknown): boolean {
  const version = (record as { sync?: unknown } | null | undefined)?.sync;
  return typeof version === "number" && version >= SYNC_PROTOCOL;
}

/** In the compact descent, a node with at most this many entries is described by its versions. */
export const COMPACT_LEAF_MAX_ENTRIES = 2;

/**
 * Bytes of one version descriptor: key id (2), stamp (6: wall × 64 + counter, the wall up to
 * 2^42 − 1 ms, in the year 2109, and the counter up to 63, larger ones written as their
 * maximum), check (1).
 */
export const STAMP_BYTES = 9;

/** Bytes of a key id: a salted 16-bit hash of the key. */
export const KEY_ID_BYTES = 2;

const MAX_WALL = 2 ** 42 - 1;
const MAX_COUNTER = 63;
const EMPTY = new Uint8Array(0);

/**
 * The salt's top bit: set on a node described again, under another salt, after every child
 * (or every version) looked equal although the node differs. A node is described again once.
 */
export const RETRY = 0x8000;

/** What the member answering a root needs to open a compact descent. */
export interface CompactOptions {
  /** A random salt for the digests of this descent (its low 15 bits are used). */
  readonly salt: number;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A salted 32-bit digest of a 64-bit hash (a node's, a key's or an entry's). */
function salted(salt: number, a: number, b: number): number {
  return fmix(a ^ fmix(b ^ salt) ^ ((salt << 16) | (salt >>> 16)));
}

/** One salted byte of a node's 64-bit hash. */
export function digestByte(salt: number, a: number, b: number): number {
  return salted(salt, a, b) >>> 24;
}

/** How many children a node's 16-bit child mask names (its data is 2 bytes more). */
export function popcount16(mask: number): number {
  let n = 0;
  for (let m = mask; m; m &= m - 1) n++;
  return n;
}

/** A node's compact description: mask of non-empty children, one salted byte each. */
function nodeData(store: Store, level: number, index: number, salt: number): Uint8Array {
  const c = store.childrenInto(level, index, nodeDataDigests);
  let mask = 0;
  for (let i = 0; i < FANOUT; i++) if (c[3 * i + 2]! > 0) mask |= 1 << i;
  const out = new Uint8Array(2 + popcount16(mask));
  out[0] = mask >>> 8;
  out[1] = mask & 0xff;
  let p = 2;
  for (let i = 0; i < 3 * FANOUT; i += 3) {
    if (c[i + 2]! > 0) out[p++] = digestByte(salt, c[i]!, c[i + 1]!);
  }
  return out;
}

/**
 * The children's digests that {@linkcode nodeData} and {@linkcode compactNodes} read (see
 * `Store.childrenInto`), one array each: `compactNodes` calls `nodeData` as it reads its own.
 */
const nodeDataDigests = new Uint32Array(3 * FANOUT);
const compactDigests = new Uint32Array(3 * FANOUT);

/** A key's id in this descent: 16 bits of a salted hash of the key. */
function keyId(e: StoredEntry, salt: number): number {
  return salted(salt, e.ka, e.kb) >>> 16;
}

/** A version's check in this descent: 8 bits of a salted hash of the entry. */
function check(e: StoredEntry, salt: number): number {
  return salted(salt ^ 0x5bd1e995, e.ea, e.eb) >>> 24;
}

/** The version descriptors of the entries under a node, ordered by key id. */
function stampsData(entries: Iterable<StoredEntry>, salt: number): Uint8Array {
  const list = [...entries].map((e) => ({ e, id: keyId(e, salt) })).sort((x, y) => x.id - y.id);
  const out = new Uint8Array(list.length * STAMP_BYTES);
  const view = new DataView(out.buffer);
  list.forEach(({ e, id }, i) => {
    const o = i * STAMP_BYTES;
    const v = stampValue(e);
    view.setUint16(o, id);
    view.setUint16(o + 2, Math.floor(v / 0x1_0000_0000));
    view.setUint32(o + 4, v >>> 0);
    out[o + 8] = check(e, salt);
  });
  return out;
}

interface Descriptor {
  readonly stamp: number;
  readonly check: number;
}

/** A version's stamp as one number that orders like it (equal beyond the ranges). */
function stampValue(e: StoredEntry): number {
  return Math.min(e.wall, MAX_WALL) * 64 + Math.min(e.logical, MAX_COUNTER);
}

/** Their descriptors by key id (several when ids collide). */
function readDescriptors(data: Uint8Array): Map<number, Descriptor[]> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Map<number, Descriptor[]>();
  for (let o = 0; o + STAMP_BYTES <= data.length; o += STAMP_BYTES) {
    const id = view.getUint16(o);
    const d = {
      stamp: view.getUint16(o + 2) * 0x1_0000_0000 + view.getUint32(o + 4),
      check: data[o + 8]!,
    };
    const list = out.get(id);
    if (list) list.push(d);
    else out.set(id, [d]);
  }
  return out;
}

function idsData(ids: Set<number>): Uint8Array {
  const sorted = [...ids].sort((x, y) => x - y);
  const out = new Uint8Array(sorted.length * KEY_ID_BYTES);
  sorted.forEach((id, i) => {
    out[i * 2] = id >>> 8;
    out[i * 2 + 1] = id & 0xff;
  });
  return out;
}

function readIds(data: Uint8Array): Set<number> {
  const out = new Set<number>();
  for (let o = 0; o + 1 < data.length; o += 2) out.add((data[o]! << 8) | data[o + 1]!);
  return out;
}

/** Collects the compact replies of one step: nodes, leaves, pulls and entries. */
class Replies {
  readonly nodes: SyncNodeData[] = [];
  readonly stamps: SyncNodeData[] = [];
  readonly pulls: SyncNodeData[] = [];
  readonly entries: StoredEntry[] = [];
  /** Nodes of the message answered, described again under the retry salt (see `RETRY`). */
  readonly retries: SyncNodeData[] = [];

  /** How many replies there are so far: a node that adds none looked equal. */
  get size(): number {
    return this.nodes.length + this.stamps.length + this.pulls.length + this.entries.length;
  }

  /** Describes one of this member's nodes: by its versions when small, else by its children. */
  describe(store: Store, level: number, index: number, count: number, salt: number): void {
    if (level === MAX_LEVEL || count <= COMPACT_LEAF_MAX_ENTRIES) {
      this.stamps.push({ index, data: stampsData(store.nodeEntries(level, index), salt) });
    } else {
      this.nodes.push({ index, data: nodeData(store, level, index, salt) });
    }
  }

  /** The replies: `level` and `salt` are the next level's; retries are at `retryLevel`. */
  messages(
    level: number,
    salt: number,
    retry?: { type: "sync-nodes" | "sync-stamps"; level: number },
  ): Message[] {
    const out: Message[] = [];
    if (retry && this.retries.length) {
      out.push({ type: retry.type, salt: salt | RETRY, level: retry.level, nodes: this.retries });
    }
    if (this.entries.length) out.push({ type: "entries", entries: this.entries });
    if (this.nodes.length) out.push({ type: "sync-nodes", salt, level, nodes: this.nodes });
    if (this.stamps.length) out.push({ type: "sync-stamps", salt, level, nodes: this.stamps });
    if (this.pulls.length) out.push({ type: "sync-pull", salt, level, nodes: this.pulls });
    return out;
  }
}

/** The compact answer to a root that differs from ours. */
function compactRoot(store: Store, theirCount: number, salt: number): Message[] {
  const root = store.root();
  if (theirCount === 0) return [{ type: "entries", entries: [...store.nodeEntries(0, 0)] }];
  const r = new Replies();
  if (root.count === 0) r.stamps.push({ index: 0, data: EMPTY });
  else r.describe(store, 0, 0, root.count, salt);
  return r.messages(0, salt);
}

/** Compares their children of each node with ours, one level down. */
function compactNodes(store: Store, m: Extract<Message, { type: "sync-nodes" }>): Message[] {
  const { salt, level } = m;
  const r = new Replies();
  for (const node of m.nodes) {
    const theirs = node.data;
    const mask = (theirs[0]! << 8) | theirs[1]!;
    const mine = store.childrenInto(level, node.index, compactDigests);
    const before = r.size;
    let p = 2;
    for (let i = 0; i < FANOUT; i++) {
      const count = mine[3 * i + 2]!;
      const childIndex = node.index * FANOUT + i;
      if ((mask & (1 << i)) === 0) {
        // They hold nothing there: everything we hold is news to them.
        if (count > 0) {
          for (const e of store.nodeEntries(level + 1, childIndex)) r.entries.push(e);
        }
        continue;
      }
      const digest = theirs[p++];
      if (count === 0) r.stamps.push({ index: childIndex, data: EMPTY });
      else if (digestByte(salt, mine[3 * i]!, mine[3 * i + 1]!) !== digest) {
        r.describe(store, level + 1, childIndex, count, salt);
      }
    }
    if (r.size === before && (salt & RETRY) === 0) {
      // The node differs (that is why it was described), yet every child looked equal: a
      // salted byte matched by chance. Once per node, describe it again under another salt.
      r.retries.push({ index: node.index, data: nodeData(store, level, node.index, salt | RETRY) });
    }
  }
  return r.messages(level + 1, salt, { type: "sync-nodes", level });
}

/**
 * Sends what is newer here, pulls what is newer there. A key id or check equal by chance
 * may send a version that is not newer (the receiver's merge ignores it) or miss one for
 * this round (the next round, with another salt, finds it).
 */
function compactStamps(store: Store, m: Extract<Message, { type: "sync-stamps" }>): Message[] {
  const { salt } = m;
  const r = new Replies();
  for (const node of m.nodes) {
    const theirs = readDescriptors(node.data);
    const pull = new Set<number>();
    const sent = r.entries.length;
    for (const e of store.nodeEntries(m.level, node.index)) {
      const id = keyId(e, salt);
      const t = theirs.get(id)?.pop();
      if (!t) {
        r.entries.push(e);
        continue;
      }
      const order = stampValue(e) - t.stamp;
      if (order > 0) r.entries.push(e);
      else if (order < 0) pull.add(id);
      else if (check(e, salt) !== t.check) {
        // Equal stamps (by different writers, or beyond the descriptor's range): both cross,
        // and each side's merge keeps the winner.
        r.entries.push(e);
        pull.add(id);
      }
    }
    for (const [id, list] of theirs) if (list.length) pull.add(id);
    if (pull.size) r.pulls.push({ index: node.index, data: idsData(pull) });
    else if (r.entries.length === sent && (salt & RETRY) === 0) {
      // Nothing to send or pull for a node that differs: a key id or check matched by
      // chance. Once per node, describe it again under another salt.
      r.retries.push({
        index: node.index,
        data: stampsData(store.nodeEntries(m.level, node.index), salt | RETRY),
      });
    }
  }
  return r.messages(m.level, salt, { type: "sync-stamps", level: m.level });
}

/** The entries they pulled. */
function compactPull(store: Store, m: Extract<Message, { type: "sync-pull" }>): Message[] {
  const entries: StoredEntry[] = [];
  for (const node of m.nodes) {
    const ids = readIds(node.data);
    for (const e of store.nodeEntries(m.level, node.index)) {
      if (ids.has(keyId(e, m.salt))) entries.push(e);
    }
  }
  return entries.length ? [{ type: "entries", entries }] : [];
}
