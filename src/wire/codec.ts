/**
 * Messages to bytes and back. A datagram is a 4-byte header (magic "GK", protocol
 * version, kind) followed by a CBOR body:
 *
 * - kind 0, envelope: `[cluster, sender, ...messages]`, each message `[type, ...fields]`;
 * - kind 1, fragment: `[cluster, id, index, total, chunk]`, a slice of a kind-0 datagram
 *   too large for one datagram;
 * - kind 2, sealed: a kind-0 or kind-1 datagram encrypted with a cluster key (not CBOR;
 *   see `crypto.ts`).
 *
 * Decoding validates every field; anything off is refused with a reason, never thrown.
 * See PROTOCOL.md for the full layout.
 *
 * @module
 */

import {
  type Envelope,
  MEMBER_STATUS_RANK,
  MEMBER_STATUSES,
  type Message,
} from "../core/messages.ts";
import type { Entry } from "../core/store.ts";
import { isNode, MAX_LEVEL } from "../core/merkle.ts";
import { KEY_ID_BYTES, popcount16, STAMP_BYTES } from "../core/sync.ts";
import {
  entryFromArray,
  entryToArray,
  internedAt,
  internId,
  LayoutError,
  layoutString,
  layoutUint,
  MAX_ID_LENGTH,
  MAX_KEY_LENGTH,
} from "./_entry.ts";
import { concatBytes, decodeCbor, encodeCbor, encodeCborScratch } from "./cbor.ts";
import { slabBytes } from "./_slab.ts";

/** First two bytes of every datagram: "GK". */
export const MAGIC_0 = 0x47;
/** Second magic byte. */
export const MAGIC_1 = 0x4b;
/** Protocol version carried in byte 2. */
export const PROTOCOL_VERSION = 1;
/** Default largest datagram, in bytes: fits an Ethernet frame with IP/UDP headers. */
export const DEFAULT_MTU = 1400;
/** Header length: magic (2), version (1), kind (1). */
export const HEADER_BYTES = 4;

/** Datagram kinds (byte 3 of the header). */
export const Kind = { Envelope: 0, Fragment: 1, Sealed: 2 } as const;

/** Numeric type codes of the messages on the wire. */
export const MessageCode = {
  ping: 1,
  ack: 2,
  "ping-req": 3,
  member: 10,
  rumor: 20,
  entries: 21,
  tree: 22,
  ihave: 23,
  graft: 24,
  prune: 25,
  relay: 26,
  "sync-root": 30,
  "sync-branch": 31,
  "sync-leaf": 32,
  "sync-want": 33,
  "sync-nodes": 34,
  "sync-stamps": 35,
  "sync-pull": 36,
} as const satisfies Record<Message["type"], number>;

export { MAX_ID_LENGTH, MAX_KEY_LENGTH } from "./_entry.ts";

/** Why a datagram was refused. */
export type DropReason =
  | "oversized"
  | "truncated"
  | "bad-magic"
  | "bad-version"
  | "malformed"
  | "foreign-cluster"
  | "fragment-timeout"
  | "fragment-overflow"
  | "unauthenticated"
  | "replayed"
  | "plaintext"
  | "overloaded";

/** Every drop reason (the record's type makes the list complete). */
export const DROP_REASONS: readonly DropReason[] = Object.freeze(
  Object.keys(
    {
      "oversized": true,
      "truncated": true,
      "bad-magic": true,
      "bad-version": true,
      "malformed": true,
      "foreign-cluster": true,
      "fragment-timeout": true,
      "fragment-overflow": true,
      "unauthenticated": true,
      "replayed": true,
      "plaintext": true,
      "overloaded": true,
    } satisfies Record<DropReason, true>,
  ) as DropReason[],
);

/** A fragment of a large datagram. */
export interface Fragment {
  readonly cluster: string;
  readonly id: number;
  readonly index: number;
  readonly total: number;
  readonly chunk: Uint8Array;
}

/** Result of decoding one datagram. */
export type Decoded =
  | { readonly kind: "envelope"; readonly envelope: Envelope }
  | { readonly kind: "fragment"; readonly fragment: Fragment }
  | { readonly kind: "sealed"; readonly body: Uint8Array }
  | { readonly kind: "dropped"; readonly reason: DropReason; readonly detail: string };

// ---------------------------------------------------------------------------- encode

/** Ascending (index, data) pairs, each index but the first as the gap from the one before. */
function nodesToArray(nodes: readonly { index: number; data: Uint8Array }[]): unknown[] {
  return nodes.flatMap((n, i) => [i === 0 ? n.index : n.index - nodes[i - 1]!.index, n.data]);
}

/** `head` with the layout of each entry appended (one array: no spread of a mapped copy). */
function withEntries(head: unknown[], entries: readonly Entry[]): unknown[] {
  for (let i = 0; i < entries.length; i++) head.push(entryToArray(entries[i]!));
  return head;
}

/**
 * `head` with ascending sequence numbers appended as the first one and the gaps to the
 * next: small integers.
 */
function withSeqs(head: unknown[], seqs: readonly number[]): unknown[] {
  for (let i = 0; i < seqs.length; i++) head.push(i === 0 ? seqs[0]! : seqs[i]! - seqs[i - 1]!);
  return head;
}

function messageToArray(m: Message): unknown[] {
  const code = MessageCode[m.type];
  switch (m.type) {
    case "ping":
      return [code, m.seq, m.target];
    case "ack":
      return [code, m.seq];
    case "ping-req":
      return [code, m.seq, m.target, m.address];
    case "member":
      return m.by === undefined
        ? [code, m.id, m.address, m.incarnation, MEMBER_STATUS_RANK[m.status]]
        : [code, m.id, m.address, m.incarnation, MEMBER_STATUS_RANK[m.status], m.by];
    case "rumor":
      return withEntries([code, m.hop], m.entries);
    case "entries":
      return withEntries([code], m.entries);
    case "tree":
      return withEntries([code, m.origin, m.seq, m.hop], m.entries);
    case "ihave":
      return withSeqs([code, m.origin, m.hop], m.seqs);
    case "graft":
      return withSeqs([code, m.origin], m.seqs);
    case "prune":
      return [code, m.origin];
    case "relay":
      return [code, m.origin, m.seq, m.to];
    case "sync-root":
      return [code, m.hash, m.count];
    case "sync-branch":
      return [code, m.level, m.index, m.children];
    case "sync-leaf":
    case "sync-want":
      return [code, m.level, m.index, m.hashes];
    case "sync-nodes":
      // A node's data is self-delimiting (2 + the children its mask names): one byte string.
      return [
        code,
        m.salt,
        m.level,
        ...m.nodes.map((n, i) => i === 0 ? n.index : n.index - m.nodes[i - 1]!.index),
        concatBytes(m.nodes.map((n) => n.data)),
      ];
    case "sync-stamps":
    case "sync-pull":
      return [code, m.salt, m.level, ...nodesToArray(m.nodes)];
  }
}

