/**
 * Listener fan-out: a set of callbacks, each called with every event, where a throwing
 * listener is reported and never stops the others.
 *
 * @module
 */

/** Callbacks subscribed to one kind of event. */
export class Listeners<T> {
  readonly #listeners = new Set<(event: T) => void>();
  readonly #onError: (error: unknown) => void;

  /** An empty set; a listener that throws is reported to `onError`. */
  constructor(onError: (error: unknown) => void) {
    this.#onError = onError;
  }

  /** How many listeners are subscribed. */
  get size(): number {
    return this.#listeners.size;
  }

  /** Adds `listener`. Returns a function that removes it. */
  add(listener: (event: T) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Calls every listener with `event`. */
  emit(event: T): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#onError(error);
      }
    }
  }
}
