// Long responses (GET /events and GET /state) under byte budgets, whatever the clients do.
//
// - Each event is serialised once and shared by every stream (slices of one buffer, never
//   copies); a /state body is serialised once per version of the state.
// - A stream is pulled, not pushed: the runtime asks for the next slice when the socket
//   has taken the last one, so the bytes queued for a client are known exactly. Slices are
//   at most 16 KiB, so what a runtime buffers per connection stays small too.
// - An event stream whose backlog would pass `maxBacklogBytes`, or that is the largest when
//   all backlogs together pass `maxBufferedBytes`, is cut (its connection dropped): an
//   EventSource reconnects, and re-reads /state to catch up. A stream that takes nothing
//   for `stallMs` while bytes wait is cut too.
// - At most `maxStreams` streams are open; more get 503 with Retry-After. /state bodies
//   held by readers, all versions together, stay under `maxBufferedBytes` (503 beyond).
import type { GossipKV } from "../gossip_kv.ts";
import { toJson } from "../json.ts";
import { problem } from "./_shared.ts";

/** Largest slice handed to the runtime at once. */
const SLICE_BYTES = 16 * 1024;

/** Budgets of long responses. */
export interface StreamLimits {
  maxStreams: number;
  maxBacklogBytes: number;
  maxBufferedBytes: number;
  stallMs: number;
  heartbeatMs: number;
}

/** Counters, for /metrics. */
export interface StreamStats {
  /** Streams open now (/events and /state bodies). */
  open: number;
  /** Bytes of the events still to be sent to some stream (each event counted once). */
  backlogBytes: number;
  /** Bytes of /state versions held by readers or cached now. */
  stateBytes: number;
  /** Streams cut since start, by cause. */
  cut: { backlog: number; total: number; stalled: number };
  /** Requests refused with 503, by cause. */
  refused: { streams: number; state: number };
}

/** One serialised event or /state version, shared by every stream that sends it. */
interface Shared {
  readonly slices: Uint8Array[];
  readonly size: number;
  /** Streams still to send some of it. */
  refs: number;
}

interface Client {
  readonly prefix: string | undefined; // undefined: a /state body
  readonly controller: ReadableStreamDefaultController<Uint8Array>;
  readonly queue: (Shared | undefined)[];
  /** Index in `queue` of what is being sent, and of the next slice in it. */
  head: number;
  at: number;
  /** Bytes still to send. */
  queued: number;
  waiting: boolean;
  lastPull: number;
  lastSent: number;
  close(error?: Error): void;
}

function shared(text: string): Shared {
  const bytes = encoder.encode(text);
  return { slices: slices(bytes), size: bytes.length, refs: 0 };
}

function slices(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += SLICE_BYTES) {
    out.push(bytes.subarray(at, Math.min(bytes.length, at + SLICE_BYTES)));
  }
  return out;
}

const encoder = new TextEncoder();

/**
 * Why a stream was cut. The code makes @hono/node-server treat it as a connection gone
 * (one info line) rather than a failure (a stack trace and a 500 body).
 */
class CutError extends Error {
  declare readonly code: string;
  constructor(message: string) {
    super(message);
    Object.defineProperty(this, "code", { value: "ERR_STREAM_PREMATURE_CLOSE" });
    this.name = "gossip-kv stream cut";
    // Deno logs a body stream's error: one line, not a stack trace per slow client.
    this.stack = `${this.name}: ${message}`;
  }
}

