/**
 * Gossip over HTTP, for members that cannot open a UDP socket (edge runtimes) and the
 * members that talk to them. Each datagram travels as the body of one
 * `POST <peer>/gossip`, with the sender's address in the `X-Gossip-From` header; the
 * receiving side is the inspector app of `./http`
 * (`createInspector(kv, { gossip: transport })`), which hands the body to
 * {@linkcode HttpTransport.receive}.
 *
 * Addresses are URLs (`http(s)://host:port`). A member that also has another transport
 * joins both worlds with a {@linkcode BridgeTransport}: it keeps its primary address
 * (UDP, memory), sends `http(s)://` addresses over HTTP and every other address over the
 * primary transport, and tells HTTP peers where to reach it in an `X-Gossip-Url` header.
 * An HTTP-only member remembers those URLs, so it can answer a bridge by its primary
 * address; members it has no route to are reached through others (SWIM's indirect
 * probes, rumors and anti-entropy through the bridges).
 *
 * @example An HTTP-only member (for example on an edge runtime)
 * ```ts
 * import { GossipKV } from "@gossip-kv/gossip-kv";
 * import { HttpTransport } from "@gossip-kv/gossip-kv/transport/http";
 * import { createInspector, serve } from "@gossip-kv/gossip-kv/http";
 *
 * let app: ReturnType<typeof createInspector> | undefined;
 * const server = await serve({ fetch: (req, env) => app!.fetch(req, env) }, { port: 0 });
 * const transport = new HttpTransport({ url: server.url });
 * // seeds: the URLs of members that serve HTTP, for example ["http://10.0.0.5:8080"]
 * const kv = await GossipKV.start({ transport, seeds: [] });
 * app = createInspector(kv, { hostname: server.hostname, gossip: transport });
 * await kv.close();
 * await server.close();
 * ```
 *
 * @module
 */

import type { DatagramHandler, Transport } from "./types.ts";

export type { DatagramHandler, Transport } from "./types.ts";

const FROM = "x-gossip-from";
const URL_HEADER = "x-gossip-url";
const MAX_ADDRESS = 256;
const MAX_ROUTES = 4096;
const MAX_WAITING = 4096;
/**
 * An origin, `http(s)://host[:port]` with an optional final "/": no credentials, path,
 * query or fragment. Addresses and the URLs in headers must be one, so that a forged
 * header or gossiped address cannot aim this member's requests at another path.
 */
const isUrl = (s: string) =>
  /^https?:\/\/(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*\.?|\[[0-9a-f:.]+\])(?::\d{1,5})?\/?$/i.test(s);
const trimSlash = (s: string) => s.replace(/\/+$/, "").toLowerCase();

/** Options of {@linkcode HttpTransport}. */
export interface HttpTransportOptions {
  /** Where this member serves `POST /gossip`: `http(s)://host:port`. */
  url: string;
  /** The address this member is known by. Default: `url`; a bridge gives its primary address. */
  address?: string;
  /**
   * Sent as `Authorization: Bearer <token>`: the token of the peers' inspectors. It goes
   * only to trusted peers (see `trustedPeers`), never to an address that was merely
   * gossiped: a forged datagram could name any URL.
   */
  token?: string;
  /**
   * Peers the token may be sent to: their URLs (the seeds, say), or a function that
   * decides for a URL (`http(s)://host:port`, lower case). Besides these, a peer is
   * trusted once it has sent this member a request bearing the token (see
   * {@linkcode HttpTransport.receive}). Default: none beyond those.
   */
  trustedPeers?: readonly string[] | ((url: string) => boolean);
  /** Largest datagram sent, in bytes; a larger one is refused with a `RangeError`. Default 65,536. */
  maxBytes?: number;
  /** A request still unanswered after this long is abandoned, in ms. Default 5,000. */
  timeoutMs?: number;
  /**
   * Requests in flight at most; later datagrams wait (up to 4,096, then they are dropped
   * and counted as failed). Default 16.
   */
  maxInFlight?: number;
  /** The `fetch` to send with. Default: the runtime's. */
  fetch?: typeof fetch;
}

/** Counters of an {@linkcode HttpTransport}. */
export interface HttpTransportStats {
  /** Datagrams a peer accepted (2xx). */
  readonly sent: number;
  /** Datagrams lost: network error, timeout or a non-2xx answer (best effort, as UDP). */
  readonly failed: number;
  /** Datagrams received through {@linkcode HttpTransport.receive}. */
  readonly received: number;
}

