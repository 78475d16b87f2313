// The fault lab's machinery (tests/lab/run.ts runs the scenarios): the hosts and their
// network, members of the `node` command started in them, their HTTP APIs, event streams and
// metrics, the reference model, and pcap parsing. Runs inside the lab's switch namespace
// (tests/lab/run.sh), as root.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

export const ROOT: string = fileURLToPath(new URL("../..", import.meta.url));
export const RUN = "lab";
export const SWITCH = `gkv${RUN}-sw`;
/** Hosts 0-4 run members; host 5 is the stranger. */
export const HOSTS = 6;
export const GOSSIP_PORT = 7946;
export const HTTP_PORT = 8080;

export const netnsOf = (i: number): string => `gkv${RUN}-m${i}`;
/** The command line that runs `argv` in host `i` (its network namespace). */
export const inHost = (i: number, argv: readonly string[]): string[] => [
  "ip",
  "netns",
  "exec",
  netnsOf(i),
  ...argv,
];
export const dataIp = (i: number): string => `10.213.0.${10 + i}`;
export const controlIp = (i: number): string => `10.214.0.${10 + i}`;
/** The switch-side veth end of host `i`'s data interface. */
export const portOf = (i: number): string => `p${i}`;

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Runs a command and returns its stdout; throws with its stderr when it fails. */
export function sh(argv: readonly string[], input?: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), {
    encoding: "utf8",
    ...(input !== undefined && { input }),
  });
  if (r.error) throw new Error(`${argv.join(" ")}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${argv.join(" ")} exited ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Whether a command succeeds (its output is dropped). */
export function trySh(argv: readonly string[]): boolean {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
  return r.status === 0;
}

export const LAB_FAILURE = Symbol("lab failure");

/** A failed check of a scenario: the lab reports it and exits 1. */
export class LabFailure extends Error {
  readonly [LAB_FAILURE] = true;
  constructor(message: string) {
    super(message);
    this.name = "LabFailure";
  }
}

/** Throws a {@linkcode LabFailure} with `message` unless `ok`. */
export function check(ok: unknown, message: string): asserts ok {
  if (!ok) throw new LabFailure(message);
}

// ---------------------------------------------------------------------------- runtimes

export type Runtime = "deno" | "bun" | "node";

const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);

/**
 * The command line that runs src/cli.ts of the tree `root` (this one by default, or a release
 * extracted under .scratch/) on `runtime`, as tests/cli_process_test.ts does; `profile`: a
 * directory where a Node member writes a CPU profile when it exits (`--cpu-prof`; Deno 2.9
 * and Bun have no such flag).
 */
export function memberCommand(
  runtime: Runtime,
  dataDir?: string,
  root: string = ROOT,
  profile?: string,
): string[] {
  if (profile !== undefined && runtime !== "node") {
    throw new Error(`a CPU profile is taken of Node members only, not ${runtime}`);
  }
  const prof = profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`];
  switch (runtime) {
    case "deno": {
      const deno = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")) as {
        tasks: Record<string, string>;
      };
      const [, ...rest] = deno.tasks.node!.trim().replace(/^env\s+/, "").split(/\s+/);
      const script = rest.indexOf("src/cli.ts"); // permissions before it, `agent` after
      return [
        bin("deno"),
        ...rest.slice(0, script),
        ...(dataDir === undefined ? [] : [`--allow-write=${dataDir}`]),
        ...rest.slice(script),
      ];
    }
    case "bun":
      return [bin("bun"), "src/cli.ts"];
    case "node":
      return [process.execPath, ...prof, "--import", "tsx", "src/cli.ts"];
  }
}

/** libfaketime, as Debian's `faketime` package installs it; undefined when missing. */
export function libfaketime(): string | undefined {
  for (const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"]) {
    const path = join(dir, "faketime", "libfaketime.so.1");
    if (existsSync(path)) return path;
  }
  return undefined;
}

