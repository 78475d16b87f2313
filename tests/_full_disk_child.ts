// A member whose data directory is a small tmpfs (mounted by tests/storage_full_disk_test.ts
// in a user and mount namespace of its own), on Deno, Bun or Node. A filler file takes most
// of the space; writes go on until the disk is full; then it checks what a refused write
// does, frees the space, waits for the storage to recover, and restarts on the directory.
// Prints one JSON line with what it saw.
import process from "node:process";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, serve } from "../src/http/mod.ts";
import { fileStorage } from "../src/storage/file.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";

const dir = process.argv[process.argv.length - 1]!;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const filler = join(dir, "filler");
await writeFile(filler, new Uint8Array(160 * 1024));
const data = join(dir, "data");
const errors: string[] = [];
const start = (id: string) =>
  GossipKV.start({
    id,
    transport: new MemoryNetwork().transport(id),
    storage: fileStorage({
      dir: data,
      recoverIntervalMs: 50,
      onError: (e) => errors.push(String(e)),
      onRecover: () => errors.push("recovered"),
    }),
    onError: (e) => errors.push(String(e)),
  });

const kv = await start("a");
const server = await serve(createInspector(kv, { hostname: "127.0.0.1" }), { port: 0 });
const value = "v".repeat(8 * 1024);
const acknowledged: string[] = [];
let failedAt = -1;
let failedStatus = 0;
for (let i = 0; i < 100 && failedAt < 0; i++) {
  // Through the HTTP API: the write during which the disk fills gets 503, not 500.
  const res = await fetch(`${server.url}/usr/k${i}`, {
    method: "PUT",
    body: JSON.stringify(value),
  });
  await res.body?.cancel();
  if (res.status === 204) acknowledged.push(`k${i}`);
  else [failedAt, failedStatus] = [i, res.status];
}
// The storage is failing now: writes are refused, and not applied.
let refusedThrew = false;
try {
  await kv.set("refused", value);
} catch {
  refusedThrew = true;
}
const refusedApplied = kv.has("refused");
const health = await fetch(`${server.url}/healthz`);
const healthz = { status: health.status, body: await health.json() };
const put = await fetch(`${server.url}/usr/refused-http`, { method: "PUT", body: '"x"' });
await put.body?.cancel();
const metrics = await (await fetch(`${server.url}/metrics`)).text();
const storageOk = /gossip_kv_storage_ok\{[^}]*\} (\d)/.exec(metrics)?.[1];
// Space comes back: the storage recovers on its own.
await rm(filler);
for (let t = 0; t < 200 && kv.storageFailure; t++) await sleep(20);
const recovered = kv.storageFailure === null;
const after = await fetch(`${server.url}/healthz`);
await after.body?.cancel();
await kv.set("after", value);
await server.close();
await kv.close();
const again = await start("a");
const keys = again.keys().sort();
await again.close();
console.log(JSON.stringify({
  acknowledged,
  failedAt,
  failedStatus,
  refusedThrew,
  refusedApplied,
  healthz,
  putStatus: put.status,
  storageOk,
  recovered,
  healthAfter: after.status,
  keys,
  errors,
}));
process.exit(0);
