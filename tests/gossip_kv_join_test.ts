// A member that cannot join says so: refused datagrams that point at a configuration
// mismatch are reported through onWarning (rate-limited, with the peer's address and the
// reason), "not joined" is reported after 3 s and then with backoff, and joined() settles:
// it resolves once a member answers, or rejects saying why.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  generateKey,
  GossipKV,
  type GossipKVOptions,
  type GossipKVWarning,
  MemoryNetwork,
} from "../mod.ts";
import { Wire } from "../src/wire/wire.ts";
import { PROTOCOL_VERSION } from "../src/wire/codec.ts";
import { parseFlags } from "../src/cli/_flags.ts";
import { checkKeyFile } from "../src/cli/_keys.ts";
import { createLogger } from "../src/cli/_log.ts";
import { startNode } from "../src/cli/_node.ts";

/** Members on one memory network and virtual time, each recording its warnings. */
class Lab {
  readonly net = new MemoryNetwork({ latencyMs: 1, virtualTime: true });
  readonly time = this.net.time!;
  readonly warnings = new Map<string, { at: number; warning: GossipKVWarning }[]>();
  readonly members: GossipKV[] = [];

  async add(id: string, options: Partial<GossipKVOptions> = {}): Promise<GossipKV> {
    const got: { at: number; warning: GossipKVWarning }[] = [];
    this.warnings.set(id, got);
    const kv = await GossipKV.start({
      id,
      transport: this.net.transport(id),
      clock: this.time,
      scheduler: this.time,
      onWarning: (warning) => got.push({ at: this.time.now(), warning }),
      onError: (error) => {
        throw error;
      },
      ...options,
    });
    this.members.push(kv);
    return kv;
  }

  /** Advances virtual time by `ms`, letting WebCrypto (real promises) finish as it goes. */
  async run(ms: number, step = 50): Promise<void> {
    for (let t = 0; t < ms; t += step) {
      this.time.advance(Math.min(step, ms - t));
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  of(id: string): GossipKVWarning[] {
    return (this.warnings.get(id) ?? []).map((w) => w.warning);
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.close()));
  }
}

/** Waits for `p` while virtual time runs; returns how it settled. */
async function settle<T>(lab: Lab, p: Promise<T>, ms: number) {
  let result: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  p.then((value) => (result = { ok: true, value }), (error) => (result = { ok: false, error }));
  for (let t = 0; t < ms && !result; t += 50) await lab.run(50);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.ok(result, "settled");
  return result;
}

test("a member whose seeds never answer warns after 3 s, then with backoff", async () => {
  const lab = new Lab();
  const start = lab.time.now();
  await lab.add("b", { seeds: ["nobody:7946", "b"] }); // its own address is not a seed
  await lab.run(100_000, 500);
  const got = lab.warnings.get("b")!;
  assert.deepEqual(got.map((w) => w.at - start), [3_000, 9_000, 21_000, 45_000, 93_000]);
  const first = got[0]!.warning;
  assert.equal(first.type, "no-seed-answer");
  if (first.type !== "no-seed-answer") return;
  assert.deepEqual(first.seeds, ["nobody:7946"]);
  assert.equal(first.waitedMs, 3_000);
  assert.deepEqual(first.refusals, []);
  assert.match(
    first.message,
    /^Not joined after 3 s: no seed answered \(seeds nobody:7946\): no datagram came back/,
  );
  await lab.close();
});

test("the backoff of the join warning is capped at 5 minutes", async () => {
  const lab = new Lab();
  await lab.add("b", { seeds: ["nobody"] });
  await lab.run(1_600_000, 5_000);
  const at = lab.warnings.get("b")!.map((w) => w.at);
  const gaps = at.slice(1).map((t, i) => t - at[i]!);
  assert.deepEqual(gaps.slice(0, 6), [6_000, 12_000, 24_000, 48_000, 96_000, 192_000]);
  assert.ok(gaps.slice(6).length >= 2 && gaps.slice(6).every((g) => g === 300_000), `${gaps}`);
  await lab.close();
});

test("joined() rejects after its timeout saying no seed answered", async () => {
  const lab = new Lab();
  const b = await lab.add("b", { seeds: ["nobody"] });
  const r = await settle(lab, b.joined(5_000), 10_000);
  assert.equal(r.ok, false);
  assert.match(
    String((r as { error: unknown }).error),
    /Member b did not join within 5 s: no seed answered \(seeds nobody\): no datagram came back/,
  );
  await lab.close();
});

