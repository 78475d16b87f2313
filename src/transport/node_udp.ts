/**
 * UDP transport on `node:dgram`: Node's own, and also Deno's and Bun's Node-compatible
 * one. It is what {@linkcode autoTransport} uses on Deno without `--unstable-net`.
 *
 * @example
 * ```ts
 * import { nodeUdpTransport } from "@gossip-kv/gossip-kv/transport/node";
 * const transport = await nodeUdpTransport({ hostname: "127.0.0.1", port: 0 });
 * console.log(transport.address); // "127.0.0.1:40123"
 * await transport.close();
 * ```
 *
 * @module
 */

import type * as Dgram from "node:dgram";
import type * as Os from "node:os";
import { denoGlobal } from "../_runtime.ts";
import {
  bindOptions,
  isIPv6,
  nodeBuiltin,
  type UdpTransport,
  udpTransport,
  type UdpTransportOptions,
} from "./udp.ts";

export type { DatagramHandler, Transport, UdpTransport, UdpTransportOptions } from "./udp.ts";

/** Datagrams per turn on Deno's node:dgram (16 elsewhere). */
const DENO_NODE_DGRAM_BURST = 8;

/** Receive buffer asked of the kernel (Node and Bun; Linux grants up to `net.core.rmem_max`). */
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Binds a UDP socket with `node:dgram`. Rejects with the runtime's error when the bind
 * fails (for example `EADDRINUSE`).
 *
 * @example
 * ```ts ignore
 * import { nodeUdpTransport } from "@gossip-kv/gossip-kv/transport/node";
 * const transport = await nodeUdpTransport({ hostname: "::", port: 7946 });
 * ```
 */
export async function nodeUdpTransport(options: UdpTransportOptions = {}): Promise<UdpTransport> {
  const bind = bindOptions(options);
  const v6 = isIPv6(bind.hostname);
  const { createSocket } = nodeBuiltin<typeof Dgram>("node:dgram");
  const { networkInterfaces } = nodeBuiltin<typeof Os>("node:os");
  const deno = denoGlobal() !== undefined;
  const socket = createSocket({
    type: v6 ? "udp6" : "udp4",
    // Ask for room for bursts; the kernel caps it (Linux: net.core.rmem_max). Not on Deno:
    // its node:dgram never passes the size to the kernel (the socket keeps the default
    // buffer) but allocates a receive buffer of twice that size for every datagram.
    ...(deno ? {} : { recvBufferSize: RECV_BUFFER_BYTES }),
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ port: bind.port, address: bind.hostname }, () => {
      socket.off("error", reject);
      resolve();
    });
  }).catch((error) => {
    socket.close();
    throw error;
  });
  // An "error" event without a listener would crash the process; send errors reach
  // their callbacks, and nothing else may stop the member.
  socket.on("error", () => {});
  const local = socket.address();
  return udpTransport("node", options, {
    bound: { hostname: local.address, port: local.port },
    listen(deliver) {
      socket.on("message", (message, from) => {
        const data = new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
        // Deno's node:dgram receives every datagram into a 64 KiB buffer of its own, which
        // a view would keep alive as long as the datagram (a 1 MiB value's ~760 fragments,
        // waiting to be reassembled, would hold ~48 MiB): a right-sized copy instead.
        deliver(deno ? data.slice() : data, from.address, from.port);
      });
    },
    send: (data, hostname, port) =>
      new Promise<void>((resolve, reject) => {
        // A udp6 socket reaches IPv4 peers through IPv4-mapped addresses; Node does not
        // translate them itself (it fails with EINVAL).
        const host = v6 && /^\d+\.\d+\.\d+\.\d+$/.test(hostname) ? `::ffff:${hostname}` : hostname;
        socket.send(data, port, host, (error) => (error ? reject(error) : resolve()));
      }),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
    // Deno polls I/O only every few dozen immediate turns: bursts wait for timers there.
    timerTurns: deno,
    // And its node:dgram receives slowly: a burst of 2,000 datagrams to a receiver in the same
    // process lost some in 28 of 60 runs at 16 a turn, in none of 36 at 8 (a busy machine).
    ...(deno && { burst: DENO_NODE_DGRAM_BURST }),
  }, () => Object.values(networkInterfaces()).flatMap((list) => list ?? []));
}
