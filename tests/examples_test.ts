// The examples run as the README says, and say what happened.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

test("examples/demo.ts reports a delete as a delete, and a write with its value", () => {
  // README: npx deno run examples/demo.ts
  const r = spawnSync(join(ROOT, "node_modules", ".bin", "deno"), ["run", "examples/demo.ts"], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  const lines = r.stdout.split("\n").map((l) => l.trim());
  assert.ok(lines.includes("eve deleted greeting"), r.stdout);
  assert.ok(lines.some((l) => /^eve learned \w+ = \S+ from \w+$/.test(l)), r.stdout);
  assert.doesNotMatch(r.stdout, /= undefined/);
  assert.match(r.stdout, /healed: every member holds the same data, last writer wins:/);
});
