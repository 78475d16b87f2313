// serve(): listens with the runtime's own HTTP server, picked by feature detection:
// Deno.serve, Bun.serve, or @hono/node-server on Node. The runtime globals are declared
// in src/_runtime.ts, instead of depending on each runtime's type package.
import type { Server as NodeServer } from "node:http";
import type { Socket } from "node:net";
import { type BunGlobal, bunGlobal, type DenoGlobal, denoGlobal } from "../_runtime.ts";
import { BOUND_HOSTNAME, SIGNAL } from "./_shared.ts";
import { guard } from "./_deno_guard.ts";

/** Anything with a fetch handler, such as a Hono app. */
export interface FetchApp {
  /** Answers one request; `env` carries runtime bindings. */
  fetch(request: Request, env?: unknown): Response | Promise<Response>;
}

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /**
   * Address to bind. Default `"127.0.0.1"` (loopback). The inspector learns it from each
   * request, so that it accepts writes without a token on loopback only.
   */
  hostname?: string | undefined;
  /** Port to bind; 0 picks a free one (see {@linkcode Server.port}). Default 0. */
  port?: number | undefined;
  /** Closes the server when aborted. */
  signal?: AbortSignal | undefined;
  /**
   * A connection must send a complete request head within this, in ms, or it is closed
   * (slowloris). Node: every request (`headersTimeout`); Deno: the first request of a
   * connection, later ones fall under `idleTimeoutMs`, and the time its own event loop was
   * stalled is not counted (a head that came meanwhile waited unread); Bun has no such
   * timeout, its idle timeout covers a connection that goes silent. Default 10 s.
   */
  headersTimeoutMs?: number | undefined;
  /**
   * A connection that moves no byte for this long is closed, in ms; keep it above the
   * event streams' heartbeat (15 s). Node: between requests (`keepAliveTimeout`); Bun:
   * `idleTimeout`, whole seconds up to 255. Default 60 s.
   */
  idleTimeoutMs?: number | undefined;
  /** Connections open at most; more are closed at once (Deno and Node). Default 4,096. */
  maxConnections?: number | undefined;
}

/** Connection limits of {@linkcode serve}, resolved. */
interface Limits {
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
}

/** A running server. */
export interface Server {
  /** The address it is bound to. */
  readonly hostname: string;
  /** The port it is bound to (the one picked, when asked for 0). */
  readonly port: number;
  /** `http://hostname:port`, with IPv6 addresses in brackets. */
  readonly url: string;
  /**
   * Ends open event streams and stops listening; requests in flight get 2 s to finish, then
   * their connections are dropped. Idempotent.
   */
  close(): Promise<void>;
}

/** How long requests in flight may take to finish once the server is closing, in ms. */
const GRACE_MS = 2_000;

/** Answers a request; `signal` ends long responses (aborted on close or disconnect). */
type Handler = (request: Request, signal: AbortSignal) => Response | Promise<Response>;
type RawHandler = (request: Request) => Response | Promise<Response>;
interface Listening {
  port: number;
  stop(): Promise<void>;
}

