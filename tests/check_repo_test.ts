// The repository checker (.ci/check_repo.mjs) run on small git repositories made for each case:
// it must catch a broken link, a broken anchor and an oversized file, and pass a clean tree.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  anchorsOf,
  checkFileSizes,
  checkLinks,
  checkOwnWords,
  MAX_FILE_BYTES,
  slug,
  trackedFiles,
} from "../.ci/check_repo.mjs";

const checker = fileURLToPath(new URL("../.ci/check_repo.mjs", import.meta.url));

/** A git repository holding `files`, all tracked; removed by the returned function. */
function repo(files: Record<string, string | Uint8Array>): { root: string; done: () => void } {
  const root = mkdtempSync(join(tmpdir(), "gkv-check-repo-"));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  for (const args of [["init", "-q"], ["add", "-A"]]) {
    const r = spawnSync("git", args, { cwd: root, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  }
  return { root, done: () => rmSync(root, { recursive: true, force: true }) };
}

/** Runs the checker's command line on a repository (without the `deno publish` part). */
function runChecker(root: string): { status: number | null; output: string } {
  const r = spawnSync("node", [checker, `--root=${root}`, "--skip-published"], {
    encoding: "utf8",
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const GUIDE = [
  "# Guide",
  "",
  "## Set up: the `node` command",
  "",
  "### Deletes: the _grace_ period, and what it costs",
  "",
  "## Set up: the `node` command",
  "",
  "Other heading",
  "-------------",
  "",
  '<a id="custom"></a>',
  "",
].join("\n");

test("slug() makes GitHub's anchors: lower case, punctuation dropped, spaces to hyphens", () => {
  assert.equal(
    slug("Clocks and deletes (src/core/hlc.ts, src/core/engine.ts)"),
    "clocks-and-deletes-srccorehlcts-srccoreenginets",
  );
  assert.equal(slug("Kind 2: sealed"), "kind-2-sealed");
  assert.equal(slug("Look inside a running member: HTTP"), "look-inside-a-running-member-http");
  assert.equal(slug("The `max_drift_ms` bound"), "the-max_drift_ms-bound");
  assert.equal(slug("A [link](x.md) and _emphasis_"), "a-link-and-emphasis");
});

test("anchorsOf() lists headings (repeats numbered, setext included) and <a id>", () => {
  assert.deepEqual(
    [...anchorsOf(GUIDE)].sort(),
    [
      "custom",
      "deletes-the-grace-period-and-what-it-costs",
      "guide",
      "other-heading",
      "set-up-the-node-command",
      "set-up-the-node-command-1",
    ],
  );
  assert.deepEqual([...anchorsOf("```md\n# not a heading\n```\n")], []);
});

test("checkLinks() passes links that resolve, and skips code and absolute URLs", () => {
  const files: Record<string, string> = {
    "README.md": [
      "[guide](docs/guide.md#set-up-the-node-command-1), [self](#readme), [dir](docs),",
      "![img](docs/img.png) [web](https://example.com/x#y) [mail](mailto:a@b.c)",
      "`[in code](nowhere.md)`",
      "```",
      "[in a block](nowhere.md)",
      "```",
      "[ref]: docs/guide.md#custom",
      '<img src="docs/img.png" alt="">',
      "[line](src/a.ts#L3-L5)",
      "",
      "# Readme",
    ].join("\n"),
    "docs/guide.md": `${GUIDE}\n[back](../README.md#readme) [root](/README.md)\n`,
    "docs/img.png": "png",
    "src/a.ts": "export {};\n",
  };
  const problems = checkLinks(["README.md", "docs/guide.md"], Object.keys(files), (p) => files[p]!);
  assert.deepEqual(problems, []);
});

test("checkLinks() catches a link to a missing file and an anchor with no heading", () => {
  const files: Record<string, string> = {
    "README.md": [
      "See [the guide](docs/guide.md#durability) and [the protocol](PROTOCOL.md).",
      "Up [here](#nothing-here).",
      "[ref]: docs/missing.png",
      "# Readme",
    ].join("\n"),
    "docs/guide.md": GUIDE,
  };
  const problems = checkLinks(["README.md"], Object.keys(files), (p) => files[p]!);
  assert.equal(problems.length, 4, problems.join("\n"));
  assert.match(problems[0]!, /^README\.md:1: docs\/guide\.md#durability: .*no heading #durability/);
  assert.match(problems[1]!, /^README\.md:1: PROTOCOL\.md: no file or folder PROTOCOL\.md/);
  assert.match(problems[2]!, /^README\.md:2: #nothing-here: README\.md has no heading/);
  assert.match(problems[3]!, /^README\.md:3: docs\/missing\.png: no file or folder/);
});

test("checkLinks() against a published file list: a link to a file left out of it fails", () => {
  const files: Record<string, string> = {
    "README.md": "[protocol](PROTOCOL.md) [code](src/a.ts)\n",
    "PROTOCOL.md": "# Protocol\n",
  };
  const published = ["README.md", "src/a.ts"];
  const problems = checkLinks(
    ["README.md"],
    published,
    (p) => files[p]!,
    "in the published package",
  );
  assert.deepEqual(problems, [
    "README.md:1: PROTOCOL.md: no file or folder PROTOCOL.md in the published package",
  ]);
});

test("checkFileSizes() fails a tracked file over 1 MiB unless the allowlist names it, with a reason", () => {
  const { root, done } = repo({
    "big.bin": new Uint8Array(MAX_FILE_BYTES + 1),
    "limit.bin": new Uint8Array(MAX_FILE_BYTES),
  });
  try {
    const files = trackedFiles(root);
    assert.deepEqual(files.sort(), ["big.bin", "limit.bin"]);
    const [problem, ...rest] = checkFileSizes(root, files, "# nothing allowed\n");
    assert.deepEqual(rest, []);
    assert.match(problem!, /^big\.bin: 1,048,577 bytes, over the 1,048,576-byte limit/);
    assert.deepEqual(
      checkFileSizes(root, files, "big.bin # a fixture that must be this big\n"),
      [],
    );
    assert.match(checkFileSizes(root, files, "big.bin\n")[0]!, /big\.bin has no reason/);
    assert.match(
      checkFileSizes(root, files, "gone.bin # once needed\n")[1]!,
      /gone\.bin is not a tracked file/,
    );
  } finally {
    done();
  }
});

test("the command line fails on an oversized file and a broken link, and passes once fixed", () => {
  const broken = repo({
    "README.md": "[doc](docs/reliability.md#durability)\n",
    "docs/reliability.md": `# Reliability\n${"x".repeat(MAX_FILE_BYTES)}\n`,
  });
  try {
    const { status, output } = runChecker(broken.root);
    assert.equal(status, 1, output);
    assert.match(output, /FAIL tracked files over 1 MiB\n\s+docs\/reliability\.md: /);
    assert.match(
      output,
      /README\.md:1: docs\/reliability\.md#durability: .*no heading #durability/,
    );
  } finally {
    broken.done();
  }
  const fixed = repo({
    "README.md": "[doc](docs/reliability.md#durability)\n",
    "docs/reliability.md": "# Reliability\n\n## Durability\n",
  });
  try {
    const { status, output } = runChecker(fixed.root);
    assert.equal(status, 0, output);
  } finally {
    fixed.done();
  }
});

test("checkOwnWords() catches issue numbers, a request's wording and documents that do not exist", () => {
  // Built from pieces: this file is exempt, but the phrases should not sit in it verbatim.
  const files: Record<string, string> = {
    "README.md": "# Readme\nSee PROTOCOL.md.\n",
    "PROTOCOL.md": "# Protocol\n",
    "src/a.ts": `/** Offline checks (${"issue"} 6). */\n// Three mechanisms (${"DESIGN"}.md §3)\n`,
    "src/b.ts": `/** The state, as the ${"seed"} document shows it. */\n`,
    "docs/x.md": `At the ${"issue"}'s 5,000 writes/s; see ../README.md and docs/x.md.\n`,
    "src/clean.ts": "// Re-resolves the seed names; see PROTOCOL.md (kind 2).\n" +
      "// https://github.com/example/spec/blob/main/SETS.md describes tag 258.\n",
  };
  const problems = checkOwnWords(Object.keys(files), (p) => files[p]!);
  assert.deepEqual(problems.map((p) => p.split(": ")[0]), [
    "src/a.ts:1",
    "src/a.ts:2",
    "src/b.ts:1",
    "docs/x.md:1",
  ]);
  assert.match(problems[1]!, /"DESIGN\.md" is not a document of this repository/);
});
