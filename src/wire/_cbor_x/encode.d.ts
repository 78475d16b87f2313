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
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}
