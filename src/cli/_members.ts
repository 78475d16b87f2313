// `gossip-kv members` and `gossip-kv info`: a member's view of the cluster, and of itself,
// read from its HTTP API (/members, /state, /sync, /healthz). Private to src/cli.ts.
import type { MemberStatus } from "../core/messages.ts";
import {
  ago,
  CLIENT_HELP,
  clientTokens,
  type Command,
  format,
  getJson,
  positionals,
  table,
  target,
} from "./_client.ts";
import { UsageError } from "./_flags.ts";

/** The statuses `--status` accepts, in the order of a member's life. */
const STATUSES = ["alive", "suspect", "dead", "left"] as const satisfies readonly MemberStatus[];

interface MemberRow {
  id: string;
  address: string;
  status: MemberStatus;
  incarnation: number;
  lastHeard: number | null;
  self: boolean;
}

interface State {
  sys: { members: Record<string, { runtime?: string; protocol?: string }> };
}

/** One member as `members --format=json` prints it. */
export interface MemberLine extends MemberRow {
  runtime: string | null;
  protocol: string | null;
}

async function memberLines(to: ReturnType<typeof target>): Promise<MemberLine[]> {
  const [list, state] = await Promise.all([
    getJson<MemberRow[]>(to, "/members"),
    getJson<State>(to, "/state"),
  ]);
  return list
    .map((m) => ({
      ...m,
      runtime: state.sys.members[m.id]?.runtime ?? null,
      protocol: state.sys.members[m.id]?.protocol ?? null,
    }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** `gossip-kv members`. */
export const members: Command = {
  name: "members",
  summary: "list the members a member knows, with status, runtime and when last heard",
  help: [
    "Usage: gossip-kv members [--status=STATUS] [--format=table|json] [flags]",
    "",
    "Lists the members the member at --http-addr knows: id, gossip address, status, runtime,",
    "protocol and when it last heard from each, as an aligned table (or a JSON array).",
    "",
    "  --status=STATUS    only members with this status: alive, suspect, dead or left",
    "  --format=FORMAT    table (default) or json",
    CLIENT_HELP,
  ].join("\n"),
  async run(args, io) {
    const tokens = clientTokens(args, [
      { name: "status", kind: "string" },
      { name: "format", kind: "string" },
    ]);
    if (tokens.flags.has("help")) {
      io.out(this.help);
      return 0;
    }
    positionals(tokens, "gossip-kv members [flags]", []);
    const how = format(tokens, ["table", "json"] as const);
    const status = tokens.flags.get("status");
    if (status !== undefined && !(STATUSES as readonly unknown[]).includes(status)) {
      throw new UsageError(
        `--status must be one of ${STATUSES.join(", ")}, got ${JSON.stringify(status)}`,
      );
    }
    const to = target(tokens, io.env);
    const lines = (await memberLines(to)).filter((m) => !status || m.status === status);
    if (how === "json") {
      io.out(JSON.stringify(lines, null, 2));
      return 0;
    }
    const now = Date.now();
    for (
      const line of table([
        ["ID", "ADDRESS", "STATUS", "RUNTIME", "PROTOCOL", "LAST HEARD"],
        ...lines.map((m) => [
          m.id,
          m.address,
          m.status,
          m.runtime ?? "-",
          m.protocol ?? "-",
          m.self ? "(this member)" : ago(m.lastHeard, now),
        ]),
      ])
    ) io.out(line);
    return 0;
  },
};

interface Health {
  id: string;
  members: number;
  keys: number;
}

interface Sync {
  root: string;
  keys: number;
  tombstones: number;
  peers: {
    id: string;
    lastStarted: number | null;
    lastInSync: number | null;
    lastRepair: number | null;
  }[];
}

/** `gossip-kv info`. */
export const info: Command = {
  name: "info",
  summary: "one member's view: id, protocol, Merkle root, keys, tombstones, peers in sync",
  help: [
    "Usage: gossip-kv info [--format=text|json] [flags]",
    "",
    "Prints the view of the member at --http-addr: its id, address, runtime and protocol",
    "version, the Merkle root of its data, its keys and tombstones, the members it sees alive,",
    "and, per peer, whether the last anti-entropy round with it found the two in sync.",
    "",
    "  --format=FORMAT    text (default) or json",
    CLIENT_HELP,
  ].join("\n"),
  async run(args, io) {
    const tokens = clientTokens(args, [{ name: "format", kind: "string" }]);
    if (tokens.flags.has("help")) {
      io.out(this.help);
      return 0;
    }
    positionals(tokens, "gossip-kv info [flags]", []);
    const how = format(tokens, ["text", "json"] as const);
    const to = target(tokens, io.env);
    const [health, sync, lines] = await Promise.all([
      getJson<Health>(to, "/healthz"),
      getJson<Sync>(to, "/sync"),
      memberLines(to),
    ]);
    const self = lines.find((m) => m.self);
    // A round that ended in sync after it started: the two held the same data then.
    const peers = sync.peers.map((p) => ({
      id: p.id,
      inSync: p.lastInSync !== null && p.lastStarted !== null && p.lastInSync >= p.lastStarted,
      lastInSync: p.lastInSync,
    }));
    const view = {
      id: health.id,
      address: self?.address ?? null,
      runtime: self?.runtime ?? null,
      protocol: self?.protocol ?? null,
      root: sync.root,
      keys: sync.keys,
      tombstones: sync.tombstones,
      members: { alive: health.members, known: lines.length },
      peersInSync: peers.filter((p) => p.inSync).length,
      peers,
    };
    if (how === "json") {
      io.out(JSON.stringify(view, null, 2));
      return 0;
    }
    const now = Date.now();
    for (
      const line of table([
        ["id", view.id],
        ["address", view.address ?? "-"],
        ["runtime", view.runtime ?? "-"],
        ["protocol", view.protocol ?? "-"],
        ["root", view.root],
        ["keys", String(view.keys)],
        ["tombstones", String(view.tombstones)],
        ["members", `${view.members.alive} alive of ${view.members.known} known`],
        ["peers in sync", `${view.peersInSync} of ${peers.length}`],
        ...peers.map((p) => [
          `  ${p.id}`,
          p.inSync
            ? `in sync (${ago(p.lastInSync, now)})`
            : `not in sync (last in sync: ${ago(p.lastInSync, now)})`,
        ]),
      ])
    ) io.out(line);
    return 0;
  },
};
