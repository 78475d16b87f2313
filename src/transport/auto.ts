/**
 * {@linkcode autoTransport}: the UDP transport of whatever runtime this is.
 *
 * The adapters are loaded with dynamic `import()`, so importing this module (and `mod.ts`,
 * which re-exports it) pulls in neither `node:dgram` nor any runtime global: an edge
 * bundle that never calls `autoTransport` still loads. Each adapter is also its own
 * sub-export (`./transport/deno`, `./transport/bun`, `./transport/node`).
 *
 * @module
 */

import { bunGlobal, denoGlobal } from "../_runtime.ts";
import type { UdpTransport, UdpTransportOptions } from "./udp.ts";

/**
 * Which UDP adapter {@linkcode autoTransport} picks here, by feature detection:
 * `Deno.listenDatagram` (Deno with `--unstable-net`), then `Bun.udpSocket`, then
 * `node:dgram` (Node, and Deno without the flag).
 *
 * @example
 * ```ts
 * import { detectUdpRuntime } from "@gossip-kv/gossip-kv";
 * console.log(detectUdpRuntime()); // "deno", "bun" or "node"
 * ```
 */
export function detectUdpRuntime(): "deno" | "bun" | "node" {
  if (typeof denoGlobal()?.listenDatagram === "function") return "deno";
  if (typeof bunGlobal()?.udpSocket === "function") return "bun";
  return "node";
}

/**
 * Binds a UDP socket with the best API of the runtime (see
 * {@linkcode detectUdpRuntime}). On Deno, the native API needs `--unstable-net` (or
 * `"unstable": ["net"]` in `deno.json`); without it this falls back to `node:dgram`,
 * which works on Deno without any flag. Runtimes with neither reject.
 *
 * @example Two members over UDP on loopback
 * ```ts
 * import { autoTransport, GossipKV } from "@gossip-kv/gossip-kv";
 *
 * const a = await GossipKV.start({
 *   id: "a",
 *   transport: await autoTransport({ hostname: "127.0.0.1", port: 0 }),
 * });
 * const b = await GossipKV.start({
 *   id: "b",
 *   transport: await autoTransport({ hostname: "127.0.0.1", port: 0 }),
 *   seeds: [a.address],
 * });
 * await a.set("greeting", "hello");
 * await new Promise((resolve) => setTimeout(resolve, 200));
 * console.log(b.get("greeting")); // "hello"
 * await Promise.all([a.close(), b.close()]);
 * ```
 */
export async function autoTransport(options: UdpTransportOptions = {}): Promise<UdpTransport> {
  switch (detectUdpRuntime()) {
    case "deno":
      return (await import("./deno_udp.ts")).denoUdpTransport(options);
    case "bun":
      return (await import("./bun_udp.ts")).bunUdpTransport(options);
    case "node":
      return (await import("./node_udp.ts")).nodeUdpTransport(options);
  }
}
