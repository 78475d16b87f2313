/**
 * What the UDP adapters (Deno, Bun, `node:dgram`) share: their options, `host:port`
 * addresses, the choice of the advertised address, and {@linkcode udpTransport}, which
 * builds the transport around a bound socket. No runtime globals here.
 *
 * @module
 */

import { parseHostPort } from "../core/address.ts";
import { SendQueue } from "./_send_queue.ts";
import type { DatagramHandler, Transport } from "./types.ts";

export type { DatagramHandler, Transport } from "./types.ts";

/** Options of every UDP transport ({@linkcode UdpTransport}). */
export interface UdpTransportOptions {
  /** Address to bind, IPv4 or IPv6 (`"::"` also takes IPv4). Default `"0.0.0.0"`. */
  hostname?: string;
  /** Port to bind; 0 picks a free one. Default 7946. */
  port?: number;
  /**
   * Address the other members reach this one at, when it differs from the bound one
   * (containers, NAT): `"host"`, `"host:port"` or `"[v6]:port"`; no port (or port 0) means
   * the bound port. Default: the bound address, or for a wildcard bind (`0.0.0.0`, `::`)
   * the first address of a non-loopback interface (which needs `--allow-sys` on Deno).
   */
  advertise?: string;
}

/** A bound UDP socket, as a {@linkcode Transport}. */
export interface UdpTransport extends Transport {
  /** The advertised address, `host:port` or `[v6]:port`. */
  readonly address: string;
  /** The address the socket is bound to, as the runtime reports it. */
  readonly boundAddress: string;
  /** Which adapter this is. */
  readonly runtime: "deno" | "bun" | "node";
}

/** One address of a network interface, as `os.networkInterfaces()` describes it. */
export interface InterfaceAddress {
  /** The address, without prefix length. */
  readonly address: string;
  /** `"IPv4"` or `"IPv6"` (older Node versions: 4 or 6). */
  readonly family: string | number;
  /** Whether it is a loopback address (Node and Bun say; Deno does not). */
  readonly internal?: boolean;
}

/**
 * Splits `"host:port"` or `"[v6]:port"`; with `defaultPort`, also takes a bare host,
 * `"[v6]"` or a bare IPv6 literal. Throws a `TypeError` for anything else.
 *
 * @example
 * ```ts
 * import { parseAddress } from "@gossip-kv/gossip-kv";
 * console.log(parseAddress("[::1]:7946")); // { hostname: "::1", port: 7946 }
 * ```
 */
export function parseAddress(
  address: string,
  defaultPort?: number,
): { hostname: string; port: number } {
  const parsed = parseHostPort(address);
  // A bare IPv6 literal has no room for a port: only with a default one.
  const bare = parsed !== undefined && !parsed.bracketed && parsed.host.includes(":");
  const port = parsed?.port ?? defaultPort;
  if (!parsed || port === undefined || (bare && defaultPort === undefined)) {
    throw new TypeError(`Address must be "host:port" or "[v6]:port", got ${String(address)}`);
  }
  return { hostname: parsed.host, port };
}

/** `host:port`, with brackets around an IPv6 host; IPv4-mapped IPv6 becomes plain IPv4. */
export function formatAddress(hostname: string, port: number): string {
  const host = unmapIPv4(hostname);
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `"::ffff:1.2.3.4"` (how a dual-stack socket sees an IPv4 peer) → `"1.2.3.4"`. */
export function unmapIPv4(hostname: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(hostname);
  return m ? m[1]! : hostname;
}

/** Whether `hostname` is an IPv6 literal. */
export function isIPv6(hostname: string): boolean {
  return hostname.includes(":");
}

/** Whether `hostname` is an IPv4 or IPv6 literal (not a DNS name). */
export function isIP(hostname: string): boolean {
  return isIPv6(hostname) || /^\d+\.\d+\.\d+\.\d+$/.test(hostname);
}

/** The address to advertise, from the options and the bound socket (see `advertise`). */
export function advertisedAddress(
  options: UdpTransportOptions,
  bound: { hostname: string; port: number },
  interfaces: () => readonly InterfaceAddress[],
): string {
  if (options.advertise !== undefined) {
    const { hostname, port } = parseAddress(options.advertise, 0);
    return formatAddress(hostname, port || bound.port);
  }
  if (bound.hostname !== "0.0.0.0" && bound.hostname !== "::") {
    return formatAddress(bound.hostname, bound.port);
  }
  const v6 = bound.hostname === "::";
  const usable = interfaces().filter((i) =>
    !i.internal && !/^fe80:/i.test(i.address) && !/^(127\.|::1$)/.test(i.address)
  );
  const family = (i: InterfaceAddress) => String(i.family).replace(/^(4|6)$/, "IPv$1");
  const pick = usable.find((i) => family(i) === (v6 ? "IPv6" : "IPv4")) ??
    (v6 ? usable.find((i) => family(i) === "IPv4") : undefined);
  return formatAddress(pick?.address ?? (v6 ? "::1" : "127.0.0.1"), bound.port);
}

/** Checks and fills in the options every adapter takes. */
export function bindOptions(options: UdpTransportOptions): { hostname: string; port: number } {
  const hostname = options.hostname?.replace(/^\[(.*)\]$/, "$1") ?? "0.0.0.0";
  const port = options.port ?? 7946;
  if (typeof hostname !== "string" || hostname.length === 0) {
    throw new TypeError("options.hostname must be a non-empty string");
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`options.port must be an integer from 0 to 65535, got ${port}`);
  }
  if (options.advertise !== undefined) parseAddress(options.advertise, 0);
  return { hostname, port };
}

