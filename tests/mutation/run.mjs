// Mutation testing of the core, the wire and the storage with StrykerJS.
//
//   npm run mutation               every group, then docs/mutation.md
//   npm run mutation -- core-data  one group (names below), then docs/mutation.md
//   npm run mutation -- --report   only rewrite docs/mutation.md from the last reports
//   npm run mutation -- wire --files src/wire/crypto.ts,src/wire/sealing.ts
//                                  some modules of one group (the others keep their figures)
//   npm run mutation -- --verify core-parts
//                                  plant each survivor of a group's last run by hand in a
//                                  scratch copy and run all of the group's tests on it: a
//                                  failure means Stryker's per-test selection missed a test
//
// Each group mutates a few modules and runs only the test files that exercise them (each
// through tsx under node:test, read back as TAP), so a mutant costs seconds, not minutes.
// Slow: hours for everything on two cores. Not part of CI. Stryker runs at the lowest CPU
// priority (`nice -n 19`), one mutant at a time (STRYKER_CONCURRENCY raises it).
//
// Each run leaves a summary of its group in tests/mutation/results/<group>.json (counts per
// module and every surviving mutant); docs/mutation.md is written from those summaries, so
// groups measured at different times make one report.
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const reports = join(root, "reports", "mutation");
const results = join(root, "tests", "mutation", "results");

/**
 * Modules to mutate, and the tests that exercise them. The engine's parts are mutated
 * against fast unit tests only (no cluster test: a mutant must cost seconds). Groups
 * `core-sync` and `core-broadcast` hold the modules measured separately:
 * `npm run mutation -- core-sync core-broadcast` adds them to the report.
 */
export const GROUPS = {
  "core-data": {
    mutate: ["src/core/hlc.ts", "src/core/hash.ts", "src/core/store.ts", "src/core/merkle.ts"],
    tests: [
      "tests/hlc_test.ts",
      "tests/hash_test.ts",
      "tests/store_test.ts",
      "tests/merkle_test.ts",
      "tests/boundaries_test.ts",
    ],
  },
  "core-sync": {
    mutate: ["src/core/sync.ts", "src/core/anti_entropy.ts", "src/core/random.ts"],
    tests: [
      "tests/merkle_test.ts",
      "tests/engine_test.ts",
      "tests/random_test.ts",
      "tests/sync_test.ts",
      "tests/sync_compact_test.ts",
      "tests/engine_units_test.ts",
      "tests/engine_parts_test.ts",
      "tests/anti_entropy_test.ts",
      "tests/sync_edges_test.ts",
      "tests/sync_deepest_test.ts",
    ],
  },
  "core-broadcast": {
    mutate: ["src/core/broadcast.ts", "src/core/tree_dissemination.ts"],
    // The unit tests on virtual time only: tests/broadcast_test.ts simulates clusters of up
    // to 100 members, which costs tens of seconds a mutant under Stryker's instrumentation.
    tests: [
      "tests/broadcast_units_test.ts",
      "tests/broadcast_takeover_test.ts",
      "tests/broadcast_dissemination_test.ts",
      "tests/engine_test.ts",
    ],
  },
  "core-parts": {
    mutate: [
      "src/core/address.ts",
      "src/core/config.ts",
      "src/core/context.ts",
      "src/core/counters.ts",
      "src/core/dissemination.ts",
      "src/core/engine.ts",
      "src/core/graveyard.ts",
      "src/core/large_values.ts",
      "src/core/membership.ts",
      "src/core/messages.ts",
      "src/core/outbox.ts",
      "src/core/records.ts",
      "src/core/suspicion.ts",
      "src/core/swim.ts",
    ],
    tests: [
      "tests/address_test.ts",
      "tests/engine_parts_test.ts",
      "tests/engine_test.ts",
      "tests/membership_test.ts",
      "tests/suspicion_test.ts",
      "tests/swim_test.ts",
      "tests/swim_candidates_test.ts",
      "tests/engine_units_test.ts",
      "tests/engine_handoff_test.ts",
      "tests/forged_member_test.ts",
      "tests/anti_entropy_test.ts",
    ],
  },
  "wire": {
    mutate: ["src/wire/*.ts"],
    tests: [
      "tests/wire_test.ts",
      "tests/wire_fields_test.ts",
      "tests/crypto_test.ts",
      "tests/crypto_fields_test.ts",
      "tests/sealing_test.ts",
      "tests/exchange_test.ts",
      "tests/boundaries_test.ts",
      "tests/wire_bounds_test.ts",
      "tests/wire_cbor_test.ts",
      "tests/sealing_window_test.ts",
      "tests/sealing_chains_test.ts",
      "tests/wire_edges_test.ts",
      "tests/sync_compact_test.ts",
    ],
  },
  "storage": {
    mutate: ["src/storage/*.ts"],
    // Fastest first: with `bundle` the run of a mutant stops at its first failing test.
    tests: [
      "tests/storage_file_fields_test.ts",
      "tests/storage_dir_fsync_test.ts",
      "tests/storage_log_fields_test.ts",
      "tests/storage_log_test.ts",
      "tests/storage_memory_test.ts",
      "tests/storage_file_faults_test.ts",
      "tests/storage_file_edges_test.ts",
      "tests/storage_file_test.ts",
      "tests/storage_member_test.ts",
    ],
    // Every mutant of file.ts is covered by nearly every one of these files, so choosing
    // files per mutant saves little, while each file run costs a process start (about a
    // second: node, tsx, the imports). Bundled, they run in one process per mutant.
    bundle: true,
  },
};

