/**
 * Encryption for clusters with a key: every datagram is sealed with AES-256-GCM
 * (WebCrypto, in every runtime) into a kind-2 datagram. A {@linkcode Keyring} holds the
 * cluster keys: the first (primary) one seals, every one opens, so keys rotate without
 * downtime. A {@linkcode ReplayGuard} refuses datagrams sealed outside a time window and
 * datagrams seen before. Layout: PROTOCOL.md, "Kind 2: sealed".
 *
 * Keys are 32 random bytes, written in base64 (`openssl rand -base64 32`, or
 * {@linkcode generateKey}); a key file holds one per line, the primary first.
 *
 * @module
 */

import {
  checkHeader,
  header,
  HEADER_BYTES,
  Kind,
  MAGIC_0,
  MAGIC_1,
  PROTOCOL_VERSION,
  type Refusal,
} from "./codec.ts";
import { slabBytes } from "./_slab.ts";

export type { Refusal } from "./codec.ts";

/** Bytes of a cluster key (AES-256). */
export const KEY_BYTES = 32;
const KEY_ID_BYTES = 4;
const NONCE_BYTES = 12;
const TIMESTAMP_BYTES = 8;
const TAG_BYTES = 16;
/** Bytes before the ciphertext: header, key id, nonce. */
const PREFIX_BYTES = HEADER_BYTES + KEY_ID_BYTES + NONCE_BYTES;
/** Bytes sealing adds to a datagram: header, key id, nonce, timestamp and tag (44). */
export const SEAL_OVERHEAD = PREFIX_BYTES + TIMESTAMP_BYTES + TAG_BYTES;
/** Default {@linkcode ReplayGuard} window: datagrams sealed further away in time are refused. */
export const DEFAULT_REPLAY_WINDOW_MS = 60_000;

/** A cluster key: base64 text of 32 bytes, or the bytes. */
export type KeyInput = string | Uint8Array;

/** What {@linkcode Keyring.open} makes of a sealed datagram. */
export type Opened =
  | {
    readonly status: "opened";
    /** The datagram that was sealed (kind 0 or 1). */
    readonly datagram: Uint8Array;
    /** When it was sealed, in ms since the epoch, by the sender's clock. */
    readonly timestamp: number;
    /** Its nonce, for {@linkcode ReplayGuard.check}. */
    readonly nonce: Uint8Array;
  }
  | ({ readonly status: "dropped" } & Refusal);

/**
 * A new random cluster key, in base64.
 *
 * @example
 * ```ts
 * import { generateKey } from "@gossip-kv/gossip-kv";
 * console.log(generateKey()); // e.g. "q5v8K1...=" (44 characters)
 * ```
 */
export function generateKey(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(KEY_BYTES))));
}

/**
 * Checks one key and returns its 32 bytes. Throws a `TypeError` for text that is not
 * base64 (standard or URL-safe), a `RangeError` for a key of another length. Messages
 * never quote the key.
 *
 * @example
 * ```ts
 * import { generateKey, parseKey } from "@gossip-kv/gossip-kv";
 * console.log(parseKey(generateKey()).length); // 32
 * ```
 */
export function parseKey(key: KeyInput, what = "Key"): Uint8Array<ArrayBuffer> {
  if (key instanceof Uint8Array) {
    if (key.length !== KEY_BYTES) {
      throw new RangeError(`${what} is ${key.length} bytes, not ${KEY_BYTES}`);
    }
    return key.slice();
  }
  if (typeof key !== "string") throw new TypeError(`${what} must be a base64 string`);
  const text = key.trim().replace(/-/g, "+").replace(/_/g, "/");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.replace(/=+$/, "").length % 4 === 1) {
    throw new TypeError(`${what} is not base64 (make one with: openssl rand -base64 32)`);
  }
  const bytes = Uint8Array.from(
    atob(text.padEnd(Math.ceil(text.length / 4) * 4, "=")),
    (c) => c.charCodeAt(0),
  );
  if (bytes.length !== KEY_BYTES) {
    throw new RangeError(`${what} is ${bytes.length} bytes, not ${KEY_BYTES}`);
  }
  return bytes;
}

/**
 * Parses a key file: one base64 key per line, the primary first; blank lines and lines
 * starting with `#` are skipped. Throws a `TypeError` for a line that is not base64 or a
 * file without any key, a `RangeError` for a key that is not 32 bytes; messages give the
 * line number, never the key.
 *
 * @example
 * ```ts
 * import { generateKey, parseKeyFile } from "@gossip-kv/gossip-kv";
 * const text = `# cluster keys, primary first\n${generateKey()}\n${generateKey()}\n`;
 * console.log(parseKeyFile(text).length); // 2
 * ```
 */
