// The `node` command (src/cli.ts) as users run it: real processes on loopback, always one
// Deno, one Bun and one Node member (whatever runtime runs this file), talking UDP to each
// other and HTTP to this test. Every child is killed in `finally`.
//
// Deno runs exactly the `deno task node` command line from deno.json; Bun runs
// `bun src/cli.ts`; Node runs `node --import tsx src/cli.ts`, the in-process form of
// `npx tsx src/cli.ts` (the tsx CLI runs the script in a child process, which a SIGKILL of
// the parent would leave behind).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { generateKey } from "../src/wire/crypto.ts";
import { freePort } from "./_edge.ts";
import { recordSkip } from "./_skip.ts";

type Runtime = "deno" | "bun" | "node";
const RUNTIMES: readonly Runtime[] = ["deno", "bun", "node"];
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = join(ROOT, "src", "cli.ts");

// The spawned members are the same whichever runner runs this file: `npm test` runs it once,
// under Node, and skips it on the other two runners to keep CI time down. Run directly, it
// runs under any runner.
const runner = process.env.GOSSIP_KV_TEST_RUNTIME;
const skip = runner !== undefined && runner !== "node" && recordSkip(
  "tests/cli_process_test.ts",
  `the members are one Deno, one Bun and one Node process whichever runner starts them: ` +
    `npm test runs this file under Node only (here: ${runner})`,
);
const SLOW = { skip, timeout: 240_000 };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);

/** The documented commands that start a member, as users type them (README). */
const DOCUMENTED: Record<Runtime, string[]> = {
  deno: [bin("deno"), "task", "node"],
  bun: [bin("bun"), "src/cli.ts", "agent"],
  node: [bin("tsx"), "src/cli.ts", "agent"],
};

/**
 * The command line that runs src/cli.ts on `runtime`; `denoExtra` goes before the script on
 * Deno (more permissions).
 */
function command(runtime: Runtime, denoExtra: string[] = []): string[] {
  switch (runtime) {
    case "deno": {
      const deno = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as {
        tasks: Record<string, string>;
      };
      // The task says `env deno`: with the npm package deno in node_modules/.bin, deno task
      // (2.9) would run that binary as a JavaScript file; env finds it on PATH instead.
      const [program, ...rest] = deno.tasks.node!.trim().replace(/^env\s+/, "").split(/\s+/);
      assert.equal(program, "deno", "the node task runs deno");
      assert.deepEqual(rest.slice(-2), ["src/cli.ts", "agent"], "the node task runs the agent");
      return [bin("deno"), ...rest.slice(0, -2), ...denoExtra, "src/cli.ts", "agent"];
    }
    case "bun":
      return [bin("bun"), "src/cli.ts", "agent"];
    case "node":
      return ["node", "--import", "tsx", "src/cli.ts", "agent"];
  }
}

/** The environment of a child: this one without GOSSIP_KV_* (the test sets what it means). */
function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("GOSSIP_KV_")) env[k] = v;
  }
  return { ...env, ...extra };
}

interface Exit {
  code: number | null;
  signal: string | null;
}

/** A child process, as far as these tests use one. */
interface Proc {
  /** Sends `signal` to the process group, unless the process has exited. */
  kill(signal: NodeJS.Signals): void;
  /** Resolves once the process has exited and its output is read. */
  readonly exited: Promise<Exit>;
  /** Whether it has exited. */
  readonly done: boolean;
}

type Output = (text: string, stream: "stdout" | "stderr") => void;