/**
 * A transport over HTTP: sends with `fetch`, receives what the inspector's
 * `POST /gossip` hands to {@linkcode HttpTransport.receive}. Delivery is best effort, as
 * with UDP: a peer that is down or answers with an error costs a `failed` count, not an
 * exception. Sending to an address with no known URL rejects, so the member counts it.
 *
 * @example Two transports wired by hand (a real member receives through the inspector)
 * ```ts
 * import { HttpTransport } from "@gossip-kv/gossip-kv/transport/http";
 *
 * const b = new HttpTransport({ url: "http://b.test" });
 * const a = new HttpTransport({
 *   url: "http://a.test",
 *   fetch: (_url, init) => {
 *     const body = new Uint8Array(init!.body as Uint8Array);
 *     b.receive(body, new Headers(init!.headers));
 *     return Promise.resolve(new Response(null, { status: 204 }));
 *   },
 * });
 * b.listen((data, from) => console.log(data.length, from)); // 3 "http://a.test"
 * await a.send("http://b.test", new Uint8Array(3));
 * ```
 */
export class HttpTransport implements Transport {
  /** The address this member is known by (`url` unless bridging). */
  readonly address: string;
  /** Where this member serves `POST /gossip`. */
  readonly url: string;
  readonly #token: string | undefined;
  readonly #trusted = new Set<string>();
  readonly #trust: ((url: string) => boolean) | undefined;
  readonly #maxBytes: number;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  readonly #routes = new Map<string, string>();
  readonly #closing = new AbortController();
  readonly #maxInFlight: number;
  readonly #waiting: ((go: boolean) => void)[] = [];
  #inFlight = 0;
  #handler: DatagramHandler | undefined;
  #closed = false;
  readonly #stats = { sent: 0, failed: 0, received: 0 };

