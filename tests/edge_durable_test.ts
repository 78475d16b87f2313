// The replica in a Durable Object (./edge/durable), in workerd: the object's alarm syncs
// without any request, and its copy survives a restart of workerd in the object's storage
// (local disk), served even while no upstream answers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, serve } from "../src/http/mod.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import {
  bundle,
  freePort,
  type Proc,
  ROOT,
  scratchDir,
  SLOW,
  startWorkerd,
  valueAt,
  writeAt,
} from "./_edge.ts";

const TOKEN = "durable-edge-token";

function entrySource(upstream: string): string {
  const mod = JSON.stringify(join(ROOT, "src", "edge", "durable.ts"));
  return `import { edgeReplicaObject } from ${mod};
export const GossipReplica = edgeReplicaObject(() => (${
    JSON.stringify({
      upstream: [upstream],
      token: TOKEN,
      // Requests never sync after the first: only the alarm does.
      maxStalenessMs: 3_600_000,
      syncIntervalMs: 200,
      timeoutMs: 1000,
    })
  }));
export default {
  fetch(request, env) {
    return env.REPLICA.get(env.REPLICA.idFromName("main")).fetch(request);
  },
};
`;
}

test(
  "a Durable Object replica in workerd: its alarm syncs between requests, its copy survives a restart, its writes reach the member",
  SLOW,
  async () => {
    const kv = await GossipKV.start({ id: "up", transport: new MemoryNetwork().transport("up") });
    let server = await serve(createInspector(kv, { token: TOKEN }), { hostname: "127.0.0.1" });
    const upstreamPort = server.port;
    const scratch = scratchDir();
    let workerd: Proc | undefined;
    try {
      writeFileSync(join(scratch.dir, "entry.js"), entrySource(server.url));
      bundle(join(scratch.dir, "entry.js"), join(scratch.dir, "worker.js"));
      mkdirSync(join(scratch.dir, "do"));
      const port = await freePort("tcp");
      const edge = `http://127.0.0.1:${port}`;
      const start = () =>
        startWorkerd(scratch.dir, "worker.js", port, {
          services: `(name = "disk", disk = (path = ${
            JSON.stringify(join(scratch.dir, "do"))
          }, writable = true)),`,
          worker: `durableObjectNamespaces = [
    (className = "GossipReplica", uniqueKey = "gossip-kv-edge-test", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "disk"),
  bindings = [ (name = "REPLICA", durableObjectNamespace = "GossipReplica") ],`,
        });
      workerd = await start();

      await kv.set("before", 1);
      assert.equal(await valueAt(edge, "before"), 1, "the first request syncs");
      await kv.set("k", "by the alarm");
      // Requests do not sync (maxStalenessMs is an hour): only the alarm can bring it.
      const deadline = Date.now() + 30_000;
      while ((await valueAt(edge, "k")) !== "by the alarm") {
        if (Date.now() > deadline) assert.fail(`the alarm never synced:\n${workerd.log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(await writeAt(edge, "from-object", { ok: true }, TOKEN), 204);
      assert.deepEqual(kv.get("from-object"), { ok: true });

      // Restart workerd with the upstream gone: the copy comes back from the object's storage.
      await server.close();
      await workerd.stop();
      workerd = await start();
      assert.equal(await valueAt(edge, "k"), "by the alarm");
      assert.deepEqual(await valueAt(edge, "from-object"), { ok: true });
      assert.equal(await valueAt(edge, "before"), 1);

      // The upstream back on the same port: the alarm resumes.
      server = await serve(createInspector(kv, { token: TOKEN }), {
        hostname: "127.0.0.1",
        port: upstreamPort,
      });
      await kv.delete("before");
      const again = Date.now() + 30_000;
      while ((await valueAt(edge, "before")) !== undefined) {
        if (Date.now() > again) assert.fail(`the alarm did not resume:\n${workerd.log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await workerd?.stop();
      await server.close();
      await kv.close();
      scratch.cleanup();
    }
  },
);
