// The replay window a pipeline is given is the one its guard applies.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKey, Keyring } from "../src/wire/crypto.ts";
import { SealingPipeline } from "../src/wire/sealing.ts";
import { Wire } from "../src/wire/wire.ts";

const T = 1_700_000_000_000;

function pipeline(keyring: Keyring, now: number, replayWindowMs?: number) {
  return new SealingPipeline({
    wire: new Wire({ cluster: "c", sender: "s" }),
    keyring,
    now: () => now,
    onError: (e) => assert.fail(String(e)),
    ...(replayWindowMs !== undefined && { replayWindowMs }),
  });
}

async function delivered(receiver: SealingPipeline, sealed: Uint8Array): Promise<number> {
  let n = 0;
  receiver.open(sealed, () => void n++);
  await new Promise((resolve) => setTimeout(resolve, 50));
  return n;
}

test("a datagram sealed 5 s ago: refused under a 1 s window, taken under the default one", async () => {
  const keyring = await Keyring.create([generateKey()]);
  const plain = new Wire({ cluster: "c", sender: "s" }).encode([{ type: "ack", seq: 1 }])[0]!;
  const seal = async () => {
    let out: Uint8Array | undefined;
    await pipeline(keyring, T).seal(plain, (s) => void (out = s));
    return out!;
  };
  assert.equal(await delivered(pipeline(keyring, T + 5_000, 1_000), await seal()), 0);
  assert.equal(await delivered(pipeline(keyring, T + 5_000, 10_000), await seal()), 1);
  assert.equal(await delivered(pipeline(keyring, T + 5_000), await seal()), 1);
});
