/**
 * The protocol's messages, as the engine produces and consumes them. The wire layer
 * (`src/wire/`) turns them into bytes; PROTOCOL.md describes both.
 *
 * @module
 */

import type { Entry } from "./store.ts";

/** Liveness of a member as SWIM sees it. */
export type MemberStatus = "alive" | "suspect" | "dead" | "left";

/**
 * Each member status with its rank in SWIM's order of precedence at equal incarnation (a
 * status overrides the ones ranked below it); the wire codes a status by its rank. The
 * type makes it complete.
 */
export const MEMBER_STATUS_RANK: Readonly<Record<MemberStatus, number>> = Object.freeze({
  alive: 0,
  suspect: 1,
  dead: 2,
  left: 3,
});

/** Every member status, in order of rank. */
export const MEMBER_STATUSES: readonly MemberStatus[] = Object.freeze(
  (Object.keys(MEMBER_STATUS_RANK) as MemberStatus[]).sort((a, b) =>
    MEMBER_STATUS_RANK[a] - MEMBER_STATUS_RANK[b]
  ),
);

/** Direct probe: "are you `target`, and alive?" */
export interface PingMessage {
  readonly type: "ping";
  readonly seq: number;
  /** Id of the member the prober believes it is talking to. */
  readonly target: string;
}

/** Answer to a ping (direct or relayed). */
export interface AckMessage {
  readonly type: "ack";
  readonly seq: number;
}

/** Indirect probe: "please ping `target` at `address` for me and relay its ack". */
export interface PingReqMessage {
  readonly type: "ping-req";
  readonly seq: number;
  readonly target: string;
  readonly address: string;
}

/** A membership update, piggybacked on other messages. */
export interface MemberMessage {
  readonly type: "member";
  readonly id: string;
  readonly address: string;
  readonly incarnation: number;
  readonly status: MemberStatus;
  /** For a suspicion: the member that suspects. Distinct suspecters shorten the timeout. */
  readonly by?: string;
}

/** Entries pushed as a rumor; `hop` counts the members it went through. */
export interface RumorMessage {
  readonly type: "rumor";
  readonly hop: number;
  readonly entries: readonly Entry[];
}

/**
 * Entries broadcast along the tree (see `broadcast.ts`): message `seq` of member `origin`,
 * `hop` members away from it. Forwarded once by each member, on first receipt.
 */
export interface TreeMessage {
  readonly type: "tree";
  readonly origin: string;
  readonly seq: number;
  readonly hop: number;
  readonly entries: readonly Entry[];
}

/** Lazy announcement: "I have tree messages `seqs` of `origin`" (received at `hop`). */
export interface IHaveMessage {
  readonly type: "ihave";
  readonly origin: string;
  readonly hop: number;
  /** Ascending, at least one. */
  readonly seqs: readonly number[];
}

/**
 * "Send your copy of tree message `seq` of `origin` to member `to`": a child of a silent member
 * in a batch's message's tree, taken over by its sender and handed to a member that has the
 * message (see `broadcast.ts`).
 * Not answered: `to` acknowledges its copy to the member that sends it.
 */
export interface RelayMessage {
  readonly type: "relay";
  readonly origin: string;
  readonly seq: number;
  readonly to: string;
}

/** "Send me tree messages `seqs` of `origin`, and push to me eagerly from now on." */
export interface GraftMessage {
  readonly type: "graft";
  readonly origin: string;
  /** Ascending, at least one. */
  readonly seqs: readonly number[];
}

/** "Your eager pushes of `origin`'s messages reach me twice: announce them lazily." */
export interface PruneMessage {
  readonly type: "prune";
  readonly origin: string;
}

/** Entries sent as part of an anti-entropy exchange; never forwarded. */
export interface EntriesMessage {
  readonly type: "entries";
  readonly entries: readonly Entry[];
}

/** Anti-entropy opener: the sender's Merkle root (8-byte hash) and entry count. */
export interface SyncRootMessage {
  readonly type: "sync-root";
  readonly hash: Uint8Array;
  readonly count: number;
}

/** The sender's 16 child hashes (16 × 8 bytes) of node (level, index). */
export interface SyncBranchMessage {
  readonly type: "sync-branch";
  readonly level: number;
  readonly index: number;
  readonly children: Uint8Array;
}

/** The sender's entry hashes (8 bytes each, sorted) under node (level, index). */
export interface SyncLeafMessage {
  readonly type: "sync-leaf";
  readonly level: number;
  readonly index: number;
  readonly hashes: Uint8Array;
}

/** "Send me the entries with these hashes, under node (level, index)." */
export interface SyncWantMessage {
  readonly type: "sync-want";
  readonly level: number;
  readonly index: number;
  readonly hashes: Uint8Array;
}

/** One node of a batched sync message: its index at the message's level, and its data. */
export interface SyncNodeData {
  readonly index: number;
  readonly data: Uint8Array;
}

/**
 * Compact descent step (between members that both speak it): for each node, a 16-bit mask
 * of its non-empty children, then one salted 1-byte digest per non-empty child.
 */
export interface SyncNodesMessage {
  readonly type: "sync-nodes";
  /** Salt of the digests, drawn by the member that answered the root; kept down the descent. */
  readonly salt: number;
  readonly level: number;
  /** At least one. */
  readonly nodes: readonly SyncNodeData[];
}

/**
 * Compact leaf: for each node, one 9-byte version descriptor per entry under it (salted
 * key id, stamp, salted check), so that the receiver can tell which side holds the newer
 * version of a key.
 */
export interface SyncStampsMessage {
  readonly type: "sync-stamps";
  readonly salt: number;
  readonly level: number;
  /** At least one. */
  readonly nodes: readonly SyncNodeData[];
}

/** "Send me your versions of these keys (salted 2-byte key ids), under each node". */
export interface SyncPullMessage {
  readonly type: "sync-pull";
  readonly salt: number;
  readonly level: number;
  /** At least one. */
  readonly nodes: readonly SyncNodeData[];
}

/**
 * Every message of the protocol (internal to the engine and the wire layer: only its
 * {@linkcode MessageType} is public).
 *
 * @internal
 */
export type Message =
  | PingMessage
  | AckMessage
  | PingReqMessage
  | MemberMessage
  | RumorMessage
  | TreeMessage
  | IHaveMessage
  | RelayMessage
  | GraftMessage
  | PruneMessage
  | EntriesMessage
  | SyncRootMessage
  | SyncBranchMessage
  | SyncLeafMessage
  | SyncWantMessage
  | SyncNodesMessage
  | SyncStampsMessage
  | SyncPullMessage;

/** The type of every protocol message, as counted in `EngineCounters`. */
export type MessageType = Message["type"];

/** What travels in one envelope: who sent it, in which cluster, and its messages. */
export interface Envelope {
  readonly cluster: string;
  readonly sender: string;
  readonly messages: readonly Message[];
}
