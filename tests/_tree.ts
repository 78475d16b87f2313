// Shared builders of the tree broadcast's unit tests (src/core/broadcast.ts): member ids, a
// member with those on its ring, an acknowledgement and a user entry.
import { TreeBroadcast, type TreeConfig } from "../src/core/broadcast.ts";
import type { IHaveMessage } from "../src/core/messages.ts";
import type { Entry } from "../src/core/store.ts";

/** Member ids `m0` to `m{n-1}`. */
export const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `m${i}`);

/** Member `self` of a tree broadcast holding `members` on its ring. */
export function member(
  self: string,
  members: readonly string[],
  config: Partial<TreeConfig> = {},
  now = 0,
): TreeBroadcast {
  const t = new TreeBroadcast(self, config, now);
  for (const id of members) t.overlay.set(id, true);
  return t;
}

/** An acknowledgement of `seqs` of `origin`, sent without waiting. */
export const ihave = (origin: string, ...seqs: number[]): IHaveMessage => ({
  type: "ihave",
  origin,
  hop: 0,
  seqs,
});

/** A user entry `key` = `value` written by `writer` (wall 1, not deleted). */
export const entry = (key: string, writer: string, value: unknown = "v"): Entry => ({
  section: "usr",
  key,
  value,
  wall: 1,
  logical: 0,
  writer,
  deleted: false,
});
