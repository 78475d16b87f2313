// The memory bound of long HTTP responses, measured: 2,000 clients open GET /events and
// never read, then eight 1 MiB writes; then 40 clients open GET /state on ~50 MB of data
// and never read, while eight more 1 MiB writes make new versions. Prints the member's
// peak RSS, the longest event-loop stall, and the streams' counters, as JSON.
//
//   flock /tmp/gkv-heavy.lock deno run -A tests/lab/slow_clients.ts [maxStreams]
//   flock /tmp/gkv-heavy.lock bun tests/lab/slow_clients.ts [maxStreams]
//   flock /tmp/gkv-heavy.lock node --import tsx tests/lab/slow_clients.ts [maxStreams]
import { spawn } from "node:child_process";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { GossipKV } from "../../src/gossip_kv.ts";
import { createInspector, serve } from "../../src/http/mod.ts";
import { MemoryNetwork } from "../../src/transport/memory.ts";

const maxStreams = Number(process.argv[2] ?? 512);
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const mb = (n: number) => Math.round(n / 1e5) / 10;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const kv = await GossipKV.start({
  id: "a",
  transport: new MemoryNetwork().transport("a"),
  maxValueBytes: 2 << 20,
});
const app = createInspector(kv, { hostname: "127.0.0.1", maxStreams });
const server = await serve(app, { port: 0 });

let peak = 0;
let stall = 0;
let last = performance.now();
const sampler = setInterval(() => {
  const t = performance.now();
  stall = Math.max(stall, t - last - 10);
  last = t;
  peak = Math.max(peak, process.memoryUsage().rss);
}, 10);

const children: ReturnType<typeof spawn>[] = [];
function clients(path: string, count: number): Promise<number> {
  const child = spawn("node", [
    fileURLToPath(new URL("slow_clients_child.mjs", import.meta.url)),
    String(server.port),
    path,
    String(count),
  ], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  return new Promise((resolve) => {
    createInterface({ input: child.stdout! }).once("line", (l) => resolve(JSON.parse(l).open));
  });
}

async function metrics(): Promise<Record<string, number>> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m =
      /^gossip_kv_(http_stream\w*)\{[^}]*?(?:kind|cause)="(\w+)"[^}]*\} (\S+)$/.exec(line) ??
        /^gossip_kv_(http_streams)\{[^}]*\} (\S+)$/.exec(line);
    if (!m) continue;
    if (m.length === 4) out[`${m[1]}.${m[2]}`] = Number(m[3]);
    else out[m[1]!] = Number(m[2]);
  }
  return out;
}

const value = "x".repeat(1 << 20);
await sleep(500);
const baseline = process.memoryUsage().rss;
peak = 0;
const opened = await clients("/events", 2000);
await sleep(1000);
const eventsOpen = (await metrics())["http_streams"];
const writeMs: number[] = [];
for (let i = 0; i < 8; i++) {
  const t = performance.now();
  await kv.set(`big${i}`, value);
  writeMs.push(Math.round(performance.now() - t));
  await sleep(250);
}
await sleep(2000);
const events = { opened, open: eventsOpen, peakMB: mb(peak), ...(await metrics()) };
for (const c of children.splice(0)) c.kill("SIGKILL");
await sleep(1000);

// /state: ~50 MB of data, 40 readers that never read, new versions meanwhile.
for (let i = 0; i < 48; i++) await kv.set(`data${i}`, value);
await sleep(500);
const before = process.memoryUsage().rss;
peak = 0;
stall = 0;
const stateOpened = await clients("/state", 40);
await sleep(1000);
for (let i = 0; i < 8; i++) {
  await kv.set(`data${i}`, `${value}${i}`);
  await clients("/state", 5);
  await sleep(250);
}
await sleep(2000);
const state = { opened: stateOpened, peakMB: mb(peak), beforeMB: mb(before), ...(await metrics()) };
for (const c of children.splice(0)) c.kill("SIGKILL");

clearInterval(sampler);
console.log(JSON.stringify({
  runtime,
  maxStreams,
  baselineMB: mb(baseline),
  events: { ...events, writeMs },
  state,
  longestStallMs: Math.round(stall),
}));
await server.close();
await kv.close();
process.exit(0);
