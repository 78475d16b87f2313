// The file storage when the file system fails, in this process: faults are injected into
// the runtime's own FileHandle (its write, datasync and sync methods fail with an errno
// error, or write one byte at a time), and a directory stands where the compaction file
// goes. Each test restores the methods it replaced.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Entry } from "../src/core/store.ts";
import { encodeRecord, readRecords } from "../src/storage/_log.ts";
import { fileStorage, type FileStorageOptions, LOG_FILE } from "../src/storage/file.ts";

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "gossip-kv-faults-"));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function usr(key: string, wall: number, value: unknown = key): Entry {
  return { section: "usr", key, value, wall, logical: 0, writer: "m", deleted: false };
}

type Method = "write" | "datasync" | "sync";

/** The prototype of the runtime's FileHandle (the one node:fs/promises hands out). */
async function fileHandleProto(dir: string): Promise<Record<Method, unknown>> {
  const fh = await open(join(dir, "probe"), "w");
  const proto = Object.getPrototypeOf(fh);
  await fh.close();
  await rm(join(dir, "probe"));
  return proto;
}

/**
 * Replaces `method` of every FileHandle by `fake` (which may call the original) while
 * `run` runs.
 */
async function withFault(
  dir: string,
  method: Method,
  fake: (original: (...args: unknown[]) => Promise<unknown>, ...args: unknown[]) => unknown,
  run: () => Promise<void>,
): Promise<void> {
  const proto = await fileHandleProto(dir);
  const original = proto[method] as (...args: unknown[]) => Promise<unknown>;
  proto[method] = function (this: unknown, ...args: unknown[]) {
    return fake((...a) => original.apply(this, a), ...args);
  };
  try {
    await run();
  } finally {
    proto[method] = original;
  }
}

const errno = (code: string) => Object.assign(new Error(`${code}: injected`), { code });

async function logKeys(dir: string): Promise<string[]> {
  const read = readRecords(await readFile(join(dir, LOG_FILE)));
  return read.records.map((r) => r.entry.key);
}

function open_(dir: string, options: Partial<FileStorageOptions> = {}) {
  const errors: unknown[] = [];
  let recovered = 0;
  const s = fileStorage({
    dir,
    onError: (e) => void errors.push(e),
    onRecover: () => void recovered++,
    ...options,
  });
  return { s, errors, recovered: () => recovered };
}

test("a log written one byte per call is whole, each byte at its place", async () => {
  await withDir(async (dir) => {
    const { s } = open_(dir);
    await s.load();
    await withFault(
      dir,
      "write",
      (original, data, offset, length, position) =>
        original(data, offset, Math.min(1, length as number), position),
      async () => {
        s.append([usr("a", 1, "x".repeat(40)), usr("b", 2)]);
        await s.sync();
      },
    );
    await s.close();
    assert.deepEqual(await logKeys(dir), ["a", "b"]);
    const again = fileStorage({ dir });
    assert.deepEqual((await again.load()).entries.map((e) => e.value), ["x".repeat(40), "b"]);
    await again.close();
  });
});

test("a write that makes no progress fails the storage with a clear error", async () => {
  await withDir(async (dir) => {
    const { s, errors } = open_(dir, { recoverIntervalMs: 60_000 });
    await s.load();
    await withFault(dir, "write", () => Promise.resolve({ bytesWritten: 0 }), async () => {
      s.append([usr("a", 1)]);
      await assert.rejects(s.sync(), { message: "Write to the log made no progress" });
    });
    assert.equal(errors.length, 1);
    assert.equal(s.failure?.message, "Write to the log made no progress");
    await assert.rejects(s.close(), { message: "Write to the log made no progress" });
  });
});

test("a failed fsync stops the storage: waiters rejected, later syncs refused, reported once", async () => {
  await withDir(async (dir) => {
    const { s, errors } = open_(dir, { recoverIntervalMs: 60_000 });
    await s.load();
    s.append([usr("a", 1)]);
    await s.sync();
    const eio = errno("EIO");
    await withFault(dir, "datasync", () => Promise.reject(eio), async () => {
      s.append([usr("b", 2)]);
      const first = s.sync();
      const second = s.sync();
      await assert.rejects(first, eio);
      await assert.rejects(second, eio);
    });
    assert.equal(s.failure, eio);
    await assert.rejects(s.sync(), eio, "refused at once while failing");
    s.append([usr("c", 3)]); // kept in memory for the recovery, not queued
    assert.deepEqual(errors, [eio], "reported once");
    assert.equal(s.stats.entries, 3);
    await assert.rejects(s.close(), eio);
  });
});

test("a failure that is not an Error is reported as one", async () => {
  await withDir(async (dir) => {
    const { s } = open_(dir, { recoverIntervalMs: 60_000 });
    await s.load();
    await withFault(dir, "datasync", () => Promise.reject("disk on fire"), async () => {
      s.append([usr("a", 1)]);
      await assert.rejects(s.sync());
    });
    assert.ok(s.failure instanceof Error);
    assert.equal(s.failure.message, "disk on fire");
    await assert.rejects(s.close());
  });
});

