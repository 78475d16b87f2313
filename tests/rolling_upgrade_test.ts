// A rolling upgrade from release 0.1.0 (tag v0.1.0), one member at a time, as a Kubernetes
// StatefulSet does it: each old member is stopped and a member of this release starts with
// the same id. Old and new members share one MemoryNetwork on virtual time and must keep
// converging at every step. The old release's sources are taken from git (`git archive`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { seededRandom } from "../src/core/random.ts";
import type { GossipKV } from "../src/gossip_kv.ts";
import { Cluster } from "./_cluster.ts";
import { RELEASE_COMMIT, RELEASE_TAG as TAG, resolveCommit } from "./_release.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OLD = fileURLToPath(new URL(`../.scratch/${TAG}/`, import.meta.url));

/** Extracts the old release's `src/` under `.scratch/` (once); a reason when it cannot. */
function extractOld(): string | undefined {
  if (existsSync(`${OLD}src/gossip_kv.ts`)) return undefined;
  const commit = resolveCommit(ROOT, TAG);
  if (commit === undefined) {
    return `commit ${RELEASE_COMMIT} (${TAG}) not found (not a git checkout?)`;
  }
  rmSync(OLD, { recursive: true, force: true });
  mkdirSync(OLD, { recursive: true });
  const archive = spawnSync("git", ["archive", commit, "src"], { cwd: ROOT, maxBuffer: 1 << 28 });
  if (archive.status !== 0) return `git archive ${TAG} failed: ${archive.stderr}`;
  const tar = spawnSync("tar", ["-x", "-C", OLD], { input: archive.stdout });
  if (tar.status !== 0) return `tar failed: ${tar.stderr}`;
  return undefined;
}

const skip = extractOld();

interface OldModule {
  GossipKV: { start(options: Record<string, unknown>): Promise<GossipKV> };
}

