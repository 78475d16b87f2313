// Encrypted clusters: the key format, sealing and opening (AES-256-GCM), the replay guard,
// key rotation, and members without the key, over a real-time in-memory network.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { GossipKV, type GossipKVOptions } from "../src/gossip_kv.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import {
  checkSealed,
  generateKey,
  Keyring,
  parseKey,
  parseKeyFile,
  ReplayGuard,
  SEAL_OVERHEAD,
} from "../src/wire/crypto.ts";
import { Wire } from "../src/wire/wire.ts";

const NOW = Date.UTC(2026, 0, 1);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function eventually(done: () => boolean, what: string, ms = 15_000): Promise<void> {
  for (const end = Date.now() + ms; !done();) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Seals, then opens as a receiver would: header check first, then the keyring. */
async function roundTrip(ring: Keyring, sealed: Uint8Array, cluster = "c") {
  const refused = checkSealed(sealed, 1 << 20);
  return refused ? { status: "dropped" as const, ...refused } : await ring.open(sealed, cluster);
}

// ---------------------------------------------------------------------------- keys

test("generateKey() makes base64 keys of 32 bytes, all different", () => {
  const keys = Array.from({ length: 50 }, generateKey);
  assert.equal(new Set(keys).size, 50);
  for (const k of keys) {
    assert.match(k, /^[A-Za-z0-9+/]{43}=$/);
    assert.equal(parseKey(k).length, 32);
  }
});

test("parseKey() takes standard and URL-safe base64, and 32-byte arrays", () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (raw) => {
    const b64 = btoa(String.fromCharCode(...raw));
    const url = b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    assert.deepEqual([...parseKey(b64)], [...raw]);
    assert.deepEqual([...parseKey(` ${url}\n`)], [...raw]);
    assert.deepEqual([...parseKey(raw)], [...raw]);
  }));
});

test("bad keys throw TypeError (not base64) or RangeError (not 32 bytes), never quoting the key", () => {
  const secretish = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0cw=="; // 32 bytes? no: 31
  assert.throws(() => parseKey(secretish), (e: Error) => {
    assert.ok(e instanceof RangeError);
    assert.ok(!e.message.includes(secretish));
    return true;
  });
  assert.throws(() => parseKey("not base64!"), TypeError);
  assert.throws(() => parseKey("abcde"), TypeError);
  assert.throws(() => parseKey(btoa("x".repeat(16))), RangeError);
  assert.throws(() => parseKey(new Uint8Array(31)), RangeError);
  assert.throws(() => parseKey(42 as unknown as string), TypeError);
});

test("parseKeyFile(): one key a line, primary first; comments and blanks skipped", () => {
  const [k1, k2] = [generateKey(), generateKey()];
  const keys = parseKeyFile(`# rotated 2026-01-01\n\n  ${k1}  \r\n${k2}\n`);
  assert.deepEqual(keys.map((k) => btoa(String.fromCharCode(...k))), [k1, k2]);
  assert.throws(() => parseKeyFile("# nothing here\n\n"), TypeError);
  assert.throws(() => parseKeyFile(""), /holds no key/);
  assert.throws(() => parseKeyFile(`${k1}\n\n${k2.slice(4)}\n`), /line 3/);
  assert.throws(() => parseKeyFile(`${k1}\nnot a key\n`), (e: Error) => {
    assert.ok(e instanceof TypeError && /line 2/.test(e.message));
    return true;
  });
});

test("Keyring.create() refuses an empty list and bad keys", async () => {
  await assert.rejects(Keyring.create([]), TypeError);
  await assert.rejects(Keyring.create(["nope!"]), TypeError);
  await assert.rejects(Keyring.create(["nope"]), RangeError);
  await assert.rejects(Keyring.create([new Uint8Array(16)]), RangeError);
  const k = generateKey();
  assert.equal((await Keyring.create([k, k])).ids.length, 1);
});

// ---------------------------------------------------------------------------- sealing

