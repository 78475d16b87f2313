// Helpers of the HTTP tests: a member served over HTTP on a free port, a Server-Sent
// Events reader, and a watchdog so that a broken test fails instead of hanging.
import { GossipKV, type GossipKVOptions } from "../src/gossip_kv.ts";
import { createInspector, type Inspector, type InspectorOptions, serve } from "../src/http/mod.ts";
import type { Server } from "../src/http/serve.ts";
import { HttpTransport, type HttpTransportOptions } from "../src/transport/http.ts";

/** Rejects if `promise` takes longer than `ms`: a safety net, never the thing tested. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Gave up after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> =>
  new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `done` until it holds; fails after `ms` (a safety net). */
export async function eventually(done: () => boolean, what: string, ms = 20_000): Promise<void> {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > ms) throw new Error(`Gave up after ${ms} ms: ${what}`);
    await sleep(10);
  }
}

/**
 * Serves an app created after the server, on 127.0.0.1 and a free port: a member's
 * HTTP transport needs the URL before the member (and so its inspector) exists.
 */
export async function lateServer(): Promise<{ server: Server; mount(app: Inspector): void }> {
  let app: Inspector | undefined;
  const server = await serve({
    fetch: (request, env) => app ? app.fetch(request, env) : new Response(null, { status: 503 }),
  }, { hostname: "127.0.0.1", port: 0 });
  return { server, mount: (a) => void (app = a) };
}

export interface HttpMember {
  kv: GossipKV;
  transport: HttpTransport;
  server: Server;
  app: Inspector;
  close(): Promise<void>;
}

/** A member whose only transport is HTTP, with its inspector on a free port. */
export async function httpMember(
  options: Partial<GossipKVOptions> & { token?: string; address?: string } = {},
  transportOptions: Partial<HttpTransportOptions> = {},
  inspectorOptions: InspectorOptions = {},
): Promise<HttpMember> {
  const { token, address, ...kvOptions } = options;
  const { server, mount } = await lateServer();
  const transport = new HttpTransport({
    url: server.url,
    ...(token !== undefined && { token }),
    ...(address !== undefined && { address }),
    // The seeds are configured peers: trusted with the token from the start.
    trustedPeers: (options.seeds ?? []).filter((seed) => /^https?:/.test(seed)),
    ...transportOptions,
  });
  const kv = await GossipKV.start({ transport, ...kvOptions });
  const app = createInspector(kv, {
    hostname: "127.0.0.1",
    gossip: transport,
    ...(token !== undefined && { token }),
    ...inspectorOptions,
  });
  mount(app);
  return {
    kv,
    transport,
    server,
    app,
    close: async () => {
      await kv.close();
      await server.close();
    },
  };
}

export interface SseEvent {
  event: string;
  data: string;
  comments: string[];
}

/** Reads Server-Sent Events from a response body, one block at a time. */
export class SseReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #buffer = "";
  /** Every block read so far, in order. */
  readonly seen: SseEvent[] = [];

  constructor(response: Response) {
    if (!response.body) throw new Error("The response has no body");
    this.#reader = response.body.getReader();
  }

  /** The next block satisfying `match` (blocks before it are skipped); null at the end. */
  async next(match: (e: SseEvent) => boolean = () => true): Promise<SseEvent | null> {
    for (;;) {
      let end: number;
      while ((end = this.#buffer.indexOf("\n\n")) < 0) {
        const { done, value } = await this.#reader.read();
        if (done) return null;
        this.#buffer += this.#decoder.decode(value, { stream: true });
      }
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const e: SseEvent = { event: "message", data: "", comments: [] };
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) e.comments.push(line.slice(1).trim());
        else if (line.startsWith("event:")) e.event = line.slice(6).trim();
        else if (line.startsWith("data:")) e.data += line.slice(5).trim();
      }
      this.seen.push(e);
      if (match(e)) return e;
    }
  }

  /** The next event named `name`, its data parsed as JSON. */
  async nextEvent(name: string, ms = 10_000): Promise<Record<string, unknown>> {
    const e = await within(this.next((x) => x.event === name), ms, `a ${name} event`);
    if (!e) throw new Error(`The stream ended before a ${name} event`);
    return JSON.parse(e.data);
  }

  /** Disconnects. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/** Wraps kv.subscribe and kv.subscribeMembers to count live subscriptions. */
export function countSubscriptions(kv: GossipKV): { readonly live: number } {
  const counter = { live: 0 };
  for (const name of ["subscribe", "subscribeMembers"] as const) {
    const original = kv[name].bind(kv) as (listener: (x: never) => void) => () => void;
    Object.defineProperty(kv, name, {
      configurable: true,
      value: (listener: (x: never) => void) => {
        const unsubscribe = original(listener);
        counter.live++;
        let done = false;
        return () => {
          if (!done) counter.live--;
          done = true;
          unsubscribe();
        };
      },
    });
  }
  return counter;
}
