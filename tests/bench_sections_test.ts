import assert from "node:assert/strict";
import { test } from "node:test";
import { CPU, EDGE, keepSections, withSection } from "../bench/sections.ts";

const edge = `${EDGE.begin}\n## 7. Edge replica\nold\n${EDGE.end}`;
const cpu = `${CPU.begin}\n## 8. CPU per replicated write\nold\n${CPU.end}`;

test("bench sections: a section is replaced in place, the text around it kept", () => {
  const doc = `# Benchmarks\n\nintro\n\n${edge}\n\n${cpu}\n`;
  const fresh = `${CPU.begin}\n## 8. CPU per replicated write\nnew\n${CPU.end}`;
  assert.equal(withSection(doc, CPU, fresh), `# Benchmarks\n\nintro\n\n${edge}\n\n${fresh}\n`);
});

test("bench sections: a section the file lacks is appended", () => {
  assert.equal(withSection("# Benchmarks\n\n", CPU, cpu), `# Benchmarks\n\n${cpu}\n`);
});

test("bench sections: a rewrite keeps every section the old file had, and only those", () => {
  const before = `# old\n\n${edge}\n\n${cpu}\n`;
  assert.equal(keepSections(before, "# new\n"), `# new\n\n${edge}\n\n${cpu}\n`);
  assert.equal(keepSections(`# old\n\n${cpu}\n`, "# new\n"), `# new\n\n${cpu}\n`);
  assert.equal(keepSections("# old\n", "# new\n"), "# new\n");
});
