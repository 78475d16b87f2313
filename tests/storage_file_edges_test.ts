// Edges of the file storage the other storage tests leave out: the recovery interval's
// bounds, what is reported when no callbacks are given, and a close() whose last fsync
// fails. Faults are injected into the runtime's own FileHandle, restored after each test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Entry } from "../src/core/store.ts";
import { encodeRecord, HEADER, readRecords } from "../src/storage/_log.ts";
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

type Method = "datasync" | "write";

/** Replaces FileHandle#`method` by `fake` (which may call the original) while `run` runs. */
async function withFault(
  dir: string,
  method: Method,
  fake: (original: (...args: unknown[]) => Promise<unknown>, ...args: unknown[]) => unknown,
  run: () => Promise<void>,
): Promise<void> {
  const fh = await open(join(dir, "probe"), "w");
  const proto = Object.getPrototypeOf(fh) as Record<
    Method,
    (...args: unknown[]) => Promise<unknown>
  >;
  await fh.close();
  await rm(join(dir, "probe"));
  const original = proto[method];
  proto[method] = function (this: unknown, ...args: unknown[]) {
    return fake((...a) => original.apply(this, a), ...args) as Promise<unknown>;
  };
  try {
    await run();
  } finally {
    proto[method] = original;
  }
}

/** Replaces FileHandle#datasync by `fake` while `run` runs. */
function withDatasync(
  dir: string,
  fake: (original: () => Promise<void>) => Promise<void>,
  run: () => Promise<void>,
): Promise<void> {
  return withFault(dir, "datasync", (original) => fake(() => original() as Promise<void>), run);
}

