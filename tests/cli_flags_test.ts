// The `node` command's flags (parseFlags in src/cli.ts) and its helpers that need no
// process of their own: seed resolution, the key file and its watcher, the log.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { envTwin, FLAGS, type NodeConfig, parseFlags, UsageError } from "../src/cli.ts";
import { helpText } from "../src/cli/_flags.ts";
import { checkKeyFile, type KeyFile, readKeyFile, watchKeyFile } from "../src/cli/_keys.ts";
import { createLogger } from "../src/cli/_log.ts";
import { stopSignals } from "../src/cli/_signals.ts";
import { bindFamily, type Lookup, parseSeed, SeedResolver } from "../src/cli/_seeds.ts";
import { generateKey } from "../src/wire/crypto.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Every flag with a value, and the config field it sets. */
const EVERY_FLAG: Record<string, [string, Partial<NodeConfig>]> = {
  "id": ["gossip-kv-0", { id: "gossip-kv-0" }],
  "bind": ["::", { bind: "::" }],
  "port": ["7000", { port: 7000 }],
  "advertise": ["10.0.0.5:7000", { advertise: "10.0.0.5:7000" }],
  "seeds": ["10.0.0.6:7000,gossip.local", { seeds: ["10.0.0.6:7000", "gossip.local"] }],
  "cluster": ["prod", { cluster: "prod" }],
  "key-file": ["/etc/gossip-kv/keys/cluster.keys", {
    keyFile: "/etc/gossip-kv/keys/cluster.keys",
  }],
  "http-port": ["9090", { httpPort: 9090 }],
  "http-bind": ["0.0.0.0", { httpBind: "0.0.0.0" }],
  "http-token": ["t0ken", { httpToken: "t0ken" }],
  "gossip-interval": ["250", { gossipIntervalMs: 250 }],
  "tombstone-grace": ["20000", { tombstoneGraceMs: 20_000 }],
  "log-level": ["debug", { logLevel: "debug" }],
  "log-format": ["json", { logFormat: "json" }],
  "data-dir": ["/var/lib/gossip-kv", { dataDir: "/var/lib/gossip-kv" }],
};
const EXPECTED: NodeConfig = {
  command: "start",
  id: "gossip-kv-0",
  bind: "::",
  port: 7000,
  advertise: "10.0.0.5:7000",
  seeds: ["10.0.0.6:7000", "gossip.local"],
  cluster: "prod",
  keyFile: "/etc/gossip-kv/keys/cluster.keys",
  httpPort: 9090,
  httpBind: "0.0.0.0",
  httpToken: "t0ken",
  gossipIntervalMs: 250,
  tombstoneGraceMs: 20_000,
  logLevel: "debug",
  logFormat: "json",
  dataDir: "/var/lib/gossip-kv",
};

function usageError(args: string[], env: Record<string, string>, message: RegExp): void {
  assert.throws(() => parseFlags(args, env), (error: unknown) => {
    assert.ok(error instanceof UsageError, `a UsageError, got ${error}`);
    assert.match(error.message, message);
    return true;
  });
}

test("the flag table covers every flag the parser accepts, each with its GOSSIP_KV_* twin", () => {
  assert.deepEqual(
    FLAGS.filter((f) => f.value !== "").map((f) => f.name),
    Object.keys(EVERY_FLAG),
  );
  assert.deepEqual(FLAGS.filter((f) => f.value === "").map((f) => f.name), [
    "require-encryption",
  ]);
  assert.equal(envTwin("http-token"), "GOSSIP_KV_HTTP_TOKEN");
  assert.equal(envTwin("gossip-interval"), "GOSSIP_KV_GOSSIP_INTERVAL");
  const help = helpText();
  for (const f of FLAGS) {
    assert.ok(help.includes(`--${f.name}${f.value ? "=" : ""}`), `--help lists --${f.name}`);
    assert.ok(help.includes(envTwin(f.name)), `--help lists ${envTwin(f.name)}`);
  }
});

test("the README's flag table lists every flag with its environment twin", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  for (const f of FLAGS) {
    const row = new RegExp(`^\\| \`--${f.name}\`[^\\n]*\`${envTwin(f.name)}\``, "m");
    assert.match(readme, row, `README row for --${f.name}`);
  }
});

