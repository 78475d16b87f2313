// POST /edge/sync: the route an edge replica (`./edge`) syncs through. Its body and answer
// are exchanges (src/wire/exchange.ts); the write guard protects it like the write routes.
import type { Hono, MiddlewareHandler } from "hono";
import type { GossipKV } from "../gossip_kv.ts";
import { EXCHANGE_TYPE } from "../wire/exchange.ts";
import { problem, readBody } from "./_shared.ts";
import type { Allow } from "./_write.ts";

/** POST /edge/sync: one request of an edge replica's anti-entropy exchange. */
export function edgeRoute(
  app: Hono,
  kv: GossipKV,
  guard: MiddlewareHandler,
  limit: number,
  allow: Allow,
): void {
  app.post("/edge/sync", guard, async (c) => {
    if (kv.closed) return problem(503, `Member ${kv.id} is closed`);
    const body = await readBody(c.req.raw, limit);
    if (!body) {
      return problem(413, `The exchange exceeds the limit of ${limit} bytes`, {
        connection: "close",
      });
    }
    let reply: Uint8Array | null;
    try {
      reply = await kv.serveReplica(body, limit);
    } catch (error) {
      if (error instanceof TypeError) return problem(400, error.message);
      throw error;
    }
    if (reply === null) return c.body(null, 204);
    return c.body(reply as Uint8Array<ArrayBuffer>, 200, { "content-type": EXCHANGE_TYPE });
  });
  allow("/edge/sync", "POST");
}
