// What the benchmarks need from the runtime, the same way on Deno, Bun and Node: its name
// and version, a forced garbage collection, the heap size, and the other runtimes' commands.
import { existsSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as v8 from "node:v8";
import * as vm from "node:vm";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

/** A runtime the suite runs on. */
export type RuntimeName = "deno" | "bun" | "node";

interface DenoGlobal {
  version: { deno: string; v8: string };
}
interface BunGlobal {
  version: string;
  gc(force: boolean): void;
}
const g = globalThis as { Deno?: DenoGlobal; Bun?: BunGlobal; gc?: () => void };

/** The runtime this process runs on. */
export const runtime: RuntimeName = g.Deno ? "deno" : g.Bun ? "bun" : "node";

/**
 * The machine, for the report: "2 cores (Intel(R) Xeon(R) Processor), 24 GiB". A ratio of two
 * releases' CPU times depends on the processor too, so a section that shows one names it.
 */
export function machineLabel(): string {
  const cores = cpus();
  const model = cores[0]?.model.trim() || "unknown CPU";
  return `${cores.length} cores (${model}), ${Math.round(totalmem() / 2 ** 30)} GiB`;
}

/** Name and version, for the report: "Deno 2.1.0 (V8 13.0)". */
export function runtimeLabel(): string {
  if (g.Deno) return `Deno ${g.Deno.version.deno} (V8 ${g.Deno.version.v8})`;
  if (g.Bun) return `Bun ${g.Bun.version} (JavaScriptCore)`;
  return `Node ${process.version} (V8 ${process.versions.v8})`;
}

let collect: (() => void) | undefined;

/**
 * A full garbage collection: `globalThis.gc` when the runtime was started with
 * `--expose-gc`, `Bun.gc(true)` on Bun, and otherwise V8's `gc` obtained by turning the
 * flag on at run time (`v8.setFlagsFromString` + a fresh `vm` context, which works on Node
 * and Deno), so that `deno task bench` needs no extra flag.
 */
export function gc(): void {
  if (!collect) {
    if (g.gc) collect = g.gc;
    else if (g.Bun) {
      const bun = g.Bun;
      collect = () => bun.gc(true);
    } else {
      v8.setFlagsFromString("--expose-gc");
      collect = vm.runInNewContext("gc") as () => void;
    }
  }
  // Twice: the first pass may only queue finalizers and weak references.
  collect();
  collect();
}

/** Bytes of JavaScript heap in use. */
export function heapUsed(): number {
  return process.memoryUsage().heapUsed;
}

/** The command that runs a TypeScript file on `name`, or undefined if it is not installed. */
export function commandFor(name: RuntimeName): string[] | undefined {
  const bin = (b: string) => {
    const local = join(ROOT, "node_modules", ".bin", b);
    return existsSync(local) ? local : undefined;
  };
  if (name === runtime) {
    if (runtime === "deno") return [process.execPath, "run", "-A"];
    if (runtime === "bun") return [process.execPath];
  }
  switch (name) {
    case "deno": {
      const deno = bin("deno");
      return deno ? [deno, "run", "-A"] : undefined;
    }
    case "bun": {
      const bun = bin("bun");
      return bun ? [bun] : undefined;
    }
    case "node": {
      const tsx = bin("tsx");
      return tsx ? [tsx] : undefined;
    }
  }
}

/** The `deno` executable (this one, or the npm package's), or undefined. */
export function denoBinary(): string | undefined {
  if (runtime === "deno") return process.execPath;
  const local = join(ROOT, "node_modules", ".bin", "deno");
  return existsSync(local) ? local : undefined;
}

/** Milliseconds from an arbitrary origin, with sub-millisecond resolution. */
export function now(): number {
  return performance.now();
}