/** CBOR-encodes one message. */
export function encodeMessage(m: Message): Uint8Array {
  return encodeCbor(messageToArray(m));
}

/** Bytes of a minimal CBOR head for `n` (an array's items, a text's bytes, an integer). */
function headBytes(n: number): number {
  return n < 0x18 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

/** CBOR major types, as the top bits of a head's first byte. */
const UNSIGNED = 0x00, BYTES = 0x40, TEXT = 0x60, ARRAY = 0x80;

/**
 * Writes the minimal CBOR head of `major` for `n` (0 to 2^32 - 1) at `o`; returns the offset
 * after it.
 */
function writeHead(out: Uint8Array, o: number, major: number, n: number): number {
  if (n < 0x18) {
    out[o] = major | n;
    return o + 1;
  }
  if (n < 0x100) {
    out[o] = major | 0x18;
    out[o + 1] = n;
    return o + 2;
  }
  if (n < 0x10000) {
    out[o] = major | 0x19;
    out[o + 1] = n >>> 8;
    out[o + 2] = n & 0xff;
    return o + 3;
  }
  out[o] = major | 0x1a;
  out[o + 1] = n >>> 24;
  out[o + 2] = (n >>> 16) & 0xff;
  out[o + 3] = (n >>> 8) & 0xff;
  out[o + 4] = n & 0xff;
  return o + 5;
}

/** The 4-byte header of a datagram of `kind`. */
export function header(kind: number): Uint8Array {
  return Uint8Array.of(MAGIC_0, MAGIC_1, PROTOCOL_VERSION, kind);
}

/**
 * Builds a kind-0 datagram from `count` already encoded messages, `body` back to back,
 * written once into one array (see `_slab.ts`: a datagram costs no buffer of its own).
 */
/** Bytes up to which {@linkcode envelopeDatagram} copies its body by a loop. */
const COPY_BY_LOOP = 512;

function envelopeDatagram(
  prefix: readonly Uint8Array[],
  body: Uint8Array,
  bodyEnd: number,
  count: number,
): Uint8Array {
  const items = count + prefix.length;
  let n = HEADER_BYTES + headBytes(items) + bodyEnd;
  for (let i = 0; i < prefix.length; i++) n += prefix[i]!.length;
  const out = slabBytes(n);
  out[0] = MAGIC_0;
  out[1] = MAGIC_1;
  out[2] = PROTOCOL_VERSION;
  out[3] = Kind.Envelope;
  let o = writeHead(out, HEADER_BYTES, ARRAY, items);
  // The cluster name and sender id, a few bytes each: copied by a loop, as the body below
  // (`set` was a tenth of the time of encoding a datagram).
  for (let i = 0; i < prefix.length; i++) {
    const p = prefix[i]!;
    for (let j = 0; j < p.length; j++) out[o + j] = p[j]!;
    o += p.length;
  }
  if (bodyEnd === body.length) out.set(body, o);
  else if (bodyEnd > COPY_BY_LOOP) out.set(body.subarray(0, bodyEnd), o);
  // A datagram's few hundred bytes: copied one by one, without a view made for the copy.
  else for (let i = 0; i < bodyEnd; i++) out[o + i] = body[i]!;
  return out;
}

/**
 * The encoded messages of the datagram being packed, back to back (a datagram is at most
 * 65,507 bytes): messages are encoded in cbor-x's own buffer and copied here, and the
 * datagram is written once from here.
 */
const batchBytes = new Uint8Array(65_536);

/** cbor-x's buffer (a Node `Buffer` where there is one) as a plain `Uint8Array`, kept. */
let encoderBuffer: Uint8Array | undefined;
let encoderView: Uint8Array = new Uint8Array(0);

function plainView(buffer: Uint8Array): Uint8Array {
  if (buffer !== encoderBuffer) {
    encoderBuffer = buffer;
    encoderView = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }
  return encoderView;
}

// ------------------------------------------------------- tree and ihave messages, by hand

/** What {@linkcode writeFast} returns for a message it leaves to cbor-x. */
const GENERAL = -1;

const batchView = new DataView(batchBytes.buffer);

/** `String.prototype.isWellFormed` where the runtime has it (ES2024). */
const isWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean })
  .isWellFormed;

/**
 * Writes a non-negative integer at `o` as cbor-x does: a minimal unsigned integer up to
 * 2^32 - 1, a float64 beyond. Returns the offset after it, or {@linkcode GENERAL} for any
 * other number (or no room left).
 */
function writeCount(out: Uint8Array, o: number, v: number): number {
  if (o + 9 > out.length) return GENERAL;
  if (v >>> 0 === v) return writeHead(out, o, UNSIGNED, v);
  if (!Number.isInteger(v) || v < 0) return GENERAL;
  out[o] = 0xfb;
  batchView.setFloat64(o + 1, v);
  return o + 9;
}

/**
 * Writes text `s` at `o` as cbor-x does: its UTF-8 (cbor-x encodes a lone surrogate of a
 * string under 64 units as 3 bytes, as here, and one of a longer string as U+FFFD: left to
 * it) after a minimal header. Returns the offset after it, or {@linkcode GENERAL}.
 */
