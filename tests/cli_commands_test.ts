// The `gossip-kv` subcommands (src/cli.ts) as users run them: a real three-member cluster
// (one Deno, one Bun and one Node agent, processes on loopback), and every client subcommand
// run as a process on each runtime against it. Then the rules that need no process: argument
// tokenizing, the version, the key file edits, exit codes of bad input.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { tokenize } from "../src/cli/_args.ts";
import { keyring } from "../src/cli/_keyring.ts";
import { VERSION } from "../src/cli/_version.ts";
import type { Io } from "../src/cli/_client.ts";
import { fingerprint } from "../src/cli/_keys.ts";
import { UsageError } from "../src/cli.ts";
import { generateKey, parseKeyFile } from "../src/wire/crypto.ts";
import {
  bin,
  childEnv,
  CliMember,
  freePort,
  Proc,
  ROOT,
  type Runtime,
  RUNTIMES,
  SLOW as EDGE_SLOW,
  udpCluster,
  until,
} from "./_edge.ts";

// As tests/cli_process_test.ts: the processes are the same whichever runner runs this file,
// so npm test runs the process tests under Node only.
const SLOW = { ...EDGE_SLOW, timeout: 300_000 };

/** `gossip-kv` on `runtime`, from the checkout (`deno task node` is the agent on Deno). */
function gossipKv(runtime: Runtime, cli = join(ROOT, "src", "cli.ts")): string[] {
  switch (runtime) {
    case "deno":
      return [bin("deno"), "run", "-A", "--config", join(dirname(cli), "..", "deno.json"), cli];
    case "bun":
      return [bin("bun"), cli];
    case "node":
      // Not the tsx binary: it relays a signal to the node process it starts and, when that
      // process has not reported the signal within 30 ms (a loaded machine), kills it and ends
      // with 128 + the signal's number (a `watch` ended by SIGINT exited 130, not 0, once in CI).
      return ["node", "--import", "tsx", cli];
  }
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `argv` to its end (killed after 60 s), with `input` on its standard input. */
function run(
  argv: string[],
  options: { env?: Record<string, string>; input?: string; cwd?: string } = {},
): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: options.cwd ?? ROOT,
      env: childEnv(options.env),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += String(d)));
    child.stderr!.on("data", (d) => (stderr += String(d)));
    child.stdin!.end(options.input ?? "");
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface MemberLine {
  id: string;
  address: string;
  status: string;
  runtime: string | null;
  protocol: string | null;
  self: boolean;
}

