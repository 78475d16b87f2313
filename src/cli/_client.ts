// What every subcommand but `agent` shares: its input and output (Io), the failure that exits
// 1, the flags that point it at a member's HTTP API, and the requests to that API, with
// errors that say what to do. Private to src/cli.ts.
import { type ArgSpec, tokenize, type Tokens } from "./_args.ts";
import { envTwin, UsageError } from "./_flags.ts";

/** Where a subcommand reads and writes; the process's streams in the program, captured in tests. */
export interface Io {
  /** The environment (flags' twins). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Writes a line on standard output. */
  out(line: string): void;
  /** Writes a line on standard error. */
  err(line: string): void;
  /** Reads standard input to its end. */
  stdin(): Promise<string>;
  /** Aborted on SIGINT or SIGTERM: `watch` then ends with code 0. */
  readonly signal: AbortSignal;
}

/** The operation failed (member unreachable, key absent, refused): exit code 1. */
export class Failure extends Error {
  /** The exit code of a failed operation. */
  readonly exitCode = 1;
  /** A failure saying `message` (sentence case, what happened and what to do). */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "Failure";
  }
}

/** A subcommand: its name, one line for the overview, its help, and what it runs. */
export interface Command {
  /** The word after `gossip-kv`. */
  readonly name: string;
  /** One line for `gossip-kv --help`. */
  readonly summary: string;
  /** The text `gossip-kv NAME --help` prints. */
  readonly help: string;
  /**
   * Runs until interrupted: SIGINT and SIGTERM abort `io.signal` instead of ending the
   * process (the agent and `watch`). Otherwise, the signals keep their default.
   */
  readonly follows?: boolean;
  /** Runs it with the arguments after its name; resolves with the exit code. */
  run(args: readonly string[], io: Io): Promise<number>;
}

/** The flags of every command that talks to a member. */
export const CLIENT_ARGS: readonly ArgSpec[] = [
  { name: "http-addr", kind: "string" },
  { name: "token", kind: "string" },
  { name: "help", kind: "boolean", short: "h" },
];

/** The default member: the local one, at the agent's default HTTP address. */
export const DEFAULT_HTTP_ADDR = "127.0.0.1:8080";

/** The help lines of {@linkcode CLIENT_ARGS}. */
export const CLIENT_HELP = [
  `  --http-addr=ADDR   ${envTwin("http-addr")}`,
  `      the member's HTTP API: host:port or a URL (default: ${DEFAULT_HTTP_ADDR})`,
  `  --token=TOKEN      ${envTwin("http-token")}`,
  "      bearer token of the member's write routes (default: none)",
  "  --help, -h",
  "      print this help",
].join("\n");

/** A member's HTTP API, and the token to write to it. */
export interface Target {
  /** The base URL, without a trailing slash: `http://127.0.0.1:8080`. */
  readonly base: string;
  /** The bearer token, if any. */
  readonly token?: string;
}

/** A flag's value, else its environment twin's (an empty variable counts as unset). */
export function flagOrEnv(
  tokens: Tokens,
  name: string,
  env: Io["env"],
  twin = envTwin(name),
): { value: string; from: string } | undefined {
  const given = tokens.flags.get(name);
  if (typeof given === "string") return { value: given, from: `--${name}` };
  const fromEnv = env[twin];
  return fromEnv === undefined || fromEnv === "" ? undefined : { value: fromEnv, from: twin };
}

