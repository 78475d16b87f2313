// createInspector(): the Hono app over a GossipKV. Routes are listed in README.md
// ("Look inside a running member (HTTP)"); helpers live in the _*.ts files beside this one.
import { Hono } from "hono";
import type { GossipKV } from "../gossip_kv.ts";
import type { HttpTransport } from "../transport/http.ts";
import { hostGuard, writeGuard } from "./_auth.ts";
import { dashboardCsp, dashboardPage } from "./_dashboard.ts";
import { edgeRoute } from "./_edge.ts";
import { metricsText } from "./_metrics.ts";
import { IncompleteBody, problem, requestSignal } from "./_shared.ts";
import { StreamHub } from "./_streams.ts";
import { gossipRoute, usrRoutes } from "./_write.ts";

/** Options of {@linkcode createInspector}. */
export interface InspectorOptions {
  /**
   * Bearer token that write routes and `POST /gossip` require. Default (or `undefined`):
   * none, and then writes are accepted on a server bound to loopback only.
   */
  token?: string | undefined;
  /**
   * The address the server is bound to, when it is not served by `serve()`. Without a
   * token, writes are accepted only when the server is bound to a loopback address
   * (`127.0.0.1`, `::1`, `localhost`). `serve()` hands every request the address it is
   * bound to, which wins over this option: with `serve()`, leave it out. Default: the
   * address `serve()` tells, else unknown (no writes without a token).
   */
  hostname?: string | undefined;
  /** The member's HTTP transport, fed by `POST /gossip`. Default: none (the route answers 404). */
  gossip?: HttpTransport | undefined;
  /** Largest request body, in bytes; larger ones get 413. Default 1 MiB. */
  maxBodyBytes?: number | undefined;
  /** Period of the comment lines that keep `GET /events` streams open, in ms. Default 15,000. */
  heartbeatMs?: number | undefined;
  /**
   * Long responses (`GET /events` streams and `GET /state` bodies) open at once; more get
   * 503 with `Retry-After`. Default 512.
   */
  maxStreams?: number | undefined;
  /**
   * Bytes an event stream may leave unread; a client further behind is disconnected (an
   * `EventSource` reconnects, and can re-read `/state`). One event is always let through,
   * however large. Default 4 MiB.
   */
  maxStreamBacklogBytes?: number | undefined;
  /**
   * Bytes all long responses may hold together: event backlogs (counted per stream) and
   * the `/state` versions still being read. Past it, the stream furthest behind is
   * disconnected, and a `/state` that needs a new version gets 503. Default 64 MiB.
   */
  maxStreamBytes?: number | undefined;
  /** A long response that takes nothing for this long while bytes wait is cut, in ms. Default 30,000. */
  streamStallMs?: number | undefined;
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
  const positive = (name: string, value: number | undefined, fallback: number) => {
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
    return value;
  };
  const streams = new StreamHub(kv, {
    heartbeatMs,
    maxStreams: positive("maxStreams", options.maxStreams, 512),
    maxBacklogBytes: positive("maxStreamBacklogBytes", options.maxStreamBacklogBytes, 4 << 20),
    maxBufferedBytes: positive("maxStreamBytes", options.maxStreamBytes, 64 << 20),
    stallMs: positive("streamStallMs", options.streamStallMs, 30_000),
  });
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
  app.use(hostGuard(token, hostname));

  app.get("/healthz", (c) => {
    const alive = kv.members().filter((m) => m.status === "alive").length;
    const failure = kv.storageFailure;
    if (failure) {
      // Not ready: a load balancer should send writes elsewhere until the storage recovers.
      const storage = failure.message;
      return c.json({ ok: false, id: kv.id, members: alive, keys: kv.size, storage }, 503);
    }
    return c.json({ ok: true, id: kv.id, members: alive, keys: kv.size });
  });

  app.get("/state", (c) => {
    const etag = stateTag(kv);
    const match = c.req.header("if-none-match");
    if (match && (match === "*" || match.split(/\s*,\s*/).includes(etag))) {
      return c.body(null, 304, { etag });
    }
    return streams.state(etag, () => JSON.stringify(kv.snapshot()), requestSignal(c));
  });

  usrRoutes(app, kv, guard, limit, allow);

  app.get("/members", (c) => c.json(kv.members().map((m) => ({ ...m, self: m.id === kv.id }))));
  app.get("/sync", (c) => c.json(kv.syncStatus()));
  app.get("/events", (c) => streams.events(c.req.query("prefix") ?? "", requestSignal(c)));
  app.get("/metrics", (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(metricsText(kv, gossip, streams.stats));
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

  gossipRoute(app, gossip, guard, limit, allow, token !== undefined);
  edgeRoute(app, kv, guard, limit, allow);

  app.notFound((c) => problem(404, `No route ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((error) => {
    if (error instanceof IncompleteBody) return problem(400, error.message);
    console.error("gossip-kv inspector:", error);
    return problem(500, "The request failed inside the member; see its log");
  });
  return app;
}
