// A full disk, for real: the data directory is a 256 KiB tmpfs mounted in a user and mount
// namespace of the test's own (`unshare -rm`, Linux). Once the disk is full, a write is
// refused and not applied, /healthz says not ready, /metrics shows it, and when space
// comes back the storage recovers by itself; after a restart, every acknowledged write is
// there and no refused one is. On Deno, Bun and Node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const child = join(root, "tests", "_full_disk_child.ts");
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const unshare = spawnSync("unshare", ["-rm", "true"]).status === 0;

const commands: Record<string, string[]> = {
  deno: [bin("deno"), "run", "--no-check", "-A", child],
  bun: [bin("bun"), child],
  node: ["node", "--import", "tsx", child],
};

for (const [runtime, command] of Object.entries(commands)) {
  test(
    `${runtime}: a full disk refuses writes cleanly, and the member recovers when space returns`,
    {
      skip: unshare ? false : "needs unshare -rm (Linux user namespaces) to mount a small tmpfs",
    },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "gkv-full-"));
      try {
        const script = 'mount -t tmpfs -o size=256k tmpfs "$0" && exec "$@"';
        const proc = spawn("unshare", ["-rm", "sh", "-c", script, dir, ...command, dir], {
          cwd: root,
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "", err = "";
        proc.stdout.on("data", (d) => out += d);
        proc.stderr.on("data", (d) => err += d);
        const code = await new Promise((resolve) => proc.once("exit", resolve));
        assert.equal(code, 0, err);
        const r = JSON.parse(out.trim().split("\n").pop()!);
        assert.ok(r.failedAt > 0, "some writes fit before the disk filled");
        assert.equal(r.failedStatus, 503, "the write that found the disk full");
        assert.equal(r.refusedThrew, true, "a write while the storage fails is refused");
        assert.equal(r.refusedApplied, false, "and not applied");
        assert.equal(r.healthz.status, 503);
        assert.equal(r.healthz.body.ok, false);
        assert.match(r.healthz.body.storage, /ENOSPC|no space/i);
        assert.equal(r.putStatus, 503);
        assert.equal(r.storageOk, "0");
        assert.equal(r.recovered, true, "recovered once space came back");
        assert.equal(r.healthAfter, 200);
        for (const k of [...r.acknowledged, "after"]) assert.ok(r.keys.includes(k), `${k} kept`);
        assert.ok(!r.keys.includes("refused") && !r.keys.includes("refused-http"));
        assert.ok(r.errors.includes("recovered"));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
}

for (const [runtime, command] of Object.entries(commands)) {
  test(`${runtime}: a read-only file system is reported as such, not as a missing directory`, {
    skip: unshare ? false : "needs unshare -rm (Linux user namespaces) to mount a tmpfs",
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "gkv-ro-"));
    try {
      const script = 'mount -t tmpfs -o size=64k,ro tmpfs "$0" && exec "$@"';
      const args = [...command.slice(0, -1), join(root, "tests", "_storage_open_child.ts")];
      const proc = spawn("unshare", ["-rm", "sh", "-c", script, dir, ...args, `${dir}/data`], {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      proc.stdout.on("data", (d) => out += d);
      await new Promise((resolve) => proc.once("exit", resolve));
      assert.match(out, /EROFS|read-only file system/i);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