test("parseFlags() fills in the defaults", () => {
  const config = parseFlags([], {});
  const { id, ...rest } = config;
  assert.deepEqual(rest, {
    command: "start",
    bind: "127.0.0.1",
    port: 7946,
    seeds: [],
    cluster: "default",
    httpPort: 8080,
    httpBind: "127.0.0.1",
    logLevel: "info",
    logFormat: "text",
  });
  assert.match(id, /^[A-Za-z0-9_-]+-[0-9a-f]{6}$/);
  assert.notEqual(parseFlags([], {}).id, id, "the suffix is random");
});

test("gossip binds loopback by default, every interface with a key file, and --bind always wins", () => {
  assert.equal(parseFlags([], {}).bind, "127.0.0.1");
  assert.equal(parseFlags(["--key-file=/k"], {}).bind, "0.0.0.0");
  assert.equal(parseFlags([], { GOSSIP_KV_KEY_FILE: "/k" }).bind, "0.0.0.0");
  assert.equal(parseFlags(["--bind=0.0.0.0"], {}).bind, "0.0.0.0");
  assert.equal(parseFlags(["--bind=10.0.0.5", "--key-file=/k"], {}).bind, "10.0.0.5");
  assert.equal(parseFlags([], { GOSSIP_KV_BIND: "::" }).bind, "::");
});

test("parseFlags() reads every flag written --flag=value", () => {
  const args = Object.entries(EVERY_FLAG).map(([flag, [value]]) => `--${flag}=${value}`);
  assert.deepEqual(parseFlags(args, {}), EXPECTED);
});

test("parseFlags() reads every flag written --flag value", () => {
  const args = Object.entries(EVERY_FLAG).flatMap(([flag, [value]]) => [`--${flag}`, value]);
  assert.deepEqual(parseFlags(args, {}), EXPECTED);
});

test("parseFlags() reads every environment twin", () => {
  const env = Object.fromEntries(
    Object.entries(EVERY_FLAG).map(([flag, [value]]) => [envTwin(flag), value]),
  );
  assert.deepEqual(parseFlags([], env), EXPECTED);
});

test("a flag wins over its environment twin, for every flag", () => {
  const env = Object.fromEntries(
    Object.entries(EVERY_FLAG).map(([flag, [value]]) => [envTwin(flag), value]),
  );
  const flags: Record<string, [string, Partial<NodeConfig>]> = {
    "id": ["other", { id: "other" }],
    "bind": ["127.0.0.1", { bind: "127.0.0.1" }],
    "port": ["7001", { port: 7001 }],
    "advertise": ["10.0.0.9", { advertise: "10.0.0.9" }],
    "seeds": ["10.0.0.7", { seeds: ["10.0.0.7"] }],
    "cluster": ["staging", { cluster: "staging" }],
    "key-file": ["/k", { keyFile: "/k" }],
    "http-port": ["0", { httpPort: 0 }],
    "http-bind": ["::1", { httpBind: "::1" }],
    "http-token": ["other-token", { httpToken: "other-token" }],
    "gossip-interval": ["100", { gossipIntervalMs: 100 }],
    "tombstone-grace": ["86400000", { tombstoneGraceMs: 86_400_000 }],
    "log-level": ["warn", { logLevel: "warn" }],
    "log-format": ["text", { logFormat: "text" }],
    "data-dir": ["/data", { dataDir: "/data" }],
  };
  for (const [flag, [value, expected]] of Object.entries(flags)) {
    const config = parseFlags([`--${flag}=${value}`], env);
    assert.deepEqual(config, { ...EXPECTED, ...expected }, `--${flag} over ${envTwin(flag)}`);
  }
});

test("--require-encryption and its twin: set only with a key file, else a usage error", () => {
  assert.equal(parseFlags([], {}).requireEncryption, undefined);
  assert.equal(parseFlags(["--require-encryption", "--key-file=/k"], {}).requireEncryption, true);
  for (const v of ["1", "true", "YES"]) {
    const config = parseFlags([], { GOSSIP_KV_REQUIRE_ENCRYPTION: v, GOSSIP_KV_KEY_FILE: "/k" });
    assert.equal(config.requireEncryption, true, v);
  }
  for (const v of ["0", "false", "no", ""]) {
    assert.equal(parseFlags([], { GOSSIP_KV_REQUIRE_ENCRYPTION: v }).requireEncryption, undefined);
  }
  usageError(["--require-encryption"], {}, /--require-encryption .*no key file.*--key-file/);
  usageError([], { GOSSIP_KV_REQUIRE_ENCRYPTION: "1" }, /no key file/);
  usageError([], { GOSSIP_KV_REQUIRE_ENCRYPTION: "maybe" }, /GOSSIP_KV_REQUIRE_ENCRYPTION must be/);
  usageError(["--require-encryption=yes", "--key-file=/k"], {}, /takes no value/);
});

