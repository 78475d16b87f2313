// GET /events: Server-Sent Events, one `change` event per data change and one `member`
// event per membership change, with comment heartbeats. The subscriptions end with the
// stream: when the client goes away (the runtime cancels the body or aborts the request
// signal) or when `serve()` closes.
import type { Context } from "hono";
import type { GossipKV } from "../gossip_kv.ts";
import { toJson } from "../json.ts";
import { requestSignal } from "./_shared.ts";

/** Events a slow client may leave unread before it is cut off. */
const MAX_BACKLOG = 10_000;

/** Serves the event stream of `kv` for one client. */
export function eventStream(c: Context, kv: GossipKV, heartbeatMs: number): Response {
  const prefix = c.req.query("prefix") ?? "";
  const signal = requestSignal(c);
  const encoder = new TextEncoder();
  let stop = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let open = true;
      const send = (text: string) => {
        if (!open) return;
        if ((controller.desiredSize ?? 0) < -MAX_BACKLOG) return stop();
        controller.enqueue(encoder.encode(text));
      };
      const event = (name: string, data: unknown) =>
        send(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
      const unsubscribe = kv.subscribe((ch) => {
        if (!ch.key.startsWith(prefix)) return;
        const { key, deleted, origin, writer, wall } = ch;
        event("change", {
          key,
          value: deleted ? null : toJson(ch.value),
          deleted,
          origin,
          writer,
          wall,
        });
      });
      const unsubscribeMembers = kv.subscribeMembers((m) => {
        const { id, address, status, incarnation, previous } = m;
        event("member", { id, address, status, incarnation, previous: previous ?? null });
      });
      const heartbeat = setInterval(() => send(": heartbeat\n\n"), heartbeatMs);
      stop = () => {
        if (!open) return;
        open = false;
        unsubscribe();
        unsubscribeMembers();
        clearInterval(heartbeat);
        signal.removeEventListener("abort", stop);
        try {
          controller.close();
        } catch { /* already cancelled by the client */ }
      };
      signal.addEventListener("abort", stop);
      if (signal.aborted) return stop();
      // Opens the stream at once (the client's `open` fires) and sets the reconnect delay.
      send(`retry: 2000\n: connected to ${JSON.stringify(kv.id)}\n\n`);
    },
    cancel() {
      stop();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no", // nginx: do not buffer the stream
    },
  });
}
