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

import { denoGlobal } from "../_runtime.ts";
import { Receives } from "./_deno_receives.ts";
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
      listen: (deliver) => new Receives(conn, deliver, () => closed).start(),
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
