// How much of its socket a Deno member reads while 2,000 HTTP clients connect to it: one
// member on a real UDP socket (Deno.listenDatagram), serve() in front of its HTTP API, 100
// writes/s, a flood of ~2,700 datagrams/s from another process, then 2,000 clients that open
// GET /events and never read. Prints, each second, the datagrams the member read, the longest
// timer lag and its memory; `hogs` other processes burn a core each meanwhile (a busy machine).
//
//   flock /tmp/gkv-heavy.lock deno run -A --unstable-net tests/lab/deno_udp_reads.ts [hogs]
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { GossipKV } from "../../src/gossip_kv.ts";
import { createInspector, serve } from "../../src/http/mod.ts";
import { denoUdpTransport } from "../../src/transport/deno_udp.ts";

const hogCount = Number(process.argv[2] ?? 0);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const mb = (n: number) => Math.round(n / 2 ** 20);

const transport = await denoUdpTransport({ hostname: "127.0.0.1", port: 0 });
const kv = await GossipKV.start({ id: "a", transport });
const server = await serve(createInspector(kv, { hostname: "127.0.0.1" }), { port: 0 });
const port = Number(transport.address.split(":").at(-1));

let lag = 0, last = performance.now();
const lagTimer = setInterval(() => {
  const now = performance.now();
  lag = Math.max(lag, now - last - 10);
  last = now;
}, 10);
let writing = true;
const writes = (async () => {
  for (let n = 0; writing; n++) {
    await kv.set(`k${n % 500}`, "v".repeat(1000));
    await sleep(10);
  }
})();
const children = [
  ...Array.from(
    { length: hogCount },
    () => spawn("node", ["-e", "for(;;){}"], { stdio: "ignore" }),
  ),
  spawn("python3", [
    "-c",
    `import socket,time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
d=b'\\x00'*1200
while True:
  for i in range(30): s.sendto(d,('127.0.0.1',${port}))
  time.sleep(0.01)`,
  ], { stdio: "ignore" }),
];
const second = async (label: string) => {
  const before = kv.stats().datagramsIn;
  lag = 0;
  await sleep(1000);
  const m = process.memoryUsage();
  console.log(
    `${label.padEnd(12)} read ${kv.stats().datagramsIn - before} datagrams, longest lag ${
      Math.round(lag)
    } ms, rss ${mb(m.rss)} MB (heap ${mb(m.heapTotal)}, external ${mb(m.external)})`,
  );
};
try {
  for (let i = 0; i < 2; i++) await second("no readers");
  const readers = spawn("node", [
    fileURLToPath(new URL("slow_clients_child.mjs", import.meta.url)),
    String(server.port),
    "/events",
    "2000",
  ], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(readers);
  let open = false;
  readers.stdout!.once("data", () => open = true);
  for (let i = 1; !open && i <= 30; i++) await second(`connecting`);
  for (let i = 0; i < 4; i++) await second("connected");
} finally {
  for (const c of children) c.kill("SIGKILL");
  writing = false;
  await writes;
  clearInterval(lagTimer);
  await server.close();
  await kv.close();
}
process.exit(0);