test(
  "every client subcommand, run on Deno, Bun and Node, works against a three-member cluster",
  SLOW,
  async () => {
    const agents = await udpCluster("cmds");
    const [first, second, third] = agents as [CliMember, CliMember, CliMember];
    try {
      await Promise.all(RUNTIMES.map(async (runtime, i) => {
        const cli = (args: string[], input?: string) =>
          run([...gossipKv(runtime), ...args], input === undefined ? {} : { input });
        const at = (agent: CliMember) => `--http-addr=${agent.addr}`;
        const ok = (r: Ran, what: string) =>
          assert.equal(r.code, 0, `${runtime} ${what}: ${r.stdout}${r.stderr}`);

        // members: every member alive, as JSON parsed back, and as the aligned table.
        await until(`${runtime}: members lists the three alive`, async () => {
          const r = await cli(["members", "--format=json", at(agents[i]!)]);
          ok(r, "members --format=json");
          const list = JSON.parse(r.stdout) as MemberLine[];
          return agents.every((a) =>
            list.some((m) =>
              m.id === a.id && m.status === "alive" && m.runtime === a.runtime &&
              m.protocol === "v1" && m.address === `127.0.0.1:${a.port}` &&
              m.self === (a === agents[i])
            )
          );
        }, agents);
        const table = await cli(["members", at(first)]);
        ok(table, "members");
        const rows = table.stdout.trimEnd().split("\n");
        assert.match(rows[0]!, /^ID\s+ADDRESS\s+STATUS\s+RUNTIME\s+PROTOCOL\s+LAST HEARD$/);
        assert.equal(rows.length, 4, table.stdout);
        const column = rows[0]!.indexOf("STATUS");
        for (const row of rows.slice(1)) assert.equal(row.slice(column, column + 5), "alive");
        const dead = await cli(["members", "--status=dead", "--format=json", at(first)]);
        assert.deepEqual(JSON.parse(dead.stdout), []);

        // put through one member (JSON, --raw, standard input), get from another.
        const key = `from ${runtime}/json`;
        ok(await cli(["put", key, '{"n":[1,2]}', at(first)]), "put");
        ok(await cli(["put", `from ${runtime}/raw`, "plain text", "--raw", at(second)]), "put");
        ok(await cli(["put", `from ${runtime}/stdin`, "-", at(third)], '"piped"\n'), "put -");
        await until(`${runtime}: the writes on the third member`, async () => {
          const r = await cli(["get", key, at(third)]);
          return r.code === 0 && r.stdout === '{"n":[1,2]}\n';
        }, agents);
        const raw = await cli(["get", `from ${runtime}/raw`, "--raw", at(second)]);
        assert.equal(raw.stdout, "plain text\n");
        await until(`${runtime}: the piped value`, async () => {
          const r = await cli(["get", `from ${runtime}/stdin`, at(first)]);
          return r.stdout === '"piped"\n';
        }, agents);

        // keys, with a prefix, as text and JSON.
        await until(`${runtime}: keys lists the three`, async () => {
          const r = await cli(["keys", `--prefix=from ${runtime}/`, "--format=json", at(first)]);
          return JSON.stringify(JSON.parse(r.stdout)) ===
            JSON.stringify([
              `from ${runtime}/json`,
              `from ${runtime}/raw`,
              `from ${runtime}/stdin`,
            ]);
        }, agents);
        const text = await cli(["keys", `--prefix=from ${runtime}/r`, at(second)]);
        assert.equal(text.stdout, `from ${runtime}/raw\n`);

        // del, then get exits 1 and says the key is absent.
        ok(await cli(["del", `from ${runtime}/raw`, at(third)]), "del");
        await until(`${runtime}: the delete everywhere`, async () => {
          for (const a of agents) {
            const r = await cli(["get", `from ${runtime}/raw`, at(a)]);
            if (r.code !== 1 || !/is absent/.test(r.stderr)) return false;
          }
          return true;
        }, agents);

        // info: the member's own view, as JSON parsed back.
        const view = await cli(["info", "--format=json", at(agents[i]!)]);
        ok(view, "info");
        const parsed = JSON.parse(view.stdout) as {
          id: string;
          runtime: string;
          protocol: string;
          root: string;
          keys: number;
          members: { alive: number };
        };
        assert.equal(parsed.id, agents[i]!.id);
        assert.equal(parsed.runtime, runtime);
        assert.equal(parsed.protocol, "v1");
        assert.match(parsed.root, /^[0-9a-f]{16}$/);
        assert.equal(parsed.members.alive, 3);
        const human = await cli(["info", at(agents[i]!)]);
        assert.match(human.stdout, new RegExp(`^id\\s+${agents[i]!.id}$`, "m"));
        assert.match(human.stdout, /^peers in sync\s+\d of 2$/m);

        // keygen: one valid key, a key file by itself.
        const key1 = await cli(["keygen"]);
        ok(key1, "keygen");
        assert.equal(parseKeyFile(key1.stdout).length, 1);
      }));
    } finally {
      await Promise.all(agents.map((a) => a.stop()));
    }
  },
);

