/**
 * Transport addresses as text: the one `host:port` grammar (`host:port`, `[v6]:port`,
 * `host`, `[v6]` or a bare IPv6 literal), the host and port a member record shows, and
 * whether a host is loopback.
 *
 * @module
 */

/** What {@linkcode parseHostPort} finds in an address. */
export interface HostPort {
  /** The host: a name, an IPv4 literal or an IPv6 literal (without brackets). */
  readonly host: string;
  /** The port, or `undefined` when the text has none. */
  readonly port: number | undefined;
  /** Whether the host was written in brackets (`[v6]`). */
  readonly bracketed: boolean;
}

/**
 * Parses `host:port`, `[v6]:port`, `host`, `[v6]` or a bare IPv6 literal (`::1`): the
 * host has no colon, bracket or space unless bracketed, the port is 0 to 65535. Returns
 * `undefined` for anything else.
 */
export function parseHostPort(text: string): HostPort | undefined {
  if (typeof text !== "string") return undefined;
  if (/^[\da-f:.]+$/i.test(text) && (text.includes("::") || text.split(":").length === 8)) {
    return { host: text, port: undefined, bracketed: false };
  }
  const m = /^(?:\[([^\]\s]+)\]|([^:\[\]\s]+))(?::(\d{1,5}))?$/.exec(text);
  if (!m) return undefined;
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port, bracketed: m[1] !== undefined };
}

/**
 * The host and port a member record shows for an address of any transport: the port is
 * the digits after the last colon (0 when there are none), the host the rest, brackets
 * removed. Unlike {@linkcode parseHostPort} it takes any text, URLs included.
 */
export function splitAddress(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(address);
  return m ? { host: m[1]!, port: Number(m[2]) } : { host: address, port: 0 };
}

/** Whether `host` (a bind address or a URL hostname) is a loopback address or name. */
export function isLoopback(host: string | undefined): boolean {
  if (host === undefined) return false;
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h.endsWith(".localhost") || /^127(\.\d{1,3}){3}$/.test(h) ||
    h === "::1" || /^(0{1,4}:){7}0{0,3}1$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}
