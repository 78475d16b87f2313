// The transport conformance suite: written once as a function of a factory, run against
// every transport (memory, Deno UDP, Bun UDP, Node UDP, HTTP) on the runtime it belongs to.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Transport } from "../src/transport/types.ts";
import { recordSkip } from "./_skip.ts";

export interface TransportFactory {
  /** A name for test titles, such as "memory" or "deno-udp". */
  readonly name: string;
  /** Opens a fresh transport, not yet listening. */
  open(): Promise<Transport> | Transport;
  /** Largest datagram the transport must carry (at least 1,400 bytes). */
  readonly maxBytes: number;
  /** Waits for in-flight datagrams (real networks: a short sleep; virtual time: advance). */
  settle(): Promise<void>;
  /** Called once after the suite. */
  teardown?(): Promise<void> | void;
}

interface Received {
  data: Uint8Array;
  from: string;
}

async function listening(t: Transport): Promise<Received[]> {
  const got: Received[] = [];
  await t.listen((data, from) => got.push({ data: data.slice(), from }));
  return got;
}

async function until(f: TransportFactory, done: () => boolean, tries = 100): Promise<boolean> {
  for (let i = 0; i < tries && !done(); i++) await f.settle();
  return done();
}

export function transportSuite(f: TransportFactory, options: { skip?: string | false } = {}): void {
  const skip = options.skip ? recordSkip(f.name, options.skip) : false;
  test(`${f.name}: a datagram arrives intact, with the sender's address`, { skip }, async () => {
    const a = await f.open(), b = await f.open();
    await listening(a);
    const got = await listening(b);
    const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
    await a.send(b.address, data);
    assert.ok(await until(f, () => got.length > 0), "nothing arrived");
    assert.deepEqual([...got[0]!.data], [...data]);
    assert.equal(got[0]!.from, a.address);
    await Promise.all([a.close(), b.close()]);
  });

  test(`${f.name}: replies reach the address a datagram came from`, { skip }, async () => {
    const a = await f.open(), b = await f.open();
    const gotA = await listening(a);
    await b.listen((data, from) => void b.send(from, Uint8Array.of(data[0]! + 1)));
    await a.send(b.address, Uint8Array.of(41));
    assert.ok(await until(f, () => gotA.length > 0), "no reply");
    assert.deepEqual([...gotA[0]!.data], [42]);
    await Promise.all([a.close(), b.close()]);
  });

  test(`${f.name}: carries datagrams up to ${f.maxBytes} bytes`, { skip }, async () => {
    const a = await f.open(), b = await f.open();
    await listening(a);
    const got = await listening(b);
    const big = Uint8Array.from({ length: f.maxBytes }, (_, i) => i & 0xff);
    await a.send(b.address, big);
    assert.ok(await until(f, () => got.length > 0), "the largest datagram did not arrive");
    assert.equal(got[0]!.data.length, f.maxBytes);
    await Promise.all([a.close(), b.close()]);
  });

  test(
    `${f.name}: many datagrams from several senders all arrive (no loss configured)`,
    { skip },
    async () => {
      const senders = [await f.open(), await f.open(), await f.open()];
      const b = await f.open();
      for (const s of senders) await listening(s);
      const got = await listening(b);
      for (let i = 0; i < 50; i++) {
        for (const [k, s] of senders.entries()) await s.send(b.address, Uint8Array.of(k, i));
      }
      assert.ok(await until(f, () => got.length >= 150), `${got.length} of 150 arrived`);
      const froms = new Set(got.map((g) => g.from));
      assert.deepEqual([...froms].sort(), senders.map((s) => s.address).sort());
      await Promise.all([...senders, b].map((t) => t.close()));
    },
  );

  test(`${f.name}: a closed transport receives nothing more, and sending to it does not throw`, {
    skip,
  }, async () => {
    const a = await f.open(), b = await f.open();
    await listening(a);
    const got = await listening(b);
    const address = b.address;
    await b.close();
    await a.send(address, Uint8Array.of(1));
    await f.settle();
    assert.equal(got.length, 0);
    await a.close();
  });

  if (f.teardown) test(`${f.name}: teardown`, { skip }, async () => await f.teardown!());
}
