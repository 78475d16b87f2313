// fileStorage() on its own: what a log loads back after appends, compactions, torn tails,
// corruption and crashes, and what each fsync policy does.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  appendFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compareVersions, type Entry } from "../src/core/store.ts";
import { encodeRecord, readRecords } from "../src/storage/_log.ts";
import { type FileStorage, fileStorage, LOG_FILE } from "../src/storage/file.ts";
import { MemoryStorage } from "../src/storage/memory.ts";
import { entry, value } from "./_arbitraries.ts";

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "gossip-kv-storage-"));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function canonical(entries: Iterable<Entry>): string[] {
  return [...entries].map((e) =>
    JSON.stringify([e.section, e.key, e.wall, e.logical, e.writer, e.deleted]) +
    (e.deleted ? "" : String(JSON.stringify(e.value, (_k, v) => v instanceof Map ? [...v] : v)))
  ).sort();
}

async function loadAll(dir: string): Promise<{ entries: string[]; damage: unknown }> {
  const s = fileStorage({ dir, onError: (e) => assert.fail(String(e)) });
  const { entries, damage } = await s.load();
  await s.close();
  return { entries: canonical(entries), damage };
}

function usr(key: string, wall: number, v: unknown = `${key}@${wall}`): Entry {
  return { section: "usr", key, value: v, wall, logical: 0, writer: "m", deleted: false };
}

/** A log holding `n` versions of a few keys, so that compaction has something to drop. */
async function writeLog(dir: string, n: number, options = {}): Promise<FileStorage> {
  const s = fileStorage({ dir, ...options });
  await s.load();
  for (let i = 0; i < n; i++) s.append([usr(`k${i % 5}`, 100 + i, { i, pad: "x".repeat(50) })]);
  await s.sync();
  return s;
}

type Op =
  | { op: "append"; entries: Entry[] }
  | { op: "forget"; picks: number[] }
  | { op: "rewrite"; times: number }
  | { op: "sync" }
  | { op: "yield" }
  | { op: "restart" };

const anyEntry = fc.tuple(entry, value).map(([e, v]) => (e.deleted ? e : { ...e, value: v }));
const ops: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        op: fc.constant("append" as const),
        entries: fc.array(anyEntry, { maxLength: 6 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("forget" as const),
        picks: fc.array(fc.nat(), { maxLength: 3 }),
      }),
    },
    {
      // Newer versions of the keys held: garbage in the log, so that compactions happen.
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant("rewrite" as const),
        times: fc.integer({ min: 1, max: 3 }),
      }),
    },
    { weight: 3, arbitrary: fc.constant({ op: "sync" as const }) },
    // Lets the writer get on with a step (of a compaction, say) while appends go on.
    { weight: 3, arbitrary: fc.constant({ op: "yield" as const }) },
    { weight: 1, arbitrary: fc.constant({ op: "restart" as const }) },
  ),
  { minLength: 5, maxLength: 40 },
);

/**
 * What a load may give back: for every key still held (`live`), its version or a later one
 * (a forgotten version may come back until a compaction drops it, and win over older ones
 * appended after it was forgotten); nothing that was never appended. Returns the new model.
 */
async function checkLoaded(
  loaded: readonly Entry[],
  live: MemoryStorage,
  history: ReadonlySet<string>,
): Promise<MemoryStorage> {
  for (const e of canonical(loaded)) assert.ok(history.has(e), `never appended: ${e}`);
  const byKey = new Map(loaded.map((e) => [`${e.section}/${e.key}`, e]));
  for (const e of live.entries()) {
    const got = byKey.get(`${e.section}/${e.key}`);
    assert.ok(got && compareVersions(got, e) >= 0, `lost or older: ${canonical([e])}`);
  }
  const next = new MemoryStorage();
  await next.load();
  next.append(loaded);
  return next;
}

