// kill -9 of a whole cluster under write load: three members, one per runtime (Deno, Bun,
// Node), each a child process with file storage, talking real UDP on loopback. Every
// member is killed while writing, then all restart on their directories. Every write
// whose set() or delete() had resolved must be on its writer's disk, and, once the
// members have converged, present (or, for a delete, absent) everywhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { freePort } from "./_edge.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const child = join(root, "tests", "_storage_crash_child.ts");
const bin = (name: string) => join(root, "node_modules", ".bin", name);

type Runtime = "deno" | "bun" | "node";
// Each runtime with another fsync policy: all three survive kill -9 (only "always" and
// "interval" survive a power cut, which a test cannot do).
const members: { id: string; runtime: Runtime; fsync: string }[] = [
  { id: "deno-m", runtime: "deno", fsync: "always" },
  { id: "bun-m", runtime: "bun", fsync: "interval" },
  { id: "node-m", runtime: "node", fsync: "never" },
];

function command(runtime: Runtime, dir: string): [string, string[]] {
  switch (runtime) {
    case "deno":
      // The permissions docs/reliability.md asks for, and no more (plus the network).
      return [bin("deno"), [
        "run",
        "--no-check",
        "--unstable-net",
        `--allow-read=${dir}`,
        `--allow-write=${dir}`,
        "--allow-net=127.0.0.1",
        child,
      ]];
    case "bun":
      return [bin("bun"), [child]];
    case "node":
      // Not the tsx command: it runs node as a child of its own, which kill -9 would miss.
      return ["node", ["--import", "tsx", child]];
  }
}

interface Running {
  readonly proc: ChildProcess;
  readonly lines: Record<string, unknown>[];
  readonly stderr: string[];
  exited: boolean;
}

function start(runtime: Runtime, dir: string, config: unknown): Running {
  const [cmd, args] = command(runtime, dir);
  const proc = spawn(cmd, [...args, JSON.stringify(config)], {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const r: Running = { proc, lines: [], stderr: [], exited: false };
  proc.on("exit", () => r.exited = true);
  proc.on("error", (e) => r.stderr.push(String(e)));
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    try {
      r.lines.push(JSON.parse(line));
    } catch {
      r.stderr.push(line);
    }
  });
  proc.stderr!.on("data", (d) => r.stderr.push(String(d)));
  return r;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(what: string, done: () => boolean, running: Running[], ms = 90_000) {
  for (const end = Date.now() + ms; !done();) {
    const dead = running.find((r) => r.exited);
    if (dead) assert.fail(`a child exited while waiting for ${what}: ${dead.stderr.join("")}`);
    if (Date.now() > end) {
      assert.fail(
        `timed out waiting for ${what}: ${running.map((r) => r.stderr.join("")).join("\n")}`,
      );
    }
    await sleep(50);
  }
}

/** `n` distinct ports free now (see {@linkcode freePort}). */
async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort("udp"));
  return ports;
}

function kill(r: Running): Promise<void> {
  if (r.exited) return Promise.resolve();
  return new Promise((resolve) => {
    r.proc.once("exit", () => resolve());
    r.proc.kill("SIGKILL");
  });
}

test(
  "kill -9 of every member under write load loses no acknowledged write",
  { timeout: 180_000 },
  async () => {
    const base = await mkdtemp(join(tmpdir(), "gossip-kv-crash-"));
    let running: Running[] = [];
    try {
      const ports = await freePorts(members.length);
      const addresses = ports.map((p) => `127.0.0.1:${p}`);
      const configs = members.map((m, i) => ({
        id: m.id,
        port: ports[i],
        peers: addresses.filter((_, j) => j !== i),
        dir: join(base, m.id),
        fsync: m.fsync,
      }));

      // 1. Write load on every member, then kill -9 all of them while they write.
      running = members.map((m, i) =>
        start(m.runtime, configs[i]!.dir, { ...configs[i], mode: "load" })
      );
      const acks = (r: Running, kind: "set" | "del") =>
        r.lines.filter((l) => typeof l[kind] === "string").map((l) => l[kind] as string);
      await until(
        "300 acknowledged writes per member",
        () => running.every((r) => acks(r, "set").length >= 300),
        running,
      );
      await sleep(Math.floor(Math.random() * 500));
      for (const r of running) r.proc.kill("SIGKILL");
      await Promise.all(running.map(kill));
      const sets = new Set(running.flatMap((r) => acks(r, "set")));
      const dels = new Set(running.flatMap((r) => acks(r, "del")));
      const ownAcks = running.map((r) => ({ sets: acks(r, "set"), dels: new Set(acks(r, "del")) }));
      const stats = running.map((r) => r.lines.filter((l) => l.stats).at(-1)?.stats);
      const loadErrors = running.flatMap((r) => r.lines.filter((l) => l.error).map((l) => l.error));
      assert.deepEqual(loadErrors, [], "errors during the load");

      // 2. Restart all of them on their directories.
      running = members.map((m, i) =>
        start(m.runtime, configs[i]!.dir, { ...configs[i], mode: "verify" })
      );
      await until(
        "every member to restart",
        () => running.every((r) => r.lines.some((l) => l.ready)),
        running,
      );

      // 3. Each writer's own acknowledged writes are on its own disk.
      const summary: string[] = [];
      running.forEach((r, i) => {
        const disk = r.lines.find((l) => l.disk) as {
          disk: [string, number | null][];
          damage: string | null;
        };
        const held = new Map(disk.disk);
        const own = ownAcks[i]!;
        for (const key of own.sets) {
          const n = Number(key.split("/")[1]);
          if (own.dels.has(key)) assert.equal(held.get(key), null, `${key}: the delete is on disk`);
          else if (n % 5 !== 0) {
            assert.equal(held.get(key), n, `${key} is on ${members[i]!.id}'s disk`);
          }
        }
        const { runtime, fsync } = members[i]!;
        const { compactions } = (stats[i] ?? { compactions: 0 }) as { compactions: number };
        summary.push(
          `${runtime} (fsync ${fsync}): ${own.sets.length} sets, ${own.dels.size} deletes ` +
            `acknowledged, all on disk; ${compactions}+ compactions before the kill` +
            (disk.damage ? `; repaired on restart: ${disk.damage}` : ""),
        );
      });

      // 4. Once converged, every acknowledged write is everywhere.
      const expected = (dump: Map<string, number | null>) => {
        for (const key of sets) {
          const n = Number(key.split("/")[1]);
          if (dels.has(key)) {
            if (dump.has(key)) return `${key} was deleted`;
          } else if (n % 5 !== 0 && dump.get(key) !== n) return `${key} is missing`;
        }
        return "";
      };
      let problem = "not checked yet";
      await until("convergence with every acknowledged write", () => {
        const dumps = running.map((r) =>
          r.lines.filter((l) => l.dump).at(-1) as
            | { dump: [string, number | null][]; root: string }
            | undefined
        );
        for (const r of running) r.proc.stdin!.write("dump\n");
        if (dumps.some((d) => d === undefined)) return false;
        const roots = new Set(dumps.map((d) => d!.root));
        problem = roots.size > 1
          ? "roots differ"
          : dumps.map((d) => expected(new Map(d!.dump))).find(Boolean) ?? "";
        for (const r of running) r.lines.splice(0, r.lines.length - 5); // keep memory flat
        return problem === "";
      }, running).catch((e) => assert.fail(`${(e as Error).message} (last problem: ${problem})`));
      console.log(summary.join("\n"));
    } finally {
      await Promise.all(running.map(kill));
      await rm(base, { recursive: true, force: true });
    }
  },
);
