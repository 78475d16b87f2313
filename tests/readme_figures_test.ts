// The README's benchmark headlines are the figures of docs/benchmarks.md, which `deno task bench`
// and `deno task bench:cpu` regenerate: a rerun that moves a figure fails here until the README
// says what the run measured. A figure the README gives with d decimals must be the run's,
// rounded to d decimals; "about" bounds the run's figures loosely, as the words do.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** A Markdown file with every run of white space made one space (prose wraps anywhere). */
const flat = (path: string) => readFileSync(ROOT + path, "utf8").replace(/\s+/g, " ");
const readme = flat("README.md");
const benchmarks = flat("docs/benchmarks.md");

/** The groups `pattern` captures in `text`, or a failure that names what is missing. */
function figures(text: string, pattern: RegExp, what: string): string[] {
  const m = pattern.exec(text);
  assert.ok(m, `${what}: no text matches ${pattern}`);
  return m.slice(1);
}

/** `said` (as written, with its decimals) is `measured` rounded to as many decimals. */
function same(said: string, measured: string | number, what: string): void {
  const decimals = said.includes(".") ? said.length - said.indexOf(".") - 1 : 0;
  const value = Number(String(measured).replace(/,/g, ""));
  assert.ok(Number.isFinite(value), `${what}: ${measured} is not a number`);
  assert.ok(
    Math.abs(value - Number(said)) <= 0.5 * 10 ** -decimals + 1e-9,
    `${what}: the README says ${said}, the last run measured ${measured}`,
  );
}