export function parseKeyFile(text: string): Uint8Array<ArrayBuffer>[] {
  if (typeof text !== "string") throw new TypeError("Key file must be text");
  const keys: Uint8Array<ArrayBuffer>[] = [];
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    keys.push(parseKey(trimmed, `Key on line ${i + 1}`));
  }
  if (keys.length === 0) throw new TypeError("Key file holds no key");
  return keys;
}

interface RingKey {
  readonly id: Uint8Array;
  readonly key: CryptoKey;
  /** The same key for the synchronous cipher, when the runtime has one. */
  readonly sync: unknown;
}

/** The part of `node:crypto` the synchronous cipher uses. */
interface NodeCrypto {
  createSecretKey(key: Uint8Array): unknown;
  createCipheriv(algorithm: "aes-256-gcm", key: unknown, iv: Uint8Array): {
    setAAD(aad: Uint8Array): unknown;
    update(data: Uint8Array): Uint8Array;
    final(): Uint8Array;
    getAuthTag(): Uint8Array;
  };
  createDecipheriv(algorithm: "aes-256-gcm", key: unknown, iv: Uint8Array): {
    setAAD(aad: Uint8Array): unknown;
    setAuthTag(tag: Uint8Array): unknown;
    update(data: Uint8Array): Uint8Array;
    final(): Uint8Array;
  };
}

/**
 * `node:crypto`, where the runtime has it (Node, Deno and Bun do): the same AES-256-GCM,
 * but synchronous, and several times cheaper per datagram than a WebCrypto call, whose
 * promise costs more than the cipher for datagrams this small. Found through
 * `process.getBuiltinModule` (Node 20.16+, Deno 2, Bun), so that nothing imports it where
 * it is absent (workerd, browsers): there WebCrypto does the work.
 */
const nodeCrypto: NodeCrypto | undefined = (() => {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } })
    .process;
  try {
    const m = p?.getBuiltinModule?.("node:crypto") as NodeCrypto | undefined;
    if (!m?.createCipheriv || !m.createDecipheriv || !m.createSecretKey) return undefined;
    // A runtime that has the functions but not this cipher (or not in full) throws here,
    // once, rather than on the first datagram: then it is WebCrypto's.
    const key = m.createSecretKey(new Uint8Array(KEY_BYTES));
    const iv = new Uint8Array(NONCE_BYTES);
    const cipher = m.createCipheriv("aes-256-gcm", key, iv);
    cipher.setAAD(iv);
    const body = cipher.update(Uint8Array.of(1, 2, 3));
    cipher.final();
    const decipher = m.createDecipheriv("aes-256-gcm", key, iv);
    decipher.setAAD(iv);
    decipher.setAuthTag(cipher.getAuthTag());
    const plain = decipher.update(body);
    decipher.final();
    return plain.length === 3 && plain[2] === 3 ? m : undefined;
  } catch {
    return undefined;
  }
})();

const encoder = new TextEncoder();
const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

/**
 * Checks the header of a datagram received in an encrypted cluster, without decrypting:
 * anything but a sealed datagram of at most `maxBytes` is refused (a well-formed kind 0
 * or 1 datagram as `"plaintext"`).
 */
export function checkSealed(data: Uint8Array, maxBytes: number): Refusal | undefined {
  const header = checkHeader(data, maxBytes);
  if ("reason" in header) return header;
  if (header.kind === Kind.Envelope || header.kind === Kind.Fragment) {
    return { reason: "plaintext", detail: "unencrypted datagram in an encrypted cluster" };
  }
  if (header.kind !== Kind.Sealed) {
    return { reason: "malformed", detail: `unknown kind ${header.kind}` };
  }
  if (data.length < SEAL_OVERHEAD + HEADER_BYTES) {
    return { reason: "truncated", detail: `sealed datagram of ${data.length} bytes` };
  }
  return undefined;
}

/**
 * The cluster keys of a member: the first (primary) one seals, every one opens.
 * Immutable; to rotate, build a new ring (`GossipKV.setKeys` does).
 *
 * @example Seal and open
 * ```ts
 * import { generateKey } from "@gossip-kv/gossip-kv";
 * import { Keyring } from "./crypto.ts"; // internal: members take `keys` instead
 * const ring = await Keyring.create([generateKey()]);
 * const datagram = Uint8Array.of(0x47, 0x4b, 1, 0, 0x80);
 * const sealed = await ring.seal(datagram, "default", Date.now());
 * const opened = await ring.open(sealed, "default");
 * console.log(opened.status); // "opened"
 * ```
 */