/**
 * Runs Stryker on group `name`, or on some of its modules only (`only`: the other modules
 * keep the figures of their last run).
 */
function run(name, only) {
  const group = GROUPS[name];
  if (!group) throw new Error(`No group ${name}: one of ${Object.keys(GROUPS).join(", ")}`);
  const outside = only?.filter((f) => owner(f) !== name) ?? [];
  if (outside.length) throw new Error(`Not modules of group ${name}: ${outside.join(", ")}`);
  const part = only ? `${name}-part` : name;
  mkdirSync(reports, { recursive: true });
  const tests = group.tests.filter((t) => existsSync(join(root, t)));
  // A bundle is one test file importing the group's files in order (removed after the run).
  const bundle = group.bundle ? join("tests", "mutation", `_bundle_${name}.ts`) : undefined;
  if (bundle) {
    writeFileSync(
      join(root, bundle),
      `// Generated by tests/mutation/run.mjs for one Stryker run.\n${
        tests.map((t) => `import "../${t.slice("tests/".length)}";\n`).join("")
      }`,
    );
  }
  try {
    stryker(name, only, part, bundle ? [bundle] : tests);
  } finally {
    if (bundle) rmSync(join(root, bundle), { force: true });
  }
}

/** Runs Stryker on the modules of group `name` (or `only` those) against `testFiles`. */
function stryker(name, only, part, testFiles) {
  const group = GROUPS[name];
  const config = {
    $schema: "./node_modules/@stryker-mutator/core/schema/stryker-schema.json",
    packageManager: "npm",
    testRunner: "tap",
    plugins: ["@stryker-mutator/tap-runner"],
    tap: {
      testFiles,
      nodeArgs: [
        "--import",
        "tsx",
        "--import",
        "./tests/mutation/_fail_fast.mjs",
        "--test-reporter=tap",
      ],
    },
    mutate: only ?? group.mutate,
    coverageAnalysis: "perTest",
    // No "// @ts-nocheck" added to the sandbox's files (tsx does not type-check, and the
    // vendored cbor-x files must stay byte for byte those of the npm package).
    disableTypeChecks: false,
    concurrency: Number(process.env.STRYKER_CONCURRENCY ?? 1),
    timeoutMS: 5_000,
    timeoutFactor: 1.5,
    ignorePatterns: [
      "docs",
      "deployment",
      "bench",
      "examples",
      "reports",
      ".scratch",
      ".ci",
      ".stryker-tmp-*",
    ],
    reporters: ["json", "clear-text", "progress"],
    jsonReporter: { fileName: join("reports", "mutation", `${part}.json`) },
    tempDirName: `.stryker-tmp-${part}`,
    cleanTempDir: "always",
  };
  const file = join(reports, `${part}.config.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  const bin = join(root, "node_modules", ".bin", "stryker");
  const nice = spawnSync("nice", ["true"]).status === 0;
  const started = Date.now();
  // The commit measured is the one checked out when the run starts (Stryker copies the tree).
  const commit = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" })
    .stdout.trim();
  const r = spawnSync(nice ? "nice" : bin, [
    ...(nice ? ["-n", "19", bin] : []),
    "run",
    file,
  ], {
    cwd: root,
    stdio: "inherit",
  });
  if (r.status !== 0) throw new Error(`Stryker failed on ${name} (exit ${r.status})`);
  summarize(name, join(reports, `${part}.json`), Date.now() - started, commit, only !== undefined);
}

/**
 * Condenses Stryker's JSON report of group `name` into tests/mutation/results/<name>.json;
 * a run of some of its modules (`partial`) replaces only theirs, each noting its commit.
 */
function summarize(name, path, ms, commit, partial) {
  const json = JSON.parse(readFileSync(path, "utf8"));
  const files = {};
  for (const [file, { mutants, source }] of Object.entries(json.files)) {
    const lines = source.split("\n");
    const f = { killed: 0, timeout: 0, other: 0, survivors: [] };
    for (const m of mutants) {
      if (m.status === "Killed") f.killed++;
      else if (m.status === "Timeout") f.timeout++;
      else if (m.status === "Survived" || m.status === "NoCoverage") {
        f.survivors.push({
          where: `${file}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName}`,
          status: m.status,
          code: lines[m.location.start.line - 1]?.trim() ?? "",
          replacement: m.replacement ?? "",
        });
      } else f.other++;
    }
    files[file] = partial ? { commit, ...f } : f;
  }
  mkdirSync(results, { recursive: true });
  const previous = join(results, `${name}.json`);
  if (partial && existsSync(previous)) {
    const old = JSON.parse(readFileSync(previous, "utf8"));
    for (const [file, f] of Object.entries(old.files)) {
      if (!files[file] && owner(file) === name) {
        files[file] = { commit: f.commit ?? old.commit, ...f };
      }
    }
    ms = undefined;
  }
  writeFileSync(
    join(results, `${name}.json`),
    JSON.stringify(
      {
        group: name,
        commit,
        ...(ms === undefined ? {} : { minutes: Math.round(ms / 60_000) }),
        files,
      },
      null,
      2,
    ) +
      "\n",
  );
}

/** The group that mutates `file` now. */
function owner(file) {
  return Object.entries(GROUPS).find(([, g]) =>
    g.mutate.some((p) => p === file || (p.endsWith("/*.ts") && file.startsWith(p.slice(0, -4))))
  )?.[0];
}

/**
 * The modules changed since the commit their figures were measured on (a commit written
 * `≤c` is one at or before `c`): their scores and survivor lines describe an older file.
 */
function changedSince(summaries) {
  const changed = [];
  for (const s of summaries) {
    for (const [file, f] of Object.entries(s.files)) {
      if (owner(file) !== s.group) continue;
      const commit = f.commit ?? s.commit;
      const r = spawnSync("git", ["diff", "--quiet", commit.replace("≤", ""), "HEAD", "--", file], {
        cwd: root,
      });
      if (r.status === 1) changed.push(`\`${file}\` (measured at ${commit})`);
    }
  }
  const unmeasured = [];
  for (const s of summaries) {
    for (const pattern of GROUPS[s.group]?.mutate ?? []) {
      const files = pattern.endsWith("/*.ts")
        ? readdirSync(join(root, pattern.slice(0, -5)))
          .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
          .map((f) => `${pattern.slice(0, -4)}${f}`)
        : [pattern];
      for (const f of files) if (existsSync(join(root, f)) && !s.files[f]) unmeasured.push(f);
    }
  }
  const never = unmeasured.length
    ? [
      `Not in their group's last run (added since, or only types: nothing to mutate): ${
        unmeasured.sort().map((f) => `\`${f}\``).join(", ")
      }.`,
      "",
    ]
    : [];
  if (!changed.length) return ["Every module is measured on its current code.", "", ...never];
  return [
    ...never,
    `Changed since they were measured, so their figures and survivor lines (line numbers, code)`,
    `describe an older file: ${changed.sort().join(", ")}.`,
    "",
  ];
}

/** Surviving mutants judged equivalent: "file:line:column mutator" → why. */
function equivalents() {
  return JSON.parse(readFileSync(join(root, "tests", "mutation", "equivalent.json"), "utf8"));
}

/**
 * Survivors that only a platform or runtime this machine cannot provide could kill
 * (`node:crypto` absent, another operating system): "file:line:column mutator" → why. Unlike
 * equivalents, they stay survivors in the score.
 */
function untestables() {
  const path = join(root, "tests", "mutation", "untestable.json");
  return existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : {};
}

/**
 * Survivors of a group's last run that a test written since kills, each planted by hand:
 * "file:line:column mutator" → the test. They count as killed from the group's next run.
 */
function killedSince() {
  const path = join(root, "tests", "mutation", "killed.json");
  return existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : {};
}

/**
 * Scores measured on the suite as it was before the tests written for them (same groups,
 * same mutants), kept in tests/mutation/before.json: a list of
 * `{ note, scores: { "src/core/x.ts": { killed, timeout, survived, noCoverage } } }`.
 */
function beforeSection(rows, pct) {
  const path = join(root, "tests", "mutation", "before.json");
  if (!existsSync(path)) return [];
  const sets = [JSON.parse(readFileSync(path, "utf8"))].flat();
  return [
    "## Before and after",
    "",
    ...sets.flatMap((before) => [
      before.note,
      "",
      "| module | before | after |",
      "|---|---:|---:|",
      ...Object.entries(before.scores).map(([file, d]) => {
        const after = rows.find((r) => r.file === file);
        return `| \`${file}\` | ${pct(d)}% | ${after ? `${pct(after)}%` : "—"} |`;
      }),
      "",
    ]),
  ];
}

