// The CBOR configuration and the value rules at their edges: decoded bytes own their
// memory, and the nesting limit counts every level (array items, Map keys and values).
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertValue, decodeCbor, encodeCbor } from "../src/wire/cbor.ts";

test("decoded byte strings are copies: reusing the datagram's buffer leaves them as they were", () => {
  const datagram = encodeCbor({ b: Uint8Array.of(1, 2, 3) });
  const decoded = decodeCbor(datagram) as { b: Uint8Array };
  assert.deepEqual([...decoded.b], [1, 2, 3]);
  datagram.fill(0xee);
  assert.deepEqual([...decoded.b], [1, 2, 3]);
  assert.notEqual(decoded.b.buffer, datagram.buffer);
});

test("undefined inside a value is accepted, as an array item or an object field", () => {
  assertValue({ a: undefined, b: [undefined, 1] });
  assertValue(new Map([["k", undefined]]));
});

test("an empty array at the deepest level is accepted; one level more is refused", () => {
  const nest = (n: number): unknown => (n === 0 ? [] : [nest(n - 1)]);
  assertValue(nest(64));
  assert.throws(() => assertValue(nest(65)), {
    name: "TypeError",
    message: `Value nests deeper than 64 levels at value${"[0]".repeat(65)}`,
  });
});

test("a Map's keys and values count one nesting level each", () => {
  const nest = (n: number): unknown => (n === 0 ? 1 : [nest(n - 1)]);
  assertValue(new Map([[nest(63), 1]]));
  assert.throws(() => assertValue(new Map([[nest(64), 1]])), {
    name: "TypeError",
    message: `Value nests deeper than 64 levels at value (a Map key)${"[0]".repeat(64)}`,
  });
  const maps = (n: number): unknown => (n === 0 ? 1 : new Map([["k", maps(n - 1)]]));
  assertValue(maps(64));
  assert.throws(() => assertValue(maps(65)), {
    name: "TypeError",
    // The 65th level is the innermost Map's key, checked before its value.
    message: `Value nests deeper than 64 levels at value${".get(k)".repeat(64)} (a Map key)`,
  });
});

test("an object whose prototype has no constructor is refused as an object", () => {
  const odd = Object.create(Object.create(null));
  assert.throws(() => assertValue({ o: odd }), {
    name: "TypeError",
    message: "Value cannot hold a object at value.o: use plain objects",
  });
});
