// Bundling for workerd without nodejs_compat: esbuild with the `workerd` condition and a
// neutral platform resolves no `node:*` module, so any `node:*` import reachable from an
// entry point fails the build. mod.ts (the core) and ./edge must build; the edge bundle
// must not even name a `node:*` module.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bundle, ROOT, scratchDir } from "./_edge.ts";

test("mod.ts and ./edge bundle for workerd without nodejs_compat (no node:* import reachable)", () => {
  const scratch = scratchDir();
  try {
    for (
      const [entry, nodeNamesAllowed] of [["mod.ts", true], ["src/edge/mod.ts", false]] as const
    ) {
      const out = join(scratch.dir, entry.replace(/\W/g, "_") + ".js");
      bundle(join(ROOT, entry), out);
      const code = readFileSync(out, "utf8");
      assert.doesNotMatch(code, /\bimport\s*\(?\s*["']node:/, `${entry}: an import of node:*`);
      assert.doesNotMatch(code, /\bfrom\s*["']node:/, `${entry}: an import of node:*`);
      if (!nodeNamesAllowed) assert.doesNotMatch(code, /node:/, `${entry} names a node:* module`);
    }
  } finally {
    scratch.cleanup();
  }
});
