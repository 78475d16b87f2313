// startNode(): what the `node` command runs once its flags are read: the UDP transport, the
// member, the HTTP API, the seed and key-file refreshers, and the log lines. Private to
// src/cli.ts.
import process from "node:process";
import { bunGlobal, denoGlobal } from "../_runtime.ts";
import { GossipKV } from "../gossip_kv.ts";
import { createInspector, serve } from "../http/mod.ts";
import type { Inspector } from "../http/inspector.ts";
import type { Server } from "../http/serve.ts";
import { isLoopback } from "../core/address.ts";
import { fileStorage } from "../storage/file.ts";
import { autoTransport } from "../transport/auto.ts";
import { parseAddress } from "../transport/udp.ts";
import type { NodeConfig } from "./_flags.ts";
import { type KeyFile, watchKeyFile } from "./_keys.ts";
import type { Logger } from "./_log.ts";
import { bindFamily, type Lookup, SeedResolver } from "./_seeds.ts";

/** The runtime this process runs on, and its version. */
export function runtimeInfo(): { runtime: "deno" | "bun" | "node"; version: string } {
  const deno = denoGlobal(), bun = bunGlobal();
  if (deno) return { runtime: "deno", version: deno.version.deno };
  if (bun) return { runtime: "bun", version: bun.version };
  return { runtime: "node", version: process.versions.node ?? "?" };
}

/** What {@linkcode startNode} needs besides the config. */
export interface StartOptions {
  /** Where log lines go. */
  log: Logger;
  /** The key file, read and checked already (when `config.keyFile` is set). */
  keyFile?: KeyFile;
  /** The resolver of seed names. Default: `dns.promises.lookup`. */
  lookup?: Lookup;
  /** Seed names are resolved again this often, in ms. Default 30,000. */
  seedIntervalMs?: number;
  /** ... and this soon after a name failed to resolve, in ms. Default 5,000. */
  seedRetryMs?: number;
  /** The key file is read again this often, in ms. Default 5,000. */
  keyPollMs?: number;
}

