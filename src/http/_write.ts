// The routes that change state: /usr (reads too, to keep the key handling in one place)
// and POST /gossip. Every check comes before the first change, so a refused request
// changes nothing.
import type { Context, Hono, MiddlewareHandler } from "hono";
import type { GossipKV } from "../gossip_kv.ts";
import { toJson } from "../json.ts";
import type { HttpTransport } from "../transport/http.ts";
import { problem, readBody } from "./_shared.ts";

/** Registers a 405 answer for the other methods of `path`. */
export type Allow = (path: string, methods: string) => void;

const MAX_LIST = 10_000;

/**
 * Why `key` is outside the HTTP API's key grammar, or `undefined`: one or more segments
 * joined by "/", none empty, none "." or ".." (URLs resolve those away, so such a key
 * could name another route or key), and no backslash (URL parsers read a raw one as "/")
 * or control character.
 */
export function keyGrammarError(key: string): string | undefined {
  if (key === "") return "The key must be a non-empty string";
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) return "The key contains a control character";
  if (key.includes("\\")) return "The key contains a backslash, which URLs read as a slash";
  for (const segment of key.split("/")) {
    if (segment === "") return "The key has an empty segment (a leading, trailing or double /)";
    if (segment === "." || segment === "..") {
      return `The key has a "${segment}" segment, which URLs resolve away`;
    }
  }
  return undefined;
}

function keyOf(c: Context): string | Response {
  // The path as received, still percent-encoded (a parsed URL would have resolved dot
  // segments, and Hono's path is partly decoded).
  const url = c.req.url;
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const end = url.search(/[?#]/);
  const path = url.slice(start, end < 0 ? undefined : end);
  const at = path.indexOf("/usr/");
  const raw = at < 0 ? "" : path.slice(at + 5);
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    return problem(400, `The key ${JSON.stringify(raw)} is not valid percent-encoding`);
  }
  const error = keyGrammarError(key);
  return error ? problem(400, `${error}: ${JSON.stringify(key)}`) : key;
}

/** 503 while the storage cannot make writes durable: nothing is applied. */
const storageFailing = (failure: Error) =>
  problem(
    503,
    `Writes are refused while the storage is failing (${failure.message}); nothing was applied`,
    { "retry-after": "5" },
  );

/** 503 when the storage failed while writing this very request. */
const storageFailedDuring = (failure: Error) =>
  problem(
    503,
    `The storage failed while writing (${failure.message}): the write was applied and ` +
      "gossiped, but is not durable on this member",
    { "retry-after": "5" },
  );

/** 413, closing the connection: the rest of the body is unread, so it cannot be reused. */
const tooLarge = (detail: string) => problem(413, detail, { connection: "close" });

/** GET /usr, and GET, PUT and DELETE /usr/:key (the key percent-encoded, slashes allowed). */
export function usrRoutes(
  app: Hono,
  kv: GossipKV,
  guard: MiddlewareHandler,
  limit: number,
  allow: Allow,
): void {
  app.get("/usr", (c) => {
    const prefix = c.req.query("prefix") ?? "";
    const max = Math.min(MAX_LIST, Number(c.req.query("limit") ?? 1000));
    if (!Number.isInteger(max) || max < 0) {
      return problem(400, `limit must be an integer from 0 to ${MAX_LIST}`);
    }
    const keys = kv.keys({ prefix }).sort();
    const entries = keys.slice(0, max).map((key) => {
      const v = kv.version(key)!;
      return { key, value: toJson(kv.get(key)), writer: v.writer, wall: v.wall };
    });
    return c.json({ entries, truncated: keys.length > max });
  });
  allow("/usr", "GET");

  app.get("/usr/*", (c) => {
    const key = keyOf(c);
    if (typeof key !== "string") return key;
    if (!kv.has(key)) return problem(404, `No key ${JSON.stringify(key)} (absent or deleted)`);
    return c.json(toJson(kv.get(key)));
  });

  app.put("/usr/*", guard, async (c) => {
    const key = keyOf(c);
    if (typeof key !== "string") return key;
    if (kv.closed) return problem(503, `Member ${kv.id} is closed`);
    if (kv.storageFailure) return storageFailing(kv.storageFailure);
    const body = await readBody(c.req.raw, limit);
    if (!body) return tooLarge(`The body exceeds the limit of ${limit} bytes`);
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
    } catch (error) {
      return problem(400, `The body is not valid JSON: ${(error as Error).message}`);
    }
    try {
      await kv.set(key, value);
    } catch (error) {
      if (error instanceof RangeError) return problem(413, error.message);
      if (error instanceof TypeError) return problem(400, error.message);
      if (kv.storageFailure) return storageFailedDuring(kv.storageFailure);
      throw error;
    }
    return c.body(null, 204);
  });

  app.delete("/usr/*", guard, async (c) => {
    const key = keyOf(c);
    if (typeof key !== "string") return key;
    if (kv.closed) return problem(503, `Member ${kv.id} is closed`);
    if (kv.storageFailure) return storageFailing(kv.storageFailure);
    try {
      await kv.delete(key);
    } catch (error) {
      if (error instanceof TypeError) return problem(400, error.message);
      if (kv.storageFailure) return storageFailedDuring(kv.storageFailure);
      throw error;
    }
    return c.body(null, 204);
  });
  allow("/usr/*", "GET, PUT and DELETE");
}

/**
 * POST /gossip: a datagram for the member's HTTP transport. `authenticated`: a token is
 * configured, so every request that passes `guard` bore it.
 */
export function gossipRoute(
  app: Hono,
  gossip: HttpTransport | undefined,
  guard: MiddlewareHandler,
  limit: number,
  allow: Allow,
  authenticated = false,
): void {
  app.post("/gossip", guard, async (c) => {
    if (!gossip) {
      return problem(
        404,
        "This member does not gossip over HTTP (start it with an HttpTransport " +
          "and pass it to createInspector as the gossip option)",
      );
    }
    const body = await readBody(c.req.raw, limit);
    if (!body) return tooLarge(`The datagram exceeds the limit of ${limit} bytes`);
    try {
      // With a token, the guard let only requests bearing it through: the sender is a peer.
      if (!gossip.receive(body, c.req.raw.headers, authenticated)) {
        return problem(503, "The HTTP transport is closed or not listening");
      }
    } catch (error) {
      if (error instanceof TypeError) return problem(400, error.message);
      throw error;
    }
    return c.body(null, 204);
  });
  allow("/gossip", "POST");
}