test("node:crypto and WebCrypto seal the same way: each opens what the other sealed", async () => {
  const key = generateKey();
  const fast = await Keyring.create([key]);
  const web = await Keyring.create([key], { sync: false });
  assert.equal(fast.sync, true);
  assert.equal(web.sync, false);
  assert.throws(() => web.sealSync(Uint8Array.of(1), "c", NOW), /no synchronous cipher/);
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 1400 }), async (body) => {
      const datagram = Uint8Array.of(0x47, 0x4b, 1, 0, ...body);
      for (const [from, to] of [[fast, web], [web, fast]] as const) {
        const opened = await roundTrip(to, await from.seal(datagram, "c", NOW));
        assert.equal(opened.status, "opened");
        if (opened.status !== "opened") return;
        assert.deepEqual([...opened.datagram], [...datagram]);
        assert.equal(opened.timestamp, NOW);
      }
      const sealed = fast.sealSync(datagram, "c", NOW);
      const altered = sealed.slice();
      altered[altered.length - 1]! ^= 1;
      assert.equal(fast.openSync(altered, "c").status, "dropped");
      assert.equal(fast.openSync(sealed, "other cluster").status, "dropped");
      assert.equal(fast.openSync(sealed, "c").status, "opened");
    }),
    { numRuns: 50 },
  );
});

const datagram = fc.uint8Array({ minLength: 0, maxLength: 1500, size: "max" }).map((body) =>
  Uint8Array.from([0x47, 0x4b, 1, 0, ...body])
);

test("open(seal(d)) gives back d and its timestamp, with any cluster name", async () => {
  const ring = await Keyring.create([generateKey()]);
  let large = 0;
  await fc.assert(
    fc.asyncProperty(
      datagram,
      fc.string({ maxLength: 64, size: "max" }),
      fc.integer({ min: 0, max: 2 ** 50 }),
      async (d, cluster, now) => {
        const sealed = await ring.seal(d, cluster, now);
        assert.equal(sealed.length, d.length + SEAL_OVERHEAD);
        assert.deepEqual([...sealed.subarray(0, 4)], [0x47, 0x4b, 1, 2]);
        const opened = await roundTrip(ring, sealed, cluster);
        assert.equal(opened.status, "opened");
        if (opened.status !== "opened") return;
        assert.deepEqual([...opened.datagram], [...d]);
        assert.equal(opened.timestamp, now);
        if (d.length > 1000) large++;
      },
    ),
    { numRuns: 200 },
  );
  // Datagrams of MTU size were sealed, not only the 10-byte ones fast-check draws by default.
  assert.ok(large >= 40, `only ${large} datagrams over 1,000 bytes`);
});

test("any bit flipped anywhere in a sealed datagram makes it refused", async () => {
  const ring = await Keyring.create([generateKey()]);
  await fc.assert(
    fc.asyncProperty(datagram, fc.nat(), fc.integer({ min: 0, max: 7 }), async (d, at, bit) => {
      const sealed = await ring.seal(d, "c", NOW);
      const i = at % sealed.length;
      sealed[i]! ^= 1 << bit;
      const r = await roundTrip(ring, sealed);
      assert.equal(r.status, "dropped");
      if (r.status !== "dropped") return;
      // The 4-byte header is checked before decryption; everything after it is authenticated.
      if (i >= 4) assert.equal(r.reason, "unauthenticated");
      else assert.ok(["bad-magic", "bad-version", "plaintext", "malformed"].includes(r.reason));
    }),
    { numRuns: 300 },
  );
});

test("a datagram sealed with another key, or for another cluster, is unauthenticated", async () => {
  const [k1, k2] = [generateKey(), generateKey()];
  const ring1 = await Keyring.create([k1]);
  const ring2 = await Keyring.create([k2]);
  await fc.assert(
    fc.asyncProperty(datagram, async (d) => {
      const sealed = await ring1.seal(d, "c", NOW);
      const wrongKey = await roundTrip(ring2, sealed);
      assert.equal(wrongKey.status === "dropped" && wrongKey.reason, "unauthenticated");
      const otherCluster = await roundTrip(ring1, sealed, "other");
      assert.equal(otherCluster.status === "dropped" && otherCluster.reason, "unauthenticated");
    }),
    { numRuns: 50 },
  );
});

test("truncated sealed datagrams and plaintext ones are refused before decryption", () => {
  assert.equal(checkSealed(Uint8Array.of(0x47, 0x4b, 1, 2, 0, 0), 1400)?.reason, "truncated");
  assert.equal(checkSealed(Uint8Array.of(0x47, 0x4b, 1, 0, 0x80), 1400)?.reason, "plaintext");
  assert.equal(checkSealed(Uint8Array.of(0x47, 0x4b, 1, 1, 0x80), 1400)?.reason, "plaintext");
  assert.equal(checkSealed(new Uint8Array(1401), 1400)?.reason, "oversized");
});

