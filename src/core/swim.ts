/**
 * SWIM failure detection: probes, indirect probes and their relays, suspicion (with the
 * timeout rule of `suspicion.ts`), refutation, and reconnection to dead members. Owns the
 * probe in flight, the probe order, the relays, the sequence numbers and their timers.
 *
 * A probe fails on a tick that comes on time. When this member's own timers run late (an
 * event loop busy with a burst of data), the acks may be waiting, unread, in its socket:
 * the verdict waits as long again as the tick was late (in all up to
 * {@linkcode MAX_LATE_FACTOR} probe periods), and the target is not suspected for it.
 *
 * @module
 */

import type { EngineContext } from "./context.ts";
import { type Candidate, MAX_VOUCHED_PER_ADDRESS, type MemberState } from "./membership.ts";
import type { MemberMessage, PingReqMessage } from "./messages.ts";
import { sample, shuffle } from "./random.ts";
import { suspicionTimeout } from "./suspicion.ts";

/** Pings sent to a candidate before it is dropped. */
const CANDIDATE_PINGS = 3;

interface Probe {
  readonly seq: number;
  readonly target: MemberState;
  readonly sentAt: number;
  indirect: boolean;
  acked: boolean;
  /** How late (ms) this member's timers ran while the probe was in flight. */
  late: number;
}

/** A probe's verdict waits this many probe periods at most for late timers. */
export const MAX_LATE_FACTOR = 4;
/** A tick later than this (ms) is late: the event loop was busy. */
const LATE_MS = 20;

interface Relay {
  readonly requester: string;
  readonly seq: number;
  readonly expires: number;
}

/** The SWIM part of the engine. */
export class Swim {
  readonly #ctx: EngineContext;
  #seq = 0;
  #probe: Probe | undefined;
  #probeOrder: MemberState[] = [];
  readonly #relays = new Map<number, Relay>();
  #nextProbeAt: number;
  #nextReconnectAt: number;
  #nextCandidateAt = Infinity;

  /** Draws the first probe time at random, to spread the rounds of a cluster started at once. */
  constructor(ctx: EngineContext, now: number) {
    this.#ctx = ctx;
    this.#nextProbeAt = now + Math.floor(ctx.random() * ctx.config.probeIntervalMs);
    this.#nextReconnectAt = now + ctx.config.reconnectIntervalMs;
  }