test("joined() resolves once a member answers, and at once without seeds", async () => {
  const lab = new Lab();
  const a = await lab.add("a");
  await a.joined(0); // the first member of a new cluster: nothing to join
  const b = await lab.add("b", { seeds: ["a"] });
  const r = await settle(lab, b.joined(5_000), 1_000);
  assert.equal(r.ok, true);
  await b.joined(0); // already joined
  await lab.run(30_000);
  assert.deepEqual(lab.of("a"), [], "no warning in a healthy cluster");
  assert.deepEqual(lab.of("b"), []);
  await lab.close();
});

test("members with the same key join without a warning", async () => {
  const lab = new Lab();
  const key = generateKey();
  await lab.add("a", { keys: [key], seeds: ["b"] });
  const b = await lab.add("b", { keys: [key], seeds: ["a"] });
  const r = await settle(lab, b.joined(5_000), 2_000);
  assert.equal(r.ok, true);
  await lab.run(10_000);
  assert.deepEqual([...lab.of("a"), ...lab.of("b")], []);
  await lab.close();
});

test("an encrypted and a plaintext member warn, each naming the other and the reason", async () => {
  const lab = new Lab();
  const a = await lab.add("a", { keys: [generateKey()], seeds: ["b"] });
  const b = await lab.add("b", { seeds: ["a"] });
  const joining = settle(lab, b.joined(4_000), 5_000);
  const aJoining = settle(lab, a.joined(4_000), 5_000);
  const [rb, ra] = await Promise.all([joining, aJoining]);
  const onA = lab.of("a").find((w) => w.type === "refused");
  assert.ok(onA && onA.type === "refused", JSON.stringify(lab.of("a")));
  assert.equal(onA.from, "b");
  assert.equal(onA.reason, "plaintext");
  assert.match(
    onA.message,
    /^Refused a datagram from b: not encrypted, but this member has a cluster key/,
  );
  const onB = lab.of("b").find((w) => w.type === "refused");
  assert.ok(onB && onB.type === "refused", JSON.stringify(lab.of("b")));
  assert.equal(onB.from, "a");
  assert.equal(onB.reason, "unauthenticated");
  assert.match(onB.message, /from a: encrypted with a key this member does not hold/);
  assert.match(onB.message, /this member has no cluster key/);
  // joined() says why, on both sides.
  assert.equal(rb.ok, false);
  assert.match(
    String((rb as { error: unknown }).error),
    /did not join within 4 s: no seed answered \(seeds a\); datagrams were refused from a: encrypted with a key this member does not hold/,
  );
  assert.equal(ra.ok, false);
  assert.match(String((ra as { error: unknown }).error), /refused from b: not encrypted/);
  // The "not joined" warning names the refusals too.
  const notJoined = lab.of("b").find((w) => w.type === "no-seed-answer");
  assert.ok(notJoined && notJoined.type === "no-seed-answer");
  assert.equal(notJoined.refusals[0]?.reason, "unauthenticated");
  assert.match(notJoined.message, /Not joined after 3 s: .*refused from a: encrypted with a key/);
  await lab.close();
});

test("members with different keys warn of a key mismatch", async () => {
  const lab = new Lab();
  await lab.add("a", { keys: [generateKey()], seeds: ["b"] });
  const b = await lab.add("b", { keys: [generateKey()], seeds: ["a"] });
  const r = await settle(lab, b.joined(4_000), 5_000);
  assert.equal(r.ok, false);
  for (const [id, peer] of [["a", "b"], ["b", "a"]] as const) {
    const w = lab.of(id).find((w) => w.type === "refused");
    assert.ok(w && w.type === "refused", id);
    assert.equal(w.from, peer);
    assert.equal(w.reason, "unauthenticated");
    assert.match(w.detail, /sealed with key [0-9a-f]{8}, not in the keyring/);
  }
  assert.match(String((r as { error: unknown }).error), /a key mismatch/);
  await lab.close();
});

test("members of different clusters warn, naming the cluster", async () => {
  const lab = new Lab();
  await lab.add("a", { cluster: "blue", seeds: ["b"] });
  const b = await lab.add("b", { cluster: "green", seeds: ["a"] });
  const r = await settle(lab, b.joined(4_000), 5_000);
  assert.equal(r.ok, false);
  const w = lab.of("b").find((w) => w.type === "refused");
  assert.ok(w && w.type === "refused");
  assert.equal(w.reason, "foreign-cluster");
  assert.match(
    w.message,
    /^Refused a datagram from a: of another cluster \(this member is in cluster "green"\) \(cluster "blue"\)$/,
  );
  assert.match(String((r as { error: unknown }).error), /of another cluster/);
  await lab.close();
});

