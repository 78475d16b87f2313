// SWIM (src/core/swim.ts) on the engine's real shared parts (member table, outbox,
// counters) of one member, without a cluster, and the `sys` record that names a member:
// shared by the SWIM, candidate and engine unit tests.
import { type EngineConfig, resolveConfig } from "../src/core/config.ts";
import type { EngineContext } from "../src/core/context.ts";
import { type EngineCounters, newCounters } from "../src/core/counters.ts";
import { MEMBER_KEY_PREFIX } from "../src/core/engine.ts";
import { Membership } from "../src/core/membership.ts";
import type { Message } from "../src/core/messages.ts";
import { Outbox } from "../src/core/outbox.ts";
import type { Random } from "../src/core/random.ts";
import { type Entry, Store } from "../src/core/store.ts";
import { Swim } from "../src/core/swim.ts";

/** What {@linkcode swimSetup} returns. */
export interface SwimSetup {
  readonly ctx: EngineContext;
  readonly swim: Swim;
  readonly membership: Membership;
  readonly outbox: Outbox;
  readonly counters: EngineCounters;
  /** Status changes reported, as "id previous status". */
  readonly changes: string[];
  /** Ids reported forgotten. */
  readonly forgotten: string[];
  /** Messages queued since the last call, per address, without piggybacked updates. */
  sent(): Record<string, Message[]>;
  /** The membership updates queued to piggyback (taken by a batch to a bystander). */
  spread(): Message[];
}

/** SWIM on fresh shared parts of member "me" (address "me:1"), started at `now`. */
export function swimSetup(
  options: Partial<EngineConfig> = {},
  random: Random = () => 0,
  now = 0,
): SwimSetup {
  const config = resolveConfig(options);
  const counters = newCounters();
  const membership = new Membership("me", "me:1", now);
  const outbox = new Outbox("me:1", config.maxPiggyback, counters.messagesOut);
  const changes: string[] = [];
  const forgotten: string[] = [];
  const ctx: EngineContext = {
    id: "me",
    address: "me:1",
    config,
    random,
    membership,
    store: new Store(),
    counters,
    outbox,
    mergeRemote: () => "refused",
    memberChanged: (m, previous) => void changes.push(`${m.id} ${previous} ${m.status}`),
    forgotten: (id) => void forgotten.push(id),
  };
  const swim = new Swim(ctx, now);
  /** Messages queued since the last call, per address, without piggybacked updates. */
  const sent = (): Record<string, Message[]> =>
    Object.fromEntries(outbox.take(false).map((o) => [o.to, [...o.messages]]));
  /** The membership updates queued to piggyback (taken by a batch to a bystander). */
  const spread = (): Message[] => {
    sent();
    outbox.send("bystander:1", { type: "ack", seq: 0 });
    return outbox.take(true)[0]!.messages.filter((m) => m.type === "member");
  };
  return { ctx, swim, membership, outbox, counters, changes, forgotten, sent, spread };
}

/** Member `id`'s own `sys` record, written at `wall`, naming address `id:1` by default. */
export const memberRecord = (
  id: string,
  wall: number,
  value: unknown = { address: `${id}:1` },
): Entry => ({
  section: "sys",
  key: MEMBER_KEY_PREFIX + id,
  value,
  wall,
  logical: 0,
  writer: id,
  deleted: false,
});
