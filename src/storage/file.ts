/**
 * A {@linkcode Storage} in one directory, for Deno, Bun and Node (through `node:fs`): an
 * append-only log of the entries a member applied, each record length-prefixed and
 * checksummed (CRC-32C), compacted from time to time into a new file that atomically
 * replaces the old one. A torn tail is cut off; a damaged record in the middle is skipped
 * and every good record after it kept (the damaged file is copied aside first). Both are
 * reported, never fatal.
 *
 * Deno needs `--allow-read=<dir> --allow-write=<dir>`. One member per directory: `load()`
 * takes a lock file (`LOCK`) naming its process, and a second storage on the directory, in
 * this process or another, is refused with an error naming the holder.
 *
 * @example A member that keeps its data across restarts
 * ```ts ignore
 * import { autoTransport, GossipKV } from "@gossip-kv/gossip-kv";
 * import { fileStorage } from "@gossip-kv/gossip-kv/storage/file";
 *
 * const kv = await GossipKV.start({
 *   transport: await autoTransport({ port: 7946 }),
 *   storage: fileStorage({ dir: "/var/lib/gossip-kv", fsync: "always" }),
 * });
 * await kv.set("key", "value"); // resolves once fsynced
 * await kv.close(); // flushes and closes the log
 * ```
 *
 * @module
 */

import { copyFile, type FileHandle, mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { compareVersions, type Entry, type Section } from "../core/store.ts";
import {
  type DamageReason,
  encodeRecord,
  hasHeader,
  HEADER,
  readRecords,
  type ReadResult,
} from "./_log.ts";
import type { Storage, StorageDamage, StorageLoad } from "./types.ts";
import { lockDirectory } from "./_lock.ts";
import { concatBytes } from "../wire/cbor.ts";

export type { Entry, Section, Storage, StorageDamage, StorageLoad } from "./types.ts";
export type { Stamp } from "../core/hlc.ts";
export type { DamageReason } from "./_log.ts";

/**
 * When written entries reach the disk:
 * - `"always"`: fsync before `set()` resolves; concurrent writes share one fsync (group
 *   commit). Survives a power cut.
 * - `"interval"`: fsync every `fsyncIntervalMs`; `set()` resolves after the next fsync.
 *   Survives a power cut too, with fewer fsyncs under load, at the price of latency.
 * - `"never"`: written to the operating system at once, `set()` resolves then, fsync only
 *   on close and compaction. Survives a crash of the process, not of the machine.
 */
export type FsyncPolicy = "always" | "interval" | "never";

/** Options of {@linkcode fileStorage}. */
export interface FileStorageOptions {
  /** Directory of the log; created if missing. One member per directory. */
  dir: string;
  /** When writes reach the disk (see {@linkcode FsyncPolicy}). Default `"always"`. */
  fsync?: FsyncPolicy;
  /** With `fsync: "interval"`: the period, in ms. Default 10. */
  fsyncIntervalMs?: number;
  /**
   * Compaction starts once the log is larger than this and more than twice the live
   * data, in bytes. Default 64 MiB.
   */
  compactAfterBytes?: number;
  /**
   * Called with failures in the background (a failed write, fsync or compaction). After a
   * failed write or fsync (a full disk, say) the storage is failing: `sync()` rejects,
   * {@linkcode FileStorage.failure} says why, and a member refuses writes until it
   * recovers. Default: `console.error`.
   */
  onError?: (error: unknown) => void;
  /**
   * While failing, how often to try to recover, in ms: the log is written afresh from
   * what is held in memory (it needs room for one copy of the live data), and on success
   * the storage works again. Default 5,000.
   */
  recoverIntervalMs?: number;
  /** Called once the storage recovered from a failure. Default: `console.error`, one line. */
  onRecover?: () => void;
}

/** Damage {@linkcode FileStorage.load} found in the log, and repaired. */
export interface FileStorageDamage extends StorageDamage {
  /**
   * The first damage found. `"torn"`: the last record is incomplete (a write cut short);
   * `"checksum"`: a record followed by more data fails its checksum; `"malformed"`: a
   * record is not an entry; `"header"`: the file is not a log of this format (it is moved
   * aside, not deleted). Good records after a damaged one are kept: reading resumes at the
   * next record that checks out.
   */
  readonly reason: DamageReason | "header";
  /** The log file. */
  readonly file: string;
  /** Where the (first) damage starts. */
  readonly offset: number;
  /** With `"header"`: where the unreadable file was moved. */
  readonly movedTo: string | null;
  /**
   * A copy of the log as it was found, kept when the damage is more than a torn tail (a
   * record in the middle or a damaged tail), for forensics. `null` otherwise.
   */
  readonly copy: string | null;
}

/** Counters of a {@linkcode FileStorage}. */
export interface FileStorageStats {
  /** Size of the log file, in bytes. */
  readonly fileBytes: number;
  /** Bytes of the records still current (what a compaction would write, header aside). */
  readonly liveBytes: number;
  /** Entries held (one version per key, tombstones included). */
  readonly entries: number;
  /** Writes to the log (each a batch of records). */
  readonly writes: number;
  /** fsyncs of the log. */
  readonly fsyncs: number;
  /** Compactions done. */
  readonly compactions: number;
}

/** Name of the log file in the directory. */
export const LOG_FILE = "entries.log";

interface Slot {
  readonly entry: Entry;
  readonly size: number;
}

interface Waiter {
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

const CHUNK_BYTES = 1 << 20;

async function writeAt(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw new Error("Write to the log made no progress");
    done += bytesWritten;
  }
}

/** fsync of a directory, so that a created or renamed file survives a power cut. */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch (error) {
    // Some systems (Windows) cannot open or fsync a directory: there, renames are durable
    // by other means, and nothing more can be done.
    const code = (error as { code?: unknown }).code;
    if (!["EISDIR", "EPERM", "EINVAL", "ENOTSUP", "EBADF", "EACCES"].includes(String(code))) {
      throw error;
    }
  } finally {
    await fh?.close();
  }
}

