/**
 * The engine's counters for metrics ({@linkcode EngineCounters}), shared by its parts:
 * each part increments the fields of its own mechanism.
 *
 * @module
 */

import type { MessageType } from "./messages.ts";

/** Counters for metrics. All grow from 0. */
export interface EngineCounters {
  /** Messages received, by type. */
  messagesIn: Record<MessageType, number>;
  /** Messages sent, by type (piggybacked membership updates included). */
  messagesOut: Record<MessageType, number>;
  /** Rumors this member forwarded after learning something new from them. */
  rumorsForwarded: number;
  /** Entries received in rumors or tree messages that were new here. */
  rumorEntriesNew: number;
  /** Entries received in rumors or tree messages that were already known (or older). */
  rumorEntriesDuplicate: number;
  /** Anti-entropy rounds this member opened. */
  syncRounds: number;
  /** Anti-entropy rounds this member skipped, quiet (in sync for a while; see PROTOCOL.md). */
  syncRoundsSkipped: number;
  /** Anti-entropy roots received that were equal to ours (rounds that cost one datagram). */
  syncInSync: number;
  /** Entries received through anti-entropy. */
  syncEntriesReceived: number;
  /** Entries sent through anti-entropy. */
  syncEntriesSent: number;
  /** Remote entries refused because their stamp was too far in the future. */
  refusedClockSkew: number;
  /** Remote entries refused because they were older than the tombstone grace period. */
  refusedExpired: number;
  /** Remote entries refused for breaking a rule of the `sys` section. */
  refusedInvalid: number;
  /** Tombstones removed after the grace period. */
  tombstonesCollected: number;
  /** SWIM probes sent. */
  probes: number;
  /** Probes that got no ack, direct or indirect, within the probe period. */
  probesFailed: number;
  /** Members this member started suspecting. */
  suspicions: number;
  /** Suspicions of this member that it refuted. */
  refutations: number;
  /**
   * Members named to us (or known ones named at another address), held as candidates until
   * they answer a ping (see membership.ts).
   */
  candidatesProposed: number;
  /** Candidates admitted to the member table: they answered. */
  candidatesAdmitted: number;
  /** Members named to us that were not held as candidates: no room (see membership.ts). */
  candidatesRefused: number;
  /** Candidates dropped because they never answered a ping. */
  candidatesDropped: number;
}

/** A zero count for every message type (the record's type makes the list complete). */
function messageCounts(): Record<MessageType, number> {
  return {
    ping: 0,
    ack: 0,
    "ping-req": 0,
    member: 0,
    rumor: 0,
    tree: 0,
    ihave: 0,
    relay: 0,
    graft: 0,
    prune: 0,
    entries: 0,
    "sync-root": 0,
    "sync-branch": 0,
    "sync-leaf": 0,
    "sync-want": 0,
    "sync-nodes": 0,
    "sync-stamps": 0,
    "sync-pull": 0,
  };
}

/** Every counter at 0. */
export function newCounters(): EngineCounters {
  return {
    messagesIn: messageCounts(),
    messagesOut: messageCounts(),
    rumorsForwarded: 0,
    rumorEntriesNew: 0,
    rumorEntriesDuplicate: 0,
    syncRounds: 0,
    syncRoundsSkipped: 0,
    syncInSync: 0,
    syncEntriesReceived: 0,
    syncEntriesSent: 0,
    refusedClockSkew: 0,
    refusedExpired: 0,
    refusedInvalid: 0,
    tombstonesCollected: 0,
    probes: 0,
    probesFailed: 0,
    suspicions: 0,
    refutations: 0,
    candidatesProposed: 0,
    candidatesAdmitted: 0,
    candidatesRefused: 0,
    candidatesDropped: 0,
  };
}
