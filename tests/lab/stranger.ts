// The fault lab's stranger: a host without the cluster key that sends datagrams to the
// members, from its own address. tests/lab/run.ts prepares them (garbage, forgeries, and
// sealed datagrams captured on the wire earlier) in a JSON file:
//
//   node --import tsx tests/lab/stranger.ts datagrams.json
//
// [{ "to": "10.213.0.10:7946", "data": "<base64>", "kind": "garbage" }, ...]
// Sends them in order, paced (a datagram every 0.2 ms), and prints how many of each kind.
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import process from "node:process";

interface Datagram {
  to: string;
  data: string;
  kind: string;
}

const list = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as Datagram[];
const socket = createSocket("udp4");
await new Promise<void>((resolve) => socket.bind(0, resolve));
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
socket.close();
console.log(JSON.stringify({ sent: counts, errors }));