/**
 * Opens (on {@linkcode FileStorage.load}) a log-structured storage in `options.dir`.
 *
 * @example Group commit: concurrent writes share one fsync
 * ```ts
 * import { GossipKV, MemoryNetwork } from "@gossip-kv/gossip-kv";
 * import { fileStorage } from "@gossip-kv/gossip-kv/storage/file";
 *
 * const dir = await Deno.makeTempDir();
 * const storage = fileStorage({ dir, fsync: "always" });
 * const kv = await GossipKV.start({ transport: new MemoryNetwork().transport("a"), storage });
 * await Promise.all(Array.from({ length: 100 }, (_, i) => kv.set(`k${i}`, i)));
 * console.log(storage.stats.fsyncs < 100); // true
 * await kv.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function fileStorage(options: FileStorageOptions): FileStorage {
  return new FileStorage(options);
}

/** The storage {@linkcode fileStorage} returns. */
export class FileStorage implements Storage {
  /** The directory. */
  readonly dir: string;
  /** The fsync policy. */
  readonly fsync: FsyncPolicy;
  readonly #path: string;
  readonly #tmp: string;
  readonly #intervalMs: number;
  readonly #compactAfter: number;
  readonly #onError: (error: unknown) => void;
  readonly #index: Record<Section, Map<string, Slot>> = { sys: new Map(), usr: new Map() };
  #state: "new" | "loading" | "open" | "closing" | "closed" = "new";
  #fh: FileHandle | undefined;
  #fileBytes = 0;
  #liveBytes = 0;
  #pending: Uint8Array[] = [];
  /** Records appended, written to the file, fsynced, and durable under the policy. */
  #appended = 0;
  #written = 0;
  #fsynced = 0;
  #durable = 0;
  #waiters: Waiter[] = [];
  #loop: Promise<void> = Promise.resolve();
  #running = false;
  #kickQueued = false;
  #fsyncDue = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #nextCompactAt = 0;
  #failed: { error: unknown } | undefined;
  readonly #recoverMs: number;
  readonly #onRecover: () => void;
  #recoverDue = false;
  /** Whether a rewrite that recovers is under way (its snapshot taken). */
  #recovering = false;
  #recoverTimer: ReturnType<typeof setTimeout> | undefined;
  #closing: Promise<void> | undefined;
  #unlock: (() => Promise<void>) | undefined;
  readonly #stats = { writes: 0, fsyncs: 0, compactions: 0 };

