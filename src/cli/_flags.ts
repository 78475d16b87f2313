// The `node` command's flags: the table they are documented from, and parseFlags(), which
// turns argv and the environment into a NodeConfig without touching anything else (no file,
// no socket, no exit). Private to src/cli.ts, which re-exports what callers need.
import { isIP } from "node:net";
import { hostname as osHostname } from "node:os";
import { DEFAULTS } from "../gossip_kv.ts";
import { parseAddress } from "../transport/udp.ts";
import { HOSTNAME, parseSeed } from "./_seeds.ts";
import { tokenize } from "./_args.ts";

/**
 * How much the `node` command logs: each level includes the ones before it.
 *
 * @example
 * ```ts
 * import { LOG_LEVELS } from "../cli.ts";
 * console.log(LOG_LEVELS.join(", ")); // "error, warn, info, debug"
 * ```
 */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
/** One of {@linkcode LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/**
 * How the `agent` command writes its log: `text` lines, or one JSON object a line.
 *
 * @example
 * ```ts
 * import { LOG_FORMATS } from "../cli.ts";
 * console.log(LOG_FORMATS.join(", ")); // "text, json"
 * ```
 */
export const LOG_FORMATS = ["text", "json"] as const;
/** One of {@linkcode LOG_FORMATS}. */
export type LogFormat = typeof LOG_FORMATS[number];

/** What the `node` command runs, as {@linkcode parseFlags} reads it from flags and env. */
export interface NodeConfig {
  /** `"start"` a member, or print the `"help"` or the `"version"` and exit. */
  command: "start" | "help" | "version";
  /** Member id (`--id`). Default: the hostname and a random suffix. */
  id: string;
  /**
   * Address the gossip socket binds (`--bind`). Default `"127.0.0.1"`, or `"0.0.0.0"` with a
   * key file: unencrypted gossip accepts writes from whoever reaches it, so it stays on
   * loopback unless asked for.
   */
  bind: string;
  /** Gossip UDP port (`--port`); 0 picks a free one. Default 7946. */
  port: number;
  /** Address the others reach this member at, `host` or `host:port` (`--advertise`). */
  advertise?: string;
  /** Seeds as given (`--seeds`): `host:port`, IP literals or DNS names. Default none. */
  seeds: string[];
  /** Cluster name (`--cluster`). Default `"default"`. */
  cluster: string;
  /** File of cluster keys, one a line, primary first (`--key-file`). Default: plaintext. */
  keyFile?: string;
  /**
   * Refuse to start without a key file (`--require-encryption`): a member that must never
   * gossip in plaintext. Set only when asked for.
   */
  requireEncryption?: boolean;
  /** HTTP API port (`--http-port`); 0 disables the API. Default 8080. */
  httpPort: number;
  /** Address the HTTP API binds (`--http-bind`). Default `"127.0.0.1"`. */
  httpBind: string;
  /** Bearer token of the HTTP write routes (`--http-token`). Default none. */
  httpToken?: string;
  /** Anti-entropy period in ms (`--gossip-interval`). Default: the library's (`DEFAULTS`). */
  gossipIntervalMs?: number;
  /** Tombstone grace period in ms (`--tombstone-grace`). Default: the library's (`DEFAULTS`). */
  tombstoneGraceMs?: number;
  /** Log verbosity (`--log-level`). Default `"info"`. */
  logLevel: LogLevel;
  /** Log lines as `"text"` or `"json"` (`--log-format`). Default `"text"`. */
  logFormat: LogFormat;
  /** Directory the member keeps its data in across restarts (`--data-dir`). Default: none. */
  dataDir?: string;
}

/**
 * A bad flag or environment variable, or an unusable key file: the `node` command prints
 * the message and exits with {@linkcode UsageError.exitCode}.
 *
 * @example
 * ```ts
 * import { parseFlags, UsageError } from "../cli.ts";
 * try {
 *   parseFlags(["--prot=7946"], {});
 * } catch (error) {
 *   if (!(error instanceof UsageError)) throw error;
 *   console.log(error.exitCode, error.message); // 2 "Unknown flag --prot (did you mean --port?); ..."
 * }
 * ```
 */
