// A key file that every user may write is refused, as ssh refuses such a private key.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { readKeyFile } from "../src/cli/_keys.ts";
import { generateKey } from "../src/wire/crypto.ts";

test("a world-writable key file is refused; the same file with mode 0640 is read", {
  skip: process.platform === "win32" ? "no POSIX modes" : false,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), "gkv-keymode-"));
  try {
    const path = join(dir, "cluster.keys");
    await writeFile(path, generateKey() + "\n");
    await chmod(path, 0o666);
    await assert.rejects(readKeyFile(path), /writable by every user \(mode 666\)/);
    await chmod(path, 0o640);
    assert.equal((await readKeyFile(path)).keys.length, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