test("an empty environment variable counts as unset; an empty --seeds= means no seeds", () => {
  const config = parseFlags([], { GOSSIP_KV_PORT: "", GOSSIP_KV_ID: "", GOSSIP_KV_SEEDS: "" });
  assert.equal(config.port, 7946);
  assert.match(config.id, /-[0-9a-f]{6}$/);
  assert.deepEqual(parseFlags(["--seeds="], { GOSSIP_KV_SEEDS: "10.0.0.1" }).seeds, []);
});

test("parseFlags() ignores environment variables that are not flags' twins", () => {
  const config = parseFlags([], { GOSSIP_KV_TEST_RUNTIME: "node", PORT: "1", HOSTNAME: "x" });
  assert.equal(config.port, 7946);
});

test("seeds: host:port, [v6]:port, bare IPs and DNS names, with spaces and empty items", () => {
  const config = parseFlags([
    "--seeds= 10.0.0.1:7946, [fd00::7]:7000,,fd00::8, gossip-kv-gossip.gossip-kv.svc.cluster.local ,a_b.local:1",
  ], {});
  assert.deepEqual(config.seeds, [
    "10.0.0.1:7946",
    "[fd00::7]:7000",
    "fd00::8",
    "gossip-kv-gossip.gossip-kv.svc.cluster.local",
    "a_b.local:1",
  ]);
});

test("--help, -h and --version choose what to print; --help wins", () => {
  assert.equal(parseFlags(["--help"], {}).command, "help");
  assert.equal(parseFlags(["-h", "--port=1"], {}).command, "help");
  assert.equal(parseFlags(["--version"], {}).command, "version");
  assert.equal(parseFlags(["--version", "--help"], {}).command, "help");
  assert.equal(parseFlags(["--help", "--version"], {}).command, "help");
});

test("the log level is read case-insensitively; a bracketed bind address loses its brackets", () => {
  assert.equal(parseFlags(["--log-level=WARN"], {}).logLevel, "warn");
  assert.equal(parseFlags(["--bind=[::]", "--http-bind=[::1]"], {}).bind, "::");
  assert.equal(parseFlags(["--http-bind=[::1]"], {}).httpBind, "::1");
});

test("ports 0 are accepted: a free gossip port, and no HTTP API", () => {
  const config = parseFlags(["--port=0", "--http-port=0"], {});
  assert.equal(config.port, 0);
  assert.equal(config.httpPort, 0);
});

test("unknown flags are refused, with a suggestion when one is close", () => {
  usageError(["--prot=7946"], {}, /^Unknown flag --prot \(did you mean --port\?\); --help lists/);
  usageError(["--seed", "a"], {}, /^Unknown flag --seed \(did you mean --seeds\?\)/);
  usageError(["--frobnicate"], {}, /^Unknown flag --frobnicate; --help lists the flags$/);
  usageError(["--datadir=/x"], {}, /^Unknown flag --datadir \(did you mean --data-dir\?\)/);
});

test("arguments that are not flags are refused", () => {
  usageError(["node"], {}, /^Unexpected argument "node": flags are written --name=value/);
  usageError(["-p", "1"], {}, /^Unexpected argument "-p"/);
  usageError(["--"], {}, /^Unexpected argument "--"/);
});

test("a flag without its value is refused", () => {
  usageError(["--port"], {}, /^Flag --port needs a value$/);
  usageError(["--seeds", "--port=1"], {}, /^Flag --seeds needs a value$/);
  usageError(["--id="], {}, /^--id must not be empty, got ""$/);
  usageError(["--help=yes"], {}, /^Flag --help takes no value$/);
});

test("a flag given twice is refused", () => {
  usageError(["--port=1", "--port", "2"], {}, /^Flag --port is given more than once$/);
});