test("a cluster upgraded from 0.1.0 one member at a time converges at every step", {
  skip: skip ?? false,
}, async () => {
  // A computed specifier: the old sources are not part of this module graph.
  const specifier = new URL(`file://${OLD}src/gossip_kv.ts`).href;
  const old = (await import(specifier)) as OldModule;
  const c = new Cluster({ seed: 7, latencyMs: 5 });
  const N = 6;
  const startOld = async (id: string) => {
    const first = [...c.members.keys()].find((k) => k !== id);
    const kv = await old.GossipKV.start({
      id,
      transport: c.net.transport(id),
      seeds: first === undefined ? [] : [first],
      clock: c.time,
      scheduler: c.time,
      random: seededRandom(`old/${id}`),
      gossipIntervalMs: 200,
      probeIntervalMs: 500,
      onError: (error: unknown) => {
        throw error;
      },
    });
    c.members.set(id, kv);
  };
  const oldIds = new Set<string>();
  for (let i = 0; i < N; i++) {
    await startOld(`m${i}`);
    oldIds.add(`m${i}`);
  }
  assert.ok(c.runUntil(() => c.converged() && c.members.size === N, 30_000) >= 0);

  let k = 0;
  /** One write by an old member and one by a new one (when there are), then convergence. */
  const writeAndConverge = async (step: string) => {
    const rumored = new Map(
      [...c.members].map(([id, kv]) => [id, kv.stats().engine.rumorEntriesNew]),
    );
    for (const kv of c.members.values()) {
      const key = `${step}-${k++}`;
      await kv.set(key, { by: kv.id, step });
    }
    const took = c.runUntil(() => c.converged(), 20_000);
    assert.ok(took >= 0, `${step}: no convergence within 20 s`);
    for (const kv of c.members.values()) {
      assert.equal(kv.keys().length, k, `${step}: ${kv.id} holds ${kv.keys().length} of ${k}`);
      // Nobody sent an old member a message it cannot read (it would drop the datagram).
      assert.deepEqual(kv.stats().dropped, {}, `${step}: ${kv.id} dropped datagrams`);
    }
    // The old members learn new members' writes from rumors, as among themselves, not
    // only from anti-entropy.
    for (const id of oldIds) {
      const kv = c.members.get(id);
      if (!kv) continue;
      const got = kv.stats().engine.rumorEntriesNew - rumored.get(id)!;
      assert.ok(got >= c.members.size - 2, `${step}: ${id} got ${got} entries by rumor`);
    }
  };
  await writeAndConverge("all-old");

  const sent = (ids: readonly string[], types: readonly string[]) => {
    let n = 0;
    for (const id of ids) {
      const out = c.members.get(id)!.stats().engine.messagesOut as Record<string, number>;
      for (const t of types) n += out[t] ?? 0;
    }
    return n;
  };
  const FULL = ["sync-branch", "sync-leaf", "sync-want"];
  const COMPACT = ["sync-nodes", "sync-stamps", "sync-pull"];
  /**
   * Two sides write apart (old members on one, new on the other while both kinds are
   * there), then heal: what each side wrote reaches the other by anti-entropy alone (the
   * broadcast is long over). Members of this release answer each other by the compact
   * descent, and old members by the full one.
   */
  const repairAcross = async (step: string) => {
    const ids = [...c.members.keys()];
    const olds = ids.filter((id) => oldIds.has(id)), news = ids.filter((id) => !oldIds.has(id));
    const sides = olds.length && news.length
      ? [olds, news]
      : [ids.slice(0, ids.length >> 1), ids.slice(ids.length >> 1)];
    const received = (side: readonly string[]) =>
      side.reduce((n, id) => n + c.members.get(id)!.stats().engine.syncEntriesReceived, 0);
    const before = sides.map(received);
    const fullBefore = sent(news, FULL), compactBefore = sent(news, COMPACT);
    c.partition(...sides);
    for (const kv of c.members.values()) await kv.set(`${step}-${k++}`, { by: kv.id, step });
    c.run(300);
    c.heal();
    const took = c.runUntil(() => c.converged(), 20_000);
    assert.ok(took >= 0, `${step}: no convergence within 20 s of the heal`);
    for (const kv of c.members.values()) {
      assert.equal(kv.keys().length, k, `${step}: ${kv.id} holds ${kv.keys().length} of ${k}`);
      assert.deepEqual(kv.stats().dropped, {}, `${step}: ${kv.id} dropped datagrams`);
    }
    sides.forEach((side, i) => {
      // A member of this release retransmits tree copies nobody acknowledged, so after the
      // heal part of a new side's writes may come by the tree; an old member's rumors are
      // not retransmitted, so what old members wrote comes by anti-entropy alone.
      const writers = sides[1 - i]!.filter((id) =>
        oldIds.has(id) || side.some((s) => oldIds.has(s))
      );
      const got = received(side) - before[i]!;
      assert.ok(got >= writers.length, `${step}: side ${i} got ${got} entries by anti-entropy`);
    });
    if (olds.length && news.length) {
      assert.ok(sent(news, FULL) > fullBefore, `${step}: new members answered old ones in full`);
    } else if (news.length) {
      assert.equal(sent(news, FULL), fullBefore, `${step}: no full descent among new members`);
    }
    if (news.length > 1 && olds.length === 0) {
      // Both sides new: what one side wrote is missing on the other, and members of this
      // release repair it between themselves in the compact descent. (With old members on
      // the other side, the new ones hold the same writes and have nothing to descend.)
      assert.ok(sent(news, COMPACT) > compactBefore, `${step}: new members spoke compact`);
    }
  };
  await repairAcross("apart-all-old");

  for (let i = 0; i < N; i++) {
    const id = `m${i}`;
    await c.crash(id);
    oldIds.delete(id);
    c.run(1_000);
    await c.add(id);
    assert.ok(
      c.runUntil(() => [...c.members.keys()].every((m) => c.everyoneSees(m, "alive")), 30_000) >=
        0,
      `after upgrading ${id}, not every member sees every other alive`,
    );
    await writeAndConverge(`upgraded-${i + 1}`);
    if (i === 2) await repairAcross("apart-half-upgraded");
  }
  await repairAcross("apart-all-new");

  // Every member is new now: writes travel along the tree, and no rumor is sent any more.
  const rumorsBefore = [...c.members.values()].map((kv) => kv.stats().engine.messagesOut.rumor);
  const treeBefore = [...c.members.values()].map((kv) => kv.stats().engine.messagesOut.tree);
  await writeAndConverge("all-new");
  const rumorsAfter = [...c.members.values()].map((kv) => kv.stats().engine.messagesOut.rumor);
  const treeAfter = [...c.members.values()].map((kv) => kv.stats().engine.messagesOut.tree);
  assert.deepEqual(rumorsAfter, rumorsBefore, "no rumors among members that all speak the tree");
  assert.ok(
    treeAfter.reduce((a, b) => a + b, 0) > treeBefore.reduce((a, b) => a + b, 0),
    "writes travelled along the tree",
  );
  await c.close();
});
