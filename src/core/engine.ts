/**
 * The gossip engine: a pure, synchronous state machine. It takes the time, random
 * numbers and received envelopes as inputs and produces messages to send, data changes
 * and membership changes as outputs. Given the same inputs, it produces the same outputs.
 *
 * Three mechanisms, each covering the others' weakness, each a part that
 * owns its state; the engine only routes messages and ticks to them:
 * 1. Dissemination (`dissemination.ts`): by default a broadcast tree over an overlay
 *    derived from the member list (`tree_dissemination.ts`, `broadcast.ts`), with rumors
 *    for members that do not speak it (release 0.1.0).
 * 2. Anti-entropy (`anti_entropy.ts`, `sync.ts`): every `gossipIntervalMs`, a Merkle
 *    comparison with one random live peer repairs whatever rumors missed.
 * 3. SWIM membership (`swim.ts`, `suspicion.ts`): probes, indirect probes, suspicion with a
 *    timeout growing with log N, incarnation numbers to refute, graceful leave; updates
 *    piggyback on the rest (`outbox.ts`).
 *
 * The engine itself keeps what joins them: the store's merge rules for remote entries
 * (with the `graveyard.ts` and `large_values.ts` rules), the members' `sys` records, and
 * the output.
 *
 * @module
 */

import { AntiEntropy, NOTHING_SETTLING, type SyncState } from "./anti_entropy.ts";
import { type EngineConfig, resolveConfig } from "./config.ts";
import type { EngineContext, RemoteOutcome } from "./context.ts";
import { type EngineCounters, newCounters } from "./counters.ts";
import type { Dissemination, DisseminationFactory } from "./dissemination.ts";
import { TreeDissemination } from "./tree_dissemination.ts";
import { Graveyard } from "./graveyard.ts";
import { HybridClock } from "./hlc.ts";
import { approxSize, isLarge, LargeValueCooldown } from "./large_values.ts";
import { Membership, type MemberState } from "./membership.ts";
import type { Envelope, MemberMessage, MemberStatus, Message } from "./messages.ts";
import { Outbox, type Outgoing } from "./outbox.ts";
import { type Random, sample } from "./random.ts";
import { MEMBER_KEY_PREFIX, memberRecord, recordAddress, validSys } from "./records.ts";
import { type Entry, type Section, Store, type StoredEntry, tombstoneAfter } from "./store.ts";
import { rootHex, SYNC_RECORD_FIELDS, syncReply, syncRoot } from "./sync.ts";
import { Swim } from "./swim.ts";

export { DEFAULT_CONFIG, type EngineConfig } from "./config.ts";
export type { EngineCounters } from "./counters.ts";
export type { MessageType } from "./messages.ts";
export type { Outgoing } from "./outbox.ts";
export type { SyncState } from "./anti_entropy.ts";
export { MEMBER_KEY_PREFIX } from "./records.ts";
export { approxSize } from "./large_values.ts";
export { splitAddress } from "./address.ts";

/** A graceful leave hands off this member's writes of the last this many anti-entropy periods… */
const HAND_OFF_PERIODS = 4;
/** …up to this many bytes (roughly), in entries messages of one datagram each. */
const HAND_OFF_BYTES = 32 * 1024;
const HAND_OFF_CHUNK_BYTES = 1000;

/** A change to the user's data, local or remote. */
export interface Change {
  /** The key that changed. */
  readonly key: string;
  /** The new value; `undefined` when deleted. */
  readonly value: unknown;
  /** Whether the change is a delete. */
  readonly deleted: boolean;
  /** `"local"` for this member's own writes, `"remote"` for writes learned from others. */
  readonly origin: "local" | "remote";
  /** Id of the member that wrote it. */
  readonly writer: string;
  /** Wall-clock part of the write's hybrid logical clock stamp, in ms since the epoch. */
  readonly wall: number;
  /** Counter part of the write's stamp. */
  readonly logical: number;
}