test("bad numbers are refused, naming the flag or the variable", () => {
  for (const bad of ["70000", "-1", "7946.5", " 80", "1e3", "0x10", "eighty"]) {
    usageError(
      [`--port=${bad}`],
      {},
      /^--port must be a port number from 0 to 65535, got /,
    );
  }
  usageError(
    [],
    { GOSSIP_KV_HTTP_PORT: "tcp://10.0.0.1:8080" },
    /^GOSSIP_KV_HTTP_PORT must be a port number from 0 to 65535, got "tcp:\/\/10\.0\.0\.1:8080"$/,
  );
  usageError(["--http-port=65536"], {}, /^--http-port must be a port number/);
  for (const bad of ["0", "5", "1s", "3600001"]) {
    usageError(
      [`--gossip-interval=${bad}`],
      {},
      /^--gossip-interval must be a period in ms from 10 to 3600000/,
    );
  }
  for (const bad of ["0", "999", "1s", "2592000001", "-5"]) {
    usageError(
      [`--tombstone-grace=${bad}`],
      {},
      /^--tombstone-grace must be a period in ms from 1000 to 2592000000/,
    );
  }
  usageError(
    [],
    { GOSSIP_KV_TOMBSTONE_GRACE: "1h" },
    /^GOSSIP_KV_TOMBSTONE_GRACE must be a period in ms from 1000 to 2592000000, got "1h"$/,
  );
});

test("--tombstone-grace sets tombstoneGraceMs; unset, the library default (1 hour) applies", () => {
  assert.equal(parseFlags(["--tombstone-grace=1000"], {}).tombstoneGraceMs, 1_000);
  assert.equal(
    parseFlags([], { GOSSIP_KV_TOMBSTONE_GRACE: "2592000000" }).tombstoneGraceMs,
    2_592_000_000,
  );
  assert.equal("tombstoneGraceMs" in parseFlags([], {}), false);
  assert.match(
    helpText(),
    /--tombstone-grace=MS {2,}GOSSIP_KV_TOMBSTONE_GRACE\n.*default: 3600000/,
  );
});

test("bad addresses, seeds, names and levels are refused", () => {
  usageError(["--bind=not an address"], {}, /^--bind must be an IP address or a host name/);
  usageError(["--http-bind=a/b"], {}, /^--http-bind must be an IP address or a host name/);
  usageError(["--advertise=a:b:c:d"], {}, /^--advertise must be host, host:port or \[v6\]:port/);
  usageError(["--advertise=10.0.0.1:99999"], {}, /^--advertise must be host, host:port/);
  for (const seed of ["10.0.0.1:0", "host:port", "[::1", "bad name!", "[10.0.0.1]:1", "a:1:2"]) {
    usageError(
      [`--seeds=ok:1,${seed}`],
      {},
      /^--seeds: Seed .* is not host:port, \[v6\]:port, an IP address or a DNS name$/,
    );
  }
  usageError([], { GOSSIP_KV_SEEDS: "x:y" }, /^GOSSIP_KV_SEEDS: Seed "x:y" is not/);
  usageError([`--id=${"x".repeat(257)}`], {}, /^--id must be at most 256 characters/);
  usageError([`--cluster=${"x".repeat(257)}`], {}, /^--cluster must be at most 256 characters/);
  usageError(["--log-level=verbose"], {}, /^--log-level must be one of error, warn, info, debug/);
  usageError(["--log-format=xml"], {}, /^--log-format must be one of text, json, got "xml"$/);
  usageError(["--key-file= "], {}, /^--key-file must not be empty/);
});

test("--data-dir needs a stable --id (or GOSSIP_KV_ID)", () => {
  usageError(["--data-dir=/data"], {}, /^--data-dir needs --id: with a new id at every start/);
  assert.equal(parseFlags(["--data-dir=/data"], { GOSSIP_KV_ID: "m1" }).dataDir, "/data");
});

test("a token with spaces is refused without being echoed", () => {
  assert.throws(() => parseFlags(["--http-token=my secret"], {}), (error: Error) => {
    assert.equal(error.message, "--http-token must not contain spaces");
    return true;
  });
  assert.throws(() => parseFlags([], { GOSSIP_KV_HTTP_TOKEN: "my secret" }), (error: Error) => {
    assert.equal(error.message, "GOSSIP_KV_HTTP_TOKEN must not contain spaces");
    return true;
  });
});

test("UsageError is an Error named UsageError with exit code 2", () => {
  const error = new UsageError("Bad flag");
  assert.ok(error instanceof Error);
  assert.equal(error.name, "UsageError");
  assert.equal(error.exitCode, 2);
});

// ------------------------------------------------------------------ seeds

