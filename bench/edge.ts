// The edge replica's figures: `deno run -A bench/edge.ts` (also `bun bench/edge.ts`,
// `npx tsx bench/edge.ts`). Prints the section and, with --write, puts it into
// docs/benchmarks.md between its markers (bench/main.ts keeps it when it rewrites the file).
//
// A member (GossipKV on a memory network) serves its inspector over HTTP on loopback; a
// replica syncs with it through the runtime's fetch. Counts are exact; the latency is a ratio
// of two medians measured in the same run, interleaved.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { gzipSync } from "node:zlib";
import { edgeReplica, type EdgeSyncResult } from "../src/edge/mod.ts";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, serve } from "../src/http/mod.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { now, ROOT, runtimeLabel } from "./env.ts";
import { EDGE, writeSection } from "./sections.ts";

const TOKEN = "bench";
const KEYS = 10_000;
const READS = 300;

interface SyncRow {
  readonly what: string;
  readonly r: EdgeSyncResult;
}

function fmtBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1000).toFixed(n < 1e4 ? 2 : 1)} kB`;
  return `${(n / 1e6).toFixed(2)} MB`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function bundleSize(entry: string): { min: number; gz: number } {
  const dir = mkdtempSync(join(tmpdir(), "gkv-edge-bundle-"));
  try {
    const out = join(dir, "out.js");
    const r = spawnSync(join(ROOT, "node_modules", ".bin", "esbuild"), [
      join(ROOT, entry),
      "--bundle",
      "--format=esm",
      "--platform=neutral",
      "--conditions=workerd,worker,browser",
      "--main-fields=module,main",
      "--minify",
      `--outfile=${out}`,
      "--log-level=error",
    ], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`esbuild failed: ${r.stderr}`);
    return { min: statSync(out).size, gz: gzipSync(readFileSync(out), { level: 9 }).length };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(): Promise<{ rows: SyncRow[]; plain: number; synced: number }> {
  const kv = await GossipKV.start({ id: "up", transport: new MemoryNetwork().transport("up") });
  const server = await serve(createInspector(kv, { token: TOKEN, maxBodyBytes: 8 << 20 }), {
    hostname: "127.0.0.1",
  });
  try {
    for (let i = 0; i < KEYS; i++) await kv.set(`key/${i}`, { n: i, text: `value ${i}` });
    const replica = edgeReplica({ upstream: server.url, token: TOKEN, maxStalenessMs: 60_000 });
    const rows: SyncRow[] = [];
    rows.push({
      what: `from nothing (${KEYS.toLocaleString("en")} keys)`,
      r: await replica.sync(),
    });
    rows.push({ what: "in sync", r: await replica.sync() });
    for (const d of [1, 100]) {
      for (let i = 0; i < d; i++) {
        await kv.set(`key/${(i * 7919 + d) % KEYS}`, { n: -i, text: "changed" });
      }
      rows.push({ what: `${d} changed on the member`, r: await replica.sync() });
    }
    for (const d of [1, 100]) {
      const write = edgeReplica({
        upstream: server.url,
        token: TOKEN,
        maxStalenessMs: 60_000,
        id: `w${d}`,
      });
      await write.sync();
      for (let i = 0; i < d; i++) {
        await write.fetch(
          new Request(`http://edge/usr/edge${d}-${i}`, {
            method: "PUT",
            headers: { authorization: `Bearer ${TOKEN}` },
            body: JSON.stringify(i),
          }),
        );
      }
      // Each write was pushed as it was made; what one write costs is its own sync.
      const last = write.stats().lastSync!;
      if (d === 1) rows.push({ what: "1 write at the replica, pushed", r: last });
    }
    // Latency: the replica served over HTTP, one replica that must sync before each read
    // (maxStalenessMs 0) and one that need not, read in turn.
    const plainReplica = edgeReplica({ upstream: server.url, token: TOKEN, maxStalenessMs: 1e9 });
    const syncReplica = edgeReplica({ upstream: server.url, token: TOKEN, maxStalenessMs: 0 });
    const plainServer = await serve({ fetch: (r) => plainReplica.fetch(r) }, {
      hostname: "127.0.0.1",
    });
    const syncServer = await serve({ fetch: (r) => syncReplica.fetch(r) }, {
      hostname: "127.0.0.1",
    });
    const plain: number[] = [];
    const synced: number[] = [];
    const read = async (url: string, into: number[]) => {
      const t = now();
      const res = await fetch(`${url}/usr/key%2F42`);
      await res.arrayBuffer();
      into.push(now() - t);
    };
    await read(plainServer.url, []); // the first read of each syncs from nothing
    await read(syncServer.url, []);
    for (let i = 0; i < READS; i++) {
      await read(plainServer.url, plain);
      await read(syncServer.url, synced);
    }
    await plainServer.close();
    await syncServer.close();
    return { rows, plain: median(plain), synced: median(synced) };
  } finally {
    await server.close();
    await kv.close();
  }
}

/** The markdown section, between its markers. */
export async function edgeSection(): Promise<string> {
  const { rows, plain, synced } = await measure();
  const edge = bundleSize("src/edge/mod.ts");
  const core = bundleSize("mod.ts");
  const lines = [
    EDGE.begin,
    "## 7. Edge replica",
    "",
    `Generated by \`bench/edge.ts\` on ${
      new Date().toISOString().slice(0, 10)
    }, running on ${runtimeLabel()}. ` +
    "A member (one `GossipKV`) serves its inspector over HTTP on loopback; an edge replica " +
    "(`./edge`) syncs with it through `POST /edge/sync` with the runtime's own fetch. " +
    "Bytes are request and response bodies (each request adds its HTTP headers, a few hundred " +
    `bytes); the member holds ${KEYS.toLocaleString("en")} keys.`,
    "",
    "| sync | round trips | bytes sent | bytes received | entries received | entries sent |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(({ what, r }) =>
      `| ${what} | ${r.roundTrips} | ${fmtBytes(r.bytesSent)} | ${fmtBytes(r.bytesReceived)} | ` +
      `${r.entriesReceived.toLocaleString("en")} | ${r.entriesSent.toLocaleString("en")} |`
    ),
    "",
    `A read that must sync first (\`maxStalenessMs: 0\`, the copy in sync: one round trip to ` +
    `the member) against one that need not, each through the replica served over HTTP, ` +
    `${READS} of each, in turn: median ×${(synced / plain).toFixed(2)} the latency.`,
    "",
    "Bundle for workerd (esbuild, `--platform=neutral --conditions=workerd`, minified; gzip -9):",
    "",
    "| entry | minified | gzipped |",
    "| --- | ---: | ---: |",
    `| \`./edge\` | ${fmtBytes(edge.min)} | ${fmtBytes(edge.gz)} |`,
    `| \`mod.ts\` (the core and the in-memory network) | ${fmtBytes(core.min)} | ${
      fmtBytes(core.gz)
    } |`,
    EDGE.end,
  ];
  return lines.join("\n");
}

if (import.meta.main ?? process.argv[1]?.endsWith("edge.ts")) {
  const section = await edgeSection();
  console.log(section);
  if (process.argv.includes("--write")) {
    console.log(`\nWrote the edge section of ${writeSection(EDGE, section)}`);
  }
}
