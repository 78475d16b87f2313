// The edge replica in workerd (Cloudflare Workers' runtime, npm package `workerd`): the
// worker is built from ./edge with esbuild and the `workerd` condition, without
// nodejs_compat, and syncs over HTTP with three UDP members, one Deno, one Bun and one Node
// process started with the `node` command and --http-token.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  bundle,
  type CliMember,
  freePort,
  type Proc,
  scratchDir,
  sleep,
  SLOW,
  startWorkerd,
  udpCluster,
  until,
  valueAt,
  workerSource,
  writeAt,
} from "./_edge.ts";

const TOKEN = "workerd-edge-token";
// Long enough that two requests in a row on a loaded machine still find the copy fresh.
const STALE_MS = 1000;

interface Health {
  id: string;
  keys: number;
  replica: {
    syncs: number;
    roundTrips: number;
    lastSync: { upstream: string; roundTrips: number } | null;
    upstreams: { url: string; downUntil: number | null; lastError: string | null }[];
  };
}

test(
  "workerd runs the replica bundled from ./edge against three UDP members (Deno, Bun, Node): writes and deletes travel both ways, a restart resyncs in one sync, a down upstream is skipped, a wrong token changes nothing",
  SLOW,
  async () => {
    const scratch = scratchDir();
    let members: CliMember[] = [];
    let workerd: Proc | undefined;
    try {
      members = await udpCluster("edge", () => [`--http-token=${TOKEN}`]);
      const [m0, m1, m2] = members as [CliMember, CliMember, CliMember];
      writeFileSync(
        join(scratch.dir, "entry.js"),
        workerSource(members.map((m) => m.url), TOKEN, STALE_MS),
      );
      const { bytes } = bundle(join(scratch.dir, "entry.js"), join(scratch.dir, "worker.js"));
      console.log(`edge worker bundle: ${bytes} bytes minified`);
      const port = await freePort("tcp");
      const edge = `http://127.0.0.1:${port}`;
      workerd = await startWorkerd(scratch.dir, "worker.js", port);
      const procs = () => [...members, { proc: workerd }];
      const health = async () =>
        await (await fetch(`${edge}/healthz`, { signal: AbortSignal.timeout(10_000) }))
          .json() as Health;

      // A write through a member's HTTP API: readable through the worker within
      // maxStalenessMs plus one sync (the worker syncs with the first upstream, m0).
      assert.equal(await valueAt(edge, "from-member"), undefined);
      assert.equal(await writeAt(m0.url, "from-member", { v: 1 }, TOKEN), 204);
      await sleep(STALE_MS + 10);
      assert.deepEqual(await valueAt(edge, "from-member"), { v: 1 });

      // A write through the worker: acknowledged once an upstream has it, then on all three.
      assert.equal(await writeAt(edge, "from-edge", "hello", TOKEN), 204);
      assert.equal(await m0.value("from-edge"), "hello", "the upstream has it at the ack");
      await until(
        "the worker's write to reach the three members",
        async () =>
          (await Promise.all(members.map((m) => m.value("from-edge")))).every((v) => v === "hello"),
        procs(),
      );
      assert.equal(await valueAt(edge, "from-edge"), "hello", "read-your-writes");

      // Deletes, both ways.
      assert.equal(await writeAt(edge, "from-edge", undefined, TOKEN), 204);
      assert.equal(await valueAt(edge, "from-edge"), undefined);
      await until(
        "the worker's delete to reach the three members",
        async () =>
          (await Promise.all(members.map((m) => m.value("from-edge")))).every((v) =>
            v === undefined
          ),
        procs(),
      );
      assert.equal(await writeAt(m0.url, "from-member", undefined, TOKEN), 204);
      await sleep(STALE_MS + 10);
      assert.equal(await valueAt(edge, "from-member"), undefined);

      // A wrong token: 401, and nothing changes anywhere.
      for (const token of ["wrong", undefined]) {
        assert.equal(await writeAt(edge, "intruder", 1, token), 401);
        assert.equal(await writeAt(edge, "from-edge", undefined, token), 401);
      }
      assert.equal(await valueAt(edge, "intruder"), undefined);
      for (const m of members) assert.equal(await m.value("intruder"), undefined);

      // The worker is a client: no member lists it, and nobody was suspected because of it.
      const id = (await health()).id;
      for (const m of members) {
        const list = await (await m.fetch("/members")).json() as { id: string; status: string }[];
        assert.deepEqual(list.map((x) => x.id).sort(), members.map((x) => x.id).sort());
        assert.ok(list.every((x) => x.status === "alive"), JSON.stringify(list));
        assert.equal(list.some((x) => x.id === id), false);
      }

      // Restarted from nothing: the full state after one sync.
      for (let i = 0; i < 50; i++) {
        assert.equal(await writeAt(members[i % 3]!.url, `bulk/${i}`, i, TOKEN), 204);
      }
      await until(
        "the members to converge",
        async () => {
          const roots = await Promise.all(
            members.map(async (m) =>
              ((await (await m.fetch("/sync")).json()) as { root: string }).root
            ),
          );
          return roots.every((r) => r === roots[0]);
        },
        procs(),
      );
      const memberState = await (await m2.fetch("/state")).json() as {
        usr: Record<string, unknown>;
      };
      await workerd.stop();
      workerd = await startWorkerd(scratch.dir, "worker.js", port);
      const state = await (await fetch(`${edge}/state`)).json() as {
        usr: Record<string, unknown>;
        sys: { members: Record<string, unknown> };
      };
      assert.deepEqual(state.usr, memberState.usr);
      assert.equal(Object.keys(state.usr).length, 50);
      assert.deepEqual(Object.keys(state.sys.members).sort(), members.map((m) => m.id).sort());
      assert.equal((await health()).replica.syncs, 1, "one sync served the full state");

      // An upstream that is down is skipped, and not tried again by the next sync.
      await m0.stop();
      assert.equal(await writeAt(m1.url, "while-m0-down", true, TOKEN), 204);
      await until(
        "m2 to have the write",
        async () => (await m2.value("while-m0-down")) === true,
        procs(),
      );
      await sleep(STALE_MS + 10);
      assert.equal(await valueAt(edge, "while-m0-down"), true);
      const first = await health();
      assert.ok(first.replica.upstreams[0]!.downUntil !== null, "m0 is marked down");
      assert.match(first.replica.upstreams[0]!.lastError ?? "", new RegExp(String(m0.httpPort)));
      assert.notEqual(first.replica.lastSync?.upstream, m0.url);
      await sleep(STALE_MS + 10);
      const second = await health(); // stale: this request syncs first
      assert.equal(second.replica.syncs, first.replica.syncs + 1);
      assert.equal(
        second.replica.roundTrips,
        first.replica.roundTrips + 1,
        "the next sync went straight to a live upstream: one request, in sync",
      );
    } finally {
      await workerd?.stop();
      await Promise.all(members.map((m) => m.stop()));
      scratch.cleanup();
    }
  },
);
