/**
 * The one place that detects the runtime, and the one declaration of the slices of the
 * `Deno` and `Bun` globals the adapters touch, so that every file type-checks on every
 * runtime without Deno's unstable types or Bun's type package.
 *
 * @module
 */

import type { InterfaceAddress } from "./transport/udp.ts";

/** A UDP address as `Deno.listenDatagram` takes and reports it. */
export interface DenoAddr {
  transport: "udp";
  hostname: string;
  port: number;
}

/** A socket of `Deno.listenDatagram`. */
export interface DenoDatagramConn {
  readonly addr: DenoAddr;
  receive(buffer?: Uint8Array): Promise<[Uint8Array, DenoAddr]>;
  send(data: Uint8Array, to: DenoAddr): Promise<number>;
  close(): void;
}

/** A TCP connection of `Deno.listen` or `Deno.connect`. */
export interface DenoConn {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** What this library uses of `Deno`. */
export interface DenoGlobal {
  readonly version: { readonly deno: string };
  /** Present only with `--unstable-net` (or `"unstable": ["net"]`). */
  listenDatagram?: (options: DenoAddr) => DenoDatagramConn;
  networkInterfaces?: () => InterfaceAddress[];
  openSync?(path: string): { close(): void };
  listen?(options: { hostname: string; port: number; transport: "tcp" }): {
    readonly addr: { readonly port: number };
    accept(): Promise<DenoConn>;
    close(): void;
  };
  connect?(
    options: { hostname: string; port: number } | { transport: "unix"; path: string },
  ): Promise<DenoConn>;
  makeTempDirSync?(options: { prefix: string }): string;
  removeSync?(path: string, options: { recursive: boolean }): void;
  addSignalListener?(signal: "SIGWINCH", handler: () => void): void;
  removeSignalListener?(signal: "SIGWINCH", handler: () => void): void;
  serve?(options: {
    hostname?: string;
    port?: number;
    /** A Unix socket to listen on instead of `hostname` and `port`. */
    path?: string;
    onListen?: () => void;
    handler: (request: Request, info: { completed: Promise<void> }) => Promise<Response> | Response;
    signal?: AbortSignal;
  }): { addr: { port: number }; shutdown(): Promise<void>; finished: Promise<void> };
}

/** A socket of `Bun.udpSocket` (https://bun.sh/docs/api/udp). */
export interface BunUdpSocket {
  readonly hostname: string;
  readonly port: number;
  send(data: Uint8Array, port: number, address: string): boolean;
  close(): void;
}

/** What this library uses of `Bun`. */
export interface BunGlobal {
  readonly version: string;
  udpSocket?: (options: {
    hostname: string;
    port: number;
    binaryType: "uint8array";
    socket: {
      data(socket: BunUdpSocket, data: Uint8Array, port: number, address: string): void;
      error(socket: BunUdpSocket, error: Error): void;
    };
  }) => Promise<BunUdpSocket>;
  serve?(options: {
    hostname: string;
    port: number;
    idleTimeout: number;
    fetch: (
      request: Request,
      server: { timeout?(request: Request, seconds: number): void },
    ) => Response | Promise<Response>;
  }): { port: number; stop(closeActiveConnections?: boolean): Promise<void> };
}

const g = globalThis as { Deno?: DenoGlobal; Bun?: BunGlobal };

/** `Deno`, when this is Deno. */
export function denoGlobal(): DenoGlobal | undefined {
  return g.Deno;
}

/** `Bun`, when this is Bun. */
export function bunGlobal(): BunGlobal | undefined {
  return g.Bun;
}

/** The runtimes this library tells apart. */
export type RuntimeKey = "deno" | "bun" | "node";

/** Which runtime this is: Deno, Bun, or else Node (or a Node-compatible one). */
export function runtimeKey(): RuntimeKey {
  return g.Deno ? "deno" : g.Bun ? "bun" : "node";
}