function writeText(out: Uint8Array, o: number, s: string): number {
  const n = s.length;
  if (n >= 0x40 && !isWellFormed?.call(s)) return GENERAL;
  if (o + 5 + 3 * n > out.length) return GENERAL;
  // The header's size for n units; moved once the UTF-8 length is known, if it differs.
  const guess = headBytes(n);
  let p = o + guess;
  for (let i = 0; i < n; i++) {
    let c1 = s.charCodeAt(i), c2: number;
    if (c1 < 0x80) out[p++] = c1;
    else if (c1 < 0x800) {
      out[p++] = (c1 >> 6) | 0xc0;
      out[p++] = (c1 & 0x3f) | 0x80;
    } else if ((c1 & 0xfc00) === 0xd800 && ((c2 = s.charCodeAt(i + 1)) & 0xfc00) === 0xdc00) {
      c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (c2 & 0x03ff);
      i++;
      out[p++] = (c1 >> 18) | 0xf0;
      out[p++] = ((c1 >> 12) & 0x3f) | 0x80;
      out[p++] = ((c1 >> 6) & 0x3f) | 0x80;
      out[p++] = (c1 & 0x3f) | 0x80;
    } else {
      out[p++] = (c1 >> 12) | 0xe0;
      out[p++] = ((c1 >> 6) & 0x3f) | 0x80;
      out[p++] = (c1 & 0x3f) | 0x80;
    }
  }
  const length = p - o - guess;
  const size = headBytes(length);
  if (size !== guess) out.copyWithin(o + size, o + guess, p);
  writeHead(out, o, TEXT, length);
  return o + size + length;
}

/** Writes `data` at `o` as a byte string; returns the offset after it, or {@linkcode GENERAL}. */
function writeByteString(out: Uint8Array, o: number, data: Uint8Array): number {
  if (o + 5 + data.length > out.length) return GENERAL;
  o = writeHead(out, o, BYTES, data.length);
  for (let i = 0; i < data.length; i++) out[o++] = data[i]!;
  return o;
}

/**
 * Writes a tree, ihave, sync-root, sync-nodes, ping or ack message at `o` of `out` (the
 * packing buffer), the bytes cbor-x writes for `messageToArray(m)`, without the arrays of
 * `messageToArray` and `entryToArray` or cbor-x's walk over them: tree and ihave messages
 * are most of the datagrams of a busy cluster, and the others most of the rest.
 * Text, bytes, and integers from 0 (values of other types go to cbor-x: the message is then
 * left to it whole). Returns the offset after it, or {@linkcode GENERAL}.
 */
function writeFast(m: Message, out: Uint8Array, o: number): number {
  if (m.type === "ack") {
    o = writeHead(out, o, ARRAY, 2);
    out[o++] = MessageCode.ack;
    return writeCount(out, o, m.seq);
  }
  if (m.type === "ping") {
    o = writeHead(out, o, ARRAY, 3);
    out[o++] = MessageCode.ping;
    if ((o = writeCount(out, o, m.seq)) < 0) return GENERAL;
    return writeText(out, o, m.target);
  }
  if (m.type === "sync-root") {
    o = writeHead(out, o, ARRAY, 3);
    o = writeHead(out, o, UNSIGNED, MessageCode["sync-root"]);
    if ((o = writeByteString(out, o, m.hash)) < 0) return GENERAL;
    return writeCount(out, o, m.count);
  }
  if (m.type === "sync-nodes") {
    const nodes = m.nodes;
    o = writeHead(out, o, ARRAY, 4 + nodes.length);
    o = writeHead(out, o, UNSIGNED, MessageCode["sync-nodes"]);
    if ((o = writeCount(out, o, m.salt)) < 0 || (o = writeCount(out, o, m.level)) < 0) {
      return GENERAL;
    }
    let blob = 0;
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i]!;
      o = writeCount(out, o, i === 0 ? n.index : n.index - nodes[i - 1]!.index);
      if (o < 0) return GENERAL;
      blob += n.data.length;
    }
    // The nodes' data back to back, one byte string (see `messageToArray`).
    if (o + 5 + blob > out.length) return GENERAL;
    o = writeHead(out, o, BYTES, blob);
    for (let i = 0; i < nodes.length; i++) {
      const data = nodes[i]!.data;
      for (let j = 0; j < data.length; j++) out[o + j] = data[j]!;
      o += data.length;
    }
    return o;
  }
  if (m.type === "ihave") {
    const seqs = m.seqs;
    o = writeHead(out, o, ARRAY, 3 + seqs.length);
    out[o++] = MessageCode.ihave;
    if ((o = writeText(out, o, m.origin)) < 0 || (o = writeCount(out, o, m.hop)) < 0) {
      return GENERAL;
    }
    for (let i = 0; i < seqs.length; i++) {
      o = writeCount(out, o, i === 0 ? seqs[0]! : seqs[i]! - seqs[i - 1]!);
      if (o < 0) return GENERAL;
    }
    return o;
  }
  if (m.type !== "tree") return GENERAL;
  const entries = m.entries;
  o = writeHead(out, o, ARRAY, 4 + entries.length);
  out[o++] = MessageCode.tree;
  if (
    (o = writeText(out, o, m.origin)) < 0 || (o = writeCount(out, o, m.seq)) < 0 ||
    (o = writeCount(out, o, m.hop)) < 0
  ) return GENERAL;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (o + 32 > out.length) return GENERAL;
    out[o++] = e.deleted ? 0x85 : 0x86;
    out[o++] = (e.section === "sys" ? 1 : 0) | (e.deleted ? 2 : 0);
    if (
      (o = writeText(out, o, e.key)) < 0 || (o = writeCount(out, o, e.wall)) < 0 ||
      (o = writeCount(out, o, e.logical)) < 0 || (o = writeText(out, o, e.writer)) < 0
    ) return GENERAL;
    if (e.deleted) continue;
    const v = e.value;
    if (typeof v === "string") o = writeText(out, o, v);
    else if (typeof v === "number") o = writeCount(out, o, v);
    else return GENERAL;
    if (o < 0) return GENERAL;
  }
  return o;
}

/** Options for {@linkcode packDatagrams}. */
export interface PackOptions {
  readonly cluster: string;
  readonly sender: string;
  readonly mtu: number;
  /** Called for an id each time a message must be fragmented. */
  readonly nextFragmentId: () => number;
  /** The CBOR of `cluster` and `sender`, when the caller keeps it (it rarely changes). */
  readonly prefix?: readonly [Uint8Array, Uint8Array];
}