test("load() gives back what was appended, across restarts and compactions", async () => {
  let compactions = 0;
  await fc.assert(
    fc.asyncProperty(ops, fc.constantFrom(1, 300, 1 << 30), async (script, compactAfterBytes) => {
      await withDir(async (dir) => {
        let live = new MemoryStorage();
        await live.load();
        const history = new Set<string>();
        const append = (entries: readonly Entry[]) => {
          s.append(entries);
          live.append(entries);
          for (const e of canonical(entries)) history.add(e);
        };
        const open = () =>
          fileStorage({ dir, compactAfterBytes, onError: (e) => assert.fail(String(e)) });
        let s = open();
        await s.load();
        for (const step of script) {
          if (step.op === "append") {
            append(step.entries);
          } else if (step.op === "forget") {
            const held = live.entries();
            const gone = held.length ? step.picks.map((i) => held[i % held.length]!) : [];
            s.forget(gone);
            live.forget(gone);
          } else if (step.op === "rewrite") {
            // A newer version of every key held, `times` over.
            for (let t = 0; t < step.times; t++) {
              append(live.entries().map((e) => ({ ...e, logical: e.logical + 1 })));
            }
          } else if (step.op === "sync") {
            await s.sync();
          } else if (step.op === "yield") {
            await new Promise((resolve) => setTimeout(resolve, 0));
          } else {
            await s.close();
            compactions += s.stats.compactions;
            s = open();
            const { entries, damage } = await s.load();
            assert.equal(damage, null);
            live = await checkLoaded(entries, live, history);
          }
        }
        await s.close();
        compactions += s.stats.compactions;
        s = open();
        const { entries, damage } = await s.load();
        await s.close(); // after a compaction, if the log called for one
        compactions += s.stats.compactions;
        assert.equal(damage, null);
        await checkLoaded(entries, live, history);
      });
    }),
    { numRuns: 30 },
  );
  assert.ok(compactions >= 3, `only ${compactions} compactions`);
});

test("entries appended while a compaction runs are kept", async () => {
  await withDir(async (dir) => {
    await (await writeLog(dir, 500)).close();
    const s = fileStorage({ dir, compactAfterBytes: 1024 });
    await s.load(); // the log calls for a compaction: it starts now
    const during = Array.from({ length: 50 }, (_, i) => usr(`during${i}`, 1000 + i));
    for (const e of during) {
      s.append([e]);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await s.sync();
    await s.close();
    assert.ok(s.stats.compactions >= 1);
    const loaded = await loadAll(dir);
    assert.deepEqual(loaded.entries.filter((e) => e.includes("during")), canonical(during));
    assert.equal(loaded.entries.length, 55);
  });
});

test("a torn tail is cut off and reported; the log then goes on from the cut", async () => {
  await withDir(async (dir) => {
    const s = await writeLog(dir, 10);
    await s.close();
    const path = join(dir, LOG_FILE);
    const good = (await stat(path)).size;
    // The start of a record, as a crash in the middle of a write leaves it.
    await appendFile(path, encodeRecord(usr("torn", 500, "y".repeat(100))).subarray(0, 20));
    const again = fileStorage({ dir });
    const { entries, damage } = await again.load();
    assert.equal(entries.length, 5);
    assert.equal(damage?.reason, "torn");
    assert.equal(damage?.offset, good);
    assert.equal(damage?.bytesDropped, 20);
    assert.match(damage!.message, /torn/);
    assert.equal((await stat(path)).size, good, "the file is cut back");
    again.append([usr("after", 999)]);
    await again.close();
    const loaded = await loadAll(dir);
    assert.equal(loaded.damage, null);
    assert.ok(loaded.entries.some((e) => e.includes('"after"')));
  });
});

test("a corrupt record in the middle loses that record only: a copy is kept, the log rewritten", async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir });
    await s.load();
    for (let i = 0; i < 10; i++) s.append([usr(`key${i}`, 100 + i)]);
    await s.close();
    const path = join(dir, LOG_FILE);
    const bytes = new Uint8Array(await readFile(path));
    const records = readRecords(bytes).records;
    const offset = 8 + records.slice(0, 4).reduce((n, r) => n + r.size, 0);
    bytes[offset + 12]! ^= 0x10; // inside the fifth record's payload
    await writeFile(path, bytes);
    const again = fileStorage({ dir });
    const { entries, damage } = await again.load();
    assert.deepEqual(
      entries.map((e) => e.key).sort(),
      ["key0", "key1", "key2", "key3", "key5", "key6", "key7", "key8", "key9"],
    );
    assert.equal(damage?.reason, "checksum");
    assert.equal(damage?.offset, offset);
    assert.equal(damage?.bytesDropped, records[4]!.size);
    assert.match(damage!.message, /9 records kept/);
    assert.deepEqual(new Uint8Array(await readFile(damage!.copy!)), bytes, "the copy is intact");
    again.append([usr("key10", 200)]);
    await again.close();
    const reread = await loadAll(dir);
    assert.equal(reread.damage, null, "the rewritten log is clean");
    assert.equal(reread.entries.length, 10);
  });
});

