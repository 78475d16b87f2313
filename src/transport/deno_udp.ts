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

import { type DenoAddr, type DenoDatagramConn, denoGlobal } from "../_runtime.ts";
import { bindOptions, type UdpTransport, udpTransport, type UdpTransportOptions } from "./udp.ts";

export type { DatagramHandler, Transport, UdpTransport, UdpTransportOptions } from "./udp.ts";

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
  return typeof denoGlobal()?.listenDatagram === "function";
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
  const runtime = denoGlobal();
  if (typeof runtime?.listenDatagram !== "function") {
    return Promise.reject(
      new TypeError(
        "Deno.listenDatagram is not available: run Deno with --unstable-net " +
          '(or "unstable": ["net"] in deno.json), or use nodeUdpTransport',
      ),
    );
  }
  try {
    const conn = runtime.listenDatagram({ transport: "udp", ...bindOptions(options) });
    let closed = false;
    return Promise.resolve(udpTransport("deno", options, {
      bound: { hostname: conn.addr.hostname, port: conn.addr.port },
      listen: (deliver) => {
        for (let n = 0; n < PENDING_RECEIVES; n++) void receiveLoop(conn, deliver, () => closed);
      },
      send: (data, hostname, port) => conn.send(data, { transport: "udp", hostname, port }),
      close() {
        closed = true;
        conn.close();
      },
      // Deno polls I/O only every few dozen immediate turns: bursts wait for timers.
      timerTurns: true,
    }, () => runtime.networkInterfaces?.() ?? []));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Receives kept pending at once on the socket. With one, a member whose event loop also
 * serves many HTTP connections all but stops reading its socket, although its timers run on
 * time, and the kernel drops what arrives (in the fault lab, the cluster's pings and acks with
 * the rest: the peers declared the member dead). Measured with tests/lab/deno_udp_reads.ts
 * (2,000 clients connecting, ~2,900 datagrams/s arriving, two other processes burning a core
 * each), datagrams read per second: one pending, 48-685; 8 pending, mostly 30-500; 32 pending,
 * 204-2,256. Each holds a 64 KiB buffer: 2 MiB in all.
 */
const PENDING_RECEIVES = 32;

async function receiveLoop(
  conn: DenoDatagramConn,
  deliver: (data: Uint8Array, hostname: string, port: number) => void,
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
    deliver(datagram[0].slice(), datagram[1].hostname, datagram[1].port);
  }
}