/**
 * Packs messages into as few datagrams of at most `mtu` bytes as it can, in order.
 * Rumor and entries messages too large for one datagram are split into several
 * messages; a single entry too large for one datagram is fragmented.
 */
export function packDatagrams(messages: readonly Message[], options: PackOptions): Uint8Array[] {
  const { mtu } = options;
  const prefix = options.prefix ?? [encodeCbor(options.cluster), encodeCbor(options.sender)];
  // Room for messages: the header, a worst-case (5-byte) array header and the prefix.
  const budget = mtu - HEADER_BYTES - 5 - prefix[0]!.length - prefix[1]!.length;
  if (budget < 64) {
    throw new RangeError(`MTU of ${mtu} bytes is too small for this cluster name and id`);
  }
  // One packing object and datagram list, kept: most calls make one datagram.
  pack = PACKING;
  pack.made = 0;
  pack.count = 0;
  pack.used = 0;
  pack.budget = budget;
  pack.prefix = prefix;
  pack.options = options;
  try {
    for (let i = 0; i < messages.length; i++) packOne(messages[i]!);
    flushPack();
    const made = pack.made, out = pack.out;
    const datagrams = made === 1 ? [out[0]!] : out.slice(0, made);
    for (let i = 0; i < made; i++) out[i] = EMPTY_BYTES; // not kept alive here
    return datagrams;
  } finally {
    pack.prefix = IDLE.prefix;
    pack.options = IDLE.options;
    pack = IDLE;
  }
}

/** A packing under way ({@linkcode packDatagrams} is synchronous: one at a time). */
interface Packing {
  /** The datagrams made, the first `made` of `out` (the array is kept from call to call). */
  readonly out: Uint8Array[];
  made: number;
  /** Messages in the datagram being filled, and their bytes in `batchBytes`. */
  count: number;
  used: number;
  budget: number;
  prefix: readonly Uint8Array[];
  options: PackOptions;
}

const IDLE: Packing = {
  out: [],
  made: 0,
  count: 0,
  used: 0,
  budget: 0,
  prefix: [],
  options: { cluster: "", sender: "", mtu: 0, nextFragmentId: () => 0 },
};
/** The packing of {@linkcode packDatagrams}, reused. */
const PACKING: Packing = { ...IDLE, out: [] };
let pack = IDLE;
const EMPTY_BYTES = new Uint8Array(0);

/** Adds a datagram made to the packing's list. */
function packed(datagram: Uint8Array): void {
  pack.out[pack.made++] = datagram;
}

function flushPack(): void {
  if (pack.count) packed(envelopeDatagram(pack.prefix, batchBytes, pack.used, pack.count));
  pack.count = 0;
  pack.used = 0;
}

function packOne(m: Message): void {
  const { budget } = pack;
  const end = m.type === "tree" || m.type === "ihave" || m.type === "sync-root" ||
      m.type === "sync-nodes" || m.type === "ack" || m.type === "ping"
    ? writeFast(m, batchBytes, pack.used)
    : GENERAL;
  if (end !== GENERAL && end - pack.used <= budget) {
    const length = end - pack.used;
    if (pack.used + length > budget) {
      // Too long for this datagram: it starts the next one.
      const at = pack.used;
      flushPack();
      batchBytes.copyWithin(0, at, at + length);
    }
    pack.used += length;
    pack.count++;
    return;
  }
  const encoded = encodeCborScratch(messageToArray(m));
  const length = encoded.end - encoded.start;
  if (length > budget) {
    if ((m.type === "rumor" || m.type === "entries") && m.entries.length > 1) {
      const half = m.entries.length >>> 1;
      packOne({ ...m, entries: m.entries.slice(0, half) });
      packOne({ ...m, entries: m.entries.slice(half) });
      return;
    }
    if (
      (m.type === "sync-nodes" || m.type === "sync-stamps" || m.type === "sync-pull") &&
      m.nodes.length > 1
    ) {
      const half = m.nodes.length >>> 1;
      packOne({ ...m, nodes: m.nodes.slice(0, half) });
      packOne({ ...m, nodes: m.nodes.slice(half) });
      return;
    }
    // A copy (`Buffer.slice` would not copy): the next encode writes over cbor-x's buffer.
    const bytes = plainView(encoded).slice(encoded.start, encoded.end);
    for (const f of fragment(envelopeDatagram(pack.prefix, bytes, bytes.length, 1), pack.options)) {
      packed(f);
    }
    return;
  }
  if (pack.used + length > budget) flushPack();
  const from = plainView(encoded);
  const used = pack.used;
  if (length <= 64) {
    // A short copy by hand: `subarray` would make a view.
    for (let i = 0, j = encoded.start; i < length; i++, j++) batchBytes[used + i] = from[j]!;
  } else batchBytes.set(from.subarray(encoded.start, encoded.end), used);
  pack.used += length;
  pack.count++;
}

