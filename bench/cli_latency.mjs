// Time for one write (HTTP PUT on one member) to reach the other two members of a 3-process
// cluster (one Deno, one Bun, one Node, started with the node command) on loopback; the
// others are polled with GET /usr/:key. Prints each run and the median.
//   node bench/cli_latency.mjs [runs=21]      (after npm ci; a measurement, not a test)
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const runs = Number(process.argv[2] ?? 21);
const base = 17000 + Math.floor(Math.random() * 2000);
const cmds = {
  deno: [
    "node_modules/.bin/deno",
    "run",
    "--unstable-net",
    "--allow-net",
    "--allow-read",
    "--allow-env",
    "--allow-sys=hostname,networkInterfaces",
    "src/cli.ts",
  ],
  bun: ["node_modules/.bin/bun", "src/cli.ts"],
  node: ["node", "--import", "tsx", "src/cli.ts"],
};
const names = Object.keys(cmds);
const seeds = names.map((_, i) => `127.0.0.1:${base + i}`).join(",");
const kids = names.map((n, i) =>
  spawn(cmds[n][0], [
    ...cmds[n].slice(1),
    `--id=${n}`,
    "--bind=127.0.0.1",
    `--port=${base + i}`,
    `--http-port=${base + 100 + i}`,
    `--seeds=${seeds}`,
    "--log-level=warn",
  ], { cwd: ROOT, stdio: "inherit" })
);
const url = (i) => `http://127.0.0.1:${base + 100 + i}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
try {
  for (;;) {
    const ok = await Promise.all(
      names.map((_, i) =>
        fetch(`${url(i)}/healthz`).then((r) => r.json()).then((h) => h.members === 3).catch(() =>
          false
        )
      ),
    );
    if (ok.every(Boolean)) break;
    await sleep(100);
  }
  await sleep(2000);
  const times = [];
  const puts = [];
  for (let r = 0; r < runs; r++) {
    const w = r % 3;
    const key = `k${r}-${Date.now()}`;
    const others = [0, 1, 2].filter((i) => i !== w);
    const t0 = performance.now();
    const put = await fetch(`${url(w)}/usr/${key}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(r),
    });
    if (put.status !== 204) throw new Error(`PUT ${put.status}`);
    puts.push(performance.now() - t0);
    const arrived = await Promise.all(others.map(async (i) => {
      for (;;) {
        const res = await fetch(`${url(i)}/usr/${key}`);
        if (res.ok) {
          await res.text();
          return performance.now() - t0;
        }
        await res.text();
      }
    }));
    const ms = Math.max(...arrived);
    times.push(ms);
    console.log(`run ${r}: written on ${names[w]}, on both others after ${ms.toFixed(1)} ms`);
    await sleep(300);
  }
  times.sort((a, b) => a - b);
  puts.sort((a, b) => a - b);
  console.log(
    `PUT answered (204) after a median ${puts[Math.floor(puts.length / 2)].toFixed(1)} ms`,
  );
  console.log(
    `median ${times[Math.floor(times.length / 2)].toFixed(1)} ms, min ${times[0].toFixed(1)}, max ${
      times.at(-1).toFixed(1)
    } (${runs} runs, PUT round trip included)`,
  );
} finally {
  for (const k of kids) k.kill("SIGTERM");
}
