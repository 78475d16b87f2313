// What a member says when it cannot join: refused datagrams that point at a configuration
// mismatch (keys, cluster name, protocol version), rate-limited per peer and reason, and
// "no seed has answered", repeated with backoff. Pure: time comes in as an argument;
// GossipKV owns the timers and calls `onWarning`.
import type { DropReason } from "./wire/codec.ts";
import { PROTOCOL_VERSION } from "./wire/codec.ts";

/**
 * A refusal reported as a warning: the sender is configured differently from this member
 * (another key or none, another cluster name, another protocol version).
 */
export type WarnedRefusal = Extract<
  DropReason,
  "plaintext" | "unauthenticated" | "foreign-cluster" | "bad-version"
>;

const WARNED: Readonly<Record<WarnedRefusal, true>> = {
  plaintext: true,
  unauthenticated: true,
  "foreign-cluster": true,
  "bad-version": true,
};

/** Datagrams refused from one peer for one reason. */
export interface Refusal {
  /** The transport address they came from. */
  readonly from: string;
  /** Why they were refused. */
  readonly reason: WarnedRefusal;
  /** The last one's detail, as counted in `stats().dropped`. */
  readonly detail: string;
}

/**
 * Something that needs an operator's attention, passed to the `onWarning` option of
 * `GossipKV.start()`. `message` says it in one sentence, the other fields say it for code.
 */
export type GossipKVWarning =
  | {
    /** Datagrams from a peer were refused because it is configured differently. */
    readonly type: "refused";
    /** The peer's transport address. */
    readonly from: string;
    /** Why: a key mismatch, plaintext in an encrypted cluster, another cluster, another version. */
    readonly reason: WarnedRefusal;
    /** The last refused datagram's detail. */
    readonly detail: string;
    /** Datagrams refused for this reason from this peer since the last warning about them. */
    readonly count: number;
    /** The warning as one line of text. */
    readonly message: string;
  }
  | {
    /** Seeds are configured, and no member has answered yet. */
    readonly type: "no-seed-answer";
    /** The seed addresses being tried. */
    readonly seeds: readonly string[];
    /** How long this member has been trying, in ms. */
    readonly waitedMs: number;
    /** Datagrams refused meanwhile (the likely cause), the latest per peer and reason. */
    readonly refusals: readonly Refusal[];
    /** The warning as one line of text. */
    readonly message: string;
  };

/** The first "no seed has answered" warning comes this long after the start, in ms. */
export const JOIN_WARNING_MS = 3_000;
/** ... and the next ones twice as long after the previous, up to this, in ms. */
export const JOIN_WARNING_MAX_MS = 300_000;
/** A peer refused for one reason is reported at most once per this period, in ms. */
export const REFUSAL_WARNING_INTERVAL_MS = 60_000;
/** Refusal warnings per period at most, all peers together (spoofed sources cannot flood). */
const MAX_REFUSAL_WARNINGS = 20;
/** Peer-and-reason pairs remembered at most. */
const MAX_TRACKED = 1024;

/** Whether a refusal is one that {@linkcode RefusalLog} reports. */
export function isWarnedRefusal(reason: DropReason): reason is WarnedRefusal {
  return Object.hasOwn(WARNED, reason);
}

/** The refusal in words, for a member of `cluster`. */
export function explainRefusal(reason: WarnedRefusal, cluster: string): string {
  switch (reason) {
    case "plaintext":
      return "not encrypted, but this member has a cluster key (give both the same keys)";
    case "unauthenticated":
      return "encrypted with a key this member does not hold (a key mismatch, or this member " +
        "has no key)";
    case "foreign-cluster":
      return `of another cluster (this member is in cluster ${JSON.stringify(cluster)})`;
    case "bad-version":
      return `of another protocol version (this member speaks version ${PROTOCOL_VERSION})`;
  }
}

function describe(r: Refusal, cluster: string): string {
  return `from ${r.from}: ${explainRefusal(r.reason, cluster)} (${r.detail})`;
}

interface Tracked {
  refusal: Refusal;
  lastWarnedAt: number;
  unreported: number;
}

