#!/usr/bin/env node
// Runs the one test suite on Deno, Bun and Node (through tsx), and fails if any fails.
//
//   node tests/run_all.mjs              all three runtimes, one after the other
//   node tests/run_all.mjs node bun     only those
//
// Every runtime runs every file under tests/ named *_test.ts (tests/lab/ excepted: the
// fault lab needs root and network namespaces and has its own entry point).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) => join(root, "node_modules", ".bin", name);

function testFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "lab" && entry.name !== "node_modules") out.push(...testFiles(path));
    } else if (entry.name.endsWith("_test.ts")) {
      out.push(relative(root, path));
    }
  }
  return out.sort();
}

const files = testFiles(join(root, "tests"));
const runtimes = {
  deno: [bin("deno"), ["test", "-A", "--no-check", ...files]],
  bun: [bin("bun"), ["test", "--timeout", "120000", ...files.map((f) => `./${f}`)]],
  node: [bin("tsx"), ["--test", "--test-concurrency=1", ...files]],
};

const wanted = process.argv.slice(2);
const selected = wanted.length ? wanted : Object.keys(runtimes);
const results = [];
for (const name of selected) {
  const runtime = runtimes[name];
  if (!runtime) {
    console.error(
      `Unknown runtime ${JSON.stringify(name)}: choose from ${Object.keys(runtimes).join(", ")}`,
    );
    process.exit(2);
  }
  console.log(`\n=== ${name}: ${files.length} test files ===`);
  const started = Date.now();
  const { status, error } = spawnSync(runtime[0], runtime[1], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, GOSSIP_KV_TEST_RUNTIME: name },
  });
  if (error) console.error(`${name}: ${error.message}`);
  results.push({ name, ok: status === 0, seconds: (Date.now() - started) / 1000 });
}

console.log("\n=== summary ===");
for (const r of results) {
  console.log(`${r.ok ? "PASS" : "FAIL"}  ${r.name.padEnd(5)} ${r.seconds.toFixed(1)} s`);
}
process.exit(results.every((r) => r.ok) ? 0 : 1);
