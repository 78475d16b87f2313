// Edges of the wire's codec, crypto and reassembly that the other wire tests leave out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseKey } from "../src/wire/crypto.ts";

test("parseKey(): one base64 digit past a multiple of 4 is refused, padded or not", () => {
  const notBase64 = {
    name: "TypeError",
    message: "Key is not base64 (make one with: openssl rand -base64 32)",
  };
  const key = btoa(String.fromCharCode(...new Uint8Array(32).fill(7))); // 43 digits and "="
  for (const text of ["AAAAA", "AAAAA=", "AAAAA==", `${key.slice(0, 41)}==`]) {
    assert.throws(() => parseKey(text), notBase64, text);
  }
  assert.equal(parseKey(key).length, 32);
  assert.equal(parseKey(key.slice(0, 43)).length, 32, "padding optional");
});