/**
 * The environment that shifts a process's clock by `offset` ("+10m", "+30s") with
 * libfaketime. Only the wall clock (CLOCK_REALTIME: `Date.now()`) moves: the monotonic clock,
 * which timers use, is left alone.
 */
export function faketimeEnv(offset: string): Record<string, string> {
  const lib = libfaketime();
  if (!lib) throw new Error("libfaketime is missing (Debian package faketime)");
  return {
    LD_PRELOAD: lib,
    FAKETIME: offset,
    FAKETIME_DONT_FAKE_MONOTONIC: "1",
    FAKETIME_DONT_RESET: "1",
  };
}

/** The environment of a child: this one without GOSSIP_KV_* and LD_PRELOAD, plus `extra`. */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("GOSSIP_KV_") && !k.startsWith("FAKETIME")) env[k] = v;
  }
  delete env.LD_PRELOAD;
  return { ...env, ...extra };
}

// ---------------------------------------------------------------------------- members

export interface MemberOptions {
  /** Extra flags (after the common ones). */
  args?: string[];
  /** Extra environment (a clock offset). */
  env?: Record<string, string>;
  /** --data-dir. */
  dataDir?: string;
  /** The tree whose src/cli.ts runs (default: this one), e.g. a release under .scratch/. */
  root?: string;
  /** A directory for a CPU profile written at exit (Node members only: --cpu-prof). */
  profile?: string;
}

export interface MemberInfo {
  id: string;
  status: string;
  incarnation: number;
  address: string;
}

/** A member of the `node` command on host `host`; `start()` again after a kill restarts it. */
export class Member {
  proc: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();
  #tail = "";
  #startedLine = 0;
  starts = 0;

  constructor(
    readonly host: number,
    readonly runtime: Runtime,
    readonly id: string,
    readonly token: string,
    readonly logFile: string,
  ) {}

  get url(): string {
    return `http://${controlIp(this.host)}:${HTTP_PORT}`;
  }

  get pid(): number | undefined {
    return this.proc?.exitCode === null && this.proc.signalCode === null
      ? this.proc.pid
      : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  /** The last lines it printed. */
  tail(lines = 30): string {
    return this.#tail.split("\n").slice(-lines).join("\n");
  }

  #log(text: string): void {
    appendFileSync(this.logFile, text);
    this.#tail = (this.#tail + text).slice(-20_000);
  }

