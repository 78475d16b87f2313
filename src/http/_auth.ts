// Who may write: with a token, whoever presents it; without one, only requests to a
// server bound to loopback, addressed by a loopback name (which also turns away DNS
// rebinding: a page of another site resolved to 127.0.0.1 still sends its own Host).
import type { MiddlewareHandler } from "hono";
import { problem } from "./_shared.ts";

/** Whether `host` (a bind address or a URL hostname) is a loopback address or name. */
export function isLoopback(host: string | undefined): boolean {
  if (host === undefined) return false;
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h.endsWith(".localhost") || /^127(\.\d{1,3}){3}$/.test(h) ||
    h === "::1" || /^(0{1,4}:){7}0{0,3}1$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h);
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

/** Middleware guarding write routes and `/gossip`. */
export function writeGuard(
  token: string | undefined,
  hostname: string | undefined,
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
    if (!isLoopback(hostname)) {
      return problem(
        403,
        `Writes are disabled: no token is configured and the server is bound to ${
          hostname ?? "an unknown address"
        }, not loopback. Configure a token (the inspector's token option) and send ` +
          "Authorization: Bearer <token>, or bind to a loopback address such as 127.0.0.1",
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
