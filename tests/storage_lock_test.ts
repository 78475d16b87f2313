// One process per data directory: a second storage on a directory, in this process or in
// another one on any runtime, is refused with an error naming the holder; a lock left by a
// process killed with SIGKILL is taken over.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { fileStorage } from "../src/storage/file.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const child = join(root, "tests", "_lock_child.ts");
const bin = (name: string) => join(root, "node_modules", ".bin", name);

type Runtime = "deno" | "bun" | "node";

function command(runtime: Runtime, dir: string): [string, string[]] {
  switch (runtime) {
    case "deno":
      // Only the permissions the storage needs: no --allow-run, --allow-sys or /proc.
      return [bin("deno"), [
        "run",
        "--no-check",
        `--allow-read=${dir}`,
        `--allow-write=${dir}`,
        child,
      ]];
    case "bun":
      return [bin("bun"), [child]];
    case "node":
      return ["node", ["--import", "tsx", child]];
  }
}

/** Starts a child holding `dir`; resolves with its first line and the process. */
function holder(
  runtime: Runtime,
  dir: string,
): Promise<{ proc: ChildProcess; line: { ready?: number; error?: string } }> {
  const [cmd, args] = command(runtime, dir);
  const proc = spawn(cmd, [...args, dir], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (d) => stderr += d);
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once(
      "line",
      (l) => resolve({ proc, line: JSON.parse(l) }),
    );
    proc.once("exit", (code) => reject(new Error(`${runtime} child exited ${code}: ${stderr}`)));
  });
}

function killed(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once("exit", () => resolve());
    proc.kill("SIGKILL");
  });
}

test("a second storage on a directory in the same process is refused until the first closes", async () => {
  const dir = await mkdtemp(join(tmpdir(), "gkv-lock-"));
  try {
    const first = fileStorage({ dir });
    await first.load();
    await assert.rejects(fileStorage({ dir }).load(), /already in use by another storage/);
    await first.close();
    const again = fileStorage({ dir });
    await again.load();
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

for (const runtime of ["deno", "bun", "node"] as const) {
  test(`a directory held by a ${runtime} process is refused, naming it; once killed, taken over`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "gkv-lock-"));
    try {
      const { proc, line } = await holder(runtime, dir);
      assert.equal(line.ready, proc.pid);
      const lock = JSON.parse(await readFile(join(dir, "LOCK"), "utf8"));
      assert.equal(lock.pid, proc.pid);
      const second = fileStorage({ dir });
      await assert.rejects(
        second.load(),
        (e: Error) => e.message.includes(`in use by process ${proc.pid}`),
      );
      await killed(proc);
      const after = fileStorage({ dir });
      await after.load();
      const now = JSON.parse(await readFile(join(dir, "LOCK"), "utf8"));
      assert.equal(now.pid, process.pid);
      await after.close();
      await assert.rejects(readFile(join(dir, "LOCK")), { code: "ENOENT" }, "released on close");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test("a Deno member with only read/write permissions is refused by a live holder and takes over a killed one", async () => {
  const dir = await mkdtemp(join(tmpdir(), "gkv-lock-"));
  try {
    const first = await holder("deno", dir);
    assert.equal(first.line.ready, first.proc.pid);
    const refused = await holder("deno", dir).catch((e) => e as Error);
    assert.ok(!(refused instanceof Error), String(refused));
    assert.match(
      refused.line.error ?? "",
      new RegExp(`in use by process ${first.proc.pid} \\(Deno`),
    );
    await killed(first.proc);
    const second = await holder("deno", dir);
    assert.equal(second.line.ready, second.proc.pid);
    await killed(second.proc);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
