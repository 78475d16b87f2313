// A member with file storage, run as a child process by tests/storage_crash_test.ts, on
// Deno, Bun or Node. Talks JSON lines: it prints what happens on stdout, and answers
// "dump" on stdin with its data.
//
//   mode "load":   writes keys <id>/<n> as fast as it can (8 writes in flight), deleting
//                  every fifth after its set() resolved, and prints {"set": key} and
//                  {"del": key} as each one resolves, until it is killed.
//   mode "verify": first prints what is on disk ({"disk": ...}, read by a storage of its
//                  own), then starts the member on the same directory and writes nothing.
import process from "node:process";
import { createInterface } from "node:readline";
import { GossipKV } from "../mod.ts";
import { fileStorage, type FsyncPolicy } from "../src/storage/file.ts";
import { autoTransport } from "../src/transport/auto.ts";

interface Config {
  id: string;
  port: number;
  peers: string[];
  dir: string;
  fsync: FsyncPolicy;
  mode: "load" | "verify";
}

const config = JSON.parse(process.argv[process.argv.length - 1]!) as Config;
const print = (o: unknown) => process.stdout.write(JSON.stringify(o) + "\n");
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

/** Live keys as [key, n], tombstones as [key, null]. */
function describe(
  entries: Iterable<readonly [string, unknown, boolean]>,
): [string, number | null][] {
  const out: [string, number | null][] = [];
  for (const [key, value, deleted] of entries) {
    out.push([key, deleted ? null : (value as { n?: number } | null)?.n ?? -1]);
  }
  return out;
}

const storageOptions = {
  dir: config.dir,
  fsync: config.fsync,
  fsyncIntervalMs: 20,
  compactAfterBytes: 64 * 1024, // small, so that kill -9 also lands during compactions
  onError: (e: unknown) => print({ error: String(e) }),
};

if (config.mode === "verify") {
  const disk = fileStorage(storageOptions);
  const { entries, damage } = await disk.load();
  await disk.close();
  print({
    disk: describe(
      entries.filter((e) => e.section === "usr").map((e) => [e.key, e.value, e.deleted] as const),
    ),
    damage: damage?.message ?? null,
  });
}

const storage = fileStorage(storageOptions);
const kv = await GossipKV.start({
  id: config.id,
  transport: await autoTransport({ hostname: "127.0.0.1", port: config.port }),
  seeds: config.peers,
  gossipIntervalMs: 100,
  probeIntervalMs: 200,
  storage,
  onError: (e) => print({ error: String(e) }),
});
print({ ready: kv.address, runtime });

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() !== "dump") return;
  const all = [...kv.keys()].map((k) => [k, kv.get(k), false] as const);
  print({ dump: describe(all), root: kv.syncStatus().root });
});

if (config.mode === "load") {
  let next = 0;
  const pad = "x".repeat(200);
  const worker = async () => {
    for (;;) {
      const n = next++;
      const key = `${config.id}/${n}`;
      await kv.set(key, { n, pad });
      print({ set: key });
      // Overwritten all the time: garbage in the log, so that compaction runs.
      await kv.set(`${config.id}/counter`, { n, pad });
      if (n % 5 === 0) {
        await kv.delete(key);
        print({ del: key });
      }
    }
  };
  setInterval(() => print({ stats: storage.stats }), 100);
  for (let w = 0; w < 8; w++) {
    worker().catch((e) => print({ error: String(e) }));
  }
}
