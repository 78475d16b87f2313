// CPU time to seal and open one datagram, with each cipher a keyring can use: node:crypto
// (synchronous; Node, Deno and Bun have it) and WebCrypto (a promise per call):
//
//   deno run -A bench/seal.ts [--bytes 200] [--count 20000] [--trials 3]
//
// Each trial seals `count` datagrams of `bytes` bytes and opens them, one at a time (as a
// member does when nothing else is waiting); CPU is the process's user + system time
// (`process.cpuUsage`, every thread), the table the median of the trials per datagram.
import { generateKey, Keyring } from "../src/wire/crypto.ts";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const BYTES = arg("bytes", 200), COUNT = arg("count", 20_000), TRIALS = arg("trials", 3);
const key = generateKey();
const datagram = Uint8Array.from({ length: BYTES }, (_, i) => i === 3 ? 0 : (i * 7) & 0xff);
datagram.set([0x47, 0x4b, 1, 0]);

async function trial(ring: Keyring): Promise<number> {
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < COUNT; i++) {
    const sealed = ring.sync
      ? ring.sealSync(datagram, "default", 1_700_000_000_000)
      : await ring.seal(datagram, "default", 1_700_000_000_000);
    const opened = ring.sync
      ? ring.openSync(sealed, "default")
      : await ring.open(sealed, "default");
    if (opened.status !== "opened") throw new Error("a datagram did not open");
  }
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / COUNT;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const rings = {
  "node:crypto": await Keyring.create([key]),
  WebCrypto: await Keyring.create([key], { sync: false }),
};
const results: Record<string, number[]> = { "node:crypto": [], WebCrypto: [] };
for (let t = 0; t < TRIALS; t++) {
  for (const [name, ring] of Object.entries(rings)) results[name]!.push(await trial(ring));
}
if (!rings["node:crypto"].sync) console.log("node:crypto is not available here: WebCrypto twice");
const fast = median(results["node:crypto"]!), web = median(results.WebCrypto!);
console.log(
  `seal + open of a ${BYTES}-byte datagram, CPU, median of ${TRIALS}: ` +
    `node:crypto ${fast.toFixed(1)} µs, WebCrypto ${web.toFixed(1)} µs (×${
      (fast / web).toFixed(2)
    })`,
);
