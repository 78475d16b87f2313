#!/usr/bin/env node
// `deno doc --lint` on each entry point of deno.json's `exports`, one at a time: JSR scores each
// entry on its own, and a type that one entry re-exports can hide a private type reference of
// another when they are linted together.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const local = join(root, "node_modules", ".bin", "deno");
const deno = existsSync(local) ? local : "deno";
const { exports } = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
const failed = [];
for (const [name, path] of Object.entries(exports)) {
  const r = spawnSync(deno, ["doc", "--lint", path], { cwd: root, stdio: "inherit" });
  console.log(`${r.status === 0 ? "ok  " : "FAIL"} ${name} (${path})`);
  if (r.status !== 0) failed.push(name);
}
if (failed.length) {
  console.log(`deno doc --lint failed for ${failed.join(", ")}`);
  process.exit(1);
}
