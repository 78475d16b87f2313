/**
 * The engine's tuning: {@linkcode EngineConfig}, its defaults and the validation that turns
 * caller options into a complete, frozen configuration.
 *
 * @module
 */

/** Tuning of the engine. Every field has a default. */
export interface EngineConfig {
  /** Peers a rumor is pushed to by each member that forwards it. Default 3. */
  fanout: number;
  /**
   * Period of anti-entropy rounds, in ms. Default 500: in sync a round is one ~30-byte
   * datagram (or a ~14-byte root in the datagram of a SWIM probe, see PROTOCOL.md), and it
   * bounds how long a member missed by a rumor waits.
   */
  gossipIntervalMs: number;
  /** Period of SWIM probes, in ms. Default 1,000. */
  probeIntervalMs: number;
  /** Wait for a direct ack before asking others to probe, in ms. Default half the probe period. */
  probeTimeoutMs: number;
  /** Members asked to probe indirectly. Default 3. */
  indirectChecks: number;
  /**
   * Suspicion timeout, at least mult × max(1, log10 N) × probe period. Default 5. It starts
   * `suspicionMaxMult` times longer and shrinks as other members confirm the suspicion
   * (Lifeguard), so a lone false suspicion has time to be refuted.
   */
  suspicionMult: number;
  /** How much longer an unconfirmed suspicion lasts than a fully confirmed one. Default 6. */
  suspicionMaxMult: number;
  /** Piggyback transmissions of an update = mult × ceil(log10(N + 1)). Default 4. */
  retransmitMult: number;
  /** Tombstones are collected this long after the delete, in ms. Default 1 hour. */
  tombstoneGraceMs: number;
  /** Dead and left members are forgotten this long after, in ms. Default 1 hour. */
  forgetAfterMs: number;
  /** Remote stamps further ahead of our clock than this are refused, in ms. Default 60 s. */
  maxDriftMs: number;
  /** Membership updates piggybacked on one outgoing batch at most. Default 16. */
  maxPiggyback: number;
  /** How often a member pings a random dead member, to heal partitions. Default 5 s. */
  reconnectIntervalMs: number;
  /**
   * A value over 8 KiB sent to a peer (rumor or anti-entropy) is not sent to it again for
   * this long, in ms, while the peer reassembles its fragments. Default 10 s (the wire's
   * fragment timeout).
   */
  largeEntryCooldownMs: number;
  /**
   * Tree broadcast: acknowledgements of received writes wait this long, to be batched, in
   * ms. Default 15.
   */
  ackDelayMs: number;
  /**
   * Tree broadcast: wait this long for an acknowledgement before sending a write again, in
   * ms, until round trips were measured (the timeout then follows them). Default 100.
   */
  retransmitMs: number;
}

/** The defaults of {@linkcode EngineConfig}. */
export const DEFAULT_CONFIG: Readonly<EngineConfig> = Object.freeze({
  fanout: 3,
  gossipIntervalMs: 500,
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 5,
  suspicionMaxMult: 6,
  retransmitMult: 4,
  tombstoneGraceMs: 3_600_000,
  forgetAfterMs: 3_600_000,
  maxDriftMs: 60_000,
  maxPiggyback: 16,
  reconnectIntervalMs: 5_000,
  largeEntryCooldownMs: 10_000,
  ackDelayMs: 15,
  retransmitMs: 100,
});

/** Whether `name` is a field of {@linkcode EngineConfig}. */
export function isConfigKey(name: string): name is keyof EngineConfig {
  return Object.hasOwn(DEFAULT_CONFIG, name);
}

/**
 * The configuration `options` ask for: the defaults, overridden by every `EngineConfig`
 * field of `options` that is not `undefined` (other fields are ignored). The probe timeout
 * follows a custom probe period unless set too. Throws a `RangeError` for a field that is
 * not a positive finite number, or a fanout that is not an integer.
 */
export function resolveConfig(options: object): Readonly<EngineConfig> {
  const config = { ...DEFAULT_CONFIG };
  for (const [k, v] of Object.entries(options)) {
    if (isConfigKey(k) && v !== undefined) (config as Record<string, unknown>)[k] = v;
  }
  const given = options as Partial<EngineConfig>;
  if (given.probeIntervalMs !== undefined && given.probeTimeoutMs === undefined) {
    config.probeTimeoutMs = config.probeIntervalMs / 2;
  }
  for (const [k, v] of Object.entries(config)) {
    if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) {
      throw new RangeError(`${k} must be a positive number, got ${String(v)}`);
    }
  }
  if (!Number.isInteger(config.fanout)) throw new RangeError("fanout must be a positive integer");
  return Object.freeze(config);
}
