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
  /**
   * The address of the member whose relayed ack admitted this one, while it has not
   * answered us directly (see {@linkcode Membership.admit}); `undefined` once it has.
   */
  relayed?: string | undefined;
}

/**
 * The largest incarnation: the largest integer the wire accepts. A member never goes past
 * it, so its refutations always decode (a forged claim at this value cannot push it into a
 * number every receiver drops).
 */
export const MAX_INCARNATION: number = Number.MAX_SAFE_INTEGER;

/**
 * A member learned of but not yet heard from by a round trip: it is kept apart from the
 * member table (never probed, never an anti-entropy or broadcast partner, not in
 * `members()`) until it answers a ping sent to its address with an unguessable sequence
 * number. Without keys, anyone can name members; only those that answer get in.
 */
export interface Candidate {
  readonly id: string;
  address: string;
  incarnation: number;
  status: MemberStatus;
  /** The transport address the candidate was learned from (its own, when it wrote to us). */
  readonly source: string;
  /** The sequence number of the pings sent to it; its ack admits it. */
  readonly seq: number;
  /** Whether news of it is passed on once it is admitted (it came as a membership update). */
  relay: boolean;
  /**
   * A member already known, named at another address: moved there once that address
   * answers, instead of admitted. Until then it is reached at the address it has.
   */
  readonly move?: true;
  /** Pings sent so far. */
  pings: number;
  /** When the next ping is due, then when the candidate is dropped, in ms. */
  next: number;
}

/** Candidates held at most ({@linkcode Candidate}): a bound on what naming strangers costs. */
export const MAX_CANDIDATES = 1024;

/**
 * Candidates one transport address may have introduced and not yet seen answer: one source
 * cannot take the room that the others' introductions need.
 */
export const MAX_CANDIDATES_PER_SOURCE = 64;

/**
 * Members that one address may have vouched for (by relaying their ack, for members we
 * cannot reach directly, such as HTTP-only members behind a bridge) and that have not
 * answered us directly since: counted by address, as ids cost a stranger nothing.
 */
export const MAX_VOUCHED_PER_ADDRESS = 8;

