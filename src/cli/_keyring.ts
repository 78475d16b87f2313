// `gossip-kv keygen` and `gossip-kv keyring list | install | use | remove`: cluster keys in
// the key-file format, edited in place the way running members re-read it (members poll the
// file every 5 s and at once on SIGHUP; src/cli/_keys.ts). Private to src/cli.ts.
import { randomBytes } from "node:crypto";
import { rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { generateKey, parseKey } from "../wire/crypto.ts";
import { tokenize } from "./_args.ts";
import { type Command, flagOrEnv, format, positionals } from "./_client.ts";
import { envTwin, UsageError } from "./_flags.ts";
import { checkKeyFile, fingerprint, readKeyFile } from "./_keys.ts";

/** `gossip-kv keygen`. */
export const keygen: Command = {
  name: "keygen",
  summary: "print a new cluster key (32 random bytes, base64): a valid key file",
  help: [
    "Usage: gossip-kv keygen",
    "",
    "Prints a new cluster key: 32 random bytes in base64, one line, which is a key file of",
    "one key (`gossip-kv keygen > cluster.keys`). Add it to a running cluster with",
    "`gossip-kv keyring install`.",
  ].join("\n"),
  run(args, io) {
    const tokens = tokenize(args, [{ name: "help", kind: "boolean", short: "h" }], {
      positionals: true,
    });
    if (tokens.flags.has("help")) {
      io.out(this.help);
      return Promise.resolve(0);
    }
    positionals(tokens, "gossip-kv keygen", []);
    io.out(generateKey());
    return Promise.resolve(0);
  },
};

const KEYRING_HELP = [
  "Usage: gossip-kv keyring list|install|use|remove [KEY|-] --key-file=PATH",
  "",
  "Edits the key file the members read (--key-file, as the agent's; GOSSIP_KV_KEY_FILE):",
  "",
  "  list             the keys' fingerprints, the primary first (never the keys)",
  "  install KEY|-    add KEY (or one read from standard input) as a secondary key",
  "  use KEY|FP       make an installed key the primary: the one that seals",
  "  remove KEY|FP    remove an installed key that is not the primary",
  "",
  "A KEY is base64 (gossip-kv keygen); FP is its fingerprint, as list prints it. Members",
  "re-read the file within 5 s (at once on SIGHUP) and log `Cluster keys reloaded`. Rotate",
  "in three steps, each done on every member's file and reloaded before the next: install",
  "the new key, use it, remove the old one. No datagram is refused along the way.",
  "",
  "  --key-file=PATH    GOSSIP_KV_KEY_FILE",
  "      the key file to edit (it is replaced in one rename, its mode kept)",
  "  --format=FORMAT    list as text (default) or json",
  "  --help, -h",
  "      print this help",
].join("\n");

/** A key file as lines, each key line with its fingerprint. */
interface Ring {
  lines: string[];
  /** Index in `lines` and fingerprint of each key, primary first. */
  keys: { line: number; fp: string }[];
}

function ring(text: string): Ring {
  const lines = text.replace(/\r?\n$/, "").split(/\r?\n/);
  const keys = lines.flatMap((l, i) => {
    const t = l.trim();
    return t === "" || t.startsWith("#") ? [] : [{ line: i, fp: fingerprint(t) }];
  });
  return { lines, keys };
}

/** The installed key that `given` names (a key or a fingerprint). */
function find(r: Ring, given: string, path: string): { line: number; fp: string } {
  const fp = /^[0-9a-f]{12}$/.test(given) ? given : fingerprint(given);
  const found = r.keys.find((k) => k.fp === fp);
  if (!found) {
    throw new UsageError(
      `Key ${fp} is not in ${path}; gossip-kv keyring list shows the installed ones`,
    );
  }
  return found;
}

async function save(path: string, lines: readonly string[]): Promise<void> {
  const text = `${lines.join("\n")}\n`;
  checkKeyFile(path, text); // never write a file the members would refuse
  const mode = (await stat(path)).mode & 0o777;
  const temp = join(dirname(path), `.${randomBytes(6).toString("hex")}.keys.tmp`);
  try {
    await writeFile(temp, text, { mode });
    await rename(temp, path); // readers see the old file or the new one, never half of it
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** `gossip-kv keyring`. */
export const keyring: Command = {
  name: "keyring",
  summary: "list, install, use (make primary) or remove cluster keys in a key file",
  help: KEYRING_HELP,
  async run(args, io) {
    const tokens = tokenize(args, [
      { name: "key-file", kind: "string" },
      { name: "format", kind: "string" },
      { name: "help", kind: "boolean", short: "h" },
    ], { positionals: true });
    if (tokens.flags.has("help")) {
      io.out(this.help);
      return 0;
    }
    const [action, ...rest] = tokens.positionals;
    const actions = ["list", "install", "use", "remove"];
    if (action === undefined || !actions.includes(action)) {
      throw new UsageError(
        `${
          action === undefined ? "Missing the action" : `Unknown action ${JSON.stringify(action)}`
        }: gossip-kv keyring ${actions.join("|")}; --help says more`,
      );
    }
    const file = flagOrEnv(tokens, "key-file", io.env);
    if (file === undefined) {
      throw new UsageError(`keyring needs --key-file=PATH (or ${envTwin("key-file")})`);
    }
    const path = file.value;
    const current = await readKeyFile(path);
    const r = ring(current.text);
    const usage = `gossip-kv keyring ${action} ${action === "list" ? "" : "KEY "}--key-file=PATH`;
    if (action === "list") {
      positionals({ ...tokens, positionals: rest }, usage, []);
      const list = r.keys.map((k, i) => ({ fingerprint: k.fp, primary: i === 0 }));
      if (format(tokens, ["text", "json"] as const) === "json") io.out(JSON.stringify(list));
      else for (const k of list) io.out(`${k.fingerprint}  ${k.primary ? "primary" : "secondary"}`);
      return 0;
    }
    const [given] = positionals({ ...tokens, positionals: rest }, usage, ["KEY"]);
    const key = (given === "-" ? await io.stdin() : given!).trim();
    const lines = [...r.lines];
    if (action === "install") {
      try {
        parseKey(key, "KEY");
      } catch (error) {
        throw new UsageError(`${(error as Error).message}; make one with gossip-kv keygen`);
      }
      if (r.keys.some((k) => k.fp === fingerprint(key))) {
        throw new UsageError(`Key ${fingerprint(key)} is already in ${path}`);
      }
      lines.push(key);
      await save(path, lines);
      io.out(`Installed key ${fingerprint(key)} in ${path}, as a secondary key`);
      return 0;
    }
    const found = find(r, key, path);
    const primary = r.keys[0]!;
    if (action === "use") {
      if (found.fp === primary.fp) {
        io.out(`Key ${found.fp} is the primary already`);
        return 0;
      }
      const [moved] = lines.splice(found.line, 1);
      lines.splice(primary.line, 0, moved!);
      await save(path, lines);
      io.out(`Key ${found.fp} is the primary in ${path}`);
      return 0;
    }
    if (found.fp === primary.fp) {
      throw new UsageError(
        `Key ${found.fp} is the primary: make another key the primary first (keyring use)`,
      );
    }
    lines.splice(found.line, 1);
    await save(path, lines);
    io.out(`Removed key ${found.fp} from ${path}`);
    return 0;
  },
};
