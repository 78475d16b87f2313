// Runs the anti-entropy descent between two stores to completion, message by message, the
// way two members would over a lossless network, and counts what it cost.
import type { Envelope, Message } from "../src/core/messages.ts";
import type { Entry, Store } from "../src/core/store.ts";
import { type CompactOptions, syncReply, syncRoot } from "../src/core/sync.ts";
import { Wire } from "../src/wire/wire.ts";

export interface Reconciliation {
  /** Half round trips: how many times messages crossed the network, in waves. */
  legs: number;
  datagrams: number;
  bytes: number;
  /** Entries that crossed, in each direction. */
  sentAtoB: Entry[];
  sentBtoA: Entry[];
}

/**
 * One exchange opened by `a`. With `compact`, `b` answers the root with the compact descent
 * (as between two members of this release), else with the full one (as to release 0.1.0).
 */
export function reconcile(a: Store, b: Store, compact?: CompactOptions): Reconciliation {
  const wires = {
    a: new Wire({ cluster: "c", sender: "a" }),
    b: new Wire({ cluster: "c", sender: "b" }),
  };
  const stores = { a, b };
  const result: Reconciliation = { legs: 0, datagrams: 0, bytes: 0, sentAtoB: [], sentBtoA: [] };
  let inFlight: { to: "a" | "b"; messages: Message[] }[] = [{ to: "b", messages: [syncRoot(a)] }];
  while (inFlight.length) {
    result.legs++;
    const next: typeof inFlight = [];
    for (const { to, messages } of inFlight) {
      const from = to === "a" ? "b" : "a";
      // Encode and decode for real, so that bytes are counted exactly.
      const received: Message[] = [];
      for (const datagram of wires[from].encode(messages)) {
        result.datagrams++;
        result.bytes += datagram.length;
        const r = wires[to].decode(datagram, from, 0);
        if (r.status === "envelope") received.push(...(r.envelope as Envelope).messages);
      }
      const replies: Message[] = [];
      for (const m of received) {
        if (m.type === "entries") {
          (to === "b" ? result.sentAtoB : result.sentBtoA).push(...m.entries);
          for (const e of m.entries) stores[to].merge(e);
        } else {
          replies.push(...syncReply(stores[to], m, compact));
        }
      }
      if (replies.length) next.push({ to: from, messages: replies });
    }
    inFlight = next;
  }
  return result;
}