test("rotation: members one step apart always understand each other", async () => {
  const [oldKey, newKey] = [generateKey(), generateKey()];
  // The three steps: install the new key, make it primary, remove the old one.
  const stages = await Promise.all(
    [[oldKey], [oldKey, newKey], [newKey, oldKey], [newKey]].map((k) => Keyring.create(k)),
  );
  for (const [i, sender] of stages.entries()) {
    for (const [j, receiver] of stages.entries()) {
      const r = await roundTrip(
        receiver,
        await sender.seal(Uint8Array.of(0x47, 0x4b, 1, 0), "c", 0),
      );
      if (Math.abs(i - j) <= 1) assert.equal(r.status, "opened", `stage ${i} → stage ${j}`);
    }
  }
  // Skipping a step breaks the cluster: that is why each step must reach every member first.
  const skipped = await roundTrip(stages[0]!, await stages[2]!.seal(Uint8Array.of(1), "c", 0));
  assert.equal(skipped.status, "dropped");
});

// ---------------------------------------------------------------------------- replays

test("ReplayGuard: fresh nonces inside the window pass once; anything else is a replay", () => {
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 12, maxLength: 12 }),
    fc.integer({ min: -200_000, max: 200_000 }),
    (nonce, offset) => {
      const guard = new ReplayGuard({ windowMs: 60_000 });
      const first = guard.check(nonce, NOW + offset, NOW);
      if (Math.abs(offset) > 60_000) {
        assert.equal(first?.reason, "replayed");
      } else {
        assert.equal(first, undefined);
        assert.equal(guard.check(nonce, NOW + offset, NOW + 1)?.reason, "replayed");
      }
    },
  ));
});