/** A member appeared or changed status. */
export interface MemberChange {
  /** The member's id. */
  readonly id: string;
  /** The address it is reached at. */
  readonly address: string;
  /** Its status now. */
  readonly status: MemberStatus;
  /** Its incarnation number now (raised by the member to refute suspicions). */
  readonly incarnation: number;
  /** The status before, or `undefined` for a member just learned of. */
  readonly previous: MemberStatus | undefined;
}

/** Everything the engine produced since the last {@linkcode Engine.takeOutput}. */
export interface EngineOutput {
  readonly outgoing: readonly Outgoing[];
  /**
   * The versions of user data applied, in order: the changes to the user's data, without
   * an object per change ({@linkcode changeOf} makes the {@linkcode Change} of one).
   */
  readonly changed: readonly StoredEntry[];
  /** The positions in `changed`, ascending, of this member's own writes; the rest are remote. */
  readonly localChanged: readonly number[];
  readonly memberChanges: readonly MemberChange[];
  /** Versions applied to the store (local writes and remote merges), for a storage log. */
  readonly applied: readonly StoredEntry[];
  /** Tombstones collected after the grace period, for a storage log to forget. */
  readonly collected: readonly StoredEntry[];
}

/** What an output field holds when nothing was produced: most takes find nothing. */
const NONE: readonly never[] = Object.freeze([]);

/**
 * `list` with `item` appended, where `list` may be {@linkcode NONE}: a list of one is made
 * as such (a push onto an empty array makes room for 17), most takes carrying one or none.
 */
function append<T>(list: T[], item: T): T[] {
  if (list.length === 0) return [item];
  list.push(item);
  return list;
}

/** The {@linkcode Change} that applying version `e` of user data made. */
export function changeOf(e: StoredEntry, origin: "local" | "remote"): Change {
  return {
    key: e.key,
    value: e.value,
    deleted: e.deleted,
    origin,
    writer: e.writer,
    wall: e.wall,
    logical: e.logical,
  };
}

/** An {@linkcode EngineOutput}: one shape for every take. */
class Output implements EngineOutput {
  constructor(
    readonly outgoing: readonly Outgoing[],
    readonly changed: readonly StoredEntry[],
    readonly localChanged: readonly number[],
    readonly memberChanges: readonly MemberChange[],
    readonly applied: readonly StoredEntry[],
    readonly collected: readonly StoredEntry[],
  ) {}
}

/** What {@linkcode Engine.takeOutput} returns when nothing was produced. */
const NO_OUTPUT: EngineOutput = Object.freeze(new Output(NONE, NONE, NONE, NONE, NONE, NONE));

/** Options of {@linkcode Engine}: identity, seeds and tuning. */
export interface EngineOptions extends Partial<EngineConfig> {
  /** This member's id, unique in the cluster. */
  readonly id: string;
  /** The address other members reach this one at. */
  readonly address: string;
  /** Addresses to contact to join. */
  readonly seeds?: readonly string[];
  /** Extra fields of this member's `sys` record (runtime, version, ...). */
  readonly meta?: Readonly<Record<string, unknown>>;
  /** The dissemination scheme. Default: the tree broadcast (`tree_dissemination.ts`). */
  readonly dissemination?: DisseminationFactory;
}

/** The source charged for candidates proposed from held records: no transport makes it. */
const RECORDS = "\0records";
/** Proposals of one member from one version of its record, at most. */
const RECORD_TRIES = 2;

/**
 * Local writes held at most while no member is known to push them to (see
 * {@linkcode Engine.flush}); anti-entropy carries the older ones.
 */
const HELD_ALONE = 1_024;

/** The outbox address of the client of {@linkcode Engine.serveClient}: no transport makes it. */
const CLIENT = "\0client";