/** The Benchmarks section of the README, where the headlines are. */
const headlines = figures(readme, /## Benchmarks (.*?) ## Deployment/, "README")[0]!;

test("README headlines: anti-entropy in sync and with 100 of 100,000 keys differing", () => {
  const [bytes] = figures(headlines, /one (\d+)-byte datagram/, "README, in sync");
  const [measured] = figures(
    benchmarks,
    /\| anti-entropy in sync \| 1 datagram of (\d+) B/,
    "benchmarks, in sync",
  );
  same(bytes!, measured!, "an in-sync round");
  const [ratio] = figures(headlines, /reconcile at ([\d.]+)× the bytes/, "README, 100 differ");
  const [run] = figures(
    benchmarks,
    /\| anti-entropy, 100 of 100,000 differ \|[^|]*= ×([\d.]+) the entries/,
    "benchmarks, 100 differ",
  );
  same(ratio!, run!, "100 of 100,000 differing");
});

test("README headlines: one write and a burst of 1,000 to 64 members", () => {
  const [half, all, bound, bytes] = figures(
    headlines,
    /half of 64 members in (\d+) one-way hops and all of them in (\d+) \(the epidemic bound is (\d+)\), for ([\d.]+)× the byte minimum/,
    "README, 1 write",
  );
  const [runHalf, runAll, runBound, runBytes] = figures(
    benchmarks,
    /\| 1 write → 64 \| ([\d.]+) hops to half, ([\d.]+) to all \([^;]*the epidemic bound ([\d.]+);[^|]*; ×([\d.]+) the byte minimum/,
    "benchmarks, 1 write",
  );
  same(half!, runHalf!, "hops to half");
  same(all!, runAll!, "hops to all");
  same(bound!, runBound!, "the epidemic bound");
  same(bytes!, runBytes!, "a write's bytes");
  const [rounds, burst] = figures(
    headlines,
    /reaches 64 members in ([\d.]+) gossip rounds for ([\d.]+)× the byte minimum/,
    "README, 1,000 writes",
  );
  const [runRounds, runBurst] = figures(
    benchmarks,
    /\| 1,000 writes → 64 \| [^|]*\(([\d.]+) gossip rounds\); ×([\d.]+) the byte minimum/,
    "benchmarks, 1,000 writes",
  );
  same(rounds!, runRounds!, "a burst's gossip rounds");
  same(burst!, runBurst!, "a burst's bytes");
});

test("README headlines: about a quarter of scuttlebutt's bytes, about 60 B/s idle", () => {
  assert.match(headlines, /about a quarter of the bytes the npm `scuttlebutt` package spends/);
  const [theirs] = figures(
    benchmarks,
    /\| vs scuttlebutt, 1,000 writes \| bytes ([^;|]*) of theirs/,
    "benchmarks, scuttlebutt",
  );
  const ratios = [...theirs!.matchAll(/×([\d.]+)/g)].map((m) => Number(m[1]));
  assert.equal(ratios.length, 4, `four N in ${theirs}`);
  for (const r of ratios) assert.ok(r >= 0.2 && r <= 0.3, `×${r} is not about a quarter`);

  const [bytes, datagrams] = figures(
    headlines,
    /about (\d+) bytes a second \((\d+) datagrams\) when idle, whether 16 or 1,000 of them/,
    "README, idle",
  );
  const [at16, at1000] = figures(
    benchmarks,
    /\| idle traffic per member \| (\d+) B\/s at N=16, (\d+) B\/s at N=1000 \|/,
    "benchmarks, idle",
  );
  for (const b of [at16!, at1000!]) {
    assert.ok(Math.abs(Number(b) - Number(bytes)) <= 0.15 * Number(bytes), `${b} B/s`);
  }
  const rows = [
    ...benchmarks.matchAll(
      /\| (16|64|256|1,000) \| \d+ \| ([\d.]+) \| \d+ \| \d+ \| \d+ \| \d+ \|/g,
    ),
  ];
  assert.equal(rows.length, 4, "the traffic table's four N");
  for (const [, n, perSecond] of rows) same(datagrams!, perSecond!, `idle datagrams/s at N=${n}`);
});

test("README headlines: CPU per replicated write against release 0.1.0", () => {
  const [plain, sealed] = figures(
    headlines,
    /costs each member ×([\d.]+) of the CPU it cost in release 0\.1\.0 in plaintext and ×([\d.]+) encrypted/,
    "README, CPU",
  );
  const row = (mode: string) =>
    figures(
      benchmarks,
      new RegExp(
        `\\| ${mode} \\| [\\d,]+ \\| [\\d.]+ \\| [\\d.]+ \\| ×([\\d.]+) \\|[^|]*\\| ([\\d.]+) → ([\\d.]+) \\|`,
      ),
      `benchmarks, CPU ${mode}`,
    );
  const [runPlain, before, after] = row("plaintext");
  same(plain!, runPlain!, "plaintext CPU");
  same(sealed!, row("encrypted")[0]!, "encrypted CPU");
  const [now, then] = figures(
    headlines,
    /\(([\d.]+) against ([\d.]+) sent per write per member\)/,
    "README, datagrams",
  );
  same(now!, after!, "datagrams sent now");
  same(then!, before!, "datagrams sent by 0.1.0");
});

test("README headlines: local operations on Deno against a Map", () => {
  const [get, overwrite, fresh, memory] = figures(
    headlines,
    /Locally \(Deno\), `get` runs at ×([\d.]+) a `Map`'s rate and `set` at ×([\d.]+) \(overwriting a key[^)]*\) to ×([\d.]+) \(a new key\), with ×([\d.]+) its memory per key/,
    "README, local operations",
  );
  const [deno] = figures(
    benchmarks,
    /\*\*Deno [^*]*\*\* (.*?) \*\*Bun/,
    "benchmarks, Deno's table",
  );
  const ratio = (op: string) =>
    figures(deno!, new RegExp(`\\| ${op} \\| [^|]* \\| [^|]* \\| ×([\\d.]+) \\|`), op)[0]!;
  same(get!, ratio("get"), "get");
  same(overwrite!, ratio("set \\(overwrite, string value\\)"), "set, overwriting");
  same(fresh!, ratio("set \\(new key, string value\\)"), "set, a new key");
  // The README's range spans every set of the run.
  for (const op of ["set \\(new key, object value\\)"]) {
    const r = Number(ratio(op));
    assert.ok(r >= Number(overwrite) && r <= Number(fresh), `${op}: ×${r} outside the range`);
  }
  const [perKey] = figures(
    benchmarks,
    /\| Deno [^|]* \| \d+ B\/key \| \d+ B\/key \| ×([\d.]+) \|/,
    "benchmarks, memory per key",
  );
  same(memory!, perKey!, "memory per key");
});
