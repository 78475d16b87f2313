// GET /metrics: the Prometheus text exposition format (version 0.0.4), built from
// kv.stats(), kv.members() and kv.syncStatus().
import type { GossipKV } from "../gossip_kv.ts";
import { MEMBER_STATUSES } from "../core/messages.ts";
import { DROP_REASONS, type DropReason } from "../wire/codec.ts";
import type { HttpTransport } from "../transport/http.ts";
import type { StreamStats } from "./_streams.ts";

type Labels = Record<string, string>;
type Sample = readonly [Labels, number];

const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const num = (v: number) =>
  Number.isNaN(v) ? "NaN" : v === Infinity ? "+Inf" : v === -Infinity ? "-Inf" : String(v);

class Exposition {
  readonly lines: string[] = [];
  constructor(readonly base: Labels) {}

  family(name: string, type: "counter" | "gauge", help: string, samples: readonly Sample[]): void {
    this.lines.push(`# HELP gossip_kv_${name} ${help}`, `# TYPE gossip_kv_${name} ${type}`);
    for (const [labels, value] of samples) {
      const all = Object.entries({ ...this.base, ...labels });
      const text = all.map(([k, v]) => `${k}="${escape(v)}"`).join(",");
      this.lines.push(`gossip_kv_${name}{${text}} ${num(value)}`);
    }
  }
}

const seconds = (ms: number | null) => (ms === null ? [] : [[{}, ms / 1000] as const]);