/** Splits one oversized datagram into fragments of at most `mtu` bytes. */
export function fragment(datagram: Uint8Array, options: PackOptions): Uint8Array[] {
  const cluster = encodeCbor(options.cluster);
  // header, array(5), cluster, id (≤5), index (≤5), total (≤5), byte-string header (≤5)
  const chunkSize = options.mtu - HEADER_BYTES - 1 - cluster.length - 20;
  const total = Math.ceil(datagram.length / chunkSize);
  const id = options.nextFragmentId() >>> 0;
  const out: Uint8Array[] = [];
  for (let index = 0; index < total; index++) {
    const chunk = datagram.subarray(index * chunkSize, (index + 1) * chunkSize);
    out.push(
      concatBytes([header(Kind.Fragment), encodeCbor([options.cluster, id, index, total, chunk])]),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------- decode

function fail(detail: string): never {
  throw new LayoutError(detail);
}

const str = layoutString;
const uint = layoutUint;

function bytes(v: unknown, what: string, multipleOf: number, exact?: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length % multipleOf !== 0) {
    fail(`${what} is not a byte string of a multiple of ${multipleOf} bytes`);
  }
  if (exact !== undefined && v.length !== exact) fail(`${what} is not ${exact} bytes long`);
  return v;
}

function node(level: unknown, index: unknown): { level: number; index: number } {
  const l = uint(level, "level", 8);
  const i = uint(index, "index");
  if (!isNode(l, i)) fail(`node (${l}, ${i}) is not in the tree`);
  return { level: l, index: i };
}

/**
 * The inverse of `nodesToArray` at `level`: at least one pair, every index a node of that
 * level, ascending, and each data checked by `check`.
 */
function syncNodes(
  a: readonly unknown[],
  level: number,
  check: (data: Uint8Array) => void,
): { index: number; data: Uint8Array }[] {
  if (a.length === 0 || a.length % 2 !== 0) fail("sync nodes are not (index, data) pairs");
  const out: { index: number; data: Uint8Array }[] = [];
  for (let i = 0; i < a.length; i += 2) {
    const gap = uint(a[i], "index");
    if (i > 0 && gap === 0) fail("sync nodes are not ascending");
    const { index } = node(level, i === 0 ? gap : out[out.length - 1]!.index + gap);
    if (!(a[i + 1] instanceof Uint8Array)) fail("sync node data is not a byte string");
    const data = a[i + 1] as Uint8Array;
    check(data);
    out.push({ index, data });
  }
  return out;
}

/**
 * The nodes of a `sync-nodes` message: index gaps (as `nodesToArray`), then one byte string
 * of each node's 2-byte child mask and one byte per child it names, back to back.
 */
function nodeBlob(
  gaps: readonly unknown[],
  blob: unknown,
  level: number,
): { index: number; data: Uint8Array }[] {
  if (!(blob instanceof Uint8Array)) fail("sync-nodes data is not a byte string");
  const out: { index: number; data: Uint8Array }[] = [];
  let o = 0;
  for (let i = 0; i < gaps.length; i++) {
    const gap = uint(gaps[i], "index");
    if (i > 0 && gap === 0) fail("sync nodes are not ascending");
    const { index } = node(level, i === 0 ? gap : out[i - 1]!.index + gap);
    if (o + 2 > blob.length) fail("sync-nodes data is too short");
    const n = popcount16((blob[o]! << 8) | blob[o + 1]!);
    if (n === 0) fail("sync node has no child");
    if (o + 2 + n > blob.length) fail("sync-nodes data is too short");
    out.push({ index, data: blob.subarray(o, o + 2 + n) });
    o += 2 + n;
  }
  if (o !== blob.length) fail("sync-nodes data is longer than its nodes");
  return out;
}

function multipleOf(size: number, what: string, nonEmpty: boolean): (data: Uint8Array) => void {
  return (data) => {
    if (data.length % size !== 0) fail(`${what} is not a multiple of ${size} bytes`);
    if (nonEmpty && data.length === 0) fail(`${what} is empty`);
  };
}

/**
 * The inverse of `withSeqs`, of the items of `a` from `from` on: every gap at least 1,
 * every number a safe integer.
 */
function seqsFromArray(a: readonly unknown[], from: number): number[] {
  if (a.length - from > 4096) fail("more than 4096 sequence numbers");
  const out: number[] = [];
  let s = 0;
  for (let i = from; i < a.length; i++) {
    const d = uint(a[i], "seq");
    if (i > from && d === 0) fail("sequence numbers are not ascending");
    s = i === from ? d : s + d;
    if (!Number.isSafeInteger(s)) fail("seq is not a safe integer");
    out.push(s);
  }
  return out;
}

/**
 * The entries the items of `a` from `from` on hold (see `entryFromArray`), in an array of
 * exactly that length: a tree message keeps it 30 s (its cache), and an array grown by
 * `push` from empty reserves 17 slots.
 */
function entriesFrom(a: readonly unknown[], from: number): Entry[] {
  const out = new Array<Entry>(a.length - from);
  for (let i = from; i < a.length; i++) out[i - from] = entryFromArray(a[i]);
  return out;
}

/** Checks that message `a` has exactly `len` fields. */
function fields(a: readonly unknown[], len: number): void {
  if (a.length !== len) fail(`message of type ${a[0]} has ${a.length} fields, not ${len}`);
}

function decodeMessage(v: unknown): Message {
  if (!Array.isArray(v) || v.length === 0) fail("message is not a non-empty array");
  const a = v as unknown[];
  switch (a[0]) {
    case MessageCode.ping:
      fields(a, 3);
      return { type: "ping", seq: uint(a[1], "seq"), target: str(a[2], "target", MAX_ID_LENGTH) };
    case MessageCode.ack:
      fields(a, 2);
      return { type: "ack", seq: uint(a[1], "seq") };
    case MessageCode["ping-req"]:
      fields(a, 4);
      return {
        type: "ping-req",
        seq: uint(a[1], "seq"),
        target: str(a[2], "target", MAX_ID_LENGTH),
        address: str(a[3], "address", MAX_ID_LENGTH),
      };
    case MessageCode.member: {
      if (a.length !== 5 && a.length !== 6) {
        fail(`member message has ${a.length} fields, not 5 or 6`);
      }
      const m = {
        type: "member" as const,
        id: str(a[1], "member id", MAX_ID_LENGTH),
        address: str(a[2], "address", MAX_ID_LENGTH),
        incarnation: uint(a[3], "incarnation"),
        status: MEMBER_STATUSES[uint(a[4], "status", MEMBER_STATUSES.length - 1)]!,
      };
      return a.length === 6 ? { ...m, by: str(a[5], "suspecter", MAX_ID_LENGTH) } : m;
    }
    case MessageCode.rumor:
      if (a.length < 3) fail("rumor carries no entries");
      return {
        type: "rumor",
        hop: uint(a[1], "hop", 255),
        entries: entriesFrom(a, 2),
      };
    case MessageCode.tree:
      if (a.length < 5) fail("tree message carries no entries");
      return {
        type: "tree",
        origin: internId(str(a[1], "origin", MAX_ID_LENGTH)),
        seq: uint(a[2], "seq"),
        hop: uint(a[3], "hop", 255),
        entries: entriesFrom(a, 4),
      };
    case MessageCode.ihave:
      if (a.length < 4) fail("ihave message names no message");
      return {
        type: "ihave",
        origin: internId(str(a[1], "origin", MAX_ID_LENGTH)),
        hop: uint(a[2], "hop", 255),
        seqs: seqsFromArray(a, 3),
      };
    case MessageCode.graft:
      if (a.length < 3) fail("graft message names no message");
      return {
        type: "graft",
        origin: internId(str(a[1], "origin", MAX_ID_LENGTH)),
        seqs: seqsFromArray(a, 2),
      };
    case MessageCode.prune:
      fields(a, 2);
      return { type: "prune", origin: str(a[1], "origin", MAX_ID_LENGTH) };
    case MessageCode.relay:
      fields(a, 4);
      return {
        type: "relay",
        origin: internId(str(a[1], "origin", MAX_ID_LENGTH)),
        seq: uint(a[2], "seq"),
        to: str(a[3], "relay target", MAX_ID_LENGTH),
      };
    case MessageCode.entries:
      if (a.length < 2) fail("entries message carries no entries");
      return { type: "entries", entries: entriesFrom(a, 1) };
    case MessageCode["sync-root"]:
      fields(a, 3);
      return {
        type: "sync-root",
        hash: bytes(a[1], "root hash", 8, 8),
        count: uint(a[2], "count"),
      };
    case MessageCode["sync-branch"]:
      fields(a, 4);
      return {
        type: "sync-branch",
        ...node(a[1], a[2]),
        children: bytes(a[3], "children", 8, 128),
      };
    case MessageCode["sync-leaf"]:
      fields(a, 4);
      return { type: "sync-leaf", ...node(a[1], a[2]), hashes: bytes(a[3], "hashes", 8) };
    case MessageCode["sync-want"]:
      fields(a, 4);
      return { type: "sync-want", ...node(a[1], a[2]), hashes: bytes(a[3], "hashes", 8) };
    case MessageCode["sync-nodes"]: {
      if (a.length < 5) fail("sync-nodes message names no node");
      const level = uint(a[2], "level", MAX_LEVEL - 1);
      return {
        type: "sync-nodes",
        salt: uint(a[1], "salt", 0xffff),
        level,
        nodes: nodeBlob(a.slice(3, -1), a[a.length - 1], level),
      };
    }
    case MessageCode["sync-stamps"]: {
      if (a.length < 5) fail("sync-stamps message names no node");
      const level = uint(a[2], "level", MAX_LEVEL);
      return {
        type: "sync-stamps",
        salt: uint(a[1], "salt", 0xffff),
        level,
        nodes: syncNodes(a.slice(3), level, multipleOf(STAMP_BYTES, "stamps", false)),
      };
    }
    case MessageCode["sync-pull"]: {
      if (a.length < 5) fail("sync-pull message names no node");
      const level = uint(a[2], "level", MAX_LEVEL);
      return {
        type: "sync-pull",
        salt: uint(a[1], "salt", 0xffff),
        level,
        nodes: syncNodes(a.slice(3), level, multipleOf(KEY_ID_BYTES, "key ids", true)),
      };
    }
    default:
      return fail(`unknown message type ${String(a[0])}`);
  }
}

function dropped(reason: DropReason, detail: string): Decoded {
  return { kind: "dropped", reason, detail };
}

/** Why a datagram was refused, for the drop counters. */
export interface Refusal {
  readonly reason: DropReason;
  readonly detail: string;
}

/**
 * Checks the header every datagram starts with: at most `maxBytes` long, long enough for
 * a header, the magic and the protocol version. Returns the kind byte, or why it is refused.
 */
export function checkHeader(
  data: Uint8Array,
  maxBytes: number,
): { readonly kind: number } | Refusal {
  if (data.length > maxBytes) {
    return { reason: "oversized", detail: `${data.length} bytes exceeds ${maxBytes}` };
  }
  if (data.length < HEADER_BYTES) {
    return { reason: "truncated", detail: `${data.length} bytes is shorter than a header` };
  }
  if (data[0] !== MAGIC_0 || data[1] !== MAGIC_1) {
    return { reason: "bad-magic", detail: "not a Gossip KV datagram" };
  }
  if (data[2] !== PROTOCOL_VERSION) {
    return { reason: "bad-version", detail: `protocol version ${data[2]}` };
  }
  return KINDS[data[3]!]!;
}

/** The answers of {@linkcode checkHeader} that pass, one per kind byte: none made per datagram. */
const KINDS: readonly { readonly kind: number }[] = Array.from(
  { length: 256 },
  (_, kind) => Object.freeze({ kind }),
);

// ------------------------------------------------ tree and ihave datagrams, read by hand

/*
 * A datagram of tree and ihave messages only (most of a busy cluster's), or of sync-root,
 * sync-nodes, ping and ack messages (most of the rest, which cbor-x and the checks read
 * several times slower), is read here straight from its bytes into the messages, without
 * the arrays cbor-x builds for it and the checks' walk over them. Only the plainest form is
 * read: definite lengths, text in ASCII, integers as cbor-x writes them, values of text or
 * an integer; anything else (and anything the checks would refuse) is left to cbor-x and
 * the checks, from the start of the datagram, so the result is always theirs
 * (tests/wire_fast_test.ts and tests/wire_fast_sync_test.ts compare the two).
 */

/** What the readers below return for what they leave to cbor-x. */
const OTHER = -1;
let src: Uint8Array = new Uint8Array(0);
let at = 0;
const float64 = new DataView(new ArrayBuffer(8));

/** The argument of the item at `at` if of major type `major` (a length, an integer). */
function readHead(major: number): number {
  if (at >= src.length) return OTHER;
  const b = src[at]!;
  if (b >> 5 !== major) return OTHER;
  const info = b & 0x1f;
  if (info < 0x18) {
    at++;
    return info;
  }
  if (info === 0x18 && at + 2 <= src.length) {
    at += 2;
    return src[at - 1]!;
  }
  if (info === 0x19 && at + 3 <= src.length) {
    at += 3;
    return (src[at - 2]! << 8) | src[at - 1]!;
  }
  if (info === 0x1a && at + 5 <= src.length) {
    at += 5;
    return src[at - 4]! * 0x1000000 + ((src[at - 3]! << 16) | (src[at - 2]! << 8) | src[at - 1]!);
  }
  return OTHER;
}

/** An integer from 0 to `max`: unsigned, or a float64 (cbor-x writes those past 2^32). */
function readCount(max: number): number {
  if (src[at] === 0xfb && at + 9 <= src.length) {
    for (let i = 0; i < 8; i++) float64.setUint8(i, src[at + 1 + i]!);
    const v = float64.getFloat64(0);
    at += 9;
    return Number.isInteger(v) && v >= 0 && v <= max ? v : OTHER;
  }
  const v = readHead(0);
  return v <= max ? v : OTHER;
}

/**
 * Arrays of the character codes of a text being read, one per length up to 64, kept: no
 * view per text read, and `fromCharCode.apply` over an array of the text's own length took
 * two thirds of the time it took over one array whose length was set for each text (keys
 * and values of a few characters, measured on Deno).
 */
const charsOfLength: number[][] = Array.from(
  { length: 65 },
  (_, n) => new Array<number>(n).fill(0),
);
/** The character codes of a longer text. */
const chars: number[] = [];

/** Text in ASCII of `min` to `max` characters, or undefined. */
function readText(min: number, max: number): string | undefined {
  const n = readHead(3);
  if (n < min || n > max || at + n > src.length) return undefined;
  if (n === 1) return src[at]! < 0x80 ? String.fromCharCode(src[at++]!) : undefined;
  let codes = charsOfLength[n];
  if (codes === undefined) {
    codes = chars;
    chars.length = n;
  }
  for (let i = 0; i < n; i++) {
    const c = src[at + i]!;
    if (c >= 0x80) return undefined;
    codes[i] = c;
  }
  at += n;
  return String.fromCharCode.apply(null, codes);
}

/**
 * A member id in ASCII of 1 to {@linkcode MAX_ID_LENGTH} characters, interned (see
 * `internId`), or undefined. An id decoded lately is found by its bytes, without a string
 * made for it: every datagram names its sender, and each message its origin and writers.
 */
function readId(): string | undefined {
  const start = at;
  const n = readHead(3);
  if (n < 1 || n > MAX_ID_LENGTH || at + n > src.length) return undefined;
  const held = internedAt(src, at, n);
  if (held !== undefined) {
    at += n;
    return held;
  }
  at = start;
  const text = readText(1, MAX_ID_LENGTH);
  return text === undefined ? undefined : internId(text);
}

/** Whether the text at `at` is `s` (ASCII), moving past it if so. */
function skipText(s: string): boolean {
  const n = readHead(3);
  if (n !== s.length || at + n > src.length) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80 || src[at + i] !== c) return false;
  }
  at += n;
  return true;
}