test("parseSeed() tells IP literals from DNS names, with or without a port", () => {
  assert.deepEqual(parseSeed("10.0.0.1:7946"), {
    text: "10.0.0.1:7946",
    host: "10.0.0.1",
    port: 7946,
    name: false,
  });
  assert.deepEqual(parseSeed("[fd00::1]"), { text: "[fd00::1]", host: "fd00::1", name: false });
  assert.deepEqual(parseSeed("fd00::1"), { text: "fd00::1", host: "fd00::1", name: false });
  assert.deepEqual(parseSeed("svc.local"), { text: "svc.local", host: "svc.local", name: true });
  assert.throws(() => parseSeed("svc.local:70000"), TypeError);
});

test("a seed name resolves to every address, at the gossip port unless it names one", async () => {
  const lookup: Lookup = (name) =>
    Promise.resolve(
      name === "svc.local"
        ? [
          { address: "10.0.0.3", family: 4 },
          { address: "10.0.0.2", family: 4 },
          { address: "fd00::2", family: 6 },
        ]
        : [{ address: "10.0.0.9", family: 4 }],
    );
  const resolver = new SeedResolver(["svc.local", "10.0.0.1:7000", "other.local:7001"], {
    port: 7946,
    family: 4,
    lookup,
  });
  assert.equal(resolver.hasNames, true);
  assert.deepEqual(await resolver.resolve(), {
    addresses: ["10.0.0.2:7946", "10.0.0.3:7946", "10.0.0.1:7000", "10.0.0.9:7001"],
    failures: [],
  });
  const both = new SeedResolver(["svc.local"], { port: 1, lookup });
  assert.deepEqual((await both.resolve()).addresses, [
    "10.0.0.2:1",
    "10.0.0.3:1",
    "[fd00::2]:1",
  ]);
});

test("a seed name that stops resolving keeps its last addresses, and the failure is reported", async () => {
  let answer: () => Promise<{ address: string; family: number }[]> = () =>
    Promise.resolve([{ address: "10.0.0.2", family: 4 }]);
  const resolver = new SeedResolver(["svc.local", "10.0.0.1"], {
    port: 7946,
    lookup: () => answer(),
    timeoutMs: 50,
  });
  assert.deepEqual((await resolver.resolve()).addresses, ["10.0.0.2:7946", "10.0.0.1:7946"]);
  answer = () => Promise.reject(Object.assign(new Error("not found"), { code: "ENOTFOUND" }));
  assert.deepEqual(await resolver.resolve(), {
    addresses: ["10.0.0.2:7946", "10.0.0.1:7946"],
    failures: ["svc.local: ENOTFOUND"],
  });
  answer = () => new Promise(() => {}); // never answers
  assert.deepEqual((await resolver.resolve()).failures, ["svc.local: no answer in 50 ms"]);
  answer = () => Promise.resolve([{ address: "fd00::1", family: 6 }]);
  const only4 = new SeedResolver(["svc.local"], { port: 7946, family: 4, lookup: () => answer() });
  assert.deepEqual(await only4.resolve(), {
    addresses: [],
    failures: ["svc.local: no IPv4 address"],
  });
  assert.equal(new SeedResolver(["10.0.0.1"], { port: 1 }).hasNames, false);
});

test("bindFamily() keeps IPv4 seeds for an IPv4 socket, IPv6 for IPv6, both for ::", () => {
  assert.equal(bindFamily("0.0.0.0"), 4);
  assert.equal(bindFamily("127.0.0.1"), 4);
  assert.equal(bindFamily("::1"), 6);
  assert.equal(bindFamily("::"), undefined);
  assert.equal(bindFamily("localhost"), undefined);
});

// ------------------------------------------------------------------ key file