test("1,000 keys with byte 71,417 flipped: 999 come back, and the damage is reported", async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir });
    await s.load();
    for (let i = 0; i < 1000; i++) s.append([usr(`key${String(i).padStart(4, "0")}`, i)]);
    await s.close();
    const path = join(dir, LOG_FILE);
    const bytes = new Uint8Array(await readFile(path));
    const at = Math.min(71_417, bytes.length >> 1);
    bytes[at]! ^= 0xff;
    await writeFile(path, bytes);
    const again = fileStorage({ dir });
    const { entries, damage } = await again.load();
    assert.equal(entries.length, 999);
    assert.ok(damage && damage.copy !== null);
    await again.close();
  });
});

test("a file of another format is moved aside, never deleted, and the log starts empty", async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, LOG_FILE), "not a log at all");
    const s = fileStorage({ dir });
    const { entries, damage } = await s.load();
    assert.equal(entries.length, 0);
    assert.equal(damage?.reason, "header");
    assert.equal(await readFile(damage!.movedTo!, "utf8"), "not a log at all");
    s.append([usr("a", 1)]);
    await s.close();
    assert.equal((await loadAll(dir)).entries.length, 1);
  });
});

test("compaction rewrites the live entries only, and the log stays bounded", async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir, compactAfterBytes: 4096 });
    await s.load();
    for (let i = 0; i < 2000; i++) {
      s.append([usr(`k${i % 10}`, 100 + i, "v".repeat(100))]);
      if (i % 50 === 0) await s.sync();
      if (i === 1000) s.append([{ ...usr("gone", 1), deleted: true, value: undefined }]);
      if (i === 1500) s.forget([{ ...usr("gone", 1), deleted: true, value: undefined }]);
    }
    await s.sync();
    const { compactions, fileBytes, liveBytes, entries } = s.stats;
    assert.ok(compactions > 5, `${compactions} compactions`);
    assert.ok(
      fileBytes <= 2 * liveBytes + 4096 + 200 * 50,
      `${fileBytes} bytes for ${liveBytes} live`,
    );
    assert.equal(entries, 10);
    await s.close();
    const loaded = await loadAll(dir);
    assert.equal(loaded.entries.length, 10);
    assert.ok(!loaded.entries.some((e) => e.includes('"gone"')), "the forgotten tombstone is gone");
    assert.deepEqual(await readdir(dir), [LOG_FILE]);
  });
});

test("a crash at any step of a compaction leaves a log that loads the same state", async () => {
  await withDir(async (root) => {
    const before = join(root, "before"), after = join(root, "after");
    await (await writeLog(before, 300)).close();
    const old = await readFile(join(before, LOG_FILE));
    const expected = (await loadAll(before)).entries;
    // Opening with a low threshold compacts at once; keep the result.
    await (await writeLog(after, 300)).close();
    const s = fileStorage({ dir: after, compactAfterBytes: 1024 });
    await s.load();
    await s.close();
    assert.equal(s.stats.compactions, 1);
    const compacted = await readFile(join(after, LOG_FILE));
    assert.ok(compacted.length < old.length / 10);
    assert.deepEqual((await loadAll(after)).entries, expected);

    // The states a crash can leave: the temporary file cut anywhere (or complete but not
    // yet renamed) next to the old log; or the new log in place.
    const crashes: [string, Uint8Array, Uint8Array | undefined][] = [
      ["new file complete, not renamed", old, compacted],
      ["renamed", compacted, undefined],
      ["nothing written yet", old, new Uint8Array()],
    ];
    for (let cut = 1; cut < compacted.length; cut += Math.ceil(compacted.length / 17)) {
      crashes.push([`new file cut at ${cut}`, old, compacted.subarray(0, cut)]);
    }
    for (const [what, log, tmp] of crashes) {
      const dir = join(root, "crash");
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir);
      await writeFile(join(dir, LOG_FILE), log);
      if (tmp) await writeFile(join(dir, `${LOG_FILE}.tmp`), tmp);
      const loaded = await loadAll(dir);
      assert.equal(loaded.damage, null, what);
      assert.deepEqual(loaded.entries, expected, what);
      assert.deepEqual(await readdir(dir), [LOG_FILE], `${what}: the leftover is removed`);
    }
  });
});