function readEntry(): Entry | undefined {
  const n = readHead(4);
  const kind = readHead(0);
  if ((n !== 5 && n !== 6) || kind === OTHER || kind > 3) return undefined;
  const deleted = (kind & 2) !== 0;
  if (deleted !== (n === 5)) return undefined;
  const key = readText(1, MAX_KEY_LENGTH);
  if (key === undefined) return undefined;
  const wall = readCount(Number.MAX_SAFE_INTEGER);
  const logical = readCount(Number.MAX_SAFE_INTEGER);
  if (wall === OTHER || logical === OTHER) return undefined;
  const writer = readId();
  if (writer === undefined) return undefined;
  let value: unknown;
  if (!deleted) {
    value = src[at]! >> 5 === 3 ? readText(0, Infinity) : readHead(0);
    if (value === undefined || value === OTHER) return undefined;
  }
  return {
    section: kind & 1 ? "sys" : "usr",
    key,
    wall,
    logical,
    writer,
    deleted,
    value,
  };
}

/** A byte string of `min` to `max` bytes, copied (see `_slab.ts`), or undefined. */
function readBytes(min: number, max: number): Uint8Array | undefined {
  const n = readHead(2);
  if (n < min || n > max || at + n > src.length) return undefined;
  const out = slabBytes(n);
  for (let i = 0; i < n; i++) out[i] = src[at + i]!;
  at += n;
  return out;
}

