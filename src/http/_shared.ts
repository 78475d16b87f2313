// Helpers shared by the inspector's routes: problem responses (RFC 9457), bounded body
// reading, and the keys under which `serve()` hands handlers its closing signal and the
// address it is bound to.
import type { Context } from "hono";
import { concatBytes } from "../wire/cbor.ts";

/**
 * Key under which `serve()` puts, in each request's env, the `AbortSignal` its handlers
 * should watch: aborted when the server closes or the client goes away.
 */
export const SIGNAL = "gossipKvSignal";

/**
 * Key under which `serve()` puts, in each request's env, the address it is bound to: the
 * one source of truth for "is this server reachable beyond loopback?".
 */
export const BOUND_HOSTNAME = "gossipKvBoundHostname";

/** The address the server is bound to, as `serve()` says; `undefined` under another server. */
export function boundHostname(c: Context): string | undefined {
  const env = c.env as Record<string, unknown> | undefined;
  const h = env && typeof env === "object" ? env[BOUND_HOSTNAME] : undefined;
  return typeof h === "string" ? h : undefined;
}

/**
 * The signal that ends a long response (an event stream): the one `serve()` provides, or
 * the request's own signal elsewhere (`app.request()`, another server).
 */
export function requestSignal(c: Context): AbortSignal {
  const env = c.env as Record<string, unknown> | undefined;
  const s = env && typeof env === "object" ? env[SIGNAL] : undefined;
  return s instanceof AbortSignal ? s : c.req.raw.signal;
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** An `application/problem+json` response: `{ type, title, status, detail }`. */
export function problem(
  status: number,
  detail: string,
  headers: Record<string, string> = {},
): Response {
  const body = { type: "about:blank", title: TITLES[status] ?? "Error", status, detail };
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...headers, "content-type": "application/problem+json" },
  });
}

/**
 * A body whose stream failed before its end: the client went away, or the server closed the
 * connection while it was closing. The client's doing, not the member's: answered with a 400
 * and not logged as a failure.
 */
export class IncompleteBody extends Error {
  override name = "IncompleteBody";
}

/**
 * Reads the body of a request or a response, of at most `limit` bytes; `null` when it is
 * larger (checked on the declared length first, then while reading, so an oversized body is
 * never buffered, and its stream is cancelled). Throws {@linkcode IncompleteBody} when the
 * stream fails before its end.
 */
export async function readBody(
  message: Request | Response,
  limit: number,
): Promise<Uint8Array | null> {
  const declared = Number(message.headers.get("content-length") ?? 0);
  if (declared > limit) {
    await message.body?.cancel().catch(() => {});
    return null;
  }
  if (!message.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = message.body.getReader();
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new IncompleteBody(`The body ended after ${size} bytes: ${reason}`, { cause: error });
    }
    const { done, value } = chunk;
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return concatBytes(chunks);
}
