// The fsync of the storage's directory (after a log is created or renamed into it) where the
// directory cannot be opened for reading: a user who may write but not read it gets EACCES
// (and Windows EISDIR or EPERM), which leaves the log as durable as the system allows;
// any other failure stops the load. The failure is injected into node:fs/promises' open(),
// which only Node lets a test replace for the modules importing it
// (module.syncBuiltinESMExports()): elsewhere the test is skipped.
import { test } from "node:test";
import assert from "node:assert/strict";
import fsp from "node:fs/promises";
import * as nodeModule from "node:module";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileStorage, LOG_FILE } from "../src/storage/file.ts";

type Open = typeof fsp.open;

/** Runs `run` while opening `dir` itself fails with `code`; how many opens of it failed. */
async function withDirOpenFailing(dir: string, code: string, run: () => Promise<void>) {
  const original = fsp.open;
  const sync = (nodeModule as { syncBuiltinESMExports?: () => void }).syncBuiltinESMExports;
  let failed = 0;
  const fake: Open = (path, ...rest) => {
    if (String(path) === dir) {
      failed++;
      return Promise.reject(Object.assign(new Error(`${code}: injected, open '${dir}'`), { code }));
    }
    return original(path, ...rest);
  };
  try {
    (fsp as { open: Open }).open = fake;
    sync?.();
  } catch {
    return 0; // a runtime whose module is frozen
  }
  try {
    await run();
  } finally {
    (fsp as { open: Open }).open = original;
    sync?.();
  }
  return failed;
}

for (const code of ["EACCES", "EPERM", "EISDIR"]) {
  test(`a directory that cannot be opened for its fsync (${code}): the storage loads and writes`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "gossip-kv-dirfsync-"));
    try {
      const failed = await withDirOpenFailing(dir, code, async () => {
        const s = fileStorage({ dir, fsync: "always" });
        await s.load(); // creates the log: a rename into the directory, then its fsync
        s.append([{
          section: "usr",
          key: "k",
          value: "v",
          wall: 1,
          logical: 0,
          writer: "w",
          deleted: false,
        }]);
        await s.sync();
        await s.close();
      });
      if (failed === 0) return t.skip("this runtime does not let a test replace open()");
      assert.ok((await readFile(join(dir, LOG_FILE))).length > 0);
      const again = fileStorage({ dir });
      const loaded = await again.load();
      assert.deepEqual(loaded.entries.map((e) => e.key), ["k"]);
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test("a directory whose open for its fsync fails otherwise (EIO): the load fails with that error", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "gossip-kv-dirfsync-"));
  try {
    let error: unknown;
    const failed = await withDirOpenFailing(dir, "EIO", async () => {
      const s = fileStorage({ dir });
      error = await s.load().then(() => undefined, (e) => e);
      // Where the failure cannot be injected (Bun), the load succeeds: close what it opened, or
      // its file handle is collected later, in another test of the same process, as an error.
      await s.close().catch(() => {});
    });
    if (failed === 0) return t.skip("this runtime does not let a test replace open()");
    assert.equal((error as { code?: string }).code, "EIO");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
