// The core is a pure state machine: no clocks, randomness, timers, I/O or runtime globals.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const core = fileURLToPath(new URL("../src/core/", import.meta.url));

const forbidden: [RegExp, string][] = [
  [/\bDate\.now\s*\(/, "Date.now()"],
  [/\bnew Date\s*\(\s*\)/, "new Date()"],
  [/\bMath\.random\s*\(/, "Math.random()"],
  [/\b(setTimeout|setInterval|setImmediate|queueMicrotask)\s*\(/, "timers"],
  [/\bperformance\./, "performance"],
  [/from\s+["']node:/, "node: imports"],
  [/\b(Deno|Bun|process|globalThis|window)\./, "runtime globals"],
  [/\bfetch\s*\(/, "fetch"],
  [/\bcrypto\./, "crypto"],
  [/\bawait\b|\basync\b/, "async code"],
  [/from\s+["']\.\.\/(transport|http|wire)\//, "imports of adapters"],
  [/\bfrom\s+["'](?!\.\/)/, "imports from outside src/core/"],
  [/\bimport\s*\(/, "dynamic imports"],
];

test("src/core/ uses no clock, randomness, timers, I/O or runtime globals", () => {
  const files = readdirSync(core).filter((f) => f.endsWith(".ts"));
  assert.ok(files.length >= 5);
  for (const file of files) {
    const code = readFileSync(join(core, file), "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/\/\/.*$/gm, "");
    for (const [pattern, what] of forbidden) {
      assert.doesNotMatch(code, pattern, `src/core/${file} uses ${what}`);
    }
  }
});
