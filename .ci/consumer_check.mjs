#!/usr/bin/env node
// Installs and runs the package the way a user of it would, on each runtime: a scratch project
// outside this repository (so none of its package.json, overrides, lockfile or node_modules
// apply) holding only the files `deno publish --dry-run` publishes, whose npm imports are
// written as the registry writes them, then a small program that uses every entry point.
//
//   node .ci/consumer_check.mjs              deno, bun and node
//   node .ci/consumer_check.mjs deno         only those named
//
// - Deno: the package's bare imports become `npm:name@version` (what JSR publishes), resolved
//   by Deno itself from the npm registry with no package.json and no overrides.
// - Bun and Node: a package.json with the package's dependencies and nothing else, installed
//   with `bun install` / `npm install`; Node runs the TypeScript through tsx (JSR's npm
//   layer ships it compiled to JavaScript).
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { publishedFiles } from "./check_repo.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);

/** What the consumer runs: every entry point, a replicated write, and the HTTP app. */
const PROGRAM = `
import { GossipKV, MemoryNetwork } from "./pkg/mod.ts";
import { createInspector } from "./pkg/src/http/mod.ts";
import { fileStorage } from "./pkg/src/storage/file.ts";
import { HttpTransport } from "./pkg/src/transport/http.ts";
import { denoUdpTransport } from "./pkg/src/transport/deno_udp.ts";
import { bunUdpTransport } from "./pkg/src/transport/bun_udp.ts";
import { nodeUdpTransport } from "./pkg/src/transport/node_udp.ts";

for (const f of [fileStorage, HttpTransport, denoUdpTransport, bunUdpTransport, nodeUdpTransport]) {
  if (typeof f !== "function") throw new Error("an entry point exports nothing usable");
}
const net = new MemoryNetwork();
const a = await GossipKV.start({ id: "a", transport: net.transport("a"), gossipIntervalMs: 50 });
const b = await GossipKV.start({ id: "b", transport: net.transport("b"), seeds: ["a"], gossipIntervalMs: 50 });
await a.set("k", { bytes: new Uint8Array([1, 2, 3]), when: new Date(0), map: new Map([[1, "one"]]) });
const deadline = Date.now() + 10_000;
while (b.get("k") === undefined) {
  if (Date.now() > deadline) throw new Error("the write did not reach the other member");
  await new Promise((r) => setTimeout(r, 20));
}
const got = b.get("k");
if (!(got.map instanceof Map) || got.bytes[2] !== 3) throw new Error("the value changed on the way");
const response = await createInspector(b).fetch(new Request("http://localhost/usr/k"));
if (response.status !== 200) throw new Error("GET /usr/k answered " + response.status);
await Promise.all([a.close(), b.close()]);
console.log("consumer ok");
`;

/** This package's own name: its JSDoc examples import it, and are left alone. */
const SELF = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).name;
const isSelf = (spec) => spec === SELF || spec.startsWith(`${SELF}/`);

/** `npm:name@version[/subpath]` for a bare import, from the package's dependencies. */
function npmSpecifier(specifier, dependencies) {
  const parts = specifier.split("/");
  const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
  const version = dependencies[name];
  if (!version) throw new Error(`${specifier}: not a dependency in package.json`);
  return `npm:${name}@${version}${specifier.slice(name.length)}`;
}

/** Copies the published files into `dir/pkg`; `rewrite` maps each bare import. */
function copyPackage(dir, files, rewrite) {
  for (const file of files) {
    const target = join(dir, "pkg", file);
    mkdirSync(dirname(target), { recursive: true });
    if (!/\.(ts|js|mjs)$/.test(file)) {
      cpSync(join(root, file), target);
      continue;
    }
    const code = readFileSync(join(root, file), "utf8").replace(
      /(\bfrom\s+|\bimport\s*\(\s*)(["'])([^"'./][^"']*)\2/g,
      (all, lead, quote, spec) =>
        spec.startsWith("node:") || spec.startsWith("npm:") || spec.startsWith("jsr:") ||
          isSelf(spec)
          ? all
          : `${lead}${quote}${rewrite(spec)}${quote}`,
    );
    writeFileSync(target, code);
  }
}

/** Runs a command in `dir`, printing its output; returns whether it succeeded. */
function run(dir, command, args, env = {}) {
  console.log(`$ ${[command, ...args].join(" ")}`);
  const r = spawnSync(command, args, {
    cwd: dir,
    encoding: "utf8",
    timeout: 600_000,
    env: { ...process.env, ...env },
  });
  process.stdout.write(r.stdout ?? "");
  process.stdout.write(r.stderr ?? "");
  if (r.error) console.log(r.error.message);
  return r.status === 0;
}

function consumer(runtime, files, dependencies) {
  const dir = mkdtempSync(join(tmpdir(), `gossip-kv-consumer-${runtime}-`));
  try {
    writeFileSync(join(dir, "main.ts"), PROGRAM);
    if (runtime === "deno") {
      copyPackage(dir, files, (spec) => npmSpecifier(spec, dependencies));
      writeFileSync(join(dir, "deno.json"), "{}\n");
      return run(dir, bin("deno"), ["run", "-A", "main.ts"], { DENO_DIR: join(dir, ".deno") });
    }
    copyPackage(dir, files, (spec) => spec);
    const used = new Set();
    for (const file of files.filter((f) => /\.ts$/.test(f))) {
      for (
        const m of readFileSync(join(root, file), "utf8").matchAll(
          /\bfrom\s+["']([^"'./][^"']*)["']|\bimport\s*\(\s*["']([^"'./][^"']*)["']/g,
        )
      ) {
        const spec = m[1] ?? m[2];
        if (spec.startsWith("node:") || isSelf(spec)) continue;
        used.add(npmSpecifier(spec, dependencies).slice(4).replace(/@[^@]*$/, ""));
      }
    }
    const deps = Object.fromEntries([...used].sort().map((name) => [name, dependencies[name]]));
    writeFileSync(
      join(dir, "package.json"),
      JSON.stringify(
        { name: "consumer", private: true, type: "module", dependencies: deps },
        null,
        2,
      ),
    );
    console.log(`dependencies: ${JSON.stringify(deps)}`);
    if (runtime === "bun") {
      return run(dir, bin("bun"), ["install"], {
        BUN_INSTALL_CACHE_DIR: join(dir, ".bun-cache"),
      }) &&
        run(dir, bin("bun"), ["main.ts"]);
    }
    return run(dir, "npm", ["install", "--no-audit", "--no-fund"]) &&
      run(dir, "node", ["--import", pathToTsx(), "main.ts"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** tsx's loader from this repository: the consumer's TypeScript, as JSR's npm layer compiles it. */
function pathToTsx() {
  const loader = join(root, "node_modules", "tsx", "dist", "loader.mjs");
  if (!existsSync(loader)) throw new Error(`${loader} is missing: run npm ci`);
  return new URL(`file://${loader}`).href;
}

const wanted = process.argv.slice(2);
const runtimes = wanted.length ? wanted : ["deno", "bun", "node"];
const { dependencies } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const files = publishedFiles(root, bin("deno"));
const results = runtimes.map((runtime) => {
  console.log(`\n=== consumer on ${runtime} ===`);
  return [runtime, consumer(runtime, files, dependencies)];
});
console.log("\n=== summary ===");
for (const [runtime, ok] of results) console.log(`${ok ? "PASS" : "FAIL"}  ${runtime}`);
if (!results.every(([, ok]) => ok)) process.exit(1);