/** A running member of the `node` command. */
export interface RunningNode {
  /** The member. */
  readonly kv: GossipKV;
  /** The HTTP API, unless `--http-port=0`. */
  readonly server: Server | undefined;
  /** Reads the key file again and re-resolves the seeds at once (SIGHUP). */
  reload(): Promise<void>;
  /** Leaves the cluster gracefully and stops the HTTP API. */
  close(): Promise<void>;
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Starts the member and its HTTP API as `config` says; rejects with what failed. */
export async function startNode(config: NodeConfig, options: StartOptions): Promise<RunningNode> {
  const { log, keyFile } = options;
  const { runtime, version } = runtimeInfo();
  const transport = await autoTransport({
    hostname: config.bind,
    port: config.port,
    ...(config.advertise !== undefined && { advertise: config.advertise }),
  }).catch((error) => {
    throw new Error(
      `Cannot bind the gossip port ${config.bind}:${config.port} (UDP): ${message(error)}`,
    );
  });

  // The HTTP port is bound before the member joins, so that a port in use fails the start
  // without a join and a leave; until the member runs, every route answers 503.
  let app: Inspector | undefined;
  let server: Server | undefined;
  if (config.httpPort !== 0) {
    const starting = () =>
      new Response(
        JSON.stringify({ type: "about:blank", title: "Starting", status: 503 }),
        { status: 503, headers: { "content-type": "application/problem+json" } },
      );
    try {
      server = await serve({
        fetch: (request, env) => (app ? app.fetch(request, env) : starting()),
      }, { hostname: config.httpBind, port: config.httpPort });
    } catch (error) {
      await transport.close();
      throw new Error(
        `Cannot serve the HTTP API on ${config.httpBind}:${config.httpPort}: ${message(error)}`,
      );
    }
  }

  // A seed name without a port means "at my gossip port" (the bound one, if --port=0).
  const port = parseAddress(transport.boundAddress, config.port).port;
  const resolver = new SeedResolver(config.seeds, {
    port,
    family: bindFamily(config.bind),
    ...(options.lookup && { lookup: options.lookup }),
  });
  let seeds = await resolver.resolve();
  let seedProblems = seeds.failures.join("; ");
  if (seedProblems) log.warn(`Seed names did not resolve: ${seedProblems}; trying again soon`);

  let kv: GossipKV;
  try {
    kv = await GossipKV.start({
      transport,
      id: config.id,
      seeds: seeds.addresses,
      cluster: config.cluster,
      ...(config.gossipIntervalMs !== undefined && { gossipIntervalMs: config.gossipIntervalMs }),
      ...(config.tombstoneGraceMs !== undefined && { tombstoneGraceMs: config.tombstoneGraceMs }),
      meta: { runtime },
      ...(keyFile && { keys: keyFile.keys }),
      ...(config.requireEncryption && { requireEncryption: true }),
      ...(config.dataDir !== undefined && {
        storage: fileStorage({
          dir: config.dataDir,
          onError: (error) => log.error(`Storage in ${config.dataDir}: ${message(error)}`),
        }),
      }),
      onError: (error) => log.error(`Gossip: ${message(error)}`),
      onWarning: (warning) => log.warn(warning.message),
    });
  } catch (error) {
    await Promise.all([transport.close(), server?.close()]);
    throw config.dataDir === undefined
      ? error
      : new Error(`Cannot start with the data directory ${config.dataDir}: ${message(error)}`);
  }
  if (server) {
    app = createInspector(kv, {
      hostname: config.httpBind,
      ...(config.httpToken !== undefined && { token: config.httpToken }),
    });
  }

  if (server && config.httpToken === undefined && !isLoopback(config.httpBind)) {
    log.warn(
      `The HTTP API on ${server.url} has no token: whoever reaches it reads every key, and ` +
        "writes are refused (set --http-token)",
    );
  }
  if (!keyFile && !isLoopback(config.bind)) {
    log.warn(
      `Gossip on ${transport.address} is not encrypted: whoever reaches it can read and change ` +
        "the data (set --key-file)",
    );
  }
  const encryption = keyFile
    ? `encrypted (${keyFile.keys.length} key${keyFile.keys.length > 1 ? "s" : ""}, primary ${
      keyFile.fingerprints[0]
    })`
    : "not encrypted";
  const bound = transport.boundAddress === kv.address ? "" : ` (bound ${transport.boundAddress})`;
  log.info(
    [
      `Started member ${kv.id} on ${runtime} ${version}`,
      `gossip ${kv.address}${bound} over ${transport.runtime} UDP, cluster ${
        JSON.stringify(config.cluster)
      }, ${encryption}`,
      `HTTP ${server ? server.url : "disabled"}`,
      `data ${config.dataDir === undefined ? "in memory" : `in ${config.dataDir}`}`,
      `seeds ${seeds.addresses.join(",") || "none"}`,
    ].join("; "),
  );

  kv.subscribeMembers((c) => {
    if (c.id === kv.id) {
      return log.debug(`This member is ${c.status} (incarnation ${c.incarnation})`);
    }
    const who = `Member ${c.id} (${c.address})`;
    const fields = { member: c.id, address: c.address, status: c.status };
    if (c.previous === undefined && c.status !== "alive") {
      return log.debug(`${who} is known as ${c.status}`, fields);
    }
    switch (c.status) {
      case "alive":
        if (c.previous === undefined) log.info(`${who} joined`, fields);
        else if (c.previous === "suspect") {
          log.debug(`${who} answered again: no longer suspect`, fields);
        } else log.info(`${who} rejoined (it was ${c.previous})`, fields);
        return;
      case "suspect":
        return log.debug(`${who} is suspect: it did not answer a probe`, fields);
      case "dead":
        return log.warn(`${who} died: it stopped answering without leaving`, fields);
      case "left":
        return log.info(`${who} left the cluster`, fields);
    }
  });
  if (log.level === "debug") {
    kv.subscribe((c) =>
      log.debug(
        `${c.deleted ? "Deleted" : "Set"} ${JSON.stringify(c.key)} (${c.origin}, by ${c.writer})`,
      )
    );
  }

  // Timers: seed names re-resolved every 30 s (sooner after a failure), the key file re-read.
  let stopped = false;
  let seedTimer: ReturnType<typeof setTimeout> | undefined;
  const refreshSeeds = async () => {
    const next = await resolver.resolve();
    if (stopped) return;
    const problems = next.failures.join("; ");
    if (problems && problems !== seedProblems) {
      log.warn(`Seed names did not resolve: ${problems}; trying again soon`);
    } else if (!problems && seedProblems) log.info("Seed names resolve again");
    seedProblems = problems;
    if (next.addresses.join() !== seeds.addresses.join()) {
      log.debug(`Seeds: ${next.addresses.join(", ") || "none"}`);
    }
    seeds = next;
    kv.setSeeds(seeds.addresses);
  };
  const scheduleSeeds = () => {
    if (stopped || !resolver.hasNames) return;
    const wait = seedProblems ? options.seedRetryMs ?? 5_000 : options.seedIntervalMs ?? 30_000;
    seedTimer = setTimeout(() => void refreshSeeds().finally(scheduleSeeds), wait);
  };
  scheduleSeeds();

  const keys = config.keyFile !== undefined && keyFile
    ? watchKeyFile({
      path: config.keyFile,
      current: keyFile,
      intervalMs: options.keyPollMs ?? 5_000,
      apply: async (file) => {
        await kv.setKeys(file.keys);
        log.info(
          `Cluster keys reloaded from ${config.keyFile}: ${file.keys.length}, primary ${
            file.fingerprints[0]
          }`,
        );
      },
      onError: (text) => log.error(text),
    })
    : undefined;

  let closing: Promise<void> | undefined;
  return {
    kv,
    server,
    async reload() {
      await Promise.all([keys?.check(), resolver.hasNames ? refreshSeeds() : undefined]);
    },
    close() {
      stopped = true;
      clearTimeout(seedTimer);
      keys?.stop();
      return closing ??= Promise.all([kv.close(), server?.close()]).then(() => {});
    },
  };
}
