// The in-memory storage: what a member restarted on it loads, by the same LWW rule as the
// store, written out here by hand (wall, counter, writer).
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Entry } from "../src/core/store.ts";
import { MemoryStorage } from "../src/storage/memory.ts";
import { entry } from "./_arbitraries.ts";

function newer(a: Entry, b: Entry): boolean {
  if (a.wall !== b.wall) return a.wall > b.wall;
  if (a.logical !== b.logical) return a.logical > b.logical;
  return a.writer > b.writer;
}

const ids = (list: readonly Entry[]) =>
  list.map((e) => `${e.section}/${e.key}@${e.wall}.${e.logical}.${e.writer}`).sort();

test("MemoryStorage keeps the newest version of each key, whatever the order of appends", async () => {
  await fc.assert(fc.asyncProperty(
    fc.array(entry, { maxLength: 60, size: "max" }),
    fc.nat(60),
    async (entries, split) => {
      const s = new MemoryStorage();
      assert.deepEqual((await s.load()).damage, null);
      s.append(entries.slice(0, split));
      s.append(entries.slice(split));
      const expected = new Map<string, Entry>();
      for (const e of entries) {
        const id = `${e.section}/${e.key}`;
        const held = expected.get(id);
        if (!held || newer(e, held)) expected.set(id, e);
      }
      assert.deepEqual(ids(s.entries()), ids([...expected.values()]));
      const reloaded = await s.load();
      assert.deepEqual(ids(reloaded.entries), ids([...expected.values()]));
    },
  ));
});

test("MemoryStorage forgets only the exact version it holds, and refuses appends before load", async () => {
  const s = new MemoryStorage();
  const v: Entry = {
    section: "sys",
    key: "members/a",
    value: { port: 1 },
    wall: 5,
    logical: 1,
    writer: "a",
    deleted: false,
  };
  assert.throws(() => s.append([v]), { message: "Storage is not open: call load() first" });
  await s.load();
  s.append([v, { ...v, section: "usr" }]);
  s.forget([{ ...v, logical: 0 }, { ...v, writer: "b" }, { ...v, wall: 6 }]);
  assert.equal(s.entries().length, 2, "other versions of the key are not forgotten");
  s.forget([v]);
  assert.deepEqual(s.entries().map((e) => e.section), ["usr"]);
  // An older version does not replace a newer one; an equal one changes nothing.
  s.append([{ ...v, section: "usr", wall: 4, value: "old" }, {
    ...v,
    section: "usr",
    value: "same",
  }]);
  assert.deepEqual(s.entries().map((e) => e.value), [{ port: 1 }]);
  const synced = s.sync();
  assert.ok(synced instanceof Promise);
  await synced;
  const closed = s.close();
  assert.ok(closed instanceof Promise);
  await closed;
  assert.throws(() => s.append([v]), /not open/);
  assert.equal((await s.load()).entries.length, 1, "closing keeps the data");
});