/** The long responses of one inspector. */
export class StreamHub {
  readonly #kv: GossipKV;
  readonly #limits: StreamLimits;
  readonly #clients = new Set<Client>();
  readonly #stats: StreamStats = {
    open: 0,
    backlogBytes: 0,
    stateBytes: 0,
    cut: { backlog: 0, total: 0, stalled: 0 },
    refused: { streams: 0, state: 0 },
  };
  /** /state versions: the buffer and how many bodies read it (the latest stays cached). */
  readonly #states = new Map<Uint8Array, number>();
  #latest: { tag: string; bytes: Uint8Array } | undefined;
  /** Size of the last /state serialised. */
  #lastSize = 0;
  #unsubscribe: (() => void) | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(kv: GossipKV, limits: StreamLimits) {
    this.#kv = kv;
    this.#limits = limits;
  }

  get stats(): StreamStats {
    return structuredClone(this.#stats);
  }

  /** GET /events for one client. */
  events(prefix: string, signal: AbortSignal): Response {
    const refused = this.#refuse();
    if (refused) return refused;
    const body = this.#open(prefix, signal);
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no", // nginx: do not buffer the stream
      },
    });
  }

  /** GET /state: `json` serialises the state; `tag` names its version. */
  state(tag: string, json: () => string, signal: AbortSignal): Response {
    const refused = this.#refuse();
    if (refused) return refused;
    let bytes = this.#latest?.tag === tag ? this.#latest.bytes : undefined;
    if (!bytes) {
      const refuse = () => {
        this.#stats.refused.state++;
        return problem(
          503,
          "Readers of earlier versions of the state hold the memory this one needs; retry",
          { "retry-after": "1" },
        );
      };
      // The last version's size foretells this one's: refuse before serialising, so that
      // refused requests cost nothing.
      this.#dropLatest();
      if (this.#stats.stateBytes + this.#lastSize > this.#limits.maxBufferedBytes) {
        return refuse();
      }
      bytes = encoder.encode(json());
      this.#lastSize = bytes.length;
      if (this.#stats.stateBytes + bytes.length > this.#limits.maxBufferedBytes) return refuse();
      this.#latest = { tag, bytes };
      this.#states.set(bytes, 0);
      this.#stats.stateBytes += bytes.length;
    }
    const state = bytes;
    this.#states.set(state, this.#states.get(state)! + 1);
    const body = this.#open(undefined, signal, state, () => {
      const readers = this.#states.get(state)! - 1;
      this.#states.set(state, readers);
      if (readers === 0 && this.#latest?.bytes !== state) {
        this.#states.delete(state);
        this.#stats.stateBytes -= state.length;
      }
    });
    return new Response(body, {
      headers: {
        "content-type": "application/json",
        "content-length": String(state.length),
        etag: tag,
        "cache-control": "no-cache",
      },
    });
  }

  #dropLatest(): void {
    const old = this.#latest;
    this.#latest = undefined;
    if (old && this.#states.get(old.bytes) === 0) {
      this.#states.delete(old.bytes);
      this.#stats.stateBytes -= old.bytes.length;
    }
  }

  #refuse(): Response | undefined {
    if (this.#stats.open < this.#limits.maxStreams) return undefined;
    this.#stats.refused.streams++;
    return problem(503, `This member serves at most ${this.#limits.maxStreams} streams at once`, {
      "retry-after": "5",
    });
  }

  #open(
    prefix: string | undefined,
    signal: AbortSignal,
    state?: Uint8Array,
    onClose?: () => void,
  ): ReadableStream<Uint8Array> {
    let client!: Client;
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        let open = true;
        const now = Date.now();
        client = {
          prefix,
          controller,
          queue: state ? [{ slices: slices(state), size: state.length, refs: 1 }] : [],
          head: 0,
          at: 0,
          queued: 0,
          waiting: false,
          lastPull: now,
          lastSent: now,
          close: (error?: Error) => {
            if (!open) return;
            open = false;
            for (let i = client.head; i < client.queue.length; i++) {
              if (prefix !== undefined) this.#release(client.queue[i]!);
            }
            client.queued = 0;
            client.queue.length = 0;
            this.#clients.delete(client);
            this.#stats.open--;
            signal.removeEventListener("abort", abort);
            onClose?.();
            if (this.#clients.size === 0) this.#stop();
            try {
              if (error) controller.error(error);
              else controller.close();
            } catch { /* already cancelled by the client */ }
          },
        };
        const abort = () => client.close();
        this.#stats.open++;
        this.#clients.add(client);
        this.#start();
        signal.addEventListener("abort", abort);
        if (signal.aborted) return client.close();
        if (prefix !== undefined) {
          // Opens the stream at once (the client's `open` fires) and sets the reconnect delay.
          this.#push(
            client,
            shared(`retry: 2000\n: connected to ${JSON.stringify(this.#kv.id)}\n\n`),
          );
        }
      },
      pull: () => {
        client.lastPull = Date.now();
        if (!this.#next(client)) {
          if (client.prefix === undefined) client.close();
          else client.waiting = true;
        }
      },
      cancel: () => {
        client.close();
      },
    }, { highWaterMark: 0 });
  }

  /** Hands the client's next slice to the runtime; false when there is none. */
  #next(c: Client): boolean {
    const item = c.queue[c.head];
    if (!item) return false;
    const slice = item.slices[c.at++]!;
    if (c.at >= item.slices.length) {
      c.queue[c.head++] = undefined; // let it go
      c.at = 0;
      if (c.prefix !== undefined) this.#release(item);
      if (c.head > 64 && c.head * 2 > c.queue.length) {
        c.queue.splice(0, c.head);
        c.head = 0;
      }
    }
    if (c.prefix !== undefined) c.queued -= slice.length;
    c.waiting = false;
    c.lastSent = Date.now();
    c.controller.enqueue(slice);
    return true;
  }

  #hold(item: Shared): void {
    if (item.refs++ === 0) this.#stats.backlogBytes += item.size;
  }

  #release(item: Shared): void {
    if (--item.refs === 0) this.#stats.backlogBytes -= item.size;
  }

  /** Queues an event for one client, within its budget. */
  #push(c: Client, item: Shared): void {
    if (c.queued > 0 && c.queued + item.size > this.#limits.maxBacklogBytes) {
      this.#stats.cut.backlog++;
      return c.close(new CutError("Slow client: its backlog passed the per-client byte budget"));
    }
    c.queue.push(item);
    this.#hold(item);
    c.queued += item.size;
    if (c.waiting) this.#next(c);
  }

  #broadcast(prefixOf: string | undefined, text: string): void {
    let item: Shared | undefined;
    for (const c of [...this.#clients]) {
      if (c.prefix === undefined) continue;
      if (prefixOf !== undefined && !prefixOf.startsWith(c.prefix)) continue;
      this.#push(c, item ??= shared(text));
    }
    // Over the total: cut the streams furthest behind, among those that hold more than
    // this event (one event always goes through, however large).
    while (this.#stats.backlogBytes > this.#limits.maxBufferedBytes) {
      let behind: Client | undefined;
      for (const c of this.#clients) {
        if (c.prefix === undefined || c.queued === 0 || c.queue[c.head] === item) continue;
        if (c.queued > (behind?.queued ?? 0)) behind = c;
      }
      if (!behind) break;
      this.#stats.cut.total++;
      behind.close(new CutError("Slow client: the streams' total byte budget is spent"));
    }
  }

  #start(): void {
    if (this.#timer !== undefined) return;
    const kv = this.#kv;
    const event = (name: string, data: unknown) =>
      `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
    const offChanges = kv.subscribe((ch) => {
      const { key, deleted, origin, writer, wall } = ch;
      this.#broadcast(
        key,
        event("change", {
          key,
          value: deleted ? null : toJson(ch.value),
          deleted,
          origin,
          writer,
          wall,
        }),
      );
    });
    const offMembers = kv.subscribeMembers((m) => {
      const { id, address, status, incarnation, previous } = m;
      this.#broadcast(
        undefined,
        event("member", { id, address, status, incarnation, previous: previous ?? null }),
      );
    });
    this.#unsubscribe = () => {
      offChanges();
      offMembers();
    };
    const period = Math.max(10, Math.min(this.#limits.heartbeatMs, this.#limits.stallMs / 4));
    this.#timer = setInterval(() => this.#sweep(), period);
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Heartbeats on idle event streams; cuts streams that took nothing for `stallMs`. */
  #sweep(): void {
    const now = Date.now();
    const heartbeat = shared(": heartbeat\n\n");
    for (const c of [...this.#clients]) {
      const waiting = c.queue[c.head] !== undefined;
      if (waiting && now - c.lastPull >= this.#limits.stallMs) {
        this.#stats.cut.stalled++;
        c.close(new CutError("Stalled client: it took nothing for too long"));
      } else if (c.prefix !== undefined && now - c.lastSent >= this.#limits.heartbeatMs) {
        c.lastSent = now;
        if (c.queued === 0) this.#push(c, heartbeat);
      }
    }
  }

  /** Ends every stream (the server is closing). */
  closeAll(): void {
    for (const c of [...this.#clients]) c.close();
  }
}