export class Keyring {
  readonly #keys: readonly RingKey[];
  readonly #sync: NodeCrypto | undefined;

  private constructor(keys: readonly RingKey[], sync: NodeCrypto | undefined) {
    this.#keys = keys;
    this.#sync = sync;
  }

  /**
   * Imports keys, the primary first (duplicates are ignored). Throws a `TypeError` for an
   * empty list or a key that is not base64, a `RangeError` for a key that is not 32 bytes.
   * With `{ sync: false }`, the ring uses WebCrypto alone, even where the runtime has a
   * synchronous cipher (see {@linkcode Keyring.sync}).
   */
  static async create(
    keys: readonly KeyInput[],
    options: { readonly sync?: boolean } = {},
  ): Promise<Keyring> {
    if (!Array.isArray(keys) || keys.length === 0) {
      throw new TypeError("A keyring needs at least one key");
    }
    const raws = keys.map((k, i) => parseKey(k, `Key ${i + 1}`));
    const ring: RingKey[] = [];
    for (const raw of raws) {
      // Key id: 4 bytes of SHA-256 over a label and the key, so a receiver picks the key
      // without trial decryption, and the id reveals nothing of the key.
      const label = encoder.encode("gossip-kv key id\0");
      const digest = await crypto.subtle.digest("SHA-256", concat(label, raw));
      const id = new Uint8Array(digest, 0, KEY_ID_BYTES);
      if (ring.some((k) => hex(k.id) === hex(id))) continue;
      const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, [
        "encrypt",
        "decrypt",
      ]);
      const sync = options.sync !== false && nodeCrypto
        ? nodeCrypto.createSecretKey(raw)
        : undefined;
      ring.push({ id, key, sync });
    }
    return new Keyring(ring, options.sync !== false ? nodeCrypto : undefined);
  }

  /**
   * Whether this ring seals and opens synchronously ({@linkcode Keyring.sealSync},
   * {@linkcode Keyring.openSync}): where the runtime has `node:crypto` (Node, Deno, Bun).
   * The bytes are the same either way.
   */
  get sync(): boolean {
    return this.#sync !== undefined;
  }

  /** Key ids (8 hex digits each, not secret), the primary first: for logs and checks. */
  get ids(): string[] {
    return this.#keys.map((k) => hex(k.id));
  }

  /** Seals a datagram with the primary key, stamped with `now` (ms since the epoch). */
  async seal(datagram: Uint8Array, cluster: string, now: number): Promise<Uint8Array> {
    if (this.#sync) return this.sealSync(datagram, cluster, now);
    const primary = this.#keys[0]!;
    const prefix = sealPrefix(primary);
    const nonce = prefix.subarray(HEADER_BYTES + KEY_ID_BYTES);
    const plain = new Uint8Array(TIMESTAMP_BYTES + datagram.length);
    writeTimestamp(plain, now);
    plain.set(datagram, TIMESTAMP_BYTES);
    const sealed = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: nonce, additionalData: aad(prefix, cluster) },
      primary.key,
      plain,
    );
    return concat(prefix, new Uint8Array(sealed));
  }

  /**
   * {@linkcode Keyring.seal}, synchronously. Throws an `Error` if the ring is not
   * {@linkcode Keyring.sync}.
   */
  sealSync(datagram: Uint8Array, cluster: string, now: number): Uint8Array {
    const nc = this.#syncCipher();
    const primary = this.#keys[0]!;
    // One array for the whole sealed datagram (see `_slab.ts`); the prefix is written in
    // place, and the plaintext where the ciphertext goes, then encrypted in one call.
    const out = slabBytes(PREFIX_BYTES + TIMESTAMP_BYTES + datagram.length + TAG_BYTES);
    writePrefix(out, primary);
    const prefix = out.subarray(0, PREFIX_BYTES);
    const cipher = nc.createCipheriv(
      "aes-256-gcm",
      primary.sync,
      out.subarray(HEADER_BYTES + KEY_ID_BYTES, PREFIX_BYTES),
    );
    // The cipher reads the AAD at once: one scratch array serves every call.
    cipher.setAAD(syncAad(prefix, cluster));
    const plain = out.subarray(PREFIX_BYTES, out.length - TAG_BYTES);
    writeTimestamp(plain, now);
    plain.set(datagram, TIMESTAMP_BYTES);
    const body = cipher.update(plain);
    out.set(body, PREFIX_BYTES);
    const tail = cipher.final();
    if (tail.length) out.set(tail, PREFIX_BYTES + body.length);
    out.set(cipher.getAuthTag(), PREFIX_BYTES + body.length + tail.length);
    return out;
  }

  /**
   * Opens a sealed datagram (its header already passed {@linkcode checkSealed}). Never
   * rejects: a datagram no key of the ring authenticates comes back as
   * `{ status: "dropped", reason: "unauthenticated" }`.
   */
  async open(sealed: Uint8Array, cluster: string): Promise<Opened> {
    const refused = (detail: string): Opened => ({
      status: "dropped",
      reason: "unauthenticated",
      detail,
    });
    if (this.#sync) return this.openSync(sealed, cluster);
    const id = hex(sealed.subarray(HEADER_BYTES, HEADER_BYTES + KEY_ID_BYTES));
    const candidates = this.#keys.filter((k) => hex(k.id) === id);
    if (candidates.length === 0) return refused(`sealed with key ${id}, not in the keyring`);
    const prefix = sealed.slice(0, PREFIX_BYTES);
    const nonce = prefix.slice(HEADER_BYTES + KEY_ID_BYTES);
    for (const k of candidates) {
      let plain: Uint8Array;
      try {
        plain = new Uint8Array(
          await crypto.subtle.decrypt(
            { name: "AES-GCM", iv: nonce, additionalData: aad(prefix, cluster) },
            k.key,
            sealed.slice(PREFIX_BYTES),
          ),
        );
      } catch {
        continue;
      }
      const view = new DataView(plain.buffer);
      const timestamp = view.getUint32(0) * 2 ** 32 + view.getUint32(4);
      return { status: "opened", datagram: plain.subarray(TIMESTAMP_BYTES), timestamp, nonce };
    }
    return refused("authentication failed (wrong key, other cluster, or altered)");
  }

  /**
   * {@linkcode Keyring.open}, synchronously. Throws an `Error` if the ring is not
   * {@linkcode Keyring.sync}.
   */
  openSync(sealed: Uint8Array, cluster: string): Opened {
    const nc = this.#syncCipher();
    const keyId = sealed.subarray(HEADER_BYTES, HEADER_BYTES + KEY_ID_BYTES);
    const keys = this.#keys;
    const candidates = keys.length === 1 && sameBytes(keys[0]!.id, keyId)
      ? keys
      : keys.filter((k) => sameBytes(k.id, keyId));
    if (candidates.length === 0) {
      return unauthenticated(`sealed with key ${hex(keyId)}, not in the keyring`);
    }
    if (sealed.length < SEAL_OVERHEAD) return unauthenticated("shorter than a seal");
    const prefix = sealed.subarray(0, PREFIX_BYTES);
    const nonce = sealed.slice(HEADER_BYTES + KEY_ID_BYTES, PREFIX_BYTES);
    const body = sealed.subarray(PREFIX_BYTES, sealed.length - TAG_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    for (const k of candidates) {
      let plain: Uint8Array;
      try {
        const decipher = nc.createDecipheriv("aes-256-gcm", k.sync, nonce);
        decipher.setAAD(syncAad(prefix, cluster));
        decipher.setAuthTag(tag);
        const head = decipher.update(body);
        const tail = decipher.final();
        plain = tail.length ? concat(head, tail) : head;
      } catch {
        continue;
      }
      const timestamp = readUint32(plain, 0) * 2 ** 32 + readUint32(plain, 4);
      return { status: "opened", datagram: plain.subarray(TIMESTAMP_BYTES), timestamp, nonce };
    }
    return unauthenticated("authentication failed (wrong key, other cluster, or altered)");
  }

  #syncCipher(): NodeCrypto {
    if (!this.#sync) throw new Error("This keyring has no synchronous cipher");
    return this.#sync;
  }
}

function unauthenticated(detail: string): Opened {
  return { status: "dropped", reason: "unauthenticated", detail };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Reads a big-endian unsigned 32-bit integer at `o`. */
function readUint32(bytes: Uint8Array, o: number): number {
  return ((bytes[o]! << 24) | (bytes[o + 1]! << 16) | (bytes[o + 2]! << 8) | bytes[o + 3]!) >>> 0;
}

/**
 * Random bytes drawn from the CSPRNG in blocks (each byte used once): a call per nonce
 * cost more than the rest of sealing but the cipher on Deno.
 */
const randomPool = new Uint8Array(4096);
let randomUsed = randomPool.length;

/** Fills `out` with fresh random bytes (from the pool). */
function fillRandom(out: Uint8Array): void {
  if (randomUsed + out.length > randomPool.length) {
    crypto.getRandomValues(randomPool);
    randomUsed = 0;
  }
  for (let i = 0; i < out.length; i++) out[i] = randomPool[randomUsed + i]!;
  randomUsed += out.length;
}

/** Writes the header, key id and a fresh random nonce at the start of `out`. */
function writePrefix(out: Uint8Array, key: RingKey): void {
  out[0] = MAGIC_0;
  out[1] = MAGIC_1;
  out[2] = PROTOCOL_VERSION;
  out[3] = Kind.Sealed;
  out.set(key.id, HEADER_BYTES);
  fillRandom(out.subarray(HEADER_BYTES + KEY_ID_BYTES, PREFIX_BYTES));
}

/** The encoded cluster name of the last {@linkcode syncAad} call, and the AAD scratch. */
let aadCluster = "";
let aadScratch = new Uint8Array(PREFIX_BYTES);

/**
 * The AAD of a sealed datagram (its prefix and the cluster name) in a scratch array,
 * valid until the next call: for the synchronous cipher, which reads it at once.
 */
function syncAad(prefix: Uint8Array, cluster: string): Uint8Array {
  if (cluster !== aadCluster || aadScratch.length === PREFIX_BYTES) {
    const name = encoder.encode(cluster);
    aadScratch = new Uint8Array(PREFIX_BYTES + name.length);
    aadScratch.set(name, PREFIX_BYTES);
    aadCluster = cluster;
  }
  aadScratch.set(prefix);
  return aadScratch;
}

/** Header, key id and a fresh random nonce: the bytes a sealed datagram starts with. */
function sealPrefix(key: RingKey): Uint8Array<ArrayBuffer> {
  const prefix = new Uint8Array(PREFIX_BYTES);
  prefix.set(header(Kind.Sealed));
  prefix.set(key.id, HEADER_BYTES);
  crypto.getRandomValues(prefix.subarray(HEADER_BYTES + KEY_ID_BYTES));
  return prefix;
}

/** Writes `now` (ms since the epoch) as 8 big-endian bytes at the start of `out`. */
function writeTimestamp(out: Uint8Array, now: number): void {
  const view = new DataView(out.buffer, out.byteOffset, TIMESTAMP_BYTES);
  view.setUint32(0, Math.floor(now / 2 ** 32));
  view.setUint32(4, now >>> 0);
}

/**
 * Refuses sealed datagrams stamped more than `windowMs` away from the receiver's clock,
 * and, within the window, any nonce seen before (a replay, or a duplicate from the
 * network). Remembers at most `maxEntries` nonces, the oldest forgotten first.
 */
export class ReplayGuard {
  /** Datagrams sealed further than this from now (either way), in ms, are refused. */
  readonly windowMs: number;
  readonly #maxEntries: number;
  readonly #seen = new Set<string>();
  /**
   * The nonces of `#seen` and when each expires, in the order they were seen, from `#head`
   * on. (Iterating the oldest entries of a `Map` instead skips every entry deleted since
   * the Map last grew: O(deleted) per datagram.)
   */
  #keys: string[] = [];
  #expires: number[] = [];
  #head = 0;

  constructor(options: { windowMs?: number; maxEntries?: number } = {}) {
    this.windowMs = options.windowMs ?? DEFAULT_REPLAY_WINDOW_MS;
    this.#maxEntries = options.maxEntries ?? 1 << 17;
    if (!(this.windowMs > 0) || !Number.isFinite(this.windowMs)) {
      throw new RangeError(`Replay window must be a positive number of ms, got ${this.windowMs}`);
    }
  }

  /** Checks (and remembers) an opened datagram; returns why it is refused, if it is. */
  check(nonce: Uint8Array, timestamp: number, now: number): Refusal | undefined {
    const age = now - timestamp;
    if (Math.abs(age) > this.windowMs) {
      return {
        reason: "replayed",
        detail: `sealed ${age} ms from now, outside the ${this.windowMs} ms window`,
      };
    }
    const keys = this.#keys, expires = this.#expires;
    while (this.#head < keys.length) {
      if (expires[this.#head]! >= now && this.#seen.size < this.#maxEntries) break;
      this.#seen.delete(keys[this.#head]!);
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > keys.length) {
      this.#keys = keys.slice(this.#head);
      this.#expires = expires.slice(this.#head);
      this.#head = 0;
    }
    let key = "";
    for (let i = 0; i < nonce.length; i++) key += String.fromCharCode(nonce[i]!);
    if (this.#seen.has(key)) return { reason: "replayed", detail: "nonce seen before" };
    this.#seen.add(key);
    this.#keys.push(key);
    this.#expires.push(timestamp + this.windowMs);
    return undefined;
  }
}

function aad(prefix: Uint8Array, cluster: string): Uint8Array<ArrayBuffer> {
  return concat(prefix, encoder.encode(cluster));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
