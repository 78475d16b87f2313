/**
 * The encryption pipeline of one member: its keyring (replaced in call order by
 * {@linkcode SealingPipeline.setKeys}), the replay guard, and the two ordered chains:
 * received datagrams are opened in parallel but delivered in arrival order, and datagrams
 * to send are sealed in parallel but handed to the transport in order. With a synchronous
 * cipher (`node:crypto`: Node, Deno, Bun) a datagram is opened or sealed at once, unless
 * one before it still waits on a chain. Without keys it passes datagrams through unchanged.
 *
 * @module
 */

import type { DropReason } from "./codec.ts";
import {
  checkSealed,
  type KeyInput,
  Keyring,
  type Opened,
  ReplayGuard,
  SEAL_OVERHEAD,
} from "./crypto.ts";
import type { Wire } from "./wire.ts";

/** Received datagrams waiting to be decrypted at most; more are dropped as `overloaded`. */
export const MAX_PENDING_OPENS = 4096;

/** Options of {@linkcode SealingPipeline}. */
export interface SealingOptions {
  /** The member's wire: its cluster name, MTU and drop counters. */
  readonly wire: Wire;
  /** The keyring to start with; `undefined` for a plaintext cluster. */
  readonly keyring: Keyring | undefined;
  /** Sealed datagrams stamped further than this from `now()` are replays, in ms. */
  readonly replayWindowMs?: number;
  /** The member's clock, in ms since the epoch. */
  readonly now: () => number;
  /** Called with errors that have no caller to go to. */
  readonly onError: (error: unknown) => void;
  /** Received datagrams being opened at most. Default {@linkcode MAX_PENDING_OPENS}. */
  readonly maxPendingOpens?: number;
}

/** Seals what a member sends and opens what it receives, in order. */
export class SealingPipeline {
  readonly #wire: Wire;
  readonly #replay: ReplayGuard;
  readonly #now: () => number;
  readonly #onError: (error: unknown) => void;
  readonly #maxPendingOpens: number;
  #keyring: Keyring | undefined;
  #keysApplied: Promise<void> = Promise.resolve();
  /** Received datagrams still being opened. */
  #opening = 0;
  /** Received datagrams, delivered in arrival order once opened. */
  #inbound: Promise<void> = Promise.resolve();
  /** Datagrams to send, handed to the transport in order once sealed. */
  #outbound: Promise<void> = Promise.resolve();
  /** Datagrams to send still waiting on that chain. */
  #sealing = 0;
  #closed = false;
  /** Datagrams sealed or being sealed, by identity: one sent to several peers is sealed once. */
  readonly #sealed = new WeakMap<Uint8Array, Uint8Array | Promise<Uint8Array>>();

