/**
 * The `node` command: one Gossip KV member per process, gossiping over UDP, with the HTTP
 * API. The same file runs on the three runtimes:
 *
 * ```sh
 * deno task node --seeds=10.0.0.5:7946       # deno run --unstable-net --allow-net ... src/cli.ts
 * bun src/cli.ts --seeds=10.0.0.5:7946
 * npx tsx src/cli.ts --seeds=10.0.0.5:7946
 * ```
 *
 * Flags and their `GOSSIP_KV_*` environment twins are listed by `--help` and in the README.
 * SIGINT and SIGTERM leave the cluster gracefully and exit 0; SIGHUP re-reads the key file
 * and re-resolves the seed names. Bad flags or an unusable key file print a message on
 * stderr and exit 2; a port that cannot be bound exits 1.
 *
 * Importing this module starts nothing: {@linkcode main} runs only when this file is the
 * program (`import.meta.main` on Deno and Bun; `process.argv[1]` on Node).
 *
 * @module
 */
import { readFileSync, realpathSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { helpText, type NodeConfig, parseFlags, UsageError } from "./cli/flags.ts";
import { type KeyFile, readKeyFile } from "./cli/keys.ts";
import { createLogger } from "./cli/log.ts";
import { type RunningNode, runtimeInfo, startNode } from "./cli/node.ts";
import { stopSignals } from "./cli/_signals.ts";

export { envTwin, FLAGS, LOG_LEVELS, parseFlags, UsageError } from "./cli/flags.ts";
export type { FlagSpec, LogLevel, NodeConfig } from "./cli/flags.ts";

function version(): string {
  // Read on demand: --version is the only user, and deno.json sits at the repository root
  // (the image's /app) next to src/.
  try {
    const text = readFileSync(new URL("../deno.json", import.meta.url), "utf8");
    return (JSON.parse(text) as { version?: string }).version ?? "unknown";
  } catch {
    return "unknown";
  }
}

/**
 * Runs the `node` command with `args` (without program and script) and `env`: starts the
 * member and serves until SIGINT or SIGTERM, then leaves the cluster. Resolves with the exit
 * code: 0 after a graceful stop (or `--help`, `--version`), 1 when a port cannot be bound,
 * 2 for bad flags or an unusable key file. Never calls `process.exit` itself.
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
  let config: NodeConfig;
  let keyFile: KeyFile | undefined;
  try {
    config = parseFlags(args, env);
    if (config.command === "help") {
      console.log(helpText());
      return 0;
    }
    if (config.command === "version") {
      const { runtime, version: v } = runtimeInfo();
      console.log(`gossip-kv ${version()} (${runtime} ${v})`);
      return 0;
    }
    if (config.keyFile !== undefined) keyFile = await readKeyFile(config.keyFile);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`gossip-kv: ${error.message}`);
    return error.exitCode;
  }
  const log = createLogger(config.logLevel, undefined, config.logFormat);

  // Handlers first: a signal during start-up must not kill the process half-joined. With a
  // handler installed, SIGTERM also works when this is PID 1 in a container (the kernel
  // drops signals PID 1 does not handle).
  let stop: (signal: string) => void = () => {};
  const stopping = new Promise<string>((resolve) => (stop = resolve));
  const signals = stopSignals();
  let node: RunningNode | undefined;
  const onStop = (signal: string) => {
    switch (signals.signalled(Date.now())) {
      case "leave":
        return stop(signal);
      case "copy":
        return log.debug(`${signal} again at once: a copy of the same interrupt`);
      case "force":
        log.warn(`${signal} again: exiting without waiting`);
        process.exit(1);
    }
  };
  const onHangup = () => {
    log.info("SIGHUP: reading the key file and resolving the seeds again");
    void node?.reload();
  };
  const listen = (signal: "SIGINT" | "SIGTERM" | "SIGHUP", handler: () => void) => {
    try {
      process.on(signal, handler);
    } catch {
      // Windows knows no SIGHUP (Deno throws for it); the rest still works.
    }
    return () => void process.off(signal, handler);
  };
  const unlisten = [
    listen("SIGINT", () => onStop("SIGINT")),
    listen("SIGTERM", () => onStop("SIGTERM")),
    listen("SIGHUP", onHangup),
  ];
  try {
    const started = startNode(config, { log, ...(keyFile && { keyFile }) });
    const first = await Promise.race([started, stopping]);
    node = await started;
    const signal = typeof first === "string" ? first : await stopping;
    log.info(`${signal}: leaving the cluster`);
    await node.close();
    log.info(`Member ${node.kv.id} left; bye`);
    return 0;
  } catch (error) {
    log.error(error instanceof Error ? error.message : String(error));
    await node?.close().catch(() => {});
    return 1;
  } finally {
    for (const off of unlisten) off();
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
