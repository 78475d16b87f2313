/**
 * A queue of records without an object per record, for the protocol's logs of what it saw
 * lately (ids of messages seen, writes by time): records are numbered by their slot, 0 for
 * the first ever taken, then 1, 2 ...; the slots from `start` to `end` are held, oldest
 * first, in columns (one array per field: slot `s` at index `s & mask`). The columns double
 * when full and halve when under a quarter full (down to {@linkcode MIN_SHRINK} slots: they
 * grew in a burst). Arrays grown by `push` and cut by `slice` cost ~70-120 bytes per record.
 *
 * @module
 */

/** Slots below which the columns never halve. */
const MIN_SHRINK = 1024;

/** Records in columns of numbers and of strings, numbered by slot (see the module). */
export class Ring {
  /** The slot of the oldest record held. */
  start = 0;
  /** The slot the next record takes. */
  end = 0;
  #mask = 63;
  /** The number columns: field `c` of slot `s` at `numbers[c][s & mask]`. */
  numbers: Float64Array[];
  /** The string columns, likewise. */
  strings: string[][];

  /** A ring of `numbers` number fields and `strings` string fields per record. */
  constructor(numbers: number, strings = 0) {
    this.numbers = Array.from({ length: numbers }, () => new Float64Array(this.#mask + 1));
    this.strings = Array.from(
      { length: strings },
      () => new Array<string>(this.#mask + 1).fill(""),
    );
  }

  /** Records held. */
  get size(): number {
    return this.end - this.start;
  }

  /** Where slot `s` (held) sits in the columns. */
  index(s: number): number {
    return s & this.#mask;
  }

  /** Takes slot `end` (making room) for the caller to fill; returns its index. */
  push(): number {
    if (this.end - this.start > this.#mask) this.#resize(2 * (this.#mask + 1));
    return this.end++ & this.#mask;
  }

  /** Forgets the oldest record. */
  shift(): void {
    this.start++;
    const size = this.#mask + 1;
    if (size > MIN_SHRINK && 4 * (this.end - this.start) < size) this.#resize(size / 2);
  }

  #resize(size: number): void {
    const mask = size - 1, old = this.#mask;
    this.numbers = this.numbers.map((column) => {
      const moved = new Float64Array(size);
      for (let s = this.start; s < this.end; s++) moved[s & mask] = column[s & old]!;
      return moved;
    });
    this.strings = this.strings.map((column) => {
      const moved = new Array<string>(size).fill("");
      for (let s = this.start; s < this.end; s++) moved[s & mask] = column[s & old]!;
      return moved;
    });
    this.#mask = mask;
  }
}
