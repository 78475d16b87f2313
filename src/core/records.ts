/**
 * The `sys` section's member records: `members/<id>`, written only by member `<id>`.
 *
 * @module
 */

import { splitAddress } from "./address.ts";
import type { Entry } from "./store.ts";

/** Prefix of the `sys` keys that describe members: `members/<id>`. */
export const MEMBER_KEY_PREFIX = "members/";

/** The `sys` rule: only member `x` writes `members/x`. */
export function validSys(e: Entry): boolean {
  return e.section !== "sys" || e.key === MEMBER_KEY_PREFIX + e.writer;
}

/**
 * The value of a member's own record: its meta fields, address, host, port and protocol
 * (`meta` also carries the dissemination scheme's fields, such as `tree`).
 */
export function memberRecord(
  address: string,
  meta: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const { host, port } = splitAddress(address);
  return { ...meta, address, host, port, protocol: "v1" };
}

/** The address a member record names, or `undefined` when it names none. */
export function recordAddress(e: Entry): string | undefined {
  const address = (e.value as { address?: unknown } | undefined)?.address;
  return typeof address === "string" && address.length > 0 ? address : undefined;
}