/** The gossip state machine of one member. */
export class Engine {
  readonly id: string;
  readonly address: string;
  readonly config: Readonly<EngineConfig>;
  readonly store: Store = new Store();
  readonly clock: HybridClock;
  readonly membership: Membership;
  readonly counters: EngineCounters = newCounters();
  readonly startedAt: number;
  readonly #random: Random;
  readonly #meta: Readonly<Record<string, unknown>>;
  #seeds: readonly string[];
  readonly #outbox: Outbox;
  readonly #swim: Swim;
  readonly #antiEntropy: AntiEntropy;
  readonly #dissemination: Dissemination;
  readonly #graveyard: Graveyard;
  readonly #largeValues: LargeValueCooldown;
  /**
   * Versions applied since the last take. The user data among them are the take's
   * `changed`: the same array while no `sys` version is among them (most takes), so that an
   * applied version costs one list, not two.
   */
  #applied: StoredEntry[] = NONE as never[];
  /** How many of {@linkcode Engine.#applied} are `sys` versions. */
  #sysApplied = 0;
  /** The positions in `changed` of local writes (see Output). */
  #localChanged: number[] = NONE as never[];
  #memberChanges: MemberChange[] = [];
  #collected: StoredEntry[] = [];
  /** Local writes not flushed yet ({@linkcode NONE} when none: see `append`). */
  #pendingRumor: StoredEntry[] = NONE as never[];
  /** Whether the writes pending were held for want of a member (see {@linkcode Engine.flush}). */
  #heldAlone = false;
  #nextMaintenanceAt: number;
  #left = false;
  /** Times each member named by a held record was proposed from it (see #proposeFromRecords). */
  readonly #recordTries = new Map<string, number>();

