// The file storage's accounting and reports, exactly: what a damaged or foreign log is
// reported as, what it is cut to, and which appends and forgets change the log's sizes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Entry } from "../src/core/store.ts";
import { encodeRecord, HEADER } from "../src/storage/_log.ts";
import { fileStorage, LOG_FILE } from "../src/storage/file.ts";

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "gossip-kv-fields-"));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function usr(key: string, wall: number, value: unknown = key): Entry {
  return { section: "usr", key, value, wall, logical: 0, writer: "m", deleted: false };
}

test("a torn tail is reported with its offset, bytes dropped and records kept, and cut off", async () => {
  await withDir(async (dir) => {
    const path = join(dir, LOG_FILE);
    const records = [usr("a", 1), usr("b", 2)].map(encodeRecord);
    const whole = HEADER.length + records[0]!.length + records[1]!.length;
    const torn = records[1]!.subarray(0, 5);
    await writeFile(path, Uint8Array.from([...HEADER, ...records[0]!, ...records[1]!, ...torn]));
    const s = fileStorage({ dir });
    const { entries, damage } = await s.load();
    assert.deepEqual(entries.map((e) => e.key), ["a", "b"]);
    assert.deepEqual(damage, {
      reason: "torn",
      file: path,
      offset: whole,
      bytesDropped: 5,
      movedTo: null,
      copy: null,
      message: `${path}: torn (incomplete record frame at byte ${whole}): cut to ${whole} bytes, ` +
        `5 dropped; 2 records kept`,
    });
    assert.equal((await stat(path)).size, whole, "the file is cut at the damage");
    assert.equal(s.stats.fileBytes, whole);
    assert.equal(s.stats.liveBytes, records[0]!.length + records[1]!.length);
    assert.equal(s.stats.entries, 2);
    await s.close();
  });
});

test("a file of another format is moved aside whole, reported, and a new log begun", async () => {
  await withDir(async (dir) => {
    const path = join(dir, LOG_FILE);
    const foreign = new TextEncoder().encode("not a log at all");
    await writeFile(path, foreign);
    const s = fileStorage({ dir });
    const { entries, damage } = await s.load();
    assert.deepEqual(entries, []);
    assert.equal(damage?.reason, "header");
    assert.equal(damage?.offset, 0);
    assert.equal(damage?.bytesDropped, foreign.length);
    assert.match(damage?.movedTo ?? "", /entries\.log\.unreadable-\d+$/);
    assert.equal(
      damage?.message,
      `${path} is not a Gossip KV log (no header): moved to ${damage?.movedTo}`,
    );
    assert.deepEqual([...await readFile(damage!.movedTo!)], [...foreign], "moved, not cut");
    assert.deepEqual([...await readFile(path)], [...HEADER]);
    assert.equal(s.stats.fileBytes, HEADER.length);
    await s.close();
    assert.deepEqual((await readdir(dir)).sort(), [LOG_FILE, damage!.movedTo!.split("/").at(-1)]);
  });
});

test("a directory where the log should be makes load() reject", async () => {
  await withDir(async (dir) => {
    await mkdir(join(dir, LOG_FILE));
    await assert.rejects(fileStorage({ dir }).load(), (e: Error & { code?: string }) => {
      assert.equal(e.code, "EISDIR");
      return true;
    });
  });
});

test("appends of a version not newer than the held one write nothing; forget drops exact versions", async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir });
    await s.load();
    const v = usr("k", 10);
    s.append([v]);
    await s.sync();
    const after = { ...s.stats };
    assert.equal(after.fileBytes, HEADER.length + encodeRecord(v).length);
    assert.equal(after.liveBytes, encodeRecord(v).length);
    s.append([v, usr("k", 9), { ...v, writer: "a" }]); // equal, older, older (writer)
    await s.sync();
    assert.deepEqual(s.stats, after, "nothing written");
    const newer = usr("k", 11, "newer value");
    s.append([newer]);
    await s.sync();
    assert.equal(s.stats.fileBytes, after.fileBytes + encodeRecord(newer).length);
    assert.equal(s.stats.liveBytes, encodeRecord(newer).length, "the old record no longer counts");
    assert.equal(s.stats.entries, 1);
    s.forget([v, { ...newer, writer: "z" }]); // versions it does not hold
    assert.equal(s.stats.entries, 1);
    assert.equal(s.stats.liveBytes, encodeRecord(newer).length);
    s.forget([newer]);
    assert.equal(s.stats.entries, 0);
    assert.equal(s.stats.liveBytes, 0);
    await s.close();
    const again = fileStorage({ dir });
    // Forgetting is for compaction: the records are still in the log until it runs.
    assert.deepEqual((await again.load()).entries.map((e) => e.value), ["newer value"]);
    await again.close();
  });
});

test("close() before load() closes; afterwards appends are refused and close() resolves again", async () => {
  await withDir(async (dir) => {
    const s = fileStorage({ dir });
    await s.close();
    assert.throws(() => s.append([usr("a", 1)]), { message: "Storage is closed" });
    await s.close();
    const t = fileStorage({ dir });
    await t.load();
    t.append([usr("a", 1)]);
    const closing = t.close();
    assert.throws(() => t.append([usr("b", 1)]), { message: "Storage is closed" });
    await closing;
    assert.equal(t.stats.writes, 1);
    const u = fileStorage({ dir });
    assert.deepEqual((await u.load()).entries.map((e) => e.key), ["a"], "closing wrote the queue");
    await u.close();
  });
});

test('fsync "always" does not wait for the interval timer, and close() adds no needless fsync', async () => {
  await withDir(async (dir) => {
    // With an hour-long interval, a sync() that waited for the timer would never resolve.
    const s = fileStorage({ dir, fsync: "always", fsyncIntervalMs: 3_600_000 });
    await s.load();
    s.append([usr("a", 1)]);
    await s.sync();
    assert.equal(s.stats.fsyncs, 1);
    await s.close();
    assert.equal(s.stats.fsyncs, 1, "everything was already durable");
    const n = fileStorage({ dir, fsync: "never" });
    await n.load();
    await n.close();
    assert.equal(n.stats.fsyncs, 0, "nothing written, nothing to fsync");
  });
});
