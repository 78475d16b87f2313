/**
 * Whether a member has joined, and what it says until it has: the "not joined" warning with
 * backoff, the refused datagrams that explain why, and the callers waiting in
 * `GossipKV.joined()`. It owns the warning timer; the wording is `warnings.ts`'s.
 *
 * @module
 */

import type { Clock, Scheduler } from "./time.ts";
import type { DropReason } from "./wire/codec.ts";
import { formatMs, type GossipKVWarning, joinWarningDelay, RefusalLog } from "./warnings.ts";

/** What a {@linkcode JoinWatch} needs from its member. */
export interface JoinWatchOptions {
  /** The member's id, for error messages. */
  readonly id: string;
  /** The cluster name, for the refusal wording. */
  readonly cluster: string;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  /** The seed addresses other than the member's own, as they are now. */
  readonly seeds: () => string[];
  /** Where warnings go (never throws). */
  readonly warn: (warning: GossipKVWarning) => void;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/** Tracks one member's join, from its start until a member of its cluster answers. */
export class JoinWatch {
  readonly #o: JoinWatchOptions;
  readonly #refusals: RefusalLog;
  readonly #waiters = new Set<Waiter>();
  #joined = false;
  #closed = false;
  #startedAt = 0;
  #warnings = 0;
  #timer: unknown;

  constructor(options: JoinWatchOptions) {
    this.#o = options;
    this.#refusals = new RefusalLog(options.cluster);
  }

  /** Whether a member has answered, or there is nobody to join. */
  get joined(): boolean {
    return this.#joined || this.#o.seeds().length === 0;
  }

  /** The member started at `now`: warns after a while if no seed answers. */
  start(now: number): void {
    this.#startedAt = now;
    this.watch();
  }

  /** Until a member answers: warns that none has, after 3 s, then with backoff. */
  watch(): void {
    if (this.#joined || this.#closed || this.#timer !== undefined) return;
    if (this.#o.seeds().length === 0) return;
    this.#timer = this.#o.scheduler.setTimeout(() => {
      this.#timer = undefined;
      const seeds = this.#o.seeds();
      if (this.#joined || this.#closed || seeds.length === 0) return;
      this.#warnings++;
      const waited = this.#o.clock.now() - this.#startedAt;
      this.#o.warn(this.#refusals.noSeedAnswer(seeds, waited));
      this.watch();
    }, joinWarningDelay(this.#warnings));
  }

  /** A member of the cluster answered: this one has joined. */
  markJoined(): void {
    if (this.#joined) return;
    this.#joined = true;
    this.#o.scheduler.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const waiter of this.#waiters) waiter.resolve();
    this.#waiters.clear();
  }

  /** A datagram from `from` was refused (and counted): warns if it points at a mismatch. */
  refused(reason: DropReason, detail: string, from: string): void {
    const warning = this.#refusals.note(reason, detail, from, this.#o.clock.now());
    if (warning) this.#o.warn(warning);
  }

  /** Resolves once joined; rejects after `timeoutMs` saying why (`Infinity`: no limit). */
  wait(timeoutMs: number): Promise<void> {
    if (this.joined) return Promise.resolve();
    const { scheduler } = this.#o;
    return new Promise<void>((resolve, reject) => {
      const timer = timeoutMs === Infinity ? undefined : scheduler.setTimeout(() => {
        this.#waiters.delete(waiter);
        const why = this.#refusals.explain(this.#o.seeds());
        reject(
          new Error(`Member ${this.#o.id} did not join within ${formatMs(timeoutMs)}: ${why}`),
        );
      }, timeoutMs);
      const waiter: Waiter = {
        resolve: () => {
          scheduler.clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          scheduler.clearTimeout(timer);
          reject(error);
        },
      };
      this.#waiters.add(waiter);
    });
  }

  /** The member closed: no more warnings, and waiting callers are rejected. */
  close(): void {
    this.#closed = true;
    this.#o.scheduler.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const waiter of this.#waiters) {
      waiter.reject(new Error(`Member ${this.#o.id} closed before it joined`));
    }
    this.#waiters.clear();
  }
}
