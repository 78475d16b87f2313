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
import { bunGlobal } from "../_runtime.ts";
import {
  bindOptions,
  formatAddress,
  isIP,
  isIPv6,
  nodeBuiltin,
  type UdpTransport,
  udpTransport,
  type UdpTransportOptions,
} from "./udp.ts";

export type { DatagramHandler, Transport, UdpTransport, UdpTransportOptions } from "./udp.ts";

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
  return typeof bunGlobal()?.udpSocket === "function";
}

/** Errors an ICMP message about an earlier datagram leaves on a socket, reported by its next send. */
const ICMP_ERRORS = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN"]);
/** Sends of one datagram at most, each after such an error (one per ICMP message received). */
const ICMP_RETRIES = 4;

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
  const udpSocket = bunGlobal()?.udpSocket;
  if (typeof udpSocket !== "function") {
    throw new TypeError("Bun.udpSocket is not available: this is not Bun");
  }
  const { lookup } = nodeBuiltin<typeof Dns>("node:dns/promises");
  const { networkInterfaces } = nodeBuiltin<typeof Os>("node:os");
  let deliver: ((data: Uint8Array, hostname: string, port: number) => void) | undefined;
  const socket = await udpSocket({
    ...bindOptions(options),
    // Plain Uint8Arrays rather than Buffers, so the engine sees the same type everywhere.
    binaryType: "uint8array",
    socket: {
      data: (_socket, data, port, from) => deliver?.(data, from, port),
      error() {
        // Receive errors concern one datagram at most; the socket goes on.
      },
    },
  });
  const v6 = isIPv6(socket.hostname);
  // Bun's socket reports ICMP errors (IP_RECVERR): "port unreachable" for a datagram sent to
  // a member gone makes the socket's NEXT send throw ECONNREFUSED, whoever it goes to, and that
  // datagram is not sent (on loopback the ICMP is back before the next send of the same turn:
  // a leave announced to a member that just left, then to one still there, reached neither).
  // The error is an earlier datagram's, and the failed call clears it: send again.
  const sendOnce = (data: Uint8Array, port: number, host: string): boolean => {
    for (let attempt = 1;; attempt++) {
      try {
        return socket.send(data, port, host);
      } catch (error) {
        if (attempt === ICMP_RETRIES || !ICMP_ERRORS.has((error as { code?: string }).code!)) {
          throw error;
        }
      }
    }
  };
  return udpTransport("bun", options, {
    bound: { hostname: socket.hostname, port: socket.port },
    listen: (d) => void (deliver = d),
    send(data, hostname, port) {
      const sendTo = (host: string) => {
        if (!sendOnce(data, port, host)) {
          throw new Error(
            `Send buffer full: datagram to ${formatAddress(hostname, port)} not sent`,
          );
        }
      };
      // Bun's send() takes IP literals only ("Invalid address" for a name): resolve first.
      // An IP literal is sent at once, with no promise.
      if (isIP(hostname)) return sendTo(hostname);
      return lookup(hostname, { family: v6 ? 0 : 4 }).then(({ address }) => sendTo(address));
    },
    close: () => socket.close(),
  }, () => Object.values(networkInterfaces()).flatMap((list) => list ?? []));
}