  /** Starts the process in its host; resolves once it logged its start line. */
  async start(common: string[], options: MemberOptions = {}): Promise<void> {
    const argv = inHost(this.host, [
      ...memberCommand(this.runtime, options.dataDir, options.root, options.profile),
      `--id=${this.id}`,
      ...common,
      ...(options.dataDir === undefined ? [] : [`--data-dir=${options.dataDir}`]),
      ...(options.args ?? []),
    ]);
    const env = childEnv({ GOSSIP_KV_HTTP_TOKEN: this.token, ...options.env });
    this.#log(
      `--- ${new Date().toISOString()} ${
        Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v} `).join("")
      }${argv.join(" ")}\n`,
    );
    this.starts++;
    const started = `Started member ${this.id} `;
    let output = "";
    const proc = spawn(argv[0]!, argv.slice(1), {
      cwd: options.root ?? ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    const onData = (d: Buffer) => {
      const text = String(d);
      output += text;
      this.#log(text);
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    this.exited = new Promise((resolve) => proc.once("close", () => resolve()));
    const deadline = Date.now() + 60_000;
    while (!output.includes(started)) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`${this.id} exited before starting:\n${this.tail()}`);
      }
      if (Date.now() > deadline) throw new Error(`${this.id} did not start:\n${this.tail()}`);
      await sleep(50);
    }
    this.#startedLine = Date.now();
  }

  /** When the last start completed (driver clock, ms). */
  get startedAt(): number {
    return this.#startedLine;
  }

  /** Sends `signal` to the process, if it runs. */
  signal(signal: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, signal);
    } catch {
      // It exited meanwhile.
    }
  }

  /** SIGKILL, and waits for the exit. */
  async kill(): Promise<void> {
    this.signal("SIGKILL");
    await this.exited;
  }

  /** SIGTERM (a graceful leave), and waits for the exit (SIGKILL after 10 s). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Resident memory, in KiB (VmRSS of /proc/<pid>/status), or undefined. */
  rssKiB(): number | undefined {
    const pid = this.pid;
    if (pid === undefined) return undefined;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  /** CPU time used so far (user + system), in seconds, or undefined. */
  cpuSeconds(): number | undefined {
    const pid = this.pid;
    if (pid === undefined) return undefined;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // Fields 14 and 15 of stat(5), counted from after the command: utime, stime.
      return (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return undefined;
    }
  }

  /** UDP counters of its host's network namespace (/proc/<pid>/net/snmp). */
  udpCounters(): Record<string, number> | undefined {
    const pid = this.pid;
    if (pid === undefined) return undefined;
    try {
      const lines = readFileSync(`/proc/${pid}/net/snmp`, "utf8").split("\n")
        .filter((l) => l.startsWith("Udp:"));
      const names = lines[0]!.split(/\s+/).slice(1);
      const values = lines[1]!.split(/\s+/).slice(1).map(Number);
      return Object.fromEntries(names.map((n, i) => [n, values[i]!]));
    } catch {
      return undefined;
    }
  }

  async fetch(path: string, init: RequestInit = {}, timeoutMs = 5_000): Promise<Response> {
    return await fetch(`${this.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${this.token}`, ...init.headers },
      signal: AbortSignal.timeout(timeoutMs),
    });
  }

  async json<T>(path: string): Promise<T> {
    const res = await this.fetch(path);
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`GET ${path} on ${this.id}: ${res.status}`);
    }
    return await res.json() as T;
  }

  async put(key: string, value: unknown): Promise<void> {
    const res = await this.fetch(`/usr/${encodeURIComponent(key)}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(value),
    });
    await res.body?.cancel();
    if (res.status !== 204) throw new Error(`PUT ${key} on ${this.id}: ${res.status}`);
  }

  async del(key: string): Promise<void> {
    const res = await this.fetch(`/usr/${encodeURIComponent(key)}`, { method: "DELETE" });
    await res.body?.cancel();
    if (res.status !== 204) throw new Error(`DELETE ${key} on ${this.id}: ${res.status}`);
  }

  /** Its user data with stamps (GET /usr), keys starting with `prefix`. */
  async listing(prefix = "", limit = 10_000): Promise<Map<string, Listed>> {
    const body = await this.json<{ entries: Listed[]; truncated: boolean }>(
      `/usr?prefix=${encodeURIComponent(prefix)}&limit=${limit}`,
    );
    if (body.truncated) throw new Error(`GET /usr on ${this.id}: more than ${limit} keys`);
    return new Map(body.entries.map((e) => [e.key, e]));
  }

  /** Member id → status, as it sees them. */
  async statuses(): Promise<Record<string, string>> {
    const list = await this.json<MemberInfo[]>("/members");
    return Object.fromEntries(list.map((m) => [m.id, m.status]));
  }

  /** Its Merkle root (both sections, tombstones included) and counts. */
  async sync(): Promise<{ root: string; keys: number; tombstones: number }> {
    return await this.json("/sync");
  }

  async metrics(): Promise<Metrics> {
    const res = await this.fetch("/metrics");
    return parseMetrics(await res.text());
  }
}

/** One key of GET /usr. */
export interface Listed {
  key: string;
  value: unknown;
  writer: string;
  wall: number;
}

// ---------------------------------------------------------------------------- metrics

/** Prometheus samples: `name{labels}` (labels sorted, `member` dropped) → value. */
export type Metrics = Map<string, number>;