/** Waits until `done()` holds, for at most about 2 s. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !done(); i++) await new Promise((r) => setTimeout(r, 5));
}

const eio = () => Object.assign(new Error("EIO: injected"), { code: "EIO" });

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

test("opening, writing and closing leaves no file descriptor open (directory fsyncs included)", async () => {
  if (!existsSync("/proc/self/fd")) return; // Linux only: counts this process's descriptors
  const fds = async () => (await readdir("/proc/self/fd")).length;
  const cycle = () =>
    withDir(async (dir) => {
      const s = fileStorage({ dir, compactAfterBytes: 1 });
      await s.load(); // creates the log: a directory fsync
      for (let wall = 1; wall <= 3; wall++) {
        s.append([usr("k", wall)]);
        await s.sync();
      }
      await until(() => s.stats.compactions > 0); // renames: a directory fsync
      await s.close();
    });
  await cycle(); // warms up whatever the runtime opens once
  const before = await fds();
  for (let i = 0; i < 10; i++) await cycle();
  assert.ok((await fds()) < before + 3, "no descriptor per cycle");
});

test("a load() that fails leaves the directory as it was, and the storage closed", async () => {
  await withDir(async (dir) => {
    await mkdir(join(dir, LOG_FILE)); // a directory where the log should be
    const s = fileStorage({ dir });
    await assert.rejects(s.load(), { code: "EISDIR" });
    assert.deepEqual(await readdir(dir), [LOG_FILE], "no compaction file, no lock left");
    assert.throws(() => s.append([usr("a", 1)]), { message: "Storage is closed" });
    await s.close();
  });
});

test("load() keeps the newest version of a key whatever the order of its records", async () => {
  await withDir(async (dir) => {
    const newer = usr("k", 5);
    const older = { ...usr("k", 3), value: "older, longer value" };
    const bytes = [HEADER, encodeRecord(newer), encodeRecord(older)];
    await writeFile(join(dir, LOG_FILE), Buffer.concat(bytes));
    const s = fileStorage({ dir });
    const { entries, damage } = await s.load();
    assert.equal(damage, null);
    assert.deepEqual(entries, [newer]);
    assert.equal(s.stats.liveBytes, encodeRecord(newer).length);
    await s.close();
  });
});

test('fsync "never": an append reaches the file without a sync() call', async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir, fsync: "never" });
    await s.load();
    s.append([usr("a", 1)]);
    await until(() => s.stats.writes > 0);
    const read = readRecords(new Uint8Array(await readFile(join(dir, LOG_FILE))));
    assert.deepEqual(read.records.map((r) => r.entry.key), ["a"]);
    await s.close();
  });
});

test("a log written half a request per call is whole", async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir });
    await s.load();
    await withFault(
      dir,
      "write",
      (original, data, offset, length, position) =>
        original(data, offset, Math.ceil((length as number) / 2), position),
      async () => {
        s.append([usr("a", 1), { ...usr("b", 2), value: "y".repeat(300) }]);
        await s.sync();
      },
    );
    await s.close();
    const again = fileStorage({ dir });
    assert.deepEqual((await again.load()).entries.map((e) => e.key), ["a", "b"]);
    await again.close();
  });
});

test("damage reports: every skipped range and the damaged tail, with the copy kept", async () => {
  await withDir(async (dir) => {
    const [r1, r2, r3] = [usr("a", 1), usr("b", 2), usr("c", 3)].map(encodeRecord);
    const bad = r2!.slice();
    bad[bad.length - 1]! ^= 0xff; // r2's payload no longer matches its checksum
    const tail = new Uint8Array(12).fill(0xff); // an impossible record length
    const path = join(dir, LOG_FILE);
    await writeFile(path, Buffer.concat([HEADER, r1!, bad, r3!, tail]));
    const s = fileStorage({ dir });
    const { entries, damage } = await s.load();
    assert.deepEqual(entries.map((e) => e.key), ["a", "c"]);
    const at2 = HEADER.length + r1!.length;
    const end = at2 + bad.length + r3!.length;
    assert.ok(damage?.copy && existsSync(damage.copy));
    assert.equal(
      damage.message,
      `${path}: checksum (checksum mismatch at byte ${at2}): ${bad.length} bytes skipped, ` +
        `reading resumed after; checksum (impossible record length 4294967295 at byte ${end}): ` +
        `cut to ${end} bytes, 12 dropped; 2 records kept; the damaged file is kept as ${damage.copy}`,
    );
    await s.close();
  });
  await withDir(async (dir) => {
    // A skipped record and a torn tail: a copy is kept for the skipped one.
    const [r1, r2, r3] = [usr("a", 1), usr("b", 2), usr("c", 3)].map(encodeRecord);
    const bad = r2!.slice();
    bad[bad.length - 1]! ^= 0xff;
    await writeFile(
      join(dir, LOG_FILE),
      Buffer.concat([HEADER, r1!, bad, r3!, r1!.subarray(0, 5)]),
    );
    const s = fileStorage({ dir });
    const { damage } = await s.load();
    assert.equal(damage?.reason, "checksum");
    assert.ok(damage.copy && existsSync(damage.copy));
    assert.match(damage.message, /; torn \(incomplete record frame at byte \d+\): cut to /);
    await s.close();
  });
  await withDir(async (dir) => {
    // A damaged tail alone (not zeros: not a torn write) is kept as a copy too.
    const r1 = encodeRecord(usr("a", 1));
    const path = join(dir, LOG_FILE);
    await writeFile(path, Buffer.concat([HEADER, r1, new Uint8Array(12).fill(0xff)]));
    const s = fileStorage({ dir });
    const { damage } = await s.load();
    const end = HEADER.length + r1.length;
    assert.equal(damage?.reason, "checksum");
    assert.ok(damage.copy && existsSync(damage.copy));
    assert.equal(
      damage.message,
      `${path}: checksum (impossible record length 4294967295 at byte ${end}): cut to ${end} ` +
        `bytes, 12 dropped; 1 records kept; the damaged file is kept as ${damage.copy}`,
    );
    await s.close();
  });
});

test("compaction starts once the log reaches compactAfterBytes exactly, and never in close()", async () => {
  const r = encodeRecord(usr("k", 1)).length; // each version of "k" below has this size
  await withDir(async (dir) => {
    const s = fileStorage({ dir, compactAfterBytes: HEADER.length + 3 * r });
    await s.load();
    for (let wall = 1; wall <= 3; wall++) {
      s.append([usr("k", wall)]);
      await s.sync();
    }
    await until(() => s.stats.compactions > 0);
    assert.equal(s.stats.compactions, 1, "due at exactly compactAfterBytes");
    await s.close();
  });
  await withDir(async (dir) => {
    const s = fileStorage({ dir, compactAfterBytes: 1 });
    await s.load();
    for (let wall = 1; wall <= 2; wall++) {
      s.append([usr("k", wall)]);
      await s.sync();
    }
    s.append([usr("k", 3)]); // makes a compaction due once written, but close() comes first
    await s.close();
    assert.equal(s.stats.compactions, 0);
    const read = readRecords(new Uint8Array(await readFile(join(dir, LOG_FILE))));
    assert.equal(read.records.length, 3);
  });
});

test("a compaction that cannot create its file reports why, with the cause", async () => {
  await withDir(async (dir) => {
    const errors: unknown[] = [];
    const s = fileStorage({ dir, compactAfterBytes: 1, onError: (e) => void errors.push(e) });
    await s.load();
    await mkdir(join(dir, `${LOG_FILE}.tmp`)); // where the compaction file goes
    for (let wall = 1; wall <= 3; wall++) {
      s.append([usr("k", wall)]);
      await s.sync();
    }
    await until(() => errors.length > 0);
    const error = errors[0] as Error & { cause?: { code?: string } };
    assert.equal(error.message, "Compaction failed; the log is kept as it is");
    assert.equal(error.cause?.code, "EISDIR");
    await s.close();
  });
});

test("a storage that recovered and fails again rejects its waiters again", async () => {
  await withDir(async (dir) => {
    const errors: unknown[] = [];
    let recoveries = 0;
    const s = fileStorage({
      dir,
      recoverIntervalMs: 10,
      onError: (e) => void errors.push(e),
      onRecover: () => void recoveries++,
    });
    await s.load();
    const timeout = (p: Promise<unknown>) =>
      Promise.race([
        p,
        new Promise((_, reject) => setTimeout(() => reject(new Error("hung")), 2_000)),
      ]);
    for (let round = 1; round <= 2; round++) {
      let failing = true;
      await withDatasync(
        dir,
        (original) => failing ? Promise.reject(eio()) : original(),
        async () => {
          s.append([usr("k", round)]);
          await assert.rejects(timeout(s.sync()), { code: "EIO" });
          failing = false;
          await until(() => recoveries === round);
        },
      );
    }
    assert.equal(errors.length, 2);
    assert.equal(recoveries, 2);
    s.append([usr("k", 3)]);
    await s.sync();
    await s.close();
  });
});

test("a sync() waits for the fsync of its own records, not for one already in flight", async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir });
    await s.load();
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    let held = false;
    const hold = async (original: () => Promise<void>) => {
      if (!held) {
        held = true;
        await gate; // the first fsync waits until "b" is appended
      }
      return original();
    };
    await withDatasync(dir, hold, async () => {
      s.append([usr("a", 1)]);
      const first = s.sync();
      await until(() => held);
      s.append([usr("b", 2)]);
      const second = s.sync().then(() => ({ ...s.stats }));
      release();
      await first;
      const at = await second;
      assert.equal(at.writes, 2, "b was written before its sync() resolved");
      assert.equal(at.fsyncs, 2, "and fsynced");
    });
    await s.close();
  });
});

test("an entry appended while a recovery rewrites the log is in the log once sync() resolves", async () => {
  await withDir(async (dir) => {
    let recoveries = 0;
    const s = fileStorage({
      dir,
      recoverIntervalMs: 10,
      onError: () => {},
      onRecover: () => void recoveries++,
    });
    await s.load();
    let phase: "failing" | "recovering" | "done" = "failing";
    await withDatasync(dir, async (original) => {
      if (phase === "failing") throw eio();
      // The rewrite that recovers has taken its snapshot and is making it durable.
      if (phase === "recovering") {
        phase = "done";
        s.append([usr("b", 2)]);
      }
      await original();
    }, async () => {
      s.append([usr("a", 1)]);
      await assert.rejects(s.sync(), { code: "EIO" });
      phase = "recovering";
      await until(() => recoveries === 1);
      assert.equal(phase, "done");
      await s.sync();
    });
    await s.close();
    const again = fileStorage({ dir });
    assert.deepEqual((await again.load()).entries.map((e) => e.key).sort(), ["a", "b"]);
    await again.close();
  });
});
