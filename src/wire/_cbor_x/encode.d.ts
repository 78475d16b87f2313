// Types of the parts of cbor-x 1.6.9's encode.js (vendored beside this file) that this
// package uses.

/** The options of cbor-x's `Encoder` that this package sets. */
export interface Options {
  useRecords?: boolean;
  mapsAsObjects?: boolean;
  tagUint8Array?: boolean;
  variableMapSize?: boolean;
  copyBuffers?: boolean;
}

/** cbor-x's encoder (and decoder: it extends `Decoder`). */
export declare class Encoder {
  constructor(options?: Options);
  /** `options` 512 | 1024: the encoder's buffer itself, the bytes at its `start` to `end`. */
  encode(value: unknown, options?: number): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}