test("a key file is read with fingerprints as secrets.sh prints them, never the keys", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gossip-kv-keys-"));
  try {
    const [a, b] = [generateKey(), generateKey()];
    const path = join(dir, "cluster.keys");
    writeFileSync(path, `# primary first\n${a}\n\n  ${b}  \n`);
    const file = await readKeyFile(path);
    assert.equal(file.keys.length, 2);
    const sha = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 12);
    assert.deepEqual(file.fingerprints, [sha(a), sha(b)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an unreadable or invalid key file is a usage error that says why", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gossip-kv-keys-"));
  try {
    await assert.rejects(readKeyFile(join(dir, "missing")), (error: Error) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /^Cannot read the key file .*missing: it does not exist$/);
      return true;
    });
    await assert.rejects(readKeyFile(dir), (error: Error) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /^Cannot read the key file /);
      return true;
    });
    const secretish = "c2hvcnQ=";
    assert.throws(() => checkKeyFile("/k", `${secretish}\n`), (error: Error) => {
      assert.ok(error instanceof UsageError);
      assert.equal(error.message, "Key file /k is not valid: Key on line 1 is 5 bytes, not 32");
      assert.ok(!error.message.includes(secretish));
      return true;
    });
    assert.throws(() => checkKeyFile("/k", "# nothing\n"), /Key file \/k is not valid: .*no key/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a rewritten key file is applied; an invalid one is reported once and the keys stay", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gossip-kv-keys-"));
  const path = join(dir, "cluster.keys");
  const applied: KeyFile[] = [];
  const errors: string[] = [];
  writeFileSync(path, `${generateKey()}\n`);
  const watch = watchKeyFile({
    path,
    current: await readKeyFile(path),
    intervalMs: 10,
    apply: (file) => {
      applied.push(file);
      return Promise.resolve();
    },
    onError: (message) => errors.push(message),
  });
  try {
    assert.equal(await watch.check(), false, "unchanged");
    // Replaced whole (a rename), as an operator's tools do: the watcher polls every 10 ms and
    // would otherwise read a file half written, and say so.
    const replace = (text: string) => {
      writeFileSync(`${path}.tmp`, text);
      renameSync(`${path}.tmp`, path);
    };
    replace("not a key\n");
    while (errors.length === 0) await sleep(5);
    await sleep(50);
    assert.equal(errors.length, 1, "said once");
    assert.match(
      errors[0]!,
      /is not valid: Key on line 1 is not base64.*; keeping the current keys$/,
    );
    const [next, old] = [generateKey(), generateKey()];
    replace(`${next}\n${old}\n`);
    while (applied.length === 0) await sleep(5);
    assert.equal(applied[0]!.keys.length, 2);
    rmSync(path);
    while (errors.length < 2) await sleep(5);
    assert.match(errors[1]!, /^Cannot reload the key file .*: it does not exist; keeping/);
    assert.equal(applied.length, 1);
  } finally {
    watch.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ log

test("the log prints its level and above, errors and warnings on stderr", () => {
  const out: string[] = [];
  const err: string[] = [];
  const log = createLogger("warn", { out: (l) => out.push(l), err: (l) => err.push(l) });
  log.error("broken");
  log.warn("careful");
  log.info("hello");
  log.debug("details");
  assert.equal(out.length, 0);
  assert.equal(err.length, 2);
  assert.match(err[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ERROR broken$/);
  assert.match(err[1]!, /^\S+ WARN {2}careful$/);
  const all: string[] = [];
  const debug = createLogger("debug", { out: (l) => all.push(l), err: (l) => all.push(l) });
  debug.info("hello");
  debug.debug("details");
  assert.deepEqual(all.map((l) => l.slice(25)), ["INFO  hello", "DEBUG details"]);
});

test("--log-format=json: one JSON object a line with time, level, message and the fields", () => {
  const lines: string[] = [];
  const log = createLogger(
    "info",
    { out: (l) => lines.push(l), err: (l) => lines.push(l) },
    "json",
  );
  log.info("Member b (127.0.0.1:7947) joined", { member: "b", address: "127.0.0.1:7947" });
  log.warn("careful");
  log.debug("hidden");
  assert.equal(lines.length, 2);
  const first = JSON.parse(lines[0]!);
  assert.match(first.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual({ ...first, time: "t" }, {
    time: "t",
    level: "info",
    message: "Member b (127.0.0.1:7947) joined",
    member: "b",
    address: "127.0.0.1:7947",
  });
  assert.deepEqual({ ...JSON.parse(lines[1]!), time: "t" }, {
    time: "t",
    level: "warn",
    message: "careful",
  });
});

test("stop signals: the first leaves, copies within a second are the same interrupt, a later one forces", () => {
  const signals = stopSignals(1_000);
  assert.equal(signals.signalled(5_000), "leave");
  assert.equal(signals.signalled(5_001), "copy");
  assert.equal(signals.signalled(5_999), "copy");
  assert.equal(signals.signalled(6_000), "force");
  assert.equal(stopSignals().signalled(0), "leave");
});
