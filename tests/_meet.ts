// Introduces two engines to each other by hand: each hears from the other, and the pings and
// acks that admit a member (a round trip, see Candidate in src/core/membership.ts) go through.
import type { Engine } from "../src/core/engine.ts";

/** Runs the handshake between `x` and `y` at `now`; other output is taken and discarded. */
export function meet(x: Engine, y: Engine, now: number): void {
  x.receive(y.address, { cluster: "c", sender: y.id, messages: [] }, now);
  y.receive(x.address, { cluster: "c", sender: x.id, messages: [] }, now);
  for (let i = 0; i < 4; i++) {
    for (const [from, to] of [[x, y], [y, x]] as const) {
      for (const o of from.takeOutput().outgoing) {
        if (o.to !== to.address) continue;
        const messages = o.messages.filter((m) =>
          m.type === "ping" || m.type === "ack" || m.type === "member"
        );
        to.receive(from.address, { cluster: "c", sender: from.id, messages }, now);
      }
    }
  }
  if (!x.membership.get(y.id) || !y.membership.get(x.id)) throw new Error("they did not meet");
}
