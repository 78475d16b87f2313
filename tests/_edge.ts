// Helpers of the tests that run real processes: members started with the `node` command
// (one Deno, one Bun, one Node), the replica bundled with esbuild for workerd, and workerd,
// `deno serve` or Bun.serve running it (the edge tests), and the `gossip-kv` subcommands run
// against members (tests/cli_commands_test.ts). Every process is killed by the test that
// started it.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

export type Runtime = "deno" | "bun" | "node";
export const RUNTIMES: readonly Runtime[] = ["deno", "bun", "node"];
export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const bin = (name: string): string => join(ROOT, "node_modules", ".bin", name);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The processes are the same whichever runner starts this file: `npm test` runs the edge
 * process tests under Node only, to keep CI time down; run directly, any runner runs them.
 */
const runner = process.env.GOSSIP_KV_TEST_RUNTIME;
export const SLOW = {
  skip: runner !== undefined && runner !== "node" &&
    `the processes are the same whichever runner starts them: npm test runs this file under ` +
      `Node only (here: ${runner})`,
  timeout: 240_000,
};

/**
 * Ports below the kernel's ephemeral range: a concurrent test binding port 0 never takes one
 * between our check and the child's bind (a port the kernel picked for us and freed could be
 * picked again at once for another file's socket: "address in use" on a loaded machine).
 */
const RANGE = ((): [number, number] => {
  let low = 32768;
  try {
    low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0]);
  } catch {
    // not Linux: the IANA ephemeral range starts at 49152, most others at 32768
  }
  return low > 12_000 ? [low - 10_000, low] : [10_000, 20_000];
})();

const taken = new Set<number>();
/**
 * A port free now on `host` (UDP or TCP) that no other file's port-0 socket is given by the
 * kernel, and not handed out before by this process.
 */
export async function freePort(kind: "udp" | "tcp", host = "127.0.0.1"): Promise<number> {
  for (;;) {
    const port = RANGE[0] + Math.floor(Math.random() * (RANGE[1] - RANGE[0]));
    if (taken.has(port)) continue;
    // Taken before the check, which awaits: concurrent calls (`Promise.all`) drew the same
    // port once, both found it free one after the other, and two members bound it.
    taken.add(port);
    const free = await new Promise<boolean>((resolve) => {
      if (kind === "udp") {
        const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
        socket.once("error", () => resolve(false));
        socket.bind(port, host, () => socket.close(() => resolve(true)));
      } else {
        const server = createServer();
        server.once("error", () => resolve(false));
        server.listen(port, host, () => server.close(() => resolve(true)));
      }
    });
    if (free) return port;
  }
}

export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("GOSSIP_KV_")) env[k] = v;
  }
  return { ...env, ...extra };
}

/**
 * A child process with its output collected (after a first line `--- ` and its command line),
 * in a process group of its own, as a shell starts a command: a signal goes to the whole
 * group, a task runner or `tsx` and the process it starts alike.
 */
export class Proc {
  log = "";
  /** Resolves with the exit code (`null` when a signal ended it) once it exited. */
  readonly exited: Promise<number | null>;
  #done = false;
  readonly #pid: number | undefined;