test("a failing storage recovers by rewriting the log from memory once the disk works", async () => {
  await withDir(async (dir) => {
    let recovered!: () => void;
    const done = new Promise<void>((r) => recovered = r);
    const errors: unknown[] = [];
    const s = fileStorage({
      dir,
      recoverIntervalMs: 20,
      onError: (e) => void errors.push(e),
      onRecover: () => recovered(),
    });
    await s.load();
    s.append([usr("a", 1)]);
    await s.sync();
    let failing = true;
    await withFault(
      dir,
      "datasync",
      (original) => (failing ? Promise.reject(errno("ENOSPC")) : original()),
      async () => {
        s.append([usr("b", 2)]);
        await assert.rejects(s.sync(), { code: "ENOSPC" });
        s.append([usr("c", 3), usr("a", 4, "a2")]);
        failing = false;
        await done;
      },
    );
    assert.equal(s.failure, undefined);
    assert.equal(errors.length, 1);
    await s.sync();
    s.append([usr("d", 5)]);
    await s.sync();
    await s.close();
    assert.deepEqual(await logKeys(dir), ["a", "b", "c", "d"], "every entry, one version each");
    const again = fileStorage({ dir });
    const { entries } = await again.load();
    assert.deepEqual(entries.map((e) => [e.key, e.value]), [
      ["a", "a2"],
      ["b", "b"],
      ["c", "c"],
      ["d", "d"],
    ]);
    await again.close();
  });
});

test("a recovery that fails too is tried again later", async () => {
  await withDir(async (dir) => {
    let attempts = 0;
    let recovered!: () => void;
    const done = new Promise<void>((r) => recovered = r);
    const s = fileStorage({
      dir,
      recoverIntervalMs: 10,
      onError: () => {},
      onRecover: () => recovered(),
    });
    await s.load();
    await withFault(dir, "datasync", (original) => {
      attempts++;
      return attempts <= 3 ? Promise.reject(errno("EIO")) : original();
    }, async () => {
      s.append([usr("a", 1)]);
      await assert.rejects(s.sync());
      await done;
    });
    assert.ok(attempts >= 4, "the first recoveries failed, a later one worked");
    assert.equal(s.failure, undefined);
    await s.close();
    assert.deepEqual(await logKeys(dir), ["a"]);
  });
});

test("a compaction that cannot write its file keeps the log, says why, and waits to grow again", async () => {
  await withDir(async (dir) => {
    const errors: unknown[] = [];
    const sizes: number[] = [];
    const s = fileStorage({
      dir,
      compactAfterBytes: 200,
      onError: (e) => {
        errors.push(e);
        sizes.push(s.stats.fileBytes);
      },
    });
    await s.load();
    await mkdir(join(dir, `${LOG_FILE}.tmp`)); // the compaction file cannot be created
    const record = encodeRecord(usr("k", 1, "v".repeat(20))).length;
    for (let i = 0; i < 20; i++) {
      s.append([usr("k", i + 1, "v".repeat(20))]);
      await s.sync();
    }
    assert.equal(s.stats.compactions, 0);
    const error = errors[0] as Error & { cause?: { code?: string } };
    assert.equal(error.message, "Compaction failed; the log is kept as it is");
    assert.ok(error.cause, "the file system's error as the cause");
    assert.equal(s.failure, undefined, "the storage still works");
    assert.ok(errors.length >= 2 && errors.length <= 4, `${errors.length} attempts`);
    for (let i = 1; i < sizes.length; i++) {
      const grown = sizes[i]! - sizes[i - 1]!;
      assert.ok(grown >= 200 && grown <= 200 + record, `tried again after ${grown} bytes`);
    }
    await rm(join(dir, `${LOG_FILE}.tmp`), { recursive: true });
    for (let i = 20; i < 40 && s.stats.compactions === 0; i++) {
      s.append([usr("k", i + 1, "v".repeat(20))]);
      await s.sync();
    }
    assert.equal(s.stats.compactions, 1, "compacted once the log grew again");
    await s.close();
    assert.deepEqual(await logKeys(dir), ["k"]);
  });
});

test("a directory fsync the system does not support is skipped; any other failure is not", async () => {
  for (const code of ["EISDIR", "EPERM", "EINVAL", "ENOTSUP", "EBADF", "EACCES"]) {
    await withDir(async (dir) => {
      await withFault(dir, "sync", () => Promise.reject(errno(code)), async () => {
        const { s, errors } = open_(dir, { compactAfterBytes: 100 });
        await s.load();
        for (let i = 0; i < 10; i++) s.append([usr("k", i + 1, "v".repeat(20))]);
        await s.sync();
        s.append([usr("k", 100, "last")]);
        await s.sync();
        assert.ok(s.stats.compactions >= 1, code);
        assert.deepEqual(errors, [], code);
        await s.close();
      });
      assert.deepEqual(await logKeys(dir), ["k"]);
    });
  }
  await withDir(async (dir) => {
    const { s } = open_(dir, { compactAfterBytes: 100, recoverIntervalMs: 60_000 });
    await s.load();
    await withFault(dir, "sync", () => Promise.reject(errno("EIO")), async () => {
      for (let i = 0; i < 10; i++) s.append([usr("k", i + 1, "v".repeat(20))]);
      await s.sync(); // written and fsynced; the compaction that follows fails
      s.append([usr("k", 100, "last")]);
      await assert.rejects(s.sync(), { code: "EIO" });
    });
    assert.equal((s.failure as Error & { code?: string }).code, "EIO");
    await assert.rejects(s.close(), { code: "EIO" });
  });
  await withDir(async (dir) => {
    // A failure creating the log (the directory's fsync) fails load().
    await withFault(dir, "sync", () => Promise.reject(errno("EIO")), async () => {
      await assert.rejects(fileStorage({ dir }).load(), { code: "EIO" });
    });
  });
});
