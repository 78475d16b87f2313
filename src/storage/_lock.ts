// Exclusive ownership of a data directory, the same on Deno, Bun and Node: a lock file
// created with O_CREAT|O_EXCL ("wx"), holding who owns it. Node and Bun have no flock(),
// so a lock left by a process that died (kill -9, power cut) is recognised by its pid: on
// the same host, a pid that no longer runs (or is our own, in a restarted container where
// the pid is reused) is stale and taken over. A Deno holder also keeps an flock() on the
// file, which the kernel drops when it dies: a Deno process with no permission to signal
// or read /proc asks that instead. When liveness cannot be told, the lock is treated as
// held: refusing to start is recoverable, two writers on one log are not.
import { link, open, readFile, rename, rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import process from "node:process";
import { join, resolve } from "node:path";

/** Name of the lock file in a data directory. */
export const LOCK_FILE = "LOCK";

/** Who holds a directory, as written into its lock file. */
export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly runtime: string;
  /** ISO time the lock was taken. */
  readonly since: string;
  /** Random, to tell our lock from a later one. */
  readonly token: string;
}

/** Directories locked by this process (a second storage on one of them is refused too). */
const held = new Set<string>();

interface DenoFile {
  tryLock(exclusive?: boolean): Promise<boolean>;
  close(): void;
}
interface DenoFs {
  open(path: string, options: { read: boolean; write: boolean }): Promise<DenoFile>;
}
const deno = (globalThis as { Deno?: DenoFs }).Deno;

/** Deno: an flock() on `path`, or `undefined` when another process holds one. */
async function flock(path: string): Promise<DenoFile | undefined> {
  const file = await deno!.open(path, { read: true, write: true });
  try {
    if (await file.tryLock(true)) return file;
  } catch { /* no flock on this file system: rely on the pid */ }
  file.close();
  return undefined;
}

function hostName(): string {
  try {
    return hostname();
  } catch {
    return "unknown"; // Deno without --allow-sys=hostname
  }
}

function runtimeName(): string {
  const g = globalThis as { Deno?: { version?: { deno?: string } }; Bun?: { version?: string } };
  if (g.Deno) return `Deno ${g.Deno.version?.deno ?? ""}`.trim();
  if (g.Bun) return `Bun ${g.Bun.version ?? ""}`.trim();
  return `Node ${process.version}`;
}

/** Whether process `pid` runs on this host: `true`, `false`, or `undefined` if unknown. */
async function running(pid: number): Promise<boolean | undefined> {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ESRCH") return false;
    if (code === "EPERM") return true; // it exists, owned by another user
  }
  // Deno without --allow-run cannot signal: look in /proc (Linux), readable with --allow-read.
  try {
    await stat(`/proc/${pid}`);
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code !== "ENOENT") return undefined;
  }
  try {
    await stat("/proc/self");
    return false;
  } catch {
    return undefined;
  }
}

function parse(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as LockHolder;
    return Number.isSafeInteger(h.pid) && typeof h.host === "string" ? h : undefined;
  } catch {
    return undefined;
  }
}

function describe(h: LockHolder): string {
  return `process ${h.pid} (${h.runtime}) on host ${h.host}, since ${h.since}`;
}

/**
 * Takes the lock of `dir` (which must exist). Resolves to a function that releases it;
 * rejects with an error naming the holder when another process (or another storage in
 * this one) has it.
 */
export async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const key = resolve(dir);
  const path = join(dir, LOCK_FILE);
  if (held.has(key)) {
    throw new Error(`${dir} is already in use by another storage in this process (${path})`);
  }
  held.add(key);
  const me: LockHolder = {
    pid: process.pid,
    host: hostName(),
    runtime: runtimeName(),
    since: new Date().toISOString(),
    token: crypto.randomUUID(),
  };
  let locked: DenoFile | undefined;
  try {
    for (let attempt = 0;; attempt++) {
      try {
        const fh = await open(path, "wx");
        try {
          await fh.writeFile(JSON.stringify(me) + "\n");
          await fh.datasync();
        } finally {
          await fh.close();
        }
        if (deno) locked = await flock(path);
        break;
      } catch (error) {
        if ((error as { code?: unknown }).code !== "EEXIST" || attempt >= 3) throw error;
      }
      let text: string;
      let age: number;
      try {
        text = await readFile(path, "utf8");
        age = Date.now() - (await stat(path)).mtimeMs;
      } catch (error) {
        if ((error as { code?: unknown }).code === "ENOENT") continue; // just released
        throw error;
      }
      const holder = parse(text);
      if (!holder) {
        // Written by a process that died between creating and filling it, or that is
        // filling it right now: wait for the second case to show.
        if (age < 2_000) {
          throw new Error(`${dir} is being locked by another process (${path} is new and empty)`);
        }
      } else {
        // Deno without --allow-sys cannot read the host name: take "unknown" as this host
        // (a data directory is a local disk, shared by hosts only by mistake).
        const here = holder.host === me.host || holder.host === "unknown" || me.host === "unknown";
        let alive = here ? await running(holder.pid) : undefined;
        if (here && holder.pid === me.pid) alive = false;
        if (alive === undefined && deno && holder.runtime.startsWith("Deno")) {
          const probe = await flock(path);
          probe?.close();
          alive = probe === undefined;
        }
        const stale = alive === false;
        if (!stale) {
          throw new Error(
            `${dir} is in use by ${describe(holder)}: one member per data directory. ` +
              `If that process is gone (another host, or liveness could not be checked), ` +
              `remove ${path}`,
          );
        }
      }
      // Stale: move it aside (atomic, so of two processes taking over only one succeeds
      // with this file), then try to create ours again.
      const aside = `${path}.stale-${me.token}`;
      try {
        await rename(path, aside);
      } catch (error) {
        if ((error as { code?: unknown }).code === "ENOENT") continue;
        throw error;
      }
      if (await readFile(aside, "utf8") !== text) {
        // Another process took the stale lock over first, and we moved its fresh one:
        // put it back (link() never replaces) and let the next turn report it.
        await link(aside, path).catch(() => {});
      }
      await rm(aside, { force: true });
    }
  } catch (error) {
    held.delete(key);
    throw error;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    locked?.close();
    try {
      const now = parse(await readFile(path, "utf8"));
      if (now?.token === me.token) await rm(path, { force: true });
    } catch { /* gone already */ }
    held.delete(key);
  };
}