  /** A pipeline on `options.wire`, sealing with `options.keyring` if any. */
  constructor(options: SealingOptions) {
    this.#wire = options.wire;
    this.#keyring = options.keyring;
    this.#now = options.now;
    this.#onError = options.onError;
    this.#maxPendingOpens = options.maxPendingOpens ?? MAX_PENDING_OPENS;
    this.#replay = new ReplayGuard(
      options.replayWindowMs === undefined ? {} : { windowMs: options.replayWindowMs },
    );
  }

  /** Bytes sealing adds to each datagram: room the encoder must leave under the MTU. */
  get overhead(): number {
    return this.#keyring ? SEAL_OVERHEAD : 0;
  }

  /** Received datagrams still being opened. */
  get opening(): number {
    return this.#opening;
  }

  /**
   * Replaces the keys, the primary first; resolves once they are in use. Calls take effect
   * in the order they were made, whatever the time each key import takes. A call that
   * rejects (bad keys) changes nothing.
   */
  setKeys(keys: readonly KeyInput[]): Promise<void> {
    const creating = Keyring.create(keys);
    creating.catch(() => {}); // the caller gets the rejection through `applied`
    const applied = this.#keysApplied.then(() => creating).then((keyring) => {
      this.#keyring = keyring;
    });
    this.#keysApplied = applied.catch(() => {});
    return applied;
  }

  /**
   * Opens a received datagram and hands the plain datagram to `deliver`, in arrival order
   * (at once without keys). Refusals (not sealed, overloaded, unauthenticated, replayed)
   * are counted on the wire's drop counters and never delivered; those that say something
   * of the sender (all but `overloaded`) also go to `refused`. After
   * {@linkcode SealingPipeline.close}, nothing more is delivered.
   */
  open(
    data: Uint8Array,
    deliver: (datagram: Uint8Array, now: number) => void,
    refused?: (reason: DropReason, detail: string) => void,
  ): void {
    const keyring = this.#keyring;
    if (keyring === undefined) {
      deliver(data, this.#now());
      return;
    }
    const unsealed = checkSealed(data, this.#wire.mtu);
    if (unsealed) {
      this.#refuse(unsealed.reason, unsealed.detail, refused);
      return;
    }
    if (this.#opening >= this.#maxPendingOpens) {
      // More arrives than this member can decrypt: shed it now, like a full socket buffer,
      // rather than queue it until it is too old to be accepted anyway.
      this.#wire.drop("overloaded", `${this.#opening} datagrams still being decrypted`);
      return;
    }
    if (keyring.sync && this.#opening === 0) {
      // A synchronous cipher, and nothing received before still being opened: at once.
      this.#accept(keyring.openSync(data, this.#wire.cluster), deliver, refused);
      return;
    }
    // WebCrypto is async and may finish out of order: open at once, deliver in arrival
    // order. `open` never rejects; the catch guards the delivery itself.
    this.#opening++;
    const opening = keyring.open(data, this.#wire.cluster);
    opening.catch(() => {}); // handled below, maybe after this turn: not "unhandled"
    this.#inbound = this.#inbound.then(() => opening).then((opened) => {
      this.#opening--;
      this.#accept(opened, deliver, refused);
    }).catch((error) => this.#onError(error));
  }

  /** Counts a refusal on the wire's drop counters and tells `refused`. */
  #refuse(
    reason: DropReason,
    detail: string,
    refused: ((reason: DropReason, detail: string) => void) | undefined,
  ): void {
    this.#wire.drop(reason, detail);
    refused?.(reason, detail);
  }

  /** Delivers an opened datagram, unless closed, refused by the ring or replayed. */
  #accept(
    opened: Opened,
    deliver: (datagram: Uint8Array, now: number) => void,
    refused: ((reason: DropReason, detail: string) => void) | undefined,
  ): void {
    if (this.#closed) return;
    const now = this.#now();
    const refusal = opened.status === "dropped"
      ? opened
      : this.#replay.check(opened.nonce, opened.timestamp, now);
    if (refusal) this.#refuse(refusal.reason, refusal.detail, refused);
    else if (opened.status === "opened") deliver(opened.datagram, now);
  }

  /**
   * Seals a datagram and hands it to `send`, in the order of the calls (at once without
   * keys, or with a synchronous cipher and nothing waiting before it). Returns what `send`
   * returns, or a promise of it once sealed. The same datagram object given again (for
   * another peer) is sent as the same sealed bytes: give a peer a datagram object once.
   */
  seal(
    datagram: Uint8Array,
    send: (sealed: Uint8Array) => void | Promise<void>,
  ): void | Promise<void> {
    const keyring = this.#keyring;
    if (keyring === undefined) return send(datagram);
    // The same datagram (the same object) for several peers is sealed once: the same
    // sealed bytes go to each, and each receiver sees the nonce once.
    const cached = this.#sealed.get(datagram);
    if (keyring.sync && this.#sealing === 0 && !(cached instanceof Promise)) {
      // A synchronous cipher, and no datagram before still waiting: sealed and sent at once.
      let sealed = cached;
      if (sealed === undefined) {
        sealed = keyring.sealSync(datagram, this.#wire.cluster, this.#now());
        this.#sealed.set(datagram, sealed);
      }
      return send(sealed);
    }
    // Seal at once (in parallel), hand to the transport in order.
    let sealing: Promise<Uint8Array>;
    if (cached === undefined) {
      sealing = keyring.seal(datagram, this.#wire.cluster, this.#now());
      sealing.catch(() => {}); // handled below, maybe after this turn: not "unhandled"
      this.#sealed.set(datagram, sealing);
    } else sealing = Promise.resolve(cached);
    this.#sealing++;
    const handed = this.#outbound.then(() => sealing).then((sealed) => ({ sent: send(sealed) }));
    this.#outbound = handed.then(() => void this.#sealing--, () => void this.#sealing--);
    return handed.then(({ sent }) => sent);
  }

  /** Stops delivering: datagrams still being opened are dropped once opened. */
  close(): void {
    this.#closed = true;
  }
}