test("refusals are rate-limited per peer and reason, and count what was held back", async () => {
  const lab = new Lab();
  await lab.add("a", { keys: [generateKey()] });
  const sender = new Wire({ cluster: "default", sender: "x" });
  const hello = sender.encode([{ type: "ping", seq: 1, target: "a" }])[0]!;
  const newer = hello.slice();
  newer[2] = PROTOCOL_VERSION + 1;
  const x = lab.net.transport("x");
  const y = lab.net.transport("y");
  for (let i = 0; i < 100; i++) {
    x.send("a", hello);
    y.send("a", hello);
    x.send("a", newer);
    await lab.run(100); // 10 s in all
  }
  const got = lab.of("a");
  assert.deepEqual(got.map((w) => w.type === "refused" && `${w.from} ${w.reason} ${w.count}`), [
    "x plaintext 1",
    "y plaintext 1",
    "x bad-version 1",
  ]);
  const version = got[2]!;
  assert.match(
    version.message,
    /from x: of another protocol version \(this member speaks version 1\) \(protocol version 2\)/,
  );
  await lab.run(50_000, 1_000); // a minute after the first
  x.send("a", hello);
  await lab.run(100);
  const again = lab.of("a")[3];
  assert.ok(again && again.type === "refused");
  assert.equal(again.count, 100, "the 99 held back and this one");
  assert.match(again.message, /^Refused 100 datagrams in the last 60 s from x: not encrypted/);
  assert.equal(lab.members[0]!.stats().dropped.plaintext, 201, "every one is still counted");
  await lab.close();
});

test("joined() rejects bad timeouts and closed members; close() rejects waiting calls", async () => {
  const lab = new Lab();
  const b = await lab.add("b", { seeds: ["nobody"] });
  let waiting: Promise<void> | undefined;
  assert.doesNotThrow(() => {
    waiting = b.joined(-1);
  });
  await assert.rejects(waiting!, RangeError);
  await assert.rejects(b.joined(Number.NaN), RangeError);
  const forever = b.joined(Infinity);
  await lab.run(1_000_000, 10_000);
  await b.close();
  await assert.rejects(forever, /Member b closed before it joined/);
  await assert.rejects(b.joined(), /Member b is closed/);
});

test("a throwing onWarning goes to onError; the default prints with console.warn", async () => {
  const net = new MemoryNetwork({ virtualTime: true });
  const errors: unknown[] = [];
  const b = await GossipKV.start({
    id: "b",
    transport: net.transport("b"),
    seeds: ["nobody"],
    clock: net.time!,
    scheduler: net.time!,
    onWarning: () => {
      throw new Error("listener failed");
    },
    onError: (error) => errors.push(error),
  });
  net.time!.advance(3_000);
  assert.match(String(errors[0]), /listener failed/);
  await b.close();

  const printed: unknown[][] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => void printed.push(args);
  try {
    const c = await GossipKV.start({
      id: "c",
      transport: net.transport("c"),
      seeds: ["nobody"],
      clock: net.time!,
      scheduler: net.time!,
    });
    net.time!.advance(3_000);
    await c.close();
  } finally {
    console.warn = warn;
  }
  assert.equal(printed.length, 1);
  assert.match(String(printed[0]![0]), /^gossip-kv: Not joined after 3 s: no seed answered/);
});

test("the node command logs refused datagrams and a seed that never answers", async () => {
  const lines: string[] = [];
  const log = createLogger("info", { out: (l) => lines.push(l), err: (l) => lines.push(l) });
  const keyFile = checkKeyFile("test.key", `${generateKey()}\n`);
  const base = ["--bind=127.0.0.1", "--port=0", "--http-port=0"];
  const encrypted = await startNode(parseFlags([...base, "--id=enc", "--key-file=test.key"], {}), {
    log,
    keyFile,
  });
  const plain = await startNode(
    parseFlags([...base, "--id=plain", `--seeds=${encrypted.kv.address}`], {}),
    { log },
  );
  try {
    const deadline = Date.now() + 10_000;
    const seen = () =>
      lines.some((l) => / WARN {2}Refused a datagram from .*: not encrypted/.test(l)) &&
      lines.some((l) => / WARN {2}Not joined after 3 s: no seed answered/.test(l));
    while (!seen() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(seen(), lines.join("\n"));
    const refused = lines.find((l) => /Refused a datagram/.test(l))!;
    assert.ok(refused.includes(`from ${plain.kv.address}:`), refused);
    assert.ok(
      lines.some((l) => l.includes(`no seed answered (seeds ${encrypted.kv.address})`)),
      lines.join("\n"),
    );
  } finally {
    await Promise.all([encrypted.close(), plain.close()]);
  }
});