/** Waits for `stopped`; after a grace period, calls `force` and waits for what it returns. */
async function graceful(stopped: Promise<void>, force: () => unknown): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => resolve(Promise.resolve(force()).then(() => {})), GRACE_MS);
  });
  try {
    await Promise.race([stopped, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Throws unless a few file descriptors can be opened (Deno, when it may read /dev/null). */
function descriptorsFree(deno: DenoGlobal): void {
  const files: { close(): void }[] = [];
  if (!deno.openSync) return;
  try {
    for (let i = 0; i < 16; i++) files.push(deno.openSync("/dev/null"));
  } catch (error) {
    if (!(error instanceof Error && /NotCapable|PermissionDenied/.test(error.name))) throw error;
  } finally {
    for (const f of files) f.close();
  }
}

/**
 * Sets up Deno's signal handling now, while descriptors are free: Deno 2 (ext/signals) opens
 * its signal pipe when a listener is first added, by the runtime itself too (after the
 * accept loop failed, say), and panics, uncatchable, when no descriptor is left for it.
 * SIGWINCH is ignored by default, so listening to it for an instant changes nothing.
 */
function signalsReady(deno: DenoGlobal): void {
  if (!deno.addSignalListener || !deno.removeSignalListener) return;
  const noop = () => {};
  try {
    deno.addSignalListener("SIGWINCH", noop);
    deno.removeSignalListener("SIGWINCH", noop);
  } catch {
    // No signals here (Windows, a sandbox): nothing to prepare.
  }
}

function listenDeno(
  deno: DenoGlobal,
  serve: NonNullable<DenoGlobal["serve"]>,
  hostname: string,
  port: number,
  h: Handler,
  closing: AbortSignal,
  limits: Limits,
): Listening {
  // Deno.serve has no header or idle timeout: the guard listens in its place and relays to
  // it on loopback.
  const guarded = typeof deno.listen === "function" && typeof deno.connect === "function";
  // Deno cancels the response body when the client goes away; reading request.signal would
  // only earn a warning (it also aborts after every successful response, in Deno 2).
  // https://docs.deno.com/go/unstable-no-legacy-abort
  signalsReady(deno);
  let inFlight = 0;
  let drained = () => {};
  const handler = (request: Request, info: { completed: Promise<void> }) => {
    inFlight++;
    const done = () => --inFlight === 0 && drained();
    info.completed.then(done, done);
    return h(request, closing);
  };
  // shutdown() waits for every request, however slow; aborting the signal drops them all
  // (and cannot follow a shutdown()): so wait for the requests first, then pick one.
  const force = new AbortController();
  let stopping = false;
  let delay = 50;
  // The guard relays to the server through a Unix socket in a directory of its own: not
  // reachable around the guard, and with small socket buffers (loopback TCP would double
  // what the kernel holds for a client that does not read). TCP on loopback without the
  // permission to create it.
  let socketDir: string | undefined;
  if (guarded) {
    try {
      socketDir = deno.makeTempDirSync?.({ prefix: "gossip-kv-http-" });
    } catch {
      socketDir = undefined;
    }
  }
  let path = socketDir === undefined ? undefined : `${socketDir}/http.sock`;
  const removeSocketDir = () => {
    if (socketDir === undefined) return;
    try {
      deno.removeSync?.(socketDir, { recursive: true });
    } catch {
      // removed already
    }
  };
  const listen = (at: number) => {
    if (path !== undefined) {
      try {
        deno.removeSync?.(path, { recursive: false });
      } catch {
        // not there (yet)
      }
    }
    const server = serve({
      ...(path !== undefined ? { path } : { hostname: guarded ? "127.0.0.1" : hostname, port: at }),
      onListen: () => {},
      handler,
      signal: force.signal,
    });
    // Out of file descriptors, Deno's accept loop fails and `finished` rejects (unhandled,
    // that ends the process): listen again on the same port once descriptors are back.
    server.finished.catch((error) => {
      if (stopping) return;
      const retry = () => {
        if (stopping) return;
        try {
          // Deno.serve panics (it cannot be caught) when it finds no descriptor free: make
          // sure a few are before listening again.
          descriptorsFree(deno);
          current = listen(current.addr.port);
          delay = 50;
          // Logged once listening again: writing to a pipe while out of descriptors can
          // itself fail inside Deno.
          console.error(`gossip-kv http: the server stopped (${error}); listening again`);
        } catch {
          delay = Math.min(delay * 2, 2_000);
          setTimeout(retry, delay);
        }
      };
      setTimeout(retry, delay);
    });
    return server;
  };
  let current: ReturnType<typeof listen>;
  try {
    current = listen(guarded ? 0 : port);
  } catch (error) {
    if (path === undefined) throw error;
    // No permission to listen on (or connect to) the socket: loopback TCP instead.
    removeSocketDir();
    socketDir = path = undefined;
    current = listen(0);
  }
  const front = guarded
    ? guard(
      deno,
      hostname,
      port,
      () =>
        path !== undefined
          ? { transport: "unix", path }
          : { hostname: "127.0.0.1", port: current.addr.port },
      limits,
    )
    : undefined;
  const stopInner = async () => {
    if (inFlight > 0) await graceful(new Promise<void>((resolve) => drained = resolve), () => {});
    if (inFlight === 0) return await current.shutdown();
    force.abort();
    await current.finished.catch(() => {});
  };
  const stop = async () => {
    stopping = true;
    front?.stopAccepting();
    try {
      await stopInner();
    } finally {
      // The server has stopped: what it sent last (the end of a stream) is still on its way.
      await front?.closeAll(GRACE_MS);
      removeSocketDir();
    }
  };
  return { port: front ? front.port : current.addr.port, stop };
}

function listenBun(
  serve: NonNullable<BunGlobal["serve"]>,
  hostname: string,
  port: number,
  h: Handler,
  closing: AbortSignal,
  limits: Limits,
): Listening {
  // Bun closes connections idle for 10 s by default, event streams included: the idle
  // timeout, above the heartbeat period. https://bun.sh/docs/api/http#idletimeout
  const idleTimeout = Math.min(255, Math.max(1, Math.ceil(limits.idleTimeoutMs / 1000)));
  const fetch = (request: Request, server: { timeout?(r: Request, s: number): void }) => {
    // Bun's idle timeout counts what the client sends: an event stream, which only receives,
    // is exempt (the inspector cuts stalled streams itself).
    if (request.headers.get("accept")?.includes("text/event-stream")) server.timeout?.(request, 0);
    return h(request, AbortSignal.any([closing, request.signal]));
  };
  const server = serve({ hostname, port, idleTimeout, fetch });
  return { port: server.port, stop: () => graceful(server.stop(false), () => server.stop(true)) };
}

async function listenNode(
  hostname: string,
  port: number,
  h: Handler,
  closing: AbortSignal,
  limits: Limits,
): Promise<Listening> {
  const { serve } = await import("@hono/node-server");
  const fetch = (request: Request) => h(request, AbortSignal.any([closing, request.signal]));
  const { headersTimeoutMs, idleTimeoutMs } = limits;
  const server = serve({
    fetch,
    hostname,
    port,
    serverOptions: {
      headersTimeout: headersTimeoutMs,
      // The whole request (not the response): at least the head's time, 5 min by default.
      requestTimeout: Math.max(300_000, headersTimeoutMs),
      keepAliveTimeout: idleTimeoutMs,
      // How often the timeouts above are checked (30 s by default).
      connectionsCheckingInterval: Math.max(10, Math.min(headersTimeoutMs / 4, 30_000)),
    },
  }) as NodeServer;
  server.maxConnections = limits.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  // Sockets with no response in progress, closed at once on stop(): closeIdleConnections()
  // misses sockets that never carried a request (undici opens such spares).
  const sockets = new Map<Socket, number>();
  server.on("connection", (socket) => {
    sockets.set(socket, 0);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("request", (req, res) => {
    sockets.set(req.socket, (sockets.get(req.socket) ?? 0) + 1);
    res.once("close", () => {
      const n = sockets.get(req.socket);
      if (n !== undefined) sockets.set(req.socket, n - 1);
      if (!server.listening && n === 1) req.socket.destroy();
    });
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : port,
    stop: () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const [socket, active] of sockets) if (active === 0) socket.destroy();
      return graceful(stopped, () => {
        server.closeAllConnections();
        return stopped;
      });
    },
  };
}

/**
 * Serves `app` (a Hono app, or anything with `fetch`) with the runtime's own server:
 * `Deno.serve`, `Bun.serve`, or `@hono/node-server` on Node. Resolves once listening.
 *
 * @example Serve the inspector of a member on a free port
 * ```ts
 * import { GossipKV, MemoryNetwork } from "@gossip-kv/gossip-kv";
 * import { createInspector, serve } from "@gossip-kv/gossip-kv/http";
 *
 * const kv = await GossipKV.start({ id: "a", transport: new MemoryNetwork().transport("a") });
 * const server = await serve(createInspector(kv), { port: 0 }); // on 127.0.0.1
 * const health = await fetch(`${server.url}/healthz`);
 * console.log(await health.json()); // { ok: true, id: "a", members: 1, keys: 0 }
 * await server.close();
 * await kv.close();
 * ```
 */
export async function serve(app: FetchApp, options: ServeOptions = {}): Promise<Server> {
  const hostname = options.hostname ?? "127.0.0.1";
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port must be an integer from 0 to 65535, got ${port}`);
  }
  options.signal?.throwIfAborted();
  const limit = (name: keyof Limits, fallback: number) => {
    const v = options[name] ?? fallback;
    if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) {
      throw new RangeError(`${name} must be a positive number, got ${String(v)}`);
    }
    return v;
  };
  const limits: Limits = {
    headersTimeoutMs: limit("headersTimeoutMs", 10_000),
    idleTimeoutMs: limit("idleTimeoutMs", 60_000),
    maxConnections: limit("maxConnections", 4_096),
  };
  const closing = new AbortController();
  // The bound address travels with each request, so that the inspector's write guard
  // knows it without being told twice.
  const handler: Handler = (request, signal) =>
    app.fetch(request, { [SIGNAL]: signal, [BOUND_HOSTNAME]: hostname });
  const deno = denoGlobal(), bun = bunGlobal();
  const listening = typeof deno?.serve === "function"
    ? listenDeno(deno, deno.serve.bind(deno), hostname, port, handler, closing.signal, limits)
    : typeof bun?.serve === "function"
    ? listenBun(bun.serve.bind(bun), hostname, port, handler, closing.signal, limits)
    : await listenNode(hostname, port, handler, closing.signal, limits);
  let closed: Promise<void> | undefined;
  const close = () => {
    options.signal?.removeEventListener("abort", close);
    closing.abort(); // ends event streams first, so that the server can drain
    return closed ??= listening.stop();
  };
  options.signal?.addEventListener("abort", close, { once: true });
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return { hostname, port: listening.port, url: `http://${host}:${listening.port}`, close };
}
