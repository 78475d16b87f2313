// Who may write: with a token, whoever presents it; without one, only requests to a
// server bound to loopback, addressed by a loopback name (which also turns away DNS
// rebinding: a page of another site resolved to 127.0.0.1 still sends its own Host).
import type { MiddlewareHandler } from "hono";
import { isLoopback } from "../core/address.ts";
import { boundHostname, problem } from "./_shared.ts";

/** host, IPv4 or [IPv6], with an optional port: what a Host header may hold. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(?::\d{1,5})?$/;

/** The host name of a Host header (without port and brackets), or `undefined` if invalid. */
export function hostOf(header: string): string | undefined {
  if (!HOST.test(header)) return undefined;
  return header.startsWith("[") ? header.slice(1, header.indexOf("]")) : header.split(":")[0];
}

/**
 * Middleware for every route: a malformed Host header gets 400 (never a stack trace), and
 * a member without a token bound to loopback answers only requests addressed to a
 * loopback name, reads included: a page of another site that DNS rebinding pointed at
 * 127.0.0.1 still sends its own Host, and must not read the data.
 */
export function hostGuard(
  token: string | undefined,
  hostname: string | undefined,
): MiddlewareHandler {
  const loopbackOnly = token === undefined && isLoopback(hostname);
  return async (c, next) => {
    const header = c.req.header("host");
    let host: string | undefined;
    if (header !== undefined) {
      host = hostOf(header);
      if (host === undefined) return problem(400, "The Host header is not a valid host");
    }
    try {
      host ??= new URL(c.req.url).hostname;
    } catch {
      return problem(400, "The request URL is not valid");
    }
    if (loopbackOnly && !isLoopback(host)) {
      return problem(
        403,
        `This member has no token and answers only requests addressed to a loopback name ` +
          `(localhost, 127.0.0.1, [::1]), not ${JSON.stringify(host)}; configure a token to ` +
          "serve other names",
      );
    }
    return await next();
  };
}

/** Whether `given` is `token`, compared in constant time. */
export function sameToken(given: string, token: string): boolean {
  // Constant time in the token's length, so timing does not reveal a matching prefix.
  let diff = given.length ^ token.length;
  for (let i = 0; i < token.length; i++) {
    diff |= token.charCodeAt(i) ^ (given.charCodeAt(i % (given.length || 1)) || 0);
  }
  return diff === 0;
}

/**
 * Middleware guarding write routes and `/gossip`. The bound address is the one `serve()`
 * hands each request, else `configured` (the inspector's `hostname` option).
 */
export function writeGuard(
  token: string | undefined,
  configured: string | undefined,
): MiddlewareHandler {
  return async (c, next) => {
    if (token !== undefined) {
      const m = /^Bearer +(\S+) *$/i.exec(c.req.header("authorization") ?? "");
      if (!m) {
        return problem(401, "This route needs an Authorization: Bearer <token> header", {
          "www-authenticate": 'Bearer realm="gossip-kv"',
        });
      }
      if (!sameToken(m[1]!, token)) {
        return problem(401, "The bearer token is not valid for this member", {
          "www-authenticate": 'Bearer realm="gossip-kv", error="invalid_token"',
        });
      }
      return await next();
    }
    const hostname = boundHostname(c) ?? configured;
    if (!isLoopback(hostname)) {
      return problem(
        403,
        `Writes are disabled: no token is configured and the server is bound to ${
          hostname ?? "an unknown address"
        }, not loopback. Configure a token (the inspector's token option) and send ` +
          "Authorization: Bearer <token>, or bind to a loopback address such as 127.0.0.1" +
          (hostname === undefined
            ? " (serve() tells the inspector its address; under another server, give it " +
              "as the inspector's hostname option)"
            : ""),
      );
    }
    if (!isLoopback(new URL(c.req.url).hostname)) {
      return problem(
        403,
        "Writes without a token are accepted only when the request is addressed to a loopback " +
          "name (localhost, 127.0.0.1, [::1]); configure a token to write through another name",
      );
    }
    return await next();
  };
}
