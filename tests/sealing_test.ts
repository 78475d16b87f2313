import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKey, Keyring } from "../src/wire/crypto.ts";
import { SealingPipeline } from "../src/wire/sealing.ts";
import { Wire } from "../src/wire/wire.ts";

const T = 1_700_000_000_000;

function pipeline(keyring: Keyring | undefined, maxPendingOpens?: number) {
  const wire = new Wire({ cluster: "c", sender: "s" });
  const errors: unknown[] = [];
  const sealing = new SealingPipeline({
    wire,
    keyring,
    now: () => T,
    onError: (e) => errors.push(e),
    ...(maxPendingOpens !== undefined && { maxPendingOpens }),
  });
  return { wire, sealing, errors };
}

/** `n` distinct plain datagrams, as the wire writes them. */
function datagrams(n: number): Uint8Array[] {
  const wire = new Wire({ cluster: "c", sender: "s" });
  return Array.from({ length: n }, (_, i) => wire.encode([{ type: "ack", seq: i }])[0]!);
}

/** Seals every datagram through `sealing`, in order. */
async function sealAll(sealing: SealingPipeline, plain: Uint8Array[]): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  await Promise.all(plain.map((d) => sealing.seal(d, (sealed) => void out.push(sealed))));
  return out;
}

/** Resolves once `sealing` has no datagram left to open (a busy machine may take long). */
async function opened(sealing: SealingPipeline): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (sealing.opening > 0) {
    assert.ok(Date.now() < deadline, `${sealing.opening} datagrams still opening after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Opens every datagram through `sealing`; resolves with what was delivered, in order. */
async function openAll(sealing: SealingPipeline, data: Uint8Array[]): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  for (const d of data) sealing.open(d, (plain) => void got.push(plain));
  await opened(sealing);
  return got;
}

test("without keys the pipeline passes datagrams through at once", () => {
  const { sealing } = pipeline(undefined);
  const [d] = datagrams(1);
  assert.equal(sealing.overhead, 0);
  let delivered: Uint8Array | undefined;
  sealing.open(d!, (plain, now) => {
    delivered = plain;
    assert.equal(now, T);
  });
  assert.equal(delivered, d, "delivered synchronously, unchanged");
  let sent: Uint8Array | undefined;
  assert.equal(sealing.seal(d!, (x) => void (sent = x)), undefined);
  assert.equal(sent, d);
});

test("sealed datagrams are handed out and delivered in call order, each once", async () => {
  const key = generateKey();
  const a = pipeline(await Keyring.create([key]));
  const b = pipeline(await Keyring.create([key]));
  assert.ok(a.sealing.overhead > 0);
  const plain = datagrams(50);
  const sealed = await sealAll(a.sealing, plain);
  assert.equal(sealed.length, 50);
  const delivered: Uint8Array[] = [];
  for (const d of [...sealed, sealed[3]!]) b.sealing.open(d, (x) => void delivered.push(x));
  await opened(b.sealing);
  assert.deepEqual(delivered.map((d) => [...d]), plain.map((d) => [...d]));
  assert.equal(b.wire.drops.get("replayed"), 1, "the copy is a replay");
  assert.deepEqual(b.errors, []);
});

test("an encrypted member refuses plaintext, garbage and more than it can decrypt", async () => {
  const key = generateKey();
  const a = pipeline(await Keyring.create([key]));
  // WebCrypto alone: datagrams wait to be opened, and the third is one too many.
  const b = pipeline(await Keyring.create([key], { sync: false }), 2);
  const got: Uint8Array[] = [];
  b.sealing.open(datagrams(1)[0]!, (x) => void got.push(x));
  b.sealing.open(Uint8Array.of(1, 2), (x) => void got.push(x));
  assert.equal(b.wire.drops.get("plaintext"), 1);
  assert.equal(b.wire.drops.get("truncated"), 1);
  const sealed = await sealAll(a.sealing, datagrams(3));
  for (const d of sealed) b.sealing.open(d, (x) => void got.push(x));
  assert.equal(b.sealing.opening, 2);
  assert.equal(b.wire.drops.get("overloaded"), 1, "the third is shed at once");
  await opened(b.sealing);
  assert.equal(got.length, 2);
  assert.equal(b.sealing.opening, 0);
});

test("setKeys() applies calls in order; a bad call rejects and changes nothing", async () => {
  const [k1, k2] = [generateKey(), generateKey()];
  const a = pipeline(undefined);
  const first = a.sealing.setKeys([k1]);
  const bad = a.sealing.setKeys(["not base64!"]);
  const second = a.sealing.setKeys([k2]);
  await first;
  await assert.rejects(bad, TypeError);
  await second;
  const only2 = pipeline(await Keyring.create([k2]));
  const only1 = pipeline(await Keyring.create([k1]));
  const sealed = await sealAll(a.sealing, datagrams(1));
  assert.equal((await openAll(only2.sealing, sealed)).length, 1, "sealed with the last keys");
  assert.equal((await openAll(only1.sealing, sealed)).length, 0);
  assert.equal(only1.wire.drops.get("unauthenticated"), 1);
});

test("after close() nothing more is delivered", async () => {
  const key = generateKey();
  const a = pipeline(await Keyring.create([key]));
  const b = pipeline(await Keyring.create([key], { sync: false })); // still opening at close()
  const sealed = await sealAll(a.sealing, datagrams(5));
  const got: Uint8Array[] = [];
  for (const d of sealed) b.sealing.open(d, (x) => void got.push(x));
  b.sealing.close();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(got.length, 0);
  assert.equal(b.sealing.opening, 0);
});

test("with node:crypto (Node, Deno, Bun) datagrams are sealed and opened at once, in order", async () => {
  const key = generateKey();
  const ring = await Keyring.create([key]);
  assert.equal(ring.sync, true, "every runtime the suite runs on has node:crypto");
  const a = pipeline(ring);
  const b = pipeline(await Keyring.create([key]));
  const plain = datagrams(3);
  const sealed: Uint8Array[] = [];
  for (const d of plain) assert.equal(a.sealing.seal(d, (x) => void sealed.push(x)), undefined);
  assert.equal(sealed.length, 3, "sent before seal() returned");
  const got: Uint8Array[] = [];
  for (const d of sealed) b.sealing.open(d, (x) => void got.push(x));
  assert.deepEqual(got.map((d) => [...d]), plain.map((d) => [...d]), "delivered at once");
  b.sealing.open(sealed[0]!, (x) => void got.push(x));
  assert.equal(got.length, 3);
  assert.equal(b.wire.drops.get("replayed"), 1, "the replay guard holds on this path too");
});

test("a datagram sealed while WebCrypto is still busy waits its turn: order holds", async () => {
  const key = generateKey();
  const a = pipeline(await Keyring.create([key], { sync: false }));
  const plain = datagrams(20);
  const order: number[] = [];
  const sends = plain.map((d, i) => a.sealing.seal(d, () => void order.push(i)));
  await Promise.all(sends);
  assert.deepEqual(order, plain.map((_, i) => i));
  const b = pipeline(await Keyring.create([key]));
  const slow = pipeline(await Keyring.create([key], { sync: false }));
  // The same stream through a synchronous and a WebCrypto receiver: the same datagrams.
  const sealed = await sealAll(a.sealing, plain);
  assert.deepEqual(
    (await openAll(b.sealing, sealed)).map((d) => [...d]),
    (await openAll(slow.sealing, sealed)).map((d) => [...d]),
  );
});

test("one datagram for several peers is sealed once; distinct datagrams get distinct nonces", async () => {
  for (const sync of [true, false]) {
    const a = pipeline(await Keyring.create([generateKey()], { sync }));
    const [d, e] = datagrams(2);
    const out: Uint8Array[] = [];
    await Promise.all([d!, d!, e!].map((x) => a.sealing.seal(x, (s) => void out.push(s))));
    assert.deepEqual(
      [...out[0]!],
      [...out[1]!],
      `same bytes for the same datagram (sync: ${sync})`,
    );
    assert.notDeepEqual([...out[0]!].slice(8, 20), [...out[2]!].slice(8, 20), "another nonce");
  }
});
