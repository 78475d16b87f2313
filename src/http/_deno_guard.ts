// The connection guard of serve() on Deno: Deno.serve has no header or idle timeout and no
// connection cap, so serve() listens on the public address itself, closes connections that
// send no complete request head within headersTimeoutMs or move no byte for idleTimeoutMs,
// refuses connections past maxConnections, and relays the rest to a Deno.serve on a Unix socket
// (or loopback).
// An accept that fails (out of descriptors) is retried after a pause, without listening
// again. Private to src/http/serve.ts.
import type { DenoConn, DenoGlobal } from "../_runtime.ts";

/** The guard's limits. */
export interface GuardLimits {
  /** A connection must send a complete request head within this, in ms. */
  headersTimeoutMs: number;
  /** A connection with no byte either way for this long is closed, in ms. */
  idleTimeoutMs: number;
  /** Connections open at most; more are closed as soon as accepted. */
  maxConnections: number;
}

/** Bytes relayed at a time, each way (see the relay in `guard`). */
const RELAY_CHUNK = 4 * 1024;

interface Relayed {
  readonly client: DenoConn;
  inner: DenoConn | undefined;
  /** When it was accepted, on the guard's clock (its own stalls left out: see `stalled`). */
  readonly start: number;
  /** Whether the first request head is complete. */
  head: boolean;
  /** The last bytes of the head seen so far (to find its end across chunks). */
  tail: string;
  last: number;
  closed: boolean;
  /** Resolves once both connections are closed. */
  readonly ended: Promise<void>;
  readonly resolve: () => void;
}

/** A running guard. */
export interface Guard {
  readonly port: number;
  /** Stops accepting. */
  stopAccepting(): void;
  /**
   * Closes every connection once it has relayed what the server sent (the server is
   * stopping), or after `graceMs`.
   */
  closeAll(graceMs: number): Promise<void>;
}

const END_OF_HEAD = "\r\n\r\n";

/** Listens on `hostname:port` and relays to the server at `target()`. */
export function guard(
  deno: DenoGlobal,
  hostname: string,
  port: number,
  target: () => Parameters<NonNullable<DenoGlobal["connect"]>>[0],
  limits: GuardLimits,
): Guard {
  const listener = deno.listen!({ hostname, port, transport: "tcp" });
  const open = new Set<Relayed>();
  let accepting = true;
  const end = (r: Relayed) => {
    if (r.closed) return;
    r.closed = true;
    open.delete(r);
    r.resolve();
    for (const c of [r.client, r.inner]) {
      try {
        c?.close();
      } catch {
        // already closed
      }
    }
  };
  // One timer checks every connection, a few times per timeout.
  const tick = Math.max(10, Math.min(limits.headersTimeoutMs, limits.idleTimeoutMs) / 4);
  // Time this event loop was stalled (its timer ran late by so much), in ms: a head sent
  // meanwhile waits unread in the socket, through no fault of its client. Not counted against a
  // connection's headers timeout: under load it cut clients whose heads had come in time.
  let stalled = 0;
  let tickedAt = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    stalled += Math.max(0, now - tickedAt - tick);
    tickedAt = now;
    for (const r of open) {
      if (
        !r.head
          ? now - stalled - r.start > limits.headersTimeoutMs
          : now - r.last > limits.idleTimeoutMs
      ) {
        end(r);
      }
    }
  }, tick);
  (timer as { unref?: () => void }).unref?.();
  const decoder = new TextDecoder("latin1");
  const relay = async (r: Relayed) => {
    try {
      r.inner = await deno.connect!(target());
    } catch {
      end(r); // out of descriptors, or the server is stopping
      return;
    }
    const inner = r.inner;
    if (r.closed) {
      try {
        inner.close();
      } catch {
        // already closed
      }
      return;
    }
    // Each way, one small buffer per connection, read into and written out again. A client
    // that does not read holds at most RELAY_CHUNK bytes here, and the server's own stream
    // budgets see it as slow. (`client.readable` was dearer: its pending read holds a 64 KiB
    // buffer of its own, 125 MiB for 2,000 idle connections, beside its stream objects.)
    const pump = async (from: DenoConn, to: DenoConn, fromClient: boolean) => {
      const buf = new Uint8Array(RELAY_CHUNK);
      for (;;) {
        const n = await from.read(buf);
        if (n === null) return;
        r.last = Date.now();
        if (fromClient && !r.head) {
          const text = r.tail + decoder.decode(buf.subarray(0, n));
          if (text.includes(END_OF_HEAD)) r.head = true;
          else r.tail = text.slice(-3);
        }
        for (let off = 0; off < n;) off += await to.write(buf.subarray(off, n));
      }
    };
    // Either side closing ends the connection (HTTP clients do not half-close): the server
    // then sees its client go at once, as it would without the guard.
    const settled = (p: Promise<void>) => p.then(() => {}, () => {});
    await Promise.race([
      settled(pump(r.client, inner, true)),
      settled(pump(inner, r.client, false)),
    ]);
    end(r);
  };
  (async () => {
    let delay = 50;
    while (accepting) {
      let client: DenoConn;
      try {
        client = await listener.accept();
        delay = 50;
      } catch {
        if (!accepting) break;
        // Out of descriptors (or another passing failure): wait, and accept again.
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 2_000);
        continue;
      }
      if (open.size >= limits.maxConnections) {
        try {
          client.close();
        } catch {
          // already closed
        }
        continue;
      }
      const now = Date.now();
      let resolve = () => {};
      const ended = new Promise<void>((r) => resolve = r);
      const r: Relayed = {
        client,
        inner: undefined,
        start: now - stalled,
        head: false,
        tail: "",
        last: now,
        closed: false,
        ended,
        resolve,
      };
      open.add(r);
      relay(r);
    }
  })();
  return {
    port: listener.addr.port,
    stopAccepting: () => {
      if (!accepting) return;
      accepting = false;
      clearInterval(timer);
      try {
        listener.close();
      } catch {
        // already closed
      }
    },
    closeAll: async (graceMs) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
      await Promise.race([Promise.all([...open].map((r) => r.ended)), late]);
      clearTimeout(timer);
      for (const r of [...open]) end(r);
    },
  };
}