test("ReplayGuard forgets nonces only once their timestamps are outside the window", () => {
  const guard = new ReplayGuard({ windowMs: 1000, maxEntries: 100 });
  const nonce = (i: number) => Uint8Array.of(i & 0xff, i >> 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  for (let i = 0; i < 50; i++) assert.equal(guard.check(nonce(i), NOW, NOW), undefined);
  // Later, the old nonces are forgotten, but their stamps are now refused anyway.
  assert.equal(guard.check(nonce(1000), NOW + 1500, NOW + 1500), undefined);
  assert.equal(guard.check(nonce(0), NOW, NOW + 1500)?.reason, "replayed");
  assert.throws(() => new ReplayGuard({ windowMs: 0 }), RangeError);
});

// ---------------------------------------------------------------------------- members

const fast: Partial<GossipKVOptions> = { gossipIntervalMs: 50, probeIntervalMs: 100 };

async function cluster(keys: string[], n: number, net = new MemoryNetwork({ latencyMs: 1 })) {
  const members: GossipKV[] = [];
  for (let i = 0; i < n; i++) {
    members.push(
      await GossipKV.start({
        ...fast,
        id: `m${i}`,
        transport: net.transport(`m${i}`),
        seeds: i === 0 ? [] : ["m0"],
        keys,
      }),
    );
  }
  return { net, members };
}

const dropped = (kv: GossipKV, reason: string) =>
  (kv.stats().dropped as Record<string, number | undefined>)[reason] ?? 0;

test("an encrypted cluster converges, and its datagrams fit the MTU", async () => {
  const { net, members } = await cluster([generateKey()], 3);
  await members[0]!.set("big", "x".repeat(5000)); // fragmented, every fragment sealed
  await eventually(() => members.every((m) => m.get("big") === "x".repeat(5000)), "the value");
  await eventually(
    () => members.every((m) => m.members().filter((x) => x.status === "alive").length === 3),
    "every member alive everywhere",
  );
  for (const m of members) {
    assert.equal(m.stats().sendErrors, 0); // the network refuses datagrams over its MTU
    assert.deepEqual(m.stats().dropped, {});
  }
  assert.ok(net.stats().total.sentDatagrams > 0);
  await Promise.all(members.map((m) => m.close()));
});

test("members without the key learn nothing and change nothing", async () => {
  const key = generateKey();
  const { net, members } = await cluster([key], 3);
  await members[0]!.set("secret", 1);
  await eventually(() => members.every((m) => m.get("secret") === 1), "the cluster");
  const before = members.map((m) => m.syncStatus().root);
  const outsiders = [
    await GossipKV.start({
      ...fast,
      id: "wrong-key",
      transport: net.transport("w"),
      seeds: ["m0"],
      keys: [generateKey()],
    }),
    await GossipKV.start({ ...fast, id: "no-key", transport: net.transport("p"), seeds: ["m0"] }),
  ];
  for (const o of outsiders) await o.set("secret", 666);
  // An insider that knocks on the outsiders' doors too, so they do receive sealed traffic.
  members.push(
    await GossipKV.start({
      ...fast,
      id: "m3",
      transport: net.transport("m3"),
      seeds: ["m0", "w", "p"],
      keys: [key],
    }),
  );
  await members[1]!.set("later", 2); // traffic the outsiders could overhear, if anything
  await eventually(
    () => dropped(members[0]!, "unauthenticated") > 0 && dropped(members[0]!, "plaintext") > 0,
    "the outsiders' datagrams to be refused",
  );
  await eventually(() => members.every((m) => m.get("later") === 2), "the insiders");
  await sleep(300);
  for (const o of outsiders) {
    assert.deepEqual(o.keys(), ["secret"]);
    assert.equal(o.get("secret"), 666);
    assert.deepEqual(o.members().map((m) => m.id), [o.id]);
  }
  for (const m of members) {
    assert.equal(m.get("secret"), 1);
    assert.deepEqual(m.members().map((x) => x.id).sort(), ["m0", "m1", "m2", "m3"]);
  }
  assert.notDeepEqual(members.map((m) => m.syncStatus().root), before); // "later" arrived
  for (const o of outsiders) assert.ok(dropped(o, "unauthenticated") > 0, o.id);
  await Promise.all([...members, ...outsiders].map((m) => m.close()));
});

test("a replayed datagram is refused, whether old or a duplicate", async () => {
  const key = generateKey();
  const { net, members } = await cluster([key], 1);
  const target = members[0]!;
  const attacker = net.transport("attacker");
  attacker.listen(() => {});
  const ring = await Keyring.create([key]);
  const wire = new Wire({ cluster: "default", sender: "ghost" });
  const rumor = (key: string) =>
    wire.encode([{
      type: "rumor",
      hop: 0,
      entries: [{
        section: "usr",
        key,
        value: "v",
        wall: Date.now(),
        logical: 0,
        writer: "ghost",
        deleted: false,
      }],
    }])[0]!;
  // Sealed with the right key (say, recorded earlier), but two minutes ago: refused.
  attacker.send(target.address, await ring.seal(rumor("old"), "default", Date.now() - 120_000));
  await eventually(() => dropped(target, "replayed") === 1, "the old datagram to be refused");
  assert.equal(target.has("old"), false);
  // A fresh one is taken once; the same bytes again are a replay.
  const fresh = await ring.seal(rumor("fresh"), "default", Date.now());
  attacker.send(target.address, fresh);
  await eventually(() => target.has("fresh"), "the fresh datagram");
  attacker.send(target.address, fresh);
  await eventually(() => dropped(target, "replayed") === 2, "the duplicate to be refused");
  await target.close();
  attacker.close();
});

test("keys rotate on a running cluster without a single refused datagram", async () => {
  const [oldKey, newKey] = [generateKey(), generateKey()];
  const { members } = await cluster([oldKey], 3);
  const steps = [[oldKey, newKey], [newKey, oldKey], [newKey]];
  for (const [i, keys] of steps.entries()) {
    // One member after the other, with traffic in between, as an operator would.
    for (const m of members) {
      await m.setKeys(keys);
      await sleep(30);
    }
    await members[i]!.set(`after step ${i + 1}`, i);
    await eventually(
      () => members.every((m) => m.get(`after step ${i + 1}`) === i),
      `step ${i + 1}`,
    );
  }
  for (const m of members) assert.deepEqual(m.stats().dropped, {});
  await assert.rejects(members[0]!.setKeys([]), TypeError);
  await Promise.all(members.map((m) => m.close()));
});

test("setKeys() turns encryption on; then plaintext is refused", async () => {
  const net = new MemoryNetwork({ latencyMs: 1 });
  const a = await GossipKV.start({ ...fast, id: "a", transport: net.transport("a") });
  const b = await GossipKV.start({ ...fast, id: "b", transport: net.transport("b"), seeds: ["a"] });
  await a.set("k", 1);
  await eventually(() => b.get("k") === 1, "plaintext replication");
  await a.setKeys([generateKey()]);
  await b.set("k", 2);
  await eventually(() => dropped(a, "plaintext") > 0, "b's plaintext to be refused");
  await sleep(200);
  assert.equal(a.get("k"), 1);
  await Promise.all([a.close(), b.close()]);
});
