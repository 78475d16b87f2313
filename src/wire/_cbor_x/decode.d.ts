// Types of the parts of cbor-x 1.6.9's decode.js (vendored beside this file) that this
// package's tests use.

/** A CBOR tag that has no extension: its number and content. */
export declare class Tag {
  constructor(value: unknown, tag: number);
  value: unknown;
  tag: number;
}
