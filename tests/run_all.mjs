#!/usr/bin/env node
// Runs the one test suite on Deno, Bun and Node (through tsx), and fails if any fails.
//
//   node tests/run_all.mjs              all three runtimes, one after the other
//   node tests/run_all.mjs node bun     only those
//
// Every runtime runs every file under tests/ named *_test.ts (tests/lab/ excepted: the
// fault lab needs root and network namespaces and has its own entry point).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";

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

/** The number of skipped tests in a runtime's own summary (null if it printed none). */
function skippedCount(name, output) {
  // deno: "ok | 295 passed | 0 failed | 1 ignored"; bun: " 1 skip"; node: "# skipped 1"
  const text = stripVTControlCharacters(output);
  const pattern = {
    deno: /\|\s*(\d+) ignored/g,
    bun: /^\s*(\d+) skip\s*$/gm,
    node: /^(?:#|ℹ) skipped (\d+)\s*$/gm,
  }[name];
  const all = [...text.matchAll(pattern)];
  if (all.length) return Number(all.at(-1)[1]);
  return /passed|pass\b|# pass/.test(text) ? 0 : null;
}

/** Runs a command, passing its output through while keeping a copy. */
function run(command, args, env) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: ["inherit", "pipe", "pipe"], env });
    let output = "";
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      process.stderr.write(chunk);
      output += chunk;
    });
    child.on("error", (error) => resolve({ status: null, error, output }));
    child.on("close", (status) => resolve({ status, output }));
  });
}

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
  // Tests that skip themselves write why to this file (tests/_skip.ts): Deno and Bun count
  // skipped tests but do not say why.
  const skipsDir = mkdtempSync(join(tmpdir(), "gossip-kv-skips-"));
  const skipsFile = join(skipsDir, "skips.txt");
  const { status, error, output } = await run(runtime[0], runtime[1], {
    ...process.env,
    GOSSIP_KV_TEST_RUNTIME: name,
    GOSSIP_KV_SKIPS_FILE: skipsFile,
  });
  if (error) console.error(`${name}: ${error.message}`);
  const reasons = existsSync(skipsFile)
    ? readFileSync(skipsFile, "utf8").split("\n").filter((l) => l !== "")
    : [];
  rmSync(skipsDir, { recursive: true, force: true });
  results.push({
    name,
    ok: status === 0,
    seconds: (Date.now() - started) / 1000,
    skipped: skippedCount(name, output),
    reasons: [...new Set(reasons)],
  });
}

console.log("\n=== summary ===");
for (const r of results) {
  const skipped = r.skipped === null ? "skipped: unknown" : `${r.skipped} skipped`;
  console.log(
    `${r.ok ? "PASS" : "FAIL"}  ${r.name.padEnd(5)} ${r.seconds.toFixed(1)} s, ${skipped}`,
  );
  for (const reason of r.reasons) console.log(`      skipped: ${reason}`);
  if (r.skipped && r.reasons.length === 0) console.log("      skipped: (no reason recorded)");
}
process.exit(results.every((r) => r.ok) ? 0 : 1);