export function parseMetrics(text: string): Metrics {
  const out: Metrics = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = (m[2] ?? "").split(/,(?=[a-z_]+=")/).filter(Boolean)
      .filter((l) => !l.startsWith("member=") && !l.startsWith("address="))
      .sort();
    out.set(`${m[1]!.replace(/^gossip_kv_/, "")}{${labels.join(",")}}`, Number(m[3]));
  }
  return out;
}

/** A sample of `metrics` by name and labels (0 when absent). */
export function metric(
  metrics: Metrics,
  name: string,
  labels: Record<string, string> = {},
): number {
  const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(",")}}`;
  return metrics.get(key) ?? 0;
}

/** `after - before` for every sample of `after`. */
export function delta(before: Metrics, after: Metrics): Metrics {
  const out: Metrics = new Map();
  for (const [k, v] of after) out.set(k, v - (before.get(k) ?? 0));
  return out;
}

/** The drop counters of `metrics`, by reason, without zeros. */
export function drops(metrics: Metrics): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of metrics) {
    const m = /^dropped_datagrams_total\{reason="([^"]+)"\}$/.exec(k);
    if (m && v) out[m[1]!] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------- events

export interface MemberEvent {
  /** Driver clock, ms. */
  at: number;
  /** The member that saw it. */
  observer: string;
  id: string;
  status: string;
  previous: string | null;
  incarnation: number;
}

export interface ChangeEvent {
  /** Driver clock, ms. */
  at: number;
  /** The member where it happened. */
  observer: string;
  key: string;
  origin: "local" | "remote";
  writer: string;
  wall: number;
}

/**
 * Follows GET /events of each member and keeps its `member` events (status changes as each
 * member sees them), and its `change` events of keys starting with `prefix` (by default a
 * prefix no key of the lab uses). A stream that ends (its member was killed) is opened again
 * once the member answers.
 */
export class EventWatch {
  readonly events: MemberEvent[] = [];
  readonly changes: ChangeEvent[] = [];
  #stopped = false;
  #controllers = new Set<AbortController>();

  constructor(readonly members: readonly Member[], readonly prefix = "no-key-has-this-prefix/") {
    for (const m of members) void this.#follow(m);
  }

  async #follow(member: Member): Promise<void> {
    while (!this.#stopped) {
      const controller = new AbortController();
      this.#controllers.add(controller);
      try {
        const res = await fetch(
          `${member.url}/events?prefix=${encodeURIComponent(this.prefix)}`,
          { signal: controller.signal },
        );
        if (!res.ok || !res.body) throw new Error(`status ${res.status}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const name = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (data === undefined) continue;
            if (name === "member") {
              const e = JSON.parse(data) as Omit<MemberEvent, "at" | "observer">;
              this.events.push({ at: Date.now(), observer: member.id, ...e });
            } else if (name === "change") {
              const { key, origin, writer, wall } = JSON.parse(data) as ChangeEvent;
              this.changes.push({ at: Date.now(), observer: member.id, key, origin, writer, wall });
            }
          }
        }
      } catch {
        // Refused (not started yet, or killed) or aborted: try again below.
      } finally {
        this.#controllers.delete(controller);
      }
      if (!this.#stopped) await sleep(200);
    }
  }

  /** Events since `from` (driver ms), optionally about member `id` only. */
  since(from: number, id?: string): MemberEvent[] {
    return this.events.filter((e) => e.at >= from && (id === undefined || e.id === id));
  }

  stop(): void {
    this.#stopped = true;
    for (const c of this.#controllers) c.abort();
  }
}

// ---------------------------------------------------------------------------- waiting

/** Polls `ready` (errors count as "not yet") every `everyMs` until it holds or `ms` pass. */
export async function until(
  ready: () => Promise<boolean> | boolean,
  ms: number,
  everyMs = 200,
): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await ready()) return true;
    } catch {
      // not yet
    }
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

/** Whether every member in `members` reports the same Merkle root; the roots. */
export async function roots(members: readonly Member[]): Promise<string[]> {
  return await Promise.all(members.map(async (m) => (await m.sync()).root));
}