test(
  "watch, on Deno, Bun and Node, prints a write made through another member, and ends with 0 on SIGINT; an agent with --log-format=json logs JSON lines",
  SLOW,
  async () => {
    const agents = await udpCluster("watch", (i) => (i === 2 ? ["--log-format=json"] : []));
    const watchers: Proc[] = [];
    try {
      for (const [i, runtime] of RUNTIMES.entries()) {
        watchers.push(
          new Proc(`watch ${runtime}`, [
            ...gossipKv(runtime),
            "watch",
            "--prefix=watched/",
            `--http-addr=${agents[(i + 1) % 3]!.addr}`,
          ]),
        );
      }
      // Writes go on until each watcher has seen one (a watcher may still be connecting).
      let n = 0;
      await until(
        "every watcher to print a write made on another member",
        async () => {
          const r = await run([
            ...gossipKv("bun"),
            "put",
            `watched/${n++}`,
            '"seen"',
            `--http-addr=${agents[0]!.addr}`,
          ]);
          assert.equal(r.code, 0, r.stderr);
          await run([...gossipKv("bun"), "put", "other", "1", `--http-addr=${agents[0]!.addr}`]);
          return watchers.every((w) =>
            /^\S+Z set "watched\/\d+" = "seen" \(by deno-watch\)$/m.test(w.log)
          );
        },
        [...agents, ...watchers.map((proc) => ({ proc }))],
      );
      for (const w of watchers) assert.doesNotMatch(w.log, /"other"/, "--prefix filters");
      // Every line after the command line Proc logs first.
      const lines = agents[2]!.log.trimEnd().split("\n").slice(1).map((l) => JSON.parse(l));
      for (const line of lines) {
        assert.equal(typeof line.time, "string");
        assert.ok(["error", "warn", "info", "debug"].includes(line.level), line.level);
        assert.equal(typeof line.message, "string");
      }
      assert.ok(
        lines.some((l) =>
          l.level === "info" && l.member === "deno-watch" && /joined$/.test(l.message)
        ),
        agents[2]!.log,
      );
      for (const w of watchers) w.signal("SIGINT");
      for (const w of watchers) assert.equal(await w.exited, 0, `${w.name}: ${w.log}`);
    } finally {
      await Promise.all([...watchers, ...agents].map((p) => p.stop()));
    }
  },
);

