// The sealed format byte by byte, the header checks at their limits, and the exact
// messages a bad key or a refused datagram produces.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  checkSealed,
  Keyring,
  parseKey,
  parseKeyFile,
  ReplayGuard,
  SEAL_OVERHEAD,
} from "../src/wire/crypto.ts";

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

test("a key id is the first 4 bytes of SHA-256 over a fixed label and the key", async () => {
  const ring = await Keyring.create([KEY]);
  // sha256("gossip-kv key id\0" + bytes 1..32), computed independently with node:crypto.
  assert.deepEqual(ring.ids, ["781b20a4"]);
  const two = await Keyring.create([new Uint8Array(32), KEY]);
  assert.equal(two.ids.length, 2);
  assert.equal(two.ids[1], "781b20a4");
  assert.match(two.ids[0]!, /^[0-9a-f]{8}$/);
});

test("a sealed datagram: header, key id, nonce, then the encrypted timestamp and datagram", async () => {
  const ring = await Keyring.create([KEY]);
  const datagram = Uint8Array.of(0x47, 0x4b, 1, 0, 0x80);
  const now = 2 ** 41 + 2 ** 32 + 77;
  const a = await ring.seal(datagram, "c", now);
  const b = await ring.seal(datagram, "c", now);
  assert.equal(a.length, datagram.length + SEAL_OVERHEAD);
  assert.deepEqual([...a.subarray(0, 4)], [0x47, 0x4b, 1, 2]);
  assert.deepEqual([...a.subarray(4, 8)], [0x78, 0x1b, 0x20, 0xa4]);
  assert.notDeepEqual([...a.subarray(8, 20)], [...b.subarray(8, 20)], "a fresh nonce each time");
  const opened = await ring.open(a, "c");
  assert.equal(opened.status, "opened");
  if (opened.status !== "opened") return;
  assert.equal(opened.timestamp, now);
  assert.deepEqual([...opened.datagram], [...datagram]);
  assert.deepEqual([...opened.nonce], [...a.subarray(8, 20)]);
  // Decrypted independently with WebCrypto: the timestamp is 8 bytes big-endian, then the datagram.
  const key = await crypto.subtle.importKey("raw", KEY, "AES-GCM", false, ["decrypt"]);
  const aad = Uint8Array.from([...a.subarray(0, 20), ...new TextEncoder().encode("c")]);
  const plain = new Uint8Array(
    await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: a.slice(8, 20), additionalData: aad },
      key,
      a.slice(20),
    ),
  );
  const view = new DataView(plain.buffer);
  assert.equal(view.getUint32(0), Math.floor(now / 2 ** 32));
  assert.equal(view.getUint32(4), now >>> 0);
  assert.deepEqual([...plain.subarray(8)], [...datagram]);
});

test("open() names the unknown key id; a known id with a bad tag is unauthenticated", async () => {
  const ring = await Keyring.create([KEY]);
  const sealed = await ring.seal(Uint8Array.of(1, 2, 3), "c", 5);
  const stranger = sealed.slice();
  stranger.set([0xde, 0xad, 0xbe, 0xef], 4);
  assert.deepEqual(await ring.open(stranger, "c"), {
    status: "dropped",
    reason: "unauthenticated",
    detail: "sealed with key deadbeef, not in the keyring",
  });
  assert.deepEqual(await ring.open(sealed, "d"), {
    status: "dropped",
    reason: "unauthenticated",
    detail: "authentication failed (wrong key, other cluster, or altered)",
  });
});

test("checkSealed(): each refusal at its limit, with its reason and detail", () => {
  const sealed = (n: number, kind = 2) => {
    const d = new Uint8Array(n);
    d.set([0x47, 0x4b, 1, kind].slice(0, n));
    return d;
  };
  const min = SEAL_OVERHEAD + 4;
  assert.equal(checkSealed(sealed(min), min), undefined);
  assert.deepEqual(checkSealed(sealed(min), min - 1), {
    reason: "oversized",
    detail: `${min} bytes exceeds ${min - 1}`,
  });
  assert.deepEqual(checkSealed(sealed(min - 1), 1000), {
    reason: "truncated",
    detail: `sealed datagram of ${min - 1} bytes`,
  });
  assert.deepEqual(checkSealed(sealed(3), 1000), {
    reason: "truncated",
    detail: "3 bytes is shorter than a header",
  });
  assert.deepEqual(checkSealed(sealed(4), 1000), {
    reason: "truncated",
    detail: "sealed datagram of 4 bytes",
  });
  for (const kind of [0, 1]) {
    assert.deepEqual(checkSealed(sealed(min, kind), 1000), {
      reason: "plaintext",
      detail: "unencrypted datagram in an encrypted cluster",
    });
  }
  assert.deepEqual(checkSealed(sealed(min, 3), 1000), {
    reason: "malformed",
    detail: "unknown kind 3",
  });
  const magic = sealed(min);
  magic[1] = 0;
  assert.deepEqual(checkSealed(magic, 1000), {
    reason: "bad-magic",
    detail: "not a Gossip KV datagram",
  });
  magic[1] = 0x4b;
  magic[0] = 0;
  assert.equal(checkSealed(magic, 1000)?.reason, "bad-magic");
  const version = sealed(min);
  version[2] = 9;
  assert.deepEqual(checkSealed(version, 1000), {
    reason: "bad-version",
    detail: "protocol version 9",
  });
});

