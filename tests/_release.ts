// Release 0.1.0, which the rolling-upgrade test, the CPU benchmark and the fault lab run beside
// this tree. A clone may come without tags (a CI checkout, a mirror): its history still holds
// the commit, so the tag's name resolves to it when git does not know the tag.
import { spawnSync } from "node:child_process";

/** The tag of release 0.1.0. */
export const RELEASE_TAG = "v0.1.0";
/** The commit tagged {@linkcode RELEASE_TAG}. */
export const RELEASE_COMMIT = "25377bcb14c5cef434a98713e26159d98bdd4513";

/**
 * The commit `rev` names in the repository at `root` (full hash), or undefined when it names
 * none; {@linkcode RELEASE_TAG} names {@linkcode RELEASE_COMMIT} whether or not the tag exists.
 */
export function resolveCommit(root: string, rev: string): string | undefined {
  const name = rev === RELEASE_TAG ? RELEASE_COMMIT : rev;
  const parsed = spawnSync("git", [
    "-c",
    "safe.directory=*",
    "rev-parse",
    "--verify",
    "--quiet",
    `${name}^{commit}`,
  ], { cwd: root, encoding: "utf8" });
  return parsed.status === 0 ? parsed.stdout.trim() : undefined;
}