export class UsageError extends Error {
  /** The exit code for usage errors: 2, as most command-line tools use. */
  readonly exitCode = 2;
  /** Makes an error with `message`, written in sentence case without a trailing period. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** One flag of the `node` command, as `--help` and the README list it. */
export interface FlagSpec {
  /** The flag without dashes: `"http-port"`. */
  readonly name: string;
  /** What its value looks like in `--help`, or `""` for a flag without a value. */
  readonly value: string;
  /** The default, as shown to users. */
  readonly default: string;
  /** What it does, one line. */
  readonly help: string;
}

/**
 * Every flag that takes a value, each with its environment twin (see {@linkcode envTwin}).
 *
 * @example
 * ```ts
 * import { envTwin, FLAGS } from "../cli.ts";
 * for (const f of FLAGS) console.log(`--${f.name}`, envTwin(f.name), f.default);
 * ```
 */
export const FLAGS: readonly FlagSpec[] = [
  { name: "id", value: "ID", default: "<hostname>-<6 hex digits>", help: "member id" },
  {
    name: "bind",
    value: "ADDR",
    default: "127.0.0.1; 0.0.0.0 with --key-file",
    help: "gossip bind address",
  },
  { name: "port", value: "PORT", default: "7946", help: "gossip UDP port (0: any free one)" },
  {
    name: "advertise",
    value: "HOST[:PORT]",
    default: "bound address, or first interface",
    help: "address the others reach this member at",
  },
  {
    name: "seeds",
    value: "LIST",
    default: "none",
    help: "members to join: host:port, IPs or DNS names (resolved every 30 s), comma-separated",
  },
  { name: "cluster", value: "NAME", default: "default", help: "cluster name" },
  {
    name: "key-file",
    value: "PATH",
    default: "none: gossip in plaintext",
    help: "cluster keys, one a line, primary first; reloaded on change and SIGHUP",
  },
  {
    name: "require-encryption",
    value: "",
    default: "off",
    help: "refuse to start without --key-file (as the variable: 1, true or yes)",
  },
  { name: "http-port", value: "PORT", default: "8080", help: "HTTP API port (0: no API)" },
  { name: "http-bind", value: "ADDR", default: "127.0.0.1", help: "HTTP API bind address" },
  {
    name: "http-token",
    value: "TOKEN",
    default: "none",
    help: "bearer token the HTTP write routes require",
  },
  {
    name: "gossip-interval",
    value: "MS",
    default: String(DEFAULTS.gossipIntervalMs),
    help: "anti-entropy period, in ms",
  },
  {
    name: "tombstone-grace",
    value: "MS",
    default: String(DEFAULTS.tombstoneGraceMs),
    help: "deletes are remembered this long, in ms (keep it above any outage)",
  },
  {
    name: "log-level",
    value: "LEVEL",
    default: "info",
    help: "error, warn, info or debug",
  },
  {
    name: "log-format",
    value: "FORMAT",
    default: "text",
    help: "text, or json: one object a line with time, level, message and fields",
  },
  {
    name: "data-dir",
    value: "DIR",
    default: "none: data in memory",
    help: "keep the data in DIR across restarts (needs --id)",
  },
];

/**
 * The environment twin of a flag: `http-port` → `GOSSIP_KV_HTTP_PORT`.
 *
 * @example
 * ```ts
 * import { envTwin } from "../cli.ts";
 * console.log(envTwin("key-file")); // "GOSSIP_KV_KEY_FILE"
 * ```
 */
export function envTwin(flag: string): string {
  return `GOSSIP_KV_${flag.toUpperCase().replaceAll("-", "_")}`;
}

/** The text `--help` prints. */
export function helpText(): string {
  const rows = FLAGS.map((f) =>
    [f.value === "" ? `--${f.name}` : `--${f.name}=${f.value}`, envTwin(f.name)] as const
  );
  const width = Math.max(...rows.map(([flag]) => flag.length));
  return [
    "Usage: gossip-kv agent [flags]      (in the repository: deno task node [flags])",
    "",
    "Starts one Gossip KV member: gossip over UDP, and the HTTP API (/healthz, /state, /usr/:key,",
    "/members, /metrics, the dashboard at /). SIGINT or SIGTERM leaves the cluster and exits 0;",
    "SIGHUP re-reads the key file and re-resolves the seeds.",
    "",
    "Flags, written --flag=value or --flag value. Each has an environment twin; a flag wins over",
    "its twin, and an empty variable counts as unset.",
    "",
    ...FLAGS.flatMap((f, i) => [
      `  ${rows[i]![0].padEnd(width)}  ${rows[i]![1]}`,
      `      ${f.help} (default: ${f.default})`,
    ]),
    "  --help, -h",
    "      print this help",
    "  --version",
    "      print the version",
    "",
    "Bad flags or an unreadable key file exit with code 2; a port that cannot be bound, 1.",
  ].join("\n");
}

/** The default member id: the hostname and a random suffix, e.g. `web-1-3fa9c2`. */
function defaultId(): string {
  let host = "";
  try {
    host = osHostname();
  } catch {
    // Deno without --allow-sys=hostname: an id without the hostname is still unique.
  }
  host = host.split(".")[0]!.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 200) || "gossip-kv";
  const suffix = [...crypto.getRandomValues(new Uint8Array(3))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${host}-${suffix}`;
}

/**
 * Reads the `node` command's flags from `args` (without the program and script) and their
 * environment twins from `env` (a flag wins over its twin; an empty variable counts as
 * unset), fills in the defaults and checks every value. Throws a {@linkcode UsageError}
 * for anything wrong; reads no file and starts nothing.
 *
 * @example
 * ```ts
 * import { parseFlags } from "../cli.ts";
 * const config = parseFlags(["--port=7000", "--seeds", "10.0.0.5:7946,gossip.local"], {
 *   GOSSIP_KV_HTTP_PORT: "0",
 * });
 * console.log(config.port, config.seeds, config.httpPort); // 7000 ["10.0.0.5:7946", "gossip.local"] 0
 * ```
 */
export function parseFlags(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): NodeConfig {
  const { flags } = tokenize(args, [
    ...FLAGS.map((f) => ({
      name: f.name,
      kind: f.value === "" ? "boolean" as const : "string" as const,
    })),
    { name: "help", kind: "boolean", short: "h" },
    { name: "version", kind: "boolean" },
  ], { positionals: false });
  const given = new Map<string, string>();
  for (const [name, value] of flags) if (typeof value === "string") given.set(name, value);
  const command: NodeConfig["command"] = flags.has("help")
    ? "help"
    : flags.has("version")
    ? "version"
    : "start";

  /** The value and where it came from (for messages), or undefined when unset. */
  const read = (flag: string): { value: string; from: string } | undefined => {
    const value = given.get(flag);
    if (value !== undefined) return { value, from: `--${flag}` };
    const twin = envTwin(flag);
    const fromEnv = env[twin];
    return fromEnv === undefined || fromEnv === "" ? undefined : { value: fromEnv, from: twin };
  };
  const text = (
    flag: string,
    check?: (v: string) => string | undefined,
    secret = false,
  ): string | undefined => {
    const r = read(flag);
    if (r === undefined) return undefined;
    const problem = r.value.trim() === "" ? "must not be empty" : check?.(r.value);
    if (problem) {
      // A secret is never echoed: messages end up in logs.
      const got = secret ? "" : `, got ${JSON.stringify(r.value)}`;
      throw new UsageError(`${r.from} ${problem}${got}`);
    }
    return r.value;
  };
  /** A boolean flag's twin: 1, true or yes; 0, false or no (or unset). */
  const envFlag = (flag: string): boolean => {
    const twin = envTwin(flag);
    const v = env[twin]?.trim().toLowerCase();
    if (v === undefined || v === "") return false;
    if (["1", "true", "yes"].includes(v)) return true;
    if (["0", "false", "no"].includes(v)) return false;
    throw new UsageError(`${twin} must be 1, true, yes, 0, false or no, got ${JSON.stringify(v)}`);
  };
  const integer = (flag: string, fallback: number, min: number, max: number, what: string) => {
    const raw = text(
      flag,
      (v) =>
        /^\d{1,10}$/.test(v) && Number(v) >= min && Number(v) <= max
          ? undefined
          : `must be ${what} from ${min} to ${max}`,
    );
    return raw === undefined ? fallback : Number(raw);
  };
  const address = (v: string) =>
    isIP(v.replace(/^\[(.*)\]$/, "$1")) || HOSTNAME.test(v)
      ? undefined
      : "must be an IP address or a host name";

  const id = text("id", (v) => (v.length > 256 ? "must be at most 256 characters" : undefined));
  const bind = text("bind", address)?.replace(/^\[(.*)\]$/, "$1");
  const config: NodeConfig = {
    command,
    id: id ?? defaultId(),
    bind: "",
    port: integer("port", 7946, 0, 65535, "a port number"),
    seeds: [],
    cluster:
      text("cluster", (v) => (v.length > 256 ? "must be at most 256 characters" : undefined)) ??
        "default",
    httpPort: integer("http-port", 8080, 0, 65535, "a port number"),
    httpBind: text("http-bind", address)?.replace(/^\[(.*)\]$/, "$1") ?? "127.0.0.1",
    logLevel: "info",
    logFormat: "text",
  };
  const advertise = text("advertise", (v) => {
    try {
      parseAddress(v, 0);
      return undefined;
    } catch {
      return "must be host, host:port or [v6]:port";
    }
  });
  if (advertise !== undefined) config.advertise = advertise;
  const interval = integer("gossip-interval", 0, 10, 3_600_000, "a period in ms");
  if (interval !== 0) config.gossipIntervalMs = interval;
  const grace = integer("tombstone-grace", 0, 1_000, 2_592_000_000, "a period in ms");
  if (grace !== 0) config.tombstoneGraceMs = grace;
  const seeds = read("seeds");
  if (seeds !== undefined) {
    for (const item of seeds.value.split(",").map((s) => s.trim()).filter(Boolean)) {
      try {
        parseSeed(item);
      } catch (error) {
        throw new UsageError(`${seeds.from}: ${(error as Error).message}`);
      }
      config.seeds.push(item);
    }
  }
  const keyFile = text("key-file");
  if (keyFile !== undefined) config.keyFile = keyFile;
  // Plaintext gossip lets whoever reaches the port read and write everything: without a key,
  // only this machine (as Consul's dev agent); with one, every interface.
  config.bind = bind ?? (keyFile === undefined ? "127.0.0.1" : "0.0.0.0");
  if (flags.has("require-encryption") || envFlag("require-encryption")) {
    if (keyFile === undefined) {
      throw new UsageError(
        "--require-encryption refuses plaintext gossip, but no key file is given: set " +
          "--key-file (gossip-kv keygen makes one)",
      );
    }
    config.requireEncryption = true;
  }
  const token = text(
    "http-token",
    (v) => (/\s/.test(v) ? "must not contain spaces" : undefined),
    true,
  );
  if (token !== undefined) config.httpToken = token;
  const level = text(
    "log-level",
    (v) =>
      (LOG_LEVELS as readonly string[]).includes(v.toLowerCase())
        ? undefined
        : `must be one of ${LOG_LEVELS.join(", ")}`,
  );
  if (level !== undefined) config.logLevel = level.toLowerCase() as LogLevel;
  const format = text(
    "log-format",
    (v) =>
      (LOG_FORMATS as readonly string[]).includes(v.toLowerCase())
        ? undefined
        : `must be one of ${LOG_FORMATS.join(", ")}`,
  );
  if (format !== undefined) config.logFormat = format.toLowerCase() as LogFormat;
  const dataDir = text("data-dir");
  if (dataDir !== undefined) {
    if (id === undefined) {
      throw new UsageError(
        "--data-dir needs --id: with a new id at every start, the member would come back " +
          "as a stranger to its own data",
      );
    }
    config.dataDir = dataDir;
  }
  return config;
}
