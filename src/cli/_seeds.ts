// Seeds of the `node` command: `host:port`, IP literals and DNS names. Names are resolved
// with dns.promises.lookup(name, { all: true }) (getaddrinfo), which reads /etc/hosts as well
// as DNS, unlike resolve4(): that matters in network namespaces, in containers and on Bun.
// Private to src/cli.ts.
import { promises as dns } from "node:dns";
import { isIP } from "node:net";
import { formatAddress } from "../transport/udp.ts";

/** A DNS host name (letters, digits, `-`, `_`, dot-separated labels of at most 63). */
export const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/** One seed as given: an IP literal or a DNS name, with or without a port. */
export interface Seed {
  /** The seed as written. */
  readonly text: string;
  /** The IP literal (IPv6 without brackets) or the DNS name. */
  readonly host: string;
  /** The port, when given; otherwise the member's own gossip port applies. */
  readonly port?: number;
  /** Whether `host` is a DNS name (resolved, and re-resolved periodically). */
  readonly name: boolean;
}

/**
 * Parses a seed: `host:port`, `[v6]:port`, `host`, `[v6]` or a bare IPv6 literal, where
 * `host` is an IPv4 literal or a DNS name. Throws a `TypeError` for anything else.
 */
export function parseSeed(text: string): Seed {
  let host: string | undefined;
  let port: string | undefined;
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:\[\]]+)(?::(\d+))?$/.exec(text);
  if (m) [host, port] = [m[1], m[2]];
  else if (isIP(text) === 6) host = text;
  const bracketed = text.startsWith("[");
  const ok = host !== undefined &&
    (bracketed ? isIP(host) === 6 : isIP(host) === 4 || isIP(host) === 6 || HOSTNAME.test(host));
  if (!ok || (port !== undefined && (Number(port) < 1 || Number(port) > 65535))) {
    throw new TypeError(
      `Seed ${JSON.stringify(text)} is not host:port, [v6]:port, an IP address or a DNS name`,
    );
  }
  const seed = { text, host: host!, name: isIP(host!) === 0 };
  return port === undefined ? seed : { ...seed, port: Number(port) };
}

/** What `dns.promises.lookup(name, { all: true })` answers. */
export type Lookup = (name: string) => Promise<readonly { address: string; family: number }[]>;

/** The system resolver: /etc/hosts, then DNS (getaddrinfo). */
export function systemLookup(name: string): Promise<{ address: string; family: number }[]> {
  return dns.lookup(name, { all: true });
}

/** The address family a socket bound to `bind` can reach: 4, 6, or undefined for both. */
export function bindFamily(bind: string): 4 | 6 | undefined {
  if (bind === "::" || isIP(bind) === 0) return undefined;
  return isIP(bind) === 6 ? 6 : 4;
}

/** Options of {@linkcode SeedResolver}. */
export interface SeedResolverOptions {
  /** The gossip port, for seeds without one. */
  port: number;
  /** Keep only addresses of this family (see {@linkcode bindFamily}). Default: both. */
  family?: 4 | 6 | undefined;
  /** The resolver. Default {@linkcode systemLookup}. */
  lookup?: Lookup;
  /** A lookup taking longer fails, in ms. Default 5,000. */
  timeoutMs?: number;
}

/** The outcome of {@linkcode SeedResolver.resolve}. */
export interface Resolved {
  /**
   * Every seed address, `host:port`, without duplicates: in the order of the seeds, the
   * addresses of one name sorted.
   */
  readonly addresses: string[];
  /** One message per name that did not resolve this time (its last addresses are kept). */
  readonly failures: string[];
}

/** Turns seeds into addresses; names are looked up on every call, literals kept as they are. */
export class SeedResolver {
  readonly seeds: readonly Seed[];
  readonly #options: SeedResolverOptions;
  readonly #last = new Map<string, string[]>();

  /** A resolver of `seeds` (as accepted by {@linkcode parseSeed}). */
  constructor(seeds: readonly string[], options: SeedResolverOptions) {
    this.seeds = seeds.map(parseSeed);
    this.#options = options;
  }

  /** Whether any seed is a DNS name (and so worth resolving again later). */
  get hasNames(): boolean {
    return this.seeds.some((s) => s.name);
  }

  /** Resolves every name once; a name that fails keeps the addresses it had last time. */
  async resolve(): Promise<Resolved> {
    const { port, family, lookup = systemLookup, timeoutMs = 5_000 } = this.#options;
    const failures: string[] = [];
    const lists = await Promise.all(this.seeds.map(async (seed) => {
      const p = seed.port ?? port;
      if (!seed.name) return [formatAddress(seed.host, p)];
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const answers = await Promise.race([
          lookup(seed.host),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        const addresses = answers
          .filter((a) => family === undefined || a.family === family)
          .map((a) => formatAddress(a.address, p))
          // DNS servers rotate answers: sorted, an unchanged set reads as unchanged.
          .sort();
        if (addresses.length === 0) throw new Error(`no IPv${family} address`);
        this.#last.set(seed.text, addresses);
        return addresses;
      } catch (error) {
        const code = (error as { code?: string }).code;
        failures.push(`${seed.host}: ${code ?? (error as Error).message}`);
        return this.#last.get(seed.text) ?? [];
      } finally {
        clearTimeout(timer);
      }
    }));
    return { addresses: [...new Set(lists.flat())], failures };
  }
}