/** Starts `argv` in the repository with `env` (see {@linkcode childEnv}). */
function launch(argv: string[], env: Record<string, string>, onOutput: Output): Proc {
  let done = false;
  // Each child leads a process group of its own, as a shell starts a command: a signal goes to
  // the whole group, task runner and member alike, as a terminal's Ctrl-C does.
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: ROOT,
    env: childEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stdout.on("data", (d) => onOutput(String(d), "stdout"));
  child.stderr.on("data", (d) => onOutput(String(d), "stderr"));
  child.once("exit", () => (done = true));
  const exited = new Promise<Exit>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal }));
    child.once("error", (error) => {
      onOutput(`spawn failed: ${error.message}\n`, "stderr");
      resolve({ code: null, signal: null });
    });
  }).finally(() => (done = true));
  return {
    kill(signal) {
      // To the process group (the negative pid). process.kill, not child.kill: Deno's node:child_process (2.9) reports a child that
      // was sent a signal with child.kill() as killed by it, even when it handled the signal
      // and exited 0.
      if (done || child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // It exited in the meantime.
      }
    },
    exited,
    get done() {
      return done;
    },
  };
}

/** One `node` command process; `start()` may be called again after it exited (a restart). */
class Member {
  log = "";
  proc: Proc | undefined;

  constructor(
    readonly runtime: Runtime,
    readonly id: string,
    readonly gossipPort: number,
    readonly httpPort: number,
    readonly args: string[],
    readonly env: Record<string, string> = {},
    readonly wrap: string[] = [],
    readonly denoExtra: string[] = [],
    /** Start with the documented command ({@linkcode DOCUMENTED}) instead. */
    readonly documented = false,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get running(): boolean {
    return this.proc !== undefined && !this.proc.done;
  }

  get exited(): Promise<Exit> {
    return this.proc?.exited ?? Promise.resolve({ code: null, signal: null });
  }

  /** Spawns the process; resolves once it logged its start line. */
  async start(): Promise<void> {
    const argv = [
      ...this.wrap,
      ...(this.documented ? DOCUMENTED[this.runtime] : command(this.runtime, this.denoExtra)),
      `--id=${this.id}`,
      `--http-port=${this.httpPort}`,
      ...this.args,
    ];
    this.log += `--- ${argv.join(" ")}\n`;
    const from = this.log.length; // a restart: the earlier start line does not count
    const proc = launch(argv, this.env, (text) => (this.log += text));
    this.proc = proc;
    const started = `Started member ${this.id} `;
    const deadline = Date.now() + 90_000;
    while (!this.log.slice(from).includes(started)) {
      if (proc.done) {
        const { code, signal } = await proc.exited;
        throw new Error(`${this.id} exited (${code ?? signal}) before starting:\n${this.log}`);
      }
      if (Date.now() > deadline) throw new Error(`${this.id} did not start:\n${this.log}`);
      await sleep(50);
    }
  }

  kill(signal: NodeJS.Signals): void {
    this.proc?.kill(signal);
  }

  async fetch(path: string, init?: RequestInit): Promise<Response> {
    return await fetch(`${this.url}${path}`, { ...init, signal: AbortSignal.timeout(5_000) });
  }

  async json(path: string): Promise<unknown> {
    const res = await this.fetch(path);
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`GET ${path} on ${this.id}: ${res.status}`);
    }
    return await res.json();
  }

  /** Member id → status, as this member sees them. */
  async statuses(): Promise<Record<string, string>> {
    const list = await this.json("/members") as { id: string; status: string }[];
    return Object.fromEntries(list.map((m) => [m.id, m.status]));
  }

  async put(key: string, value: unknown, token?: string): Promise<number> {
    const res = await this.fetch(`/usr/${encodeURIComponent(key)}`, {
      method: "PUT",
      headers: {
        "content-type": "application/json",
        ...(token !== undefined && { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify(value),
    });
    await res.body?.cancel();
    return res.status;
  }

  /** The value of `key` here, or undefined when absent. */
  async value(key: string): Promise<unknown> {
    const res = await this.fetch(`/usr/${encodeURIComponent(key)}`);
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    return await res.json();
  }

  /** A counter of /metrics, by its name and labels (0 when absent). */
  async metric(name: string, labels: Record<string, string>): Promise<number> {
    const res = await this.fetch("/metrics");
    const text = await res.text();
    for (const line of text.split("\n")) {
      if (!line.startsWith(`${name}{`)) continue;
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
        return Number(line.slice(line.lastIndexOf(" ") + 1));
      }
    }
    return 0;
  }

  /** Kills the process (SIGKILL) if it still runs, and waits for it. */
  async stop(): Promise<void> {
    this.kill("SIGKILL");
    await this.exited;
  }
}

/** Polls `check` (errors count as "not yet") until it holds; fails with the members' logs. */
async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  members: readonly Member[],
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
      const logs = members.map((m) => `== ${m.id} ==\n${m.log}`).join("\n");
      assert.fail(`Gave up after ${ms} ms waiting for ${what} (last error: ${last})\n${logs}`);
    }
    await sleep(250);
  }
}

