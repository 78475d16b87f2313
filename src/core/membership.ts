/**
 * SWIM membership: who is in the cluster and whether they are alive, with incarnation
 * numbers so that a member can refute a false suspicion (Das et al., DSN 2002), and the
 * queue that piggybacks membership updates on other messages.
 *
 * @module
 */

import { MEMBER_STATUS_RANK, type MemberMessage, type MemberStatus } from "./messages.ts";

/** What one member knows about another (or itself). */
export interface MemberState {
  readonly id: string;
  address: string;
  incarnation: number;
  status: MemberStatus;
  /** When the status last changed, in local ms. */
  since: number;
  /** When a datagram last came from this member, in local ms (0 if never). */
  lastHeard: number;
  /** When a suspect member is declared dead, if not refuted first. */
  suspectDeadline: number;
  /** While suspect: when the suspicion started and the members that confirmed it. */
  suspicion: { readonly start: number; readonly by: Set<string> } | undefined;
}

/**
 * The largest incarnation: the largest integer the wire accepts. A member never goes past
 * it, so its refutations always decode (a forged claim at this value cannot push it into a
 * number every receiver drops).
 */
export const MAX_INCARNATION: number = Number.MAX_SAFE_INTEGER;

/**
 * Whether update `u` overrides what we know (`known`), by SWIM's precedence: a higher
 * incarnation wins; at equal incarnation, left > dead > suspect > alive.
 */
export function overrides(
  u: { incarnation: number; status: MemberStatus },
  known: MemberState,
): boolean {
  if (u.incarnation !== known.incarnation) return u.incarnation > known.incarnation;
  return MEMBER_STATUS_RANK[u.status] > MEMBER_STATUS_RANK[known.status];
}

/** The member table of one member, itself included. */
export class Membership {
  readonly self: MemberState;
  readonly #members = new Map<string, MemberState>();
  #live: MemberState[] | undefined;
  #suspects: MemberState[] | undefined;

  constructor(id: string, address: string, now: number) {
    this.self = {
      id,
      address,
      incarnation: 0,
      status: "alive",
      since: now,
      lastHeard: now,
      suspectDeadline: 0,
      suspicion: undefined,
    };
    this.#members.set(id, this.self);
  }

  /** A member by id, itself included. */
  get(id: string): MemberState | undefined {
    return this.#members.get(id);
  }

  /** Every member known, itself included, in the order they were learned. */
  all(): IterableIterator<MemberState> {
    return this.#members.values();
  }

  /** Members known, itself included (the N of the protocol's log N bounds). */
  get size(): number {
    return this.#members.size;
  }

  /** Other members that are alive or suspect: the ones worth talking to. */
  live(): readonly MemberState[] {
    if (!this.#live) {
      this.#live = [];
      for (const m of this.#members.values()) {
        if (m !== this.self && (m.status === "alive" || m.status === "suspect")) this.#live.push(m);
      }
    }
    return this.#live;
  }

  /** Other members that are suspect (usually none: cheap to scan on every tick). */
  suspects(): readonly MemberState[] {
    this.#suspects ??= this.live().filter((m) => m.status === "suspect");
    return this.#suspects;
  }

  /** Other members that are dead (not left): candidates for reconnection after a partition. */
  dead(): MemberState[] {
    return [...this.#members.values()].filter((m) => m.status === "dead");
  }

  /**
   * Applies an update about another member. Returns the member's state when the update
   * changed anything, `undefined` otherwise. Updates about ourselves are not applied here
   * (see {@linkcode Membership.refute}).
   *
   * `sender` is the member the update came from. At {@linkcode MAX_INCARNATION}, where no
   * higher incarnation can refute, a member's own word that it is alive overrides what
   * others said of it at that incarnation: otherwise one forged claim would keep it out
   * for good.
   */
  apply(u: MemberMessage, now: number, sender?: string): MemberState | undefined {
    if (u.id === this.self.id) return undefined;
    const known = this.#members.get(u.id);
    if (!known) {
      const m: MemberState = {
        id: u.id,
        address: u.address,
        incarnation: u.incarnation,
        status: u.status,
        since: now,
        lastHeard: 0,
        suspectDeadline: 0,
        suspicion: undefined,
      };
      this.#members.set(u.id, m);
      this.#live = this.#suspects = undefined;
      return m;
    }
    const saturated = sender === u.id && u.status === "alive" && known.status !== "alive" &&
      u.incarnation === MAX_INCARNATION && known.incarnation === MAX_INCARNATION;
    if (!overrides(u, known) && !saturated) return undefined;
    if (known.status !== u.status) {
      known.status = u.status;
      known.since = now;
      this.#live = this.#suspects = undefined;
    }
    // A suspicion is of one incarnation: a new status or incarnation starts afresh.
    known.suspectDeadline = 0;
    known.suspicion = undefined;
    known.incarnation = u.incarnation;
    known.address = u.address;
    return known;
  }

  /**
   * Answers an update about ourselves that says we are suspect, dead or left (or alive
   * at a higher incarnation than ours): bumps our incarnation above it, or to
   * {@linkcode MAX_INCARNATION} when it is there already. Returns whether the caller should
   * broadcast that we are alive.
   */
  refute(u: MemberMessage): boolean {
    if (u.id !== this.self.id || this.self.status === "left") return false;
    if (u.incarnation < this.self.incarnation) return false;
    if (u.status === "alive" && u.incarnation === this.self.incarnation) return false;
    this.self.incarnation = Math.min(u.incarnation + 1, MAX_INCARNATION);
    return true;
  }

  /** Forgets a member entirely. */
  forget(id: string): boolean {
    if (id === this.self.id) return false;
    this.#live = this.#suspects = undefined;
    return this.#members.delete(id);
  }

  /** Current update describing a member, to send to others. */
  update(m: MemberState): MemberMessage {
    return {
      type: "member",
      id: m.id,
      address: m.address,
      incarnation: m.incarnation,
      status: m.status,
    };
  }
}

interface Queued {
  readonly update: MemberMessage;
  remaining: number;
}

/**
 * Membership updates waiting to be piggybacked, each sent a bounded number of times
 * (like memberlist's transmit limit). A newer update about a member replaces the older.
 */
export class BroadcastQueue {
  readonly #queue = new Map<string, Queued>();

  /** Queues `update` to be sent `times` times. */
  push(update: MemberMessage, times: number): void {
    this.#queue.delete(update.id);
    this.#queue.set(update.id, { update, remaining: times });
  }

  /** Updates queued. */
  get size(): number {
    return this.#queue.size;
  }

  /**
   * Takes up to `max` updates to piggyback on a message to member `to`: the update
   * about `to` itself first, then the ones sent the fewest times so far.
   */
  take(max: number, to?: string): MemberMessage[] {
    if (this.#queue.size === 0 || max <= 0) return [];
    const picked: Queued[] = [];
    const own = to === undefined ? undefined : this.#queue.get(to);
    if (own) picked.push(own);
    const rest = [...this.#queue.values()].filter((q) => q !== own).sort((a, b) =>
      b.remaining - a.remaining
    );
    for (const q of rest) {
      if (picked.length >= max) break;
      picked.push(q);
    }
    for (const q of picked) {
      if (--q.remaining <= 0) this.#queue.delete(q.update.id);
    }
    return picked.map((q) => q.update);
  }
}