function report() {
  const explained = equivalents();
  const later = killedSince();
  const elsewhere = untestables();
  const rows = [];
  const survivors = [];
  const measured = Object.keys(GROUPS).filter((g) => existsSync(join(results, `${g}.json`)));
  const summaries = existsSync(results)
    ? readdirSync(results).filter((f) => f.endsWith(".json")).map((f) =>
      JSON.parse(readFileSync(join(results, f), "utf8"))
    )
    : [];
  for (const summary of summaries) {
    for (const [file, f] of Object.entries(summary.files)) {
      // A module mutated by a group it has since left is reported from its current group only.
      if (owner(file) !== summary.group) continue;
      const n = {
        killed: f.killed,
        survived: 0,
        timeout: f.timeout,
        noCoverage: 0,
        equivalent: 0,
        other: f.other,
      };
      for (const s of f.survivors) {
        if (explained[s.where]) n.equivalent++;
        else if (s.status === "Survived") n.survived++;
        else n.noCoverage++;
        survivors.push({
          ...s,
          why: explained[s.where],
          later: later[s.where],
          untestable: elsewhere[s.where],
        });
      }
      const valid = n.killed + n.timeout + n.survived + n.noCoverage;
      const score = (100 * (n.killed + n.timeout)) / Math.max(1, valid);
      rows.push({ group: summary.group, file, ...n, score });
    }
  }
  survivors.sort((a, b) => (a.where < b.where ? -1 : 1));
  rows.sort((a, b) => (a.file < b.file ? -1 : 1));
  const byDir = {};
  for (const r of rows) {
    const dir = r.file.split("/").slice(0, 2).join("/");
    const d = byDir[dir] ??= { killed: 0, timeout: 0, survived: 0, noCoverage: 0, equivalent: 0 };
    for (const k of Object.keys(d)) d[k] += r[k];
  }
  const pct = (d) =>
    ((100 * (d.killed + d.timeout)) / Math.max(1, d.killed + d.timeout + d.survived + d.noCoverage))
      .toFixed(1);
  const out = [
    "# Mutation testing",
    "",
    "StrykerJS mutates the core, the wire and the storage one module group at a time and runs the",
    "test files that exercise each group (`tests/mutation/run.mjs` lists them). A mutant is",
    "*killed* when a test fails (or times out) with it; the score is killed ÷ (killed + survived +",
    "no coverage), after leaving out the survivors judged equivalent (listed below with the reason).",
    "A failing property stops at its first counterexample (no shrinking) in these runs, and the",
    "storage group's test files run bundled in one process per mutant (the run of a mutant stops",
    "at its first failing test): its 483 mutants of file.ts take about 20 minutes on two busy cores.",
    "",
    "Regenerate: `npm run mutation` (hours on two cores, at the lowest CPU priority; one or",
    "more groups: `npm run mutation -- core-parts`; the report only, from the summaries in",
    "`tests/mutation/results/`: `npm run mutation -- --report`).",
    "",
    `Groups measured: ${
      measured.map((g) => {
        const s = summaries.find((x) => x.group === g);
        const at = {};
        for (const [file, f] of Object.entries(s.files)) {
          (at[f.commit ?? s.commit] ??= []).push(file.split("/").at(-1));
        }
        const commits = Object.entries(at);
        if (commits.length > 1) {
          return `${g} (${commits.map(([c, files]) => `${files.join(", ")} at ${c}`).join("; ")})`;
        }
        return `${g} (at ${s.commit}${s.minutes ? `, ${s.minutes} min` : ""})`;
      }).join(", ")
    }. Not measured yet: ${
      Object.keys(GROUPS).filter((g) => !measured.includes(g)).join(", ") || "none"
    }. A test written after a group's last run counts only from its next run.`,
    "",
    ...changedSince(summaries),
    "## Scores by directory",
    "",
    "| directory | killed | timeout | survived | no coverage | equivalent | score |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...Object.entries(byDir).map(([dir, d]) =>
      `| \`${dir}/\` | ${d.killed} | ${d.timeout} | ${d.survived} | ${d.noCoverage} | ${d.equivalent} | ${
        pct(d)
      }% |`
    ),
    "",
    ...beforeSection(rows, pct),
    "## Scores by module",
    "",
    "| module | killed | timeout | survived | no coverage | equivalent | score |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...rows.map((r) =>
      `| \`${r.file}\` | ${r.killed} | ${r.timeout} | ${r.survived} | ${r.noCoverage} | ${r.equivalent} | ${
        r.score.toFixed(1)
      }% |`
    ),
    "",
    "## Planted bugs",
    "",
    "Five one-line bugs that the suite once let through, each planted in a scratch copy and caught:",
    "",
    "| bug | caught by |",
    "|---|---|",
    "| writer tie-break reversed in `compareVersions` | store: the hand-written LWW oracle, the two-writer reconcile, the tie example |",
    "| inner Merkle count updated with `+1` instead of `+delta` | store: grown-and-shrunk tree; merkle: stored nodes through removals, level 3 past 16,384 items |",
    "| Merkle update loop one level short | six store and merkle tests, among them every stored node through growth |",
    "| writer left out of the entry hash | store: the two-writer reconcile, versions hash apart; merkle: the descent property; hash: pinned values, each part changes the hash |",
    "| replay window `>=` instead of `>` | boundaries: the window's edge either way, the nonce at the edge |",
    "",
    "## Surviving mutants",
    "",
    "Each one either explained as equivalent (no test can tell it from the original) or still",
    "open: a test to write, or one written since the run (planted by hand in a scratch copy, and",
    "killed by the test named; it counts in the score from the group's next run). A mutant",
    "*untestable here* changes only what a platform or runtime this machine cannot provide would",
    "do (the reason says which); it stays a survivor in the score.",
    "",
    "| where | mutant | verdict |",
    "|---|---|---|",
    ...survivors.map((s) =>
      `| \`${s.where}\` | \`${s.code.replaceAll("|", "\\|").slice(0, 80)}\` → \`${
        String(s.replacement).replaceAll("|", "\\|").replaceAll("\n", " ").slice(0, 60)
      }\` | ${
        s.why
          ? `equivalent: ${s.why}`
          : s.later
          ? `open (${s.status}) in the run; killed since, planted by hand: ${s.later}`
          : s.untestable
          ? `open (${s.status}); untestable here: ${s.untestable}`
          : `open (${s.status})`
      } |`
    ),
    "",
  ];
  writeFileSync(join(root, "docs", "mutation.md"), out.join("\n"));
  // Formatted as `deno fmt --check` wants it.
  spawnSync(join(root, "node_modules", ".bin", "deno"), ["fmt", "docs/mutation.md"], { cwd: root });
  console.log(`docs/mutation.md: ${rows.length} modules, ${survivors.length} survivors listed`);
}

