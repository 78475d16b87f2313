/**
 * The body of an edge replica's exchange with a member over HTTP (`POST /edge/sync`): one
 * kind-0 datagram of `codec.ts` (an envelope of protocol messages), never fragmented and
 * never sealed: TLS and the bearer token of the member's HTTP API protect it.
 *
 * @module
 */

import type { Envelope, Message } from "../core/messages.ts";
import { decodeDatagram, packDatagrams } from "./codec.ts";

/** Media type of an exchange body. */
export const EXCHANGE_TYPE = "application/x-gossip-kv";

/**
 * Packs messages into as few bodies of at most `maxBytes` as it can. Throws a `RangeError`
 * when one entry alone does not fit in a body.
 */
export function encodeExchange(
  cluster: string,
  sender: string,
  messages: readonly Message[],
  maxBytes: number,
): Uint8Array[] {
  const bodies = packDatagrams(messages, {
    cluster,
    sender,
    mtu: maxBytes,
    nextFragmentId: () => {
      throw new RangeError(`An entry does not fit in a request of ${maxBytes} bytes`);
    },
  });
  return bodies;
}

/**
 * Decodes one exchange body of this `cluster`. Throws a `TypeError` saying what is wrong
 * with anything else (not an envelope, another cluster, malformed, over `maxBytes`).
 */
export function decodeExchange(bytes: Uint8Array, cluster: string, maxBytes: number): Envelope {
  const d = decodeDatagram(bytes, cluster, maxBytes);
  if (d.kind === "envelope") return d.envelope;
  if (d.kind === "dropped") {
    throw new TypeError(`Not a Gossip KV exchange (${d.reason}): ${d.detail}`);
  }
  throw new TypeError(`Not a Gossip KV exchange: a ${d.kind} datagram, where an envelope belongs`);
}
