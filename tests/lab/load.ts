// The fault lab's load client: writes to one member's HTTP API at a target rate, over
// keep-alive connections, for a while, then writes a JSON report. tests/lab/run.ts starts one
// per host, in the host's namespace, each on its own keys, so that the last acknowledged
// write of each key is known: the reference the members must converge to.
//
//   node --import tsx tests/lab/load.ts --url=http://10.214.0.10:8080 --rate=1000
//     --seconds=60 --keys=1000 --prefix=load/m0/ --delete=0.2 --min=100 --max=10000
//     --concurrency=32 --timeout=10000 --out=report.json   (token: environment LAB_TOKEN)
//
// Each operation picks a key of its own range that has no request in flight (so a key's
// requests never overtake each other): a delete with probability --delete, otherwise a set
// to a string of --min to --max bytes (log-uniform: most values are small, mean about 2.1 KB
// for 100 B to 10 KB), "<key>#<seq>:xxxx...". Requests are issued on a schedule of
// --rate per second; when --concurrency requests are in flight, the client falls behind and
// the report says by how much. A request with no answer for --timeout ms (default 10 s) is
// given up: its outcome is unknown ("uncertain").
import { Agent, request } from "node:http";
import { writeFileSync } from "node:fs";
import process from "node:process";

const args = new Map<string, string>();
for (const a of process.argv.slice(2)) {
  const m = /^--([a-z-]+)=(.*)$/.exec(a);
  if (!m) throw new Error(`load.ts: bad argument ${a}`);
  args.set(m[1]!, m[2]!);
}
const arg = (name: string, fallback?: string): string => {
  const v = args.get(name) ?? fallback;
  if (v === undefined) throw new Error(`load.ts: --${name} is required`);
  return v;
};
const url = new URL(arg("url"));
const rate = Number(arg("rate"));
const seconds = Number(arg("seconds"));
const keyCount = Number(arg("keys", "1000"));
const prefix = arg("prefix");
const deleteShare = Number(arg("delete", "0.2"));
const minBytes = Number(arg("min", "100"));
const maxBytes = Number(arg("max", "10000"));
const concurrency = Number(arg("concurrency", "32"));
const timeoutMs = Number(arg("timeout", "10000"));
const out = arg("out");
const token = process.env.LAB_TOKEN ?? "";

const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
const keys = Array.from({ length: keyCount }, (_, i) => `${prefix}${i}`);
const busy = new Set<number>();
/** Per key: the last acknowledged operation, "uncertain" when a request's outcome is unknown. */
const last: ({ seq: number; bytes: number } | null | "uncertain" | undefined)[] = [];
const latencies: number[] = [];
const perSecond: number[] = [];
let issued = 0, ok = 0, failed = 0, uncertain = 0, sets = 0, deletes = 0, bytesSent = 0;
/** Requests of unknown outcome by why: the error's code (ECONNRESET, …), or "timeout". */
const uncertainWhy: Record<string, number> = {};
/** Requests answered with another status than 204, by status. */
const failedWhy: Record<string, number> = {};
let inFlight = 0, stalls = 0, seq = 0;

function valueOf(key: string, n: number, bytes: number): string {
  const head = `${key}#${n}:`;
  return head + "x".repeat(Math.max(0, bytes - head.length));
}

/** A request error's code (ECONNRESET, ECONNREFUSED, …), else its message ("timeout"). */
function reason(e: Error): string {
  return (e as Error & { code?: string }).code ?? e.message;
}

function send(): void {
  let k: number;
  do k = Math.floor(Math.random() * keyCount); while (busy.has(k));
  busy.add(k);
  const key = keys[k]!;
  const n = ++seq;
  const del = Math.random() < deleteShare;
  const bytes = Math.round(minBytes * Math.pow(maxBytes / minBytes, Math.random()));
  const body = del ? undefined : JSON.stringify(valueOf(key, n, bytes));
  const started = performance.now();
  issued++;
  inFlight++;
  if (del) deletes++;
  else {
    sets++;
    bytesSent += body!.length;
  }
  const done = (outcome: "ok" | "failed" | "uncertain", why = "") => {
    inFlight--;
    busy.delete(k);
    const second = Math.floor((Date.now() - startedAt) / 1000);
    if (outcome === "ok") {
      ok++;
      perSecond[second] = (perSecond[second] ?? 0) + 1;
      latencies.push(performance.now() - started);
      if (last[k] !== "uncertain") last[k] = del ? null : { seq: n, bytes };
    } else if (outcome === "failed") {
      failed++;
      failedWhy[why] = (failedWhy[why] ?? 0) + 1;
    } else {
      uncertain++;
      uncertainWhy[why] = (uncertainWhy[why] ?? 0) + 1;
      last[k] = "uncertain";
    }
  };
  const req = request({
    host: url.hostname,
    port: url.port,
    method: del ? "DELETE" : "PUT",
    path: `/usr/${encodeURIComponent(key)}`,
    agent,
    timeout: timeoutMs,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined && {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
      }),
    },
  }, (res) => {
    res.resume();
    res.on("end", () => done(res.statusCode === 204 ? "ok" : "failed", `${res.statusCode}`));
    res.on("error", (e) => done("uncertain", reason(e)));
  });
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.on("error", (e) => done("uncertain", reason(e)));
  req.end(body);
}

const startedAt = Date.now();
const endAt = startedAt + seconds * 1000;
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = Date.now();
    if (now >= endAt) return resolve();
    const due = Math.floor(((now - startedAt) / 1000) * rate);
    while (issued < due) {
      if (inFlight >= concurrency || busy.size >= keyCount) {
        stalls++;
        break;
      }
      send();
    }
    setTimeout(tick, 2);
  };
  tick();
});
const issuedByEnd = issued;
const drainUntil = Date.now() + Math.max(15_000, timeoutMs + 5_000);
while (inFlight > 0 && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 20));
agent.destroy();
for (const k of busy) last[k] = "uncertain"; // still in flight: its outcome is unknown

latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
const final: Record<string, { seq: number; bytes: number } | null | "uncertain"> = {};
for (const [i, v] of last.entries()) if (v !== undefined) final[keys[i]!] = v;
const report = {
  url: url.href,
  target: rate,
  seconds,
  issued: issuedByEnd,
  ok,
  failed,
  uncertain: uncertain + inFlight,
  // Why: each error's code, and "in flight at the end" for those still waiting then.
  uncertainWhy: inFlight > 0 ? { ...uncertainWhy, "in flight at the end": inFlight } : uncertainWhy,
  failedWhy,
  sets,
  deletes,
  valueBytes: bytesSent,
  achieved: Math.round(ok / seconds),
  behind: Math.max(0, Math.round(rate * seconds) - issuedByEnd),
  stalls,
  perSecond: Array.from({ length: Math.ceil(seconds) }, (_, i) => perSecond[i] ?? 0),
  cpuSeconds: Number(((process.cpuUsage().user + process.cpuUsage().system) / 1e6).toFixed(1)),
  latencyMs: {
    p50: Number(pct(0.5)?.toFixed(1) ?? NaN),
    p99: Number(pct(0.99)?.toFixed(1) ?? NaN),
    max: Number(latencies.at(-1)?.toFixed(1) ?? NaN),
  },
  final,
};
writeFileSync(out, JSON.stringify(report));
console.log(
  `load ${prefix}: ${ok} ok of ${issuedByEnd} issued in ${seconds} s (${report.achieved}/s, ` +
    `target ${rate}/s), failed ${failed}, uncertain ${report.uncertain}`,
);
process.exit(0);
