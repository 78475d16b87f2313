// A member whose process runs out of file descriptors (ulimit -n 256, 400 connections)
// keeps running, and serves again once the connections are gone, on Deno, Bun and Node. On
// Deno, serve() listens again after the accept loop failed, and has set up Deno's signal
// handling beforehand: opened lazily, while out of descriptors, it panicked the runtime
// (Deno 2.9.6, ext/signals, "Too many open files").
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { sleep } from "./_http.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const child = join(root, "tests", "_serve_child.ts");
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const commands: Record<string, string> = {
  deno: `exec "${bin("deno")}" run --no-check -A "${child}"`,
  bun: `exec "${bin("bun")}" "${child}"`,
  node: `exec node --import tsx "${child}"`,
};

for (const [runtime, command] of Object.entries(commands)) {
  test(`${runtime}: a member out of file descriptors survives, and serves again after`, {
    skip: process.platform === "win32" ? "needs ulimit" : false,
  }, async () => {
    const proc = spawn("sh", ["-c", `ulimit -n 256 && ${command}`], {
      cwd: root,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let exited: number | null = null;
    proc.once("exit", (code) => exited = code ?? -1);
    let stderr = "";
    proc.stderr.on("data", (d) => stderr += d);
    const port = await new Promise<number>((resolve) =>
      createInterface({ input: proc.stdout }).once("line", (l) => resolve(JSON.parse(l).port))
    );
    const sockets: Socket[] = [];
    for (let i = 0; i < 400; i++) {
      const s = connect(port, "127.0.0.1");
      s.on("error", () => {});
      sockets.push(s);
    }
    await sleep(1500);
    for (const s of sockets) s.destroy();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      await sleep(100);
      status = await fetch(`http://127.0.0.1:${port}/healthz`).then(async (r) => {
        await r.body?.cancel();
        return r.status;
      }, () => 0);
    }
    assert.equal(exited, null, `the member is still running: ${stderr}`);
    assert.equal(status, 200, "and answers again");
    proc.kill("SIGKILL");
  });
}