export async function sameRoot(members: readonly Member[]): Promise<boolean> {
  return new Set(await roots(members)).size === 1;
}

/** Whether each of `members` sees each of `ids` with `status`. */
export async function allSee(
  members: readonly Member[],
  ids: readonly string[],
  status: string,
): Promise<boolean> {
  const views = await Promise.all(members.map((m) => m.statuses()));
  return views.every((s) => ids.every((id) => s[id] === status));
}

// ---------------------------------------------------------------------------- reference

/**
 * One write as the driver made it: the value (undefined for a delete), the member that made
 * it, and bounds on its stamp's wall time: the stamp the writer reported (GET /usr) for a
 * set, the driver's clock before and after the request for a delete (a tombstone is not
 * listed). The members and the driver read the same clock (one machine), so a stamp lies
 * within the request's window.
 */
export interface Write {
  key: string;
  value: unknown;
  deleted: boolean;
  writer: string;
  lo: number;
  hi: number;
}

/**
 * The reference model: last writer wins on the stamp (wall, logical, writer). The driver
 * spaces conflicting writes at least 2 ms apart, so their wall times differ and the winner
 * is the write whose wall bounds lie above all others'; two writes whose bounds overlap are
 * reported as ambiguous (either may win), never guessed.
 */
export class LwwReference {
  readonly writes = new Map<string, Write[]>();

  record(w: Write): void {
    let list = this.writes.get(w.key);
    if (!list) this.writes.set(w.key, list = []);
    list.push(w);
  }

  /** For each key: the writes that may be the last one (one, unless ambiguous). */
  winners(): Map<string, Write[]> {
    const out = new Map<string, Write[]>();
    for (const [key, list] of this.writes) {
      // A write can win unless another lies entirely above it.
      const possible = list.filter((w) => !list.some((o) => o !== w && o.lo > w.hi));
      out.set(key, possible);
    }
    return out;
  }

  /** Keys whose winner is not certain. */
  ambiguous(): string[] {
    return [...this.winners()].filter(([, w]) => w.length > 1).map(([k]) => k);
  }

  /**
   * What differs between `data` (a member's listing) and the reference, over the keys the
   * reference knows: a list of human-readable problems, empty when it matches.
   */
  compare(data: Map<string, Listed>): string[] {
    const problems: string[] = [];
    for (const [key, candidates] of this.winners()) {
      const got = data.get(key);
      const ok = candidates.some((w) =>
        w.deleted
          ? got === undefined
          : got !== undefined && JSON.stringify(got.value) === JSON.stringify(w.value) &&
            got.writer === w.writer
      );
      if (!ok) {
        const want = candidates.map((w) =>
          w.deleted ? `deleted by ${w.writer}` : `${JSON.stringify(w.value)} by ${w.writer}`
        ).join(" or ");
        const has = got === undefined
          ? "absent"
          : `${JSON.stringify(got.value)} by ${got.writer} at ${got.wall}`;
        problems.push(`${key}: ${has}, expected ${want}`);
      }
    }
    return problems;
  }
}

/**
 * Writes through `member` and records the write in `ref`: a set is read back from the
 * writer for its stamp; a delete is bounded by the request's window. Waits `gapMs` after,
 * so the next write's stamp is strictly later.
 */
export async function write(
  ref: LwwReference,
  member: Member,
  key: string,
  value: unknown,
  gapMs = 2,
): Promise<Write> {
  const lo = Date.now();
  if (value === undefined) await member.del(key);
  else await member.put(key, value);
  const hi = Date.now();
  let w: Write = { key, value, deleted: value === undefined, writer: member.id, lo, hi };
  if (value !== undefined) {
    const got = (await member.listing(key, 10_000)).get(key);
    if (got && got.writer === member.id && JSON.stringify(got.value) === JSON.stringify(value)) {
      check(
        got.wall >= lo - 1 && got.wall <= hi + 1,
        `${member.id} stamped ${key} at ${got.wall}, outside the request's window ${lo}..${hi}: ` +
          "its clock is not the driver's",
      );
      w = { ...w, lo: got.wall, hi: got.wall };
    }
  }
  ref.record(w);
  await sleep(gapMs);
  return w;
}

