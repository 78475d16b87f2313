/**
 * Look inside a running member over HTTP, and let members without UDP gossip over it.
 *
 * {@linkcode createInspector} makes a [Hono](https://hono.dev) app over a `GossipKV`:
 * `GET /healthz`, `/state`, `/usr`, `/usr/:key`, `/members`, `/sync`, `/metrics`
 * (Prometheus), `/events` (Server-Sent Events) and `/` (a live dashboard); `PUT` and
 * `DELETE /usr/:key` to change data; `POST /gossip` to feed an `HttpTransport`.
 * {@linkcode serve} runs it with the runtime's own server (Deno, Bun or Node).
 *
 * Writes and `/gossip` need `Authorization: Bearer <token>` when a token is configured;
 * without a token, they are accepted only on a server bound to loopback (`serve()` binds
 * `127.0.0.1` by default, and tells the inspector where it is bound).
 *
 * @example A member with its inspector on http://127.0.0.1:8080
 * ```ts
 * import { GossipKV, MemoryNetwork } from "@gossip-kv/gossip-kv";
 * import { createInspector, serve } from "@gossip-kv/gossip-kv/http";
 *
 * const kv = await GossipKV.start({ id: "a", transport: new MemoryNetwork().transport("a") });
 * const controller = new AbortController();
 * const server = await serve(createInspector(kv), { port: 8080, signal: controller.signal });
 * console.log(`dashboard: ${server.url}/`);
 * controller.abort(); // or: await server.close()
 * await kv.close();
 * ```
 *
 * @module
 */

export { createInspector } from "./inspector.ts";
export type { Inspector, InspectorOptions } from "./inspector.ts";
export { serve } from "./serve.ts";
export type { FetchApp, ServeOptions, Server } from "./serve.ts";
export type { HttpTransport, HttpTransportStats } from "../transport/http.ts";
// The core API's types (GossipKV and what its signatures use), so that the documentation
// of this entry is complete however the core grows.
export type * from "../../mod.ts";
