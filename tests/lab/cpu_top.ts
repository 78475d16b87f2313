// Summarises a V8 CPU profile (the .cpuprofile a Node member writes with the lab's
// --profile=DIR): the functions with the most self time, and the project's files by total
// (inclusive) time, as shares of the samples.
//
//   node --import tsx tests/lab/cpu_top.ts DIR/CPU.*.cpuprofile [--top=25]
import { readFileSync } from "node:fs";
import process from "node:process";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

const files = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const top = Number(process.argv.find((a) => a.startsWith("--top="))?.slice(6) ?? 25);
if (!files.length) throw new Error("cpu_top.ts: give a .cpuprofile file");

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as {
    nodes: ProfileNode[];
    startTime: number;
    endTime: number;
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const where = (n: ProfileNode) => {
    const url = n.callFrame.url.replace(/^file:\/\/.*?\/(src|tests|node_modules)\//, "$1/");
    return `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`;
  };
  const self = new Map<string, number>();
  const inclusiveFile = new Map<string, number>();
  let total = 0;
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits) continue;
    total += hits;
    self.set(where(n), (self.get(where(n)) ?? 0) + hits);
    // Each project file on the stack once.
    const seen = new Set<string>();
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const url = byId.get(id)!.callFrame.url;
      const m = /\/(src\/[^?]*)$/.exec(url);
      if (m && !seen.has(m[1]!)) {
        seen.add(m[1]!);
        inclusiveFile.set(m[1]!, (inclusiveFile.get(m[1]!) ?? 0) + hits);
      }
    }
  }
  const pct = (n: number) => `${((100 * n) / total).toFixed(1).padStart(5)}%`;
  console.log(
    `${file}: ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s, ${total} samples`,
  );
  console.log("self time:");
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`  ${pct(v)}  ${k}`);
  }
  console.log("project files, inclusive:");
  for (const [k, v] of [...inclusiveFile].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`  ${pct(v)}  ${k}`);
  }
}
