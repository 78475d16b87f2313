// Opens `count` HTTP connections to `host` (default 127.0.0.1):`port`, sends `GET path` on
// each and never reads a byte: slow clients for tests/lab/slow_clients.ts and the fault lab's
// hostile scenario. Prints {"open": n} once all are connected, then holds them until killed.
import { connect } from "node:net";

const [port, path, count, host = "127.0.0.1"] = process.argv.slice(2);
let open = 0;
const sockets = [];
for (let i = 0; i < Number(count); i++) {
  await new Promise((resolve) => {
    const s = connect(Number(port), host, () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
      s.pause();
      open++;
      resolve();
    });
    s.on("error", () => resolve());
    sockets.push(s);
  });
}
process.stdout.write(JSON.stringify({ open }) + "\n");
setInterval(() => {}, 60_000);
