// Slowloris against a member's HTTP API, on one runtime: a member serving its inspector with the
// defaults (tests/_serve_child.ts), 1,000 connections that send half a request head and stop.
// Prints when they were closed, and whether /healthz still answers.
//
//   flock /tmp/gkv-heavy.lock node tests/lab/slowloris.mjs deno|bun|node [connections]
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const child = join(root, "tests", "_serve_child.ts");
const bin = (name) => join(root, "node_modules", ".bin", name);
const commands = {
  deno: `"${bin("deno")}" run --no-check -A "${child}"`,
  bun: `"${bin("bun")}" "${child}"`,
  node: `node --import tsx "${child}"`,
};
const runtime = process.argv[2] ?? "deno";
const n = Number(process.argv[3] ?? 1000);
if (!commands[runtime]) throw new Error(`runtime: deno, bun or node, not ${runtime}`);
const proc = spawn("sh", ["-c", `ulimit -n 8192; exec ${commands[runtime]}`], {
  cwd: root,
  stdio: ["pipe", "pipe", "inherit"],
});
const port = await new Promise((resolve) =>
  createInterface({ input: proc.stdout }).once("line", (l) => resolve(JSON.parse(l).port))
);
const start = Date.now();
const times = [];
for (let i = 0; i < n; i++) {
  const s = connect(port, "127.0.0.1");
  s.on("error", () => {});
  s.resume();
  s.on("connect", () => s.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  s.on("close", () => times.push(Date.now() - start));
}
const deadline = start + 150_000;
while (times.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
const health = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status, () => 0);
times.sort((a, b) => a - b);
console.log(
  `${runtime}: ${times.length} of ${n} closed` +
    (times.length ? `, the first after ${times[0]} ms, the last after ${times.at(-1)} ms` : "") +
    `; /healthz ${health}`,
);
proc.kill("SIGKILL");
process.exit(0);