  constructor(readonly name: string, argv: string[], cwd = ROOT) {
    this.log = `--- ${argv.join(" ")}\n`;
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd,
      env: childEnv(),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    this.#pid = child.pid;
    child.stdout.on("data", (d) => (this.log += String(d)));
    child.stderr.on("data", (d) => (this.log += String(d)));
    this.exited = new Promise<number | null>((resolve) => {
      child.once("close", (code) => resolve(code));
      child.once("error", (error) => {
        this.log += `spawn failed: ${error.message}\n`;
        resolve(null);
      });
    }).finally(() => (this.#done = true));
  }

  get done(): boolean {
    return this.#done;
  }

  /** Waits until the output contains `text`; fails with the log if the process exits. */
  async waitFor(text: string, ms = 90_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.log.includes(text)) {
      if (this.#done) assert.fail(`${this.name} exited before printing ${text}:\n${this.log}`);
      if (Date.now() > deadline) assert.fail(`${this.name} did not print ${text}:\n${this.log}`);
      await sleep(50);
    }
  }

  /**
   * Sends `signal` to its process group. process.kill, not child.kill: Deno's
   * node:child_process (2.9) reports a child that was sent a signal with child.kill() as
   * killed by it, even when it handled the signal and exited 0 (see cli_process_test.ts).
   */
  signal(signal: NodeJS.Signals): void {
    if (this.#done || this.#pid === undefined) return;
    try {
      process.kill(-this.#pid, signal);
    } catch {
      // It exited in the meantime.
    }
  }

  /** Kills the process group and waits for the process's exit. */
  async stop(): Promise<void> {
    this.signal("SIGKILL");
    await this.exited;
  }
}

/** The command line of the `node` command on `runtime` (as cli_process_test.ts runs it). */
function cliCommand(runtime: Runtime): string[] {
  switch (runtime) {
    case "deno": {
      const deno = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as {
        tasks: Record<string, string>;
      };
      const [, ...rest] = deno.tasks.node!.trim().replace(/^env\s+/, "").split(/\s+/);
      return [bin("deno"), ...rest];
    }
    case "bun":
      return [bin("bun"), "src/cli.ts"];
    case "node":
      return ["node", "--import", "tsx", "src/cli.ts"];
  }
}

/**
 * One member started with the `node` command on 127.0.0.1, gossip at UDP `port`, its HTTP API
 * at `httpPort`, with `args` besides.
 */
export class CliMember {
  proc: Proc | undefined;

  constructor(
    readonly runtime: Runtime,
    readonly id: string,
    readonly port: number,
    readonly httpPort: number,
    readonly args: string[],
  ) {}

  /** Its HTTP API as host:port. */
  get addr(): string {
    return `127.0.0.1:${this.httpPort}`;
  }

  get url(): string {
    return `http://${this.addr}`;
  }

  /** What it printed so far. */
  get log(): string {
    return this.proc?.log ?? "";
  }

  async start(): Promise<void> {
    const argv = [
      ...cliCommand(this.runtime),
      `--id=${this.id}`,
      "--bind=127.0.0.1",
      `--port=${this.port}`,
      `--http-port=${this.httpPort}`,
      ...this.args,
    ];
    this.proc = new Proc(this.id, argv);
    await this.proc.waitFor(`Started member ${this.id} `);
  }

  /** Sends `signal` to the member's process group. */
  signal(signal: NodeJS.Signals): void {
    this.proc?.signal(signal);
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
  }

  async fetch(path: string, init?: RequestInit): Promise<Response> {
    return await fetch(`${this.url}${path}`, { ...init, signal: AbortSignal.timeout(5_000) });
  }

  /** The value of `key` here, or undefined when absent. */
  async value(key: string): Promise<unknown> {
    return await valueAt(this.url, key);
  }

  /** A sample of /metrics by name and labels (0 when absent). */
  async metric(name: string, labels: Record<string, string>): Promise<number> {
    const text = await (await this.fetch("/metrics")).text();
    for (const line of text.split("\n")) {
      if (!line.startsWith(`${name}{`)) continue;
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
        return Number(line.slice(line.lastIndexOf(" ") + 1));
      }
    }
    return 0;
  }
}

/** The value of `key` from an inspector-shaped API at `base`, or undefined when absent. */
export async function valueAt(base: string, key: string): Promise<unknown> {
  const res = await fetch(`${base}/usr/${encodeURIComponent(key)}`, {
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (res.status !== 200) {
    assert.fail(`GET /usr/${key} at ${base}: ${res.status} ${await res.text()}`);
  }
  return await res.json();
}

/** PUT or DELETE `key` at `base` with `token` (none: no header); returns the status. */
export async function writeAt(
  base: string,
  key: string,
  value: unknown,
  token: string | undefined,
): Promise<number> {
  const res = await fetch(`${base}/usr/${encodeURIComponent(key)}`, {
    method: value === undefined ? "DELETE" : "PUT",
    headers: {
      "content-type": "application/json",
      ...(token !== undefined && { authorization: `Bearer ${token}` }),
    },
    ...(value !== undefined && { body: JSON.stringify(value) }),
    signal: AbortSignal.timeout(10_000),
  });
  await res.body?.cancel();
  return res.status;
}

/**
 * One Deno, one Bun and one Node member on 127.0.0.1, seeded with each other, gossiping every
 * 200 ms, member `i` with `args(i)` besides.
 */
export async function udpCluster(
  tag: string,
  args: (i: number) => string[] = () => [],
): Promise<CliMember[]> {
  const ports = await Promise.all(RUNTIMES.map(() => freePort("udp")));
  const seeds = ports.map((p) => `127.0.0.1:${p}`).join(",");
  const members: CliMember[] = [];
  for (const [i, runtime] of RUNTIMES.entries()) {
    members.push(
      new CliMember(runtime, `${runtime}-${tag}`, ports[i]!, await freePort("tcp"), [
        `--seeds=${seeds}`,
        "--gossip-interval=200",
        ...args(i),
      ]),
    );
  }
  try {
    await Promise.all(members.map((m) => m.start()));
  } catch (error) {
    await Promise.all(members.map((m) => m.stop()));
    throw error;
  }
  return members;
}

/** Polls `check` (errors count as "not yet") until it holds; fails with the processes' logs. */
export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  procs: readonly { proc?: Proc | undefined }[],
  ms = 90_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const logs = procs.map((p) => `== ${p.proc?.name} ==\n${p.proc?.log}`).join("\n");
      assert.fail(`Gave up after ${ms} ms waiting for ${what} (last error: ${last})\n${logs}`);
    }
    await sleep(100);
  }
}

/** A fresh directory under .scratch/ (ignored by git and deno), removed by `cleanup()`. */
export function scratchDir(): { dir: string; cleanup(): void } {
  mkdirSync(join(ROOT, ".scratch"), { recursive: true });
  const dir = mkdtempSync(join(ROOT, ".scratch", "edge-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The source of a module that exports a replica of `upstream` as its default fetch handler. */
export function workerSource(upstream: readonly string[], token: string, staleMs: number): string {
  const mod = JSON.stringify(join(ROOT, "src", "edge", "mod.ts"));
  return `import { edgeReplica } from ${mod};
const replica = edgeReplica(${
    JSON.stringify({ upstream, token, maxStalenessMs: staleMs, timeoutMs: 2000, downForMs: 60000 })
  });
export default { fetch: replica.fetch };
`;
}

/**
 * Bundles `entry` with esbuild as a workerd bundle: ESM, platform neutral, the `workerd`
 * condition, minified. Fails on any error (a `node:*` import cannot be resolved there).
 */
export function bundle(entry: string, outfile: string): { bytes: number } {
  const r = spawnSync(bin("esbuild"), [
    entry,
    "--bundle",
    "--format=esm",
    "--platform=neutral",
    "--conditions=workerd,worker,browser",
    "--main-fields=module,main",
    "--minify",
    `--outfile=${outfile}`,
    "--log-level=warning",
  ], { cwd: ROOT, encoding: "utf8" });
  assert.equal(r.status, 0, `esbuild failed:\n${r.stderr}${r.stdout}`);
  return { bytes: statSync(outfile).size };
}

/** Starts workerd serving `workerJs` (in `dir`) on 127.0.0.1:`port`, with loopback egress. */
export async function startWorkerd(
  dir: string,
  workerJs: string,
  port: number,
  extra: { services?: string; worker?: string } = {},
): Promise<Proc> {
  writeFileSync(
    join(dir, "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    # Workers reach public addresses only by default; the members listen on loopback.
    (name = "internet", network = (allow = ["public", "private", "local"])),
    ${extra.services ?? ""}
  ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [ (name = "worker", esModule = embed "${workerJs}") ],
  compatibilityDate = "2025-01-01",
  ${extra.worker ?? ""}
);
`,
  );
  const proc = new Proc("workerd", [bin("workerd"), "serve", "--verbose", "config.capnp"], dir);
  await waitHttp(`http://127.0.0.1:${port}/nowhere`, proc);
  return proc;
}

/** Waits until something answers HTTP at `url`. */
export async function waitHttp(url: string, proc: Proc, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      return;
    } catch {
      if (proc.done) assert.fail(`${proc.name} exited:\n${proc.log}`);
      if (Date.now() > deadline) assert.fail(`${proc.name} did not answer at ${url}:\n${proc.log}`);
      await sleep(100);
    }
  }
}