/**
 * Remembers refused datagrams that point at a mismatch, and decides which to report: the
 * first from a peer for a reason at once, then at most one per
 * {@linkcode REFUSAL_WARNING_INTERVAL_MS} with the count since.
 */
export class RefusalLog {
  readonly #cluster: string;
  readonly #tracked = new Map<string, Tracked>();
  #windowStart = -Infinity;
  #windowWarnings = 0;

  constructor(cluster: string) {
    this.#cluster = cluster;
  }

  /** Notes one refused datagram; returns the warning to give, if one is due. */
  note(reason: DropReason, detail: string, from: string, now: number): GossipKVWarning | undefined {
    if (!isWarnedRefusal(reason)) return undefined;
    const key = `${reason}\0${from}`;
    let t = this.#tracked.get(key);
    const refusal: Refusal = { from, reason, detail };
    if (!t) {
      if (this.#tracked.size >= MAX_TRACKED) this.#prune(now);
      if (this.#tracked.size >= MAX_TRACKED) return undefined;
      t = { refusal, lastWarnedAt: -Infinity, unreported: 0 };
      this.#tracked.set(key, t);
    }
    t.refusal = refusal;
    t.unreported++;
    this.#tracked.delete(key); // most recent last
    this.#tracked.set(key, t);
    if (now - t.lastWarnedAt < REFUSAL_WARNING_INTERVAL_MS) return undefined;
    if (now - this.#windowStart >= REFUSAL_WARNING_INTERVAL_MS) {
      this.#windowStart = now;
      this.#windowWarnings = 0;
    }
    if (this.#windowWarnings >= MAX_REFUSAL_WARNINGS) return undefined;
    this.#windowWarnings++;
    const count = t.unreported;
    const first = t.lastWarnedAt === -Infinity;
    t.lastWarnedAt = now;
    t.unreported = 0;
    const what = count === 1 ? "a datagram" : `${count} datagrams`;
    const since = first ? "" : ` in the last ${Math.round(REFUSAL_WARNING_INTERVAL_MS / 1000)} s`;
    return {
      type: "refused",
      from,
      reason,
      detail,
      count,
      message: `Refused ${what}${since} ${describe(refusal, this.#cluster)}`,
    };
  }

  /** The latest refusal per peer and reason, the most recent first (at most `max`). */
  latest(max = 5): Refusal[] {
    return [...this.#tracked.values()].reverse().slice(0, max).map((t) => t.refusal);
  }

  /** Why this member has not joined, in words: the refusals seen, or silence. */
  explain(seeds: readonly string[]): string {
    const refusals = this.latest(3);
    const list = seeds.length > 5 ? `${seeds.slice(0, 5).join(", ")}, ...` : seeds.join(", ");
    if (refusals.length === 0) {
      return `no seed answered (seeds ${list}): no datagram came back (is a member running ` +
        "there, at that address and port, and does a firewall let UDP through?)";
    }
    return `no seed answered (seeds ${list}); datagrams were refused ${
      refusals.map((r) => describe(r, this.#cluster)).join("; ")
    }`;
  }

  /** A "no seed has answered" warning, after `waitedMs`. */
  noSeedAnswer(seeds: readonly string[], waitedMs: number): GossipKVWarning {
    return {
      type: "no-seed-answer",
      seeds: [...seeds],
      waitedMs,
      refusals: this.latest(),
      message: `Not joined after ${formatMs(waitedMs)}: ${this.explain(seeds)}; still trying`,
    };
  }

  #prune(now: number): void {
    for (const [key, t] of this.#tracked) {
      if (now - t.lastWarnedAt >= REFUSAL_WARNING_INTERVAL_MS) this.#tracked.delete(key);
    }
  }
}

/** The delay before "no seed has answered" warning number `n` (0 first), in ms. */
export function joinWarningDelay(n: number): number {
  return Math.min(JOIN_WARNING_MS * 2 ** n, JOIN_WARNING_MAX_MS);
}

/** `1500` → `"1.5 s"`, `120000` → `"2 min"`. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 100) / 10} s`;
  return `${Math.round(ms / 6000) / 10} min`;
}
