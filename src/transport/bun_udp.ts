/**
 * UDP transport on Bun's native socket API, `Bun.udpSocket`.
 *
 * @example
 * ```ts ignore
 * // bun main.ts
 * import { bunUdpTransport } from "@gossip-kv/gossip-kv/transport/bun";
 * const transport = await bunUdpTransport({ hostname: "127.0.0.1", port: 0 });
 * console.log(transport.address); // "127.0.0.1:40123"
 * await transport.close();
 * ```
 *
 * @module
 */

import type * as Dns from "node:dns/promises";
import type * as Os from "node:os";
import type { DatagramHandler } from "./types.ts";
import {
  advertisedAddress,
  bindOptions,
  formatAddress,
  isIP,
  isIPv6,
  nodeBuiltin,
  parseAddress,
  type UdpTransport,
  type UdpTransportOptions,
} from "./udp.ts";
import { SendQueue } from "./send_queue.ts";

export type { DatagramHandler, Transport } from "./types.ts";
export type { UdpTransport, UdpTransportOptions } from "./udp.ts";

// The slice of the `Bun` namespace this adapter touches, declared here so the file
// type-checks without Bun's types. https://bun.sh/docs/api/udp
interface BunUdpSocket {
  readonly hostname: string;
  readonly port: number;
  send(data: Uint8Array, port: number, address: string): boolean;
  close(): void;
}
interface BunGlobal {
  udpSocket?: (options: {
    hostname: string;
    port: number;
    binaryType: "uint8array";
    socket: {
      data(socket: BunUdpSocket, data: Uint8Array, port: number, address: string): void;
      error(socket: BunUdpSocket, error: Error): void;
    };
  }) => Promise<BunUdpSocket>;
}

function bun(): BunGlobal | undefined {
  return (globalThis as { Bun?: BunGlobal }).Bun;
}

/**
 * Whether Bun's native UDP API is available (that is, whether this is Bun).
 *
 * @example
 * ```ts
 * import { hasBunUdp } from "@gossip-kv/gossip-kv/transport/bun";
 * console.log(hasBunUdp()); // true on Bun
 * ```
 */
export function hasBunUdp(): boolean {
  return typeof bun()?.udpSocket === "function";
}

/**
 * Binds a UDP socket with `Bun.udpSocket`. Throws a `TypeError` when not on Bun, and the
 * runtime's error when the bind fails.
 *
 * @example
 * ```ts ignore
 * import { bunUdpTransport } from "@gossip-kv/gossip-kv/transport/bun";
 * const transport = await bunUdpTransport({ port: 7946, advertise: "203.0.113.7" });
 * ```
 */
export async function bunUdpTransport(options: UdpTransportOptions = {}): Promise<UdpTransport> {
  const udpSocket = bun()?.udpSocket;
  if (typeof udpSocket !== "function") {
    throw new TypeError("Bun.udpSocket is not available: this is not Bun");
  }
  const bind = bindOptions(options);
  const { lookup } = nodeBuiltin<typeof Dns>("node:dns/promises");
  const { networkInterfaces } = nodeBuiltin<typeof Os>("node:os");
  let handler: DatagramHandler | undefined;
  let closed = false;
  const socket = await udpSocket({
    ...bind,
    // Plain Uint8Arrays rather than Buffers, so the engine sees the same type everywhere.
    binaryType: "uint8array",
    socket: {
      data(_socket, data, port, from) {
        if (closed || !handler) return;
        try {
          handler(data, formatAddress(from, port));
        } catch {
          // The handler owns its errors (GossipKV reports them); the socket must go on.
        }
      },
      error() {
        // Receive errors concern one datagram at most; the socket goes on.
      },
    },
  });
  const bound = { hostname: socket.hostname, port: socket.port };
  let address: string;
  try {
    address = advertisedAddress(
      options,
      bound,
      () => Object.values(networkInterfaces()).flatMap((list) => list ?? []),
    );
  } catch (error) {
    socket.close();
    throw error;
  }
  const v6 = isIPv6(bound.hostname);
  const queue = new SendQueue(async (to, data) => {
    const { hostname, port } = parseAddress(to);
    // Bun's send() takes IP literals only ("Invalid address" for a name): resolve first.
    const host = isIP(hostname)
      ? hostname
      : (await lookup(hostname, { family: v6 ? 0 : 4 })).address;
    if (!socket.send(data, port, host)) {
      throw new Error(`Send buffer full: datagram to ${to} not sent`);
    }
  });
  return {
    address,
    boundAddress: formatAddress(bound.hostname, bound.port),
    runtime: "bun",
    listen(h: DatagramHandler) {
      handler = h;
    },
    send: (to: string, data: Uint8Array) => queue.send(to, data),
    close() {
      if (closed) return;
      closed = true;
      queue.close();
      socket.close();
    },
  };
}