  /** Makes a transport; see {@linkcode HttpTransportOptions}. */
  constructor(options: HttpTransportOptions) {
    if (typeof options?.url !== "string" || !isUrl(options.url)) {
      throw new TypeError(`url must be an http(s)://host:port URL, got ${options?.url}`);
    }
    this.url = trimSlash(options.url);
    this.address = options.address ?? this.url;
    if (typeof this.address !== "string" || !this.address || this.address.length > MAX_ADDRESS) {
      throw new TypeError(`address must be a string of 1 to ${MAX_ADDRESS} characters`);
    }
    this.#token = options.token;
    const peers = options.trustedPeers ?? [];
    if (typeof peers === "function") this.#trust = peers;
    else {
      for (const peer of peers) {
        if (typeof peer !== "string" || !isUrl(peer)) {
          throw new TypeError(`trustedPeers must be http(s)://host:port URLs, got ${peer}`);
        }
        this.#trusted.add(trimSlash(peer));
      }
    }
    this.#maxBytes = options.maxBytes ?? 65_536;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#maxInFlight = options.maxInFlight ?? 16;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /** Delivers received datagrams to `handler`. */
  listen(handler: DatagramHandler): void {
    if (this.#closed) throw new Error(`Transport ${this.address} is closed`);
    this.#handler = handler;
  }

  /** Posts one datagram to `<to>/gossip` (or to the URL learned for `to`). */
  async send(to: string, data: Uint8Array): Promise<void> {
    if (this.#closed) throw new Error(`Transport ${this.address} is closed`);
    if (data.length > this.#maxBytes) {
      throw new RangeError(`Datagram of ${data.length} bytes exceeds ${this.#maxBytes} bytes`);
    }
    const base = isUrl(to) ? trimSlash(to) : this.#routes.get(to);
    if (base === undefined) throw new Error(`No HTTP route to ${to}`);
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      [FROM]: this.address,
    };
    if (this.address !== this.url) headers[URL_HEADER] = this.url;
    if (this.#token !== undefined && (this.#trusted.has(base) || this.#trust?.(base))) {
      headers.authorization = `Bearer ${this.#token}`;
    }
    const body = data.slice(); // the caller may reuse its buffer while this one waits
    if (!(await this.#slot())) {
      this.#stats.failed++; // too many waiting, or closed meanwhile: dropped, as UDP would
      return;
    }
    const abort = new AbortController();
    const onClose = () => abort.abort();
    this.#closing.signal.addEventListener("abort", onClose);
    const timer = setTimeout(() => abort.abort(), this.#timeoutMs);
    try {
      if (this.#closed) throw new Error("closed while waiting");
      const res = await this.#fetch(`${base}/gossip`, {
        method: "POST",
        headers,
        body,
        signal: abort.signal,
      });
      await res.body?.cancel();
      if (res.ok) this.#stats.sent++;
      else this.#stats.failed++;
    } catch {
      this.#stats.failed++; // Down, refused or timed out: lost, as a UDP datagram would be.
    } finally {
      clearTimeout(timer);
      this.#closing.signal.removeEventListener("abort", onClose);
      const next = this.#waiting.shift();
      if (next) next(true);
      else this.#inFlight--;
    }
  }

  /** Waits for one of the `maxInFlight` request slots; false if dropped instead. */
  #slot(): Promise<boolean> | boolean {
    if (this.#closed) return false;
    if (this.#inFlight < this.#maxInFlight) {
      this.#inFlight++;
      return true;
    }
    if (this.#waiting.length >= MAX_WAITING) return false;
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /**
   * Hands a datagram received over HTTP to the listener. `headers` are the request's:
   * `X-Gossip-From` (required) names the sender, `X-Gossip-Url` (optional) where to reach
   * it; either, when a URL, must be `http(s)://host:port` (no credentials, path or query).
   * `authenticated`: the request bore this member's token (the inspector says so), so the
   * sender is trusted with the token from then on. Throws a `TypeError` for missing or
   * invalid headers; returns `false` when the transport is closed or not listening
   * (nothing is delivered then).
   */
  receive(data: Uint8Array, headers: Headers, authenticated = false): boolean {
    const from = headers.get(FROM);
    if (!from || from.length > MAX_ADDRESS) {
      throw new TypeError(`Header X-Gossip-From must name the sender (1 to ${MAX_ADDRESS} chars)`);
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(from) && !isUrl(from)) {
      throw new TypeError(
        "Header X-Gossip-From, when a URL, must be http(s)://host:port (no credentials, path or query)",
      );
    }
    const url = headers.get(URL_HEADER);
    if (url !== null && (url.length > MAX_ADDRESS || !isUrl(url))) {
      throw new TypeError("Header X-Gossip-Url must be an http(s)://host:port URL");
    }
    if (this.#closed || !this.#handler) return false;
    if (authenticated && this.#token !== undefined) {
      if (isUrl(from)) this.#trustUrl(trimSlash(from));
      if (url !== null) this.#trustUrl(trimSlash(url));
    }
    if (url !== null && !isUrl(from)) this.#learn(from, trimSlash(url));
    this.#stats.received++;
    this.#handler(data, from);
    return true;
  }

  /** Counters since the transport was made. */
  stats(): HttpTransportStats {
    return { ...this.#stats };
  }

  /** Stops receiving and abandons requests in flight. */
  close(): void {
    this.#closed = true;
    this.#handler = undefined;
    this.#closing.abort();
    for (const waiting of this.#waiting.splice(0)) waiting(false);
  }

  #trustUrl(url: string): void {
    this.#trusted.delete(url); // re-inserted last: the set drops its oldest first
    this.#trusted.add(url);
    if (this.#trusted.size > MAX_ROUTES) this.#trusted.delete(this.#trusted.values().next().value!);
  }

  #learn(address: string, url: string): void {
    this.#routes.delete(address); // re-inserted last: the map drops its oldest first
    this.#routes.set(address, url);
    if (this.#routes.size > MAX_ROUTES) this.#routes.delete(this.#routes.keys().next().value!);
  }
}

/**
 * A member on two transports: `http(s)://` addresses go through `http`, all others
 * through `primary` (UDP, memory), and both deliver to the member. The member keeps the
 * primary address, so its other peers see no difference; give `http` that address
 * (`new HttpTransport({ url, address: primary.address })`) and serve `http` with the
 * inspector (`createInspector(kv, { gossip: http })`).
 *
 * @example A memory member that also gossips over HTTP
 * ```ts
 * import { GossipKV, MemoryNetwork } from "@gossip-kv/gossip-kv";
 * import { BridgeTransport, HttpTransport } from "@gossip-kv/gossip-kv/transport/http";
 *
 * const net = new MemoryNetwork();
 * const primary = net.transport("b");
 * const http = new HttpTransport({ url: "http://127.0.0.1:8080", address: primary.address });
 * const kv = await GossipKV.start({ id: "b", transport: new BridgeTransport(primary, http) });
 * console.log(kv.address); // "b"
 * await kv.close();
 * ```
 */
export class BridgeTransport implements Transport {
  /** The primary transport's address, which the member is known by. */
  readonly address: string;
  /** The transport for every address that is not a URL. */
  readonly primary: Transport;
  /** The transport for `http(s)://` addresses. */
  readonly http: HttpTransport;

  /** Joins `primary` and `http`; throws a `TypeError` if their addresses differ. */
  constructor(primary: Transport, http: HttpTransport) {
    if (http.address !== primary.address) {
      throw new TypeError(
        `The HTTP transport must carry the primary address ${primary.address}, not ${http.address}`,
      );
    }
    this.address = primary.address;
    this.primary = primary;
    this.http = http;
  }

  /** Listens on both transports. */
  async listen(handler: DatagramHandler): Promise<void> {
    await this.primary.listen(handler);
    this.http.listen(handler);
  }

  /** Sends over HTTP to a URL, over the primary transport otherwise. */
  send(to: string, data: Uint8Array): void | Promise<void> {
    return isUrl(to) ? this.http.send(to, data) : this.primary.send(to, data);
  }

  /** Closes both transports. */
  async close(): Promise<void> {
    this.http.close();
    await this.primary.close();
  }
}
