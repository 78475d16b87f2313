// Introduces a member to an engine by hand, as a stranger is admitted: the engine hears from
// it, keeps it a candidate and pings it, and admits it on its ack (a round trip, see Candidate
// in src/core/membership.ts).
import assert from "node:assert/strict";
import type { Engine } from "../src/core/engine.ts";
import type { Message } from "../src/core/messages.ts";

/**
 * Has `x` admit `y` at `now`. `y` is either another engine, which then admits `x` the same way
 * (the two relay each other's pings, acks and member records), or the id of a peer at
 * `${y}:1` that the test speaks for (it answers the ping with an ack). Asserts each step;
 * other output is taken and discarded.
 */
export function meet(x: Engine, y: Engine | string, now = 0): void {
  const peer = typeof y === "string" ? { id: y, address: `${y}:1` } : y;
  x.receive(peer.address, envelope(peer.id, []), now);
  assert.equal(x.membership.get(peer.id), undefined, `${peer.id} is a candidate until it answers`);
  let toPeer = handshake(x, peer.address);
  const ping = toPeer.find((m) => m.type === "ping" && m.target === peer.id);
  assert.ok(ping?.type === "ping", `${x.id} pings ${peer.id}`);
  if (typeof y === "string") {
    x.receive(peer.address, envelope(peer.id, [{ type: "ack", seq: ping.seq }]), now);
  } else {
    for (let i = 0; i < 4 && toPeer.length; i++) {
      y.receive(x.address, envelope(x.id, toPeer), now);
      x.receive(y.address, envelope(y.id, handshake(y, x.address)), now);
      toPeer = handshake(x, y.address);
    }
    assert.equal(y.membership.get(x.id)?.status, "alive", `${y.id} admitted ${x.id}`);
    y.takeOutput();
  }
  assert.equal(x.membership.get(peer.id)?.status, "alive", `${x.id} admitted ${peer.id}`);
  x.takeOutput();
}

function envelope(sender: string, messages: Message[]) {
  return { cluster: "c", sender, messages };
}

/** The pings, acks and member records `e` sends to `address` (taking its output). */
function handshake(e: Engine, address: string): Message[] {
  return e.takeOutput().outgoing.filter((o) => o.to === address).flatMap((o) =>
    o.messages.filter((m) => m.type === "ping" || m.type === "ack" || m.type === "member")
  );
}
