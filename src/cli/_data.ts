// `gossip-kv get | put | del | keys`: the usr section through a member's HTTP API
// (/usr/:key, /usr?prefix=). Private to src/cli.ts.
import {
  call,
  CLIENT_HELP,
  clientTokens,
  type Command,
  expectOk,
  Failure,
  getJson,
  KEY_VIEW_HELP,
  keyView,
  positionals,
  target,
} from "./_client.ts";
import { UsageError } from "./_flags.ts";

const path = (key: string) => `/usr/${encodeURIComponent(key)}`;

function checkKey(key: string): string {
  if (key === "") throw new UsageError("KEY must not be empty");
  if (key === "." || key === "..") {
    throw new UsageError(`KEY ${JSON.stringify(key)} cannot be written in a URL path`);
  }
  return key;
}

/** `gossip-kv get`. */
export const get: Command = {
  name: "get",
  summary: "print the value of a key (exit 1 when absent)",
  help: [
    "Usage: gossip-kv get KEY [--raw] [flags]",
    "",
    "Prints the value of KEY as JSON on one line; a string value without quotes with --raw.",
    "Exits 1 when the key is absent or deleted.",
    "",
    "  --raw              print a string value as it is, not as JSON",
    CLIENT_HELP,
  ].join("\n"),
  async run(args, io) {
    const tokens = clientTokens(args, [{ name: "raw", kind: "boolean" }]);
    if (tokens.flags.has("help")) {
      io.out(this.help);
      return 0;
    }
    const [key] = positionals(tokens, "gossip-kv get KEY", ["KEY"]);
    const to = target(tokens, io.env);
    const res = await call(to, "GET", path(checkKey(key!)));
    if (res.status === 404) {
      await res.body?.cancel();
      throw new Failure(`Key ${JSON.stringify(key)} is absent (or deleted) on ${to.base}`);
    }
    await expectOk(res, `GET ${path(key!)}`);
    const value: unknown = await res.json();
    io.out(tokens.flags.has("raw") && typeof value === "string" ? value : JSON.stringify(value));
    return 0;
  },
};

/** `gossip-kv put`. */
export const put: Command = {
  name: "put",
  summary: "set a key to a JSON value (or a string with --raw; - reads standard input)",
  help: [
    "Usage: gossip-kv put KEY VALUE|- [--raw] [flags]",
    "",
    "Sets KEY to VALUE, written as JSON: 42, true, '\"text\"', '{\"a\":[1,2]}'. With --raw, VALUE",
    "is stored as a string as it is. `-` reads the value from standard input (with --raw,",
    "without its final newline). The member replicates it to the others.",
    "",
    "  --raw              store VALUE as a string, not as JSON",
    CLIENT_HELP,
  ].join("\n"),
  async run(args, io) {
    const tokens = clientTokens(args, [{ name: "raw", kind: "boolean" }]);
    if (tokens.flags.has("help")) {
      io.out(this.help);
      return 0;
    }
    const [key, given] = positionals(tokens, "gossip-kv put KEY VALUE|-", ["KEY", "VALUE"]);
    checkKey(key!);
    const to = target(tokens, io.env);
    let text = given === "-" ? await io.stdin() : given!;
    let body: string;
    if (tokens.flags.has("raw")) {
      if (given === "-") text = text.replace(/\r?\n$/, "");
      body = JSON.stringify(text);
    } else {
      try {
        JSON.parse(text);
      } catch (error) {
        throw new UsageError(
          `VALUE is not JSON (${(error as Error).message}): quote a string ('"text"') or ` +
            "pass --raw to store it as a string",
        );
      }
      body = text;
    }
    const res = await call(to, "PUT", path(key!), { body });
    await expectOk(res, `PUT ${path(key!)}`);
    await res.body?.cancel();
    return 0;
  },
};

/** `gossip-kv del`. */
export const del: Command = {
  name: "del",
  summary: "delete a key",
  help: [
    "Usage: gossip-kv del KEY [flags]",
    "",
    "Deletes KEY (a tombstone that replicates like a write). Deleting an absent key succeeds.",
    "",
    CLIENT_HELP,
  ].join("\n"),
  async run(args, io) {
    const tokens = clientTokens(args, []);
    if (tokens.flags.has("help")) {
      io.out(this.help);
      return 0;
    }
    const [key] = positionals(tokens, "gossip-kv del KEY", ["KEY"]);
    const to = target(tokens, io.env);
    const res = await call(to, "DELETE", path(checkKey(key!)));
    await expectOk(res, `DELETE ${path(key!)}`);
    await res.body?.cancel();
    return 0;
  },
};

/** The most keys one request lists (the HTTP API's own bound on `?limit=`). */
const MAX_KEYS = 10_000;

/** `gossip-kv keys`. */
export const keys: Command = {
  name: "keys",
  summary: "list the keys, sorted (--prefix narrows)",
  help: [
    "Usage: gossip-kv keys [--prefix=P] [--format=text|json] [flags]",
    "",
    `Lists the keys holding a value, sorted, one a line (or a JSON array); at most ${MAX_KEYS}:`,
    "beyond that, a warning on standard error says to narrow them with --prefix.",
    "",
    KEY_VIEW_HELP,
  ].join("\n"),
  async run(args, io) {
    const view = keyView(this, args, io);
    if (view === undefined) return 0;
    const { to, prefix, how } = view;
    const query = new URLSearchParams({ limit: String(MAX_KEYS) });
    if (prefix !== undefined) query.set("prefix", prefix);
    const list = await getJson<{ entries: { key: string }[]; truncated: boolean }>(
      to,
      `/usr?${query}`,
    );
    const names = list.entries.map((e) => e.key);
    if (how === "json") io.out(JSON.stringify(names));
    else for (const name of names) io.out(name);
    if (list.truncated) {
      io.err(`gossip-kv: only the first ${MAX_KEYS} keys are listed; narrow them with --prefix`);
    }
    return 0;
  },
};