/** Whether each member sees each of `ids` with `status` (other ids are not looked at). */
async function allSee(
  members: readonly Member[],
  ids: readonly string[],
  status: string,
): Promise<boolean> {
  for (const m of members) {
    const s = await m.statuses();
    if (!ids.every((id) => s[id] === status)) return false;
  }
  return true;
}

interface ClusterOptions {
  /** Extra flags for every member. */
  args?: string[];
  /** Extra environment for every member. */
  env?: Record<string, string>;
  /** A suffix for the member ids. */
  tag: string;
}

/** One Deno, one Bun and one Node member on 127.0.0.1, each seeded with all three. */
async function cluster(options: ClusterOptions): Promise<Member[]> {
  const ports = await Promise.all(RUNTIMES.map(() => freePort("udp")));
  const seeds = ports.map((p) => `127.0.0.1:${p}`).join(",");
  const members: Member[] = [];
  for (const [i, runtime] of RUNTIMES.entries()) {
    members.push(
      new Member(runtime, `${runtime}-${options.tag}`, ports[i]!, await freePort("tcp"), [
        "--bind=127.0.0.1",
        `--port=${ports[i]}`,
        `--seeds=${seeds}`,
        "--gossip-interval=200",
        ...(options.args ?? []),
      ], options.env),
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

const ids = (members: readonly Member[]) => members.map((m) => m.id);

test(
  "three members, one Deno, one Bun and one Node, started with the node command form a cluster, and a write through any member's HTTP API reaches the other two",
  SLOW,
  async () => {
    const members = await cluster({ tag: "form" });
    try {
      await until(
        "every member to see the three alive",
        () => allSee(members, ids(members), "alive"),
        members,
      );
      const state = await members[0]!.json("/state") as {
        sys: { members: Record<string, { runtime: string }> };
      };
      for (const m of members) {
        assert.equal(state.sys.members[m.id]?.runtime, m.runtime);
      }
      for (const writer of members) {
        assert.equal(await writer.put(`from ${writer.runtime}`, { by: writer.id }), 204);
      }
      await until("every write on every member", async () => {
        for (const reader of members) {
          for (const writer of members) {
            const got = await reader.value(`from ${writer.runtime}`) as { by?: string } | undefined;
            if (got?.by !== writer.id) return false;
          }
        }
        return true;
      }, members);
      for (const m of members) assert.match(m.log, /Member \S+ \(127\.0\.0\.1:\d+\) joined/);
    } finally {
      await Promise.all(members.map((m) => m.stop()));
    }
  },
);

test(
  "a member killed with SIGKILL is marked dead by the others, and restarted with the same --id it is alive again and catches up on what it missed",
  SLOW,
  async () => {
    const members = await cluster({ tag: "crash" });
    const [victim, ...others] = members as [Member, ...Member[]];
    try {
      await until(
        "every member to see the three alive",
        () => allSee(members, ids(members), "alive"),
        members,
      );
      victim.kill("SIGKILL");
      assert.equal((await victim.exited).signal, "SIGKILL");
      await until(
        `the others to mark ${victim.id} dead`,
        () => allSee(others, [victim.id], "dead"),
        members,
      );
      for (const m of others) {
        assert.match(m.log, new RegExp(`Member ${victim.id} .* died`));
      }
      assert.equal(await others[0]!.put("while away", "missed it?"), 204);
      await victim.start(); // same id, same ports
      await until(
        `the others to see ${victim.id} alive again`,
        () => allSee(others, [victim.id], "alive"),
        members,
      );
      await until(
        `${victim.id} to catch up`,
        async () => (await victim.value("while away")) === "missed it?",
        members,
      );
      await until(
        `${victim.id} to see every member alive`,
        () => allSee([victim], ids(members), "alive"),
        members,
      );
    } finally {
      await Promise.all(members.map((m) => m.stop()));
    }
  },
);

test(
  "SIGTERM (or SIGINT) makes a member leave: the others see it as left, and it exits 0",
  SLOW,
  async () => {
    const members = await cluster({ tag: "leave" });
    try {
      await until(
        "every member to see the three alive",
        () => allSee(members, ids(members), "alive"),
        members,
      );
      const [first, second, third] = members as [Member, Member, Member];
      first.kill("SIGTERM");
      assert.deepEqual(await first.exited, { code: 0, signal: null }, first.log);
      await until(
        `the others to see ${first.id} left`,
        () => allSee([second, third], [first.id], "left"),
        members,
      );
      second.kill("SIGINT");
      assert.deepEqual(await second.exited, { code: 0, signal: null }, second.log);
      await until(
        `${third.id} to see ${second.id} left`,
        () => allSee([third], [second.id], "left"),
        members,
      );
      third.kill("SIGTERM");
      assert.deepEqual(await third.exited, { code: 0, signal: null }, third.log);
      for (const m of members) assert.match(m.log, /: leaving the cluster/);
    } finally {
      await Promise.all(members.map((m) => m.stop()));
    }
  },
);

test(
  "with a cluster key the three replicate; a fourth member with the wrong key stays out, its datagrams dropped, until its key file holds the key",
  SLOW,
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "gossip-kv-cli-"));
    const members: Member[] = [];
    try {
      const key = generateKey();
      const keyFile = join(dir, "cluster.keys");
      const wrongFile = join(dir, "wrong.keys");
      writeFileSync(keyFile, `# the cluster key\n${key}\n`, { mode: 0o600 });
      writeFileSync(wrongFile, `${generateKey()}\n`, { mode: 0o600 });
      const token = "s3cret-token";
      members.push(
        ...await cluster({
          tag: "sealed",
          args: [`--key-file=${keyFile}`, "--cluster=sealed"],
          env: { GOSSIP_KV_HTTP_TOKEN: token },
        }),
      );
      const three = [...members];
      await until(
        "every member to see the three alive",
        () => allSee(three, ids(three), "alive"),
        members,
      );
      for (const m of three) {
        assert.match(m.log, /encrypted \(1 key, primary [0-9a-f]{12}\)/);
      }

      const intruderPort = await freePort("udp");
      const intruder = new Member("bun", "intruder", intruderPort, await freePort("tcp"), [
        "--bind=127.0.0.1",
        `--port=${intruderPort}`,
        `--seeds=${three.map((m) => `127.0.0.1:${m.gossipPort}`).join(",")}`,
        "--gossip-interval=200",
        "--cluster=sealed",
        `--key-file=${wrongFile}`,
      ], { GOSSIP_KV_HTTP_TOKEN: token });
      members.push(intruder);
      await intruder.start();
      await until("the three to drop the intruder's datagrams as unauthenticated", async () => {
        for (const m of three) {
          const n = await m.metric("gossip_kv_dropped_datagrams_total", {
            reason: "unauthenticated",
          });
          if (!(n > 0)) return false;
        }
        return true;
      }, members);
      for (const m of three) assert.equal((await m.statuses()).intruder, undefined, m.id);
      assert.deepEqual(Object.keys(await intruder.statuses()), ["intruder"]);

      // Writes need the token; reads and /healthz do not.
      assert.equal(await three[0]!.put("sealed", "only for us"), 401);
      assert.equal(await three[0]!.put("sealed", "only for us", token), 204);
      assert.equal((await three[1]!.fetch("/healthz")).status, 200);
      await until(
        "the write on the other two",
        async () =>
          (await three[1]!.value("sealed")) === "only for us" &&
          (await three[2]!.value("sealed")) === "only for us",
        members,
      );
      assert.equal(await intruder.value("sealed"), undefined);

      // Rotation without restart: the key file changes, and SIGHUP (or the next poll) reads it.
      writeFileSync(wrongFile, `${key}\n`);
      intruder.kill("SIGHUP");
      await until(
        "the intruder to join once it has the key",
        () => allSee(three, ["intruder"], "alive"),
        members,
      );
      await until(
        "the intruder to catch up",
        async () => (await intruder.value("sealed")) === "only for us",
        members,
      );
      assert.ok(intruder.running, "SIGHUP does not stop the member");
      assert.match(
        intruder.log,
        /Cluster keys reloaded from \S+wrong\.keys: 1, primary [0-9a-f]{12}/,
      );
    } finally {
      await Promise.all(members.map((m) => m.stop()));
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

// A seed name resolving to several addresses, as a Kubernetes headless Service does: each
// member runs in its own mount namespace (`unshare -m`, root only) where /etc/hosts is a file
// of ours naming three loopback addresses; the network and this machine's /etc/hosts are
// untouched, and the namespace ends with the process.
const unshareSkip = (() => {
  if (process.getuid?.() !== 0) return "needs root, for a private /etc/hosts (unshare -m)";
  const res = spawnSync("unshare", ["-m", "sh", "-c", "mount --bind /dev/null /etc/hosts"], {
    encoding: "utf8",
  });
  if (res.error) return "unshare (util-linux) is not installed";
  return res.status === 0 ? false : `unshare -m fails here: ${res.stderr.trim()}`;
})();
if (unshareSkip && !skip) recordSkip("the seed DNS name test", unshareSkip);

test("a seed DNS name that resolves to several loopback addresses is enough to form the cluster", {
  ...SLOW,
  skip: SLOW.skip || unshareSkip,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "gossip-kv-dns-"));
  const members: Member[] = [];
  try {
    // A random 127.x.y.0/24 and one port free on its three addresses (the name has no port:
    // every member's own --port applies).
    let hosts: string[] = [];
    let port = 0;
    for (let attempt = 0; attempt < 20 && port === 0; attempt++) {
      const net = `127.${10 + Math.floor(Math.random() * 240)}.${Math.floor(Math.random() * 250)}`;
      hosts = [11, 12, 13].map((i) => `${net}.${i}`);
      const candidate = await freePort("udp", hosts[0]);
      const free = await Promise.all(
        hosts.slice(1).map((h) =>
          new Promise<boolean>((resolve) => {
            const s = createSocket("udp4");
            s.once("error", () => resolve(false));
            s.bind(candidate, h, () => s.close(() => resolve(true)));
          })
        ),
      );
      if (free.every(Boolean)) port = candidate;
    }
    assert.ok(port > 0, "a port free on the three loopback addresses");
    const name = "seeds.gossip-kv.test";
    const hostsFile = join(dir, "hosts");
    writeFileSync(
      hostsFile,
      `127.0.0.1 localhost\n::1 localhost\n${hosts.map((h) => `${h} ${name}`).join("\n")}\n`,
    );
    const wrap = [
      "unshare",
      "-m",
      "sh",
      "-c",
      'mount --bind "$0" /etc/hosts && exec "$@"',
      hostsFile,
    ];
    for (const [i, runtime] of RUNTIMES.entries()) {
      members.push(
        new Member(
          runtime,
          `${runtime}-dns`,
          port,
          await freePort("tcp"),
          [
            `--bind=${hosts[i]}`,
            `--port=${port}`,
            `--seeds=${name}`,
            "--gossip-interval=200",
          ],
          {},
          wrap,
        ),
      );
    }
    await Promise.all(members.map((m) => m.start()));
    for (const [i, m] of members.entries()) {
      assert.match(m.log, new RegExp(`seeds ${hosts.map((h) => `${h}:${port}`).join(",")}`), m.id);
      assert.match(m.log, new RegExp(`gossip ${hosts[i]!.replaceAll(".", "\\.")}:${port} `));
    }
    await until(
      "every member to see the three alive",
      () => allSee(members, ids(members), "alive"),
      members,
    );
    assert.equal(await members[2]!.put("found by name", true), 204);
    await until(
      "the write on the other two",
      async () =>
        (await members[0]!.value("found by name")) === true &&
        (await members[1]!.value("found by name")) === true,
      members,
    );
  } finally {
    await Promise.all(members.map((m) => m.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "with --data-dir, a member restarted alone still has its data (Deno: deno task node --data-dir, as documented)",
  SLOW,
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "gossip-kv-data-"));
    const members: Member[] = [];
    try {
      for (const runtime of RUNTIMES) {
        const data = join(dir, runtime);
        members.push(
          new Member(
            runtime,
            `${runtime}-durable`,
            await freePort("udp"),
            await freePort("tcp"),
            [
              "--bind=127.0.0.1",
              `--port=0`,
              `--data-dir=${data}`,
            ],
            {},
            [],
            [],
            runtime === "deno",
          ),
        );
      }
      await Promise.all(members.map(async (m) => {
        await m.start();
        assert.ok(m.log.includes(`; data in ${join(dir, m.runtime)};`), m.log);
        assert.equal(await m.put("kept", { by: m.id }), 204);
        m.kill("SIGTERM");
        assert.equal((await m.exited).code, 0, m.log);
        await m.start();
        assert.deepEqual(await m.value("kept"), { by: m.id }, m.log);
      }));
    } finally {
      await Promise.all(members.map((m) => m.stop()));
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

/** Runs a command to its end (killed after 60 s); its exit code and output. */
async function run(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const proc = launch(argv, env, (text, stream) => {
    if (stream === "stdout") stdout += text;
    else stderr += text;
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
  try {
    const { code } = await proc.exited;
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

test(
  "bad flags, an unreadable key file and an invalid one exit with code 2 and a message on stderr, on every runtime",
  SLOW,
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "gossip-kv-cli-"));
    try {
      const invalid = join(dir, "invalid.keys");
      writeFileSync(invalid, `${generateKey()}\nnot a key\n`);
      const cases: [string[], RegExp][] = [
        [
          ["--port=70000"],
          /^gossip-kv: --port must be a port number from 0 to 65535, got "70000"$/m,
        ],
        [["--seeds"], /^gossip-kv: Flag --seeds needs a value$/m],
        [
          [`--key-file=${join(dir, "missing.keys")}`],
          /Cannot read the key file .*: it does not exist/,
        ],
        [[`--key-file=${invalid}`], /Key file .* is not valid: Key on line 2 is not base64/],
      ];
      await Promise.all(RUNTIMES.map(async (runtime) => {
        for (const [args, message] of cases) {
          // Should a bad case start anyway, it takes free ports (a flag wins over its twin).
          const r = await run([...command(runtime), ...args], {
            GOSSIP_KV_PORT: "0",
            GOSSIP_KV_HTTP_PORT: "0",
          });
          assert.equal(r.code, 2, `${runtime} ${args}: ${r.stdout}${r.stderr}`);
          assert.match(r.stderr, message, `${runtime} ${args}`);
          assert.doesNotMatch(r.stdout, /Started member/);
        }
      }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  "one Ctrl-C (SIGINT to the process group), or SIGTERM to it, is one graceful leave and exit 0, through deno task node, bun src/cli.ts and npx tsx src/cli.ts",
  SLOW,
  async () => {
    const peerPort = await freePort("udp");
    const peer = new Member("bun", "peer-signals", peerPort, await freePort("tcp"), [
      "--bind=127.0.0.1",
      `--port=${peerPort}`,
      "--gossip-interval=200",
    ]);
    const members: Member[] = [peer];
    try {
      await peer.start();
      for (const runtime of RUNTIMES) {
        for (const signal of ["SIGINT", "SIGTERM"] as const) {
          const port = await freePort("udp");
          members.push(
            new Member(
              runtime,
              `${runtime}-${signal.toLowerCase()}`,
              port,
              await freePort("tcp"),
              [
                "--bind=127.0.0.1",
                `--port=${port}`,
                `--seeds=127.0.0.1:${peerPort}`,
                "--gossip-interval=200",
                "--log-level=debug",
              ],
              {},
              [],
              [],
              true,
            ),
          );
        }
      }
      const leaving = members.slice(1);
      await Promise.all(leaving.map((m) => m.start()));
      await until(
        "every member to see the others alive",
        () => allSee(members, ids(members), "alive"),
        members,
      );
      await Promise.all(leaving.map(async (m) => {
        // A request in flight (a PUT whose body has not all arrived) keeps the HTTP server
        // closing for a while: the copy of the signal arrives while the member leaves.
        const socket = connect(m.httpPort, "127.0.0.1");
        await new Promise((resolve) => socket.once("connect", resolve));
        socket.write(
          "PUT /usr/slow HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n" +
            "content-length: 100\r\n\r\n[1,",
        );
        await sleep(200);
        m.kill(m.id.endsWith("sigint") ? "SIGINT" : "SIGTERM");
        const exit = await m.exited;
        socket.destroy();
        assert.deepEqual(exit, { code: 0, signal: null }, m.log);
        assert.equal(m.log.match(/: leaving the cluster/g)?.length, 1, m.log);
        assert.doesNotMatch(m.log, /exiting without waiting/, m.log);
        assert.match(m.log, new RegExp(`Member ${m.id} left; bye`), m.log);
      }));
      await until(
        "the peer to see every other member left",
        () => allSee([peer], ids(leaving), "left"),
        members,
      );
    } finally {
      await Promise.all(members.map((m) => m.stop()));
    }
  },
);

test(
  "the documented commands run: deno task node, bun src/cli.ts, npx tsx src/cli.ts",
  SLOW,
  async () => {
    const commands = [
      [bin("deno"), "task", "node", "--version"],
      [bin("bun"), "src/cli.ts", "--version"],
      [bin("tsx"), "src/cli.ts", "--version"],
    ];
    await Promise.all(commands.map(async (argv, i) => {
      const r = await run(argv);
      assert.equal(r.code, 0, `${argv.join(" ")}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^gossip-kv \\S+ \\(${RUNTIMES[i]} `), argv.join(" "));
    }));
  },
);

test("importing src/cli.ts starts nothing on Deno, Bun or Node", SLOW, async () => {
  const dir = mkdtempSync(join(tmpdir(), "gossip-kv-cli-"));
  try {
    const script = join(dir, "import_cli.mjs");
    writeFileSync(
      script,
      `const cli = await import(${JSON.stringify(pathToFileURL(CLI).href)});\n` +
        `console.log("imported", typeof cli.parseFlags, typeof cli.main);\n`,
    );
    const commands: Record<Runtime, string[]> = {
      // The script lies outside the repository: point Deno at its configuration.
      deno: [bin("deno"), "run", "-A", "--config", join(ROOT, "deno.json"), script],
      bun: [bin("bun"), script],
      node: ["node", "--import", "tsx", script],
    };
    await Promise.all(RUNTIMES.map(async (runtime) => {
      const r = await run(commands[runtime]);
      assert.equal(r.code, 0, `${runtime}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout.trim(), "imported function function", runtime);
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
