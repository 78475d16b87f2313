// The fault lab's stranger: a host without the cluster key that sends datagrams to the
// members, from its own address. tests/lab/run.ts prepares them (garbage, forgeries, and
// sealed datagrams captured on the wire earlier) in a JSON file:
//
//   node --import tsx tests/lab/stranger.ts datagrams.json [--listen=PORT] [--linger=MS]
//
// [{ "to": "10.213.0.10:7946", "data": "<base64>", "kind": "garbage" }, ...]
// Sends them in order, paced (a datagram every 0.2 ms), and prints how many of each kind.
// With --listen, it also listens on that UDP port (where a forged ping-req asked a member to
// send), and for --linger ms after the last datagram (default 0; 2,000 with --listen) counts
// what arrives there and on its sending socket: what its forgeries made the members send it.
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import process from "node:process";

interface Datagram {
  to: string;
  data: string;
  kind: string;
}

const flags = new Map(
  process.argv.slice(3).map((a) => {
    const m = /^--(listen|linger)=(\d+)$/.exec(a);
    if (!m) throw new Error(`stranger.ts: bad argument ${a} (--listen=PORT, --linger=MS)`);
    return [m[1]!, Number(m[2])] as const;
  }),
);
const listen = flags.get("listen");
const linger = flags.get("linger") ?? (listen === undefined ? 0 : 2_000);

const list = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as Datagram[];
const received = { datagrams: 0, bytes: 0 };
const count = (msg: Uint8Array) => {
  received.datagrams++;
  received.bytes += msg.length;
};
const socket = createSocket("udp4");
socket.on("message", count);
await new Promise<void>((resolve) => socket.bind(0, resolve));
const listener = listen === undefined ? undefined : createSocket("udp4");
if (listener) {
  listener.on("message", count);
  await new Promise<void>((resolve) => listener.bind(listen, resolve));
}
const counts: Record<string, number> = {};
let errors = 0;
for (const [i, d] of list.entries()) {
  const colon = d.to.lastIndexOf(":");
  const bytes = Buffer.from(d.data, "base64");
  await new Promise<void>((resolve) =>
    socket.send(bytes, Number(d.to.slice(colon + 1)), d.to.slice(0, colon), (error) => {
      if (error) errors++;
      else counts[d.kind] = (counts[d.kind] ?? 0) + 1;
      resolve();
    })
  );
  if (i % 5 === 4) await new Promise((r) => setTimeout(r, 1));
}
if (linger > 0) await new Promise((r) => setTimeout(r, linger));
socket.close();
listener?.close();
console.log(JSON.stringify({ sent: counts, errors, received }));
