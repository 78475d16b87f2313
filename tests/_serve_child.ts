// A member with its inspector served on a free port, as a child process of
// tests/http_fd_exhaustion_test.ts (run under a low `ulimit -n`). Prints {"port": n}.
import process from "node:process";
import { GossipKV } from "../src/gossip_kv.ts";
import { createInspector, serve } from "../src/http/mod.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";

const kv = await GossipKV.start({ id: "a", transport: new MemoryNetwork().transport("a") });
const server = await serve(createInspector(kv, { hostname: "127.0.0.1" }), { port: 0 });
process.stdout.write(JSON.stringify({ port: server.port }) + "\n");
setInterval(() => kv.size, 60_000);
