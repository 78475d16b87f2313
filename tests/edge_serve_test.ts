// The same edge replica under `deno serve` (the shape of a Deno Deploy app: a module whose
// default export has a fetch handler) and under Bun.serve, against a member's HTTP API.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, serve } from "../src/http/mod.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import {
  bin,
  freePort,
  Proc,
  scratchDir,
  sleep,
  SLOW,
  valueAt,
  waitHttp,
  workerSource,
  writeAt,
} from "./_edge.ts";

const TOKEN = "serve-edge-token";
const STALE_MS = 300;

const SERVERS = {
  "deno serve": (dir: string, port: number) => {
    writeFileSync(join(dir, "app.ts"), workerSource([UPSTREAM.url], TOKEN, STALE_MS));
    return new Proc("deno serve", [
      bin("deno"),
      "serve",
      "--allow-net",
      "--allow-read",
      `--host=127.0.0.1`,
      `--port=${port}`,
      join(dir, "app.ts"),
    ]);
  },
  "Bun.serve": (dir: string, port: number) => {
    writeFileSync(
      join(dir, "app.ts"),
      workerSource([UPSTREAM.url], TOKEN, STALE_MS).replace(
        /export default (.*);\n$/,
        `Bun.serve({ hostname: "127.0.0.1", port: ${port}, fetch: $1.fetch });\n`,
      ),
    );
    return new Proc("Bun.serve", [bin("bun"), join(dir, "app.ts")]);
  },
};

const UPSTREAM = { url: "" };

for (const [name, start] of Object.entries(SERVERS)) {
  test(
    `the replica under ${name}: a member's write is read after one sync, its own writes and deletes reach the member, a wrong token is refused`,
    SLOW,
    async () => {
      const kv = await GossipKV.start({ id: "up", transport: new MemoryNetwork().transport("up") });
      const server = await serve(createInspector(kv, { token: TOKEN }), { hostname: "127.0.0.1" });
      UPSTREAM.url = server.url;
      const scratch = scratchDir();
      const port = await freePort("tcp");
      const edge = `http://127.0.0.1:${port}`;
      const proc = start(scratch.dir, port);
      try {
        await waitHttp(`${edge}/nowhere`, proc);
        assert.equal(await valueAt(edge, "k"), undefined);
        await kv.set("k", "from the member");
        await sleep(STALE_MS + 10);
        assert.equal(await valueAt(edge, "k"), "from the member");

        assert.equal(await writeAt(edge, "e", [1, 2], TOKEN), 204);
        assert.deepEqual(kv.get("e"), [1, 2], "the member has it at the ack");
        assert.equal(await writeAt(edge, "k", undefined, TOKEN), 204);
        assert.equal(kv.has("k"), false);
        assert.equal(await valueAt(edge, "k"), undefined);

        assert.equal(await writeAt(edge, "e", "intruder", "wrong"), 401);
        assert.deepEqual(kv.get("e"), [1, 2]);
        assert.deepEqual(await valueAt(edge, "e"), [1, 2]);
        assert.deepEqual(kv.members().map((m) => m.id), ["up"]);
      } catch (error) {
        throw new Error(`${(error as Error).message}\n${proc.log}`, { cause: error });
      } finally {
        await proc.stop();
        await server.close();
        await kv.close();
        scratch.cleanup();
      }
    },
  );
}
