#!/usr/bin/env node
// deno-lint-ignore-file explicit-module-boundary-types -- plain JavaScript for Node: JSDoc types
// Repository checks that no compiler or linter makes (run by .ci/run and the GitHub workflow):
//
//   node .ci/check_repo.mjs                    every check below
//   node .ci/check_repo.mjs --skip-published   without the one that needs `deno publish`
//
// 1. No tracked file is over 1 MiB unless .ci/large_files.txt names it, with the reason.
// 2. Every relative link and #anchor in the tracked Markdown resolves to a tracked file (or
//    folder) and to a heading (or `<a id>`) of the Markdown file it points into, as GitHub
//    renders them.
// 3. The project speaks of itself only: no text cites a tracker's issue, a task's wording or a
//    document the repository does not hold (the checker and its test, which must name them,
//    excepted).
// 4. Every relative link in the published Markdown (README.md first: jsr.io shows it as the
//    package's page) resolves to a file of the published package, whose file list comes from
//    `deno publish --dry-run`.
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, readFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { fileURLToPath } from "node:url";

/** Tracked files above this size fail unless allowed in `.ci/large_files.txt`. */
export const MAX_FILE_BYTES = 1024 * 1024;

/**
 * Tracked files of a git work tree, as repository-relative paths with `/`.
 * @param {string} root
 * @returns {string[]}
 */
export function trackedFiles(root) {
  const r = spawnSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`git ls-files failed in ${root}: ${r.stderr}`);
  return r.stdout.split("\0").filter((f) => f !== "");
}

/**
 * Reads the allowlist of large files: one path per line, then `#` and the reason.
 * @param {string} text
 * @returns {{ allowed: Map<string, string>, problems: string[] }}
 */
export function parseAllowlist(text) {
  const allowed = new Map();
  const problems = [];
  text.split("\n").forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const hash = trimmed.indexOf("#");
    const path = (hash < 0 ? trimmed : trimmed.slice(0, hash)).trim();
    const reason = hash < 0 ? "" : trimmed.slice(hash + 1).trim();
    if (reason === "") {
      problems.push(`.ci/large_files.txt:${i + 1}: ${path} has no reason (write "# why" after it)`);
    } else {
      allowed.set(path, reason);
    }
  });
  return { allowed, problems };
}

/**
 * Tracked files over `MAX_FILE_BYTES` that the allowlist does not name.
 * @param {string} root
 * @param {string[]} files
 * @param {string} allowlistText
 * @returns {string[]} one message per problem
 */
export function checkFileSizes(root, files, allowlistText) {
  const { allowed, problems } = parseAllowlist(allowlistText);
  for (const file of files) {
    const path = join(root, file);
    if (!existsSync(path)) continue; // deleted in the work tree, not committed yet
    const size = lstatSync(path).size;
    if (size > MAX_FILE_BYTES && !allowed.has(file)) {
      problems.push(
        `${file}: ${size.toLocaleString("en-US")} bytes, over the ${
          MAX_FILE_BYTES.toLocaleString("en-US")
        }-byte limit ` +
          `(a damaged file? if it must be this large, add it to .ci/large_files.txt with the reason)`,
      );
    }
  }
  for (const path of allowed.keys()) {
    if (!files.includes(path)) problems.push(`.ci/large_files.txt: ${path} is not a tracked file`);
  }
  return problems;
}

/**
 * Removes fenced code blocks (keeping line numbers) and inline code spans.
 * @param {string} markdown
 * @returns {string[]} the lines, code blanked out
 */
