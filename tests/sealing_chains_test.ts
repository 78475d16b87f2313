// The sealing pipeline's two chains across a change of keyring: a datagram waits for the
// ones before it, and once the chain is empty a synchronous cipher seals and opens at once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKey, Keyring } from "../src/wire/crypto.ts";
import { SealingPipeline } from "../src/wire/sealing.ts";
import { Wire } from "../src/wire/wire.ts";

const T = 1_700_000_000_000;

function pipeline(keyring: Keyring | undefined) {
  const wire = new Wire({ cluster: "c", sender: "s" });
  const errors: unknown[] = [];
  const sealing = new SealingPipeline({
    wire,
    keyring,
    now: () => T,
    onError: (e) => errors.push(e),
  });
  return { wire, sealing, errors };
}

/** `n` distinct plain datagrams, as the wire writes them. */
function datagrams(n: number, from = 0): Uint8Array[] {
  const wire = new Wire({ cluster: "c", sender: "s" });
  return Array.from({ length: n }, (_, i) => wire.encode([{ type: "ack", seq: from + i }])[0]!);
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

test("after WebCrypto seals, a synchronous keyring seals at once again once the chain is empty", async () => {
  const key = generateKey();
  const a = pipeline(await Keyring.create([key], { sync: false }));
  const [d, e, f, g] = datagrams(4);
  const sent: Uint8Array[] = [];
  // Two through the chain: one handed out, one whose send throws.
  await a.sealing.seal(d!, (s) => void sent.push(s));
  await assert.rejects(
    Promise.resolve(a.sealing.seal(e!, () => {
      throw new Error("send failed");
    })),
    /send failed/,
  );
  assert.equal(sent.length, 1);
  await a.sealing.setKeys([key]); // node:crypto from now on
  assert.equal(a.sealing.seal(f!, (s) => void sent.push(s)), undefined, "sealed at once");
  assert.equal(sent.length, 2, "sent before seal() returned");
  const b = pipeline(await Keyring.create([key]));
  const got: Uint8Array[] = [];
  for (const s of sent) b.sealing.open(s, (x) => void got.push(x));
  assert.deepEqual(got.map((x) => [...x]), [d!, f!].map((x) => [...x]));
  // A send that rejects: seal() returns its rejection.
  const c = pipeline(await Keyring.create([key], { sync: false }));
  await assert.rejects(
    Promise.resolve(c.sealing.seal(g!, () => Promise.reject(new Error("transport closed")))),
    /transport closed/,
  );
});

test("a datagram still being sealed by WebCrypto holds back the next, even with a synchronous keyring", async () => {
  const key = generateKey();
  const a = pipeline(await Keyring.create([key], { sync: false }));
  const [d, e] = datagrams(2);
  await a.sealing.seal(d!, () => {}); // d's sealing (a promise) is kept for other peers
  await a.sealing.setKeys([key]);
  const order: string[] = [];
  const first = a.sealing.seal(d!, () => void order.push("d"));
  const second = a.sealing.seal(e!, () => void order.push("e"));
  assert.ok(first instanceof Promise, "d waits on its promised sealing");
  assert.ok(second instanceof Promise, "e waits behind d");
  assert.deepEqual(order, []);
  await Promise.all([first, second]);
  assert.deepEqual(order, ["d", "e"]);
});

test("a datagram received while others are still opened by WebCrypto is delivered after them", async () => {
  const key = generateKey();
  const sender = pipeline(await Keyring.create([key]));
  let exercised = 0;
  // Whether some datagrams are still being opened when the new keyring takes over depends
  // on the runtime's WebCrypto scheduling: try a few bursts, and require that one did.
  for (let attempt = 0, n = 50; attempt < 6 && exercised === 0; attempt++, n *= 2) {
    const b = pipeline(await Keyring.create([key], { sync: false }));
    const plain = datagrams(n + 1, attempt * 10_000);
    const sealed: Uint8Array[] = [];
    for (const p of plain) sender.sealing.seal(p, (s) => void sealed.push(s));
    const got: number[] = [];
    const switching = b.sealing.setKeys([key]).then(() => {
      if (b.sealing.opening === 0) return;
      exercised++;
      b.sealing.open(sealed[n]!, () => void got.push(n));
    });
    for (let i = 0; i < n; i++) b.sealing.open(sealed[i]!, () => void got.push(i));
    await switching;
    while (b.sealing.opening > 0) await tick();
    await tick();
    const expected = Array.from({ length: got.length }, (_, i) => i);
    assert.deepEqual(got, expected, "delivered in arrival order");
    assert.deepEqual(b.errors, []);
  }
  assert.ok(exercised > 0, "no burst was still being opened when the keys changed");
});

test("an error thrown while delivering an opened datagram goes to onError", async () => {
  const key = generateKey();
  const sender = pipeline(await Keyring.create([key]));
  const b = pipeline(await Keyring.create([key], { sync: false }));
  const [d] = datagrams(1);
  let sealed: Uint8Array | undefined;
  sender.sealing.seal(d!, (s) => void (sealed = s));
  b.sealing.open(sealed!, () => {
    throw new Error("deliver failed");
  });
  while (b.sealing.opening > 0) await tick();
  await tick();
  assert.equal(b.errors.length, 1);
  assert.match(String(b.errors[0]), /deliver failed/);
});
