/**
 * The suspicion timeout rule (Lifeguard, as memberlist's `suspicion.go`): how long a
 * suspect member has to refute before it is declared dead.
 *
 * @module
 */

/** Inputs of {@linkcode suspicionTimeout}. */
export interface SuspicionInput {
  /** Members known, the local one included (the N of log N). */
  readonly members: number;
  /** Members other than the first suspecter that confirmed the suspicion. */
  readonly confirmations: number;
  /** `EngineConfig.suspicionMult`. */
  readonly mult: number;
  /** `EngineConfig.suspicionMaxMult`. */
  readonly maxMult: number;
  /** `EngineConfig.probeIntervalMs`. */
  readonly probeIntervalMs: number;
}

/**
 * The suspicion timeout in ms: at least `mult × max(1, log10 N) × probe period`; it starts
 * `maxMult` times that and shrinks logarithmically with each independent confirmation, down
 * to the minimum once the expected number of confirmations, min(3, N − 2), arrived.
 */
export function suspicionTimeout(input: SuspicionInput): number {
  const n = input.members;
  const min = input.mult * Math.max(1, Math.log10(n)) * input.probeIntervalMs;
  const max = input.maxMult * min;
  const expected = Math.min(3, n - 2);
  if (expected < 1) return min;
  return Math.max(
    min,
    max - (max - min) * Math.log(input.confirmations + 1) / Math.log(expected + 1),
  );
}