function proseLines(markdown) {
  const lines = markdown.split("\n");
  let fence = null;
  return lines.map((line) => {
    const m = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length) fence = null;
      return "";
    }
    if (m) {
      fence = m[1];
      return "";
    }
    return line.replace(/(`+)(?:(?!\1).)+?\1/g, "");
  });
}

/**
 * The anchors a Markdown file offers, as GitHub makes them: one per heading (lower case,
 * punctuation dropped, spaces to hyphens, `-1`, `-2`... for repeats), plus `<a id>`/`name`.
 * @param {string} markdown
 * @returns {Set<string>}
 */
export function anchorsOf(markdown) {
  const anchors = new Set();
  const seen = new Map();
  const lines = markdown.split("\n");
  const prose = proseLines(markdown);
  for (let i = 0; i < lines.length; i++) {
    let text = null;
    const atx = /^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(prose[i] === "" ? "" : lines[i]);
    if (atx) text = atx[1];
    else if (
      prose[i].trim() !== "" && /^\s{0,3}(=+|-+)\s*$/.test(prose[i + 1] ?? "") &&
      !/^\s{0,3}[-*+]\s/.test(lines[i]) && !lines[i].includes("|")
    ) text = lines[i].trim();
    if (text !== null) {
      const base = slug(text);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const m of prose[i].matchAll(/<a\s[^>]*\b(?:id|name)\s*=\s*"([^"]+)"/gi)) {
      anchors.add(m[1]);
    }
  }
  return anchors;
}

/**
 * GitHub's anchor for a heading's Markdown source.
 * @param {string} heading
 * @returns {string}
 */
export function slug(heading) {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links and images: their text
    .replace(/<[^>]+>/g, "") // inline HTML
    .replace(/`/g, "")
    .replace(/(^|[^\p{L}\p{N}])_+(?=\S)|(?<=\S)_+(?=[^\p{L}\p{N}]|$)/gu, "$1"); // _emphasis_
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");
}

/**
 * Every link target in a Markdown file, with its line: inline links and images, reference
 * definitions, and `href`/`src` of inline HTML. Code is skipped.
 * @param {string} markdown
 * @returns {{ target: string, line: number }[]}
 */
export function linksOf(markdown) {
  const out = [];
  proseLines(markdown).forEach((line, i) => {
    const patterns = [
      /!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g,
      /^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/g,
      /<(?:a|img)\s[^>]*\b(?:href|src)\s*=\s*"([^"]*)"/gi,
    ];
    for (const re of patterns) {
      for (const m of line.matchAll(re)) out.push({ target: m[1], line: i + 1 });
    }
  });
  return out;
}

/** GitHub's line anchors on a file that is not Markdown: `#L10`, `#L10-L20`. */
const LINE_ANCHOR = /^L\d+(?:C\d+)?(?:-L\d+(?:C\d+)?)?$/;

/**
 * Relative links and anchors of the given Markdown files that do not resolve within `files`.
 * @param {string[]} markdownFiles repository-relative paths of the Markdown files to check
 * @param {string[]} files the files a link may point to (repository-relative)
 * @param {(path: string) => string} read reads a file by its repository-relative path
 * @param {string} [where] where the files are, for messages
 * @returns {string[]} one message per broken link
 */
