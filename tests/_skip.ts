// Skipping a test whose tool is missing, so that the summary can say why: the reason is printed
// at once and, under tests/run_all.mjs, appended to the file it names in GOSSIP_KV_SKIPS_FILE
// (Deno and Bun count skipped tests but do not print the reason).
import { appendFileSync } from "node:fs";
import process from "node:process";

/**
 * Records that `name` is skipped and why; returns the reason, for `test(name, { skip }, fn)`.
 * Under `CI=true` nothing may be skipped: it returns `false`, so that the test runs and fails.
 */
export function skipBecause(name: string, reason: string): string | false {
  if (process.env.CI === "true") return false;
  const line = `${name}: ${reason}`;
  console.warn(`skipped: ${line}`);
  const file = process.env.GOSSIP_KV_SKIPS_FILE;
  if (file) appendFileSync(file, `${line}\n`);
  return reason;
}
