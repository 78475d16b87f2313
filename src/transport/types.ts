/**
 * The transport port: how a member sends and receives datagrams. Adapters (memory, UDP
 * for each runtime, HTTP) implement it in a few lines each; the engine never sees them.
 *
 * @module
 */

/** Called with each datagram a transport receives and the address it came from. */
export type DatagramHandler = (data: Uint8Array, from: string) => void;

/** A datagram transport, such as a UDP socket or a simulated network. */
export interface Transport {
  /** The address other members use to reach this one (may differ from the bind address). */
  readonly address: string;
  /** Starts delivering received datagrams to `handler`. Called once, before any send. */
  listen(handler: DatagramHandler): void | Promise<void>;
  /**
   * Sends one datagram, best effort: delivery is not guaranteed. Throws (or rejects) for
   * datagrams the transport cannot carry; the caller counts such failures.
   */
  send(to: string, data: Uint8Array): void | Promise<void>;
  /** Stops receiving and releases the transport's resources. */
  close(): void | Promise<void>;
}