/** The metrics of `kv` (and of its HTTP transport, if any) in Prometheus text format. */
export function metricsText(
  kv: GossipKV,
  gossip: HttpTransport | undefined,
  streams?: StreamStats,
): string {
  const s = kv.stats(), e = s.engine, sync = kv.syncStatus(), members = kv.members();
  const m = new Exposition({ member: kv.id });
  m.family("storage_ok", "gauge", "0 while the storage is failing (writes refused), else 1.", [
    [{}, kv.storageFailure ? 0 : 1],
  ]);
  if (streams) {
    m.family("http_streams", "gauge", "Long HTTP responses open (/events, /state).", [
      [{}, streams.open],
    ]);
    m.family("http_stream_buffered_bytes", "gauge", "Bytes held for long HTTP responses.", [
      [{ kind: "events" }, streams.backlogBytes],
      [{ kind: "state" }, streams.stateBytes],
    ]);
    m.family("http_streams_cut_total", "counter", "Long responses cut, by cause.", [
      [{ cause: "backlog" }, streams.cut.backlog],
      [{ cause: "total" }, streams.cut.total],
      [{ cause: "stalled" }, streams.cut.stalled],
    ]);
    m.family("http_streams_refused_total", "counter", "Long responses refused with 503.", [
      [{ cause: "streams" }, streams.refused.streams],
      [{ cause: "state" }, streams.refused.state],
    ]);
  }
  const types = Object.keys(e.messagesIn) as (keyof typeof e.messagesIn)[];
  const byType = (dir: "in" | "out", pick: (t: (typeof types)[number]) => number) =>
    types.map((type) => [{ direction: dir, type }, pick(type)] as const);
  m.family("info", "gauge", "Constant 1, labelled with the member's address.", [
    [{ address: kv.address }, 1],
  ]);
  m.family("messages_total", "counter", "Protocol messages, by direction and type.", [
    ...byType("in", (t) => e.messagesIn[t]),
    ...byType("out", (t) => e.messagesOut[t]),
  ]);
  m.family(
    "message_bytes_total",
    "counter",
    "Datagram bytes, shared among the types of the messages they carried.",
    [
      ...byType("in", (t) => s.bytesInByType[t] ?? 0),
      ...byType("out", (t) => s.bytesOutByType[t] ?? 0),
    ],
  );
  m.family("datagrams_total", "counter", "Datagrams, by direction (refused ones included).", [
    [{ direction: "in" }, s.datagramsIn],
    [{ direction: "out" }, s.datagramsOut],
  ]);
  m.family("bytes_total", "counter", "Datagram bytes, by direction.", [
    [{ direction: "in" }, s.bytesIn],
    [{ direction: "out" }, s.bytesOut],
  ]);
  m.family("send_errors_total", "counter", "Datagrams the transport refused to send.", [[
    {},
    s.sendErrors,
  ]]);
  m.family(
    "sends_dropped_total",
    "counter",
    "Datagrams dropped before sending: too many sends were still queued (backpressure).",
    [[{}, s.sendsDropped]],
  );
  const reasons = new Set<string>([...DROP_REASONS, ...Object.keys(s.dropped)]);
  m.family(
    "dropped_datagrams_total",
    "counter",
    "Datagrams refused on receipt, by reason.",
    [...reasons].map((reason) => [{ reason }, s.dropped[reason as DropReason] ?? 0] as const),
  );
  m.family(
    "rumors_forwarded_total",
    "counter",
    "Rumors forwarded after learning something new from them.",
    [[{}, e.rumorsForwarded]],
  );
  m.family("rumor_entries_total", "counter", "Entries received in rumors, by outcome.", [
    [{ outcome: "new" }, e.rumorEntriesNew],
    [{ outcome: "duplicate" }, e.rumorEntriesDuplicate],
  ]);
  m.family(
    "sync_rounds_total",
    "counter",
    "Anti-entropy rounds: opened by this member, skipped while quiet, and roots received that were already in sync.",
    [
      [{ outcome: "opened" }, e.syncRounds],
      [{ outcome: "skipped" }, e.syncRoundsSkipped],
      [{ outcome: "in_sync" }, e.syncInSync],
    ],
  );
  m.family("sync_entries_total", "counter", "Entries moved by anti-entropy, by direction.", [
    [{ direction: "in" }, e.syncEntriesReceived],
    [{ direction: "out" }, e.syncEntriesSent],
  ]);
  m.family("refused_entries_total", "counter", "Remote entries refused, by reason.", [
    [{ reason: "clock_skew" }, e.refusedClockSkew],
    [{ reason: "expired" }, e.refusedExpired],
    [{ reason: "invalid" }, e.refusedInvalid],
  ]);
  m.family("tombstones_collected_total", "counter", "Tombstones removed after the grace period.", [[
    {},
    e.tombstonesCollected,
  ]]);
  m.family("probes_total", "counter", "SWIM probes, by outcome.", [
    [{ outcome: "sent" }, e.probes],
    [{ outcome: "failed" }, e.probesFailed],
  ]);
  m.family("suspicions_total", "counter", "Members this member started suspecting.", [[
    {},
    e.suspicions,
  ]]);
  m.family("refutations_total", "counter", "Suspicions of this member that it refuted.", [[
    {},
    e.refutations,
  ]]);
  m.family(
    "candidates_total",
    "counter",
    "Members named to this member (or known ones named at another address), held as " +
      "candidates until they answer a ping, by outcome: proposed, admitted (answered), " +
      "refused (no room), dropped (never answered).",
    [
      [{ outcome: "proposed" }, e.candidatesProposed],
      [{ outcome: "admitted" }, e.candidatesAdmitted],
      [{ outcome: "refused" }, e.candidatesRefused],
      [{ outcome: "dropped" }, e.candidatesDropped],
    ],
  );
  m.family(
    "members",
    "gauge",
    "Members known, by status (this one included).",
    MEMBER_STATUSES.map((status) =>
      [{ status }, members.filter((x) => x.status === status).length] as const
    ),
  );
  m.family("keys", "gauge", "Keys holding a value.", [[{}, sync.keys]]);
  m.family("tombstones", "gauge", "Tombstones held.", [[{}, sync.tombstones]]);
  m.family(
    "convergence_lag_seconds",
    "gauge",
    "Age of the newest remote write when it arrived here (last seen).",
    seconds(s.lastConvergenceLagMs),
  );
  const peerTimes = (pick: (p: (typeof sync.peers)[number]) => number | null, event: string) =>
    sync.peers.flatMap((p) => {
      const t = pick(p);
      return t === null ? [] : [[{ peer: p.id, event }, t / 1000] as const];
    });
  m.family(
    "sync_peer_last_timestamp_seconds",
    "gauge",
    "Last anti-entropy event with each peer, by event.",
    [
      ...peerTimes((p) => p.lastStarted, "started"),
      ...peerTimes((p) => p.lastInSync, "in_sync"),
      ...peerTimes((p) => p.lastRepair, "repair"),
    ],
  );
  if (gossip) {
    const h = gossip.stats();
    m.family(
      "http_datagrams_total",
      "counter",
      "Datagrams carried by the HTTP transport, by outcome.",
      [
        [{ outcome: "sent" }, h.sent],
        [{ outcome: "failed" }, h.failed],
        [{ outcome: "received" }, h.received],
      ],
    );
  }
  return m.lines.join("\n") + "\n";
}
