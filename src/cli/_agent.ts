// `gossip-kv agent` (and `deno task node`): one member per process, gossiping over UDP, with
// the HTTP API, until SIGINT or SIGTERM; then a graceful leave. Private to src/cli.ts.
import process from "node:process";
import type { Command, Io } from "./_client.ts";
import { setTimeout } from "node:timers";
import { COPY_WINDOW_MS, stopSignals } from "./_signals.ts";
import { VERSION } from "./_version.ts";
import { helpText, type NodeConfig, parseFlags, UsageError } from "./_flags.ts";
import { type KeyFile, readKeyFile } from "./_keys.ts";
import { createLogger } from "./_log.ts";
import { type RunningNode, runtimeInfo, startNode } from "./_node.ts";

/** `gossip-kv 0.1.0 (deno 2.9.6)`: what `--version` prints. */
export function versionLine(): string {
  const { runtime, version } = runtimeInfo();
  return `gossip-kv ${VERSION} (${runtime} ${version})`;
}

/**
 * Runs the agent: starts the member and serves until SIGINT or SIGTERM, then leaves the
 * cluster. Resolves with the exit code: 0 after a graceful stop (or `--help`, `--version`),
 * 1 when a port cannot be bound, 2 for bad flags or an unusable key file.
 */
async function runAgent(args: readonly string[], io: Io): Promise<number> {
  let config: NodeConfig;
  let keyFile: KeyFile | undefined;
  try {
    config = parseFlags(args, io.env);
    if (config.command === "help") {
      io.out(helpText());
      return 0;
    }
    if (config.command === "version") {
      io.out(versionLine());
      return 0;
    }
    if (config.keyFile !== undefined) keyFile = await readKeyFile(config.keyFile);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`gossip-kv: ${error.message}`);
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
  let finished = false;
  const onStop = (signal: string) => {
    if (finished) return; // a late copy, while the process exits
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
  const unlistenStop = [
    listen("SIGINT", () => onStop("SIGINT")),
    listen("SIGTERM", () => onStop("SIGTERM")),
  ];
  const unlistenHangup = listen("SIGHUP", onHangup);
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
    finished = true;
    unlistenHangup();
    // A copy of the signal may still be on its way: without a handler, it would kill the
    // process (tsx's child exits 130) before it exits with this code. Keep the handlers a
    // little longer, without keeping the process alive for them.
    setTimeout(() => unlistenStop.forEach((off) => off()), COPY_WINDOW_MS).unref();
  }
}

/** `gossip-kv agent`. */
export const agent: Command = {
  name: "agent",
  summary: "run a member: gossip over UDP and the HTTP API (deno task node runs this)",
  help: helpText(),
  follows: true,
  run: runAgent,
};
