/**
 * One member's end of the wire: packs outgoing messages into datagrams, and turns
 * incoming datagrams (fragments included) back into envelopes, counting every refusal.
 * Pure: time comes in as an argument.
 *
 * @module
 */

import type { Envelope, Message } from "../core/messages.ts";
import { concatBytes, encodeCbor } from "./cbor.ts";
import {
  decodeDatagram,
  decodeEnvelope,
  DEFAULT_MTU,
  type DropReason,
  type Fragment,
  packDatagrams,
  type PackOptions,
} from "./codec.ts";

/** Options for {@linkcode Wire}. */
export interface WireOptions {
  /** Cluster name; datagrams of any other cluster are refused. */
  readonly cluster: string;
  /** This member's id, written into every envelope. */
  readonly sender: string;
  /** Largest datagram sent or accepted, in bytes. Default 1,400. */
  readonly mtu?: number;
  /** Largest reassembled message accepted, in bytes. Default 8 MiB. */
  readonly maxMessageBytes?: number;
  /** Bytes of partial messages held at most, all senders together. Default 32 MiB. */
  readonly maxPendingBytes?: number;
  /** A partial message not completed within this many ms is dropped. Default 10 s. */
  readonly fragmentTimeoutMs?: number;
  /**
   * Partial messages held at most per sender address. Default 1,024: a busy peer on a lossy
   * link keeps many partials waiting for a lost fragment until `fragmentTimeoutMs`, and they
   * must not crowd out its next messages; `maxPendingBytes` bounds the memory whatever the
   * count.
   */
  readonly maxPartialsPerSource?: number;
}

/**
 * Bytes a partial message is charged beyond its chunks: its bookkeeping, and a slot per
 * expected fragment, so that fragment starts announcing many fragments cost what they hold.
 */
const PARTIAL_OVERHEAD = 128;
const SLOT_BYTES = 8;

/** What became of one incoming datagram. */
export type Received =
  | { readonly status: "envelope"; readonly envelope: Envelope; readonly bytes: number }
  | { readonly status: "pending" }
  | { readonly status: "dropped"; readonly reason: DropReason; readonly detail: string };

interface Partial {
  readonly from: string;
  readonly total: number;
  readonly chunks: (Uint8Array | undefined)[];
  received: number;
  bytes: number;
  readonly deadline: number;
}

/** Encoder and decoder of one member, with its reassembly buffers and drop counters. */
export class Wire {
  readonly cluster: string;
  readonly sender: string;
  readonly mtu: number;
  readonly maxMessageBytes: number;
  readonly maxPendingBytes: number;
  readonly fragmentTimeoutMs: number;
  readonly maxPartialsPerSource: number;
  /** In creation order, so in deadline order: expiry looks only at the front. */
  readonly #partials = new Map<string, Partial>();
  readonly #perSource = new Map<string, number>();
  readonly #drops = new Map<DropReason, number>();
  #pendingBytes = 0;
  #nextId = 0;
  /** The CBOR of the cluster name and sender id, written into every envelope. */
  readonly #prefix: readonly [Uint8Array, Uint8Array];
  #pack: PackOptions | undefined;

  constructor(options: WireOptions) {
    this.cluster = options.cluster;
    this.sender = options.sender;
    this.mtu = options.mtu ?? DEFAULT_MTU;
    this.maxMessageBytes = options.maxMessageBytes ?? 8 * 1024 * 1024;
    this.maxPendingBytes = options.maxPendingBytes ?? 32 * 1024 * 1024;
    this.fragmentTimeoutMs = options.fragmentTimeoutMs ?? 10_000;
    this.maxPartialsPerSource = options.maxPartialsPerSource ?? 1024;
    this.#prefix = [encodeCbor(this.cluster), encodeCbor(this.sender)];
    if (!Number.isInteger(this.mtu) || this.mtu < 256 || this.mtu > 65_507) {
      throw new RangeError(`MTU must be an integer from 256 to 65507, got ${this.mtu}`);
    }
  }

  /**
   * Packs messages into datagrams of at most `mtu - reserveBytes` bytes; an encrypted
   * cluster reserves room for sealing (`SEAL_OVERHEAD`), so sealed datagrams fit the MTU.
   */
  encode(messages: readonly Message[], reserveBytes = 0): Uint8Array[] {
    if (this.#pack?.mtu !== this.mtu - reserveBytes) {
      // Made once (a member reserves the same bytes every time), not per datagram.
      this.#pack = {
        cluster: this.cluster,
        sender: this.sender,
        mtu: this.mtu - reserveBytes,
        nextFragmentId: () => this.#nextId = (this.#nextId + 1) >>> 0,
        prefix: this.#prefix,
      };
    }
    return packDatagrams(messages, this.#pack);
  }

