/**
 * What the engine's parts share: identity, tuning, randomness, the member table, the store,
 * the counters and the one outbox. Each part owns the rest of its state.
 *
 * @module
 */

import type { EngineConfig } from "./config.ts";
import type { EngineCounters } from "./counters.ts";
import type { Membership, MemberState } from "./membership.ts";
import type { MemberStatus } from "./messages.ts";
import type { Outbox } from "./outbox.ts";
import type { Random } from "./random.ts";
import type { Entry, Store } from "./store.ts";

/** How a remote entry fared: merged, already held, older than what is held, or refused. */
export type RemoteOutcome = "applied" | "duplicate" | "stale" | "refused";

/** The state and services every part of the engine shares. */
export interface EngineContext {
  /** This member's id. */
  readonly id: string;
  /** This member's address. */
  readonly address: string;
  /** The engine's tuning. */
  readonly config: Readonly<EngineConfig>;
  /** The engine's only source of randomness. */
  readonly random: Random;
  /** The member table. */
  readonly membership: Membership;
  /** The replicated map. */
  readonly store: Store;
  /** Counters for metrics. */
  readonly counters: EngineCounters;
  /** Where every part queues what it sends. */
  readonly outbox: Outbox;
  /** Merges a remote entry (received from address `from`) under every rule of the store. */
  mergeRemote(e: Entry, from: string, now: number): RemoteOutcome;
  /** Reports that member `m` appeared (`previous` undefined) or changed status. */
  memberChanged(m: MemberState, previous: MemberStatus | undefined): void;
  /** Reports that member `id` left the table (what other parts hold of it goes too). */
  forgotten(id: string): void;
}
