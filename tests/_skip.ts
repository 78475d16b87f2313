// Skipping a test whose tool or runtime is missing, so that the summary can say why: the reason
// is printed at once and, under tests/run_all.mjs, appended to the file it names in
// GOSSIP_KV_SKIPS_FILE (Deno and Bun count skipped tests but do not print the reason).
import { appendFileSync } from "node:fs";
import process from "node:process";

/** Records that `what` is skipped and why; returns the reason, for `test(name, { skip }, fn)`. */
export function recordSkip(what: string, reason: string): string {
  const line = `${what}: ${reason}`;
  console.warn(`skipped: ${line}`);
  const file = process.env.GOSSIP_KV_SKIPS_FILE;
  if (file) appendFileSync(file, `${line}\n`);
  return reason;
}

/**
 * As `recordSkip()`, for a tool the tests need: under `CI=true` nothing may be skipped, so it
 * returns `false` there and the test runs (and fails, saying what is missing).
 */
export function skipBecause(what: string, reason: string): string | false {
  return process.env.CI === "true" ? false : recordSkip(what, reason);
}
