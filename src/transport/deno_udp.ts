/**
 * UDP transport on Deno's native datagram API, `Deno.listenDatagram`.
 *
 * That API is still unstable in Deno 2: it exists only when the program runs with
 * `--unstable-net`, or with `"unstable": ["net"]` in its `deno.json`. A library cannot set
 * its users' flags, so {@linkcode autoTransport} falls back to `node:dgram` (which Deno
 * supports without any flag) when it is absent. Check with {@linkcode hasDenoUdp}.
 *
 * @example
 * ```ts ignore
 * // deno run --unstable-net --allow-net main.ts
 * import { denoUdpTransport } from "@gossip-kv/gossip-kv/transport/deno";
 * const transport = await denoUdpTransport({ hostname: "127.0.0.1", port: 0 });
 * console.log(transport.address); // "127.0.0.1:40123"
 * await transport.close();
 * ```
 *
 * @module
 */

import type { DatagramHandler } from "./types.ts";
import {
  advertisedAddress,
  bindOptions,
  formatAddress,
  type InterfaceAddress,
  parseAddress,
  type UdpTransport,
  type UdpTransportOptions,
} from "./udp.ts";
import { SendQueue } from "./send_queue.ts";

export type { DatagramHandler, Transport } from "./types.ts";
export type { UdpTransport, UdpTransportOptions } from "./udp.ts";

// The slice of the `Deno` namespace this adapter touches, declared here so the file
// type-checks on every runtime and without Deno's unstable types.
interface DenoAddr {
  transport: "udp";
  hostname: string;
  port: number;
}
interface DenoDatagramConn {
  readonly addr: DenoAddr;
  receive(buffer?: Uint8Array): Promise<[Uint8Array, DenoAddr]>;
  send(data: Uint8Array, to: DenoAddr): Promise<number>;
  close(): void;
}
interface DenoGlobal {
  listenDatagram?: (options: DenoAddr) => DenoDatagramConn;
  networkInterfaces?: () => InterfaceAddress[];
}

function deno(): DenoGlobal | undefined {
  return (globalThis as { Deno?: DenoGlobal }).Deno;
}

/**
 * Whether Deno's native UDP API is available (Deno run with `--unstable-net`).
 *
 * @example
 * ```ts
 * import { hasDenoUdp } from "@gossip-kv/gossip-kv/transport/deno";
 * console.log(hasDenoUdp()); // true on Deno with --unstable-net, false elsewhere
 * ```
 */
export function hasDenoUdp(): boolean {
  return typeof deno()?.listenDatagram === "function";
}

/**
 * Binds a UDP socket with `Deno.listenDatagram`. Throws a `TypeError` when that API is
 * absent (not Deno, or no `--unstable-net`), and the runtime's error when the bind fails.
 *
 * @example
 * ```ts ignore
 * import { denoUdpTransport } from "@gossip-kv/gossip-kv/transport/deno";
 * const transport = await denoUdpTransport({ port: 7946, advertise: "203.0.113.7:7946" });
 * ```
 */
export function denoUdpTransport(options: UdpTransportOptions = {}): Promise<UdpTransport> {
  const runtime = deno();
  if (typeof runtime?.listenDatagram !== "function") {
    return Promise.reject(
      new TypeError(
        "Deno.listenDatagram is not available: run Deno with --unstable-net " +
          '(or "unstable": ["net"] in deno.json), or use nodeUdpTransport',
      ),
    );
  }
  try {
    const bind = bindOptions(options);
    const conn = runtime.listenDatagram({ transport: "udp", ...bind });
    const bound = { hostname: conn.addr.hostname, port: conn.addr.port };
    let address: string;
    try {
      address = advertisedAddress(options, bound, () => runtime.networkInterfaces?.() ?? []);
    } catch (error) {
      conn.close();
      throw error;
    }
    let closed = false;
    const queue = new SendQueue(async (to, data) => {
      const { hostname, port } = parseAddress(to);
      await conn.send(data, { transport: "udp", hostname, port });
    });
    return Promise.resolve({
      address,
      boundAddress: formatAddress(bound.hostname, bound.port),
      runtime: "deno",
      listen(handler: DatagramHandler) {
        void receiveLoop(conn, handler, () => closed);
      },
      send: (to: string, data: Uint8Array) => queue.send(to, data),
      close() {
        if (closed) return;
        closed = true;
        queue.close();
        conn.close();
      },
    });
  } catch (error) {
    return Promise.reject(error);
  }
}

async function receiveLoop(
  conn: DenoDatagramConn,
  handler: DatagramHandler,
  closed: () => boolean,
): Promise<void> {
  // Without a buffer, each receive() allocates 64 KiB; one buffer, then a right-sized copy.
  const buffer = new Uint8Array(65536);
  let failures = 0;
  while (!closed()) {
    let datagram: [Uint8Array, DenoAddr];
    try {
      datagram = await conn.receive(buffer);
      failures = 0;
    } catch {
      if (closed()) return; // close() interrupts the pending receive
      // On Windows, an ICMP "port unreachable" for an earlier send surfaces as a receive
      // error (WSAECONNRESET) although the socket is fine: keep reading, but back off in
      // case the error persists. https://github.com/tokio-rs/tokio/issues/2017
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 2 ** failures++)));
      continue;
    }
    try {
      handler(datagram[0].slice(), formatAddress(datagram[1].hostname, datagram[1].port));
    } catch {
      // The handler owns its errors (GossipKV reports them); the loop must go on.
    }
  }
}