test("parseKey() and parseKeyFile(): exact messages, never quoting the key", () => {
  const short = b64(new Uint8Array(31));
  assert.throws(() => parseKey(short), { name: "RangeError", message: "Key is 31 bytes, not 32" });
  assert.throws(() => parseKey(new Uint8Array(33), "Key 2"), {
    name: "RangeError",
    message: "Key 2 is 33 bytes, not 32",
  });
  assert.throws(() => parseKey(7 as unknown as string), {
    name: "TypeError",
    message: "Key must be a base64 string",
  });
  assert.throws(() => parseKey("a!b"), {
    name: "TypeError",
    message: "Key is not base64 (make one with: openssl rand -base64 32)",
  });
  // One base64 digit past a multiple of 4 cannot encode whole bytes.
  assert.throws(() => parseKey(b64(KEY).slice(0, 41)), TypeError);
  assert.throws(() => parseKey(`${b64(KEY)}===`), TypeError);
  assert.deepEqual([...parseKey(b64(KEY).replace(/=+$/, ""))], [...KEY], "padding optional");
  const copy = parseKey(KEY);
  assert.notEqual(copy, KEY, "a copy, not the caller's array");
  assert.throws(() => parseKeyFile(42 as unknown as string), {
    name: "TypeError",
    message: "Key file must be text",
  });
  assert.throws(() => parseKeyFile(`# k\n\n${short}\n`), {
    name: "RangeError",
    message: "Key on line 3 is 31 bytes, not 32",
  });
  assert.throws(() => parseKeyFile("  \n# only a comment\n"), {
    name: "TypeError",
    message: "Key file holds no key",
  });
  assert.deepEqual(parseKeyFile(`#${short}\n${b64(KEY)}`).map((k) => [...k]), [[...KEY]]);
});

test("Keyring.create() messages, and a key given twice is kept once", async () => {
  await assert.rejects(Keyring.create([]), {
    name: "TypeError",
    message: "A keyring needs at least one key",
  });
  await assert.rejects(Keyring.create("k" as unknown as string[]), TypeError);
  await assert.rejects(Keyring.create([KEY, new Uint8Array(2)]), {
    name: "RangeError",
    message: "Key 2 is 2 bytes, not 32",
  });
  assert.deepEqual((await Keyring.create([KEY, b64(KEY), KEY])).ids, ["781b20a4"]);
});

test("ReplayGuard: exact details, and at most maxEntries nonces remembered", () => {
  const guard = new ReplayGuard({ windowMs: 1000, maxEntries: 3 });
  const nonce = (i: number) => new Uint8Array(12).fill(i);
  assert.deepEqual(guard.check(nonce(0), 0, 1001), {
    reason: "replayed",
    detail: "sealed 1001 ms from now, outside the 1000 ms window",
  });
  assert.deepEqual(guard.check(nonce(0), 2002, 1001), {
    reason: "replayed",
    detail: "sealed -1001 ms from now, outside the 1000 ms window",
  });
  for (let i = 1; i <= 3; i++) assert.equal(guard.check(nonce(i), 1000, 1000), undefined);
  assert.deepEqual(guard.check(nonce(3), 1000, 1000), {
    reason: "replayed",
    detail: "nonce seen before",
  });
  // A fourth nonce makes room by forgetting the oldest, which then passes again.
  assert.equal(guard.check(nonce(4), 1000, 1000), undefined);
  assert.equal(guard.check(nonce(1), 1000, 1000), undefined);
  assert.equal(guard.check(nonce(4), 1000, 1000)?.reason, "replayed");
  // Forgotten once its window has passed: a nonce stamped at 1000 is remembered until 2000.
  const g = new ReplayGuard({ windowMs: 1000 });
  assert.equal(g.check(nonce(9), 1000, 1000), undefined);
  assert.equal(g.check(nonce(9), 1000, 2000)?.reason, "replayed");
  assert.equal(g.check(nonce(8), 1001, 2001), undefined, "a check that sweeps out nonce 9");
  assert.equal(g.check(nonce(9), 1001, 2001), undefined, "forgotten after its window");
});
