/**
 * Transport addresses as text: `host:port`, `[v6]:port` or a bare name.
 *
 * @module
 */

/** Splits `host:port` (or `[v6]:port`) into its parts; port 0 when there is none. */
export function splitAddress(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(address);
  return m ? { host: m[1]!, port: Number(m[2]) } : { host: address, port: 0 };
}