/** Why {@linkcode Membership.propose} did not take a candidate. */
export type ProposeOutcome = "proposed" | "updated" | "known" | "full" | "ignored";

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
  readonly #candidates = new Map<string, Candidate>();
  readonly #candidatesBySource = new Map<string, number>();
  readonly #candidatesBySeq = new Map<number, string>();
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
   * (see {@linkcode Membership.refute}). The address of a member already known is not
   * changed: anyone can name another one; it moves once that address answers (see
   * {@linkcode Membership.propose} with `move`).
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

  /** Candidates waiting to answer ({@linkcode Candidate}), in the order they were learned. */
  candidates(): IterableIterator<Candidate> {
    return this.#candidates.values();
  }

  /** A candidate by id. */
  candidate(id: string): Candidate | undefined {
    return this.#candidates.get(id);
  }

  /** The candidate pinged with sequence number `seq`. */
  candidateBySeq(seq: number): Candidate | undefined {
    const id = this.#candidatesBySeq.get(seq);
    return id === undefined ? undefined : this.#candidates.get(id);
  }

  /** Members admitted on the word of the member at address `voucher`, not heard directly since. */
  vouchedBy(voucher: string): number {
    let n = 0;
    for (const m of this.#members.values()) if (m.relayed === voucher) n++;
    return n;
  }

  /**
   * Live members heard from directly: the anti-entropy partners (members we reach only
   * through another are no use as partners, and cannot crowd the others out). All live
   * members when none is.
   */
  partners(): readonly MemberState[] {
    const live = this.live();
    if (!live.some((m) => m.relayed !== undefined)) return live;
    const direct = live.filter((m) => m.relayed === undefined);
    return direct.length ? direct : live;
  }

  /**
   * Takes note of a member not in the table, named by update `u` in a datagram from transport
   * address `source` (`relay`: as a membership update, passed on once admitted): a new
   * candidate (`"proposed"`; the caller pings it with `seq`), news of
   * a candidate already held (`"updated"`), a member already known (`"known"`: use
   * {@linkcode Membership.apply}), no room (`"full"`: more than {@linkcode MAX_CANDIDATES}, or
   * {@linkcode MAX_CANDIDATES_PER_SOURCE} from `source`), or nothing to do (`"ignored"`: about
   * ourselves, or a member we never knew that is dead or left).
   *
   * With `move`, `u` names a member already known at another address: the candidate is that
   * move (`"ignored"` if the member is not known, or is known at that address already).
   */
  propose(
    u: MemberMessage,
    source: string,
    seq: number,
    next: number,
    relay = false,
    move = false,
  ): ProposeOutcome {
    if (u.id === this.self.id) return "ignored";
    const known = this.#members.get(u.id);
    if (move ? known === undefined || known.address === u.address : known !== undefined) {
      return move ? "ignored" : "known";
    }
    const held = this.#candidates.get(u.id);
    if (held) {
      if (!overrides(u, { incarnation: held.incarnation, status: held.status } as MemberState)) {
        return "updated";
      }
      if (u.status === "dead" || u.status === "left") {
        this.drop(held.id);
        return "ignored";
      }
      held.incarnation = u.incarnation;
      held.status = u.status;
      held.address = u.address;
      held.relay ||= relay;
      return "updated";
    }
    if (u.status === "dead" || u.status === "left") return "ignored";
    const fromSource = this.#candidatesBySource.get(source) ?? 0;
    if (this.#candidates.size >= MAX_CANDIDATES || fromSource >= MAX_CANDIDATES_PER_SOURCE) {
      return "full";
    }
    this.#candidates.set(u.id, {
      id: u.id,
      address: u.address,
      incarnation: u.incarnation,
      status: u.status,
      source,
      seq,
      relay,
      pings: 0,
      next,
      ...(move && { move: true as const }),
    });
    this.#candidatesBySource.set(source, fromSource + 1);
    this.#candidatesBySeq.set(seq, u.id);
    return "proposed";
  }

  /** Forgets a candidate. */
  drop(id: string): Candidate | undefined {
    const c = this.#candidates.get(id);
    if (!c) return undefined;
    this.#candidates.delete(id);
    if (this.#candidatesBySeq.get(c.seq) === id) this.#candidatesBySeq.delete(c.seq);
    const n = (this.#candidatesBySource.get(c.source) ?? 1) - 1;
    if (n > 0) this.#candidatesBySource.set(c.source, n);
    else this.#candidatesBySource.delete(c.source);
    return c;
  }

  /**
   * Admits a candidate that answered, itself or through the member at address `voucher`
   * (which relayed its ack): it joins the table as alive at the candidate's last known incarnation, heard
   * from at `now` (a move: the member known takes the candidate's address). Returns it, and the members that held its
   * address and are displaced: one address is one member (a restarted process with a new
   * id), so a stranger answering at one address of its own gets one place, however many
   * ids it names.
   */
  admit(
    id: string,
    now: number,
    voucher?: string,
  ): { member: MemberState; displaced: MemberState[]; relay: boolean } | undefined {
    const c = this.drop(id);
    const known = this.#members.get(id);
    if (!c || (c.move ? known === undefined : known !== undefined)) return undefined;
    const displaced: MemberState[] = [];
    for (const m of this.#members.values()) {
      if (m !== this.self && m !== known && m.address === c.address) displaced.push(m);
    }
    for (const m of displaced) this.forget(m.id);
    if (known !== undefined) {
      // A move: the member answered at its new address.
      known.address = c.address;
      known.relayed = voucher;
      known.lastHeard = now;
      this.#live = this.#suspects = undefined;
      return { member: known, displaced, relay: c.relay };
    }
    const member: MemberState = {
      id: c.id,
      address: c.address,
      incarnation: c.incarnation,
      status: "alive",
      since: now,
      lastHeard: now,
      suspectDeadline: 0,
      suspicion: undefined,
      relayed: voucher,
    };
    this.#members.set(id, member);
    this.#live = this.#suspects = undefined;
    return { member, displaced, relay: c.relay };
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