  /** Decodes one datagram from transport address `from`, received at time `now`. */
  decode(data: Uint8Array, from: string, now: number): Received {
    const r = this.receive(data, from, now);
    return "messages" in r ? { status: "envelope", envelope: r, bytes: data.length } : r;
  }

  /**
   * Decodes one datagram as {@linkcode Wire.decode} does, but returns a whole datagram's
   * envelope itself, without the result around it (a member's receive path: the envelope's
   * bytes are the datagram's).
   */
  receive(data: Uint8Array, from: string, now: number): Envelope | Received {
    this.expire(now);
    const decoded = decodeEnvelope(data, this.cluster, this.mtu);
    if ("messages" in decoded) return decoded;
    switch (decoded.kind) {
      case "envelope":
        return { status: "envelope", envelope: decoded.envelope, bytes: data.length };
      case "fragment":
        return this.#reassemble(decoded.fragment, from, now);
      case "sealed":
        return this.drop("unauthenticated", "sealed datagram, but this member has no cluster key");
      case "dropped":
        return this.drop(decoded.reason, decoded.detail);
    }
  }

  /** Counts a refusal and returns it as a result. */
  drop(reason: DropReason, detail: string): Received {
    this.#drops.set(reason, (this.#drops.get(reason) ?? 0) + 1);
    return { status: "dropped", reason, detail };
  }

  /** Datagrams refused so far, by reason. */
  get drops(): ReadonlyMap<DropReason, number> {
    return this.#drops;
  }

  /** Bytes held in partial messages. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Drops partial messages whose deadline has passed. Deadlines follow creation order, so
   * this stops at the first partial still in time: O(1) per call, amortised.
   */
  expire(now: number): void {
    for (const [key, p] of this.#partials) {
      if (p.deadline > now) break;
      this.#discard(key, p);
      this.drop("fragment-timeout", `message ${key} incomplete after ${this.fragmentTimeoutMs} ms`);
    }
  }

  #discard(key: string, p: Partial): void {
    this.#partials.delete(key);
    this.#pendingBytes -= p.bytes;
    const n = this.#perSource.get(p.from)! - 1;
    if (n === 0) this.#perSource.delete(p.from);
    else this.#perSource.set(p.from, n);
  }

  #reassemble(f: Fragment, from: string, now: number): Received {
    const key = `${from}#${f.id}`;
    let p = this.#partials.get(key);
    if (p && p.total !== f.total) {
      this.#discard(key, p);
      p = undefined;
    }
    if (!p) {
      if (f.total * f.chunk.length > this.maxMessageBytes + f.chunk.length) {
        return this.drop(
          "oversized",
          `message of ${f.total} fragments exceeds ${this.maxMessageBytes} bytes`,
        );
      }
      const held = this.#perSource.get(from) ?? 0;
      if (held >= this.maxPartialsPerSource) {
        return this.drop(
          "fragment-overflow",
          `${from} already has ${held} partial messages (maxPartialsPerSource)`,
        );
      }
      const overhead = PARTIAL_OVERHEAD + SLOT_BYTES * f.total;
      if (this.#pendingBytes + overhead + f.chunk.length > this.maxPendingBytes) {
        return this.drop(
          "fragment-overflow",
          `reassembly buffers full (${this.maxPendingBytes} bytes)`,
        );
      }
      p = {
        from,
        total: f.total,
        chunks: new Array(f.total),
        received: 0,
        bytes: overhead,
        deadline: now + this.fragmentTimeoutMs,
      };
      this.#partials.set(key, p);
      this.#perSource.set(from, held + 1);
      this.#pendingBytes += overhead;
    }
    if (p.chunks[f.index]) return { status: "pending" }; // duplicate
    if (this.#pendingBytes + f.chunk.length > this.maxPendingBytes) {
      this.#discard(key, p);
      return this.drop(
        "fragment-overflow",
        `reassembly buffers full (${this.maxPendingBytes} bytes)`,
      );
    }
    p.chunks[f.index] = f.chunk;
    p.received++;
    p.bytes += f.chunk.length;
    this.#pendingBytes += f.chunk.length;
    if (p.bytes > this.maxMessageBytes + PARTIAL_OVERHEAD + SLOT_BYTES * p.total) {
      this.#discard(key, p);
      return this.drop("oversized", `message exceeds ${this.maxMessageBytes} bytes`);
    }
    if (p.received < p.total) return { status: "pending" };
    this.#discard(key, p);
    const whole = concatBytes(p.chunks as Uint8Array[]);
    const decoded = decodeDatagram(whole, this.cluster, this.maxMessageBytes);
    if (decoded.kind === "envelope") {
      return { status: "envelope", envelope: decoded.envelope, bytes: whole.length };
    }
    if (decoded.kind === "dropped") {
      return this.drop(decoded.reason, `reassembled: ${decoded.detail}`);
    }
    return this.drop("malformed", "reassembled message is not an envelope");
  }
}
