// The `node` command's key file: read and checked at start (a problem is a usage error,
// exit 2), then watched, so that a rewritten file (a Kubernetes Secret update swaps the
// mounted file) rotates the keys without a restart. Private to src/cli.ts.
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import process from "node:process";
import { parseKeyFile } from "../wire/crypto.ts";
import { UsageError } from "./_flags.ts";

/** A key file, read and checked. */
export interface KeyFile {
  /** The file's text, to notice changes. */
  readonly text: string;
  /** The keys, primary first. */
  readonly keys: Uint8Array<ArrayBuffer>[];
  /**
   * One fingerprint per key, primary first: the first 12 hex digits of the SHA-256 of its
   * base64 line, as `deployment/k8s/secrets.sh keys` prints them. Never the key itself.
   */
  readonly fingerprints: string[];
}

function describe(error: unknown): string {
  switch ((error as { code?: string }).code) {
    case "ENOENT":
      return "it does not exist";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "it is a directory";
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * The fingerprint of a key line: the first 12 hex digits of the SHA-256 of its base64 text,
 * as `deployment/k8s/secrets.sh keys` prints them. It names a key without revealing it.
 */
export function fingerprint(line: string): string {
  return createHash("sha256").update(line.trim()).digest("hex").slice(0, 12);
}

/** Parses key file text (see {@linkcode parseKeyFile}); throws a {@linkcode UsageError}. */
export function checkKeyFile(path: string, text: string): KeyFile {
  let keys: Uint8Array<ArrayBuffer>[];
  try {
    keys = parseKeyFile(text);
  } catch (error) {
    throw new UsageError(`Key file ${path} is not valid: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const fingerprints = text.split(/\r?\n/).map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map(fingerprint);
  return { text, keys, fingerprints };
}

/** Reads and checks a key file; throws a {@linkcode UsageError} saying what is wrong. */
export async function readKeyFile(path: string): Promise<KeyFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new UsageError(`Cannot read the key file ${path}: ${describe(error)}`, { cause: error });
  }
  // As ssh does with a private key: a file anyone may rewrite is refused.
  const mode = process.platform === "win32" ? 0 : (await stat(path)).mode;
  if (mode & 0o002) {
    throw new UsageError(
      `Key file ${path} is writable by every user (mode ${(mode & 0o777).toString(8)}): ` +
        "anyone on this machine could replace the cluster keys; run chmod o-w on it",
    );
  }
  return checkKeyFile(path, text);
}

/** Options of {@linkcode watchKeyFile}. */
export interface KeyFileWatch {
  /** The file. */
  path: string;
  /** Its content as last applied. */
  current: KeyFile;
  /** Applies new keys; may reject (then the next check tries again). */
  apply(file: KeyFile): Promise<void>;
  /** Told about a file that cannot be read or is not valid (the current keys stay). */
  onError(message: string): void;
  /** How often the file is read again, in ms. Default 5,000. */
  intervalMs?: number;
}

/**
 * Reads the key file every `intervalMs` and applies it when its text changed. Polling, not
 * `fs.watch`: a Kubernetes Secret update replaces a symlink, which inotify on the old file
 * never reports, and the file is a few hundred bytes. Returns `check()` (for SIGHUP) and
 * `stop()`.
 */
export function watchKeyFile(
  watch: KeyFileWatch,
): { check(): Promise<boolean>; stop(): void } {
  let current = watch.current;
  let lastError = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let running: Promise<boolean> | undefined;
  const once = async (): Promise<boolean> => {
    let file: KeyFile;
    try {
      const text = await readFile(watch.path, "utf8");
      if (text === current.text) {
        lastError = "";
        return false;
      }
      file = checkKeyFile(watch.path, text);
      await watch.apply(file);
    } catch (error) {
      const message = error instanceof UsageError
        ? error.message
        : `Cannot reload the key file ${watch.path}: ${describe(error)}`;
      // Said once per problem, not every few seconds.
      if (message !== lastError) watch.onError(`${message}; keeping the current keys`);
      lastError = message;
      return false;
    }
    current = file;
    lastError = "";
    return true;
  };
  const check = () => (running ??= once().finally(() => (running = undefined)));
  const loop = () => {
    timer = setTimeout(async () => {
      await check();
      if (!stopped) loop();
    }, watch.intervalMs ?? 5_000);
  };
  loop();
  return {
    check,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