export function checkLinks(markdownFiles, files, read, where = "in the repository") {
  const fileSet = new Set(files);
  const isFolder = (p) => files.some((f) => f.startsWith(p.endsWith("/") ? p : `${p}/`));
  const anchorCache = new Map();
  const anchors = (p) => {
    if (!anchorCache.has(p)) anchorCache.set(p, anchorsOf(read(p)));
    return anchorCache.get(p);
  };
  const problems = [];
  for (const md of markdownFiles) {
    for (const { target, line } of linksOf(read(md))) {
      if (target === "" || /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//")) continue;
      const hashAt = target.indexOf("#");
      const pathPart = hashAt < 0 ? target : target.slice(0, hashAt);
      const anchor = hashAt < 0 ? null : decodeURIComponent(target.slice(hashAt + 1));
      const path = pathPart.split("?")[0];
      let resolved = md;
      if (path !== "") {
        const decoded = decodeURIComponent(path);
        resolved = posix.normalize(
          decoded.startsWith("/") ? decoded.slice(1) : posix.join(posix.dirname(md), decoded),
        ).replace(/\/$/, "");
        if (resolved.startsWith("..")) {
          problems.push(`${md}:${line}: ${target} points outside the repository`);
          continue;
        }
        if (!fileSet.has(resolved) && !isFolder(resolved)) {
          problems.push(`${md}:${line}: ${target}: no file or folder ${resolved} ${where}`);
          continue;
        }
      }
      if (anchor === null || anchor === "") continue;
      if (/\.md$/i.test(resolved) && fileSet.has(resolved)) {
        if (!anchors(resolved).has(anchor)) {
          problems.push(`${md}:${line}: ${target}: ${resolved} has no heading #${anchor}`);
        }
      } else if (!LINE_ANCHOR.test(anchor)) {
        problems.push(`${md}:${line}: ${target}: #${anchor} cannot be checked in ${resolved}`);
      }
    }
  }
  return problems;
}

/** Phrases that speak of something outside the project, with what to write instead. */
const OUTSIDE_WORDS = [
  [/\bissue\s+#?\d+/i, "an issue number: say what the code does, not which request it answers"],
  [/\bthe\s+issue(?:'s|\s+(?:asks|says|wants))\b/i, "a request's wording: state the figure itself"],
  [/\bseed\s+document\b|\bthe\s+seed's\b/i, "a document outside the project"],
];

/** Files that must name the phrases above (the checker and its test), and vendored code. */
const OWN_WORDS_EXEMPT = new Set([".ci/check_repo.mjs", "tests/check_repo_test.ts"]);
const isVendored = (file) => file.startsWith("src/wire/_cbor_x/");

/**
 * Text that speaks of things outside the project: issue numbers, a request's wording, and
 * Markdown documents that are not in the repository (`SOMETHING.md` in a comment).
 * @param {string[]} files tracked files, repository-relative
 * @param {(path: string) => string} read
 * @returns {string[]} one message per occurrence
 */
export function checkOwnWords(files, read) {
  const markdownNames = new Set(
    files.filter((f) => /\.md$/i.test(f)).map((f) => posix.basename(f)),
  );
  const problems = [];
  for (const file of files) {
    if (
      OWN_WORDS_EXEMPT.has(file) || isVendored(file) ||
      !/\.(?:ts|mjs|js|md|sh|ya?ml|py)$|Dockerfile$/.test(file)
    ) {
      continue;
    }
    read(file).split("\n").forEach((line, i) => {
      for (const [pattern, what] of OUTSIDE_WORDS) {
        const m = pattern.exec(line);
        if (m) problems.push(`${file}:${i + 1}: "${m[0]}": ${what}`);
      }
      const withoutUrls = line.replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, "");
      for (const m of withoutUrls.matchAll(/(?<![\w./-])([\w./-]*[A-Za-z0-9_-]\.md)\b/g)) {
        if (!markdownNames.has(posix.basename(m[1]))) {
          problems.push(`${file}:${i + 1}: "${m[1]}" is not a document of this repository`);
        }
      }
    });
  }
  return problems;
}

/**
 * The files `deno publish --dry-run` would publish, repository-relative.
 * @param {string} root
 * @param {string} deno the deno executable
 * @returns {string[]}
 */
export function publishedFiles(root, deno) {
  const r = spawnSync(deno, ["publish", "--dry-run", "--allow-dirty"], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });
  if (r.status !== 0) throw new Error(`deno publish --dry-run failed:\n${r.stdout}${r.stderr}`);
  const prefix = new URL(".", `file://${root.endsWith("/") ? root : `${root}/`}`).href;
  const files = [];
  for (const m of `${r.stdout}\n${r.stderr}`.matchAll(/(file:\/\/\S+)/g)) {
    if (m[1].startsWith(prefix)) files.push(decodeURIComponent(m[1].slice(prefix.length)));
  }
  if (!files.includes("README.md")) {
    throw new Error(`deno publish --dry-run listed no README.md:\n${r.stdout}${r.stderr}`);
  }
  return files;
}

function main() {
  const args = process.argv.slice(2);
  const rootArg = args.find((a) => a.startsWith("--root="));
  const root = rootArg
    ? rootArg.slice("--root=".length)
    : join(dirname(fileURLToPath(import.meta.url)), "..");
  const files = trackedFiles(root);
  const read = (p) => readFileSync(join(root, p), "utf8");
  const allowlistPath = join(root, ".ci", "large_files.txt");
  const allowlist = existsSync(allowlistPath) ? readFileSync(allowlistPath, "utf8") : "";
  const sections = [
    ["tracked files over 1 MiB", () => checkFileSizes(root, files, allowlist)],
    [
      "relative links and anchors in the repository's Markdown",
      () => checkLinks(files.filter((f) => /\.md$/i.test(f)), files, read),
    ],
    ["words from outside the project", () => checkOwnWords(files, read)],
  ];
  if (!args.includes("--skip-published")) {
    sections.push([
      "links in the published Markdown, against `deno publish --dry-run`",
      () => {
        const deno = existsSync(join(root, "node_modules/.bin/deno"))
          ? join(root, "node_modules/.bin/deno")
          : "deno";
        const published = publishedFiles(root, deno);
        const markdown = published.filter((f) => /\.md$/i.test(f));
        return checkLinks(markdown, published, read, "in the published package");
      },
    ]);
  }
  let failed = 0;
  for (const [name, run] of sections) {
    const problems = run();
    console.log(`${problems.length === 0 ? "ok  " : "FAIL"} ${name}`);
    for (const p of problems.slice(0, 30)) console.log(`     ${p}`);
    if (problems.length > 30) console.log(`     ... and ${problems.length - 30} more`);
    failed += problems.length;
  }
  if (failed) {
    console.log(`${failed} problem(s)`);
    process.exit(1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