test('fsync "always": a sync resolves after an fsync, and concurrent writes share one', async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir, fsync: "always" });
    await s.load();
    for (let i = 0; i < 5; i++) {
      const fsyncs = s.stats.fsyncs;
      s.append([usr(`seq${i}`, 10 + i)]);
      await s.sync();
      assert.equal(s.stats.fsyncs, fsyncs + 1);
      const onDisk = readRecords(new Uint8Array(await readFile(join(dir, LOG_FILE)))).records;
      assert.ok(onDisk.some((r) => r.entry.key === `seq${i}`));
    }
    const fsyncs = s.stats.fsyncs;
    await Promise.all(Array.from({ length: 100 }, (_, i) => {
      s.append([usr(`burst${i}`, 100 + i)]);
      return s.sync();
    }));
    assert.ok(s.stats.fsyncs - fsyncs <= 2, `${s.stats.fsyncs - fsyncs} fsyncs for 100 writes`);
    await s.close();
  });
});

test('fsync "interval": a sync resolves only after the next periodic fsync', async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir, fsync: "interval", fsyncIntervalMs: 20 });
    await s.load();
    for (let i = 0; i < 3; i++) {
      const fsyncs = s.stats.fsyncs;
      s.append([usr(`k${i}`, 10 + i)]);
      await s.sync();
      assert.ok(s.stats.fsyncs > fsyncs);
    }
    const fsyncs = s.stats.fsyncs;
    await Promise.all(Array.from({ length: 50 }, (_, i) => {
      s.append([usr(`burst${i}`, 100 + i)]);
      return s.sync();
    }));
    assert.ok(s.stats.fsyncs - fsyncs <= 2);
    await s.close();
    assert.equal((await loadAll(dir)).entries.length, 53);
  });
});

test('fsync "never": writes reach the file at once, fsync happens only on close', async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir, fsync: "never" });
    await s.load();
    for (let i = 0; i < 20; i++) {
      s.append([usr(`k${i}`, 10 + i)]);
      await s.sync();
      const onDisk = readRecords(new Uint8Array(await readFile(join(dir, LOG_FILE)))).records;
      assert.equal(onDisk.length, i + 1, "in the file (the OS cache) once sync() resolves");
    }
    assert.equal(s.stats.fsyncs, 0);
    await s.close();
    assert.equal(s.stats.fsyncs, 1);
  });
});

test("bad options throw, and load() may be called once", async () => {
  assert.throws(() => fileStorage({ dir: "" }), {
    name: "TypeError",
    message: "fileStorage() needs a directory: { dir }",
  });
  assert.throws(() => fileStorage({ dir: "x", fsync: "sometimes" as "always" }), {
    name: "TypeError",
    message: 'fsync must be "always", "interval" or "never", got sometimes',
  });
  for (const fsyncIntervalMs of [0, -1, Number.NaN, Infinity]) {
    assert.throws(() => fileStorage({ dir: "x", fsyncIntervalMs }), {
      name: "RangeError",
      message: "fsyncIntervalMs must be a positive number",
    });
  }
  for (const compactAfterBytes of [0, -1, Number.NaN, Infinity]) {
    assert.throws(() => fileStorage({ dir: "x", compactAfterBytes }), {
      name: "RangeError",
      message: "compactAfterBytes must be a positive number",
    });
  }
  for (const fsync of ["always", "interval", "never"] as const) fileStorage({ dir: "x", fsync });
  fileStorage({ dir: "x", fsyncIntervalMs: 1, compactAfterBytes: 1 });
  await withDir(async (dir) => {
    const s = fileStorage({ dir });
    assert.throws(() => s.append([usr("a", 1)]), {
      message: "Storage is not open: call load() first",
    });
    await s.load();
    await assert.rejects(s.load(), { message: "FileStorage.load() may be called once" });
    await s.close();
    assert.throws(() => s.append([usr("a", 1)]), { message: "Storage is closed" });
  });
});

test('fsync "interval": the periodic fsync is skipped when a compaction made everything durable', async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir, fsync: "interval", fsyncIntervalMs: 30, compactAfterBytes: 1 });
    await s.load();
    // One key overwritten: the log outgrows twice its live size at once, so the compaction
    // (which fsyncs the new log itself) runs before the periodic fsync is due.
    s.append(Array.from({ length: 20 }, (_, i) => usr("k", 10 + i)));
    while (s.stats.compactions === 0) await new Promise((r) => setTimeout(r, 5));
    const fsyncs = s.stats.fsyncs;
    // Past the periodic fsync: nothing was left to make durable.
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(s.stats.fsyncs, fsyncs);
    await s.close();
    assert.equal((await loadAll(dir)).entries.length, 1);
  });
});

test("load(): a data directory that cannot be made rejects with the mkdir's own error", async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, "file"), "x");
    const sub = join(dir, "file", "sub");
    await assert.rejects(fileStorage({ dir: sub }).load(), {
      code: "ENOTDIR",
      syscall: "mkdir",
      path: sub,
    });
  });
});