/** A sync-root message of `n` items, its code read. */
function readSyncRoot(n: number): Message | undefined {
  if (n !== 3) return undefined;
  const hash = readBytes(8, 8);
  if (hash === undefined) return undefined;
  const count = readCount(Number.MAX_SAFE_INTEGER);
  return count === OTHER ? undefined : { type: "sync-root", hash, count };
}

/** The node indexes of the sync-nodes message being read (an array kept). */
const nodeIndexes: number[] = [];

/** A sync-nodes message of `n` items, its code read: as `nodeBlob` checks it. */
function readSyncNodes(n: number): Message | undefined {
  if (n < 5) return undefined;
  const salt = readCount(0xffff);
  const level = readCount(MAX_LEVEL - 1);
  if (salt === OTHER || level === OTHER) return undefined;
  const count = n - 4;
  nodeIndexes.length = count;
  for (let i = 0; i < count; i++) {
    const gap = readCount(Number.MAX_SAFE_INTEGER);
    if (gap === OTHER || (i > 0 && gap === 0)) return undefined;
    const index = i === 0 ? gap : nodeIndexes[i - 1]! + gap;
    if (!isNode(level, index)) return undefined;
    nodeIndexes[i] = index;
  }
  const blob = readBytes(0, src.length);
  if (blob === undefined) return undefined;
  const nodes = new Array<{ index: number; data: Uint8Array }>(count);
  let o = 0;
  for (let i = 0; i < count; i++) {
    if (o + 2 > blob.length) return undefined;
    const children = popcount16((blob[o]! << 8) | blob[o + 1]!);
    if (children === 0 || o + 2 + children > blob.length) return undefined;
    nodes[i] = { index: nodeIndexes[i]!, data: blob.subarray(o, o + 2 + children) };
    o += 2 + children;
  }
  return o === blob.length ? { type: "sync-nodes", salt, level, nodes } : undefined;
}

