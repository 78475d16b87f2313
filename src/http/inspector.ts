// createInspector(): the Hono app over a GossipKV. Routes are listed in README.md
// ("Look inside a running member (HTTP)"); helpers live in the _*.ts files beside this one.
import { Hono } from "hono";
import type { GossipKV } from "../gossip_kv.ts";
import type { HttpTransport } from "../transport/http.ts";
import { writeGuard } from "./_auth.ts";
import { dashboardCsp, dashboardPage } from "./_dashboard.ts";
import { edgeRoute } from "./_edge.ts";
import { eventStream } from "./_events.ts";
import { metricsText } from "./_metrics.ts";
import { problem } from "./_shared.ts";
import { gossipRoute, usrRoutes } from "./_write.ts";

/** Options of {@linkcode createInspector}. */
export interface InspectorOptions {
  /** Bearer token that write routes and `POST /gossip` require. Default: none (see `hostname`). */
  token?: string;
  /**
   * The address the server is bound to. Without a token, writes are accepted only when it
   * is a loopback address (`127.0.0.1`, `::1`, `localhost`). Default: unknown, so no writes
   * without a token.
   */
  hostname?: string;
  /** The member's HTTP transport, fed by `POST /gossip`. Default: none (the route answers 404). */
  gossip?: HttpTransport;
  /** Largest request body, in bytes; larger ones get 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Period of the comment lines that keep `GET /events` streams open, in ms. Default 15,000. */
  heartbeatMs?: number;
}

/**
 * The inspector: a Hono app, typed by what its callers use. Serve it with `serve()` (or
 * any server that takes a fetch handler), call it without a server with `request()`, or
 * mount it in another Hono app: `parent.mount("/inspect", inspector.fetch)`.
 */
export interface Inspector {
  /** Answers one request, as servers call it; `env` carries runtime bindings. */
  fetch(request: Request, env?: unknown): Response | Promise<Response>;
  /** Answers a request given as a path (`"/healthz"`), URL or `Request`, without a server. */
  request(input: string | URL | Request, init?: RequestInit): Response | Promise<Response>;
}

function randomNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes));
}

function stateTag(kv: GossipKV): string {
  // The Merkle root covers the data; member statuses are not in it, so they are hashed in.
  let h = 0x811c9dc5;
  for (const m of kv.members()) {
    for (const ch of `${m.id}\0${m.status}\0${m.incarnation}\0${m.address}\n`) {
      h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
    }
  }
  return `"${kv.syncStatus().root}-${(h >>> 0).toString(16).padStart(8, "0")}"`;
}

/**
 * A Hono app to look inside a running member and change it: JSON routes, Prometheus
 * metrics, a Server-Sent Events stream, a live HTML dashboard at `/`, and `POST /gossip`
 * for an {@linkcode HttpTransport}. Serve it with `serve()`, or mount it in your own app.
 *
 * @example Read and write through the app, without a server
 * ```ts
 * import { GossipKV, MemoryNetwork } from "@gossip-kv/gossip-kv";
 * import { createInspector } from "@gossip-kv/gossip-kv/http";
 *
 * const kv = await GossipKV.start({ id: "a", transport: new MemoryNetwork().transport("a") });
 * const app = createInspector(kv, { token: "secret" });
 * const put = await app.request("/usr/greeting", {
 *   method: "PUT",
 *   headers: { authorization: "Bearer secret", "content-type": "application/json" },
 *   body: JSON.stringify("hello"),
 * });
 * console.log(put.status, kv.get("greeting")); // 204 "hello"
 * console.log(await (await app.request("/healthz")).json()); // { ok: true, id: "a", ... }
 * await kv.close();
 * ```
 */
export function createInspector(kv: GossipKV, options: InspectorOptions = {}): Inspector {
  const { token, hostname, gossip } = options;
  if (token !== undefined && (typeof token !== "string" || token === "" || /\s/.test(token))) {
    throw new TypeError("token must be a non-empty string without spaces");
  }
  const limit = options.maxBodyBytes ?? 1024 * 1024;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const guard = writeGuard(token, hostname);
  const app = new Hono();
  const allow = (path: string, methods: string) =>
    app.all(
      path,
      () =>
        problem(405, `${path} accepts ${methods} only`, { allow: methods.replace(/ and /, ", ") }),
    );

  app.use(async (c, next) => {
    await next();
    c.res.headers.set("x-content-type-options", "nosniff");
  });

  app.get("/healthz", (c) => {
    const alive = kv.members().filter((m) => m.status === "alive").length;
    return c.json({ ok: true, id: kv.id, members: alive, keys: kv.size });
  });

  app.get("/state", (c) => {
    const etag = stateTag(kv);
    const match = c.req.header("if-none-match");
    if (match && (match === "*" || match.split(/\s*,\s*/).includes(etag))) {
      return c.body(null, 304, { etag });
    }
    c.header("etag", etag);
    c.header("cache-control", "no-cache");
    return c.json(kv.snapshot());
  });

  usrRoutes(app, kv, guard, limit, allow);

  app.get("/members", (c) => c.json(kv.members().map((m) => ({ ...m, self: m.id === kv.id }))));
  app.get("/sync", (c) => c.json(kv.syncStatus()));
  app.get("/events", (c) => eventStream(c, kv, heartbeatMs));
  app.get("/metrics", (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(metricsText(kv, gossip));
  });
  app.get("/", (c) => {
    const nonce = randomNonce();
    c.header("content-security-policy", dashboardCsp(nonce));
    c.header("cache-control", "no-store");
    return c.html(dashboardPage(kv.id, nonce));
  });
  for (const path of ["/healthz", "/state", "/members", "/sync", "/events", "/metrics", "/"]) {
    allow(path, "GET");
  }

  gossipRoute(app, gossip, guard, limit, allow);
  edgeRoute(app, kv, guard, limit, allow);

  app.notFound((c) => problem(404, `No route ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((error) => {
    console.error("gossip-kv inspector:", error);
    return problem(500, "The request failed inside the member; see its log");
  });
  return app;
}