/** Peer addresses kept parsed (or formatted) at most (beyond, the cache starts over). */
const MAX_PARSED_PEERS = 4096;

/** What each adapter provides: a bound socket, in the runtime's own API. */
export interface BoundSocket {
  /** The address the socket is bound to. */
  readonly bound: { readonly hostname: string; readonly port: number };
  /** Starts delivering datagrams to `deliver` (called once). */
  listen(deliver: (data: Uint8Array, hostname: string, port: number) => void): void;
  /** Sends one datagram; throws or rejects when it cannot. */
  send(data: Uint8Array, hostname: string, port: number): void | Promise<unknown>;
  /** Closes the socket (called once). */
  close(): void | Promise<void>;
  /** Pace bursts by timers (see `SendQueueOptions`): Deno's native socket. */
  readonly timerTurns?: boolean;
  /** Datagrams sent per turn at most (see `SendQueueOptions`); default 16. */
  readonly burst?: number;
}

/**
 * The {@linkcode UdpTransport} around a bound socket: the advertised address (the socket is
 * closed when it is invalid), paced sends, a handler whose errors never stop the socket,
 * and a `close()` that runs once.
 */
export function udpTransport(
  runtime: UdpTransport["runtime"],
  options: UdpTransportOptions,
  socket: BoundSocket,
  interfaces: () => readonly InterfaceAddress[],
): UdpTransport {
  const { bound } = socket;
  let address: string;
  try {
    address = advertisedAddress(options, bound, interfaces);
  } catch (error) {
    void socket.close();
    throw error;
  }
  let closed = false;
  // Parsed once per peer, not once per datagram.
  const peers = new Map<string, { hostname: string; port: number }>();
  const queue = new SendQueue((to, data) => {
    let peer = peers.get(to);
    if (peer === undefined) {
      peer = parseAddress(to);
      if (peers.size >= MAX_PARSED_PEERS) peers.clear();
      peers.set(to, peer);
    }
    return socket.send(data, peer.hostname, peer.port);
  }, {
    timerTurns: socket.timerTurns === true,
    ...(socket.burst !== undefined && { burst: socket.burst }),
  });
  return {
    address,
    boundAddress: formatAddress(bound.hostname, bound.port),
    runtime,
    listen(handler: DatagramHandler) {
      if (closed) return;
      // Formatted once per peer, not once per datagram.
      const names = new Map<string, Map<number, string>>();
      const nameOf = (hostname: string, port: number): string => {
        let ports = names.get(hostname);
        if (ports === undefined) {
          if (names.size >= MAX_PARSED_PEERS) names.clear();
          names.set(hostname, ports = new Map());
        }
        let name = ports.get(port);
        if (name === undefined) {
          if (ports.size >= MAX_PARSED_PEERS) ports.clear();
          ports.set(port, name = formatAddress(hostname, port));
        }
        return name;
      };
      socket.listen((data, hostname, port) => {
        if (closed) return;
        try {
          handler(data, nameOf(hostname, port));
        } catch {
          // The handler owns its errors (GossipKV reports them); the socket must go on.
        }
      });
    },
    send(to: string, data: Uint8Array): void | Promise<void> {
      // Never throws: a datagram that cannot be sent rejects.
      try {
        return queue.send(to, data) as void | Promise<void>;
      } catch (error) {
        return Promise.reject(error);
      }
    },
    close() {
      if (closed) return;
      closed = true;
      queue.close();
      return socket.close();
    },
  };
}

/**
 * A Node built-in module (`node:dgram`, `node:os`, `node:dns/promises`), fetched when called
 * instead of imported: no `node:*` import is then reachable from `mod.ts`, and a bundle
 * for a runtime without them (workerd without `nodejs_compat`) builds. Node 20.16+, Bun
 * and Deno all provide `process.getBuiltinModule`.
 */
export function nodeBuiltin<T>(name: string): T {
  const p = (globalThis as { process?: { getBuiltinModule?: (name: string) => unknown } })
    .process;
  const module = p?.getBuiltinModule?.(name);
  if (!module) throw new TypeError(`This runtime does not provide the ${name} module`);
  return module as T;
}