  constructor(options: EngineOptions, now: number, random: Random) {
    if (typeof options.id !== "string" || options.id.length === 0 || options.id.length > 256) {
      throw new TypeError("Member id must be a string of 1 to 256 characters");
    }
    const config = resolveConfig(options);
    this.config = config;
    this.id = options.id;
    this.address = options.address;
    this.#random = random;
    this.#meta = options.meta ?? {};
    this.#seeds = [...(options.seeds ?? [])];
    this.clock = new HybridClock({ maxDriftMs: config.maxDriftMs });
    this.membership = new Membership(this.id, this.address, now);
    this.startedAt = now;
    this.#outbox = new Outbox(this.address, config.maxPiggyback, this.counters.messagesOut);
    this.#graveyard = new Graveyard(config.tombstoneGraceMs);
    this.#largeValues = new LargeValueCooldown(config.largeEntryCooldownMs);
    const ctx: EngineContext = {
      id: this.id,
      address: this.address,
      config,
      random,
      membership: this.membership,
      store: this.store,
      counters: this.counters,
      outbox: this.#outbox,
      mergeRemote: (e, from, at) => this.#mergeRemote(e, from, at),
      memberChanged: (m, previous) => this.#emitMember(m, previous),
      forgotten: (id) => this.#antiEntropy.forget(id),
    };
    // SWIM draws its first probe at random, to spread the rounds of a cluster started at
    // once; anti-entropy's rounds fall on probe rounds, to ride their pings.
    this.#swim = new Swim(ctx, now);
    this.#antiEntropy = new AntiEntropy(
      ctx,
      this.#largeValues,
      now,
      this.#swim.nextProbeAt,
      (at) => this.#dissemination.settling?.(at) ?? NOTHING_SETTLING,
    );
    const dissemination = options.dissemination ?? ((c) => new TreeDissemination(c, now));
    this.#dissemination = dissemination({ ...ctx, largeValues: this.#largeValues });
    this.#nextMaintenanceAt = now + config.gossipIntervalMs;
  }

  /** The last anti-entropy exchange with each peer, by member id. */
  get syncStates(): ReadonlyMap<string, Readonly<SyncState>> {
    return this.#antiEntropy.states;
  }

  // ------------------------------------------------------------------ queries

  /** The current version of `key` in `section`, tombstones included. */
  entry(section: Section, key: string): StoredEntry | undefined {
    return this.store.get(section, key);
  }

  /** Every current version in `section`, tombstones included. */
  versions(section: Section): IterableIterator<StoredEntry> {
    return this.store.versions(section);
  }

  /** Keys holding a value (not a tombstone) in `section`. */
  liveCount(section: Section): number {
    return this.store.liveCount(section);
  }

  /** Tombstones held, both sections (deletes not yet collected). */
  get tombstoneCount(): number {
    return this.store.tombstoneCount;
  }

  /** The Merkle root of everything held, as 16 hex digits. */
  rootHex(): string {
    return rootHex(this.store);
  }

  /** Every member known, this one included, in the order they were learned. */
  members(): IterableIterator<Readonly<MemberState>> {
    return this.membership.all();
  }

  /** The `sys` record of member `id`, tombstone included. */
  memberRecord(id: string): StoredEntry | undefined {
    return this.store.get("sys", MEMBER_KEY_PREFIX + id);
  }

  // ------------------------------------------------------------------ inputs

  /** Announces this member: writes its `sys` record and contacts the seeds. */
  start(now: number): void {
    this.#writeRecord(now);
    // No member is known yet to push the record to: it travels by anti-entropy from the
    // seeds, and is not left pending to ride along with this member's first write.
    this.#pendingRumor = NONE as never[];
    this.#joinSeeds();
  }

  /**
   * Loads persisted versions (before {@linkcode Engine.start}): merges them without
   * announcing them as changes or rumors, moves the clock past every loaded stamp (so that
   * new writes win over old ones even if the wall clock went back), and learns the members
   * their `sys` records name. Anti-entropy then fills in what the member missed. Returns
   * how many versions were applied (older duplicates and invalid `sys` entries are not).
   */
  load(entries: Iterable<Entry>, now: number): number {
    let applied = 0;
    for (const e of entries) {
      if (!validSys(e)) continue;
      // Our own entries: trust their stamps whatever the drift bound (observing a stamp at
      // its own wall time always passes).
      this.clock.observe(e, e.wall);
      const r = this.store.merge(e);
      if (r.outcome !== "applied") continue;
      applied++;
      if (e.section === "sys") this.#onRecord(r.stored!, undefined, now);
    }
    this.#memberChanges = [];
    return applied;
  }

  /** Replaces the seed addresses (for seeds re-resolved from DNS). */
  setSeeds(seeds: readonly string[]): void {
    this.#seeds = [...seeds];
  }

  /** The seed addresses. */
  get seeds(): readonly string[] {
    return this.#seeds;
  }

  /**
   * Writes a value (already validated by the caller) or, with `deleted`, a tombstone.
   * Applied at once; pushed as a rumor at the next {@linkcode Engine.flush}.
   */
  write(section: Section, key: string, value: unknown, deleted: boolean, now: number): StoredEntry {
    // Later than the key's current version, however far ahead that was stamped (hlc.ts).
    const stamp = this.clock.tickAfter(now, this.store.get(section, key));
    const entry: Entry = {
      section,
      key,
      value: deleted ? undefined : value,
      // Field by field: a spread copies through a slow path, and the fields are these two.
      wall: stamp.wall,
      logical: stamp.logical,
      writer: this.id,
      deleted,
    };
    // Later than the current version: applied (without `merge`'s result object).
    this.store.apply(entry);
    const stored = this.store.lastStored!;
    this.#emitApplied(stored, "local");
    this.#pendingRumor = append(this.#pendingRumor, stored);
    return stored;
  }

  /** Spreads the writes made since the last flush (see `dissemination.ts`). */
  flush(now: number): void {
    if (this.#pendingRumor.length === 0) return;
    // Only the versions still current: a key written twice is pushed once. Most flushes
    // find them all current (one write, mostly): the list itself goes then, not a copy.
    const pending = this.#pendingRumor;
    let current = 0;
    while (current < pending.length && this.#current(pending[current]!)) current++;
    const entries = current === pending.length ? pending : pending.filter((e) => this.#current(e));
    if (this.membership.live().length === 0 && !this.#left) {
      // Nobody to push to yet (a member joining admits its seed once it answers a ping):
      // held, the newest HELD_ALONE, until the envelope that admits a first member.
      this.#pendingRumor = entries.slice(-HELD_ALONE);
      this.#heldAlone = this.#pendingRumor.length > 0;
      return;
    }
    this.#heldAlone = false;
    this.#pendingRumor = NONE as never[];
    if (entries.length === 0) return;
    this.#dissemination.publish(entries, now);
  }

  /** Handles one envelope received from transport address `from`. */
  receive(from: string, envelope: Envelope, now: number): void {
    if (this.#left) return;
    const sender = envelope.sender;
    if (sender === this.id) return; // our own datagram, looped back
    this.#swim.heardFrom(sender, from, now);
    const messages = envelope.messages;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      this.counters.messagesIn[m.type]++;
      switch (m.type) {
        case "ping":
          this.#swim.onPing(m.seq, m.target, from);
          break;
        case "ack":
          this.#swim.onAck(m.seq, sender, now);
          break;
        case "ping-req":
          this.#swim.onPingReq(m, from, now);
          break;
        case "member":
          this.#swim.onMember(m, sender, from, now);
          break;
        case "rumor":
        case "tree":
        case "ihave":
        case "relay":
        case "graft":
        case "prune":
          this.#dissemination.receive(m, sender, from, now);
          break;
        case "entries":
          this.#antiEntropy.onEntries(m, sender, from, now);
          break;
        case "sync-root":
        case "sync-branch":
        case "sync-leaf":
        case "sync-want":
        case "sync-nodes":
        case "sync-stamps":
        case "sync-pull":
          this.#antiEntropy.onSync(m, sender, from, now);
          break;
      }
    }
    this.#dissemination.endEnvelope(sender, now);
    // Writes held while alone go out as soon as this envelope admitted a first member.
    if (this.#heldAlone) this.flush(now);
  }

  /**
   * Answers one request of a client that is not a member (an edge replica): merges the
   * `usr` entries it brings (a client never writes `sys`), spreading the new ones as this
   * member's own, and returns the anti-entropy replies computed from the store. The client
   * is not added to the membership, never probed, and never declared dead.
   */
  serveClient(messages: readonly Message[], now: number): Message[] {
    if (this.#left) return [];
    const replies: Message[] = [];
    for (const m of messages) {
      this.counters.messagesIn[m.type]++;
      if (m.type === "entries" || m.type === "rumor") {
        this.counters.syncEntriesReceived += m.entries.length;
        for (const e of m.entries) {
          // A client writes user data only: membership records are the members' own.
          if (e.section !== "usr") {
            this.counters.refusedInvalid++;
            continue;
          }
          if (this.#mergeRemote(e, CLIENT, now) === "applied") {
            this.#pendingRumor = append(this.#pendingRumor, this.store.get(e.section, e.key)!);
          }
        }
      } else if (
        m.type === "sync-root" || m.type === "sync-branch" || m.type === "sync-leaf" ||
        m.type === "sync-want"
      ) {
        const out = syncReply(this.store, m);
        if (m.type === "sync-root" && out.length === 0) this.counters.syncInSync++;
        replies.push(...out);
      }
    }
    // A refused stale copy is answered with the tombstone that buries it (see #mergeRemote).
    replies.push(...this.#outbox.takeFor(CLIENT));
    this.flush(now);
    for (const r of replies) {
      this.counters.messagesOut[r.type]++;
      if (r.type === "entries") this.counters.syncEntriesSent += r.entries.length;
    }
    return replies;
  }

  /** Runs whatever periodic work is due at `now`. */
  tick(now: number): void {
    if (this.#left) return;
    const probed = this.#swim.tick(now);
    if (probed) this.#antiEntropy.probing(probed, now);
    this.#dissemination.tick?.(now);
    this.#antiEntropy.tick(now, this.#joinSeedsBound);
    if (now >= this.#nextMaintenanceAt) {
      this.#nextMaintenanceAt = now + this.config.gossipIntervalMs;
      this.#maintain(now);
    }
    this.#swim.tickReconnect(now);
  }

  /** When {@linkcode Engine.tick} next has work to do. */
  nextWakeAt(): number {
    return Math.min(
      this.#swim.nextWakeAt(),
      this.#antiEntropy.nextWakeAt(),
      this.#nextMaintenanceAt,
      this.#dissemination.nextWakeAt?.() ?? Infinity,
    );
  }

  /**
   * Leaves the cluster gracefully: spreads the writes not flushed yet (they were
   * acknowledged), hands its recent writes to `fanout` × 2 live peers (see `#handOff`), then
   * tells them and every candidate (and queues the news for the rest) that this member left.
   * After this the engine ignores every input.
   */
  leave(now: number): void {
    if (this.#left) return;
    this.flush(now);
    this.#handOff(now);
    this.membership.self.status = "left";
    const update = this.membership.update(this.membership.self);
    for (const peer of sample(this.#random, this.membership.live(), this.config.fanout * 2)) {
      this.#outbox.send(peer.address, update, peer.id);
    }
    // Members that have not answered us yet may know us already (they admit us first).
    for (const c of this.membership.candidates()) this.#outbox.send(c.address, update);
    this.#left = true;
  }

  /**
   * Sends this member's recent writes (newest first, within `HAND_OFF_PERIODS` anti-entropy
   * periods and `HAND_OFF_BYTES`) to 2 × `fanout` live peers as anti-entropy entries, one
   * datagram each: copies the dissemination lost on the way would otherwise leave with this
   * member, no longer there to repair them. Large values are left out.
   */
  #handOff(now: number): void {
    const since = now - HAND_OFF_PERIODS * this.config.gossipIntervalMs;
    const recent: StoredEntry[] = [];
    for (const e of this.store.versions("usr")) {
      if (e.writer === this.id && e.wall >= since && !isLarge(e)) recent.push(e);
    }
    if (recent.length === 0) return;
    recent.sort((a, b) => b.wall - a.wall || b.logical - a.logical);
    const chunks: StoredEntry[][] = [];
    let chunk: StoredEntry[] = [], bytes = 0, total = 0;
    for (const e of recent) {
      const size = e.key.length + e.writer.length + 24 + (e.deleted ? 0 : approxSize(e.value));
      if (total + size > HAND_OFF_BYTES) break;
      if (chunk.length && bytes + size > HAND_OFF_CHUNK_BYTES) {
        chunks.push(chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(e);
      bytes += size;
      total += size;
    }
    if (chunk.length) chunks.push(chunk);
    for (const peer of sample(this.#random, this.membership.live(), this.config.fanout * 2)) {
      for (const entries of chunks) {
        this.counters.syncEntriesSent += entries.length;
        this.#outbox.send(peer.address, { type: "entries", entries }, peer.id);
      }
    }
  }

  /** Whether {@linkcode Engine.leave} was called. */
  get left(): boolean {
    return this.#left;
  }

  /**
   * A batch of a {@linkcode Engine.takeOutput} waits in a send queue: timers that wait for
   * its answers start only at {@linkcode Engine.departed}.
   */
  queued(batch: Outgoing): void {
    if (batch.toId !== undefined) this.#dissemination.queued?.(batch.toId, batch.messages);
  }

  /** A batch that was queued left at `at`. */
  departed(batch: Outgoing, at: number): void {
    if (batch.toId !== undefined) this.#dissemination.departed?.(batch.toId, batch.messages, at);
  }

  /** Takes the messages, data changes and member changes produced so far. */
  takeOutput(): EngineOutput {
    // A take finds most of these empty (one per datagram received): no new array for them,
    // and no output object when all are.
    const outgoing = this.#outbox.take(!this.#left);
    const applied = this.#applied;
    if (
      outgoing.length === 0 && applied.length === 0 && this.#memberChanges.length === 0 &&
      this.#collected.length === 0
    ) return NO_OUTPUT;
    const out = new Output(
      outgoing,
      this.#sysApplied === 0 ? applied : applied.filter((e) => e.section === "usr"),
      this.#localChanged,
      this.#memberChanges.length ? this.#memberChanges : NONE,
      applied,
      this.#collected.length ? this.#collected : NONE,
    );
    // Those that `append` to start again from NONE, the others from a new array.
    if (applied.length) this.#applied = NONE as never[];
    this.#sysApplied = 0;
    if (this.#localChanged.length) this.#localChanged = NONE as never[];
    if (this.#memberChanges.length) this.#memberChanges = [];
    if (this.#collected.length) this.#collected = [];
    return out;
  }

  /** Whether a member has outlived the tombstone grace period (see {@linkcode Engine.receive}). */
  settled(now: number): boolean {
    return now - this.startedAt >= this.config.tombstoneGraceMs;
  }

  // ------------------------------------------------------------------ internals

  /**
   * Notes a version applied to the store, and so a change to the user's data when of that
   * section (the `Change` itself is made by its reader).
   */
  #emitApplied(e: StoredEntry, origin: "local" | "remote"): void {
    if (e.section !== "usr") this.#sysApplied++;
    else if (origin === "local") {
      // Its position among the user data applied.
      const position = this.#applied.length - this.#sysApplied;
      this.#localChanged = append(this.#localChanged, position);
    }
    this.#applied = append(this.#applied, e);
  }

  #emitMember(m: MemberState, previous: MemberStatus | undefined): void {
    this.#dissemination.memberChanged?.(m.id);
    this.#memberChanges.push({
      id: m.id,
      address: m.address,
      status: m.status,
      incarnation: m.incarnation,
      previous,
    });
  }

  /** Whether version `e` is still its key's current version. */
  #current(e: StoredEntry): boolean {
    return this.store.get(e.section, e.key) === e;
  }

  #writeRecord(now: number): void {
    const key = MEMBER_KEY_PREFIX + this.id;
    const meta = { ...this.#meta, ...this.#dissemination.recordFields, ...SYNC_RECORD_FIELDS };
    this.write("sys", key, memberRecord(this.address, meta), false, now);
  }

  /** {@linkcode Engine.#joinSeeds} as a callback, made once (anti-entropy takes it every tick). */
  readonly #joinSeedsBound = () => this.#joinSeeds();

  #joinSeeds(): void {
    const hello = this.membership.update(this.membership.self);
    for (const seed of this.#seeds) {
      if (seed === this.address) continue;
      this.#outbox.send(seed, hello);
      this.#outbox.send(seed, syncRoot(this.store));
    }
  }

  /** Merges one remote entry under the store's rules. */
  #mergeRemote(e: Entry, from: string, now: number): RemoteOutcome {
    if (!this.clock.observe(e, now)) {
      this.counters.refusedClockSkew++;
      return "refused";
    }
    if (!validSys(e)) {
      this.counters.refusedInvalid++;
      return "refused";
    }
    // The graveyard first: it rules out almost every entry (a recent stamp) without a lookup,
    // and each lookup of a key decoded as a new string costs V8 a string-table probe.
    if (this.#graveyard.buried(e, now, this.settled(now)) && !this.store.get(e.section, e.key)) {
      // A version older than a tombstone we collected: the key was deleted, and this copy
      // comes from a member that was away longer than the grace period. Refuse it, and tell
      // the sender to delete it too, so that it cannot resurrect the key anywhere.
      this.counters.refusedExpired++;
      if (!e.deleted) this.#outbox.send(from, { type: "entries", entries: [tombstoneAfter(e)] });
      return "refused";
    }
    const outcome = this.store.apply(e);
    if (outcome !== "applied") return outcome;
    const stored = this.store.lastStored!;
    this.#emitApplied(stored, "remote");
    if (stored.section === "sys") this.#onRecord(stored, from, now);
    return "applied";
  }

  /**
   * A member's `sys` record changed: discover the member, or rewrite our own record. A
   * record received from transport address `from` names a candidate, admitted once it
   * answers; one loaded from storage (`from` undefined) a member.
   */
  #onRecord(e: StoredEntry, from: string | undefined, now: number): void {
    const id = e.key.slice(MEMBER_KEY_PREFIX.length);
    if (id === this.id) {
      // Deleted, or naming another address, by anyone but us: written again, newer.
      if (!this.#left && (e.deleted || recordAddress(e) !== this.address)) this.#writeRecord(now);
      return;
    }
    this.#dissemination.memberChanged?.(id);
    if (e.deleted) {
      this.#recordTries.delete(id);
      return;
    }
    const address = recordAddress(e);
    if (address === undefined) return;
    const known = this.membership.get(id);
    const u: MemberMessage = { type: "member", id, address, incarnation: 0, status: "alive" };
    if (known) {
      // Another address: the member moves there once that address answers for it.
      if (address !== known.address) this.#swim.propose(u, from ?? RECORDS, now, false, true);
      return;
    }
    if (from !== undefined) {
      // A new version of the record: its member may be proposed again, this being one try.
      this.#recordTries.set(id, this.#swim.propose(u, from, now) ? 1 : 0);
      return;
    }
    const m = this.membership.apply(u, now)!;
    this.#emitMember(m, undefined);
  }

  /**
   * Members named by a `sys` record held here but neither in the table nor candidates (no
   * room when the record came, or they did not answer): proposed again, each at most
   * {@linkcode RECORD_TRIES} times per version of its record, so that a member still joins
   * however many records came at once, and a forged record costs a bounded number of pings.
   */
  #proposeFromRecords(now: number): void {
    const { membership } = this;
    for (const e of this.store.versions("sys")) {
      if (e.deleted || !e.key.startsWith(MEMBER_KEY_PREFIX)) continue;
      const id = e.key.slice(MEMBER_KEY_PREFIX.length);
      if (id === this.id || membership.candidate(id)) continue;
      if (membership.get(id)) {
        this.#recordTries.delete(id);
        continue;
      }
      const tries = this.#recordTries.get(id) ?? 0;
      const address = recordAddress(e);
      if (tries >= RECORD_TRIES || address === undefined) continue;
      const u: MemberMessage = { type: "member", id, address, incarnation: 0, status: "alive" };
      if (this.#swim.propose(u, RECORDS, now)) this.#recordTries.set(id, tries + 1);
    }
  }

  #maintain(now: number): void {
    this.#proposeFromRecords(now);
    this.#largeValues.expire(now);
    const before = this.#collected.length;
    this.counters.tombstonesCollected += this.store.collectTombstones(
      now - this.config.tombstoneGraceMs,
      this.#collected,
    );
    this.#graveyard.bury(this.#collected.slice(before), now);
    this.#swim.expireRelays(now);
    for (const m of [...this.membership.all()]) {
      if (
        (m.status === "dead" || m.status === "left") && now - m.since >= this.config.forgetAfterMs
      ) {
        this.membership.forget(m.id);
        this.#antiEntropy.forget(m.id);
        this.#dissemination.memberChanged?.(m.id);
        // Every member forgets the same way, so the tombstone is the same everywhere.
        const record = this.store.get("sys", MEMBER_KEY_PREFIX + m.id);
        if (record && !record.deleted) {
          const { stored } = this.store.merge(tombstoneAfter(record));
          if (stored) this.#emitApplied(stored, "local");
        }
      }
    }
  }
}
