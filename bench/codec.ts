// Part 2: the wire codec (envelope to datagram and back, with full validation on decode)
// beside JSON.stringify / JSON.parse of the same messages.
import type { Message } from "../src/core/messages.ts";
import type { Entry } from "../src/core/store.ts";
import { decodeDatagram, packDatagrams } from "../src/wire/codec.ts";
import { now } from "./env.ts";

/** One kind of envelope, timed both ways. */
export interface CodecCase {
  readonly name: string;
  /** A label short enough for a chart axis. */
  readonly short: string;
  /** Bytes of the datagram (CBOR) and of the JSON text (UTF-8). */
  readonly cborBytes: number;
  readonly jsonBytes: number;
  /** Envelopes per second. */
  readonly encode: number;
  readonly decode: number;
  readonly jsonStringify: number;
  readonly jsonParse: number;
  /** Medians over trials of ours / JSON, each trial timing both back to back. */
  readonly encodeRatio: number;
  readonly decodeRatio: number;
}

const CLUSTER = "default";
const SENDER = "member-3fa9c1d2";

function entry(i: number): Entry {
  return {
    section: "usr",
    key: `user:${1000 + i}`,
    value: { name: `user ${i}`, visits: 17 * i, active: i % 2 === 0, tags: ["blue", "eu"] },
    wall: Date.UTC(2026, 0, 1) + 37 * i,
    logical: i % 3,
    writer: `member-${(0x3fa9c1d2 + i * 7919).toString(16)}`,
    deleted: false,
  };
}

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed * 31 + i * 197) & 0xff;
  return out;
}

/** The envelopes measured: what members send most. */
export function codecCases(): { name: string; short: string; messages: Message[] }[] {
  const member = (i: number): Message => ({
    type: "member",
    id: `member-${(0x1000 + i).toString(16)}`,
    address: `10.0.${i}.7:7946`,
    incarnation: i,
    status: "alive",
  });
  return [
    {
      name: "rumor, 1 entry",
      short: "rumor",
      messages: [{ type: "rumor", hop: 0, entries: [entry(1)] }],
    },
    {
      name: "entries, 12 entries",
      short: "12 entries",
      messages: [{ type: "entries", entries: Array.from({ length: 12 }, (_, i) => entry(i)) }],
    },
    {
      name: "ping + 2 member updates",
      short: "ping + 2 members",
      messages: [{ type: "ping", seq: 48_213, target: "member-1a2b" }, member(1), member(2)],
    },
    {
      name: "sync-root",
      short: "sync-root",
      messages: [{ type: "sync-root", hash: bytes(8, 1), count: 100_000 }],
    },
    {
      name: "sync-branch",
      short: "sync-branch",
      messages: [{ type: "sync-branch", level: 2, index: 37, children: bytes(128, 2) }],
    },
  ];
}

function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** The same envelope as a JSON protocol would carry it: binary fields as hex strings. */
function jsonShape(messages: readonly Message[]): unknown {
  return {
    cluster: CLUSTER,
    sender: SENDER,
    messages: messages.map((m) =>
      Object.fromEntries(
        Object.entries(m).map(([k, v]) => [k, v instanceof Uint8Array ? hex(v) : v]),
      )
    ),
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs `f` repeatedly for about `ms`; returns calls per second. */
function rate(f: () => void, ms: number): number {
  let n = 0;
  const start = now();
  let t = start;
  while (t - start < ms) {
    for (let i = 0; i < 64; i++) f();
    n += 64;
    t = now();
  }
  return n / ((t - start) / 1000);
}

/** Measures every case; `ms` per side per trial. */
export function codec(o: { ms: number; trials: number }): CodecCase[] {
  const options = { cluster: CLUSTER, sender: SENDER, mtu: 1400, nextFragmentId: () => 1 };
  const encoder = new TextEncoder();
  let sink = 0;
  const out: CodecCase[] = [];
  for (const c of codecCases()) {
    const datagrams = packDatagrams(c.messages, options);
    if (datagrams.length !== 1) throw new Error(`${c.name} does not fit one datagram`);
    const datagram = datagrams[0]!;
    const check = decodeDatagram(datagram, CLUSTER, 1400);
    if (check.kind !== "envelope") throw new Error(`${c.name} does not decode`);
    const shape = jsonShape(c.messages);
    const text = JSON.stringify(shape);
    const enc: number[] = [], dec: number[] = [], js: number[] = [], jp: number[] = [];
    const er: number[] = [], dr: number[] = [];
    for (let t = 0; t < o.trials; t++) {
      const e = rate(() => sink += packDatagrams(c.messages, options).length, o.ms);
      const s = rate(() => sink += JSON.stringify(shape).length, o.ms);
      const d = rate(() => {
        const r = decodeDatagram(datagram, CLUSTER, 1400);
        if (r.kind === "envelope") sink += r.envelope.messages.length;
      }, o.ms);
      const p = rate(
        () => sink += (JSON.parse(text) as { messages: unknown[] }).messages.length,
        o.ms,
      );
      enc.push(e), dec.push(d), js.push(s), jp.push(p), er.push(e / s), dr.push(d / p);
    }
    out.push({
      name: c.name,
      short: c.short,
      cborBytes: datagram.length,
      jsonBytes: encoder.encode(text).length,
      encode: median(enc),
      decode: median(dec),
      jsonStringify: median(js),
      jsonParse: median(jp),
      encodeRatio: median(er),
      decodeRatio: median(dr),
    });
  }
  if (sink < 0) console.log(sink);
  return out;
}