// ---------------------------------------------------------------------------- pcap

/** One UDP datagram of a capture. */
export interface Captured {
  /** Capture time, ms. */
  at: number;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  /** IPv4 total length: the datagram's size on the wire, headers included. */
  ipLength: number;
  payload: Uint8Array;
}

/**
 * The UDP datagrams over IPv4 of a classic pcap file (Ethernet link type; tcpdump -w).
 * Snapped payloads are as long as the snap length let them be; `ipLength` is the real size.
 */
export function readPcap(path: string): Captured[] {
  const buf = readFileSync(path);
  if (buf.length < 24) return [];
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const nano = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  if (!le && magic !== 0xd4c3b2a1 && magic !== 0x4d3cb2a1) throw new Error(`${path}: not a pcap`);
  const u32 = (at: number) => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const linkType = u32(20);
  if (linkType !== 1) throw new Error(`${path}: link type ${linkType}, expected Ethernet`);
  const out: Captured[] = [];
  let at = 24;
  while (at + 16 <= buf.length) {
    const sec = u32(at), frac = u32(at + 4), caplen = u32(at + 8);
    const frame = buf.subarray(at + 16, at + 16 + caplen);
    at += 16 + caplen;
    if (frame.length < 14 + 20 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    const ihl = (ip[0]! & 0x0f) * 4;
    if (ip[9] !== 17 || (ip.readUInt16BE(6) & 0x3fff) !== 0) continue; // UDP, unfragmented
    if (ip.length < ihl + 8) continue;
    const udp = ip.subarray(ihl);
    out.push({
      at: sec * 1000 + (nano ? frac / 1e6 : frac / 1e3),
      src: [...ip.subarray(12, 16)].join("."),
      dst: [...ip.subarray(16, 20)].join("."),
      srcPort: udp.readUInt16BE(0),
      dstPort: udp.readUInt16BE(2),
      ipLength: ip.readUInt16BE(2),
      payload: new Uint8Array(udp.subarray(8, Math.min(udp.length, udp.readUInt16BE(4)))),
    });
  }
  return out;
}

/** A tcpdump capture running in the switch namespace (where the driver runs). */
export class Capture {
  readonly #proc: ChildProcess;
  #stderr = "";
  readonly #closed: Promise<void>;

  private constructor(readonly path: string, proc: ChildProcess) {
    this.#proc = proc;
    proc.stderr!.on("data", (d) => (this.#stderr += String(d)));
    this.#closed = new Promise((resolve) => proc.once("close", () => resolve()));
  }

  /** Starts `tcpdump -i <iface> -w <path> <filter>`; resolves once it listens. */
  static async start(
    iface: string,
    path: string,
    filter: string,
    snaplen = 2048,
  ): Promise<Capture> {
    const proc = spawn("tcpdump", [
      "-i",
      iface,
      "-U",
      "-n",
      "-B",
      "16384",
      "-s",
      String(snaplen),
      "-w",
      path,
      filter,
    ], { stdio: ["ignore", "ignore", "pipe"] });
    const c = new Capture(path, proc);
    const ok = await until(() => c.#stderr.includes("listening on"), 10_000, 50);
    if (!ok) {
      proc.kill("SIGKILL");
      throw new Error(`tcpdump did not start: ${c.#stderr}`);
    }
    return c;
  }

  /** Stops it; returns tcpdump's summary ("N packets captured ..., M dropped by kernel"). */
  async stop(): Promise<string> {
    if (this.#proc.exitCode === null && this.#proc.signalCode === null) {
      this.#proc.kill("SIGINT");
    }
    await this.#closed;
    return this.#stderr.split("\n").filter((l) => /packets/.test(l)).join("; ");
  }
}
