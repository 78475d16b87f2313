/**
 * The `gossip-kv` command: run a member (`agent`), and look into or change a running
 * cluster through a member's HTTP API (`members`, `get`, `put`, `del`, `keys`, `watch`,
 * `info`), or manage its keys (`keygen`, `keyring`). The same file runs on the three
 * runtimes, from a checkout or from JSR:
 *
 * ```sh
 * deno run -A jsr:@gossip-kv/gossip-kv/cli members       # or: deno install -g -A -n gossip-kv jsr:@gossip-kv/gossip-kv/cli
 * deno task node --seeds=10.0.0.5:7946                    # in the repository: gossip-kv agent
 * bun src/cli.ts get greeting
 * npx tsx src/cli.ts put greeting '"hello"'
 * ```
 *
 * Exit codes: 0 success, 1 the operation failed (a member unreachable, a key absent), 2 a
 * usage error. `gossip-kv --help` lists the subcommands, `gossip-kv SUBCOMMAND --help` their
 * flags. Without a subcommand (no argument, or a flag first), `gossip-kv` is `gossip-kv
 * agent`, the form the container image uses.
 *
 * Importing this module starts nothing: {@linkcode main} runs only when this file is the
 * program (`import.meta.main` on Deno and Bun; `process.argv[1]` on Node).
 *
 * @module
 */
import { realpathSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { agent, versionLine } from "./cli/_agent.ts";
import { closest } from "./cli/_args.ts";
import { type Command, Failure, type Io } from "./cli/_client.ts";
import { del, get, keys, put } from "./cli/_data.ts";
import { keygen, keyring } from "./cli/_keyring.ts";
import { info, members } from "./cli/_members.ts";
import { watch } from "./cli/_watch.ts";
import { UsageError } from "./cli/_flags.ts";

export { envTwin, FLAGS, LOG_FORMATS, LOG_LEVELS, parseFlags, UsageError } from "./cli/_flags.ts";
export type { FlagSpec, LogFormat, LogLevel, NodeConfig } from "./cli/_flags.ts";

const COMMANDS: readonly Command[] = [
  agent,
  members,
  info,
  get,
  put,
  del,
  keys,
  watch,
  keygen,
  keyring,
];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "Usage: gossip-kv SUBCOMMAND [flags]",
    "",
    "A gossip-replicated key-value store: run a member, or talk to one's HTTP API.",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "`gossip-kv SUBCOMMAND --help` describes each. Without a subcommand, gossip-kv runs the agent",
    "(`gossip-kv --seeds=...` is `gossip-kv agent --seeds=...`). `--version` prints the version.",
    "Exit codes: 0 success, 1 the operation failed, 2 a usage error.",
  ].join("\n");
}

/**
 * What a process's own streams and signals give a subcommand. The agent installs its own
 * signal handlers; `watch` ends on the first SIGINT or SIGTERM; the others keep the default.
 */
function processIo(
  env: Readonly<Record<string, string | undefined>>,
  command: Command,
): Io & { close(): void } {
  const controller = new AbortController();
  const abort = () => controller.abort();
  const listens = command.follows === true && command !== agent;
  if (listens) {
    process.on("SIGINT", abort);
    process.on("SIGTERM", abort);
  }
  return {
    env,
    out: (line) => console.log(line),
    err: (line) => console.error(line),
    async stdin() {
      const decoder = new TextDecoder();
      let text = "";
      for await (const chunk of process.stdin) {
        text += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
      }
      return text + decoder.decode();
    },
    signal: controller.signal,
    close() {
      if (!listens) return;
      process.off("SIGINT", abort);
      process.off("SIGTERM", abort);
    },
  };
}

/**
 * Runs `gossip-kv` with `args` (without program and script) and `env`. Resolves with the
 * exit code: 0 success, 1 the operation failed, 2 a usage error; the `agent` subcommand
 * serves until SIGINT or SIGTERM. Never calls `process.exit` itself.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * console.log(await main(["--version"], {})); // prints "gossip-kv 0.1.0 (deno 2.9.6)", then 0
 * ```
 */
export async function main(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  const [first, ...rest] = args;
  if (first === "--version") {
    console.log(versionLine());
    return 0;
  }
  if (first === "--help" || first === "-h" || first === "help") {
    console.log(overview());
    return 0;
  }
  let command = COMMANDS.find((c) => c.name === first);
  let commandArgs = rest;
  if (first === undefined || first.startsWith("-")) [command, commandArgs] = [agent, [...args]];
  if (!command) {
    const close = closest(first!, COMMANDS.map((c) => c.name));
    console.error(
      `gossip-kv: Unknown subcommand ${JSON.stringify(first)}${
        close ? ` (did you mean ${close}?)` : ""
      }; gossip-kv --help lists them`,
    );
    return 2;
  }
  const io = processIo(env, command);
  try {
    return await command.run(commandArgs, io);
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof Failure)) throw error;
    io.err(`gossip-kv ${command.name}: ${error.message}`);
    return error.exitCode;
  } finally {
    io.close();
  }
}

/** Whether this module is the program being run, not an import. */
function isEntry(): boolean {
  const meta = import.meta as { main?: boolean };
  if (typeof meta.main === "boolean") return meta.main; // Deno, Bun (and Node 24+)
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  main(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (error) => {
      console.error("gossip-kv:", error);
      process.exit(1);
    },
  );
}