function readMessage(): Message | undefined {
  const n = readHead(4);
  const code = readHead(0);
  if (code === MessageCode.ack) {
    const seq = n === 2 ? readCount(Number.MAX_SAFE_INTEGER) : OTHER;
    return seq === OTHER ? undefined : { type: "ack", seq };
  }
  if (code === MessageCode.ping) {
    const seq = n === 3 ? readCount(Number.MAX_SAFE_INTEGER) : OTHER;
    const target = seq === OTHER ? undefined : readText(1, MAX_ID_LENGTH);
    return target === undefined ? undefined : { type: "ping", seq, target };
  }
  if (code === MessageCode["sync-root"]) return readSyncRoot(n);
  if (code === MessageCode["sync-nodes"]) return readSyncNodes(n);
  if (code !== MessageCode.tree && code !== MessageCode.ihave) return undefined;
  if (n < (code === MessageCode.tree ? 5 : 4)) return undefined;
  const origin = readId();
  if (origin === undefined) return undefined;
  if (code === MessageCode.ihave) {
    const hop = readCount(255);
    if (hop === OTHER || n - 3 > 4096) return undefined;
    const seqs = new Array<number>(n - 3);
    let s = 0;
    for (let i = 0; i < n - 3; i++) {
      const d = readCount(Number.MAX_SAFE_INTEGER);
      if (d === OTHER || (i > 0 && d === 0)) return undefined;
      s = i === 0 ? d : s + d;
      if (!Number.isSafeInteger(s)) return undefined;
      seqs[i] = s;
    }
    return { type: "ihave", origin, hop, seqs };
  }
  const seq = readCount(Number.MAX_SAFE_INTEGER);
  const hop = readCount(255);
  if (seq === OTHER || hop === OTHER) return undefined;
  const entries = new Array<Entry>(n - 4);
  for (let i = 0; i < n - 4; i++) {
    const e = readEntry();
    if (e === undefined) return undefined;
    entries[i] = e;
  }
  return { type: "tree", origin, seq, hop, entries };
}

/** The envelope of a kind-0 datagram read by hand (see above), or undefined. */
function readEnvelope(data: Uint8Array, cluster: string): Envelope | undefined {
  src = data;
  at = HEADER_BYTES;
  try {
    const n = readHead(4);
    if (n < 3 || !skipText(cluster)) return undefined;
    const sender = readId();
    if (sender === undefined) return undefined;
    const messages = new Array<Message>(n - 2);
    for (let i = 0; i < n - 2; i++) {
      const m = readMessage();
      if (m === undefined) return undefined;
      messages[i] = m;
    }
    return at === data.length ? { cluster, sender, messages } : undefined;
  } finally {
    src = EMPTY;
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Decodes one datagram of at most `maxBytes` as {@linkcode decodeDatagram} does, but every
 * datagram through cbor-x and the checks: the reference that the datagrams read by hand
 * are compared with (tests/wire_fast_test.ts).
 */
export function decodeDatagramByCbor(
  data: Uint8Array,
  cluster: string,
  maxBytes: number,
): Decoded {
  return decodeChecked(data, cluster, maxBytes);
}

/**
 * Decodes one datagram of at most `maxBytes`, checking magic, version, cluster and every
 * field. Never throws: refusals come back as `{ kind: "dropped", reason, detail }`.
 */
export function decodeDatagram(data: Uint8Array, cluster: string, maxBytes: number): Decoded {
  const r = decodeEnvelope(data, cluster, maxBytes);
  return "messages" in r ? { kind: "envelope", envelope: r } : r;
}

/**
 * Decodes one datagram as {@linkcode decodeDatagram} does, but returns the envelope itself,
 * without the result around it, when the datagram is one read by hand (most are): no object
 * made per datagram beyond what it holds. Anything else gets `decodeDatagram`'s result.
 */
export function decodeEnvelope(
  data: Uint8Array,
  cluster: string,
  maxBytes: number,
): Envelope | Decoded {
  if (checkHeader(data, maxBytes) === KINDS[Kind.Envelope]) {
    const envelope = readEnvelope(data, cluster);
    if (envelope) return envelope;
  }
  // Not an envelope, or one left to cbor-x and the checks (not read twice by hand).
  return decodeChecked(data, cluster, maxBytes);
}

/** Decodes one datagram through cbor-x and the checks (see {@linkcode decodeDatagramByCbor}). */
function decodeChecked(
  data: Uint8Array,
  cluster: string,
  maxBytes: number,
): Decoded {
  const header = checkHeader(data, maxBytes);
  if ("reason" in header) return { kind: "dropped", ...header };
  const kind = header.kind;
  if (kind === Kind.Sealed) return { kind: "sealed", body: data.subarray(HEADER_BYTES) };
  if (kind !== Kind.Envelope && kind !== Kind.Fragment) {
    return dropped("malformed", `unknown kind ${kind}`);
  }
  let body: unknown;
  try {
    body = decodeCbor(data.subarray(HEADER_BYTES));
  } catch (error) {
    const incomplete = (error as { incomplete?: boolean }).incomplete === true ||
      /end of|unexpected end|beyond/i.test(String((error as Error).message));
    return dropped(
      incomplete ? "truncated" : "malformed",
      `invalid CBOR: ${(error as Error).message}`,
    );
  }
  try {
    if (!Array.isArray(body) || body.length < 2) fail("body is not an array");
    const from = str(body[0], "cluster name", MAX_ID_LENGTH, true);
    if (from !== cluster) return dropped("foreign-cluster", `cluster ${JSON.stringify(from)}`);
    if (kind === Kind.Fragment) {
      if (body.length !== 5) fail("fragment is not [cluster, id, index, total, chunk]");
      const total = uint(body[3], "fragment total", 0xffff);
      const index = uint(body[2], "fragment index", total - 1);
      const chunk = bytes(body[4], "chunk", 1);
      if (chunk.length === 0) fail("fragment chunk is empty");
      return {
        kind: "fragment",
        fragment: {
          cluster: from,
          id: uint(body[1], "fragment id", 0xffff_ffff),
          index,
          total,
          chunk,
        },
      };
    }
    const sender = internId(str(body[1], "sender", MAX_ID_LENGTH));
    if (body.length === 2) fail("envelope carries no messages");
    const messages: Message[] = [];
    for (let i = 2; i < body.length; i++) messages.push(decodeMessage(body[i]));
    return { kind: "envelope", envelope: { cluster: from, sender, messages } };
  } catch (error) {
    if (error instanceof LayoutError) return dropped("malformed", error.message);
    throw error;
  }
}