/** Reads `--http-addr` and `--token` (or their twins); throws a {@linkcode UsageError}. */
export function target(tokens: Tokens, env: Io["env"]): Target {
  const addr = flagOrEnv(tokens, "http-addr", env) ??
    { value: DEFAULT_HTTP_ADDR, from: "the default" };
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(addr.value) ? addr.value : `http://${addr.value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `${addr.from} must be host:port or an http(s) URL, got ${JSON.stringify(addr.value)}`,
    );
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search || url.hash) {
    throw new UsageError(
      `${addr.from} must be host:port or an http(s) URL, got ${JSON.stringify(addr.value)}`,
    );
  }
  const token = flagOrEnv(tokens, "token", env, envTwin("http-token"));
  if (token !== undefined && /\s/.test(token.value)) {
    throw new UsageError(`${token.from} must not contain spaces`);
  }
  const base = url.href.replace(/\/+$/, "");
  return token === undefined ? { base } : { base, token: token.value };
}

/** The tokens of a client command's `args`, with its own `specs` besides the common ones. */
export function clientTokens(args: readonly string[], specs: readonly ArgSpec[]): Tokens {
  return tokenize(args, [...CLIENT_ARGS, ...specs], { positionals: true });
}

function reason(error: unknown): string {
  const e = error as { cause?: { code?: string; message?: string }; code?: string };
  return e.cause?.code ?? e.code ?? e.cause?.message ?? (error as Error).message ?? String(error);
}

/**
 * Sends a request to the member; a network failure throws a {@linkcode Failure} saying
 * which address did not answer. Any HTTP status is returned.
 */
export async function call(
  to: Target,
  method: string,
  path: string,
  init: { body?: string; signal?: AbortSignal } = {},
): Promise<Response> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  if (to.token !== undefined) headers.authorization = `Bearer ${to.token}`;
  try {
    return await fetch(`${to.base}${path}`, {
      method,
      headers,
      ...(init.body !== undefined && { body: init.body }),
      signal: init.signal ?? AbortSignal.timeout(10_000),
    });
  } catch (error) {
    if (init.signal?.aborted) throw error;
    throw new Failure(
      `Cannot reach the member at ${to.base} (${reason(error)}): is it running? ` +
        "Point --http-addr (or GOSSIP_KV_HTTP_ADDR) at its HTTP API",
      { cause: error },
    );
  }
}

/** Throws a {@linkcode Failure} for a response that is not 2xx, with the member's reason. */
export async function expectOk(res: Response, what: string): Promise<void> {
  if (res.ok) return;
  const text = await res.text().catch(() => "");
  let detail = "";
  try {
    const body = JSON.parse(text) as { detail?: string; title?: string };
    detail = body.detail ?? body.title ?? "";
  } catch {
    detail = text.slice(0, 200);
  }
  const hint = res.status === 401
    ? ": the member needs its token (--token or GOSSIP_KV_HTTP_TOKEN)"
    : detail
    ? `: ${detail}`
    : "";
  throw new Failure(`${what} failed with HTTP ${res.status}${hint}`);
}

/** GETs `path` and parses the JSON answer; throws a {@linkcode Failure} otherwise. */
export async function getJson<T>(to: Target, path: string): Promise<T> {
  const res = await call(to, "GET", path);
  await expectOk(res, `GET ${path}`);
  return await res.json() as T;
}

/** The `--format` flag's values, checked. */
export function format<F extends string>(
  tokens: Tokens,
  allowed: readonly F[],
): F {
  const given = tokens.flags.get("format");
  if (given === undefined || given === true) return allowed[0]!;
  if (!(allowed as readonly string[]).includes(given)) {
    throw new UsageError(
      `--format must be one of ${allowed.join(", ")}, got ${JSON.stringify(given)}`,
    );
  }
  return given as F;
}

/** The help lines of the flags {@linkcode keyView} reads (`keys` and `watch`). */
export const KEY_VIEW_HELP = [
  "  --prefix=P         only keys that start with P",
  "  --format=FORMAT    text (default) or json",
  CLIENT_HELP,
].join("\n");

/** Which keys a command shows, from which member, and how. */
export interface KeyView {
  /** The member. */
  readonly to: Target;
  /** Only keys that start with this (`--prefix`), if given. */
  readonly prefix: string | undefined;
  /** One line of text per key or change, or JSON (`--format`). */
  readonly how: "text" | "json";
}

/**
 * Reads the arguments of a command that takes only `--prefix`, `--format=text|json` and the
 * client flags (`keys`, `watch`); on `--help`, prints its help and returns `undefined`.
 */
export function keyView(command: Command, args: readonly string[], io: Io): KeyView | undefined {
  const tokens = clientTokens(args, [
    { name: "prefix", kind: "string" },
    { name: "format", kind: "string" },
  ]);
  if (tokens.flags.has("help")) {
    io.out(command.help);
    return undefined;
  }
  positionals(tokens, `gossip-kv ${command.name} [flags]`, []);
  const how = format(tokens, ["text", "json"] as const);
  const prefix = tokens.flags.get("prefix");
  return {
    to: target(tokens, io.env),
    prefix: typeof prefix === "string" ? prefix : undefined,
    how,
  };
}

/** Refuses positionals beyond `names` (and requires them all), for a usage error that lists them. */
export function positionals(tokens: Tokens, usage: string, names: readonly string[]): string[] {
  const got = tokens.positionals;
  if (got.length !== names.length) {
    const missing = names.slice(got.length);
    throw new UsageError(
      missing.length > 0
        ? `Missing ${missing.join(" and ")}: usage ${usage}`
        : `Unexpected argument ${JSON.stringify(got[names.length])}: usage ${usage}`,
    );
  }
  return got;
}

/** Lays out `rows` in columns two spaces apart, as `serf members` does. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  }
  return rows.map((row) =>
    row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")
  );
}

/** `ms` before `now` as people read it: `0.4s ago`, `3m ago`. */
export function ago(ms: number | null, now: number): string {
  if (ms === null) return "-";
  const s = Math.max(0, now - ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}
