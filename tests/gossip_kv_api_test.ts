// The library's calling conventions: promise-returning methods reject and never throw, reads
// are typed as the caller says (`get<T>()`), and keys list by prefix.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GossipKV, MemoryNetwork } from "../mod.ts";

async function member(): Promise<GossipKV> {
  return await GossipKV.start({ id: "a", transport: new MemoryNetwork().transport("a") });
}

/** Calls `f`, failing the test if it throws before returning its promise. */
function call<T>(what: string, f: () => Promise<T>): Promise<T> {
  let p: Promise<T> | undefined;
  assert.doesNotThrow(() => {
    p = f();
  }, `${what} threw synchronously`);
  assert.ok(p instanceof Promise, `${what} returned a promise`);
  return p;
}

test("set() and delete() reject a bad key, never throw, so .catch() sees the error", async () => {
  const kv = await member();
  for (const key of ["", 42, null, "x".repeat(4097)]) {
    await assert.rejects(call("set()", () => kv.set(key as string, 1)), TypeError);
    await assert.rejects(call("delete()", () => kv.delete(key as string)), TypeError);
  }
  let caught: unknown;
  await kv.set("", 1).catch((error) => caught = error);
  assert.ok(caught instanceof TypeError);
  assert.match(String(caught), /Key must be a non-empty string/);
  assert.equal(kv.size, 0);
  await kv.close();
});

test("set() rejects a value it cannot replicate, or one too large, and applies nothing", async () => {
  const kv = await GossipKV.start({
    id: "a",
    transport: new MemoryNetwork().transport("a"),
    maxValueBytes: 100,
  });
  await assert.rejects(call("set()", () => kv.set("k", () => 1)), TypeError);
  await assert.rejects(call("set()", () => kv.set("k", new Uint8Array(200))), RangeError);
  assert.equal(kv.has("k"), false);
  await kv.close();
});

test("set() applies the write before its promise settles", async () => {
  const kv = await member();
  const writing = kv.set("k", "v");
  assert.equal(kv.get("k"), "v");
  await writing;
  await kv.close();
});

test("a closed member's set() and delete() reject, never throw", async () => {
  const kv = await member();
  await kv.close();
  await assert.rejects(call("set()", () => kv.set("k", 1)), /Member a is closed/);
  await assert.rejects(call("delete()", () => kv.delete("k")), /Member a is closed/);
});

test("setKeys(), close() and start() reject bad arguments, never throw", async () => {
  const kv = await member();
  await assert.rejects(call("setKeys()", () => kv.setKeys([])), TypeError);
  await assert.rejects(call("setKeys()", () => kv.setKeys(["not base64!"])), TypeError);
  await assert.rejects(
    call("start()", () => GossipKV.start(null as unknown as Parameters<typeof GossipKV.start>[0])),
    TypeError,
  );
  await assert.rejects(
    call("start()", () => GossipKV.start({} as Parameters<typeof GossipKV.start>[0])),
    /options.transport must be a Transport/,
  );
  await call("close()", () => kv.close(null as unknown as { leave?: boolean }));
  assert.equal(kv.closed, true);
});

test("get<T>() returns the type the caller names", async () => {
  const kv = await member();
  await kv.set("user/1", { name: "Ada", born: 1815 });
  const user = kv.get<{ name: string; born: number }>("user/1");
  const name: string | undefined = user?.name; // typed: no cast needed
  assert.equal(name, "Ada");
  const missing: string | undefined = kv.get<string>("nobody");
  assert.equal(missing, undefined);
  // @ts-expect-error get<string>() may be undefined: not assignable to string
  const notChecked: string = kv.get<string>("nobody");
  assert.equal(notChecked, undefined);
  const unknownByDefault = kv.get("user/1");
  // @ts-expect-error without a type argument the value is unknown
  unknownByDefault.name;
  await kv.close();
});

test("keys() and entries() list by prefix, deleted keys left out", async () => {
  const kv = await member();
  await Promise.all([
    kv.set("users/1", "Ada"),
    kv.set("users/2", "Alan"),
    kv.set("users/3", "Grace"),
    kv.set("users", "the list itself"),
    kv.set("jobs/1", 1),
  ]);
  await kv.delete("users/3");
  assert.deepEqual(kv.keys({ prefix: "users/" }).sort(), ["users/1", "users/2"]);
  assert.deepEqual(kv.keys({ prefix: "users" }).sort(), ["users", "users/1", "users/2"]);
  assert.deepEqual(kv.keys({ prefix: "nothing/" }), []);
  assert.deepEqual(kv.keys().sort(), ["jobs/1", "users", "users/1", "users/2"]);
  assert.deepEqual(kv.keys({}).length, 4);
  const users: [string, string][] = kv.entries<string>({ prefix: "users/" });
  assert.deepEqual(users.sort(), [["users/1", "Ada"], ["users/2", "Alan"]]);
  assert.deepEqual(kv.entries().length, 4);
  assert.throws(() => kv.keys({ prefix: 1 as unknown as string }), /prefix must be a string/);
  await kv.close();
});