  /** Queues a membership update to piggyback, as many times as the cluster's size calls for. */
  broadcast(update: MemberMessage): void {
    const { config, membership } = this.#ctx;
    this.#ctx.outbox.broadcast(
      update,
      config.retransmitMult * Math.ceil(Math.log10(membership.size + 1)),
    );
  }

  /**
   * Takes note of a member learned of from transport address `source` (by an update, a
   * `sys` record, or its own datagram): a candidate, pinged at its address, that joins the
   * table once it answers (see `Candidate` in membership.ts). Returns whether it is held.
   * With `move`, `u` names a known member at another address: it moves there once that
   * address answers, so that no third party can send a member's traffic elsewhere.
   */
  propose(u: MemberMessage, source: string, now: number, relay = false, move = false): boolean {
    const { config, counters, membership } = this.#ctx;
    // A random sequence number: only a member that receives the ping can answer it.
    const seq = Math.floor(this.#ctx.random() * 0x1_0000_0000);
    const outcome = membership.propose(u, source, seq, now, relay, move);
    if (outcome === "full") counters.candidatesRefused++;
    if (outcome !== "proposed") return outcome === "updated";
    counters.candidatesProposed++;
    this.#pingCandidate(membership.candidate(u.id)!, now);
    this.#nextCandidateAt = Math.min(this.#nextCandidateAt, now + config.probeTimeoutMs);
    return true;
  }

  /** Bookkeeping for every envelope: the sender is alive, and learns if we think otherwise. */
  heardFrom(sender: string, from: string, now: number): void {
    const { membership, outbox } = this.#ctx;
    const m = membership.get(sender);
    if (!m) {
      // A newcomer (or a stranger naming itself): introduce ourselves, and admit it once it
      // answers a ping at the address it wrote from.
      if (membership.candidate(sender) === undefined) {
        const hello: MemberMessage = {
          type: "member",
          id: sender,
          address: from,
          incarnation: 0,
          status: "alive",
        };
        if (this.propose(hello, from, now)) {
          outbox.send(from, membership.update(membership.self));
        }
      }
      return;
    }
    m.lastHeard = now;
    if (m.status !== "alive") {
      // It is talking, so it is up: tell it what we believe, so that it refutes.
      outbox.send(from, membership.update(m));
    }
  }

  /** A direct probe: answer if it is meant for us. */
  onPing(seq: number, target: string, from: string): void {
    if (target === this.#ctx.id) this.#ctx.outbox.send(from, { type: "ack", seq });
  }

  /** An ack: admits a candidate, ends our probe, or is relayed to the member that asked. */
  onAck(seq: number, sender: string, now: number): void {
    const { membership } = this.#ctx;
    const c = membership.candidateBySeq(seq);
    if (c && c.pings > 0) {
      // Its own ack, or one relayed by a member heard from directly, within what that one
      // may vouch for: a stranger admitted cannot vouch for a crowd of others.
      const voucher = sender === c.id ? undefined : membership.get(sender);
      if (
        voucher !== undefined &&
        (voucher.status !== "alive" || voucher.relayed !== undefined ||
          membership.vouchedBy(voucher.address) >= MAX_VOUCHED_PER_ADDRESS)
      ) return;
      if (sender !== c.id && voucher === undefined) return;
      const admitted = membership.admit(c.id, now, voucher?.address);
      if (admitted) {
        this.#ctx.counters.candidatesAdmitted++;
        for (const d of admitted.displaced) {
          const previous = d.status;
          d.status = "dead";
          this.#ctx.forgotten(d.id);
          this.#ctx.memberChanged(d, previous);
        }
        if (!c.move) this.#ctx.memberChanged(admitted.member, undefined);
        if (admitted.relay) this.broadcast(membership.update(admitted.member));
      }
      return;
    }
    const p = this.#probe;
    if (p && p.seq === seq) {
      p.acked = true;
      this.#probe = undefined;
      p.target.lastHeard = now;
      if (sender === p.target.id) p.target.relayed = undefined;
      return;
    }
    const relay = this.#relays.get(seq);
    if (relay) {
      this.#relays.delete(seq);
      this.#ctx.outbox.send(relay.requester, { type: "ack", seq: relay.seq });
    }
  }

  /** A request to probe a member for the member at `from`. */
  onPingReq(m: PingReqMessage, from: string, now: number): void {
    // Only to a member known here, at the address known here: a forged ping-req must not
    // make this member send to whatever address it names (reflection).
    const { membership } = this.#ctx;
    const target = membership.get(m.target);
    if (!target || target === membership.self || target.address !== m.address) return;
    const seq = this.#nextSeq();
    this.#relays.set(seq, {
      requester: from,
      seq: m.seq,
      expires: now + this.#ctx.config.probeIntervalMs,
    });
    this.#ctx.outbox.send(target.address, { type: "ping", seq, target: m.target });
  }

  /** A membership update from `sender` (at address `from`). */
  onMember(u: MemberMessage, sender: string, from: string, now: number): void {
    const { membership, outbox } = this.#ctx;
    if (u.id === this.#ctx.id) {
      if (membership.refute(u)) {
        this.#ctx.counters.refutations++;
        const alive = membership.update(membership.self);
        this.broadcast(alive);
        outbox.send(from, alive);
        for (const peer of sample(this.#ctx.random, membership.live(), this.#ctx.config.fanout)) {
          outbox.send(peer.address, alive, peer.id);
        }
      } else if (u.status !== "alive" && membership.self.status !== "left") {
        // Stale news of our death (we already refuted it): set the sender straight.
        outbox.send(from, membership.update(membership.self));
      }
      return;
    }
    const before = membership.get(u.id);
    if (!before) {
      this.propose(u, from, now, true);
      return;
    }
    const previous = before.status;
    const changed = membership.apply(u, now, sender);
    if (!changed) {
      if (
        u.status === "suspect" && before?.status === "suspect" &&
        before.incarnation === u.incarnation
      ) {
        this.#confirmSuspicion(before, u.by ?? sender, now);
      }
      return;
    }
    if (changed.address !== u.address && (u.status === "alive" || u.status === "suspect")) {
      // Named at another address: it moves there once that address answers for it.
      this.propose(u, from, now, true, true);
    } else {
      this.broadcast(u);
    }
    if (changed.status === "suspect") this.#confirmSuspicion(changed, u.by ?? sender, now);
    if (previous !== changed.status) this.#ctx.memberChanged(changed, previous);
  }

  /**
   * Runs the probe round, the suspicion deadlines and the candidates due at `now`. Returns
   * the member a probe round pinged on this tick, if any (anti-entropy's root may ride along).
   */
  tick(now: number): MemberState | undefined {
    const probed = this.#tickProbe(now);
    this.#tickSuspicions(now);
    if (now >= this.#nextCandidateAt) this.#tickCandidates(now);
    return probed;
  }

  /** When the next probe round is due. */
  get nextProbeAt(): number {
    return this.#nextProbeAt;
  }

  /** Pings a candidate (see {@linkcode Swim.propose}). */
  #pingCandidate(c: Candidate, now: number): void {
    const { membership, outbox, random } = this.#ctx;
    c.pings++;
    c.next = now + this.#ctx.config.probeTimeoutMs;
    outbox.send(c.address, { type: "ping", seq: c.seq, target: c.id });
    if (c.pings === 1) return;
    // Not answered yet: also ask a member heard from directly, which relays only to a member
    // it knows at that address (a member we cannot reach, behind a bridge, say).
    const helpers = membership.partners().filter((m) =>
      m.status === "alive" && m.relayed === undefined && m.id !== c.id
    );
    // The member that named it knows it best; and one other, at random.
    const introducer = helpers.find((m) => m.address === c.source);
    const others = helpers.filter((m) => m !== introducer);
    const asked = [...(introducer ? [introducer] : []), ...sample(random, others, 1)];
    for (const h of asked) {
      outbox.send(h.address, {
        type: "ping-req",
        seq: c.seq,
        target: c.id,
        address: c.address,
      }, h.id);
    }
  }

  /**
   * Candidates that did not answer: pinged once more a probe timeout after the first ping
   * (one may be lost), dropped a probe period after the second. A member dropped so comes
   * back as a candidate when it is named again.
   */
  #tickCandidates(now: number): void {
    const { config, counters, membership } = this.#ctx;
    let next = Infinity;
    for (const c of [...membership.candidates()]) {
      if (c.next <= now) {
        if (c.pings >= CANDIDATE_PINGS) {
          membership.drop(c.id);
          counters.candidatesDropped++;
          continue;
        }
        this.#pingCandidate(c, now);
        if (c.pings >= CANDIDATE_PINGS) c.next = now + config.probeIntervalMs;
      }
      next = Math.min(next, c.next);
    }
    this.#nextCandidateAt = next;
  }

  /** Pings a random dead member when due, so that partitions heal. */
  tickReconnect(now: number): void {
    if (now < this.#nextReconnectAt) return;
    this.#nextReconnectAt = now + this.#ctx.config.reconnectIntervalMs;
    const dead = this.#ctx.membership.dead();
    if (dead.length) {
      const m = dead[Math.floor(this.#ctx.random() * dead.length)]!;
      this.#ctx.outbox.send(m.address, { type: "ping", seq: this.#nextSeq(), target: m.id }, m.id);
    }
  }

  /** Forgets the relays whose probe period ended. */
  expireRelays(now: number): void {
    for (const [seq, r] of this.#relays) if (r.expires <= now) this.#relays.delete(seq);
  }

  /** When SWIM next has work to do. */
  nextWakeAt(): number {
    let t = Math.min(this.#nextProbeAt, this.#nextReconnectAt, this.#nextCandidateAt);
    const p = this.#probe;
    if (p && !p.acked) {
      const { probeIntervalMs, probeTimeoutMs } = this.#ctx.config;
      const at = p.sentAt + p.late;
      t = Math.min(t, p.indirect ? at + probeIntervalMs : p.sentAt + probeTimeoutMs);
    }
    const suspects = this.#ctx.membership.suspects();
    for (let i = 0; i < suspects.length; i++) {
      const deadline = suspects[i]!.suspectDeadline;
      if (deadline) t = Math.min(t, deadline);
    }
    return t;
  }

  #nextSeq(): number {
    return this.#seq = (this.#seq + 1) % 0x1_0000_0000;
  }

  /** Starts (or confirms) a suspicion of `m` by member `by`, and sets its deadline. */
  #confirmSuspicion(m: MemberState, by: string, now: number): void {
    m.suspicion ??= { start: now, by: new Set() };
    m.suspicion.by.add(by);
    const config = this.#ctx.config;
    m.suspectDeadline = m.suspicion.start + suspicionTimeout({
      members: this.#ctx.membership.size,
      confirmations: m.suspicion.by.size - 1,
      mult: config.suspicionMult,
      maxMult: config.suspicionMaxMult,
      probeIntervalMs: config.probeIntervalMs,
    });
  }

  /** Our probe of `m` failed: suspect it, or confirm a suspicion we heard of. */
  #suspect(m: MemberState, now: number): void {
    if (m.status !== "alive" && m.status !== "suspect") return;
    const id = this.#ctx.id;
    if (m.status === "suspect" && m.suspicion?.by.has(id)) return;
    this.#ctx.counters.suspicions++;
    const u: MemberMessage = {
      type: "member",
      id: m.id,
      address: m.address,
      incarnation: m.incarnation,
      status: "suspect",
      by: id,
    };
    if (m.status === "alive") {
      this.#ctx.membership.apply(u, now);
      this.#ctx.memberChanged(m, "alive");
    }
    // An independent confirmation shortens everyone's timeout (Lifeguard): spread it.
    this.#confirmSuspicion(m, id, now);
    this.broadcast(u);
    // Tell the suspect first: it is the one that can refute.
    this.#ctx.outbox.send(m.address, u, m.id);
  }

  #tickSuspicions(now: number): void {
    const membership = this.#ctx.membership;
    // Most ticks find no suspect: no copy of the list for them.
    if (membership.suspects().length === 0) return;
    for (const m of [...membership.suspects()]) {
      if (m.suspectDeadline && now >= m.suspectDeadline) {
        const u: MemberMessage = {
          type: "member",
          id: m.id,
          address: m.address,
          incarnation: m.incarnation,
          status: "dead",
        };
        membership.apply(u, now);
        this.#ctx.memberChanged(m, "suspect");
        this.broadcast(u);
      }
    }
  }

  #tickProbe(now: number): MemberState | undefined {
    const { config, membership, outbox, random } = this.#ctx;
    const p = this.#probe;
    if (p && !p.acked) {
      if (!p.indirect && now >= p.sentAt + config.probeTimeoutMs) {
        p.indirect = true;
        const helpers = sample(
          random,
          membership.live().filter((m) => m !== p.target && m.status === "alive"),
          config.indirectChecks,
        );
        for (const h of helpers) {
          outbox.send(h.address, {
            type: "ping-req",
            seq: p.seq,
            target: p.target.id,
            address: p.target.address,
          }, h.id);
        }
        // A second direct ping: with loss, the first may simply have been dropped.
        outbox.send(
          p.target.address,
          { type: "ping", seq: p.seq, target: p.target.id },
          p.target.id,
        );
      }
      const verdict = p.sentAt + p.late + config.probeIntervalMs;
      const late = now - verdict, room = MAX_LATE_FACTOR * config.probeIntervalMs - p.late;
      if (now < verdict) {
        // Not yet.
      } else if (late > LATE_MS && room > late) {
        // This tick is late: the acks may be unread yet. Wait as long again.
        p.late += Math.min(room, 2 * late);
      } else {
        this.#probe = undefined;
        this.#ctx.counters.probesFailed++;
        if (membership.get(p.target.id) === p.target) this.#suspect(p.target, now);
      }
    }
    if (now < this.#nextProbeAt) return undefined;
    this.#nextProbeAt = now + config.probeIntervalMs;
    if (this.#probe) return undefined;
    const target = this.#nextProbeTarget();
    if (!target) return undefined;
    const seq = this.#nextSeq();
    this.#probe = { seq, target, sentAt: now, indirect: false, acked: false, late: 0 };
    this.#ctx.counters.probes++;
    outbox.send(target.address, { type: "ping", seq, target: target.id }, target.id);
    return target;
  }

  /** Round-robin over a shuffled list of live members (SWIM's bounded detection time). */
  #nextProbeTarget(): MemberState | undefined {
    const membership = this.#ctx.membership;
    for (;;) {
      if (this.#probeOrder.length === 0) {
        this.#probeOrder = shuffle(this.#ctx.random, [...membership.live()]);
        if (this.#probeOrder.length === 0) return undefined;
      }
      const m = this.#probeOrder.pop()!;
      if (membership.get(m.id) === m && (m.status === "alive" || m.status === "suspect")) {
        return m;
      }
    }
  }
}
