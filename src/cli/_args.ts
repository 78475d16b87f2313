// Tokenizing the command line of every subcommand: node:util's parseArgs (built into Deno,
// Bun and Node) splits the arguments, and the rules users meet are checked here once: an
// unknown flag names the closest known one, a flag that needs a value says so, a flag given
// twice is refused. Private to src/cli.ts.
import { parseArgs } from "node:util";
import { UsageError } from "./_flags.ts";

/** One flag a subcommand accepts. */
export interface ArgSpec {
  /** The flag without dashes: `"http-addr"`. */
  readonly name: string;
  /** Whether it takes a value (`--name=value`, `--name value`) or is a switch. */
  readonly kind: "string" | "boolean";
  /** A one-letter alias (`-h`). */
  readonly short?: string;
}

/** What {@linkcode tokenize} read: the flags given (a switch as `true`) and the positionals. */
export interface Tokens {
  /** Flags as given, by name. */
  readonly flags: Map<string, string | true>;
  /** Arguments that are not flags, in order (after `--`, everything is one). */
  readonly positionals: string[];
}

/** The number of single-character edits between `a` and `b`. */
export function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j]! + 1,
        next[j - 1]! + 1,
        row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length]!;
}

/** The known word closest to `word`, if one is close enough to be a typo of it. */
export function closest(word: string, known: readonly string[]): string | undefined {
  return known.find((k) => editDistance(k, word) <= (word.length > 3 ? 2 : 1));
}

/**
 * Splits `args` by `specs`. Throws a {@linkcode UsageError} for an unknown flag (with the
 * closest known one), a missing value, a value given to a switch and a flag given twice.
 * Positionals are refused unless `positionals` is true.
 */
export function tokenize(
  args: readonly string[],
  specs: readonly ArgSpec[],
  options: { positionals: boolean },
): Tokens {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const { tokens } = parseArgs({
    args: [...args],
    options: Object.fromEntries(
      specs.map((s) => [s.name, { type: s.kind, ...(s.short && { short: s.short }) }]),
    ),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const flags = new Map<string, string | true>();
  const positionals: string[] = [];
  const unexpected = (arg: string) =>
    new UsageError(
      `Unexpected argument ${JSON.stringify(arg)}: flags are written --name=value or --name value`,
    );
  for (const token of tokens) {
    if (token.kind === "positional" || token.kind === "option-terminator") {
      const arg = args[token.index]!;
      if (!options.positionals) throw unexpected(arg);
      if (token.kind === "positional") positionals.push(arg);
      continue;
    }
    const spec = byName.get(token.name);
    const isShortAlias = spec !== undefined && token.rawName === `-${spec.short}`;
    if (
      !spec || (token.rawName.startsWith("-") && !token.rawName.startsWith("--") &&
        !isShortAlias)
    ) {
      if (!token.rawName.startsWith("--")) throw unexpected(token.rawName);
      const close = closest(token.name, specs.map((s) => s.name));
      throw new UsageError(
        `Unknown flag --${token.name}${
          close ? ` (did you mean --${close}?)` : ""
        }; --help lists the flags`,
      );
    }
    if (flags.has(spec.name)) throw new UsageError(`Flag --${spec.name} is given more than once`);
    if (spec.kind === "boolean") {
      if (token.inlineValue) throw new UsageError(`Flag --${spec.name} takes no value`);
      flags.set(spec.name, true);
      continue;
    }
    // parseArgs takes the next argument as the value even when it is a flag: refuse that.
    if (token.value === undefined || (!token.inlineValue && token.value.startsWith("--"))) {
      throw new UsageError(`Flag --${spec.name} needs a value`);
    }
    flags.set(spec.name, token.value);
  }
  return { flags, positionals };
}
