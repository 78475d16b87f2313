// Edges of the file storage the other storage tests leave out: the recovery interval's
// bounds, what is reported when no callbacks are given, and a close() whose last fsync
// fails. Faults are injected into the runtime's own FileHandle, restored after each test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Entry } from "../src/core/store.ts";
import { readRecords } from "../src/storage/_log.ts";
import { fileStorage, type FileStorageOptions, LOG_FILE } from "../src/storage/file.ts";

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "gossip-kv-edges-"));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function usr(key: string, wall: number): Entry {
  return { section: "usr", key, value: key, wall, logical: 0, writer: "m", deleted: false };
}

/** Replaces FileHandle#datasync by `fake` while `run` runs. */
async function withDatasync(
  dir: string,
  fake: (original: () => Promise<void>) => Promise<void>,
  run: () => Promise<void>,
): Promise<void> {
  const fh = await open(join(dir, "probe"), "w");
  const proto = Object.getPrototypeOf(fh) as { datasync: () => Promise<void> };
  await fh.close();
  await rm(join(dir, "probe"));
  const original = proto.datasync;
  proto.datasync = function (this: unknown) {
    return fake(() => original.apply(this));
  };
  try {
    await run();
  } finally {
    proto.datasync = original;
  }
}

/** Collects what console.error prints while `run` runs. */
async function consoleErrors(run: () => Promise<void>): Promise<unknown[][]> {
  const printed: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void printed.push(args);
  try {
    await run();
  } finally {
    console.error = original;
  }
  return printed;
}

test("options without a usable directory or recovery interval throw", () => {
  for (const options of [undefined, {}, { dir: 7 }, { dir: "" }]) {
    assert.throws(() => fileStorage(options as unknown as FileStorageOptions), {
      name: "TypeError",
      message: "fileStorage() needs a directory: { dir }",
    });
  }
  for (const recoverIntervalMs of [0, -1, Number.NaN, Infinity]) {
    assert.throws(() => fileStorage({ dir: "x", recoverIntervalMs }), {
      name: "RangeError",
      message: "recoverIntervalMs must be a positive number",
    });
  }
  fileStorage({ dir: "x", recoverIntervalMs: 1 });
});

test("without onError and onRecover, a failure and the recovery go to console.error", async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir, recoverIntervalMs: 10 });
    await s.load();
    const eio = Object.assign(new Error("EIO: injected"), { code: "EIO" });
    let failing = true;
    const printed = await consoleErrors(() =>
      withDatasync(dir, (original) => failing ? Promise.reject(eio) : original(), async () => {
        s.append([usr("a", 1)]);
        await assert.rejects(s.sync(), eio);
        failing = false;
        while (s.failure) await new Promise((r) => setTimeout(r, 5));
      })
    );
    assert.deepEqual(printed, [
      ["gossip-kv storage:", eio],
      [`gossip-kv storage: recovered; ${join(dir, LOG_FILE)} rewritten from memory`],
    ]);
    await s.close();
  });
});

test("a close() whose last fsync fails rejects with that error, reported once", async () => {
  await withDir(async (dir) => {
    const errors: unknown[] = [];
    // "never": the records reach the file at once and are fsynced only on close.
    const s = fileStorage({
      dir,
      fsync: "never",
      recoverIntervalMs: 60_000,
      onError: (e) => void errors.push(e),
    });
    await s.load();
    s.append([usr("a", 1), usr("b", 2)]);
    await s.sync();
    const eio = Object.assign(new Error("EIO: injected"), { code: "EIO" });
    await withDatasync(dir, () => Promise.reject(eio), async () => {
      await assert.rejects(s.close(), eio);
    });
    assert.deepEqual(errors, [eio]);
    assert.equal(s.failure, eio);
    await assert.rejects(s.close(), eio, "the same outcome again");
    // The records were written all the same (only their fsync failed), and the lock is free.
    const read = readRecords(new Uint8Array(await readFile(join(dir, LOG_FILE))));
    assert.deepEqual(read.records.map((r) => r.entry.key), ["a", "b"]);
    const again = fileStorage({ dir });
    assert.equal((await again.load()).entries.length, 2);
    await again.close();
  });
});

test("a compaction of more live data than one write chunk (1 MiB) writes every record once", async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir, compactAfterBytes: 1, onError: (e) => assert.fail(String(e)) });
    await s.load();
    const big = (key: string, wall: number): Entry => ({
      ...usr(key, wall),
      value: key.repeat(30_000),
    });
    // 40 values of 30 kB: 1.2 MB live, then each rewritten so that the log passes twice that.
    for (let round = 1; round <= 3; round++) {
      for (let i = 0; i < 40; i++) s.append([big(`k${String(i).padStart(2, "0")}`, round)]);
      await s.sync();
    }
    // The compaction follows the last write, in the background.
    for (let i = 0; i < 1_000 && s.stats.compactions === 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await s.close();
    assert.equal(s.stats.compactions, 1);
    assert.ok(s.stats.liveBytes > 1 << 20, "more than one chunk of live data");
    const bytes = new Uint8Array(await readFile(join(dir, LOG_FILE)));
    assert.equal(bytes.length, s.stats.fileBytes);
    const read = readRecords(bytes);
    assert.equal(read.damage, null);
    assert.deepEqual(read.skipped, []);
    assert.equal(read.records.length, 40, "one record per key: the compaction came last");
    assert.ok(
      read.records.every((r) => r.entry.wall === 3 && r.entry.value === r.entry.key.repeat(30_000)),
    );
  });
});