test(
  "keyring install, use and remove, each run on every member's key file, rotate the cluster key with no datagram refused",
  SLOW,
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "gossip-kv-keyring-"));
    const oldKey = generateKey();
    const newKey = generateKey();
    const files = RUNTIMES.map((r) => join(dir, `${r}.keys`));
    for (const f of files) writeFileSync(f, `# cluster key\n${oldKey}\n`, { mode: 0o600 });
    const agents = await udpCluster("keyring", (i) => [`--key-file=${files[i]}`, "--cluster=kr"]);
    try {
      await until("the three to see each other", async () => {
        for (const a of agents) {
          const list = await (await fetch(`http://${a.addr}/members`)).json() as {
            status: string;
          }[];
          if (list.filter((m) => m.status === "alive").length !== 3) return false;
        }
        return true;
      }, agents);
      let reloads = 0;
      // Each step on every member's file (with the CLI of that member's runtime), then a
      // SIGHUP, and the next step only once all three reloaded.
      const step = async (args: string[], input?: string) => {
        reloads++;
        await Promise.all(agents.map(async (a, i) => {
          const r = await run([
            ...gossipKv(a.runtime),
            "keyring",
            ...args,
            `--key-file=${files[i]}`,
          ], {
            ...(input !== undefined && { input }),
          });
          assert.equal(r.code, 0, `${a.runtime} keyring ${args[0]}: ${r.stdout}${r.stderr}`);
          a.signal("SIGHUP");
        }));
        await until(
          `every member to reload its keys (${args[0]})`,
          () =>
            Promise.resolve(
              agents.every((a) => (a.log.match(/Cluster keys reloaded/g)?.length ?? 0) >= reloads),
            ),
          agents,
        );
      };
      await step(["install", "-"], `${newKey}\n`);
      await step(["use", fingerprint(newKey)]);
      await step(["remove", fingerprint(oldKey)]);
      for (const f of files) {
        assert.deepEqual(
          readFileSync(f, "utf8").split("\n").filter((l) => l && !l.startsWith("#")),
          [newKey],
        );
        assert.equal(statSync(f).mode & 0o777, 0o600, "the file keeps its mode");
      }
      const list = await run([...gossipKv("deno"), "keyring", "list", `--key-file=${files[0]}`]);
      assert.equal(list.stdout, `${fingerprint(newKey)}  primary\n`);
      // The cluster still replicates under the new key alone, and nothing was refused.
      const put = await run([
        ...gossipKv("node"),
        "put",
        "after rotation",
        "true",
        `--http-addr=${agents[0]!.addr}`,
      ]);
      assert.equal(put.code, 0, put.stderr);
      await until("the write under the new key on every member", async () => {
        for (const a of agents) {
          const res = await fetch(`http://${a.addr}/usr/after%20rotation`);
          if (res.status !== 200) return (await res.body?.cancel(), false);
          if ((await res.json()) !== true) return false;
        }
        return true;
      }, agents);
      for (const a of agents) {
        for (const reason of ["unauthenticated", "plaintext", "replay"]) {
          assert.equal(
            await a.metric("gossip_kv_dropped_datagrams_total", { reason }),
            0,
            `${a.id} refused datagrams (${reason})`,
          );
        }
      }
    } finally {
      await Promise.all(agents.map((a) => a.stop()));
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  "bad input exits 2 and an unreachable member 1, on every runtime, each with a message that says what to do",
  SLOW,
  async () => {
    const closed = await freePort("tcp"); // nothing listens there
    const cases: [string[], number, RegExp][] = [
      [["memebrs"], 2, /^gossip-kv: Unknown subcommand "memebrs" \(did you mean members\?\)/m],
      [["put", "k", "not json", `--http-addr=127.0.0.1:${closed}`], 2, /VALUE is not JSON.*--raw/],
      [["put", "k"], 2, /^gossip-kv put: Missing VALUE: usage gossip-kv put KEY VALUE\|-$/m],
      [["members", "--staus=alive"], 2, /Unknown flag --staus \(did you mean --status\?\)/],
      [["members", "--status=gone"], 2, /--status must be one of alive, suspect, dead, left/],
      [["keys", "--format=yaml"], 2, /--format must be one of text, json/],
      [["keyring", "list"], 2, /keyring needs --key-file=PATH \(or GOSSIP_KV_KEY_FILE\)/],
      // No subcommand, a flag first: the agent, as the container image runs it.
      [["--port=70000"], 2, /^gossip-kv: --port must be a port number from 0 to 65535/m],
      [
        ["members", `--http-addr=127.0.0.1:${closed}`],
        1,
        /Cannot reach the member at http:\/\/127\.0\.0\.1:\d+ .*is it running\? Point --http-addr/,
      ],
      [["get", "k", `--http-addr=127.0.0.1:${closed}`], 1, /Cannot reach the member/],
    ];
    await Promise.all(RUNTIMES.map(async (runtime) => {
      for (const [args, code, message] of cases) {
        const r = await run([...gossipKv(runtime), ...args]);
        assert.equal(r.code, code, `${runtime} ${args.join(" ")}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, message, `${runtime} ${args.join(" ")}`);
      }
      for (const args of [["--help"], ["members", "--help"], ["keyring", "-h"], ["--version"]]) {
        const r = await run([...gossipKv(runtime), ...args]);
        assert.equal(r.code, 0, `${runtime} ${args}: ${r.stderr}`);
        assert.match(r.stdout, args[0] === "--version" ? /^gossip-kv \d+\.\d+\.\d+ / : /^Usage: /);
      }
    }));
  },
);

test(
  "the CLI runs from the published file set (what deno publish --dry-run lists): gossip-kv members on Deno, Bun and Node",
  SLOW,
  async () => {
    const dry = await run([bin("deno"), "publish", "--dry-run", "--allow-dirty"]);
    assert.equal(dry.code, 0, dry.stderr);
    const prefix = `file://${ROOT.replace(/\/$/, "")}/`;
    const files = [...`${dry.stdout}${dry.stderr}`.matchAll(/(file:\/\/\S+) \(/g)]
      .map((m) => m[1]!)
      .filter((f) => f.startsWith(prefix))
      .map((f) => f.slice(prefix.length));
    assert.ok(files.includes("src/cli.ts"), `the package holds src/cli.ts: ${files.join(" ")}`);
    const dir = mkdtempSync(join(tmpdir(), "gossip-kv-published-"));
    const port = await freePort("udp");
    const agent = new CliMember("deno", "published", port, await freePort("tcp"), []);
    try {
      for (const f of files) {
        mkdirSync(dirname(join(dir, f)), { recursive: true });
        cpSync(join(ROOT, f), join(dir, f));
      }
      // The dependencies are the package's own (package.json), as npm installed them here.
      symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
      const cli = join(dir, "src", "cli.ts");
      await agent.start();
      await Promise.all(RUNTIMES.map(async (runtime) => {
        const r = await run([...gossipKv(runtime, cli), "members", `--http-addr=${agent.addr}`], {
          cwd: dir,
        });
        assert.equal(r.code, 0, `${runtime}: ${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /^ID\s+ADDRESS\s+STATUS/);
        assert.match(
          r.stdout,
          new RegExp(`^published\\s+127\\.0\\.0\\.1:${port}\\s+alive\\s+deno`, "m"),
        );
      }));
    } finally {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("the version the CLI prints is the package's, in deno.json and package.json", () => {
  for (const file of ["deno.json", "package.json"]) {
    const { version } = JSON.parse(readFileSync(join(ROOT, file), "utf8")) as { version: string };
    assert.equal(VERSION, version, file);
  }
});

test("tokenize(): flags with = or a space, switches, positionals after --, and its refusals", () => {
  const specs = [
    { name: "prefix", kind: "string" as const },
    { name: "raw", kind: "boolean" as const },
    { name: "help", kind: "boolean" as const, short: "h" },
  ];
  const t = tokenize(["a", "--prefix", "p/", "--raw", "-h", "--", "--not-a-flag"], specs, {
    positionals: true,
  });
  assert.deepEqual([...t.flags], [["prefix", "p/"], ["raw", true], ["help", true]]);
  assert.deepEqual(t.positionals, ["a", "--not-a-flag"]);
  const refused = (args: string[], message: RegExp, positionals = true) =>
    assert.throws(() => tokenize(args, specs, { positionals }), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, message);
      return true;
    });
  refused(["--prefx=a"], /^Unknown flag --prefx \(did you mean --prefix\?\)/);
  refused(["--prefix"], /^Flag --prefix needs a value$/);
  refused(["--prefix", "--raw"], /^Flag --prefix needs a value$/);
  refused(["--raw=yes"], /^Flag --raw takes no value$/);
  refused(["--raw", "--raw"], /^Flag --raw is given more than once$/);
  refused(["-x"], /^Unexpected argument "-x"/);
  refused(["a"], /^Unexpected argument "a"/, false);
});

/** An Io that records what a command prints, with `input` as its standard input. */
function captured(env: Record<string, string> = {}, input = ""): Io & { lines: string[] } {
  const lines: string[] = [];
  return {
    env,
    lines,
    out: (line) => lines.push(line),
    err: (line) => lines.push(`! ${line}`),
    stdin: () => Promise.resolve(input),
    signal: new AbortController().signal,
  };
}

test("keyring edits keep comments and the file mode, and refuse what would break the cluster", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gossip-kv-keyring-"));
  try {
    const path = join(dir, "cluster.keys");
    const [a, b] = [generateKey(), generateKey()];
    writeFileSync(path, `# primary first\n${a}\n`, { mode: 0o640 });
    const io = captured({ GOSSIP_KV_KEY_FILE: path });
    const refused = async (args: string[], message: RegExp) =>
      await assert.rejects(keyring.run(args, io), (error: unknown) => {
        assert.ok(error instanceof UsageError, String(error));
        assert.match(error.message, message);
        return true;
      });
    await refused(["install", "not-base64!"], /KEY .*base64.*gossip-kv keygen/);
    await refused(["install", a], /is already in/);
    await refused(["use", b], new RegExp(`Key ${fingerprint(b)} is not in`));
    await refused(["remove", a], /is the primary: make another key the primary first/);
    await refused(["rotate"], /Unknown action "rotate"/);
    assert.equal(await keyring.run(["install", b], io), 0);
    assert.equal(readFileSync(path, "utf8"), `# primary first\n${a}\n${b}\n`);
    assert.equal(await keyring.run(["use", fingerprint(b)], io), 0);
    assert.equal(readFileSync(path, "utf8"), `# primary first\n${b}\n${a}\n`);
    assert.equal(await keyring.run(["remove", a], io), 0);
    assert.equal(readFileSync(path, "utf8"), `# primary first\n${b}\n`);
    assert.equal(statSync(path).mode & 0o777, 0o640);
    io.lines.length = 0;
    assert.equal(await keyring.run(["list", "--format=json"], io), 0);
    assert.deepEqual(JSON.parse(io.lines[0]!), [{ fingerprint: fingerprint(b), primary: true }]);
    assert.ok(!io.lines.join("\n").includes(b), "list never prints a key");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