  /** Checks the options; nothing is opened before {@linkcode FileStorage.load}. */
  constructor(options: FileStorageOptions) {
    if (!options || typeof options.dir !== "string" || options.dir.length === 0) {
      throw new TypeError("fileStorage() needs a directory: { dir }");
    }
    const fsync = options.fsync ?? "always";
    if (!["always", "interval", "never"].includes(fsync)) {
      throw new TypeError(`fsync must be "always", "interval" or "never", got ${String(fsync)}`);
    }
    this.#intervalMs = options.fsyncIntervalMs ?? 10;
    this.#compactAfter = options.compactAfterBytes ?? 64 * 1024 * 1024;
    if (!(this.#intervalMs > 0) || !Number.isFinite(this.#intervalMs)) {
      throw new RangeError("fsyncIntervalMs must be a positive number");
    }
    if (!(this.#compactAfter > 0) || !Number.isFinite(this.#compactAfter)) {
      throw new RangeError("compactAfterBytes must be a positive number");
    }
    this.dir = options.dir;
    this.fsync = fsync;
    this.#path = join(options.dir, LOG_FILE);
    this.#tmp = `${this.#path}.tmp`;
    this.#onError = options.onError ?? ((error) => console.error("gossip-kv storage:", error));
    this.#recoverMs = options.recoverIntervalMs ?? 5_000;
    if (!(this.#recoverMs > 0) || !Number.isFinite(this.#recoverMs)) {
      throw new RangeError("recoverIntervalMs must be a positive number");
    }
    this.#onRecover = options.onRecover ??
      (() => console.error(`gossip-kv storage: recovered; ${this.#path} rewritten from memory`));
    this.#nextCompactAt = this.#compactAfter;
  }

  /** Counters: file and live sizes, writes, fsyncs, compactions. */
  get stats(): FileStorageStats {
    return {
      fileBytes: this.#fileBytes,
      liveBytes: this.#liveBytes,
      entries: this.#index.sys.size + this.#index.usr.size,
      ...this.#stats,
    };
  }

  /**
   * Why the storage cannot make writes durable now (a failed write or fsync: a full disk,
   * an I/O error), or `undefined`. It tries to recover every `recoverIntervalMs`.
   */
  get failure(): Error | undefined {
    const e = this.#failed?.error;
    if (!this.#failed) return undefined;
    return e instanceof Error ? e : new Error(String(e));
  }

  /**
   * Opens the directory and reads the log: a leftover compaction file is removed, a
   * damaged tail is cut off and damaged records in the middle skipped (both reported in
   * `damage`; records after the damage are kept), a file of another format is moved
   * aside. Rejects if the directory cannot be used at all, or another storage holds it.
   */
  async load(): Promise<FileStorageLoad> {
    if (this.#state !== "new") throw new Error("FileStorage.load() may be called once");
    this.#state = "loading";
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (error) {
      // Node's recursive mkdir reports ENOENT on a read-only file system (and for other
      // causes): a plain mkdir tells the real one (EROFS, EACCES), or ENOENT if it is that.
      if ((error as { code?: unknown }).code !== "ENOENT") throw error;
      await mkdir(this.dir);
    }
    this.#unlock = await lockDirectory(this.dir);
    try {
      return await this.#load();
    } catch (error) {
      await this.#fh?.close().catch(() => {});
      await this.#unlock();
      this.#state = "closed";
      throw error;
    }
  }

  async #load(): Promise<FileStorageLoad> {
    // A compaction cut short: the log it would have replaced is still there, intact.
    await rm(this.#tmp, { force: true });
    let bytes: Uint8Array | undefined;
    try {
      bytes = await readFile(this.#path);
    } catch (error) {
      if ((error as { code?: unknown }).code !== "ENOENT") throw error;
    }
    let damage: FileStorageDamage | null = null;
    let end = HEADER.length;
    if (bytes === undefined) {
      await this.#create();
    } else if (!hasHeader(bytes)) {
      const movedTo = `${this.#path}.unreadable-${Date.now()}`;
      await rename(this.#path, movedTo);
      await this.#create();
      damage = {
        reason: "header",
        file: this.#path,
        offset: 0,
        bytesDropped: bytes.length,
        movedTo,
        copy: null,
        message: `${this.#path} is not a Gossip KV log (no header): moved to ${movedTo}`,
      };
    } else {
      const read = readRecords(bytes);
      for (const r of read.records) this.#put(r.entry, r.size);
      end = read.end;
      if (read.skipped.length > 0 || read.damage) {
        damage = await this.#repair(bytes, read);
        if (read.skipped.length > 0) end = -1; // rewritten below
      }
    }
    if (end < 0) {
      // Good records follow the damage: write them all to a fresh log (the damaged file
      // is kept as a copy), rather than leave holes for every later load to skip.
      this.#fileBytes = await this.#rewrite();
    } else {
      this.#fh = await open(this.#path, "r+");
      if (damage && damage.reason !== "header") {
        await this.#fh.truncate(end);
        await this.#fh.datasync();
      }
      this.#fileBytes = end;
    }
    this.#state = "open";
    if (this.#compactDue()) this.#kick();
    return { entries: [...this.#entries()], damage };
  }

  /** Describes damage found by `readRecords`; keeps a copy of the file unless only torn. */
  async #repair(bytes: Uint8Array, read: ReadResult): Promise<FileStorageDamage> {
    const first = read.skipped[0] ?? { offset: read.end, reason: read.damage!.reason };
    const tail = read.damage ? bytes.length - read.end : 0;
    const dropped = read.skipped.reduce((n, r) => n + r.bytes, 0) + tail;
    let copy: string | null = null;
    if (read.skipped.length > 0 || read.damage?.reason !== "torn") {
      copy = `${this.#path}.damaged-${Date.now()}`;
      await copyFile(this.#path, copy);
    }
    const parts: string[] = [];
    for (const r of read.skipped) {
      parts.push(`${r.reason} (${r.detail}): ${r.bytes} bytes skipped, reading resumed after`);
    }
    if (read.damage) {
      parts.push(
        `${read.damage.reason} (${read.damage.detail}): cut to ${read.end} bytes, ${tail} dropped`,
      );
    }
    return {
      reason: first.reason,
      file: this.#path,
      offset: first.offset,
      bytesDropped: dropped,
      movedTo: null,
      copy,
      message: `${this.#path}: ${parts.join("; ")}; ${read.records.length} records kept` +
        (copy ? `; the damaged file is kept as ${copy}` : ""),
    };
  }

  /** Queues entries for the log; each replaces the version of its key held before. */
  append(entries: readonly Entry[]): void {
    if (this.#state !== "open") {
      if (this.#state === "closing" || this.#state === "closed") {
        throw new Error("Storage is closed");
      }
      throw new Error("Storage is not open: call load() first");
    }
    let added = false;
    for (const e of entries) {
      const current = this.#index[e.section].get(e.key);
      if (current && compareVersions(e, current.entry) <= 0) continue;
      const record = encodeRecord(e);
      this.#put(e, record.length);
      // While failing, the entry is kept for the rewrite that recovers, not queued; once
      // a rewrite has taken its snapshot, it is queued for the log that rewrite makes.
      if (this.#failed && !this.#recovering) continue;
      this.#pending.push(record);
      this.#appended++;
      added = true;
    }
    if (added) this.#kickSoon();
  }

  /** Drops collected tombstones from what a compaction keeps. */
  forget(entries: readonly Entry[]): void {
    for (const e of entries) {
      const map = this.#index[e.section];
      const current = map.get(e.key);
      if (current && compareVersions(e, current.entry) === 0) {
        map.delete(e.key);
        this.#liveBytes -= current.size;
      }
    }
  }

  /** Resolves once everything appended so far is durable under the fsync policy. */
  sync(): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed.error);
    const seq = this.#appended;
    if (this.#durable >= seq) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ seq, resolve, reject });
      this.#kickSoon();
    });
  }

  /**
   * Writes and fsyncs whatever is queued, then closes the file. Rejects with the error
   * that stopped the storage, if one did.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const wasOpen = this.#state === "open";
      this.#state = "closing";
      clearTimeout(this.#timer);
      this.#timer = undefined;
      clearTimeout(this.#recoverTimer);
      this.#recoverTimer = undefined;
      if (wasOpen) {
        this.#kick();
        await this.#loop;
        try {
          if (!this.#failed && this.#fsynced < this.#written) await this.#fsyncNow();
        } catch (error) {
          this.#fail(error);
        }
        await this.#fh?.close().catch(() => {});
      }
      await this.#unlock?.();
      this.#state = "closed";
      if (this.#failed) throw this.#failed.error;
    })();
    return this.#closing;
  }

  // ------------------------------------------------------------------ internals

  *#entries(): IterableIterator<Entry> {
    for (const s of this.#index.sys.values()) yield s.entry;
    for (const s of this.#index.usr.values()) yield s.entry;
  }

  #put(entry: Entry, size: number): void {
    const map = this.#index[entry.section];
    const current = map.get(entry.key);
    if (current) {
      if (compareVersions(entry, current.entry) <= 0) return;
      this.#liveBytes -= current.size;
    }
    map.set(entry.key, { entry, size });
    this.#liveBytes += size;
  }

  /** Creates an empty log atomically: a file named `entries.log` always has a header. */
  async #create(): Promise<void> {
    const fh = await open(this.#tmp, "w");
    try {
      await writeAt(fh, HEADER, 0);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(this.#tmp, this.#path);
    await syncDir(this.dir);
  }

  /** Starts the writer after the current turn, so that a burst of writes shares a batch. */
  #kickSoon(): void {
    if (this.#kickQueued) return;
    this.#kickQueued = true;
    queueMicrotask(() => {
      this.#kickQueued = false;
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#running || (this.#failed && !this.#recoverDue) || this.#state === "closed") return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** The one writer: every file operation happens here, one after the other. */
  async #run(): Promise<void> {
    try {
      for (;;) {
        if (this.#failed) {
          if (this.#recoverDue && this.#state === "open") await this.#recover();
          if (this.#failed) break;
          continue; // recovered: write what came during the rewrite
        }
        if (this.#compactDue()) {
          await this.#compact();
        } else if (this.#pending.length > 0) {
          await this.#write();
          if (this.fsync === "always") await this.#fsyncNow();
          else if (this.fsync === "never") this.#settle(this.#written);
          else this.#armTimer();
        } else if (this.#fsyncDue) {
          this.#fsyncDue = false;
          if (this.#fsynced < this.#written) await this.#fsyncNow();
        } else {
          break;
        }
      }
    } catch (error) {
      this.#fail(error);
    }
    this.#running = false;
  }

  async #write(): Promise<void> {
    const data = concatBytes(this.#pending);
    const seq = this.#appended;
    this.#pending = [];
    await writeAt(this.#fh!, data, this.#fileBytes);
    this.#fileBytes += data.length;
    this.#written = seq;
    this.#stats.writes++;
  }

  async #fsyncNow(): Promise<void> {
    const seq = this.#written;
    await this.#fh!.datasync();
    this.#stats.fsyncs++;
    this.#fsynced = Math.max(this.#fsynced, seq);
    this.#settle(seq);
  }

  #armTimer(): void {
    if (this.#timer !== undefined || this.#state !== "open") return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#fsyncDue = true;
      this.#kick();
    }, this.#intervalMs);
  }

  /** Resolves the waiters for everything up to record `seq`. */
  #settle(seq: number): void {
    if (seq <= this.#durable) return;
    this.#durable = seq;
    const waiting: Waiter[] = [];
    for (const w of this.#waiters) {
      if (w.seq <= seq) w.resolve();
      else waiting.push(w);
    }
    this.#waiters = waiting;
  }

  /**
   * A failed write or fsync stops the storage for good: after a failed fsync the kernel
   * may have dropped the dirty pages, so a later fsync that succeeds proves nothing
   * (PostgreSQL's "fsyncgate", https://lwn.net/Articles/752063/).
   */
  #fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = { error };
    for (const w of this.#waiters) w.reject(error);
    this.#waiters = [];
    this.#pending = [];
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#onError(error);
    this.#armRecovery();
  }

  #armRecovery(): void {
    if (this.#state !== "open") return;
    this.#recoverTimer = setTimeout(() => {
      this.#recoverTimer = undefined;
      this.#recoverDue = true;
      this.#kick();
    }, this.#recoverMs);
  }

  /**
   * Writes the log afresh from memory: after a failed fsync the old file cannot be
   * trusted (pages may be lost), so nothing of it is reused. On failure, tries again later.
   */
  async #recover(): Promise<void> {
    this.#recoverDue = false;
    const seq = this.#appended;
    const captured = this.#pending.length;
    let size: number;
    // #writeTmp() takes its snapshot before its first await: entries appended after that
    // are queued (see append), to go into the new log once it is in place.
    this.#recovering = true;
    try {
      size = await this.#writeTmp();
      await this.#swapIn();
    } catch {
      this.#armRecovery();
      return;
    } finally {
      this.#recovering = false;
    }
    this.#failed = undefined;
    this.#pending.splice(0, captured); // the rewritten log holds them
    this.#fileBytes = size;
    this.#written = seq;
    this.#fsynced = seq;
    this.#settle(seq);
    this.#nextCompactAt = this.#compactAfter;
    this.#onRecover();
  }

  #compactDue(): boolean {
    return this.#state === "open" && this.#fileBytes >= this.#nextCompactAt &&
      this.#fileBytes > 2 * this.#liveBytes + HEADER.length;
  }

  /**
   * Writes the live entries into a new file and renames it over the log. A crash at any
   * step leaves either the old log (the new file is removed on load) or the new one,
   * each complete; records queued meanwhile go to the new file afterwards.
   */
  async #compact(): Promise<void> {
    const seq = this.#appended;
    const captured = this.#pending.length;
    let size: number;
    try {
      size = await this.#writeTmp();
    } catch (error) {
      // Keep appending to the old log; try again once it has grown as much again.
      this.#nextCompactAt = this.#fileBytes + this.#compactAfter;
      this.#onError(new Error("Compaction failed; the log is kept as it is", { cause: error }));
      return;
    }
    // From here on, a failure leaves the storage unusable (which file is the log?).
    await this.#swapIn();
    this.#pending.splice(0, captured); // the compacted file holds them
    this.#fileBytes = size;
    this.#written = seq;
    this.#fsynced = seq;
    this.#nextCompactAt = this.#compactAfter;
    this.#stats.compactions++;
    this.#settle(seq);
  }

  /** Writes every live entry to the temporary file, fsynced; returns its size. */
  async #writeTmp(): Promise<number> {
    const snapshot = [...this.#entries()];
    let fh: FileHandle | undefined;
    try {
      fh = await open(this.#tmp, "w");
      await writeAt(fh, HEADER, 0);
      let size = HEADER.length;
      let chunk: Uint8Array[] = [];
      let chunkBytes = 0;
      for (let i = 0; i <= snapshot.length; i++) {
        if (i < snapshot.length) {
          const record = encodeRecord(snapshot[i]!);
          chunk.push(record);
          chunkBytes += record.length;
        }
        if (chunkBytes >= CHUNK_BYTES || (i === snapshot.length && chunkBytes > 0)) {
          await writeAt(fh, concatBytes(chunk), size);
          size += chunkBytes;
          chunk = [];
          chunkBytes = 0;
        }
      }
      await fh.datasync();
      await fh.close();
      return size;
    } catch (error) {
      await fh?.close().catch(() => {});
      await rm(this.#tmp, { force: true }).catch(() => {});
      throw error;
    }
  }

  /** Renames the temporary file over the log and makes it the open one. */
  async #swapIn(): Promise<void> {
    await rename(this.#tmp, this.#path);
    await syncDir(this.dir);
    const old = this.#fh;
    this.#fh = await open(this.#path, "r+");
    await old?.close();
  }

  /** Replaces the log by a fresh one holding every live entry; returns its size. */
  async #rewrite(): Promise<number> {
    const size = await this.#writeTmp();
    await this.#swapIn();
    return size;
  }
}

/** What {@linkcode FileStorage.load} found. */
export interface FileStorageLoad extends StorageLoad {
  /** Damage found and repaired, or `null`. */
  readonly damage: FileStorageDamage | null;
}