/** Plants every survivor of group `name`'s last run by hand; returns those a test kills. */
function verify(name) {
  const json = JSON.parse(readFileSync(join(reports, `${name}.json`), "utf8"));
  const tests = GROUPS[name].tests.filter((t) => existsSync(join(root, t)));
  const copy = join(root, ".scratch", `mutation-verify-${name}`);
  rmSync(copy, { recursive: true, force: true });
  for (const part of ["src", "tests", "package.json", "deno.json"]) {
    cpSync(join(root, part), join(copy, part), { recursive: true });
  }
  symlinkSync(join(root, "node_modules"), join(copy, "node_modules"));
  const missed = [];
  let planted = 0;
  for (const [file, { mutants, source }] of Object.entries(json.files)) {
    const lines = source.split("\n");
    const at = ({ line, column }) =>
      lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0) + column - 1;
    for (const m of mutants.filter((m) => m.status === "Survived")) {
      planted++;
      const { start, end } = m.location;
      writeFileSync(
        join(copy, file),
        source.slice(0, at(start)) + m.replacement + source.slice(at(end)),
      );
      const r = spawnSync("node", ["--import", "tsx", "--test", "--test-reporter=dot", ...tests], {
        cwd: copy,
        encoding: "utf8",
      });
      if (r.status !== 0) {
        missed.push(`${file}:${start.line}:${start.column} ${m.mutatorName}`);
        console.log(`killed by hand: ${missed.at(-1)}`);
      }
      writeFileSync(join(copy, file), source);
    }
  }
  rmSync(copy, { recursive: true, force: true });
  console.log(`${name}: ${planted} survivors planted by hand, ${missed.length} killed`);
  return missed;
}

const args = process.argv.slice(2);
if (args[0] === "--verify") {
  for (const name of args.slice(1)) verify(name);
  process.exit(0);
}
if (args[1] === "--files") {
  // npm run mutation -- wire --files src/wire/crypto.ts,src/wire/sealing.ts
  run(args[0], args[2].split(","));
} else if (!args.includes("--report")) {
  for (const name of args.length ? args : Object.keys(GROUPS)) run(name);
}
report();
