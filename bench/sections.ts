// Sections of docs/benchmarks.md written by a bench script of their own, not by bench/main.ts:
// each lies between two markers, and bench/main.ts keeps them when it rewrites the file.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./env.ts";

/** The markers around a section. */
export interface Marks {
  readonly begin: string;
  readonly end: string;
}

/** The edge replica's section (bench/edge.ts). */
export const EDGE: Marks = { begin: "<!-- edge:begin -->", end: "<!-- edge:end -->" };
/** The CPU per replicated write section (bench/cpu_per_write.ts). */
export const CPU: Marks = { begin: "<!-- cpu:begin -->", end: "<!-- cpu:end -->" };
/** Every kept section, in the order they are appended to a file that has none. */
const KEPT: readonly Marks[] = [EDGE, CPU];

/** The section of `markdown` between `marks`, markers included, if it has one. */
function find(markdown: string, marks: Marks): string | undefined {
  const a = markdown.indexOf(marks.begin);
  const b = markdown.indexOf(marks.end);
  return a >= 0 && b > a ? markdown.slice(a, b + marks.end.length) : undefined;
}

/** `markdown` with its section between `marks` replaced by `section`, or `section` appended. */
export function withSection(markdown: string, marks: Marks, section: string): string {
  const old = find(markdown, marks);
  if (old !== undefined) {
    const a = markdown.indexOf(marks.begin);
    return markdown.slice(0, a) + section + markdown.slice(a + old.length);
  }
  return `${markdown.trimEnd()}\n\n${section}\n`;
}

/** `fresh` with every kept section of `before` (see {@linkcode KEPT}) that `before` has. */
export function keepSections(before: string, fresh: string): string {
  let out = fresh;
  for (const marks of KEPT) {
    const section = find(before, marks);
    if (section !== undefined) out = withSection(out, marks, section);
  }
  return out;
}

/** Writes `section` into docs/benchmarks.md between `marks`; returns the file's path. */
export function writeSection(marks: Marks, section: string): string {
  const file = join(ROOT, "docs", "benchmarks.md");
  writeFileSync(file, withSection(readFileSync(file, "utf8"), marks, section));
  return file;
}
